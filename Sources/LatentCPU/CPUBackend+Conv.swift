import LatentCore

/// Convolution as im2col + GEMM, for batches below 16 (`CPUConvBatchInner.swift` takes the
/// rest; `ConvolutionPath` forces either). Images are processed in groups whose columns sit side by
/// side in one matrix (K = Cin * kH * kW rows, group * Ho * Wo columns), so that small
/// feature maps (7x7) still give the GEMM a wide enough matrix. With at least as many
/// groups as threads, each thread takes whole groups with a single-threaded GEMM and its
/// own scratch; otherwise groups run one after another with the GEMM split across threads.
extension CPUBackend {
    // input (N, Cin, H, W), weight (Cout, Cin, kH, kW), bias (Cout) -> output (N, Cout, Ho, Wo)
    public func conv2dForward(_ geometry: ConvGeometry, input: BufferView, weight: BufferView,
                              bias: BufferView?, output: BufferView) throws {
        let op = "conv2dForward"
        try CPUCheck.geometry(geometry, op)
        try CPUCheck.count(input, geometry.inputCount, "input", op)
        try CPUCheck.count(weight, geometry.weightCount, "weight", op)
        try CPUCheck.count(output, geometry.outputCount, "output", op)
        if let bias { try CPUCheck.count(bias, geometry.outChannels, "bias", op) }
        let x = try input.cpuPointer(), w = try weight.cpuPointer(), y = try output.cpuPointer()
        let b = try bias?.cpuPointer()
        if reproducible { return reproducibleConvForward(geometry, x: x, w: w, bias: b.map { UnsafePointer($0) }, y: y) }
        if usesWinograd(geometry, .forward) {
            winogradForward(geometry, x: x, w: w, bias: b.map { UnsafePointer($0) }, y: y)
            return
        }
        if usesWinograd3x3(geometry, .forward) {
            winograd3x3Forward(geometry, x: x, w: w, bias: b.map { UnsafePointer($0) }, y: y)
            return
        }
        if usesBatchInner(geometry, .forward) {
            batchInnerForward(geometry, x: x, w: w, bias: b.map { UnsafePointer($0) }, y: y)
            return
        }
        let plan = ConvPlan(geometry, threads: parallel.threadCount)
        let g = geometry, P = plan.columns, K = plan.rows

        runGroups(plan) { first, size, gemmThreads, scratch in
            let cols = size * P
            let col: UnsafeMutablePointer<Float>
            if plan.pointwise && size == 1 {
                col = x + first * g.inChannels * P // the image already is its column matrix
            } else {
                col = scratch
                for j in 0..<size {
                    plan.im2col(x + (first + j) * g.inChannels * g.inHeight * g.inWidth, col + j * P, ld: cols,
                                channels: 0..<g.inChannels, parallel: gemmThreads)
                }
            }
            if size == 1 {
                let out = y + first * g.outChannels * P
                if let b { fillRows(out, rows: g.outChannels, length: P, values: b, accumulate: false) }
                CPUGemm.sgemm(transA: .none, transB: .none, m: g.outChannels, n: P, k: K, alpha: 1,
                              a: UnsafePointer(w), lda: K, b: UnsafePointer(col), ldb: P,
                              beta: b == nil ? 0 : 1, c: out, ldc: P, parallel: gemmThreads)
            } else {
                let wide = scratch + plan.columnScratch
                CPUGemm.sgemm(transA: .none, transB: .none, m: g.outChannels, n: cols, k: K, alpha: 1,
                              a: UnsafePointer(w), lda: K, b: UnsafePointer(col), ldb: cols,
                              beta: 0, c: wide, ldc: cols, parallel: gemmThreads)
                // (Cout, group * P) -> group x (Cout, P), adding the bias.
                for j in 0..<size {
                    let out = y + (first + j) * g.outChannels * P
                    for co in 0..<g.outChannels {
                        let shift = Vec(repeating: b?[co] ?? 0)
                        let source = wide + co * cols + j * P, destination = out + co * P
                        vectorLoop(0..<P) { i, lanes in (Vec.load(source + i, lanes) + shift).store(destination + i, lanes) }
                    }
                }
            }
        }
    }

