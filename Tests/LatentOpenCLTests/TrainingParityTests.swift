import XCTest
import LatentCore
import LatentCPU
import LatentNN
@testable import LatentModels
@testable import LatentOpenCL

/// Whole training steps on OpenCL against the CPU backend, from the same seed: the
/// report-004 conv VAE (five steps of forward, backward and Adam) and the report-004 MLP
/// GAN (a discriminator and a generator step, twice). Losses and every parameter agree
/// to 1e-4 relative (to each tensor's scale).
final class TrainingParityTests: XCTestCase {
    final class ConvVAE: Module {
        let encoder: Sequential
        let fcMu: Linear
        let fcLogVariance: Linear
        let decoderInput: Linear
        let decoder: Sequential
        let sample: Reparameterize

        init(latent: Int, on backend: any Backend, random: RandomSource) throws {
            encoder = Sequential(
                try Conv2d(1, 64, kernel: 4, stride: 2, padding: 1, on: backend, random: random),
                try BatchNorm2d(64, on: backend), LeakyReLU(0.2),
                try Conv2d(64, 128, kernel: 4, stride: 2, padding: 1, on: backend, random: random),
                try BatchNorm2d(128, on: backend), LeakyReLU(0.2),
                try Conv2d(128, 128, kernel: 3, stride: 1, padding: 1, on: backend, random: random),
                try BatchNorm2d(128, on: backend), LeakyReLU(0.2),
                Flatten())
            fcMu = try Linear(128 * 7 * 7, latent, on: backend, random: random)
            fcLogVariance = try Linear(128 * 7 * 7, latent, on: backend, random: random)
            decoderInput = try Linear(latent, 128 * 7 * 7, on: backend, random: random)
            decoder = Sequential(
                try Reshape([128, 7, 7]),
                try ConvTranspose2d(128, 64, kernel: 4, stride: 2, padding: 1, on: backend, random: random), ReLU(),
                try ConvTranspose2d(64, 1, kernel: 4, stride: 2, padding: 1, on: backend, random: random), Sigmoid())
            sample = Reparameterize(.logVariance, random: random)
        }

        var children: [(name: String, module: any Module)] {
            [("encoder", encoder), ("fc_mu", fcMu), ("fc_logvar", fcLogVariance), ("decoder_input", decoderInput), ("decoder", decoder)]
        }

        /// One step: forward, (BCE(sum) + KL) / batch, backward, Adam. Returns the loss.
        func step(_ images: Tensor, optimizer: Optimizer, bce: ElementwiseLoss, kl: GaussianKL) throws -> Float {
            let batch = images.shape[0]
            let hidden = try encoder.forward(images, training: true)
            let mu = try fcMu.forward(hidden, training: true)
            let logVariance = try fcLogVariance.forward(hidden, training: true)
            let z = try sample.forward(mean: mu, parameter: logVariance)
            let reconstruction = try decoder.forward(try decoderInput.forward(z, training: true), training: true)
            let reconstructionLoss = try bce.forward(reconstruction, target: images)
            let klLoss = try kl.forward(mean: mu, parameter: logVariance)
            try zeroGradients()
            let scale = 1 / Float(batch)
            var g = try bce.backward(scale: scale)
            g = try decoderInput.backward(try decoder.backward(g))
            let heads = try sample.backward(g)
            try kl.backward(scale: scale, accumulatingInto: heads.mean, heads.parameter)
            let gradHidden = try fcMu.backward(heads.mean)
            try accumulate(try fcLogVariance.backward(heads.parameter), into: gradHidden)
            try encoder.backwardParameters(gradHidden)  // the images need no gradient (as VAE.swift)
            try optimizer.step()
            // Read last: the step ran without a host round trip.
            return (try reconstructionLoss.scalar() + (try klLoss.scalar())) / Float(batch)
        }
    }

    /// Biases whose layer feeds a BatchNorm: the normalisation removes them, so their exact
    /// gradient is zero and what both backends compute is rounding noise (PyTorch's too).
    static let normalizedBiases: Set<String> = ["encoder.0.bias", "encoder.3.bias", "encoder.6.bias",
                                                 "G.2.bias", "G.5.bias", "G.8.bias"]

