import Foundation
import LatentCore

/// A backend that runs every op on another one and records how long each took, by op and
/// shape (`latent bench train --profile`): where a training step's time goes, layer by
/// layer, on either backend.
///
/// Ops run on the calling thread (the CPU backend's workers inside an op are part of its
/// time). An asynchronous backend (OpenCL) only enqueues, so with `synchronizeEachOp` every
/// op is followed by `synchronize` and its time is the device's plus the launch; that
/// removes the overlap of host and device, so such a profiled step is slower than a plain one.
public final class ProfilingBackend: Backend, @unchecked Sendable {
    public let inner: any Backend
    public let synchronizeEachOp: Bool
    /// Only ops run while this is true are recorded (warm-up steps are not).
    public var isRecording = false

    public struct Entry: Sendable {
        public var op: String
        public var shape: String
        public var calls: Int
        public var seconds: Double
    }

    private var entries: [String: Entry] = [:]
    private let lock = NSLock()
    private let clock = ContinuousClock()

    public init(_ inner: any Backend, synchronizeEachOp: Bool) {
        self.inner = inner
        self.synchronizeEachOp = synchronizeEachOp
    }

    /// What was recorded, the costliest first.
    public var recorded: [Entry] {
        lock.lock()
        defer { lock.unlock() }
        return entries.values.sorted { $0.seconds > $1.seconds }
    }

    public func reset() {
        lock.lock()
        defer { lock.unlock() }
        entries = [:]
    }

    @inline(__always)
    private func timed<T>(_ op: String, _ shape: @autoclosure () -> String, _ body: () throws -> T) throws -> T {
        guard isRecording else { return try body() }
        let start = clock.now
        let result = try body()
        if synchronizeEachOp { try inner.synchronize() }
        let seconds = Timing.seconds(clock.now - start)
        let label = shape()
        let key = op + "\u{0}" + label
        lock.lock()
        var entry = entries[key] ?? Entry(op: op, shape: label, calls: 0, seconds: 0)
        entry.calls += 1
        entry.seconds += seconds
        entries[key] = entry
        lock.unlock()
        return result
    }

    private static func conv(_ g: ConvGeometry) -> String {
        "\(g.batch)x\(g.inChannels)x\(g.inHeight)x\(g.inWidth) -> \(g.outChannels)x\(g.outHeight)x\(g.outWidth), k\(g.kernelHeight)x\(g.kernelWidth) s\(g.strideHeight)"
    }

    private static func name(_ rule: OptimizerRule) -> String {
        String(String(describing: rule).prefix { $0 != "(" })
    }

    // MARK: Backend

    public var name: String { inner.name }
    public var deviceName: String { inner.deviceName }
    public var reproducible: Bool { inner.reproducible }

    public func makeBuffer(count: Int) throws -> any DeviceBuffer { try inner.makeBuffer(count: count) }

    public func write(_ values: UnsafeBufferPointer<Float>, to destination: BufferView) throws {
        try timed("write", "\(values.count)") { try inner.write(values, to: destination) }
    }

    public func read(_ source: BufferView, into values: UnsafeMutableBufferPointer<Float>) throws {
        try timed("read", "\(source.count)") { try inner.read(source, into: values) }
    }

    public func synchronize() throws {
        try timed("synchronize", "") { try inner.synchronize() }
    }

    public func gemm(transA: Transpose, transB: Transpose, m: Int, n: Int, k: Int,
                     alpha: Float, a: BufferView, lda: Int, b: BufferView, ldb: Int,
                     beta: Float, c: BufferView, ldc: Int) throws {
        let ops = (transA == .none ? "N" : "T") + (transB == .none ? "N" : "T")
        try timed("gemm", "\(m)x\(n)x\(k) \(ops)\(beta == 0 ? "" : " beta \(beta)")") {
            try inner.gemm(transA: transA, transB: transB, m: m, n: n, k: k, alpha: alpha, a: a, lda: lda, b: b, ldb: ldb,
                           beta: beta, c: c, ldc: ldc)
        }
    }

    public func conv2dForward(_ geometry: ConvGeometry, input: BufferView, weight: BufferView,
                              bias: BufferView?, output: BufferView) throws {
        try timed("conv2dForward", Self.conv(geometry)) {
            try inner.conv2dForward(geometry, input: input, weight: weight, bias: bias, output: output)
        }
    }

    public func conv2dBackwardData(_ geometry: ConvGeometry, gradOutput: BufferView, weight: BufferView,
                                   bias: BufferView?, gradInput: BufferView, accumulate: Bool) throws {
        try timed("conv2dBackwardData", Self.conv(geometry)) {
            try inner.conv2dBackwardData(geometry, gradOutput: gradOutput, weight: weight, bias: bias,
                                         gradInput: gradInput, accumulate: accumulate)
        }
    }

    public func conv2dBackwardWeights(_ geometry: ConvGeometry, input: BufferView, gradOutput: BufferView,
                                      gradWeight: BufferView, accumulate: Bool) throws {
        try timed("conv2dBackwardWeights", Self.conv(geometry)) {
            try inner.conv2dBackwardWeights(geometry, input: input, gradOutput: gradOutput, gradWeight: gradWeight,
                                            accumulate: accumulate)
        }
    }