    // gradOutput (N, Cout, Ho, Wo), weight (Cout, Cin, kH, kW), bias (Cin) -> gradInput (N, Cin, H, W)
    public func conv2dBackwardData(_ geometry: ConvGeometry, gradOutput: BufferView, weight: BufferView,
                                   bias: BufferView?, gradInput: BufferView, accumulate: Bool) throws {
        let op = "conv2dBackwardData"
        try CPUCheck.geometry(geometry, op)
        try CPUCheck.count(gradOutput, geometry.outputCount, "gradOutput", op)
        try CPUCheck.count(weight, geometry.weightCount, "weight", op)
        try CPUCheck.count(gradInput, geometry.inputCount, "gradInput", op)
        if let bias { try CPUCheck.count(bias, geometry.inChannels, "bias", op) }
        let dy = try gradOutput.cpuPointer(), w = try weight.cpuPointer(), dx = try gradInput.cpuPointer()
        let b = try bias?.cpuPointer()
        if reproducible {
            return reproducibleConvBackwardData(geometry, dy: dy, w: w, bias: b.map { UnsafePointer($0) }, dx: dx, accumulate: accumulate)
        }
        if usesWinograd(geometry, .backwardData) {
            winogradBackwardData(geometry, dy: dy, w: w, bias: b.map { UnsafePointer($0) }, dx: dx, accumulate: accumulate)
            return
        }
        if usesWinograd3x3(geometry, .backwardData) {
            winograd3x3BackwardData(geometry, dy: dy, w: w, bias: b.map { UnsafePointer($0) }, dx: dx, accumulate: accumulate)
            return
        }
        if usesBatchInner(geometry, .backwardData) {
            batchInnerBackwardData(geometry, dy: dy, w: w, bias: b.map { UnsafePointer($0) }, dx: dx, accumulate: accumulate)
            return
        }
        let plan = ConvPlan(geometry, threads: parallel.threadCount)
        let g = geometry, P = plan.columns, K = plan.rows
        let imageSize = g.inChannels * g.inHeight * g.inWidth
        let plane = g.inHeight * g.inWidth

        runGroups(plan) { first, size, gemmThreads, scratch in
            let cols = size * P
            // dY of the group as one (Cout, group * P) matrix.
            let gradOut: UnsafeMutablePointer<Float>
            if size == 1 {
                gradOut = dy + first * g.outChannels * P
            } else {
                gradOut = scratch + plan.columnScratch
                for j in 0..<size {
                    for co in 0..<g.outChannels {
                        (gradOut + co * cols + j * P).update(from: dy + ((first + j) * g.outChannels + co) * P, count: P)
                    }
                }
            }
            if plan.pointwise && size == 1 {
                // dX (Cin, H*W) = W^T dY directly; the bias after.
                let image = dx + first * imageSize
                CPUGemm.sgemm(transA: .transposed, transB: .none, m: K, n: P, k: g.outChannels, alpha: 1,
                              a: UnsafePointer(w), lda: K, b: UnsafePointer(gradOut), ldb: P,
                              beta: accumulate ? 1 : 0, c: image, ldc: P, parallel: gemmThreads)
                if let b { fillRows(image, rows: g.inChannels, length: plane, values: b, accumulate: true) }
                return
            }
            let col = scratch
            CPUGemm.sgemm(transA: .transposed, transB: .none, m: K, n: cols, k: g.outChannels, alpha: 1,
                          a: UnsafePointer(w), lda: K, b: UnsafePointer(gradOut), ldb: cols,
                          beta: 0, c: col, ldc: cols, parallel: gemmThreads)
            for j in 0..<size {
                let image = dx + (first + j) * imageSize
                if let b {
                    fillRows(image, rows: g.inChannels, length: plane, values: b, accumulate: accumulate)
                } else if !accumulate {
                    image.update(repeating: 0, count: imageSize)
                }
                plan.col2im(col + j * P, ld: cols, into: image, channels: 0..<g.inChannels, parallel: gemmThreads)
            }
        }
    }

