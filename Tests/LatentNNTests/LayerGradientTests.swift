import XCTest
import LatentCore
import LatentCPU
@testable import LatentNN

/// Finite-difference checks of every layer's input and parameter gradients.
final class LayerGradientTests: XCTestCase {
    /// The checker itself: a gradient off by 5 % or in one element must be caught.
    func testGradientCheckCatchesWrongGradients() throws {
        var random = TestRandom(seed: 0)
        let layer = try Linear(4, 3, on: cpu, random: RandomSource(seed: 0))
        let input = try random.tensor([2, 4])
        let projection = random.values(6)
        _ = try layer.forward(input, training: true)
        let right = try layer.backward(try Tensor(projection, shape: [2, 3], on: cpu)).toArray()
        var oneWrong = right
        oneWrong[5] += 0.05
        let loss = { dot(try layer.forward(input, training: true).toArray(), projection) }
        let results = try GradientCheck.mismatches([
            .init(name: "right", tensor: input, analytic: right),
            .init(name: "scaled", tensor: input, analytic: right.map { $0 * 1.05 }),
            .init(name: "one wrong", tensor: input, analytic: oneWrong),
        ], loss: loss)
        XCTAssertEqual(results.map(\.checked), [8, 8, 8])
        XCTAssertEqual(results[0].failures, [])
        XCTAssertGreaterThan(results[1].failures.count, 4)
        XCTAssertEqual(results[2].failures.count, 1)
    }

    func testLinear() throws {
        var random = TestRandom(seed: 1)
        let layer = try Linear(5, 4, on: cpu, random: RandomSource(seed: 1))
        try GradientCheck.checkLayer("Linear(5, 4)", layer, input: try random.tensor([3, 5]))
        let noBias = try Linear(6, 3, bias: false, on: cpu, random: RandomSource(seed: 2))
        XCTAssertEqual(noBias.namedParameters().map(\.name), ["weight"])
        try GradientCheck.checkLayer("Linear(6, 3, bias: false)", noBias, input: try random.tensor([4, 6]))
    }

    func testConv2d() throws {
        var random = TestRandom(seed: 2)
        for kernel in [3, 4] {
            for stride in [1, 2] {
                for padding in [0, 1] {
                    let label = "Conv2d(2, 3, \(kernel), \(stride), \(padding))"
                    let layer = try Conv2d(2, 3, kernel: kernel, stride: stride, padding: padding,
                                           on: cpu, random: RandomSource(seed: UInt64(kernel * 10 + stride * 3 + padding)))
                    let input = try random.tensor([2, 2, 7, 6])
                    try GradientCheck.checkLayer(label, layer, input: input)
                }
            }
        }
    }

    func testConv2dNoBiasAndWideChannels() throws {
        var random = TestRandom(seed: 3)
        let layer = try Conv2d(5, 7, kernel: 3, stride: 2, padding: 1, bias: false, on: cpu, random: RandomSource(seed: 3))
        try GradientCheck.checkLayer("Conv2d(5, 7, 3, 2, 1, bias: false)", layer, input: try random.tensor([3, 5, 8, 8]))
    }

    func testConvTranspose2d() throws {
        var random = TestRandom(seed: 4)
        for kernel in [3, 4] {
            for outputPadding in [0, 1] {
                let label = "ConvTranspose2d(3, 2, \(kernel), 2, 1, \(outputPadding))"
                let layer = try ConvTranspose2d(3, 2, kernel: kernel, stride: 2, padding: 1, outputPadding: outputPadding,
                                                on: cpu, random: RandomSource(seed: UInt64(kernel + outputPadding)))
                let input = try random.tensor([2, 3, 4, 3])
                let output = try layer.forward(input, training: true)
                let side = { (size: Int) in (size - 1) * 2 - 2 + kernel + outputPadding }
                XCTAssertEqual(output.shape, [2, 2, side(4), side(3)], label)
                try GradientCheck.checkLayer(label, layer, input: input)
            }
        }
        // Stride 1, no padding, and report 004's beta-VAE ConvTranspose2d(32, 16, 3, 2).
        let plain = try ConvTranspose2d(2, 3, kernel: 3, on: cpu, random: RandomSource(seed: 9))
        try GradientCheck.checkLayer("ConvTranspose2d(2, 3, 3)", plain, input: try random.tensor([2, 2, 3, 3]))
        let beta = try ConvTranspose2d(4, 3, kernel: 3, stride: 2, on: cpu, random: RandomSource(seed: 10))
        let betaInput = try random.tensor([2, 4, 3, 3])
        XCTAssertEqual(try beta.outputShape(for: betaInput.shape), [2, 3, 7, 7])
        try GradientCheck.checkLayer("ConvTranspose2d(4, 3, 3, 2)", beta, input: betaInput)
    }