    public func batchNormForwardTraining(input: BufferView, output: BufferView, gamma: BufferView, beta: BufferView,
                                         runningMean: BufferView, runningVariance: BufferView,
                                         savedMean: BufferView, savedInverseStd: BufferView,
                                         batch: Int, channels: Int, spatial: Int, momentum: Float, epsilon: Float) throws {
        try timed("batchNormForwardTraining", "\(batch)x\(channels)x\(spatial)") {
            try inner.batchNormForwardTraining(input: input, output: output, gamma: gamma, beta: beta,
                                               runningMean: runningMean, runningVariance: runningVariance,
                                               savedMean: savedMean, savedInverseStd: savedInverseStd,
                                               batch: batch, channels: channels, spatial: spatial, momentum: momentum, epsilon: epsilon)
        }
    }

    public func batchNormForwardInference(input: BufferView, output: BufferView, gamma: BufferView, beta: BufferView,
                                          runningMean: BufferView, runningVariance: BufferView,
                                          batch: Int, channels: Int, spatial: Int, epsilon: Float) throws {
        try timed("batchNormForwardInference", "\(batch)x\(channels)x\(spatial)") {
            try inner.batchNormForwardInference(input: input, output: output, gamma: gamma, beta: beta,
                                                runningMean: runningMean, runningVariance: runningVariance,
                                                batch: batch, channels: channels, spatial: spatial, epsilon: epsilon)
        }
    }

    public func batchNormBackward(gradOutput: BufferView, input: BufferView, gamma: BufferView,
                                  savedMean: BufferView, savedInverseStd: BufferView,
                                  gradInput: BufferView, gradGamma: BufferView, gradBeta: BufferView,
                                  batch: Int, channels: Int, spatial: Int, accumulate: Bool) throws {
        try timed("batchNormBackward", "\(batch)x\(channels)x\(spatial)") {
            try inner.batchNormBackward(gradOutput: gradOutput, input: input, gamma: gamma,
                                        savedMean: savedMean, savedInverseStd: savedInverseStd,
                                        gradInput: gradInput, gradGamma: gradGamma, gradBeta: gradBeta,
                                        batch: batch, channels: channels, spatial: spatial, accumulate: accumulate)
        }
    }

    public func fill(_ destination: BufferView, value: Float) throws {
        try timed("fill", "\(destination.count)") { try inner.fill(destination, value: value) }
    }

    public func copy(_ source: BufferView, to destination: BufferView) throws {
        try timed("copy", "\(source.count)") { try inner.copy(source, to: destination) }
    }

    public func copyBlocks(_ source: BufferView, sourceStride: Int, to destination: BufferView, destinationStride: Int,
                           blockLength: Int, blockCount: Int) throws {
        try timed("copyBlocks", "\(blockCount)x\(blockLength)") {
            try inner.copyBlocks(source, sourceStride: sourceStride, to: destination, destinationStride: destinationStride,
                                 blockLength: blockLength, blockCount: blockCount)
        }
    }

    public func axpby(alpha: Float, x: BufferView, beta: Float, y: BufferView) throws {
        try timed("axpby", "\(x.count)") { try inner.axpby(alpha: alpha, x: x, beta: beta, y: y) }
    }

    public func multiply(_ a: BufferView, _ b: BufferView, output: BufferView) throws {
        try timed("multiply", "\(a.count)") { try inner.multiply(a, b, output: output) }
    }

    public func biasActivationForward(input: BufferView, bias: BufferView?, activation: Activation, output: BufferView,
                                      channels: Int, spatial: Int) throws {
        try timed("biasActivationForward", "\(activation)\(bias == nil ? "" : " + bias"), \(input.count)") {
            try inner.biasActivationForward(input: input, bias: bias, activation: activation, output: output,
                                            channels: channels, spatial: spatial)
        }
    }

    public func activationBackward(_ activation: Activation, input: BufferView, output: BufferView,
                                   gradOutput: BufferView, gradInput: BufferView, accumulate: Bool) throws {
        try timed("activationBackward", "\(activation), \(input.count)") {
            try inner.activationBackward(activation, input: input, output: output, gradOutput: gradOutput,
                                         gradInput: gradInput, accumulate: accumulate)
        }
    }

    public func reparameterize(mean: BufferView, parameter: BufferView, noise: BufferView, output: BufferView,
                               parameterization: GaussianParameterization) throws {
        try timed("reparameterize", "\(mean.count)") {
            try inner.reparameterize(mean: mean, parameter: parameter, noise: noise, output: output, parameterization: parameterization)
        }
    }

    public func reparameterizeBackward(parameter: BufferView, noise: BufferView, gradOutput: BufferView,
                                       gradMean: BufferView, gradParameter: BufferView,
                                       parameterization: GaussianParameterization, accumulate: Bool) throws {
        try timed("reparameterizeBackward", "\(parameter.count)") {
            try inner.reparameterizeBackward(parameter: parameter, noise: noise, gradOutput: gradOutput, gradMean: gradMean,
                                             gradParameter: gradParameter, parameterization: parameterization, accumulate: accumulate)
        }
    }

