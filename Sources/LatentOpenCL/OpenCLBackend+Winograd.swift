import COpenCL
import LatentCore

/// Winograd F(4x4, 3x3) for 3x3 stride-1 convolutions (conv.cl, `w3_*`), forward and
/// backward-data, and F(4x4, 2x2) for 4x4 stride-2 ones (`w42_*`), all three passes: the CPU backend's schemes
/// (CPUConvWinograd3x3.swift, CPUConvWinograd.swift) on the batch-inner layout, 16 images
/// per float16. The images are packed with enough padding that every 6x6 (5x5) tile lies
/// inside, the transforms run on whole float16 vectors, and the 36 (25) point products run
/// in one launch of a register-blocked GEMM (`winograd_multiply`, gemm_block's scheme) on operands
/// the transforms write in its formats. A 4x4 stride-2 layer is four stride-1 2x2 ones, one
/// per stride phase: forward takes the phases as extra input channels (read at stride 2),
/// backward-data as extra output rows (written at stride 2). The 4x4 layers' weight gradient
/// is the forward pass's adjoint: its 25 products reduce over tiles x lanes, which both
/// transforms write contiguously, so they run as dot-product blocks (`winograd_multiply_nt`,
/// the direct weight-gradient kernel's blocking) on half the direct kernel's multiply-adds.
/// (An earlier version on NCHW data took 2.2x the direct kernel's time on PoCL; this one
/// takes about the same time per call there, and training ran 1.05x faster.) The 3x3 layers'
/// weight gradient stays on the direct kernel.
extension OpenCLBackend {
    /// Whether a pass runs as Winograd F(4x4, 3x3): forward or backward-data of a 3x3
    /// stride-1 convolution with padding up to 2 and, unless forced, 16 channels or more on
    /// both sides and a batch of 16 or more.
    func usesWinograd3x3(_ g: ConvGeometry) -> Bool {
        guard g.kernelHeight == 3, g.kernelWidth == 3, g.strideHeight == 1, g.strideWidth == 1,
              (0...2).contains(g.padHeight), (0...2).contains(g.padWidth) else { return false }
        switch config.convolution {
        case .winograd: return true
        case .automatic: return g.inChannels >= 16 && g.outChannels >= 16 && g.batch >= 16
        case .im2col, .batchInner: return false
        }
    }

    /// Whether a pass runs as Winograd F(4x4, 2x2): forward or backward-data of a 4x4
    /// stride-2 convolution with padding up to 2 and, unless forced, 8 input channels or more,
    /// 16 output channels or more and a batch of 16 or more (the CPU backend's rule).
    func usesWinograd4x4(_ g: ConvGeometry) -> Bool {
        guard g.kernelHeight == 4, g.kernelWidth == 4, g.strideHeight == 2, g.strideWidth == 2,
              (0...2).contains(g.padHeight), (0...2).contains(g.padWidth) else { return false }
        switch config.convolution {
        case .winograd: return true
        case .automatic: return g.inChannels >= 8 && g.outChannels >= 16 && g.batch >= 16
        case .im2col, .batchInner: return false
        }
    }

    /// Which transform a pass runs and how its kernels read and write.
    private enum WinogradPass {
        /// F(4x4, 3x3) (`w3_*`, 36 points); `flip`: backward-data's filters turned by 180 degrees.
        case threeByThree(flip: Bool)
        /// F(4x4, 2x2) (`w42_*`, 25 points) of a 4x4 stride-2 layer's forward pass: depth
        /// (ci, stride phase), the input read at stride 2.
        case fourByFourForward(inChannels: Int)
        /// F(4x4, 2x2) of its backward-data pass: rows (stride phase, ci) written at stride 2.
        case fourByFourBackwardData(inChannels: Int, padHeight: Int, padWidth: Int)

        var points: Int {
            if case .threeByThree = self { return 36 }
            return 25
        }
    }

    /// A batch-inner layout of `channels` maps (height x width) padded by `top`, `left` and
    /// below and right so that the 6x6 tiles of `tilesHigh` x `tilesWide` 4x4 tiles fit.
    private static func tileLayout(channels: Int, height: Int, width: Int, batch: Int, top: Int, left: Int,
                                   tilesHigh: Int, tilesWide: Int) -> BatchInnerLayout {
        BatchInnerLayout(channels: channels, height: height, width: width, batch: batch, padTop: top, padLeft: left,
                         padBottom: 4 * tilesHigh + 2 - height - top, padRight: 4 * tilesWide + 2 - width - left)
    }

