import COpenCL
import LatentCore

/// Winograd F(4x4, 3x3) for 3x3 stride-1 convolutions (conv.cl, `w3_*`), forward and
/// backward-data: the CPU backend's scheme (CPUConvWinograd3x3.swift) on the batch-inner
/// layout, 16 images per float16. The images are packed with enough padding that every
/// 6x6 tile lies inside, the transforms run on whole float16 vectors, and the 36 point
/// products run in one launch of a register-blocked GEMM (gemm_block's scheme) on operands
/// the transforms write in its formats. The weight gradient stays on the batch-inner
/// kernel: its GEMMs reduce over the image lanes, which this layout cannot feed without
/// transposes (a version on NCHW data took 2.2x the direct kernel on PoCL).
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

    private static let points = 36

    /// A batch-inner layout of `channels` maps (height x width) padded by `top`, `left` and
    /// below and right so that the 6x6 tiles of `tilesHigh` x `tilesWide` 4x4 tiles fit.
    private static func tileLayout(channels: Int, height: Int, width: Int, batch: Int, top: Int, left: Int,
                                   tilesHigh: Int, tilesWide: Int) -> BatchInnerLayout {
        BatchInnerLayout(channels: channels, height: height, width: width, batch: batch, padTop: top, padLeft: left,
                         padBottom: 4 * tilesHigh + 2 - height - top, padRight: 4 * tilesWide + 2 - width - left)
    }

    /// The transforms and products of one pass: `source` (packed into `input`) correlated with
    /// `rows` x `depth` filters, into `result` (batch-inner, unpadded) and then NCHW `destination`.
    private func winograd3x3(_ source: BufferView, input: BatchInnerLayout, weight: BufferView, flip: Bool,
                             rows: Int, depth: Int, tilesHigh: Int, tilesWide: Int, result: BatchInnerLayout,
                             into destination: BufferView, bias: BufferView?, accumulate: Bool) throws {
        let tiles = tilesHigh * tilesWide, columns = tiles * input.lanes
        let paddedRows = (rows + config.gemmRows - 1) / config.gemmRows * config.gemmRows
        func planes(_ floats: Int) throws -> Int {
            let (total, overflow) = floats.multipliedReportingOverflow(by: Self.points)
            guard !overflow else { throw LatentError.invalidArgument("Winograd convolution: sizes overflow") }
            return total
        }
        let xs = try scratchBuffer(.layoutIn, floats: input.count)
        let ys = try scratchBuffer(.layoutOut, floats: result.count)
        let u = try scratchBuffer(.winogradFilters, floats: try planes(paddedRows * depth))
        let v = try scratchBuffer(.winogradInputs, floats: try planes(depth * columns))
        let m = try scratchBuffer(.winogradProducts, floats: try planes(rows * columns))
        try biPack(source, input, into: xs)
        try enqueue(.conv, "w3_filters", global: [depth, (paddedRows + 7) / 8], [
            .view(weight), .int(rows), .int(depth), .int(paddedRows), .int(flip ? 1 : 0), .mem(u),
        ])
        try enqueue(.conv, "w3_inputs", global: [input.lanes / 16, tiles, depth], [
            .mem(xs), .int(input.rowStride), .int(input.channelStride), .int(input.lanes), .int(tilesWide), .int(tiles), .mem(v),
        ])
        try enqueue(.conv, "w3_multiply", global: [columns / 16, paddedRows / config.gemmRows, Self.points], [
            .mem(u), .int(paddedRows * depth), .mem(v), .int(depth), .int(columns), .mem(m), .int(rows),
        ])
        try enqueue(.conv, "w3_outputs", global: [input.lanes / 16, tiles, rows], [
            .mem(m), .int(input.lanes), .int(tilesWide), .int(tiles), .int(result.height), .int(result.width),
            .int(result.rowStride), .int(result.channelStride), .mem(ys),
        ])
        try biUnpack(ys, result, into: destination, bias: bias, accumulate: accumulate)
    }

    /// Forward (lock held): rows Cout, depth Cin, tiles of the output.
    func winograd3x3Forward(_ g: ConvGeometry, input: BufferView, weight: BufferView, bias: BufferView?,
                            output: BufferView) throws {
        let tilesHigh = (g.outHeight + 3) / 4, tilesWide = (g.outWidth + 3) / 4
        let layout = Self.tileLayout(channels: g.inChannels, height: g.inHeight, width: g.inWidth, batch: g.batch,
                                     top: g.padHeight, left: g.padWidth, tilesHigh: tilesHigh, tilesWide: tilesWide)
        try winograd3x3(input, input: layout, weight: weight, flip: false, rows: g.outChannels, depth: g.inChannels,
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
        try winograd3x3(gradOutput, input: layout, weight: weight, flip: true, rows: g.inChannels, depth: g.outChannels,
                        tilesHigh: tilesHigh, tilesWide: tilesWide, result: BatchInnerLayout.input(g), into: gradInput,
                        bias: bias, accumulate: accumulate)
    }
}
