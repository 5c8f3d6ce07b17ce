import CLatentSupport
import Foundation
import LatentCore

/// Single-precision GEMM for the CPU backend: transposes are absorbed by the packing
/// routines, the work is split across threads along the larger of m and n (each thread
/// owns a slab of C, so no synchronisation), and packing buffers come from a pool so a
/// training step allocates nothing after the first.
public enum CPUGemm {
    /// Below this many multiply-adds one thread is faster than waking a second.
    static let parallelThreshold = 48 * 48 * 48

    public static func sgemm(transA: Transpose, transB: Transpose, m: Int, n: Int, k: Int, alpha: Float,
                             a: UnsafePointer<Float>, lda: Int, b: UnsafePointer<Float>, ldb: Int,
                             beta: Float, c: UnsafeMutablePointer<Float>, ldc: Int, parallel: CPUParallel) {
        if m == 0 || n == 0 { return }
        // op(A)[i, p] and op(B)[p, j] as (row stride, column stride) pairs.
        let (aRowStride, aColStride) = transA == .none ? (lda, 1) : (1, lda)
        let (bRowStride, bColStride) = transB == .none ? (ldb, 1) : (1, ldb)
        if (n == 1 || m == 1) && k > 0 {
            // Matrix-vector products (a Linear layer with one output, as a discriminator's last
            // one, and its gradients): a 12 x 32 tile would compute 31 columns (or 11 rows) of padding.
            if n == 1 {
                matrixVector(rows: m, depth: k, alpha: alpha, a: a, rowStride: aRowStride, colStride: aColStride,
                             x: b, xStride: bRowStride, beta: beta, y: c, yStride: ldc, parallel: parallel)
            } else {
                // C (1 x n) = op(B)^T (n x k) * op(A)^T: the same with the roles swapped.
                matrixVector(rows: n, depth: k, alpha: alpha, a: b, rowStride: bColStride, colStride: bRowStride,
                             x: a, xStride: aColStride, beta: beta, y: c, yStride: 1, parallel: parallel)
            }
            return
        }
        if beta != 0 && k > PackedGEMM.kc {
            // The product in full, then one addition per element, as the OpenCL kernels do:
            // the depth blocks would otherwise add into C one by one, and terms accumulated
            // into C (a Linear layer's weight gradient over several passes) would give other
            // bits in another order.
            ScratchPool.shared.with(m * n) { product in
                sgemm(transA: transA, transB: transB, m: m, n: n, k: k, alpha: alpha, a: a, lda: lda, b: b, ldb: ldb,
                      beta: 0, c: product, ldc: n, parallel: parallel)
                let scale = Vec(repeating: beta)
                for i in 0..<m {
                    let row = c + i * ldc, fresh = product + i * n
                    vectorLoop(0..<n) { j, lanes in
                        let old = Vec.load(row + j, lanes)
                        (beta == 1 ? old + Vec.load(fresh + j, lanes) : scale * old + Vec.load(fresh + j, lanes)).store(row + j, lanes)
                    }
                }
            }
            return
        }
        let work = m * n * k
        let threads = work < parallelThreshold ? 1 : parallel.threadCount
        let splitColumns = n >= m
        let chunks = min(threads, splitColumns ? (n + PackedGEMM.nr - 1) / PackedGEMM.nr : (m + PackedGEMM.mr - 1) / PackedGEMM.mr)
        parallel.forEachChunk(chunkCount: chunks) { chunk, chunkCount in
            let scratch = PackingScratch.pool.take(depth: k, columns: splitColumns ? (n + chunkCount - 1) / chunkCount : n)
            defer { PackingScratch.pool.give(scratch) }
            if splitColumns {
                let columns = CPUParallel.range(chunk, of: chunkCount, count: n, alignment: PackedGEMM.nr)
                if columns.isEmpty { return }
                PackedGEMM.multiply(m: m, n: columns.count, k: k, alpha: alpha,
                                    a: a, aRowStride: aRowStride, aColStride: aColStride,
                                    b: b + columns.lowerBound * bColStride, bRowStride: bRowStride, bColStride: bColStride,
                                    beta: beta, c: c + columns.lowerBound, ldc: ldc,
                                    packedA: scratch.packedA, packedB: scratch.packedB, edgeTile: scratch.edgeTile)
            } else {
                let rows = CPUParallel.range(chunk, of: chunkCount, count: m, alignment: PackedGEMM.mr)
                if rows.isEmpty { return }
                PackedGEMM.multiply(m: rows.count, n: n, k: k, alpha: alpha,
                                    a: a + rows.lowerBound * aRowStride, aRowStride: aRowStride, aColStride: aColStride,
                                    b: b, bRowStride: bRowStride, bColStride: bColStride,
                                    beta: beta, c: c + rows.lowerBound * ldc, ldc: ldc,
                                    packedA: scratch.packedA, packedB: scratch.packedB, edgeTile: scratch.edgeTile)
            }
        }
    }
}