    // input (N, Cin, H, W), gradOutput (N, Cout, Ho, Wo) -> gradWeight (Cout, Cin, kH, kW)
    public func conv2dBackwardWeights(_ geometry: ConvGeometry, input: BufferView, gradOutput: BufferView,
                                      gradWeight: BufferView, accumulate: Bool) throws {
        let op = "conv2dBackwardWeights"
        try CPUCheck.geometry(geometry, op)
        try CPUCheck.count(input, geometry.inputCount, "input", op)
        try CPUCheck.count(gradOutput, geometry.outputCount, "gradOutput", op)
        try CPUCheck.count(gradWeight, geometry.weightCount, "gradWeight", op)
        let x = try input.cpuPointer(), dy = try gradOutput.cpuPointer(), dw = try gradWeight.cpuPointer()
        if reproducible { return reproducibleConvBackwardWeights(geometry, x: x, dy: dy, dw: dw, accumulate: accumulate) }
        if accumulate {
            // The new term in full, then one addition per weight: gradients accumulated from
            // several passes (a GAN's discriminator on real and generated images) come out the
            // same to the bit in any order, which the kernels' own accumulation (running sums
            // over depth blocks or threads) would not give.
            let count = geometry.weightCount
            ScratchPool.shared.with(count) { term in
                backwardWeights(geometry, x: x, dy: dy, dw: term)
                forEachRange(count: count, cost: 2) { range in
                    vectorLoop(range) { i, lanes in (Vec.load(dw + i, lanes) + Vec.load(term + i, lanes)).store(dw + i, lanes) }
                }
            }
            return
        }
        backwardWeights(geometry, x: x, dy: dy, dw: dw)
    }

    /// dW = the weight gradient for `geometry` on the path its shape takes (accumulating is
    /// the caller's single addition, above, on every path).
    private func backwardWeights(_ geometry: ConvGeometry, x: UnsafeMutablePointer<Float>, dy: UnsafeMutablePointer<Float>,
                                 dw: UnsafeMutablePointer<Float>) {
        if usesWinograd(geometry, .backwardWeights) {
            winogradBackwardWeights(geometry, x: x, dy: dy, dw: dw)
            return
        }
        if usesWinograd3x3(geometry, .backwardWeights) {
            winograd3x3BackwardWeights(geometry, x: x, dy: dy, dw: dw)
            return
        }
        if usesBatchInner(geometry, .backwardWeights) {
            if geometry.inChannels == 1 {
                singleChannelBackwardWeights(geometry, x: x, dy: dy, dw: dw)
            } else {
                batchInnerBackwardWeights(geometry, x: x, dy: dy, dw: dw)
            }
            return
        }
        let plan = ConvPlan(geometry, threads: parallel.threadCount)
        let g = geometry, P = plan.columns, K = plan.rows
        let weightCount = g.weightCount

        // Per-thread partial gradients when threads take whole groups; one running sum otherwise.
        let partialCount = plan.threadsOverGroups ? plan.chunks : 0
        let partials = ScratchPool.shared.take(Swift.max(1, partialCount * weightCount))
        defer { ScratchPool.shared.give(partials) }
        partials.update(repeating: 0, count: Swift.max(1, partialCount * weightCount))
        var startedDirect = false

        runGroups(plan) { first, size, gemmThreads, scratch, chunk in
            let cols = size * P
            let col: UnsafeMutablePointer<Float>
            if plan.pointwise && size == 1 {
                col = x + first * g.inChannels * P
            } else {
                col = scratch
                for j in 0..<size {
                    plan.im2col(x + (first + j) * g.inChannels * g.inHeight * g.inWidth, col + j * P, ld: cols,
                                channels: 0..<g.inChannels, parallel: gemmThreads)
                }
            }
            let gradOut: UnsafeMutablePointer<Float>
            if size == 1 {
                gradOut = dy + first * g.outChannels * P
            } else {
                gradOut = scratch + plan.columnScratch
                for j in 0..<size {
                    for co in 0..<g.outChannels {
                        (gradOut + co * cols + j * P).update(from: dy + ((first + j) * g.outChannels + co) * P, count: P)
                    }
                }
            }
            let target: UnsafeMutablePointer<Float>
            let beta: Float
            if plan.threadsOverGroups {
                target = partials + chunk * weightCount
                beta = 1
            } else {
                target = dw
                beta = startedDirect ? 1 : 0
                startedDirect = true
            }
            if K < PackedGEMM.nr && g.outChannels > K {
                // A one-channel input's few taps as the columns would fill half of every register
                // tile and pack B one float at a time: dW^T (K, Cout) = col (K, cols) * dY^T (cols, Cout)
                // instead, the same FMAs in the same order (the same bits), then transposed into dW.
                let outChannels = g.outChannels
                ScratchPool.shared.with(K * outChannels) { transposed in
                    CPUGemm.sgemm(transA: .none, transB: .transposed, m: K, n: outChannels, k: cols, alpha: 1,
                                  a: UnsafePointer(col), lda: cols, b: UnsafePointer(gradOut), ldb: cols,
                                  beta: 0, c: transposed, ldc: outChannels, parallel: gemmThreads)
                    for co in 0..<outChannels {
                        let row = target + co * K
                        for r in 0..<K { row[r] = beta == 0 ? transposed[r * outChannels + co] : row[r] + transposed[r * outChannels + co] }
                    }
                }
                return
            }
            // dW (Cout, K) += dY (Cout, cols) * col^T (cols, K)
            CPUGemm.sgemm(transA: .none, transB: .transposed, m: g.outChannels, n: K, k: cols, alpha: 1,
                          a: UnsafePointer(gradOut), lda: cols, b: UnsafePointer(col), ldb: cols,
                          beta: beta, c: target, ldc: K, parallel: gemmThreads)
        }
        if plan.threadsOverGroups { addUp(partials, chunks: plan.chunks, count: weightCount, into: dw) }
    }

