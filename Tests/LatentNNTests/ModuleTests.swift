import XCTest
import LatentCore
import LatentCPU
@testable import LatentNN

/// Batch-norm semantics, naming, initialisation, shape errors and buffer reuse.
final class ModuleTests: XCTestCase {
    func testBatchNormTrainAndEvalSemantics() throws {
        var random = TestRandom(seed: 30)
        let (batch, channels, height, width) = (4, 3, 2, 2)
        let spatial = height * width
        let bn = try BatchNorm2d(channels, on: cpu)
        let gamma = random.values(channels, 0.5, 2), beta = random.values(channels)
        try bn.storage.weight.value.copy(from: gamma)
        try bn.storage.bias.value.copy(from: beta)
        var runningMean = [Double](repeating: 0, count: channels)
        var runningVariance = [Double](repeating: 1, count: channels)
        func index(_ n: Int, _ c: Int, _ s: Int) -> Int { (n * channels + c) * spatial + s }

        for step in 0..<3 {
            // Per-channel offsets and scales so each channel has its own statistics.
            var x = [Float](repeating: 0, count: batch * channels * spatial)
            for n in 0..<batch { for c in 0..<channels { for s in 0..<spatial {
                x[index(n, c, s)] = Float(c + step) + Float(c + 1) * random.uniform(-1, 1)
            } } }
            let input = try Tensor(x, shape: [batch, channels, height, width], on: cpu)
            let output = try bn.forward(input, training: true).toArray()
            let count = Double(batch * spatial)
            for c in 0..<channels {
                var sum = 0.0
                for n in 0..<batch { for s in 0..<spatial { sum += Double(x[index(n, c, s)]) } }
                let mean = sum / count
                var squares = 0.0
                for n in 0..<batch { for s in 0..<spatial { squares += pow(Double(x[index(n, c, s)]) - mean, 2) } }
                let biased = squares / count, unbiased = squares / (count - 1)
                for n in 0..<batch { for s in 0..<spatial {
                    let expected = Double(gamma[c]) * (Double(x[index(n, c, s)]) - mean) / (biased + 1e-5).squareRoot() + Double(beta[c])
                    XCTAssertEqual(Double(output[index(n, c, s)]), expected, accuracy: 1e-4, "train output step \(step)")
                } }
                runningMean[c] = 0.9 * runningMean[c] + 0.1 * mean
                runningVariance[c] = 0.9 * runningVariance[c] + 0.1 * unbiased
            }
        }
        assertClose(try bn.storage.runningMean.toArray(), runningMean.map(Float.init), relative: 1e-5, absolute: 1e-5, "running_mean")
        assertClose(try bn.storage.runningVariance.toArray(), runningVariance.map(Float.init), relative: 1e-5, absolute: 1e-5, "running_var")
        XCTAssertEqual(try bn.storage.numBatchesTracked.scalar(), 3)

        // Evaluation normalises with the running statistics and leaves them alone.
        let x = random.values(batch * channels * spatial, -3, 3)
        let output = try bn.forward(try Tensor(x, shape: [batch, channels, height, width], on: cpu), training: false).toArray()
        for n in 0..<batch { for c in 0..<channels { for s in 0..<spatial {
            let expected = Double(gamma[c]) * (Double(x[index(n, c, s)]) - runningMean[c]) / (runningVariance[c] + 1e-5).squareRoot() + Double(beta[c])
            XCTAssertEqual(Double(output[index(n, c, s)]), expected, accuracy: 1e-4, "eval output")
        } } }
        assertClose(try bn.storage.runningMean.toArray(), runningMean.map(Float.init), relative: 1e-5, absolute: 1e-5, "running_mean after eval")
        XCTAssertEqual(try bn.storage.numBatchesTracked.scalar(), 3)
    }

    func testBatchNorm1dRunningStatisticsAndSharing() throws {
        let bn = try BatchNorm1d(2, on: cpu)
        let shared = BatchNorm1d(sharing: bn)
        // Channel 0: 1, 3 (mean 2, unbiased var 2); channel 1: 0, 0.
        let input = try Tensor([1, 0, 3, 0], shape: [2, 2], on: cpu)
        _ = try bn.forward(input, training: true)
        _ = try shared.forward(input, training: true)
        // Two updates of the one set of statistics, as PyTorch with one module used twice.
        assertClose(try bn.storage.runningMean.toArray(), [0.19 * 2, 0], "shared running_mean")
        assertClose(try bn.storage.runningVariance.toArray(), [0.81 + 0.19 * 2, 0.81], "shared running_var")
        XCTAssertEqual(try shared.storage.numBatchesTracked.scalar(), 2)
        assertShapeError("one value per channel in training") {
            _ = try bn.forward(try Tensor([1, 2], shape: [1, 2], on: cpu), training: true)
        }
        XCTAssertNoThrow(try bn.forward(try Tensor([1, 2], shape: [1, 2], on: cpu), training: false))
    }