extension CPUGemm {
    /// `y[i * yStride] = alpha * sum_p a[i * rowStride + p * colStride] * x[p * xStride] + beta * y[i * yStride]`
    /// for i < rows. Contiguous rows (colStride 1): one dot product per row, 16 lanes at a time;
    /// contiguous columns (rowStride 1): y accumulates columns of A scaled by x[p]. Rows split
    /// across threads when there are enough.
    static func matrixVector(rows: Int, depth: Int, alpha: Float, a: UnsafePointer<Float>, rowStride: Int, colStride: Int,
                             x: UnsafePointer<Float>, xStride: Int, beta: Float, y: UnsafeMutablePointer<Float>, yStride: Int,
                             parallel: CPUParallel) {
        parallel.forEachChunk(work: rows * depth, minimumWorkPerThread: 1 << 16) { chunk, chunks in
            let mine = CPUParallel.range(chunk, of: chunks, count: rows, alignment: 16)
            guard !mine.isEmpty else { return }
            if colStride == 1 {
                // Dot products; x gathered when it is strided.
                ScratchPool.shared.with(xStride == 1 ? 16 : depth) { gathered in
                    let v: UnsafePointer<Float>
                    if xStride == 1 {
                        v = x
                    } else {
                        for p in 0..<depth { gathered[p] = x[p * xStride] }
                        v = UnsafePointer(gathered)
                    }
                    for i in mine {
                        let row = a + i * rowStride
                        var acc0 = Vec(), acc1 = Vec()
                        var p = 0
                        while p + 32 <= depth {
                            acc0.addProduct(Vec.load(row + p), Vec.load(v + p))
                            acc1.addProduct(Vec.load(row + p + 16), Vec.load(v + p + 16))
                            p += 32
                        }
                        vectorLoop(p..<depth) { q, lanes in acc0.addProduct(Vec.load(row + q, lanes), Vec.load(v + q, lanes)) }
                        let dot = (acc0 + acc1).sum()
                        let target = y + i * yStride
                        target.pointee = beta == 0 ? alpha * dot : alpha * dot + beta * target.pointee
                    }
                }
                return
            }
            // Columns of A (rowStride 1 or general): accumulate into a contiguous copy of y's rows.
            ScratchPool.shared.with(mine.count) { sums in
                sums.update(repeating: 0, count: mine.count)
                for p in 0..<depth {
                    let scale = Vec(repeating: x[p * xStride])
                    let column = a + p * colStride + mine.lowerBound * rowStride
                    if rowStride == 1 {
                        vectorLoop(0..<mine.count) { i, lanes in
                            Vec.load(sums + i, lanes).addingProduct(scale, Vec.load(column + i, lanes)).store(sums + i, lanes)
                        }
                    } else {
                        let s = x[p * xStride]
                        for i in 0..<mine.count { sums[i] += s * column[i * rowStride] }
                    }
                }
                for (index, i) in mine.enumerated() {
                    let target = y + i * yStride
                    target.pointee = beta == 0 ? alpha * sums[index] : alpha * sums[index] + beta * target.pointee
                }
            }
        }
    }
}

/// Packing buffers for one thread's GEMM, sized for the largest blocks.
final class PackingScratch: @unchecked Sendable {
    let packedA: UnsafeMutablePointer<Float>
    let packedB: UnsafeMutablePointer<Float>
    let edgeTile: UnsafeMutablePointer<Float>
    let capacityB: Int

    init(capacityB: Int) {
        self.capacityB = capacityB
        // Cache-line aligned, so that no 64-byte load of a packed panel straddles two lines.
        func aligned(_ count: Int) -> UnsafeMutablePointer<Float> {
            UnsafeMutableRawPointer.allocate(byteCount: count * MemoryLayout<Float>.stride, alignment: 64)
                .bindMemory(to: Float.self, capacity: count)
        }
        packedA = aligned(PackedGEMM.mc * PackedGEMM.kc)
        packedB = aligned(capacityB)
        edgeTile = aligned(PackedGEMM.mr * PackedGEMM.nr)
    }

    deinit {
        packedA.deallocate()
        packedB.deallocate()
        edgeTile.deallocate()
    }

    static let pool = Pool()

    /// Buffers handed out to GEMM calls and returned after; a few live for the process.
    final class Pool: @unchecked Sendable {
        private let lock = NSLock()
        private var free: [PackingScratch] = []

        func take(depth: Int, columns: Int) -> PackingScratch {
            let roundedColumns = (min(columns, PackedGEMM.nc) + PackedGEMM.nr - 1) / PackedGEMM.nr * PackedGEMM.nr
            let needed = max(1, min(depth, PackedGEMM.kc) * roundedColumns)
            lock.lock()
            defer { lock.unlock() }
            if let index = free.firstIndex(where: { $0.capacityB >= needed }) {
                return free.remove(at: index)
            }
            return PackingScratch(capacityB: max(needed, PackedGEMM.kc * 512))
        }

        func give(_ scratch: PackingScratch) {
            lock.lock()
            defer { lock.unlock() }
            free.append(scratch)
        }
    }
}

/// Packed, cache-blocked SGEMM (the BLIS loop nest): B is packed into KC x NR panels,
/// A into MR x KC panels, and a register-tiled micro-kernel multiplies one pair.
/// The register tile is 12 x 32 (24 SIMD16 accumulators in AVX-512's 32 zmm) or, with
/// `RegisterFile.narrow`, 6 x 16 (12 ymm of AVX2's 16); every element is summed over k in
/// the same order with either, so both give the same bits.
enum PackedGEMM {
    static let mr = RegisterFile.narrow ? 6 : 12
    static let nr = RegisterFile.narrow ? 16 : 32
    /// Depth of one packed block: an NR-wide B micro-panel (KC * NR floats) stays in L1 beside
    /// an A micro-panel (32 + 12 KiB of AVX-512's 48 KiB; 16 + 6 KiB of AVX2's 32 KiB).
    /// `LATENT_CPU_KC` overrides (measuring; it changes the order of summation).
    static let kc = ProcessInfo.processInfo.environment["LATENT_CPU_KC"].flatMap(Int.init).map { Swift.max(16, $0) } ?? 256
    /// Rows of A packed at a time: an MC x KC block stays in L2.
    static let mc = 192
    /// A row-major A is read in place by the micro-kernel (`DirectA`) except where the CPU
    /// prefers it packed (`CPUInfo.prefersPackedA`); `LATENT_CPU_PACKA=1` packs it and `=0`
    /// reads it in place (measuring). Either way every element is summed in the same order.
    static let readAInPlace: Bool = {
        switch ProcessInfo.processInfo.environment["LATENT_CPU_PACKA"] {
        case "1": return false
        case "0": return true
        default: return !CPUInfo.prefersPackedA
        }
    }()
    /// Columns of B packed at a time: a KC x NC block stays in L2/L3.
    static let nc = 2048

