import COpenCL
import LatentCore

/// Convolutions in the batch-inner layout (conv.cl, `bi_*` kernels), the CPU backend's
/// scheme (CPUConvBatchInner.swift) on OpenCL: images transposed so that 16 images at one
/// position are one `float16`, then implicit GEMMs that read their B rows in place. On a
/// CPU-class device (PoCL) this replaces the im2col packing and col2im passes, which took
/// as long as the GEMMs themselves; GPUs keep im2col + the tiled SGEMM.
extension OpenCLBackend {
    func usesBatchInner(_ g: ConvGeometry) -> Bool {
        switch config.convolution {
        case .im2col: return false
        case .batchInner: return true
        case .automatic, .winograd: return config.gemm == .block && g.batch >= 16
        }
    }

    func biPack(_ source: BufferView, _ layout: BatchInnerLayout, into destination: cl_mem) throws {
        let l = layout
        if l.paddedHeight > l.height || l.paddedWidth > l.width {
            try enqueue(.conv, "bi_zero_pads", global: [l.paddedWidth, l.paddedHeight, l.channels * l.lanes / 16], [
                .int(l.height), .int(l.width), .int(l.padTop), .int(l.padLeft), .int(l.paddedHeight), .int(l.paddedWidth),
                .int(l.lanes), .mem(destination),
            ])
        }
        try enqueue(.conv, "bi_pack_tiles", global: [(l.height * l.width + 15) / 16, l.lanes / 16, l.channels], [
            .view(source), .int(l.batch), .int(l.channels), .int(l.height), .int(l.width), .int(l.padTop), .int(l.padLeft),
            .int(l.paddedHeight), .int(l.paddedWidth), .int(l.lanes), .mem(destination),
        ])
    }

    func biUnpack(_ source: cl_mem, _ layout: BatchInnerLayout, into destination: BufferView,
                          bias: BufferView?, accumulate: Bool) throws {
        let l = layout
        try enqueue(.conv, "bi_unpack_tiles", global: [(l.height * l.width + 15) / 16, (l.batch + 15) / 16, l.channels], [
            .mem(source), .int(l.batch), .int(l.channels), .int(l.height), .int(l.width), .int(l.padTop), .int(l.padLeft),
            .int(l.paddedHeight), .int(l.paddedWidth), .int(l.lanes), .view(destination),
            .optionalView(bias, placeholder: try placeholder()), .int(accumulate ? 1 : 0),
        ])
    }

    /// Forward (lock held).
    func batchInnerForward(_ g: ConvGeometry, input: BufferView, weight: BufferView, bias: BufferView?,
                           output: BufferView) throws {
        let inputLayout = BatchInnerLayout.forwardInput(g)
        let outputLayout = BatchInnerLayout.output(g)
        let rows = config.gemmRows, panels = (g.outChannels + rows - 1) / rows
        let depth = g.inChannels * g.kernelHeight * g.kernelWidth
        let xs = try scratchBuffer(.layoutIn, floats: inputLayout.count)
        let ys = try scratchBuffer(.layoutOut, floats: outputLayout.count)
        let packed = try scratchBuffer(.packA, floats: panels * rows * depth)
        try biPack(input, inputLayout, into: xs)
        try packWeights(weight, rows: g.outChannels, depth: depth, panels: panels, into: packed)
        try enqueue(.conv, "bi_conv_forward", global: [inputLayout.lanes / 16, g.outHeight * g.outWidth, panels], [
            .mem(xs), .int(g.inChannels), .int(g.kernelHeight), .int(g.kernelWidth), .int(g.strideHeight), .int(g.strideWidth),
            .int(inputLayout.rowStride), .int(inputLayout.channelStride), .int(inputLayout.lanes), .int(g.outWidth),
            .mem(packed), .int(depth), .int(g.outChannels), .mem(ys), .int(outputLayout.channelStride),
        ])
        try biUnpack(ys, outputLayout, into: output, bias: bias, accumulate: false)
    }

    /// W (rows x depth, row-major) into GEMM_ROWS-row panels, k-major (gemm_pack's layout).
    private func packWeights(_ weight: BufferView, rows: Int, depth: Int, panels: Int, into packed: cl_mem) throws {
        let panel = config.gemmRows
        var segment = 16
        while panel % segment != 0 { segment /= 2 }
        try enqueue(.gemm, "gemm_pack", global: [depth, panels * panel / segment], [
            .view(weight), .int(depth), .int(1), .int(rows), .int(depth),
            .mem(packed), .int(panel), .int(panels * panel), .int(depth), .int(segment),
        ])
    }

