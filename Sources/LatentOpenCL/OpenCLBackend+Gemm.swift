import COpenCL
import LatentCore

/// SGEMM and the convolutions built on it (gemm.cl, conv.cl): both operands are packed
/// into zero-padded panels (from plain matrices, from images as im2col, or from batched
/// gradients), then one compute kernel of the configured variant runs, writing C through
/// a column map (so that a convolution stores NCHW images directly) with an optional
/// per-row bias.
extension OpenCLBackend {
    /// Where a packed operand's logical element (r, k) comes from.
    enum PackSource {
        /// `mem[offset + r * rowStride + k * depthStride]`.
        case matrix(cl_mem, offset: Int, rowStride: Int, depthStride: Int)
        /// The column matrix of images (see conv.cl); orientation 0: r = column, 1: r = row.
        case im2col(cl_mem, offset: Int, ConvGeometry, orientation: Int)
        /// Images (N, rows, plane) as a rows x N*plane matrix; orientation as `im2col`.
        case batched(cl_mem, offset: Int, rows: Int, plane: Int, orientation: Int)
    }

    /// Where C's element (i, j) is stored: `offset + (j / columnsPerBlock) * blockStride + i * ldc + j % columnsPerBlock`.
    struct GemmOutput {
        var mem: cl_mem
        var offset: Int
        var ldc: Int
        var columnsPerBlock: Int
        var blockStride: Int
        var bias: BufferView?
    }

    // C (m x n) = alpha * op(A) (m x k) * op(B) (k x n) + beta * C
    public func gemm(transA: Transpose, transB: Transpose, m: Int, n: Int, k: Int,
                     alpha: Float, a: BufferView, lda: Int, b: BufferView, ldb: Int,
                     beta: Float, c: BufferView, ldc: Int) throws {
        try GEMMArguments.check(transA: transA, transB: transB, m: m, n: n, k: k,
                                a: a.count, lda: lda, b: b.count, ldb: ldb, c: c.count, ldc: ldc)
        guard m > 0, n > 0 else { return }
        let aMem = try memory(of: a), bMem = try memory(of: b), cMem = try memory(of: c)
        if reproducible {
            return try reproducibleGemm(transA: transA, transB: transB, m: m, n: n, k: k, alpha: alpha,
                                        a: a, lda: lda, b: b, ldb: ldb, beta: beta, c: c, ldc: ldc)
        }
        try withLock {
            // A's logical (i, k) and B's logical (k, j) as (r, k) of an R x K operand.
            let packA = PackSource.matrix(aMem, offset: a.offset, rowStride: transA == .none ? lda : 1,
                                          depthStride: transA == .none ? 1 : lda)
            let packB = PackSource.matrix(bMem, offset: b.offset, rowStride: transB == .none ? 1 : ldb,
                                          depthStride: transB == .none ? ldb : 1)
            try packedGemm(m: m, n: n, k: k, alpha: alpha, beta: beta, a: packA, b: packB,
                           c: GemmOutput(mem: cMem, offset: c.offset, ldc: ldc, columnsPerBlock: n, blockStride: 0, bias: nil))
        }
    }

    /// The padded extents and panel widths of one GEMM for the configured variant.
    struct GemmPlan {
        var mPadded: Int, nPadded: Int, kPadded: Int
        var panelA: Int, panelB: Int
    }

    func gemmPlan(m: Int, n: Int, k: Int) -> GemmPlan {
        func roundUp(_ value: Int, _ multiple: Int) -> Int { (value + multiple - 1) / multiple * multiple }
        let depth = Swift.max(k, 1) // k == 0: one zero slice, so that C = beta * C
        switch config.gemm {
        case .block:
            let rows = config.blockRows(m: m, n: n, k: k)
            let mp = roundUp(m, rows), np = roundUp(n, 16)
            return GemmPlan(mPadded: mp, nPadded: np, kPadded: depth, panelA: rows, panelB: 16)
        case .tiled:
            let mp = roundUp(m, config.tileM), np = roundUp(n, config.tileN)
            return GemmPlan(mPadded: mp, nPadded: np, kPadded: roundUp(depth, config.tileK), panelA: mp, panelB: np)
        }
    }