    /// Packs `rows x depth` of A (element (i, p) at `a[i * rowStride + p * colStride]`) into
    /// MR-row panels, each stored k-major: panel[p * MR + r]. Missing rows are zero.
    @inline(__always)
    static func packA(rows: Int, depth: Int, a: UnsafePointer<Float>, rowStride: Int, colStride: Int,
                      into packed: UnsafeMutablePointer<Float>) {
        // MR as a literal in each branch: the full-panel loops unroll over it (a run-time MR
        // left them as one scalar copy with overflow checks per element, 10% of an SGEMM).
        if mr == 6 {
            packA(panelWidth: 6, rows: rows, depth: depth, a: a, rowStride: rowStride, colStride: colStride, into: packed)
        } else {
            packA(panelWidth: 12, rows: rows, depth: depth, a: a, rowStride: rowStride, colStride: colStride, into: packed)
        }
    }

    @inline(__always)
    static func packA(panelWidth mr: Int, rows: Int, depth: Int, a: UnsafePointer<Float>, rowStride: Int, colStride: Int,
                      into packed: UnsafeMutablePointer<Float>) {
        var panelStart = 0
        var out = packed
        while panelStart < rows {
            let panelRows = min(mr, rows - panelStart)
            let base = a + panelStart * rowStride
            if colStride == 1 && panelRows == mr {
                // Row-major A: read MR rows side by side, one k at a time.
                for p in 0..<depth {
                    let target = out + p &* mr, column = base + p
                    for r in 0..<mr { target[r] = column[r &* rowStride] }
                }
            } else if rowStride == 1 && panelRows == mr {
                // Transposed A: MR consecutive floats per k.
                for p in 0..<depth {
                    let source = base + p &* colStride, target = out + p &* mr
                    for r in 0..<mr { target[r] = source[r] }
                }
            } else {
                for p in 0..<depth {
                    for r in 0..<mr {
                        out[p * mr + r] = r < panelRows ? base[r * rowStride + p * colStride] : 0
                    }
                }
            }
            out += mr * depth
            panelStart += mr
        }
    }

    /// Packs `depth x cols` of B (element (p, j) at `b[p * rowStride + j * colStride]`) into
    /// NR-column panels stored k-major: panel[p * NR + j]. Missing columns are zero.
    @inline(__always)
    static func packB(depth: Int, cols: Int, b: UnsafePointer<Float>, rowStride: Int, colStride: Int,
                      into packed: UnsafeMutablePointer<Float>) {
        var panelStart = 0
        var out = packed
        if colStride == 1 {
            // Row-major B: the full panels row by row, so that B is read front to back rather
            // than one cache line per row and panel.
            let fullPanels = cols / nr
            for p in 0..<depth {
                let source = b + p * rowStride
                for panel in 0..<fullPanels {
                    let from = source + panel * nr, target = packed + panel * nr * depth + p * nr
                    Vec.load(from).store(target)
                    if nr == 32 { Vec.load(from + 16).store(target + 16) }
                }
            }
            panelStart = fullPanels * nr
            out = packed + fullPanels * nr * depth
        }
        while panelStart < cols {
            let panelCols = min(nr, cols - panelStart)
            let base = b + panelStart * colStride
            if rowStride == 1 && panelCols == nr {
                // Transposed B (a Linear layer's weight): 16 x 16 register transposes.
                packTransposedPanel(depth: depth, b: base, colStride: colStride, into: out)
            } else {
                for p in 0..<depth {
                    for j in 0..<nr {
                        out[p * nr + j] = j < panelCols ? base[p * rowStride + j * colStride] : 0
                    }
                }
            }
            out += nr * depth
            panelStart += nr
        }
    }

    /// One full NR-column panel of B stored transposed (element (p, j) at `b[p + j * colStride]`):
    /// 16 depths at a time, a 16 x 16 transpose per 16 columns (8 x 8 ones on AVX2, see
    /// `Tile8`); the depth remainder scalar.
    @inline(__always)
    static func packTransposedPanel(depth: Int, b: UnsafePointer<Float>, colStride: Int, into out: UnsafeMutablePointer<Float>) {
        var p = 0
        if RegisterFile.narrow {
            while p + 8 <= depth {
                for first in stride(from: 0, to: nr, by: 8) {
                    let from = b + first * colStride + p, target = out + p * nr + first
                    Tile8 { t in Tile8.Row.load(from + t * colStride) }.transposed().forEachRow { i, row in row.store(target + i * nr) }
                }
                p += 8
            }
        }
        while p + 16 <= depth {
            for half in 0..<(nr / 16) {
                let first = b + half * 16 * colStride + p, target = out + p * nr + half * 16
                Tile16 { t in Vec.load(first + t * colStride) }.transposed().forEachRow { i, row in row.store(target + i * nr) }
            }
            p += 16
        }
        while p < depth {
            for j in 0..<nr { out[p * nr + j] = b[p + j * colStride] }
            p += 1
        }
    }

    /// C (m x n, row stride ldc) = alpha * A * B + beta * C with A, B described by strides,
    /// on the calling thread. `packedA` holds MC x KC floats, `packedB` KC x NC.
    static func multiply(m: Int, n: Int, k: Int, alpha: Float,
                         a: UnsafePointer<Float>, aRowStride: Int, aColStride: Int,
                         b: UnsafePointer<Float>, bRowStride: Int, bColStride: Int,
                         beta: Float, c: UnsafeMutablePointer<Float>, ldc: Int,
                         packedA: UnsafeMutablePointer<Float>, packedB: UnsafeMutablePointer<Float>,
                         edgeTile: UnsafeMutablePointer<Float>, aInPlace: Bool = readAInPlace) {
        // Only a row-major A: a transposed one in place reads one cache line (and, at large
        // strides, one page) per k, which measured up to 20% slower than packing it.
        let direct = aInPlace && aColStride == 1 && !DirectA.aliases(rowStride: aRowStride) ? DirectA(base: a, lda: aRowStride) : nil
        blocked(m: m, n: n, k: k, kc: kc, alpha: alpha, beta: beta, c: c, ldc: ldc,
                packedA: packedA, packedB: packedB, edgeTile: edgeTile,
                packA: { i0, rows, p0, depth, into in
                    packA(rows: rows, depth: depth, a: a + i0 * aRowStride + p0 * aColStride,
                          rowStride: aRowStride, colStride: aColStride, into: into)
                },
                packB: { p0, depth, j0, cols, into in
                    packB(depth: depth, cols: cols, b: b + p0 * bRowStride + j0 * bColStride,
                          rowStride: bRowStride, colStride: bColStride, into: into)
                }, directA: direct)
    }