    /// `points` planes of at least `floats` each: the plane stride and the floats of all of them,
    /// both within what the kernels' int arguments hold.
    static func planes(of floats: Int, points: Int) throws -> (plane: Int, total: Int) {
        let plane = WinogradPlanes.stride(floats)
        let (total, overflow) = plane.multipliedReportingOverflow(by: points)
        guard !overflow, Int32(exactly: plane) != nil else {
            throw LatentError.invalidArgument("Winograd convolution: sizes overflow")
        }
        return (plane, total)
    }

    /// V = B^T d B of every 5x5 tile of `xs` (laid out as `layout`) into `plane`-apart planes:
    /// with `phases` (forward, weight gradient) rows k = (ci, p, q) read at stride 2.
    private func w42Inputs(_ xs: cl_mem, _ layout: BatchInnerLayout, tilesWide: Int, tiles: Int, depth: Int, phases: Bool,
                           plane: Int, into v: cl_mem) throws {
        try enqueue(.conv, "w42_inputs", global: [layout.lanes / 16, tiles, depth], [
            .mem(xs), .int(layout.rowStride), .int(layout.channelStride), .int(layout.lanes), .int(tilesWide), .int(tiles),
            .int(depth), .int(phases ? 1 : 0), .int(plane), .mem(v),
        ])
    }

    /// The transforms and products of one pass: `source` (packed into `input`) correlated with
    /// `rows` x `depth` filters, into `result` (batch-inner, unpadded) and then NCHW `destination`.
    private func winograd(_ pass: WinogradPass, _ source: BufferView, input: BatchInnerLayout, weight: BufferView,
                          rows: Int, depth: Int, tilesHigh: Int, tilesWide: Int, result: BatchInnerLayout,
                          into destination: BufferView, bias: BufferView?, accumulate: Bool) throws {
        let tiles = tilesHigh * tilesWide, columns = tiles * input.lanes, points = pass.points
        let paddedRows = (rows + config.gemmRows - 1) / config.gemmRows * config.gemmRows
        let (uPlane, uFloats) = try Self.planes(of: paddedRows * depth, points: points)
        let (vPlane, vFloats) = try Self.planes(of: depth * columns, points: points)
        let (mPlane, mFloats) = try Self.planes(of: rows * columns, points: points)
        let xs = try scratchBuffer(.layoutIn, floats: input.count)
        let ys = try scratchBuffer(.layoutOut, floats: result.count)
        let u = try scratchBuffer(.winogradFilters, floats: uFloats)
        let v = try scratchBuffer(.winogradInputs, floats: vFloats)
        let m = try scratchBuffer(.winogradProducts, floats: mFloats)
        try biPack(source, input, into: xs)
        let tileGrid = [input.lanes / 16, tiles]
        switch pass {
        case .threeByThree(let flip):
            try enqueue(.conv, "w3_filters", global: [(depth * config.gemmRows + 15) / 16, paddedRows / config.gemmRows], [
                .view(weight), .int(rows), .int(depth), .int(paddedRows), .int(flip ? 1 : 0), .int(uPlane), .mem(u),
            ])
            try enqueue(.conv, "w3_inputs", global: tileGrid + [depth], [
                .mem(xs), .int(input.rowStride), .int(input.channelStride), .int(input.lanes), .int(tilesWide), .int(tiles),
                .int(vPlane), .mem(v),
            ])
        case .fourByFourForward(let inChannels), .fourByFourBackwardData(let inChannels, _, _):
            let backward: Bool
            if case .fourByFourBackwardData = pass { backward = true } else { backward = false }
            try enqueue(.conv, "w42_filters", global: [(depth * config.gemmRows + 15) / 16, paddedRows / config.gemmRows], [
                .view(weight), .int(rows), .int(depth), .int(paddedRows), .int(inChannels), .int(backward ? 1 : 0), .int(uPlane),
                .mem(u),
            ])
            try w42Inputs(xs, input, tilesWide: tilesWide, tiles: tiles, depth: depth, phases: !backward, plane: vPlane, into: v)
        }
        try enqueue(.conv, "winograd_multiply", global: [columns / 16, paddedRows / config.gemmRows, points], [
            .mem(u), .int(uPlane), .mem(v), .int(vPlane), .int(depth), .int(columns), .mem(m), .int(mPlane), .int(rows),
        ])
        switch pass {
        case .threeByThree:
            try enqueue(.conv, "w3_outputs", global: tileGrid + [rows], [
                .mem(m), .int(mPlane), .int(input.lanes), .int(tilesWide), .int(tiles), .int(result.height), .int(result.width),
                .int(result.rowStride), .int(result.channelStride), .mem(ys),
            ])
        case .fourByFourForward, .fourByFourBackwardData:
            // Backward-data writes rows (stride phase, ci) at stride 2, shifted by the padding.
            let (phases, channels, padHeight, padWidth) = switch pass {
            case .fourByFourBackwardData(let inChannels, let padHeight, let padWidth): (1, inChannels, padHeight, padWidth)
            default: (0, result.channels, 0, 0)
            }
            try enqueue(.conv, "w42_outputs", global: tileGrid + [rows], [
                .mem(m), .int(mPlane), .int(rows), .int(input.lanes), .int(tilesWide), .int(tiles), .int(result.height), .int(result.width),
                .int(result.rowStride), .int(result.channelStride), .int(phases), .int(channels), .int(padHeight), .int(padWidth),
                .mem(ys),
            ])
        }
        try biUnpack(ys, result, into: destination, bias: bias, accumulate: accumulate)
    }