    /// Packs both operands into scratch and runs the compute kernel (lock held).
    func packedGemm(m: Int, n: Int, k: Int, alpha: Float, beta: Float, a: PackSource, b: PackSource, c: GemmOutput) throws {
        let plan = gemmPlan(m: m, n: n, k: k)
        let (aFloats, o1) = plan.mPadded.multipliedReportingOverflow(by: plan.kPadded)
        let (bFloats, o2) = plan.nPadded.multipliedReportingOverflow(by: plan.kPadded)
        guard !o1, !o2 else { throw LatentError.invalidArgument("gemm \(m)x\(n)x\(k) is too large") }
        let packedA = try scratchBuffer(.packA, floats: aFloats)
        let packedB = try scratchBuffer(.packB, floats: bFloats)
        try pack(a, rows: m, depth: k, into: packedA, panel: plan.panelA, paddedRows: plan.mPadded, paddedDepth: plan.kPadded)
        try pack(b, rows: n, depth: k, into: packedB, panel: plan.panelB, paddedRows: plan.nPadded, paddedDepth: plan.kPadded)
        let bias: Argument = .optionalView(c.bias, placeholder: try placeholder())
        switch config.gemm {
        case .block:
            try enqueue(.gemm, "gemm_block", gemmRows: plan.panelA, global: [plan.nPadded / 16, plan.mPadded / plan.panelA], [
                .int(plan.kPadded), .mem(packedA), .mem(packedB), .int(m), .int(n), .float(alpha), .float(beta),
                .mem(c.mem), .int(c.offset), .int(c.ldc), .int(c.columnsPerBlock), .int(c.blockStride), bias,
            ])
        case .tiled:
            let local = [config.tileN / config.wptN, config.tileM / config.wptM]
            try enqueue(.gemm, "gemm_tiled", global: [plan.nPadded / config.wptN, plan.mPadded / config.wptM], local: local, [
                .int(plan.kPadded), .mem(packedA), .mem(packedB), .int(m), .int(n), .int(plan.mPadded), .int(plan.nPadded),
                .float(alpha), .float(beta), .mem(c.mem), .int(c.offset), .int(c.ldc), .int(c.columnsPerBlock),
                .int(c.blockStride), bias,
            ])
        }
    }

    private func pack(_ source: PackSource, rows: Int, depth: Int, into destination: cl_mem, panel: Int,
                      paddedRows: Int, paddedDepth: Int) throws {
        // Segments of S consecutive elements per work-item: the largest divisor of the panel
        // width up to 16 (6-row panels in segments of 2 paid a work-item per two floats).
        let segment = (1...Swift.min(16, Swift.max(1, panel))).last { panel % $0 == 0 } ?? 1
        let global = [paddedDepth, paddedRows / segment]
        switch source {
        case let .matrix(mem, offset, rowStride, depthStride):
            try enqueue(.gemm, "gemm_pack", global: global, [
                .mem(mem), .int(offset), .int(rowStride), .int(depthStride), .int(rows), .int(depth),
                .mem(destination), .int(panel), .int(paddedRows), .int(paddedDepth), .int(segment),
            ])
        case let .im2col(mem, offset, g, orientation):
            try enqueue(.conv, "pack_im2col", global: global, [
                .mem(mem), .int(offset), .int(g.inChannels), .int(g.inHeight), .int(g.inWidth),
                .int(g.kernelHeight), .int(g.kernelWidth), .int(g.strideHeight), .int(g.strideWidth),
                .int(g.padHeight), .int(g.padWidth), .int(g.outHeight), .int(g.outWidth),
                .int(orientation), .int(rows), .int(depth), .mem(destination), .int(panel), .int(paddedRows), .int(paddedDepth),
                .int(segment),
            ])
        case let .batched(mem, offset, channelRows, plane, orientation):
            try enqueue(.conv, "pack_batched", global: global, [
                .mem(mem), .int(offset), .int(channelRows), .int(plane), .int(orientation), .int(rows), .int(depth),
                .mem(destination), .int(panel), .int(paddedRows), .int(paddedDepth), .int(segment),
            ])
        }
    }