    /// Runs `body(firstImage, groupSize, gemmParallel, scratch)` for every group of `plan`.
    private func runGroups(_ plan: ConvPlan,
                           _ body: (Int, Int, CPUParallel, UnsafeMutablePointer<Float>) -> Void) {
        runGroups(plan) { first, size, gemmThreads, scratch, _ in body(first, size, gemmThreads, scratch) }
    }

    /// As above, also passing the chunk (thread) number for per-thread partial results.
    private func runGroups(_ plan: ConvPlan,
                           _ body: (Int, Int, CPUParallel, UnsafeMutablePointer<Float>, Int) -> Void) {
        let groups = plan.groupCount
        if plan.threadsOverGroups {
            let single = CPUParallel(threadCount: 1)
            parallel.forEachChunk(work: Int.max / 2, minimumWorkPerThread: 1) { chunk, chunks in
                let range = CPUParallel.range(chunk, of: chunks, count: groups)
                guard !range.isEmpty else { return }
                let scratch = ScratchPool.shared.take(plan.scratchCount)
                defer { ScratchPool.shared.give(scratch) }
                for group in range {
                    let first = group * plan.groupSize
                    body(first, Swift.min(plan.groupSize, plan.geometry.batch - first), single, scratch, chunk)
                }
            }
            return
        }
        let scratch = ScratchPool.shared.take(plan.scratchCount)
        defer { ScratchPool.shared.give(scratch) }
        for group in 0..<groups {
            let first = group * plan.groupSize
            body(first, Swift.min(plan.groupSize, plan.geometry.batch - first), parallel, scratch, 0)
        }
    }

    /// `rows` rows of `length` floats set to (or, accumulating, increased by) `values[row]`.
    private func fillRows(_ base: UnsafeMutablePointer<Float>, rows: Int, length: Int,
                          values: UnsafeMutablePointer<Float>, accumulate: Bool) {
        for row in 0..<rows {
            let v = Vec(repeating: values[row])
            let destination = base + row * length
            if accumulate {
                vectorLoop(0..<length) { i, lanes in (Vec.load(destination + i, lanes) + v).store(destination + i, lanes) }
            } else {
                vectorLoop(0..<length) { i, lanes in v.store(destination + i, lanes) }
            }
        }
    }
}

/// How one convolution call is cut into image groups, and the im2col / col2im loops.
struct ConvPlan {
    let geometry: ConvGeometry
    /// K = Cin * kH * kW: rows of the column matrix.
    let rows: Int
    /// Ho * Wo: columns per image.
    let columns: Int
    /// 1x1 kernel, stride 1, no padding: an image is its own column matrix.
    let pointwise: Bool
    let groupSize: Int
    let groupCount: Int
    /// Whether threads take whole groups (else the GEMM is split across threads).
    let threadsOverGroups: Bool
    let chunks: Int
    /// Floats of the column matrix at the start of the scratch.
    let columnScratch: Int
    let scratchCount: Int