    func testBatchNormTraining() throws {
        var random = TestRandom(seed: 5)
        let tolerance = GradientCheck.Tolerance(eps: 1e-2, relative: 2e-2, absolute: 3e-3)
        let bn1 = try BatchNorm1d(4, on: cpu)
        try setAffine(bn1.storage, &random)
        try GradientCheck.checkLayer("BatchNorm1d(4) (N, C)", bn1, input: try random.tensor([6, 4], -2, 2), tolerance: tolerance)
        let bn1L = try BatchNorm1d(3, on: cpu)
        try setAffine(bn1L.storage, &random)
        try GradientCheck.checkLayer("BatchNorm1d(3) (N, C, L)", bn1L, input: try random.tensor([3, 3, 5], -2, 2), tolerance: tolerance)
        let bn2 = try BatchNorm2d(2, on: cpu)
        try setAffine(bn2.storage, &random)
        try GradientCheck.checkLayer("BatchNorm2d(2)", bn2, input: try random.tensor([3, 2, 3, 3], -2, 2), tolerance: tolerance)
    }

    func testBatchNormEval() throws {
        var random = TestRandom(seed: 6)
        let bn1 = try BatchNorm1d(4, on: cpu)
        try setAffine(bn1.storage, &random)
        try bn1.storage.runningMean.copy(from: random.values(4))
        try bn1.storage.runningVariance.copy(from: random.values(4, 0.5, 2))
        try GradientCheck.checkLayer("BatchNorm1d(4) eval", bn1, input: try random.tensor([5, 4]), training: false)
        let bn2 = try BatchNorm2d(3, on: cpu)
        try setAffine(bn2.storage, &random)
        try bn2.storage.runningMean.copy(from: random.values(3))
        try bn2.storage.runningVariance.copy(from: random.values(3, 0.5, 2))
        try GradientCheck.checkLayer("BatchNorm2d(3) eval", bn2, input: try random.tensor([2, 3, 2, 3]), training: false)
    }

    private func setAffine(_ storage: BatchNormStorage, _ random: inout TestRandom) throws {
        try storage.weight.value.copy(from: random.values(storage.channels, 0.5, 1.5))
        try storage.bias.value.copy(from: random.values(storage.channels))
    }

    func testDropoutWithFixedMask() throws {
        var random = TestRandom(seed: 7)
        let source = RandomSource(seed: 42)
        let dropout = try Dropout(0.3, random: source)
        let input = try random.tensor([4, 10])
        // Replaying the stream position replays the mask.
        let start = source.stream
        try GradientCheck.checkLayer("Dropout(0.3)", dropout, input: input) { source.stream = start }
        let output = try dropout.forward(input, training: true).toArray()
        let values = try input.toArray()
        var dropped = 0
        for (y, x) in zip(output, values) {
            if y == 0 { dropped += 1 } else { XCTAssertEqual(y, x / 0.7, accuracy: 1e-6) }
        }
        XCTAssertTrue(dropped > 0 && dropped < 40, "dropped \(dropped) of 40")
        // A new call draws a new mask; evaluation is the identity.
        let next = try dropout.forward(input, training: true).toArray()
        XCTAssertNotEqual(next, output)
        XCTAssertEqual(try dropout.forward(input, training: false).toArray(), values)
        XCTAssertEqual(try dropout.backward(input).toArray(), values)
    }

    func testActivations() throws {
        var random = TestRandom(seed: 8)
        let layers: [(String, any Layer)] = [
            ("ReLU", ReLU()), ("LeakyReLU(0.2)", LeakyReLU(0.2)), ("Sigmoid", Sigmoid()),
            ("Tanh", Tanh()), ("Softplus", Softplus()), ("ActivationLayer(tanh)", ActivationLayer(.tanh)),
        ]
        for (label, layer) in layers {
            // |x| >= 0.1 keeps every perturbation (eps 1e-2) on one side of the ReLU kinks.
            let input = try Tensor(random.awayFromZero(2 * 3 * 4, 0.1, 3), shape: [2, 3, 4], on: cpu)
            try GradientCheck.checkLayer(label, layer, input: input)
        }
        let relu = ReLU()
        let output = try relu.forward(try Tensor([-1, 0.5, 2, -0.25], shape: [2, 2], on: cpu), training: true)
        XCTAssertEqual(try output.toArray(), [0, 0.5, 2, 0])
        let leaky = LeakyReLU(0.2)
        XCTAssertEqual(try leaky.forward(try Tensor([-1, 0.5], shape: [1, 2], on: cpu), training: true).toArray(), [-0.2, 0.5])
    }