    /// The loop nest of `multiply` with the packing left to the caller:
    /// `packA(i0, rows, p0, depth, into)` packs rows `i0..<i0+rows` and depth `p0..<p0+depth` of
    /// A into MR-row panels (as `packA` does, missing rows zero); `packB(p0, depth, j0, cols,
    /// into)` packs depth x columns `j0..<j0+cols` of B into NR-column panels (as `packB`).
    /// C (m x n, row stride ldc) = A * B + beta * C, on the calling thread, depth blocks of `kc`.
    /// Packing buffers come from `ScratchPool`.
    /// With `prepackedA` (all of A packed by `prepackA` with the same `kc`) `packA` is not called.
    static func multiplyCustom(m: Int, n: Int, k: Int, kc: Int,
                               packA: (Int, Int, Int, Int, UnsafeMutablePointer<Float>) -> Void,
                               packB: (Int, Int, Int, Int, UnsafeMutablePointer<Float>) -> Void,
                               prepackedA: UnsafePointer<Float>? = nil,
                               beta: Float, c: UnsafeMutablePointer<Float>, ldc: Int) {
        if m == 0 || n == 0 { return }
        let depthBlock = Swift.max(1, kc)
        let widest = (Swift.min(n, nc) + nr - 1) / nr * nr
        let pool = ScratchPool.shared
        let packedA = pool.take(prepackedA == nil ? mc * depthBlock : 1), packedB = pool.take(depthBlock * widest)
        let edgeTile = pool.take(mr * nr)
        defer { pool.give(packedA); pool.give(packedB); pool.give(edgeTile) }
        blocked(m: m, n: n, k: k, kc: depthBlock, alpha: 1, beta: beta, c: c, ldc: ldc,
                packedA: packedA, packedB: packedB, edgeTile: edgeTile, packA: packA, packB: packB, prepackedA: prepackedA)
    }

    /// Floats `prepackA` writes for an m x k A.
    static func prepackedCount(m: Int, k: Int) -> Int {
        let blocks = (m + mc - 1) / mc
        return blocks * ((mc + mr - 1) / mr * mr) * k
    }

    /// Where `prepackA` puts the block of rows `ic..<ic+rows` (ic a multiple of MC) and depth
    /// from `pc` (a multiple of the depth block): blocks of MC rows one after another, each
    /// its depth blocks in order, every block in `packA`'s panel layout.
    @inline(__always)
    static func prepackedOffset(ic: Int, rows: Int, pc: Int, k: Int) -> Int {
        let fullBlock = (mc + mr - 1) / mr * mr
        return (ic / mc) * fullBlock * k + (rows + mr - 1) / mr * mr * pc
    }

    /// Packs all of A (m x k) for `multiplyCustom(prepackedA:)` with depth blocks of `kc`,
    /// the blocks shared out between the threads: a multiply whose threads own column ranges
    /// then reads one packed A instead of each packing all of it.
    static func prepackA(m: Int, k: Int, kc: Int, packA: (Int, Int, Int, Int, UnsafeMutablePointer<Float>) -> Void,
                         into packed: UnsafeMutablePointer<Float>, parallel: CPUParallel) {
        let depthBlock = Swift.max(1, kc)
        let rowBlocks = (m + mc - 1) / mc, depthBlocks = (k + depthBlock - 1) / depthBlock
        parallel.forEachItem(count: rowBlocks * depthBlocks) { item in
            let ic = (item / depthBlocks) * mc, pc = (item % depthBlocks) * depthBlock
            let rows = Swift.min(mc, m - ic), depth = Swift.min(depthBlock, k - pc)
            packA(ic, rows, pc, depth, packed + prepackedOffset(ic: ic, rows: rows, pc: pc, k: k))
        }
    }