    /// Backward-data, phase by phase within one kernel (lock held).
    func batchInnerBackwardData(_ g: ConvGeometry, gradOutput: BufferView, weight: BufferView, bias: BufferView?,
                                gradInput: BufferView, accumulate: Bool) throws {
        let (sh, sw) = (g.strideHeight, g.strideWidth)
        let (tapsHigh, tapsWide) = BatchInnerLayout.phaseTaps(g)
        let gradient = BatchInnerLayout.backwardDataGradient(g)
        let result = BatchInnerLayout.input(g)
        let rows = config.gemmRows, panels = (g.inChannels + rows - 1) / rows
        let phaseStride = panels * rows * g.outChannels * tapsHigh * tapsWide
        let dys = try scratchBuffer(.layoutIn, floats: gradient.count)
        let dxs = try scratchBuffer(.layoutOut, floats: result.count)
        let packed = try scratchBuffer(.packA, floats: phaseStride * sh * sw)
        try biPack(gradOutput, gradient, into: dys)
        try enqueue(.conv, "bi_pack_phase_weights", global: [g.outChannels * tapsHigh * tapsWide, panels, sh * sw], [
            .view(weight), .int(g.inChannels), .int(g.outChannels), .int(g.kernelHeight), .int(g.kernelWidth),
            .int(sh), .int(sw), .int(phaseStride), .mem(packed),
        ])
        if g.inChannels < rows {
            // Fewer channels than a register block's rows: positions take their place.
            let positions = config.narrowBackwardDataPositions
            let chunks = ((g.inWidth + sw - 1) / sw + positions - 1) / positions
            try enqueue(.conv, "bi_conv_backward_data_narrow", global: [result.lanes / 16, g.inHeight * sw * chunks, g.inChannels], [
                .mem(dys), .int(g.outChannels), .int(g.kernelHeight), .int(g.kernelWidth), .int(sh), .int(sw),
                .int(g.padHeight), .int(g.padWidth), .int(gradient.rowStride), .int(gradient.channelStride), .int(gradient.lanes),
                .int(gradient.padTop), .int(gradient.padLeft), .int(g.inWidth), .mem(packed), .int(phaseStride),
                .mem(dxs), .int(result.channelStride), .int(chunks),
            ])
            try biUnpack(dxs, result, into: gradInput, bias: bias, accumulate: accumulate)
            return
        }
        try enqueue(.conv, "bi_conv_backward_data", global: [result.lanes / 16, g.inHeight * g.inWidth, panels], [
            .mem(dys), .int(g.outChannels), .int(g.kernelHeight), .int(g.kernelWidth), .int(sh), .int(sw),
            .int(g.padHeight), .int(g.padWidth), .int(gradient.rowStride), .int(gradient.channelStride), .int(gradient.lanes),
            .int(gradient.padTop), .int(gradient.padLeft), .int(g.inWidth), .mem(packed), .int(phaseStride),
            .int(g.inChannels), .mem(dxs), .int(result.channelStride),
        ])
        try biUnpack(dxs, result, into: gradInput, bias: bias, accumulate: accumulate)
    }

    /// Backward-weights (lock held).
    func batchInnerBackwardWeights(_ g: ConvGeometry, input: BufferView, gradOutput: BufferView,
                                   gradWeight: BufferView, accumulate: Bool) throws {
        let inputLayout = BatchInnerLayout.forwardInput(g)
        let gradient = BatchInnerLayout.output(g)
        let depth = g.inChannels * g.kernelHeight * g.kernelWidth
        let xs = try scratchBuffer(.layoutIn, floats: inputLayout.count)
        let dys = try scratchBuffer(.layoutOut, floats: gradient.count)
        try biPack(input, inputLayout, into: xs)
        try biPack(gradOutput, gradient, into: dys)
        let (blockRows, blockChannels) = (config.weightGradientRows, config.weightGradientChannels)
        try enqueue(.conv, "bi_conv_backward_weights",
                    global: [(depth + blockRows - 1) / blockRows, (g.outChannels + blockChannels - 1) / blockChannels], [
            .mem(xs), .int(g.inChannels), .int(g.kernelHeight), .int(g.kernelWidth), .int(g.strideHeight), .int(g.strideWidth),
            .int(inputLayout.rowStride), .int(inputLayout.channelStride), .int(inputLayout.lanes),
            .int(g.outHeight), .int(g.outWidth), .mem(dys), .int(gradient.channelStride), .int(g.outChannels),
            .view(gradWeight), .int(accumulate ? 1 : 0),
        ])
    }
}