    /// Forward (lock held): rows Cout, depth Cin, tiles of the output.
    func winograd3x3Forward(_ g: ConvGeometry, input: BufferView, weight: BufferView, bias: BufferView?,
                            output: BufferView) throws {
        let tilesHigh = (g.outHeight + 3) / 4, tilesWide = (g.outWidth + 3) / 4
        let layout = Self.tileLayout(channels: g.inChannels, height: g.inHeight, width: g.inWidth, batch: g.batch,
                                     top: g.padHeight, left: g.padWidth, tilesHigh: tilesHigh, tilesWide: tilesWide)
        try winograd(.threeByThree(flip: false), input, input: layout, weight: weight, rows: g.outChannels, depth: g.inChannels,
                        tilesHigh: tilesHigh, tilesWide: tilesWide, result: BatchInnerLayout.output(g), into: output,
                        bias: bias, accumulate: false)
    }

    /// Backward-data (lock held): the output gradient correlated with the flipped filters
    /// (rows Cin, depth Cout) over tiles of the input, reading dY from row 4 th + pad - 2.
    func winograd3x3BackwardData(_ g: ConvGeometry, gradOutput: BufferView, weight: BufferView, bias: BufferView?,
                                 gradInput: BufferView, accumulate: Bool) throws {
        let tilesHigh = (g.inHeight + 3) / 4, tilesWide = (g.inWidth + 3) / 4
        let layout = Self.tileLayout(channels: g.outChannels, height: g.outHeight, width: g.outWidth, batch: g.batch,
                                     top: 2 - g.padHeight, left: 2 - g.padWidth, tilesHigh: tilesHigh, tilesWide: tilesWide)
        try winograd(.threeByThree(flip: true), gradOutput, input: layout, weight: weight, rows: g.inChannels, depth: g.outChannels,
                        tilesHigh: tilesHigh, tilesWide: tilesWide, result: BatchInnerLayout.input(g), into: gradInput,
                        bias: bias, accumulate: accumulate)
    }

    /// F(4x4, 2x2) forward (lock held): rows Cout, depth (ci, p, q), tiles of the output; the
    /// input padded so that every 5x5 tile of every stride phase lies inside.
    func winograd4x4Forward(_ g: ConvGeometry, input: BufferView, weight: BufferView, bias: BufferView?,
                            output: BufferView) throws {
        let (layout, tilesHigh, tilesWide) = Self.fourByFourInput(g)
        try winograd(.fourByFourForward(inChannels: g.inChannels), input, input: layout, weight: weight,
                     rows: g.outChannels, depth: 4 * g.inChannels, tilesHigh: tilesHigh, tilesWide: tilesWide,
                     result: BatchInnerLayout.output(g), into: output, bias: bias, accumulate: false)
    }

    /// The forward pass's input layout for F(4x4, 2x2) and its tiles over the output: tile
    /// (th, tw) of phase (p, q) reads padded rows 8 th + p + 2s, s < 5, the last 8 tilesHigh + 1.
    private static func fourByFourInput(_ g: ConvGeometry) -> (layout: BatchInnerLayout, tilesHigh: Int, tilesWide: Int) {
        let tilesHigh = (g.outHeight + 3) / 4, tilesWide = (g.outWidth + 3) / 4
        let layout = BatchInnerLayout(channels: g.inChannels, height: g.inHeight, width: g.inWidth, batch: g.batch,
                                      padTop: g.padHeight, padLeft: g.padWidth,
                                      padBottom: Swift.max(0, 8 * tilesHigh + 2 - g.inHeight - g.padHeight),
                                      padRight: Swift.max(0, 8 * tilesWide + 2 - g.inWidth - g.padWidth))
        return (layout, tilesHigh, tilesWide)
    }

