import COpenCL
import LatentCore

/// Reproducible mode (`reproducible: true`, `latent … --reproducible`): the ops that sum run
/// `Kernels/reproducible.cl`, which accumulates in double in the CPU backend's order
/// (`CPUBackend+Reproducible.swift`), so both backends give the same floats. Each function
/// is called after its op's checks and takes the lock itself.
extension OpenCLBackend {
    /// A convolution's geometry as the kernels' `GEOMETRY` arguments.
    private func geometryArguments(_ g: ConvGeometry) -> [Argument] {
        [g.batch, g.inChannels, g.inHeight, g.inWidth, g.outChannels, g.kernelHeight, g.kernelWidth,
         g.strideHeight, g.strideWidth, g.padHeight, g.padWidth, g.outHeight, g.outWidth].map { .int($0) }
    }

    /// Enqueues `kernel` over `items` work-items; the arguments are made under the lock (placeholders).
    private func run(_ kernel: String, items: Int, _ arguments: () throws -> [Argument]) throws {
        try withLock { try enqueue(.reproducible, kernel, global: [items], try arguments()) }
    }

    /// CPU-class devices take the `_lanes` kernels: eight outputs per work-item, the same sums.
    private var lanes: Bool { config.gemm == .block }

    func reproducibleGemm(transA: Transpose, transB: Transpose, m: Int, n: Int, k: Int, alpha: Float,
                          a: BufferView, lda: Int, b: BufferView, ldb: Int, beta: Float, c: BufferView, ldc: Int) throws {
        try withLock {
            if lanes {
                let npad = (n + 7) / 8 * 8
                let (floats, overflow) = k.multipliedReportingOverflow(by: npad)
                guard !overflow else { throw LatentError.invalidArgument("reproducible gemm: sizes overflow") }
                let packed = try scratchBuffer(.packB, floats: Swift.max(1, floats))
                try enqueue(.reproducible, "repro_gemm_pack_b", global: [npad, k], [
                    .int(transB == .none ? 0 : 1), .int(n), .int(k), .view(b), .int(ldb), .int(npad), .mem(packed),
                ])
                try enqueue(.reproducible, "repro_gemm_lanes", global: [npad / 8, m], [
                    .int(transA == .none ? 0 : 1), .int(m), .int(n), .int(k), .float(alpha), .view(a), .int(lda),
                    .mem(packed), .int(npad), .float(beta), .view(c), .int(ldc),
                ])
                return
            }
            try enqueue(.reproducible, "repro_gemm", global: [n, m], [
                .int(transA == .none ? 0 : 1), .int(transB == .none ? 0 : 1), .int(m), .int(n), .int(k), .float(alpha),
                .view(a), .int(lda), .view(b), .int(ldb), .float(beta), .view(c), .int(ldc),
            ])
        }
    }

    /// `groups` x `items` rows of `length` floats of `source` into scratch as `groups` x `length`
    /// rows of `items` rounded up to 8 (zeros after), for a `_lanes` kernel; returns the copy
    /// and its row length (call with the lock held).
    private func lanesLast(_ source: BufferView, groups: Int, items: Int, length: Int) throws -> (cl_mem, Int) {
        let padded = (items + 7) / 8 * 8
        let (floats, overflow) = (groups * length).multipliedReportingOverflow(by: padded)
        guard !overflow else { throw LatentError.invalidArgument("reproducible convolution: sizes overflow") }
        let copy = try scratchBuffer(.layoutIn, floats: floats)
        try enqueue(.reproducible, "repro_lanes_last", global: [length, padded, groups], [
            .view(source), .int(items), .int(length), .int(padded), .mem(copy),
        ])
        return (copy, padded)
    }

    func reproducibleConvForward(_ g: ConvGeometry, input: BufferView, weight: BufferView, bias: BufferView?,
                                 output: BufferView) throws {
        guard lanes else {
            return try run("repro_conv_forward", items: g.outputCount) { self.geometryArguments(g) + [
                .view(input), .view(weight), .optionalView(bias, placeholder: try self.placeholder()), .view(output),
            ] }
        }
        try withLock {
            let (copy, padded) = try lanesLast(input, groups: 1, items: g.batch, length: g.inChannels * g.inHeight * g.inWidth)
            try enqueue(.reproducible, "repro_conv_forward_lanes", global: [g.outChannels * g.outHeight * g.outWidth * padded / 8],
                        geometryArguments(g) + [
                .mem(copy), .int(padded), .view(weight), .optionalView(bias, placeholder: try placeholder()), .view(output),
            ])
        }
    }

    func reproducibleConvBackwardData(_ g: ConvGeometry, gradOutput: BufferView, weight: BufferView, bias: BufferView?,
                                      gradInput: BufferView, accumulate: Bool) throws {
        guard lanes else {
            return try run("repro_conv_backward_data", items: g.inputCount) { self.geometryArguments(g) + [
                .view(gradOutput), .view(weight), .optionalView(bias, placeholder: try self.placeholder()),
                .view(gradInput), .int(accumulate ? 1 : 0),
            ] }
        }
        try withLock {
            let (copy, padded) = try lanesLast(gradOutput, groups: 1, items: g.batch, length: g.outChannels * g.outHeight * g.outWidth)
            try enqueue(.reproducible, "repro_conv_backward_data_lanes", global: [g.inChannels * g.inHeight * g.inWidth * padded / 8],
                        geometryArguments(g) + [
                .mem(copy), .int(padded), .view(weight), .optionalView(bias, placeholder: try placeholder()),
                .view(gradInput), .int(accumulate ? 1 : 0),
            ])
        }
    }