    struct Run {
        var losses: [Float] = []
        /// Gradients after the first step's backward pass.
        var firstGradients: [(String, [Float])] = []
        /// Parameters and buffers after the first step.
        var firstParameters: [(String, [Float])] = []
        /// Parameters and buffers after the last step.
        var parameters: [(String, [Float])] = []
    }

    func runConvVAE(on backend: any Backend, steps: Int, batch: Int, rule: OptimizerRule) throws -> Run {
        let random = RandomSource(seed: 2024)
        let model = try ConvVAE(latent: 32, on: backend, random: random)
        let optimizer = try Optimizer(rule, module: model)
        let bce = ElementwiseLoss.bce(.sum), kl = GaussianKL(.logVariance)
        let images = try Tensor(zeros: [batch, 1, 28, 28], on: backend)
        var run = Run()
        for step in 0..<steps {
            try random.fillUniform(images, low: 0, high: 1)
            run.losses.append(try model.step(images, optimizer: optimizer, bce: bce, kl: kl))
            if step == 0 {
                run.firstGradients = try model.namedParameters().map { ($0.name, try $0.parameter.gradient.toArray()) }
                run.firstParameters = try Self.state(of: model)
            }
        }
        run.parameters = try Self.state(of: model)
        return run
    }

    static func state(of model: ConvVAE) throws -> [(String, [Float])] {
        try model.namedParameters().map { ($0.name, try $0.parameter.value.toArray()) }
            + model.namedBuffers().map { ($0.name, try $0.tensor.toArray()) }
    }

    /// Backward parity before any optimizer amplifies rounding: every gradient of the first
    /// step within 1e-5 (norm-relative); a normalised bias's noise below 1e-5 of its weight's gradient.
    func assertGradientsMatch(_ actual: Run, _ expected: Run, file: StaticString = #filePath, line: UInt = #line) {
        let byName = Dictionary(uniqueKeysWithValues: expected.firstGradients)
        for (a, e) in zip(actual.firstGradients, expected.firstGradients) {
            XCTAssertEqual(a.0, e.0, file: file, line: line)
            if Self.normalizedBiases.contains(e.0) {
                let weight = byName[e.0.replacingOccurrences(of: ".bias", with: ".weight")] ?? []
                let weightNorm = weight.reduce(0) { $0 + Double($1) * Double($1) }.squareRoot()
                let noise = zip(a.1, e.1).reduce(0) { $0 + Double($1.0 - $1.1) * Double($1.0 - $1.1) }.squareRoot()
                XCTAssertLessThanOrEqual(noise, 1e-5 * weightNorm, "gradient of \(e.0)", file: file, line: line)
            } else {
                XCTAssertLessThanOrEqual(normRelativeError(a.1, e.1), 1e-5, "gradient of \(e.0)", file: file, line: line)
            }
        }
    }