    /// F(4x4, 2x2) backward-weights (lock held), the adjoint of the forward pass: V the forward's
    /// input transform (K = 4 Cin rows), dM = A dY A^T of the output gradient's 4x4 tiles, the 25
    /// products dU_e = dM_e V_e^T summed over J = tiles x lanes (`winograd_multiply_nt`), and
    /// dW = G^T dU G per stride phase, added to dW with `accumulate`.
    func winograd4x4BackwardWeights(_ g: ConvGeometry, input: BufferView, gradOutput: BufferView, gradWeight: BufferView,
                                    accumulate: Bool) throws {
        let (layout, tilesHigh, tilesWide) = Self.fourByFourInput(g)
        let gradient = BatchInnerLayout.output(g)
        let tiles = tilesHigh * tilesWide, columns = tiles * layout.lanes, depth = 4 * g.inChannels, points = 25
        let vPlanes = try Self.planes(of: depth * columns, points: points)
        let mPlanes = try Self.planes(of: g.outChannels * columns, points: points)
        let uPlanes = try Self.planes(of: g.outChannels * depth, points: points)
        let xs = try scratchBuffer(.layoutIn, floats: layout.count)
        let dys = try scratchBuffer(.layoutOut, floats: gradient.count)
        let v = try scratchBuffer(.winogradInputs, floats: vPlanes.total)
        let m = try scratchBuffer(.winogradProducts, floats: mPlanes.total)
        let u = try scratchBuffer(.winogradFilters, floats: uPlanes.total)
        try biPack(input, layout, into: xs)
        try biPack(gradOutput, gradient, into: dys)
        try w42Inputs(xs, layout, tilesWide: tilesWide, tiles: tiles, depth: depth, phases: true, plane: vPlanes.plane, into: v)
        try enqueue(.conv, "w42_output_gradients", global: [gradient.lanes / 16, tiles, g.outChannels], [
            .mem(dys), .int(gradient.rowStride), .int(gradient.channelStride), .int(gradient.lanes), .int(tilesWide), .int(tiles),
            .int(g.outChannels), .int(g.outHeight), .int(g.outWidth), .int(mPlanes.plane), .mem(m),
        ])
        let (blockRows, blockChannels) = (config.weightGradientRows, config.weightGradientChannels)
        try enqueue(.conv, "winograd_multiply_nt",
                    global: [(depth + blockRows - 1) / blockRows, (g.outChannels + blockChannels - 1) / blockChannels, points], [
            .mem(m), .int(mPlanes.plane), .mem(v), .int(vPlanes.plane), .int(columns), .int(g.outChannels), .int(depth),
            .mem(u), .int(uPlanes.plane),
        ])
        try enqueue(.conv, "w42_weight_gradients", global: [(depth + 15) / 16, g.outChannels], [
            .mem(u), .int(uPlanes.plane), .int(g.inChannels), .int(g.outChannels), .view(gradWeight), .int(accumulate ? 1 : 0),
        ])
    }

    /// F(4x4, 2x2) backward-data (lock held): rows (phase (a, b), ci), depth Cout, tiles over the
    /// phase grid (input row 2 i' + a - pad), each reading dY rows i' - 1 ... i' + 3 (padded by
    /// one above and to the left, and below and right as far as the last tile reaches).
    func winograd4x4BackwardData(_ g: ConvGeometry, gradOutput: BufferView, weight: BufferView, bias: BufferView?,
                                 gradInput: BufferView, accumulate: Bool) throws {
        let gridHigh = (g.inHeight - 1 + g.padHeight) / 2 + 1, gridWide = (g.inWidth - 1 + g.padWidth) / 2 + 1
        let tilesHigh = (gridHigh + 3) / 4, tilesWide = (gridWide + 3) / 4
        let layout = BatchInnerLayout(channels: g.outChannels, height: g.outHeight, width: g.outWidth, batch: g.batch,
                                      padTop: 1, padLeft: 1,
                                      padBottom: Swift.max(0, 4 * tilesHigh - g.outHeight),
                                      padRight: Swift.max(0, 4 * tilesWide - g.outWidth))
        try winograd(.fourByFourBackwardData(inChannels: g.inChannels, padHeight: g.padHeight, padWidth: g.padWidth),
                     gradOutput, input: layout, weight: weight, rows: 4 * g.inChannels, depth: g.outChannels,
                     tilesHigh: tilesHigh, tilesWide: tilesWide, result: BatchInnerLayout.input(g), into: gradInput,
                     bias: bias, accumulate: accumulate)
    }
}