    func testFlattenAndReshape() throws {
        var random = TestRandom(seed: 9)
        let flatten = Flatten()
        let input = try random.tensor([2, 3, 2, 2])
        let flat = try flatten.forward(input, training: true)
        XCTAssertEqual(flat.shape, [2, 12])
        try GradientCheck.checkLayer("Flatten", flatten, input: input)
        let reshape = try Reshape([3, 2, 2])
        let back = try reshape.forward(flat, training: true)
        XCTAssertEqual(back.shape, [2, 3, 2, 2])
        XCTAssertEqual(try back.toArray(), try input.toArray())
        try GradientCheck.checkLayer("Reshape", reshape, input: try random.tensor([2, 12]))
    }

    func testConcatAndSplit() throws {
        var random = TestRandom(seed: 10)
        let a = try random.tensor([2, 3, 2, 2])
        let b = try random.tensor([2, 1, 2, 2])
        let c = try random.tensor([2, 2, 2, 2])
        let concat = Concat()
        let joined = try concat.forward([a, b, c])
        XCTAssertEqual(joined.shape, [2, 6, 2, 2])
        // Sample 1's channels 3..3 are b's second sample.
        let values = try joined.toArray()
        XCTAssertEqual(Array(values[24 + 12 ..< 24 + 16]), Array(try b.toArray()[4..<8]))
        let projection = random.values(joined.count)
        let grads = try concat.backward(try Tensor(projection, shape: joined.shape, on: cpu))
        XCTAssertEqual(grads.map(\.shape), [a.shape, b.shape, c.shape])
        try GradientCheck.check("Concat", zip(["a", "b", "c"], zip([a, b, c], grads)).map {
            GradientCheck.Variable(name: $0.0, tensor: $0.1.0, analytic: try $0.1.1.toArray())
        }) {
            dot(try concat.forward([a, b, c]).toArray(), projection)
        }

        // (N, C) rows, as a CVAE joins features and one-hot labels.
        let split = try Split([2, 0, 3])
        let x = try random.tensor([3, 5])
        let parts = try split.forward(x)
        XCTAssertEqual(parts.map(\.shape), [[3, 2], [3, 0], [3, 3]])
        let xs = try x.toArray()
        XCTAssertEqual(try parts[2].toArray(), [2, 3, 4, 7, 8, 9, 12, 13, 14].map { xs[$0] })
        let p0 = random.values(6), p2 = random.values(9)
        let gradX = try split.backward([try Tensor(p0, shape: [3, 2], on: cpu), nil, try Tensor(p2, shape: [3, 3], on: cpu)])
        try GradientCheck.check("Split", [.init(name: "x", tensor: x, analytic: try gradX.toArray())]) {
            let parts = try split.forward(x)
            return dot(try parts[0].toArray(), p0) + dot(try parts[2].toArray(), p2)
        }
        // The round trip reproduces the input.
        let rejoined = try Concat().forward(try split.forward(x))
        XCTAssertEqual(try rejoined.toArray(), try x.toArray())
    }

    func testSequential() throws {
        var random = TestRandom(seed: 11)
        let source = RandomSource(seed: 11)
        let model = Sequential(
            try Conv2d(2, 3, kernel: 3, stride: 2, padding: 1, on: cpu, random: source),
            try BatchNorm2d(3, on: cpu),
            Tanh(),
            Flatten(),
            try Linear(3 * 3 * 3, 4, on: cpu, random: source),
            Softplus())
        XCTAssertEqual(model.namedParameters().map(\.name),
                       ["0.weight", "0.bias", "1.weight", "1.bias", "4.weight", "4.bias"])
        try GradientCheck.checkLayer("Sequential", model, input: try random.tensor([3, 2, 5, 5]),
                                     tolerance: .init(eps: 1e-2, relative: 2e-2, absolute: 3e-3))
    }