    /// Columns a GEMM should at least get, and the most floats a group's column matrix may take.
    static let targetColumns = 512
    static let maximumColumnFloats = 1 << 22

    init(_ g: ConvGeometry, threads: Int) {
        geometry = g
        rows = g.inChannels * g.kernelHeight * g.kernelWidth
        columns = g.outHeight * g.outWidth
        pointwise = g.kernelHeight == 1 && g.kernelWidth == 1 && g.strideHeight == 1 && g.strideWidth == 1
            && g.padHeight == 0 && g.padWidth == 0
        var size = Swift.max(1, Swift.min(g.batch, (Self.targetColumns + columns - 1) / columns))
        size = Swift.max(1, Swift.min(size, Self.maximumColumnFloats / Swift.max(1, rows * columns)))
        var count = (g.batch + size - 1) / size
        // Whole groups per thread: as many groups as threads at least, a multiple of them when possible.
        if threads > 1 && count < g.batch {
            let wanted = Swift.min(g.batch, ((Swift.max(count, threads) + threads - 1) / threads) * threads)
            size = (g.batch + wanted - 1) / wanted
            count = (g.batch + size - 1) / size
        }
        groupSize = size
        groupCount = count
        // Below ~1M multiply-adds waking a second thread costs more than it saves.
        threadsOverGroups = threads > 1 && count >= threads && g.multiplyAdds >= 1 << 20
        chunks = threads
        columnScratch = rows * size * columns
        // The column matrix, then a (Cout, group * P) matrix for the GEMM's other operand or result.
        scratchCount = Swift.max(1, columnScratch + g.outChannels * size * columns)
    }

    /// Writes image `x` (Cin, H, W) as columns: row `(c * kH + ki) * kW + kj`, column
    /// `oh * Wo + ow` of `col` (row stride `ld`) holds `x[c, oh*sh - ph + ki, ow*sw - pw + kj]`
    /// or 0 in the padding.
    func im2col(_ x: UnsafeMutablePointer<Float>, _ col: UnsafeMutablePointer<Float>, ld: Int,
                channels: Range<Int>, parallel: CPUParallel) {
        let g = geometry
        let work = channels.count * g.kernelHeight * g.kernelWidth * columns
        parallel.forEachChunk(work: work) { chunk, chunkCount in
            let mine = CPUParallel.range(chunk, of: chunkCount, count: channels.count)
            for c in mine.lowerBound + channels.lowerBound ..< mine.upperBound + channels.lowerBound {
                for ki in 0..<g.kernelHeight {
                    for kj in 0..<g.kernelWidth {
                        let (low, high) = validColumns(kj)
                        let destinationRow = col + ((c * g.kernelHeight + ki) * g.kernelWidth + kj) * ld
                        for oh in 0..<g.outHeight {
                            let destination = destinationRow + oh * g.outWidth
                            let ih = oh * g.strideHeight - g.padHeight + ki
                            guard ih >= 0, ih < g.inHeight, low < high else {
                                destination.update(repeating: 0, count: g.outWidth)
                                continue
                            }
                            if low > 0 { destination.update(repeating: 0, count: low) }
                            if high < g.outWidth { (destination + high).update(repeating: 0, count: g.outWidth - high) }
                            let sourceRow = x + (c * g.inHeight + ih) * g.inWidth
                            let iw0 = low * g.strideWidth - g.padWidth + kj
                            gather(sourceRow, from: iw0, stride: g.strideWidth, rowLength: g.inWidth,
                                   into: destination + low, count: high - low)
                        }
                    }
                }
            }
        }
    }