    /// Report 004's conv VAE: five steps of forward, backward and Adam, the same seed on both
    /// backends. The Adam kernel itself is bit-identical to the CPU's, tiny gradients near eps
    /// included (OptimizerParityTests), so what differs comes in with the gradients.
    ///
    /// After one step every parameter and buffer agrees to 1e-4 (issue 3's bound; measured
    /// 7.0e-6 at worst apart from encoder.6.weight, fc_logvar.weight) on the elements whose
    /// gradient is more than 1e-5 of its tensor's largest. Below that Adam's step lr * g / (|g| + eps) follows rounding: with
    /// the CPU's Winograd F(4x4, 3x3) weight gradient (rounding about 3e-6 of the largest
    /// value, within the 1e-5 gradient bound checked below) one element of encoder.6.weight,
    /// |g| = 3e-7 of a largest 0.63, has opposite signs on the two backends and alone puts the
    /// whole tensor 3.0e-4 apart (measured 2026-12-02; 8.9e-7 with the direct kernels).
    ///
    /// After five steps 1e-4 is out of reach of any two float32 implementations that sum in
    /// different orders, so the bound there is the CPU backend's own spread: the same five
    /// steps on the CPU backend with its direct batch-inner kernels and with im2col (the same
    /// maths as its default Winograd path, summed in other orders) end as far from the default
    /// run as OpenCL does. Measured 2026-12-03 (norm-relative, worst tensor decoder.1.weight):
    /// CPU Winograd against direct 1.60e-3, against im2col 1.67e-3, direct against im2col
    /// 9.8e-4, OpenCL against CPU 1.72e-3; tensor by tensor the OpenCL gap was 0.67-1.27x the
    /// larger of the two CPU gaps (1 thread against 2: 4.7e-7, the same order by design).
    /// PyTorch is no different (`Benchmarks/pytorch/adam_drift.py`, the same setting): its
    /// oneDNN and native convolutions end 8.7e-4 apart, and against float64 arithmetic its
    /// float32 oneDNN run ends 7.3e-4 to 1.3e-3 apart on three of four seeds (5e-6 on the
    /// fourth), its native one 8.7e-4 to 8.3e-3. Adam divides each gradient by its own running
    /// RMS, so once the first steps differ by rounding every later forward pass does, and a
    /// small element's rounding becomes a full-size change of its step; with SGD the same five
    /// steps hold 1e-4 element by element (next test). So each tensor's OpenCL gap must stay
    /// within twice the larger CPU gap (and under 3e-3, 1.5e-2 for the BatchNorm shifts, which
    /// start at zero and are nothing but the five steps). The losses agree to 1e-4 (measured
    /// 3.6e-5, step 4). Where 1e-4 is wanted after five Adam steps, reproducible mode gives
    /// it, to the bit (the next test).
    func testConvVAEFiveAdamStepsMatchCPU() throws {
        let cl = try OpenCLTestDevice.backend()
        let adam = OptimizerRule.adam(lr: 1e-3, beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0, decoupled: false)
        let expected = try runConvVAE(on: CPUBackend(threads: 2), steps: 5, batch: 16, rule: adam)
        let actual = try runConvVAE(on: cl, steps: 5, batch: 16, rule: adam)
        let direct = try runConvVAE(on: CPUBackend(threads: 2, convolution: .batchInner), steps: 5, batch: 16, rule: adam)
        let im2col = try runConvVAE(on: CPUBackend(threads: 2, convolution: .im2col), steps: 5, batch: 16, rule: adam)
        assertScaled(actual.losses, expected.losses, tolerance: 1e-4, "conv VAE losses")
        assertGradientsMatch(actual, expected)
        XCTAssertEqual(actual.firstParameters.count, expected.firstParameters.count)
        let gradients = Dictionary(uniqueKeysWithValues: expected.firstGradients)
        for (a, e) in zip(actual.firstParameters, expected.firstParameters) where !Self.normalizedBiases.contains(e.0) {
            // Adam's first step is lr * g / (|g| + eps): an element whose gradient is within the
            // backends' rounding of zero (1e-5 of its tensor's largest) steps +-lr either way on
            // either backend. Those are left out here, and must be rare.
            let gradient = gradients[e.0] ?? []
            let floor = 1e-5 * (gradient.map(abs).max() ?? 0)
            let determined = e.1.indices.filter { gradient.isEmpty || abs(gradient[$0]) > floor }
            XCTAssertLessThanOrEqual(e.1.count - determined.count, Swift.max(2, e.1.count / 10_000), "conv VAE \(e.0): gradients near zero")
            XCTAssertLessThanOrEqual(normRelativeError(determined.map { a.1[$0] }, determined.map { e.1[$0] }), 1e-4,
                                     "conv VAE \(e.0) after 1 Adam step")
        }
        XCTAssertEqual(actual.parameters.map(\.0), expected.parameters.map(\.0))
        XCTAssertEqual(direct.parameters.map(\.0), expected.parameters.map(\.0))
        XCTAssertEqual(im2col.parameters.map(\.0), expected.parameters.map(\.0))
        let batchNormShifts: Set<String> = ["encoder.1.bias", "encoder.4.bias", "encoder.7.bias"]
        for (index, e) in expected.parameters.enumerated() {
            let gap = normRelativeError(actual.parameters[index].1, e.1)
            let cpuSpread = Swift.max(normRelativeError(direct.parameters[index].1, e.1),
                                      normRelativeError(im2col.parameters[index].1, e.1))
            XCTAssertLessThanOrEqual(gap, Swift.max(1e-4, 2 * cpuSpread),
                                     "conv VAE \(e.0) after 5 Adam steps: OpenCL against CPU \(gap), CPU's own algorithms \(cpuSpread)")
            if !Self.normalizedBiases.contains(e.0) && !e.0.hasSuffix("running_mean") {
                XCTAssertLessThanOrEqual(gap, batchNormShifts.contains(e.0) ? 1.5e-2 : 3e-3, "conv VAE \(e.0) after 5 Adam steps")
            }
        }
    }