    func testNamesFollowPyTorchStateDict() throws {
        let source = RandomSource(seed: 1)
        final class Model: Module {
            let encoder: Sequential
            let head: Linear
            init(_ encoder: Sequential, _ head: Linear) {
                self.encoder = encoder
                self.head = head
            }
            var children: [(name: String, module: any Module)] { [("encoder", encoder), ("fc_mu", head)] }
        }
        let model = Model(Sequential(try Conv2d(1, 4, kernel: 3, on: cpu, random: source), try BatchNorm2d(4, on: cpu),
                                     LeakyReLU(0.2), Flatten()),
                          try Linear(8, 2, on: cpu, random: source))
        XCTAssertEqual(model.namedParameters().map(\.name),
                       ["encoder.0.weight", "encoder.0.bias", "encoder.1.weight", "encoder.1.bias", "fc_mu.weight", "fc_mu.bias"])
        XCTAssertEqual(model.namedBuffers().map(\.name),
                       ["encoder.1.running_mean", "encoder.1.running_var", "encoder.1.num_batches_tracked"])
        XCTAssertEqual(model.stateDict().map(\.name),
                       ["encoder.0.weight", "encoder.0.bias", "encoder.1.weight", "encoder.1.bias",
                        "encoder.1.running_mean", "encoder.1.running_var", "encoder.1.num_batches_tracked",
                        "fc_mu.weight", "fc_mu.bias"])
        XCTAssertEqual(model.namedBuffers()[2].tensor.shape, [])
        XCTAssertEqual(model.parameterCount, 4 * 9 + 4 + 4 + 4 + 16 + 2)
        let optimizer = try Optimizer(.adam, module: model)
        XCTAssertEqual(optimizer.namedState().prefix(3).map(\.name), ["state.0.exp_avg", "state.0.exp_avg_sq", "state.1.exp_avg"])
    }

    func testDefaultInitialisation() throws {
        let source = RandomSource(seed: 3)
        func check(_ values: [Float], bound: Float, _ label: String) {
            let largest = values.map(abs).max() ?? 0
            XCTAssertLessThanOrEqual(largest, bound, label)
            XCTAssertGreaterThan(largest, 0.9 * bound, "\(label) uses the whole range")
            // U(-b, b) has standard deviation b / sqrt(3); allow four standard errors of the mean.
            let mean = values.reduce(0, +) / Float(values.count)
            XCTAssertLessThan(abs(mean), 4 * bound / Float(3 * values.count).squareRoot(), "\(label) is centred")
        }
        let linear = try Linear(100, 50, on: cpu, random: source)
        check(try linear.weight.value.toArray(), bound: 0.1, "Linear weight")
        check(try XCTUnwrap(linear.bias).value.toArray(), bound: 0.1, "Linear bias")
        let conv = try Conv2d(4, 64, kernel: 5, on: cpu, random: source)
        check(try conv.weight.value.toArray(), bound: 0.1, "Conv2d weight (fan_in 4*5*5)")
        check(try XCTUnwrap(conv.bias).value.toArray(), bound: 0.1, "Conv2d bias")
        // PyTorch's fan_in for ConvTranspose2d(128, 64, 4): weight.size(1) * 4 * 4 = 1024.
        let deconv = try ConvTranspose2d(128, 64, kernel: 4, stride: 2, padding: 1, on: cpu, random: source)
        XCTAssertEqual(deconv.weight.shape, [128, 64, 4, 4])
        XCTAssertEqual(try Initialization.fanIn(weightShape: deconv.weight.shape), 1024)
        check(try deconv.weight.value.toArray(), bound: 1.0 / 32, "ConvTranspose2d weight")
        check(try XCTUnwrap(deconv.bias).value.toArray(), bound: 1.0 / 32, "ConvTranspose2d bias")
        let bn = try BatchNorm2d(5, on: cpu)
        XCTAssertEqual(try bn.storage.weight.value.toArray(), [1, 1, 1, 1, 1])
        XCTAssertEqual(try bn.storage.bias.value.toArray(), [0, 0, 0, 0, 0])
        XCTAssertEqual(try bn.storage.runningVariance.toArray(), [1, 1, 1, 1, 1])
        // One seed, one model.
        let again = try Linear(100, 50, on: cpu, random: RandomSource(seed: 3))
        XCTAssertEqual(try again.weight.value.toArray(), try linear.weight.value.toArray())
    }