    func reproducibleConvBackwardWeights(_ g: ConvGeometry, input: BufferView, gradOutput: BufferView,
                                         gradWeight: BufferView, accumulate: Bool) throws {
        guard lanes else {
            return try run("repro_conv_backward_weights", items: g.weightCount) { self.geometryArguments(g) + [
                .view(input), .view(gradOutput), .view(gradWeight), .int(accumulate ? 1 : 0),
            ] }
        }
        try withLock {
            let (copy, padded) = try lanesLast(input, groups: g.batch, items: g.inChannels, length: g.inHeight * g.inWidth)
            try enqueue(.reproducible, "repro_conv_backward_weights_lanes",
                        global: [g.outChannels * g.kernelHeight * g.kernelWidth * padded / 8], geometryArguments(g) + [
                .mem(copy), .int(padded), .view(gradOutput), .view(gradWeight), .int(accumulate ? 1 : 0),
            ])
        }
    }

    func reproducibleBatchNormTraining(input: BufferView, output: BufferView, gamma: BufferView, beta: BufferView,
                                       runningMean: BufferView, runningVariance: BufferView,
                                       savedMean: BufferView, savedInverseStd: BufferView,
                                       batch: Int, channels: Int, spatial: Int, momentum: Double, epsilon: Double) throws {
        try run("repro_batchnorm_training", items: channels) { [
            .view(input), .view(output), .view(gamma), .view(beta), .view(runningMean), .view(runningVariance),
            .view(savedMean), .view(savedInverseStd), .int(batch), .int(channels), .int(spatial),
            .ulong(momentum.bitPattern), .ulong(epsilon.bitPattern),
        ] }
    }

    func reproducibleBatchNormInference(input: BufferView, output: BufferView, gamma: BufferView, beta: BufferView,
                                        runningMean: BufferView, runningVariance: BufferView,
                                        batch: Int, channels: Int, spatial: Int, epsilon: Double) throws {
        try run("repro_batchnorm_inference", items: input.count) { [
            .view(input), .view(output), .view(gamma), .view(beta), .view(runningMean), .view(runningVariance),
            .int(batch), .int(channels), .int(spatial), .ulong(epsilon.bitPattern),
        ] }
    }

    func reproducibleBatchNormBackward(gradOutput: BufferView, input: BufferView, gamma: BufferView,
                                       savedMean: BufferView, savedInverseStd: BufferView,
                                       gradInput: BufferView, gradGamma: BufferView, gradBeta: BufferView,
                                       batch: Int, channels: Int, spatial: Int, accumulate: Bool) throws {
        try run("repro_batchnorm_backward", items: channels) { [
            .view(gradOutput), .view(input), .view(gamma), .view(savedMean), .view(savedInverseStd),
            .view(gradInput), .view(gradGamma), .view(gradBeta), .int(batch), .int(channels), .int(spatial),
            .int(accumulate ? 1 : 0),
        ] }
    }

    func reproducibleChannelSum(input: BufferView, output: BufferView, batch: Int, channels: Int, spatial: Int,
                                accumulate: Bool) throws {
        try run("repro_channel_sum", items: channels) { [
            .view(input), .int(batch), .int(channels), .int(spatial), .view(output), .int(accumulate ? 1 : 0),
        ] }
    }

    func reproducibleSum(_ x: BufferView, output: BufferView) throws {
        try run("repro_sum", items: 1) { [.view(x), .int(x.count), .view(output)] }
    }

    func reproducibleLossForward(_ kind: LossKind, prediction: BufferView, target: BufferView, output: BufferView,
                                 reduction: Reduction) throws {
        try run("repro_loss_forward", items: 1) { [
            .int(Self.reproducibleLossCode(kind)), .view(prediction), .view(target), .int(prediction.count),
            .int(reduction == .mean ? 1 : 0), .view(output),
        ] }
    }

    func reproducibleLossBackward(_ kind: LossKind, prediction: BufferView, target: BufferView, gradPrediction: BufferView,
                                  reduction: Reduction, scale: Float, accumulate: Bool) throws {
        try run("repro_loss_backward", items: prediction.count) { [
            .int(Self.reproducibleLossCode(kind)), .view(prediction), .view(target), .view(gradPrediction), .float(scale),
            .int(reduction == .mean ? 1 : 0), .int(accumulate ? 1 : 0), .int(prediction.count),
        ] }
    }

    func reproducibleKLDivergence(mean: BufferView, parameter: BufferView, parameterization: GaussianParameterization,
                                  output: BufferView) throws {
        let code: Int
        switch parameterization {
        case .logVariance: code = 0
        case .logStd: code = 1
        case .std: code = 2
        }
        try run("repro_kl_forward", items: 1) { [.int(code), .view(mean), .view(parameter), .int(mean.count), .view(output)] }
    }

    func reproducibleAxpby(alpha: Float, x: BufferView, beta: Float, y: BufferView) throws {
        try run("repro_axpby", items: x.count) { [.float(alpha), .view(x), .float(beta), .view(y), .int(x.count)] }
    }

    func reproducibleNearestEntry(input: BufferView, codebook: BufferView, indices: BufferView,
                                  rows: Int, entries: Int, width: Int) throws {
        try run("repro_nearest_codebook", items: rows) { [
            .view(input), .view(codebook), .view(indices), .int(rows), .int(entries), .int(width),
        ] }
    }

    /// `LossKind` as reproducible.cl's `repro_loss_term` numbers it.
    private static func reproducibleLossCode(_ kind: LossKind) -> Int {
        switch kind {
        case .bce: return 0
        case .bceWithLogits: return 1
        case .mse: return 2
        case .l1: return 3
        }
    }
}
