import Foundation
import LatentCore
import LatentCPU
import LatentData
import LatentModels
import LatentNN
import XCTest

/// A CPU backend that counts allocations and host transfers, forwarding every op.
/// (A requirement added to `Backend` needs one forwarding line here.)
final class CountingBackend: Backend, @unchecked Sendable {
    let inner: CPUBackend
    private let lock = NSLock()
    private var counts = (buffers: 0, reads: 0, writes: 0)

    init(_ inner: CPUBackend) { self.inner = inner }

    var snapshot: (buffers: Int, reads: Int, writes: Int) { lock.withLock { counts } }

    var name: String { inner.name }
    var deviceName: String { inner.deviceName }
    var reproducible: Bool { inner.reproducible }

    func makeBuffer(count: Int) throws -> any DeviceBuffer {
        lock.withLock { counts.buffers += 1 }
        return try inner.makeBuffer(count: count)
    }
    func write(_ values: UnsafeBufferPointer<Float>, to destination: BufferView) throws {
        lock.withLock { counts.writes += 1 }
        try inner.write(values, to: destination)
    }
    func read(_ source: BufferView, into values: UnsafeMutableBufferPointer<Float>) throws {
        lock.withLock { counts.reads += 1 }
        try inner.read(source, into: values)
    }
    func synchronize() throws { try inner.synchronize() }
    func gemm(transA: Transpose, transB: Transpose, m: Int, n: Int, k: Int, alpha: Float, a: BufferView, lda: Int,
              b: BufferView, ldb: Int, beta: Float, c: BufferView, ldc: Int) throws {
        try inner.gemm(transA: transA, transB: transB, m: m, n: n, k: k, alpha: alpha, a: a, lda: lda, b: b, ldb: ldb,
                       beta: beta, c: c, ldc: ldc)
    }
    func conv2dForward(_ geometry: ConvGeometry, input: BufferView, weight: BufferView, bias: BufferView?, output: BufferView) throws {
        try inner.conv2dForward(geometry, input: input, weight: weight, bias: bias, output: output)
    }
    func conv2dBackwardData(_ geometry: ConvGeometry, gradOutput: BufferView, weight: BufferView, bias: BufferView?,
                            gradInput: BufferView, accumulate: Bool) throws {
        try inner.conv2dBackwardData(geometry, gradOutput: gradOutput, weight: weight, bias: bias, gradInput: gradInput, accumulate: accumulate)
    }
    func conv2dBackwardWeights(_ geometry: ConvGeometry, input: BufferView, gradOutput: BufferView, gradWeight: BufferView,
                               accumulate: Bool) throws {
        try inner.conv2dBackwardWeights(geometry, input: input, gradOutput: gradOutput, gradWeight: gradWeight, accumulate: accumulate)
    }
    func batchNormForwardTraining(input: BufferView, output: BufferView, gamma: BufferView, beta: BufferView,
                                  runningMean: BufferView, runningVariance: BufferView, savedMean: BufferView,
                                  savedInverseStd: BufferView, batch: Int, channels: Int, spatial: Int,
                                  momentum: Float, epsilon: Float) throws {
        try inner.batchNormForwardTraining(input: input, output: output, gamma: gamma, beta: beta, runningMean: runningMean,
                                           runningVariance: runningVariance, savedMean: savedMean, savedInverseStd: savedInverseStd,
                                           batch: batch, channels: channels, spatial: spatial, momentum: momentum, epsilon: epsilon)
    }
    func batchNormForwardInference(input: BufferView, output: BufferView, gamma: BufferView, beta: BufferView,
                                   runningMean: BufferView, runningVariance: BufferView, batch: Int, channels: Int,
                                   spatial: Int, epsilon: Float) throws {
        try inner.batchNormForwardInference(input: input, output: output, gamma: gamma, beta: beta, runningMean: runningMean,
                                            runningVariance: runningVariance, batch: batch, channels: channels,
                                            spatial: spatial, epsilon: epsilon)
    }
    func batchNormBackward(gradOutput: BufferView, input: BufferView, gamma: BufferView, savedMean: BufferView,
                           savedInverseStd: BufferView, gradInput: BufferView, gradGamma: BufferView, gradBeta: BufferView,
                           batch: Int, channels: Int, spatial: Int, accumulate: Bool) throws {
        try inner.batchNormBackward(gradOutput: gradOutput, input: input, gamma: gamma, savedMean: savedMean,
                                    savedInverseStd: savedInverseStd, gradInput: gradInput, gradGamma: gradGamma,
                                    gradBeta: gradBeta, batch: batch, channels: channels, spatial: spatial, accumulate: accumulate)
    }
    func fill(_ destination: BufferView, value: Float) throws { try inner.fill(destination, value: value) }
    func copy(_ source: BufferView, to destination: BufferView) throws { try inner.copy(source, to: destination) }
    func copyBlocks(_ source: BufferView, sourceStride: Int, to destination: BufferView, destinationStride: Int,
                    blockLength: Int, blockCount: Int) throws {
        try inner.copyBlocks(source, sourceStride: sourceStride, to: destination, destinationStride: destinationStride,
                             blockLength: blockLength, blockCount: blockCount)
    }
    func axpby(alpha: Float, x: BufferView, beta: Float, y: BufferView) throws { try inner.axpby(alpha: alpha, x: x, beta: beta, y: y) }
    func multiply(_ a: BufferView, _ b: BufferView, output: BufferView) throws { try inner.multiply(a, b, output: output) }
    func biasActivationForward(input: BufferView, bias: BufferView?, activation: Activation, output: BufferView,
                               channels: Int, spatial: Int) throws {
        try inner.biasActivationForward(input: input, bias: bias, activation: activation, output: output, channels: channels, spatial: spatial)
    }
    func activationBackward(_ activation: Activation, input: BufferView, output: BufferView, gradOutput: BufferView,
                            gradInput: BufferView, accumulate: Bool) throws {
        try inner.activationBackward(activation, input: input, output: output, gradOutput: gradOutput, gradInput: gradInput,
                                     accumulate: accumulate)
    }
    func reparameterize(mean: BufferView, parameter: BufferView, noise: BufferView, output: BufferView,
                        parameterization: GaussianParameterization) throws {
        try inner.reparameterize(mean: mean, parameter: parameter, noise: noise, output: output, parameterization: parameterization)
    }
    func reparameterizeBackward(parameter: BufferView, noise: BufferView, gradOutput: BufferView, gradMean: BufferView,
                                gradParameter: BufferView, parameterization: GaussianParameterization, accumulate: Bool) throws {
        try inner.reparameterizeBackward(parameter: parameter, noise: noise, gradOutput: gradOutput, gradMean: gradMean,
                                         gradParameter: gradParameter, parameterization: parameterization, accumulate: accumulate)
    }
    func dropoutForward(input: BufferView, output: BufferView, mask: BufferView, probability: Float, seed: UInt64,
                        counter: UInt64) throws {
        try inner.dropoutForward(input: input, output: output, mask: mask, probability: probability, seed: seed, counter: counter)
    }
    func sum(_ x: BufferView, output: BufferView) throws { try inner.sum(x, output: output) }
    func channelSum(input: BufferView, output: BufferView, batch: Int, channels: Int, spatial: Int, accumulate: Bool) throws {
        try inner.channelSum(input: input, output: output, batch: batch, channels: channels, spatial: spatial, accumulate: accumulate)
    }
    func lossForward(_ kind: LossKind, prediction: BufferView, target: BufferView, output: BufferView, reduction: Reduction) throws {
        try inner.lossForward(kind, prediction: prediction, target: target, output: output, reduction: reduction)
    }
    func lossBackward(_ kind: LossKind, prediction: BufferView, target: BufferView, gradPrediction: BufferView,
                      reduction: Reduction, scale: Float, accumulate: Bool) throws {
        try inner.lossBackward(kind, prediction: prediction, target: target, gradPrediction: gradPrediction, reduction: reduction,
                               scale: scale, accumulate: accumulate)
    }
    func klDivergence(mean: BufferView, parameter: BufferView, parameterization: GaussianParameterization, output: BufferView) throws {
        try inner.klDivergence(mean: mean, parameter: parameter, parameterization: parameterization, output: output)
    }
    func klDivergenceBackward(mean: BufferView, parameter: BufferView, parameterization: GaussianParameterization, scale: Float,
                              gradMean: BufferView, gradParameter: BufferView, accumulate: Bool) throws {
        try inner.klDivergenceBackward(mean: mean, parameter: parameter, parameterization: parameterization, scale: scale,
                                       gradMean: gradMean, gradParameter: gradParameter, accumulate: accumulate)
    }
    func countNonFinite(_ x: BufferView, output: BufferView) throws { try inner.countNonFinite(x, output: output) }
    func nearestCodebookEntry(input: BufferView, codebook: BufferView, indices: BufferView, rows: Int, entries: Int, width: Int) throws {
        try inner.nearestCodebookEntry(input: input, codebook: codebook, indices: indices, rows: rows, entries: entries, width: width)
    }
    func gatherRows(table: BufferView, indices: BufferView, output: BufferView, rows: Int, width: Int) throws {
        try inner.gatherRows(table: table, indices: indices, output: output, rows: rows, width: width)
    }
    func scatterAddRows(gradOutput: BufferView, indices: BufferView, gradTable: BufferView, rows: Int, width: Int) throws {
        try inner.scatterAddRows(gradOutput: gradOutput, indices: indices, gradTable: gradTable, rows: rows, width: width)
    }
    func optimizerStep(_ rule: OptimizerRule, parameter: BufferView, gradient: BufferView, state: [BufferView], step: Int) throws {
        try inner.optimizerStep(rule, parameter: parameter, gradient: gradient, state: state, step: step)
    }
    func fillUniform(_ destination: BufferView, low: Float, high: Float, seed: UInt64, counter: UInt64) throws {
        try inner.fillUniform(destination, low: low, high: high, seed: seed, counter: counter)
    }
    func fillNormal(_ destination: BufferView, mean: Float, std: Float, seed: UInt64, counter: UInt64) throws {
        try inner.fillNormal(destination, mean: mean, std: std, seed: seed, counter: counter)
    }
    func fillBernoulli(probabilities: BufferView, output: BufferView, seed: UInt64, counter: UInt64) throws {
        try inner.fillBernoulli(probabilities: probabilities, output: output, seed: seed, counter: counter)
    }
}