    /// The cache-blocked loop nest both entry points share (NC columns of B, KC of depth,
    /// MC rows of A, then MR x NR register tiles); edge tiles go through `edgeTile`.
    @inline(__always)
    static func blocked(m: Int, n: Int, k: Int, kc: Int, alpha: Float, beta: Float,
                        c: UnsafeMutablePointer<Float>, ldc: Int,
                        packedA: UnsafeMutablePointer<Float>, packedB: UnsafeMutablePointer<Float>,
                        edgeTile: UnsafeMutablePointer<Float>,
                        packA: (Int, Int, Int, Int, UnsafeMutablePointer<Float>) -> Void,
                        packB: (Int, Int, Int, Int, UnsafeMutablePointer<Float>) -> Void,
                        prepackedA: UnsafePointer<Float>? = nil, directA: DirectA? = nil) {
        if k == 0 {
            for i in 0..<m { for j in 0..<n { c[i * ldc + j] = beta == 0 ? 0 : beta * c[i * ldc + j] } }
            return
        }
        let mr = Self.mr, nr = Self.nr
        var jc = 0
        while jc < n {
            let blockCols = Swift.min(nc, n - jc)
            var pc = 0
            while pc < k {
                let depth = Swift.min(kc, k - pc)
                let blockBeta: Float = pc == 0 ? beta : 1
                packB(pc, depth, jc, blockCols, packedB)
                var ic = 0
                while ic < m {
                    let blockRows = Swift.min(mc, m - ic)
                    let aBlock: UnsafePointer<Float>
                    if let prepackedA {
                        aBlock = prepackedA + prepackedOffset(ic: ic, rows: blockRows, pc: pc, k: k)
                    } else if directA != nil {
                        // In place, only A's last rows (fewer than MR) go through a zero-padded panel.
                        let fullRows = blockRows / mr * mr
                        if fullRows < blockRows { packA(ic + fullRows, blockRows - fullRows, pc, depth, packedA) }
                        aBlock = UnsafePointer(packedA)
                    } else {
                        packA(ic, blockRows, pc, depth, packedA)
                        aBlock = UnsafePointer(packedA)
                    }
                    @inline(__always) func tile(_ ir: Int, _ jr: Int) {
                        let tileRows = Swift.min(mr, blockRows - ir), tileCols = Swift.min(nr, blockCols - jr)
                        let bPanel = packedB + jr * depth
                        let cTile = c + (ic + ir) * ldc + jc + jr
                        let full = tileRows == mr && tileCols == nr
                        let (target, targetStride, targetBeta) = full ? (cTile, ldc, blockBeta) : (edgeTile, nr, Float(0))
                        if let directA, tileRows == mr {
                            microKernelRows(depth: depth, a: directA.base + (ic + ir) * directA.lda + pc, lda: directA.lda,
                                            b: bPanel, c: target, ldc: targetStride, alpha: alpha, beta: targetBeta)
                        } else {
                            let aPanel = directA == nil ? aBlock + ir * depth : aBlock
                            microKernel(depth: depth, a: aPanel, aStride: mr, b: bPanel, c: target, ldc: targetStride, alpha: alpha, beta: targetBeta)
                        }
                        if !full {
                            copyEdge(edgeTile, stride: nr, rows: tileRows, columns: tileCols, into: cTile, ldc: ldc, beta: blockBeta)
                        }
                    }
                    var jr = 0
                    while jr < blockCols {
                        var ir = 0
                        while ir < blockRows { tile(ir, jr); ir += mr }
                        jr += nr
                    }
                    ic += mc
                }
                pc += depth
            }
            jc += nc
        }
    }

    /// A row-major A read where it lies: element (i, p) at `base[i * lda + p]`. The kernels
    /// broadcast A one element at a time from MR rows, and MR contiguous rows stream as well as
    /// a packed panel does; packing A was a tenth of a Linear layer's GEMM on the Xeon machine
    /// (every thread packed all of it). Reading it in place measured 1.04-1.10x on the models'
    /// Linear shapes and 1.22-1.28x at 256^3 in an in-process A/B, 0.98-1.11x (within noise)
    /// in `Benchmarks/compare-ops.py` (docs/PERFORMANCE.md).
    struct DirectA {
        let base: UnsafePointer<Float>
        let lda: Int

        /// Rows a multiple of 4 KiB apart (a 1024- or 2048-wide A) fall into the same L1 set,
        /// and an MC x KC block of them into a sixteenth of L2's sets, more lines per set than
        /// its ways: such an A is packed. At 1024^3 and 2048^3 on two threads packing measured
        /// 1.07-1.13x in in-process A/B runs (Zen 3, 2026-12-03); at 256^3 reading in place stays ahead.
        static func aliases(rowStride: Int) -> Bool { rowStride % 1024 == 0 }
    }

    /// The MR x NR tile of a packed A panel (MR rows side by side, one k every `aStride`
    /// floats) and a packed B panel: 12 x 32 where 24 SIMD16 accumulators fit in registers
    /// (AVX-512's 32 zmm), else 6 x 16 (`RegisterFile.narrow`: AVX2's 16 ymm hold 12
    /// accumulators, a broadcast and a row of B). Every element is summed over k in the same
    /// order either way.
    @inline(__always)
    static func microKernel(depth: Int, a: UnsafePointer<Float>, aStride: Int, b: UnsafePointer<Float>,
                            c: UnsafeMutablePointer<Float>, ldc: Int, alpha: Float, beta: Float) {
        if RegisterFile.narrow {
            kernel6x16(depth: depth, a: a, aStride: aStride, b: b, bStride: 16, c: c, ldc: ldc, alpha: alpha, beta: beta)
        } else {
            kernel12x32(depth: depth, a: a, aStride: aStride, b: b, c: c, ldc: ldc, alpha: alpha, beta: beta)
        }
    }

    /// The MR x NR tile with A's rows `lda` floats apart and k contiguous (a row-major A in place).
    @inline(__always)
    static func microKernelRows(depth: Int, a: UnsafePointer<Float>, lda: Int, b: UnsafePointer<Float>,
                                c: UnsafeMutablePointer<Float>, ldc: Int, alpha: Float, beta: Float) {
        if RegisterFile.narrow {
            kernel6x16Rows(depth: depth, a: a, lda: lda, b: b, c: c, ldc: ldc, alpha: alpha, beta: beta)
        } else {
            kernel12x32(depth: depth, a: a, aStride: 1, aRow: lda, b: b, c: c, ldc: ldc, alpha: alpha, beta: beta)
        }
    }

    /// Rows `0..<rows`, columns `0..<columns` of an edge tile computed into `tile` (row
    /// stride `stride`) -> C, adding `beta` times what C holds.
    @inline(__always)
    static func copyEdge(_ tile: UnsafePointer<Float>, stride: Int, rows: Int, columns: Int, into c: UnsafeMutablePointer<Float>,
                         ldc: Int, beta: Float) {
        for r in 0..<rows {
            let row = c + r * ldc, source = tile + r * stride
            if beta == 0 {
                for j in 0..<columns { row[j] = source[j] }
            } else {
                for j in 0..<columns { row[j] = source[j] + beta * row[j] }
            }
        }
    }