    // MARK: Convolution

    // input (N, Cin, H, W), weight (Cout, Cin, kH, kW), bias (Cout) -> output (N, Cout, Ho, Wo)
    public func conv2dForward(_ geometry: ConvGeometry, input: BufferView, weight: BufferView,
                              bias: BufferView?, output: BufferView) throws {
        let op = "conv2dForward", g = geometry
        try Check.geometry(g, op)
        try Check.count(input, g.inputCount, "input", op)
        try Check.count(weight, g.weightCount, "weight", op)
        try Check.count(output, g.outputCount, "output", op)
        if let bias { try Check.count(bias, g.outChannels, "bias", op) }
        let x = try memory(of: input), w = try memory(of: weight), y = try memory(of: output)
        let plane = g.outHeight * g.outWidth, depth = g.inChannels * g.kernelHeight * g.kernelWidth
        if reproducible { return try reproducibleConvForward(g, input: input, weight: weight, bias: bias, output: output) }
        try withLock {
            if usesWinograd3x3(g) {
                try winograd3x3Forward(g, input: input, weight: weight, bias: bias, output: output)
                return
            }
            if usesWinograd4x4(g) {
                try winograd4x4Forward(g, input: input, weight: weight, bias: bias, output: output)
                return
            }
            if usesBatchInner(g) {
                try batchInnerForward(g, input: input, weight: weight, bias: bias, output: output)
                return
            }
            // y (Cout, N*P) = W (Cout, Kc) * col (Kc, N*P), stored per image with the bias.
            try packedGemm(m: g.outChannels, n: g.batch * plane, k: depth, alpha: 1, beta: 0,
                           a: .matrix(w, offset: weight.offset, rowStride: depth, depthStride: 1),
                           b: .im2col(x, offset: input.offset, g, orientation: 0),
                           c: GemmOutput(mem: y, offset: output.offset, ldc: plane, columnsPerBlock: plane,
                                         blockStride: g.outChannels * plane, bias: bias))
        }
    }