    func testShapeErrorsThrow() throws {
        let source = RandomSource(seed: 4)
        let linear = try Linear(4, 2, on: cpu, random: source)
        assertShapeError("Linear on the wrong width") { _ = try linear.forward(try Tensor(zeros: [3, 5], on: cpu), training: true) }
        assertShapeError("Linear on an image") { _ = try linear.forward(try Tensor(zeros: [3, 1, 2, 2], on: cpu), training: true) }
        let conv = try Conv2d(3, 2, kernel: 3, on: cpu, random: source)
        assertShapeError("Conv2d on the wrong channels") { _ = try conv.forward(try Tensor(zeros: [1, 2, 5, 5], on: cpu), training: true) }
        assertShapeError("Conv2d kernel larger than input") { _ = try conv.forward(try Tensor(zeros: [1, 3, 2, 2], on: cpu), training: true) }
        _ = try conv.forward(try Tensor(zeros: [1, 3, 5, 5], on: cpu), training: true)
        assertShapeError("Conv2d gradient of the wrong shape") { _ = try conv.backward(try Tensor(zeros: [1, 2, 4, 4], on: cpu)) }
        let deconv = try ConvTranspose2d(2, 1, kernel: 4, stride: 2, padding: 1, on: cpu, random: source)
        assertShapeError("ConvTranspose2d on 3 dimensions") { _ = try deconv.forward(try Tensor(zeros: [2, 3, 3], on: cpu), training: true) }
        assertShapeError("BatchNorm2d on (N, C)") { _ = try BatchNorm2d(3, on: cpu).forward(try Tensor(zeros: [4, 3], on: cpu), training: true) }
        assertShapeError("Reshape to a different size") { _ = try Reshape([2, 2]).forward(try Tensor(zeros: [3, 5], on: cpu), training: true) }
        assertShapeError("Concat of different batches") {
            _ = try Concat().forward([try Tensor(zeros: [2, 3], on: cpu), try Tensor(zeros: [3, 3], on: cpu)])
        }
        assertShapeError("Split of the wrong total") { _ = try Split([2, 2]).forward(try Tensor(zeros: [2, 5], on: cpu)) }
        XCTAssertThrowsError(try ReLU().backward(try Tensor(zeros: [2], on: cpu)), "backward before forward")
        XCTAssertThrowsError(try Dropout(1, random: source), "p = 1")
        XCTAssertThrowsError(try ConvTranspose2d(2, 2, kernel: 3, stride: 2, outputPadding: 2, on: cpu, random: source))
    }

    /// The same batch shape reuses every output and gradient tensor; another batch size
    /// reuses the device buffers when it fits.
    func testBuffersAreReusedAcrossSteps() throws {
        var random = TestRandom(seed: 5)
        let source = RandomSource(seed: 5)
        let model = Sequential(try Conv2d(1, 2, kernel: 3, padding: 1, on: cpu, random: source), try BatchNorm2d(2, on: cpu),
                               ReLU(), Flatten(), try Linear(2 * 4 * 4, 3, on: cpu, random: source), Sigmoid())
        let input = try random.tensor([4, 1, 4, 4])
        let output1 = try model.forward(input, training: true)
        let gradient = try random.tensor([4, 3])
        let gradInput1 = try model.backward(gradient)
        let output2 = try model.forward(try random.tensor([4, 1, 4, 4]), training: true)
        let gradInput2 = try model.backward(gradient)
        XCTAssertTrue(output1 === output2)
        XCTAssertTrue(gradInput1 === gradInput2)
        let small = try model.forward(try random.tensor([2, 1, 4, 4]), training: true)
        XCTAssertEqual(small.shape, [2, 3])
        XCTAssertTrue(small.view.buffer === output1.view.buffer, "a smaller batch reuses the buffer")
    }
}