    /// Issue 3's bound after five Adam steps, met in reproducible mode (`--reproducible`):
    /// every op that sums accumulates in double in one order on both backends
    /// (CPUBackend+Reproducible.swift, Kernels/reproducible.cl), so the five steps end with
    /// every loss, parameter and running statistic equal to the bit, the
    /// normalised biases included; far inside 1e-4. One CPU thread or two: the same bits.
    func testConvVAEFiveAdamStepsInReproducibleModeMatchCPUBitForBit() throws {
        let cl = try OpenCLTestDevice.backend(reproducible: true)
        let adam = OptimizerRule.adam(lr: 1e-3, beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0, decoupled: false)
        let expected = try runConvVAE(on: CPUBackend(threads: 2, reproducible: true), steps: 5, batch: 16, rule: adam)
        let actual = try runConvVAE(on: cl, steps: 5, batch: 16, rule: adam)
        let oneThread = try runConvVAE(on: CPUBackend(threads: 1, reproducible: true), steps: 5, batch: 16, rule: adam)
        assertBitIdentical(actual.losses, expected.losses, "conv VAE losses, OpenCL against CPU")
        assertBitIdentical(oneThread.losses, expected.losses, "conv VAE losses, 1 thread against 2")
        XCTAssertEqual(actual.parameters.map(\.0), expected.parameters.map(\.0))
        XCTAssertEqual(actual.parameters.count, 31, "22 parameters and 9 batch-norm buffers")
        for (index, e) in expected.parameters.enumerated() {
            assertBitIdentical(actual.parameters[index].1, e.1, "conv VAE \(e.0) after 5 Adam steps, OpenCL against CPU")
            assertBitIdentical(oneThread.parameters[index].1, e.1, "conv VAE \(e.0) after 5 Adam steps, 1 thread against 2")
        }
        // The steps moved the weights: the comparison is not of untouched initial values.
        XCTAssertNotEqual(expected.parameters[0].1, expected.firstParameters[0].1)
    }

    /// The MLP GAN's two rounds in reproducible mode: equal to the bit, the biases that feed a
    /// batch norm included (in the default mode they are rounding noise, 1.1e-4 apart).
    func testMLPGANStepsInReproducibleModeMatchCPUBitForBit() throws {
        let cl = try OpenCLTestDevice.backend(reproducible: true)
        let expected = try runGAN(on: CPUBackend(threads: 2, reproducible: true), rounds: 2, batch: 32)
        let actual = try runGAN(on: cl, rounds: 2, batch: 32)
        assertBitIdentical(actual.losses, expected.losses, "GAN losses")
        XCTAssertEqual(actual.parameters.map(\.0), expected.parameters.map(\.0))
        for (a, e) in zip(actual.parameters, expected.parameters) {
            assertBitIdentical(a.1, e.1, "GAN \(e.0) after two rounds")
        }
    }