    // gradOutput (N, Cout, Ho, Wo), weight (Cout, Cin, kH, kW), bias (Cin) -> gradInput (N, Cin, H, W)
    public func conv2dBackwardData(_ geometry: ConvGeometry, gradOutput: BufferView, weight: BufferView,
                                   bias: BufferView?, gradInput: BufferView, accumulate: Bool) throws {
        let op = "conv2dBackwardData", g = geometry
        try Check.geometry(g, op)
        try Check.count(gradOutput, g.outputCount, "gradOutput", op)
        try Check.count(weight, g.weightCount, "weight", op)
        try Check.count(gradInput, g.inputCount, "gradInput", op)
        if let bias { try Check.count(bias, g.inChannels, "bias", op) }
        let dy = try memory(of: gradOutput), w = try memory(of: weight), dx = try memory(of: gradInput)
        let plane = g.outHeight * g.outWidth, depth = g.inChannels * g.kernelHeight * g.kernelWidth
        let columns = g.batch * plane
        let weightT = PackSource.matrix(w, offset: weight.offset, rowStride: 1, depthStride: depth)
        let gradient = PackSource.batched(dy, offset: gradOutput.offset, rows: g.outChannels, plane: plane, orientation: 0)
        let pointwise = g.kernelHeight == 1 && g.kernelWidth == 1 && g.strideHeight == 1 && g.strideWidth == 1
            && g.padHeight == 0 && g.padWidth == 0
        if reproducible {
            return try reproducibleConvBackwardData(g, gradOutput: gradOutput, weight: weight, bias: bias,
                                                    gradInput: gradInput, accumulate: accumulate)
        }
        try withLock {
            if usesWinograd3x3(g) {
                try winograd3x3BackwardData(g, gradOutput: gradOutput, weight: weight, bias: bias, gradInput: gradInput,
                                            accumulate: accumulate)
                return
            }
            if usesWinograd4x4(g) {
                try winograd4x4BackwardData(g, gradOutput: gradOutput, weight: weight, bias: bias, gradInput: gradInput,
                                            accumulate: accumulate)
                return
            }
            if usesBatchInner(g) {
                try batchInnerBackwardData(g, gradOutput: gradOutput, weight: weight, bias: bias, gradInput: gradInput,
                                           accumulate: accumulate)
                return
            }
            if pointwise {
                // dX (Cin, N*P) = W^T dY, stored per image, plus the bias.
                try packedGemm(m: depth, n: columns, k: g.outChannels, alpha: 1, beta: accumulate ? 1 : 0,
                               a: weightT, b: gradient,
                               c: GemmOutput(mem: dx, offset: gradInput.offset, ldc: plane, columnsPerBlock: plane,
                                             blockStride: g.inChannels * plane, bias: bias))
                return
            }
            // dcol (Kc, N*P) = W^T dY into scratch, then gathered into the images.
            let (floats, overflow) = depth.multipliedReportingOverflow(by: columns)
            guard !overflow else { throw LatentError.invalidArgument("\(op): sizes overflow") }
            let col = try scratchBuffer(.columns, floats: floats)
            try packedGemm(m: depth, n: columns, k: g.outChannels, alpha: 1, beta: 0, a: weightT, b: gradient,
                           c: GemmOutput(mem: col, offset: 0, ldc: columns, columnsPerBlock: columns, blockStride: 0, bias: nil))
            try enqueue(.conv, "col2im", global: [g.inWidth, g.inHeight, g.batch * g.inChannels], [
                .mem(col), .int(columns), .int(g.inChannels), .int(g.inHeight), .int(g.inWidth),
                .int(g.kernelHeight), .int(g.kernelWidth), .int(g.strideHeight), .int(g.strideWidth),
                .int(g.padHeight), .int(g.padWidth), .int(g.outHeight), .int(g.outWidth),
                .view(gradInput), .optionalView(bias, placeholder: try placeholder()), .int(accumulate ? 1 : 0),
            ])
        }
    }

    // input (N, Cin, H, W), gradOutput (N, Cout, Ho, Wo) -> gradWeight (Cout, Cin, kH, kW)
    public func conv2dBackwardWeights(_ geometry: ConvGeometry, input: BufferView, gradOutput: BufferView,
                                      gradWeight: BufferView, accumulate: Bool) throws {
        let op = "conv2dBackwardWeights", g = geometry
        try Check.geometry(g, op)
        try Check.count(input, g.inputCount, "input", op)
        try Check.count(gradOutput, g.outputCount, "gradOutput", op)
        try Check.count(gradWeight, g.weightCount, "gradWeight", op)
        let x = try memory(of: input), dy = try memory(of: gradOutput), dw = try memory(of: gradWeight)
        let plane = g.outHeight * g.outWidth, depth = g.inChannels * g.kernelHeight * g.kernelWidth
        if reproducible {
            return try reproducibleConvBackwardWeights(g, input: input, gradOutput: gradOutput, gradWeight: gradWeight,
                                                       accumulate: accumulate)
        }
        try withLock {
            if usesBatchInner(g) {
                if usesWinograd4x4(g) {
                    try winograd4x4BackwardWeights(g, input: input, gradOutput: gradOutput, gradWeight: gradWeight,
                                                   accumulate: accumulate)
                    return
                }
                try batchInnerBackwardWeights(g, input: input, gradOutput: gradOutput, gradWeight: gradWeight,
                                              accumulate: accumulate)
                return
            }
            // dW (Cout, Kc) = dY (Cout, N*P) * col^T (N*P, Kc).
            try packedGemm(m: g.outChannels, n: depth, k: g.batch * plane, alpha: 1, beta: accumulate ? 1 : 0,
                           a: .batched(dy, offset: gradOutput.offset, rows: g.outChannels, plane: plane, orientation: 1),
                           b: .im2col(x, offset: input.offset, g, orientation: 1),
                           c: GemmOutput(mem: dw, offset: gradWeight.offset, ldc: depth, columnsPerBlock: depth,
                                         blockStride: 0, bias: nil))
        }
    }
}