    /// A layer built with `init(sharing:)` applies the same parameters at a second place;
    /// the gradient is the sum over both places.
    func testSharedLayersAccumulateIntoOneParameter() throws {
        var random = TestRandom(seed: 12)
        let first = try Linear(4, 4, on: cpu, random: RandomSource(seed: 12))
        let second = Linear(sharing: first)
        let model = Sequential(first, Tanh(), second)
        XCTAssertEqual(model.namedParameters().map(\.name), ["0.weight", "0.bias"])
        XCTAssertEqual(model.namedParameters(removeDuplicates: false).map(\.name), ["0.weight", "0.bias", "2.weight", "2.bias"])
        try GradientCheck.checkLayer("Linear shared twice", model, input: try random.tensor([3, 4]))

        let bn = try BatchNorm2d(2, on: cpu)
        let bnAgain = BatchNorm2d(sharing: bn)
        let convs = Sequential(bn, Tanh(), bnAgain)
        XCTAssertEqual(convs.namedBuffers().map(\.name), ["0.running_mean", "0.running_var", "0.num_batches_tracked"])
        XCTAssertEqual(convs.stateDict().count, 10)
        try GradientCheck.checkLayer("BatchNorm2d shared twice", convs, input: try random.tensor([2, 2, 3, 3], -2, 2),
                                     tolerance: .init(eps: 1e-2, relative: 2e-2, absolute: 3e-3))
    }

    func testParameterGradientsAccumulateUntilZeroed() throws {
        var random = TestRandom(seed: 13)
        let layer = try Conv2d(2, 2, kernel: 3, padding: 1, on: cpu, random: RandomSource(seed: 13))
        let input = try random.tensor([2, 2, 4, 4])
        let output = try layer.forward(input, training: true)
        let grad = try random.tensor(output.shape)
        try layer.zeroGradients()
        _ = try layer.backward(grad)
        let once = try layer.weight.gradient.toArray()
        _ = try layer.backward(grad)
        assertClose(try layer.weight.gradient.toArray(), once.map { 2 * $0 }, relative: 1e-5, absolute: 1e-6, "accumulated weight gradient")
        try layer.zeroGradients()
        XCTAssertEqual(try layer.bias?.gradient.toArray(), [0, 0])
    }

    /// `backwardParameters` (a model's first layer, whose input is data) accumulates exactly
    /// the parameter gradients of `backward`, bit for bit, for every layer that overrides it
    /// and through a Sequential whose first layers have no parameters.
    func testBackwardParametersMatchesBackwardsParameterGradients() throws {
        var random = TestRandom(seed: 14)
        let source = RandomSource(seed: 14)
        let cases: [(String, any Layer, [Int])] = [
            ("Linear(5, 4)", try Linear(5, 4, on: cpu, random: source), [3, 5]),
            ("Conv2d(2, 3, 3, 2, 1)", try Conv2d(2, 3, kernel: 3, stride: 2, padding: 1, on: cpu, random: source), [2, 2, 7, 7]),
            ("ConvTranspose2d(3, 2, 4, 2, 1)",
             try ConvTranspose2d(3, 2, kernel: 4, stride: 2, padding: 1, on: cpu, random: source), [2, 3, 4, 4]),
            ("Sequential(Tanh, Conv2d, BatchNorm2d, ReLU, Flatten, Linear)",
             Sequential(Tanh(), try Conv2d(2, 3, kernel: 3, padding: 1, on: cpu, random: source), try BatchNorm2d(3, on: cpu),
                        ReLU(), Flatten(), try Linear(3 * 4 * 4, 2, on: cpu, random: source)), [2, 2, 4, 4]),
        ]
        for (label, layer, shape) in cases {
            let input = try random.tensor(shape)
            let output = try layer.forward(input, training: true)
            let grad = try random.tensor(output.shape)
            try layer.zeroGradients()
            _ = try layer.backward(grad)
            let full = try layer.parameters().map { try $0.gradient.toArray() }
            try layer.zeroGradients()
            _ = try layer.forward(input, training: true)
            try layer.backwardParameters(grad)
            let parametersOnly = try layer.parameters().map { try $0.gradient.toArray() }
            XCTAssertFalse(full.isEmpty, label)
            XCTAssertTrue(full.contains { $0.contains { $0 != 0 } }, "\(label): some gradient is non-zero")
            XCTAssertEqual(parametersOnly, full, label)
        }
        // Without a forward pass it is an error, as backward is.
        let fresh = try Linear(2, 2, on: cpu, random: source)
        XCTAssertThrowsError(try fresh.backwardParameters(try random.tensor([1, 2])))
    }
}