    public func dropoutForward(input: BufferView, output: BufferView, mask: BufferView, probability: Float,
                               seed: UInt64, counter: UInt64) throws {
        try timed("dropoutForward", "\(input.count)") {
            try inner.dropoutForward(input: input, output: output, mask: mask, probability: probability, seed: seed, counter: counter)
        }
    }

    public func sum(_ x: BufferView, output: BufferView) throws {
        try timed("sum", "\(x.count)") { try inner.sum(x, output: output) }
    }

    public func channelSum(input: BufferView, output: BufferView, batch: Int, channels: Int, spatial: Int, accumulate: Bool) throws {
        try timed("channelSum", "\(batch)x\(channels)x\(spatial)") {
            try inner.channelSum(input: input, output: output, batch: batch, channels: channels, spatial: spatial, accumulate: accumulate)
        }
    }

    public func lossForward(_ kind: LossKind, prediction: BufferView, target: BufferView, output: BufferView,
                            reduction: Reduction) throws {
        try timed("lossForward", "\(kind.rawValue), \(prediction.count)") {
            try inner.lossForward(kind, prediction: prediction, target: target, output: output, reduction: reduction)
        }
    }

    public func lossBackward(_ kind: LossKind, prediction: BufferView, target: BufferView, gradPrediction: BufferView,
                             reduction: Reduction, scale: Float, accumulate: Bool) throws {
        try timed("lossBackward", "\(kind.rawValue), \(prediction.count)") {
            try inner.lossBackward(kind, prediction: prediction, target: target, gradPrediction: gradPrediction,
                                   reduction: reduction, scale: scale, accumulate: accumulate)
        }
    }

    public func klDivergence(mean: BufferView, parameter: BufferView, parameterization: GaussianParameterization,
                             output: BufferView) throws {
        try timed("klDivergence", "\(mean.count)") {
            try inner.klDivergence(mean: mean, parameter: parameter, parameterization: parameterization, output: output)
        }
    }

    public func klDivergenceBackward(mean: BufferView, parameter: BufferView, parameterization: GaussianParameterization,
                                     scale: Float, gradMean: BufferView, gradParameter: BufferView, accumulate: Bool) throws {
        try timed("klDivergenceBackward", "\(mean.count)") {
            try inner.klDivergenceBackward(mean: mean, parameter: parameter, parameterization: parameterization, scale: scale,
                                           gradMean: gradMean, gradParameter: gradParameter, accumulate: accumulate)
        }
    }

    public func countNonFinite(_ x: BufferView, output: BufferView) throws {
        try timed("countNonFinite", "\(x.count)") { try inner.countNonFinite(x, output: output) }
    }

    public func nearestCodebookEntry(input: BufferView, codebook: BufferView, indices: BufferView,
                                     rows: Int, entries: Int, width: Int) throws {
        try timed("nearestCodebookEntry", "\(rows)x\(entries)x\(width)") {
            try inner.nearestCodebookEntry(input: input, codebook: codebook, indices: indices, rows: rows, entries: entries, width: width)
        }
    }

    public func gatherRows(table: BufferView, indices: BufferView, output: BufferView, rows: Int, width: Int) throws {
        try timed("gatherRows", "\(rows)x\(width)") {
            try inner.gatherRows(table: table, indices: indices, output: output, rows: rows, width: width)
        }
    }

    public func scatterAddRows(gradOutput: BufferView, indices: BufferView, gradTable: BufferView, rows: Int, width: Int) throws {
        try timed("scatterAddRows", "\(rows)x\(width)") {
            try inner.scatterAddRows(gradOutput: gradOutput, indices: indices, gradTable: gradTable, rows: rows, width: width)
        }
    }

    public func optimizerStep(_ rule: OptimizerRule, parameter: BufferView, gradient: BufferView,
                              state: [BufferView], step: Int) throws {
        try timed("optimizerStep", Self.name(rule)) {
            try inner.optimizerStep(rule, parameter: parameter, gradient: gradient, state: state, step: step)
        }
    }

    public func fillUniform(_ destination: BufferView, low: Float, high: Float, seed: UInt64, counter: UInt64) throws {
        try timed("fillUniform", "\(destination.count)") {
            try inner.fillUniform(destination, low: low, high: high, seed: seed, counter: counter)
        }
    }

    public func fillNormal(_ destination: BufferView, mean: Float, std: Float, seed: UInt64, counter: UInt64) throws {
        try timed("fillNormal", "\(destination.count)") {
            try inner.fillNormal(destination, mean: mean, std: std, seed: seed, counter: counter)
        }
    }

    public func fillBernoulli(probabilities: BufferView, output: BufferView, seed: UInt64, counter: UInt64) throws {
        try timed("fillBernoulli", "\(probabilities.count)") {
            try inner.fillBernoulli(probabilities: probabilities, output: output, seed: seed, counter: counter)
        }
    }
}