/// After the first step, a training step allocates no device memory and reads nothing back
/// to the host; only the models that turn labels into codes on the host write per step.
final class StepBudgetTests: XCTestCase {
    func testTrainingStepsAllocateNothingAndReadNothingAfterTheFirst() throws {
        let backend = CountingBackend(Zoo.backend)
        let writesPerStep: [ModelKind: Int] = [.cvae: 1, .designedLatent: 1, .classifier: 1]
        for kind in ModelKind.allCases {
            let options = Zoo.options(kind)
            let model = try ModelCatalog.makeModel(options, backend: backend, random: RandomSource(seed: 3))
            if let needy = model as? NeedsTrainingData { try needy.prepare(with: try Zoo.dataset(count: 32, seed: 1)) }
            let (full, labels) = try Zoo.batch(for: model, count: 4, seed: 2)
            let images = try Tensor(try full.toArray(), shape: full.shape, on: backend)
            // A full batch, a short last batch, and the full size again: each allocates once.
            let short = try Tensor(Array(try images.toArray()[0..<(3 * 784)]), shape: [3, 1, 28, 28], on: backend)
            _ = try model.trainStep(images: images, labels: labels)
            _ = try model.trainStep(images: short, labels: Array(labels[0..<3]))
            _ = try model.trainStep(images: images, labels: labels)
            let before = backend.snapshot
            for _ in 0..<2 { _ = try model.trainStep(images: images, labels: labels) }
            let after = backend.snapshot
            XCTAssertEqual(after.buffers - before.buffers, 0, "\(kind): device allocations in steady-state steps")
            XCTAssertEqual(after.reads - before.reads, 0, "\(kind): host reads in training steps")
            XCTAssertEqual(after.writes - before.writes, 2 * (writesPerStep[kind] ?? 0), "\(kind): host writes per step")
        }
    }
}