    /// The same five steps with SGD (momentum 0.9): every parameter and running statistic
    /// within 1e-4 of its tensor's scale, element by element.
    func testConvVAEFiveSGDStepsMatchCPU() throws {
        let cl = try OpenCLTestDevice.backend()
        let sgd = OptimizerRule.sgd(lr: 1e-3, momentum: 0.9, dampening: 0, weightDecay: 0, nesterov: false)
        let expected = try runConvVAE(on: CPUBackend(threads: 2), steps: 5, batch: 16, rule: sgd)
        let actual = try runConvVAE(on: cl, steps: 5, batch: 16, rule: sgd)
        assertScaled(actual.losses, expected.losses, tolerance: 1e-4, "conv VAE losses")
        for (a, e) in zip(actual.parameters, expected.parameters) where !Self.normalizedBiases.contains(e.0) && !e.0.hasSuffix("running_mean") {
            assertScaled(a.1, e.1, tolerance: 1e-4, "conv VAE \(e.0) after 5 SGD steps")
        }
    }

    func runGAN(on backend: any Backend, rounds: Int, batch: Int) throws -> Run {
        let random = RandomSource(seed: 4)
        let z = 100
        let generator = Sequential(
            try Linear(z, 128, on: backend, random: random), LeakyReLU(0.2),
            try Linear(128, 256, on: backend, random: random), try BatchNorm1d(256, on: backend), LeakyReLU(0.2),
            try Linear(256, 512, on: backend, random: random), try BatchNorm1d(512, on: backend), LeakyReLU(0.2),
            try Linear(512, 1024, on: backend, random: random), try BatchNorm1d(1024, on: backend), LeakyReLU(0.2),
            try Linear(1024, 784, on: backend, random: random), Tanh())
        let discriminator = Sequential(
            try Linear(784, 512, on: backend, random: random), LeakyReLU(0.2),
            try Linear(512, 256, on: backend, random: random), LeakyReLU(0.2),
            try Linear(256, 1, on: backend, random: random), Sigmoid())
        let optimizerG = try Optimizer.adam(generator.namedParameters(), lr: 2e-4, betas: (0.5, 0.999))
        let optimizerD = try Optimizer.adam(discriminator.namedParameters(), lr: 2e-4, betas: (0.5, 0.999))
        let bce = ElementwiseLoss.bce(.mean)
        let real = try Tensor(zeros: [batch, 784], on: backend)
        let noise = try Tensor(zeros: [batch, z], on: backend)
        let ones = try Tensor([Float](repeating: 1, count: batch), shape: [batch, 1], on: backend)
        let zeros = try Tensor(zeros: [batch, 1], on: backend)
        var losses: [Float] = []
        for _ in 0..<rounds {
            // Discriminator: real -> 1, generated (detached) -> 0.
            try random.fillUniform(real, low: -1, high: 1)
            try random.fillNormal(noise)
            try discriminator.zeroGradients()
            let dReal = try bce.forward(try discriminator.forward(real, training: true), target: ones)
            _ = try discriminator.backward(try bce.backward())
            let fake = try generator.forward(noise, training: true)
            let dFake = try bce.forward(try discriminator.forward(fake, training: true), target: zeros)
            _ = try discriminator.backward(try bce.backward())
            try optimizerD.step()
            losses.append(try dReal.scalar() + (try dFake.scalar()))
            // Generator: generated -> 1 through the discriminator.
            try random.fillNormal(noise)
            try generator.zeroGradients()
            try discriminator.zeroGradients()
            let generated = try generator.forward(noise, training: true)
            let gLoss = try bce.forward(try discriminator.forward(generated, training: true), target: ones)
            _ = try generator.backward(try discriminator.backward(try bce.backward()))
            try optimizerG.step()
            losses.append(try gLoss.scalar())
        }
        let named = generator.namedParameters().map { ("G." + $0.name, $0.parameter.value) }
            + discriminator.namedParameters().map { ("D." + $0.name, $0.parameter.value) }
            + generator.namedBuffers().map { ("G." + $0.name, $0.tensor) }
        return Run(losses: losses, parameters: try named.map { ($0.0, try $0.1.toArray()) })
    }