    /// The 6 x 16 tile of `RegisterFile.narrow`: six SIMD16 accumulators (12 ymm registers).
    /// A is read with stride `aStride` per k (6 for its own panels; 12 reads 6 rows of a
    /// 12 x 32 panel, as the tests do), B with `bStride`.
    @inline(never)
    static func kernel6x16(depth: Int, a: UnsafePointer<Float>, aStride: Int, b: UnsafePointer<Float>, bStride: Int,
                              c: UnsafeMutablePointer<Float>, ldc: Int, alpha: Float, beta: Float) {
        kernel6x16Body(depth: depth, a: a, aStride: aStride, aRow: 1, b: b, bStride: bStride, c: c, ldc: ldc, alpha: alpha, beta: beta)
    }

    /// `kernel6x16` reading A in place, row r of the tile at `a + r * lda` (k contiguous).
    @inline(never)
    static func kernel6x16Rows(depth: Int, a: UnsafePointer<Float>, lda: Int, b: UnsafePointer<Float>,
                               c: UnsafeMutablePointer<Float>, ldc: Int, alpha: Float, beta: Float) {
        kernel6x16Body(depth: depth, a: a, aStride: 1, aRow: lda, b: b, bStride: 16, c: c, ldc: ldc, alpha: alpha, beta: beta)
    }

    @inline(__always)
    static func kernel6x16Body(depth: Int, a: UnsafePointer<Float>, aStride: Int, aRow: Int, b: UnsafePointer<Float>, bStride: Int,
                               c: UnsafeMutablePointer<Float>, ldc: Int, alpha: Float, beta: Float) {
        for row in 0..<6 { latent_prefetch_row_for_write(c + row * ldc) }
        var c0 = Vec(), c1 = Vec(), c2 = Vec(), c3 = Vec(), c4 = Vec(), c5 = Vec()
        var ap = a
        var bp = UnsafeRawPointer(b)
        for _ in 0..<depth {
            let b0 = bp.loadUnaligned(as: Vec.self)
            c0.addProduct(Vec(repeating: ap[0]), b0)
            c1.addProduct(Vec(repeating: ap[1 &* aRow]), b0)
            c2.addProduct(Vec(repeating: ap[2 &* aRow]), b0)
            c3.addProduct(Vec(repeating: ap[3 &* aRow]), b0)
            c4.addProduct(Vec(repeating: ap[4 &* aRow]), b0)
            c5.addProduct(Vec(repeating: ap[5 &* aRow]), b0)
            ap += aStride
            bp += 4 * bStride
        }
        let alphaVector = Vec(repeating: alpha)
        if beta == 0 {
            (alphaVector * c0).store(c); (alphaVector * c1).store(c + ldc); (alphaVector * c2).store(c + 2 * ldc)
            (alphaVector * c3).store(c + 3 * ldc); (alphaVector * c4).store(c + 4 * ldc); (alphaVector * c5).store(c + 5 * ldc)
        } else {
            let betaVector = Vec(repeating: beta)
            (alphaVector * c0).addingProduct(betaVector, Vec.load(c)).store(c)
            (alphaVector * c1).addingProduct(betaVector, Vec.load(c + ldc)).store(c + ldc)
            (alphaVector * c2).addingProduct(betaVector, Vec.load(c + 2 * ldc)).store(c + 2 * ldc)
            (alphaVector * c3).addingProduct(betaVector, Vec.load(c + 3 * ldc)).store(c + 3 * ldc)
            (alphaVector * c4).addingProduct(betaVector, Vec.load(c + 4 * ldc)).store(c + 4 * ldc)
            (alphaVector * c5).addingProduct(betaVector, Vec.load(c + 5 * ldc)).store(c + 5 * ldc)
        }
    }