    /// Adds columns back into image `dx` (Cin, H, W): the adjoint of `im2col`.
    func col2im(_ col: UnsafeMutablePointer<Float>, ld: Int, into dx: UnsafeMutablePointer<Float>,
                channels: Range<Int>, parallel: CPUParallel) {
        let g = geometry
        let work = channels.count * g.kernelHeight * g.kernelWidth * columns
        parallel.forEachChunk(work: work) { chunk, chunkCount in
            let mine = CPUParallel.range(chunk, of: chunkCount, count: channels.count)
            for c in mine.lowerBound + channels.lowerBound ..< mine.upperBound + channels.lowerBound {
                for ki in 0..<g.kernelHeight {
                    for kj in 0..<g.kernelWidth {
                        let (low, high) = validColumns(kj)
                        guard low < high else { continue }
                        let sourceRow = col + ((c * g.kernelHeight + ki) * g.kernelWidth + kj) * ld
                        for oh in 0..<g.outHeight {
                            let ih = oh * g.strideHeight - g.padHeight + ki
                            guard ih >= 0, ih < g.inHeight else { continue }
                            let destinationRow = dx + (c * g.inHeight + ih) * g.inWidth
                            let iw0 = low * g.strideWidth - g.padWidth + kj
                            scatterAdd(sourceRow + oh * g.outWidth + low, count: high - low,
                                       into: destinationRow, from: iw0, stride: g.strideWidth, rowLength: g.inWidth)
                        }
                    }
                }
            }
        }
    }

    /// Output columns `low ..< high` whose input column `ow * sw - pw + kj` lies inside the row.
    @inline(__always)
    func validColumns(_ kj: Int) -> (Int, Int) {
        let g = geometry
        let offset = kj - g.padWidth // iw = ow * sw + offset
        let low = offset >= 0 ? 0 : (-offset + g.strideWidth - 1) / g.strideWidth
        let lastInside = g.inWidth - 1 - offset // ow * sw <= lastInside
        let high = lastInside < 0 ? 0 : Swift.min(g.outWidth, lastInside / g.strideWidth + 1)
        return (Swift.min(low, g.outWidth), high)
    }
}

/// `destination[i] = row[start + i * stride]` for `i < count`.
@inline(__always)
private func gather(_ row: UnsafeMutablePointer<Float>, from start: Int, stride: Int, rowLength: Int,
                    into destination: UnsafeMutablePointer<Float>, count: Int) {
    if stride == 1 {
        destination.update(from: row + start, count: count)
        return
    }
    var i = 0
    if stride == 2 {
        // Even lanes of 32 consecutive floats, while those 32 stay inside the row.
        while i + 16 <= count && start + 2 * i + 32 <= rowLength {
            Tile16.unzip(Vec.load(row + start + 2 * i), Vec.load(row + start + 2 * i + 16)).0.store(destination + i)
            i += 16
        }
    }
    while i < count {
        destination[i] = row[start + i * stride]
        i += 1
    }
}

/// `row[start + i * stride] += source[i]` for `i < count`.
@inline(__always)
private func scatterAdd(_ source: UnsafeMutablePointer<Float>, count: Int, into row: UnsafeMutablePointer<Float>,
                        from start: Int, stride: Int, rowLength: Int) {
    var i = 0
    if stride == 1 {
        vectorLoop(0..<count) { j, lanes in
            (Vec.load(row + start + j, lanes) + Vec.load(source + j, lanes)).store(row + start + j, lanes)
        }
        return
    }
    if stride == 2 {
        while i + 16 <= count && start + 2 * i + 32 <= rowLength {
            let base = row + start + 2 * i
            // Even lanes of the 32 floats at base get source[i ..< i + 16] added.
            let low = Vec.load(base), high = Vec.load(base + 16), add = Vec.load(source + i)
            let zero = Vec()
            let spreadLow = Vec(add[0], zero[0], add[1], zero[0], add[2], zero[0], add[3], zero[0],
                                add[4], zero[0], add[5], zero[0], add[6], zero[0], add[7], zero[0])
            let spreadHigh = Vec(add[8], zero[0], add[9], zero[0], add[10], zero[0], add[11], zero[0],
                                 add[12], zero[0], add[13], zero[0], add[14], zero[0], add[15], zero[0])
            (low + spreadLow).store(base)
            (high + spreadHigh).store(base + 16)
            i += 16
        }
    }
    while i < count {
        row[start + i * stride] += source[i]
        i += 1
    }
}