    /// Report 004's MLP GAN: two rounds of one discriminator and one generator step (Adam,
    /// lr 2e-4, betas 0.5/0.999). Losses, and every parameter and running statistic, within
    /// 1e-4 (norm-relative; the biases that feed a BatchNorm aside). Measured: the losses
    /// agree to 1 ulp or exactly, the worst tensor is G.3.running_mean at 1.0e-5, the weights
    /// at most 5e-7; the excluded biases reach 1.1e-4 (G.8.bias).
    func testMLPGANStepsMatchCPU() throws {
        let cl = try OpenCLTestDevice.backend()
        let expected = try runGAN(on: CPUBackend(threads: 2), rounds: 2, batch: 32)
        let actual = try runGAN(on: cl, rounds: 2, batch: 32)
        assertScaled(actual.losses, expected.losses, tolerance: 1e-4, "GAN losses")
        for (a, e) in zip(actual.parameters, expected.parameters) where !Self.normalizedBiases.contains(e.0) {
            XCTAssertEqual(a.0, e.0)
            XCTAssertLessThanOrEqual(normRelativeError(a.1, e.1), 1e-4, "GAN \(e.0)")
        }
    }

    /// The zoo's dcgan on OpenCL: the D step that reuses the G step's pass through D (and
    /// replays D's batch-norm statistics on a device copy of the fakes' input) against D run
    /// on the fakes again, three steps: every loss term, parameter, gradient, running
    /// statistic and optimizer state bit for bit (the kernels add a gradient term to the
    /// gradient in one addition, so the order of D's two terms changes nothing).
    func testDCGANStepReusingTheGeneratorStepsPassMatchesThreePasses() throws {
        let cl = try OpenCLTestDevice.backend()
        var options = ModelCatalog.descriptor(.dcgan).defaults
        options.batchSize = 20
        let reusing = try GAN(options: options, backend: cl, random: RandomSource(seed: 5))
        let threePasses = try GAN(options: options, backend: cl, random: RandomSource(seed: 5))
        threePasses.allowsFakeJudgementReuse = false
        XCTAssertTrue(reusing.reusesFakeJudgement)
        let images = try Tensor(zeros: [20, 1, 28, 28], on: cl)
        let labels = [UInt8](repeating: 0, count: 20)
        for step in 0..<3 {
            try RandomSource(seed: UInt64(6 + step)).fillUniform(images, low: -1, high: 1)
            let a = try reusing.trainStep(images: images, labels: labels).map { try $0.scalar() }
            let b = try threePasses.trainStep(images: images, labels: labels).map { try $0.scalar() }
            XCTAssertEqual(a, b, "step \(step): loss terms")
        }
        let stateA = reusing.root.stateDict(), stateB = threePasses.root.stateDict()
        XCTAssertEqual(stateA.map(\.name), stateB.map(\.name))
        XCTAssertTrue(stateA.contains { $0.name == "discriminator.3.running_mean" })
        for (x, y) in zip(stateA, stateB) {
            XCTAssertEqual(try x.tensor.toArray(), try y.tensor.toArray(), x.name)
        }
        for (x, y) in zip(reusing.discriminator.parameters(), threePasses.discriminator.parameters()) {
            XCTAssertEqual(try x.gradient.toArray(), try y.gradient.toArray(), "D gradient \(x.value.shape)")
        }
        for ((_, a), (_, b)) in zip(reusing.optimizers, threePasses.optimizers) {
            for (x, y) in zip(a.namedState(), b.namedState()) {
                XCTAssertEqual(try x.tensor.toArray(), try y.tensor.toArray(), "optimizer \(x.name)")
            }
        }
    }
}

/// `||a - b|| / ||b||` in the Euclidean norm.
func normRelativeError(_ a: [Float], _ b: [Float]) -> Double {
    var difference = 0.0, reference = 0.0
    for (x, y) in zip(a, b) {
        difference += Double(x - y) * Double(x - y)
        reference += Double(y) * Double(y)
    }
    return reference == 0 ? difference.squareRoot() : (difference / reference).squareRoot()
}