    /// 12x32 register tile: 24 SIMD16 accumulators, one broadcast of A and 2 loads of B per k.
    @inline(__always)
    static func kernel12x32(depth: Int, a: UnsafePointer<Float>, aStride: Int = 12, aRow: Int = 1, b: UnsafePointer<Float>,
                           c: UnsafeMutablePointer<Float>, ldc: Int, alpha: Float, beta: Float) {
        var c0_0 = SIMD16<Float>()
        var c0_1 = SIMD16<Float>()
        var c1_0 = SIMD16<Float>()
        var c1_1 = SIMD16<Float>()
        var c2_0 = SIMD16<Float>()
        var c2_1 = SIMD16<Float>()
        var c3_0 = SIMD16<Float>()
        var c3_1 = SIMD16<Float>()
        var c4_0 = SIMD16<Float>()
        var c4_1 = SIMD16<Float>()
        var c5_0 = SIMD16<Float>()
        var c5_1 = SIMD16<Float>()
        var c6_0 = SIMD16<Float>()
        var c6_1 = SIMD16<Float>()
        var c7_0 = SIMD16<Float>()
        var c7_1 = SIMD16<Float>()
        var c8_0 = SIMD16<Float>()
        var c8_1 = SIMD16<Float>()
        var c9_0 = SIMD16<Float>()
        var c9_1 = SIMD16<Float>()
        var c10_0 = SIMD16<Float>()
        var c10_1 = SIMD16<Float>()
        var c11_0 = SIMD16<Float>()
        var c11_1 = SIMD16<Float>()
        var ap = a
        var bp = UnsafeRawPointer(b)
        for _ in 0..<depth {
            let b0 = bp.load(fromByteOffset: 0, as: SIMD16<Float>.self)
            let b1 = bp.load(fromByteOffset: 64, as: SIMD16<Float>.self)
            let a0 = SIMD16<Float>(repeating: ap[0])
            c0_0.addProduct(a0, b0)
            c0_1.addProduct(a0, b1)
            let a1 = SIMD16<Float>(repeating: ap[1 &* aRow])
            c1_0.addProduct(a1, b0)
            c1_1.addProduct(a1, b1)
            let a2 = SIMD16<Float>(repeating: ap[2 &* aRow])
            c2_0.addProduct(a2, b0)
            c2_1.addProduct(a2, b1)
            let a3 = SIMD16<Float>(repeating: ap[3 &* aRow])
            c3_0.addProduct(a3, b0)
            c3_1.addProduct(a3, b1)
            let a4 = SIMD16<Float>(repeating: ap[4 &* aRow])
            c4_0.addProduct(a4, b0)
            c4_1.addProduct(a4, b1)
            let a5 = SIMD16<Float>(repeating: ap[5 &* aRow])
            c5_0.addProduct(a5, b0)
            c5_1.addProduct(a5, b1)
            let a6 = SIMD16<Float>(repeating: ap[6 &* aRow])
            c6_0.addProduct(a6, b0)
            c6_1.addProduct(a6, b1)
            let a7 = SIMD16<Float>(repeating: ap[7 &* aRow])
            c7_0.addProduct(a7, b0)
            c7_1.addProduct(a7, b1)
            let a8 = SIMD16<Float>(repeating: ap[8 &* aRow])
            c8_0.addProduct(a8, b0)
            c8_1.addProduct(a8, b1)
            let a9 = SIMD16<Float>(repeating: ap[9 &* aRow])
            c9_0.addProduct(a9, b0)
            c9_1.addProduct(a9, b1)
            let a10 = SIMD16<Float>(repeating: ap[10 &* aRow])
            c10_0.addProduct(a10, b0)
            c10_1.addProduct(a10, b1)
            let a11 = SIMD16<Float>(repeating: ap[11 &* aRow])
            c11_0.addProduct(a11, b0)
            c11_1.addProduct(a11, b1)
            ap += aStride
            bp += 128
        }
        let alphaVector = SIMD16<Float>(repeating: alpha)
        if beta == 0 {
            UnsafeMutableRawPointer(c + 0 * ldc + 0).storeBytes(of: alphaVector * c0_0, as: SIMD16<Float>.self)
            UnsafeMutableRawPointer(c + 0 * ldc + 16).storeBytes(of: alphaVector * c0_1, as: SIMD16<Float>.self)
            UnsafeMutableRawPointer(c + 1 * ldc + 0).storeBytes(of: alphaVector * c1_0, as: SIMD16<Float>.self)
            UnsafeMutableRawPointer(c + 1 * ldc + 16).storeBytes(of: alphaVector * c1_1, as: SIMD16<Float>.self)
            UnsafeMutableRawPointer(c + 2 * ldc + 0).storeBytes(of: alphaVector * c2_0, as: SIMD16<Float>.self)
            UnsafeMutableRawPointer(c + 2 * ldc + 16).storeBytes(of: alphaVector * c2_1, as: SIMD16<Float>.self)
            UnsafeMutableRawPointer(c + 3 * ldc + 0).storeBytes(of: alphaVector * c3_0, as: SIMD16<Float>.self)
            UnsafeMutableRawPointer(c + 3 * ldc + 16).storeBytes(of: alphaVector * c3_1, as: SIMD16<Float>.self)
            UnsafeMutableRawPointer(c + 4 * ldc + 0).storeBytes(of: alphaVector * c4_0, as: SIMD16<Float>.self)
            UnsafeMutableRawPointer(c + 4 * ldc + 16).storeBytes(of: alphaVector * c4_1, as: SIMD16<Float>.self)
            UnsafeMutableRawPointer(c + 5 * ldc + 0).storeBytes(of: alphaVector * c5_0, as: SIMD16<Float>.self)
            UnsafeMutableRawPointer(c + 5 * ldc + 16).storeBytes(of: alphaVector * c5_1, as: SIMD16<Float>.self)
            UnsafeMutableRawPointer(c + 6 * ldc + 0).storeBytes(of: alphaVector * c6_0, as: SIMD16<Float>.self)
            UnsafeMutableRawPointer(c + 6 * ldc + 16).storeBytes(of: alphaVector * c6_1, as: SIMD16<Float>.self)
            UnsafeMutableRawPointer(c + 7 * ldc + 0).storeBytes(of: alphaVector * c7_0, as: SIMD16<Float>.self)
            UnsafeMutableRawPointer(c + 7 * ldc + 16).storeBytes(of: alphaVector * c7_1, as: SIMD16<Float>.self)
            UnsafeMutableRawPointer(c + 8 * ldc + 0).storeBytes(of: alphaVector * c8_0, as: SIMD16<Float>.self)
            UnsafeMutableRawPointer(c + 8 * ldc + 16).storeBytes(of: alphaVector * c8_1, as: SIMD16<Float>.self)
            UnsafeMutableRawPointer(c + 9 * ldc + 0).storeBytes(of: alphaVector * c9_0, as: SIMD16<Float>.self)
            UnsafeMutableRawPointer(c + 9 * ldc + 16).storeBytes(of: alphaVector * c9_1, as: SIMD16<Float>.self)
            UnsafeMutableRawPointer(c + 10 * ldc + 0).storeBytes(of: alphaVector * c10_0, as: SIMD16<Float>.self)
            UnsafeMutableRawPointer(c + 10 * ldc + 16).storeBytes(of: alphaVector * c10_1, as: SIMD16<Float>.self)
            UnsafeMutableRawPointer(c + 11 * ldc + 0).storeBytes(of: alphaVector * c11_0, as: SIMD16<Float>.self)
            UnsafeMutableRawPointer(c + 11 * ldc + 16).storeBytes(of: alphaVector * c11_1, as: SIMD16<Float>.self)
        } else {
            let betaVector = SIMD16<Float>(repeating: beta)
            do { let p = UnsafeMutableRawPointer(c + 0 * ldc + 0); p.storeBytes(of: (alphaVector * c0_0).addingProduct(betaVector, p.loadUnaligned(as: SIMD16<Float>.self)), as: SIMD16<Float>.self) }
            do { let p = UnsafeMutableRawPointer(c + 0 * ldc + 16); p.storeBytes(of: (alphaVector * c0_1).addingProduct(betaVector, p.loadUnaligned(as: SIMD16<Float>.self)), as: SIMD16<Float>.self) }
            do { let p = UnsafeMutableRawPointer(c + 1 * ldc + 0); p.storeBytes(of: (alphaVector * c1_0).addingProduct(betaVector, p.loadUnaligned(as: SIMD16<Float>.self)), as: SIMD16<Float>.self) }
            do { let p = UnsafeMutableRawPointer(c + 1 * ldc + 16); p.storeBytes(of: (alphaVector * c1_1).addingProduct(betaVector, p.loadUnaligned(as: SIMD16<Float>.self)), as: SIMD16<Float>.self) }
            do { let p = UnsafeMutableRawPointer(c + 2 * ldc + 0); p.storeBytes(of: (alphaVector * c2_0).addingProduct(betaVector, p.loadUnaligned(as: SIMD16<Float>.self)), as: SIMD16<Float>.self) }
            do { let p = UnsafeMutableRawPointer(c + 2 * ldc + 16); p.storeBytes(of: (alphaVector * c2_1).addingProduct(betaVector, p.loadUnaligned(as: SIMD16<Float>.self)), as: SIMD16<Float>.self) }
            do { let p = UnsafeMutableRawPointer(c + 3 * ldc + 0); p.storeBytes(of: (alphaVector * c3_0).addingProduct(betaVector, p.loadUnaligned(as: SIMD16<Float>.self)), as: SIMD16<Float>.self) }
            do { let p = UnsafeMutableRawPointer(c + 3 * ldc + 16); p.storeBytes(of: (alphaVector * c3_1).addingProduct(betaVector, p.loadUnaligned(as: SIMD16<Float>.self)), as: SIMD16<Float>.self) }
            do { let p = UnsafeMutableRawPointer(c + 4 * ldc + 0); p.storeBytes(of: (alphaVector * c4_0).addingProduct(betaVector, p.loadUnaligned(as: SIMD16<Float>.self)), as: SIMD16<Float>.self) }
            do { let p = UnsafeMutableRawPointer(c + 4 * ldc + 16); p.storeBytes(of: (alphaVector * c4_1).addingProduct(betaVector, p.loadUnaligned(as: SIMD16<Float>.self)), as: SIMD16<Float>.self) }
            do { let p = UnsafeMutableRawPointer(c + 5 * ldc + 0); p.storeBytes(of: (alphaVector * c5_0).addingProduct(betaVector, p.loadUnaligned(as: SIMD16<Float>.self)), as: SIMD16<Float>.self) }
            do { let p = UnsafeMutableRawPointer(c + 5 * ldc + 16); p.storeBytes(of: (alphaVector * c5_1).addingProduct(betaVector, p.loadUnaligned(as: SIMD16<Float>.self)), as: SIMD16<Float>.self) }
            do { let p = UnsafeMutableRawPointer(c + 6 * ldc + 0); p.storeBytes(of: (alphaVector * c6_0).addingProduct(betaVector, p.loadUnaligned(as: SIMD16<Float>.self)), as: SIMD16<Float>.self) }
            do { let p = UnsafeMutableRawPointer(c + 6 * ldc + 16); p.storeBytes(of: (alphaVector * c6_1).addingProduct(betaVector, p.loadUnaligned(as: SIMD16<Float>.self)), as: SIMD16<Float>.self) }
            do { let p = UnsafeMutableRawPointer(c + 7 * ldc + 0); p.storeBytes(of: (alphaVector * c7_0).addingProduct(betaVector, p.loadUnaligned(as: SIMD16<Float>.self)), as: SIMD16<Float>.self) }
            do { let p = UnsafeMutableRawPointer(c + 7 * ldc + 16); p.storeBytes(of: (alphaVector * c7_1).addingProduct(betaVector, p.loadUnaligned(as: SIMD16<Float>.self)), as: SIMD16<Float>.self) }
            do { let p = UnsafeMutableRawPointer(c + 8 * ldc + 0); p.storeBytes(of: (alphaVector * c8_0).addingProduct(betaVector, p.loadUnaligned(as: SIMD16<Float>.self)), as: SIMD16<Float>.self) }
            do { let p = UnsafeMutableRawPointer(c + 8 * ldc + 16); p.storeBytes(of: (alphaVector * c8_1).addingProduct(betaVector, p.loadUnaligned(as: SIMD16<Float>.self)), as: SIMD16<Float>.self) }
            do { let p = UnsafeMutableRawPointer(c + 9 * ldc + 0); p.storeBytes(of: (alphaVector * c9_0).addingProduct(betaVector, p.loadUnaligned(as: SIMD16<Float>.self)), as: SIMD16<Float>.self) }
            do { let p = UnsafeMutableRawPointer(c + 9 * ldc + 16); p.storeBytes(of: (alphaVector * c9_1).addingProduct(betaVector, p.loadUnaligned(as: SIMD16<Float>.self)), as: SIMD16<Float>.self) }
            do { let p = UnsafeMutableRawPointer(c + 10 * ldc + 0); p.storeBytes(of: (alphaVector * c10_0).addingProduct(betaVector, p.loadUnaligned(as: SIMD16<Float>.self)), as: SIMD16<Float>.self) }
            do { let p = UnsafeMutableRawPointer(c + 10 * ldc + 16); p.storeBytes(of: (alphaVector * c10_1).addingProduct(betaVector, p.loadUnaligned(as: SIMD16<Float>.self)), as: SIMD16<Float>.self) }
            do { let p = UnsafeMutableRawPointer(c + 11 * ldc + 0); p.storeBytes(of: (alphaVector * c11_0).addingProduct(betaVector, p.loadUnaligned(as: SIMD16<Float>.self)), as: SIMD16<Float>.self) }
            do { let p = UnsafeMutableRawPointer(c + 11 * ldc + 16); p.storeBytes(of: (alphaVector * c11_1).addingProduct(betaVector, p.loadUnaligned(as: SIMD16<Float>.self)), as: SIMD16<Float>.self) }
        }
    }
}
