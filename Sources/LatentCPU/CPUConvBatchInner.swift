import Foundation
import LatentCore

/// Convolution in a batch-inner layout, for batches of 16 images and more.
///
/// im2col + GEMM spends most of its time outside the multiply on the report models'
/// small feature maps (7x7, 14x14): building the column matrix, packing it again for the
/// GEMM, and col2im's scatter. Here the images are first transposed into a batch-inner
/// ("CHWN") layout, zero-padded, with the batch rounded up to 16 lanes:
///
///     element (c, h, w, n) at ((c * Hp + h + padTop) * Wp + w + padLeft) * lanes + n
///
/// Then the 32 images at one position are 32 consecutive floats, and every operand of the
/// GEMM micro-kernel is a contiguous vector without any packing:
///
/// - forward: `Y'[co][oh][ow][n..n+32] = sum_r W[co][r] * X'[base(oh, ow) + offset[r]][n..n+32]`,
///   r = (ci, ki, kj): the 12 x 32 register tile of `PackedGEMM` with A = the packed weights
///   (12 output channels) and B read through a table of row offsets (implicit GEMM);
/// - backward-data: the same kernel per stride phase (sub-pixel decomposition): an input
///   position (ih, iw) with (ih + pad) % stride == a only receives taps ki = a + stride * t,
///   from output row (ih + pad) / stride - t, so each phase is a stride-1 convolution of the
///   padded gradient with its own slice of the weights; no col2im, no atomics;
/// - backward-weights: a packed GEMM dW (Cout x R) = dY' (Cout x positions*lanes) * B where B
///   is packed from X' by 16 x 16 register transposes (8 x 8 ones on AVX2, `Tile8`).
///
/// Layout changes are one pass each way per operand (`pack`, `unpack`, which also adds the
/// bias and accumulates). On AVX2 (`RegisterFile.narrow`) the tiles are 6 x 16 and the
/// transposes 8 x 8. The forward and backward-data passes hand groups of four positions to
/// whichever thread is free (`CPUParallel.forEachItem`). Scratch comes from `ScratchPool`, so
/// a training step allocates nothing after its first.
extension BatchInnerLayout {
    /// NCHW (`batch` x channels x height x width) -> this layout, padding and spare lanes zeroed.
    /// `alongside(chunk, chunks)` runs on each thread after its share of the channels, in the
    /// same parallel region (the callers pack their weights there, so that no thread waits
    /// for a serial step between the two).
    func pack(_ x: UnsafePointer<Float>, into destination: UnsafeMutablePointer<Float>, parallel: CPUParallel,
              alongside: (_ chunk: Int, _ chunks: Int) -> Void = { _, _ in }) {
        parallel.forEachChunk(work: channels * channelStride, minimumWorkPerThread: 1 << 15) { chunk, chunks in
            pack(x, into: destination, channels: CPUParallel.range(chunk, of: chunks, count: channels))
            alongside(chunk, chunks)
        }
    }

    /// The channels `channels` of `pack`, on the calling thread.
    func pack(_ x: UnsafePointer<Float>, into destination: UnsafeMutablePointer<Float>, channels mine: Range<Int>) {
        guard !mine.isEmpty else { return }
        let plane = height * width
        withUnsafeTemporaryAllocation(of: Int.self, capacity: plane) { positions in
            for p in 0..<plane { positions[p] = offset(0, p / width, p % width) }
            let table = UnsafePointer(positions.baseAddress!)
            for c in mine { zeroPadding(destination + c * channelStride) }
            // Images outer, channels inner: each of the 16 images is then read front to back
            // across the channels (16 streams the prefetchers follow, not one per image).
            var n0 = 0
            while n0 < lanes {
                for c in mine {
                    let channel = destination + c * channelStride
                    let images = Swift.max(0, Swift.min(16, batch - n0))
                    let first = x + (n0 * channels + c) * plane, imageStride = channels * plane
                    var p = 0
                    if RegisterFile.narrow {
                        // 8 positions x 8 images at a time (see `Tile8`).
                        while p + 8 <= plane {
                            for half in 0..<2 {
                                let h = half * 8
                                let rows = images >= h + 8
                                    ? Tile8 { t in Tile8.Row.load(first + (h + t) * imageStride + p) }
                                    : Tile8 { t in h + t < images ? Tile8.Row.load(first + (h + t) * imageStride + p) : Tile8.Row() }
                                let target = channel + n0 + h
                                rows.transposed().forEachRow { i, column in column.store(target + table[p + i]) }
                            }
                            p += 8
                        }
                    } else {
                        while p + 16 <= plane {
                            let rows = images == 16
                                ? Tile16 { t in Vec.load(first + t * imageStride + p) }
                                : Tile16 { t in t < images ? Vec.load(first + t * imageStride + p) : Vec() }
                            let target = channel + n0
                            rows.transposed().forEachRow { i, column in column.store(target + table[p + i]) }
                            p += 16
                        }
                    }
                    // The last positions one by one, written lane by lane in place (assembling
                    // a vector lane by lane in memory stalls on store forwarding).
                    while p < plane {
                        let target = channel + table[p] + n0
                        for t in 0..<images { target[t] = first[t * imageStride + p] }
                        for t in images..<16 { target[t] = 0 }
                        p += 1
                    }
                }
                n0 += 16
            }
        }
    }

    /// This layout -> NCHW, adding `bias[c]` and, with `accumulate`, what `y` holds.
    func unpack(_ source: UnsafePointer<Float>, into y: UnsafeMutablePointer<Float>, bias: UnsafePointer<Float>?,
                accumulate: Bool, parallel: CPUParallel) {
        let plane = height * width
        withUnsafeTemporaryAllocation(of: Int.self, capacity: plane) { positions in
            for p in 0..<plane { positions[p] = offset(0, p / width, p % width) }
            let table = UnsafePointer(positions.baseAddress!)
            parallel.forEachChunk(work: channels * plane * batch, minimumWorkPerThread: 1 << 15) { chunk, chunks in
                let mine = CPUParallel.range(chunk, of: chunks, count: channels)
                // Images outer, channels inner, as `pack`: 16 output streams at a time.
                var n0 = 0
                while n0 < batch {
                    for c in mine {
                        let channel = source + c * channelStride
                        let shift = Vec(repeating: bias?[c] ?? 0)
                        let images = Swift.min(16, batch - n0)
                        let first = y + (n0 * channels + c) * plane, imageStride = channels * plane
                        var p = 0
                        if RegisterFile.narrow {
                            let shift8 = Tile8.Row(repeating: bias?[c] ?? 0)
                            while p + 8 <= plane {
                                for half in 0..<2 where half * 8 < images {
                                    let h = half * 8
                                    let from = channel + n0 + h
                                    let rows = Tile8 { i in Tile8.Row.load(from + table[p + i]) }.transposed()
                                    rows.forEachRow { t, row in
                                        guard h + t < images else { return }
                                        let target = first + (h + t) * imageStride + p
                                        var value = row + shift8
                                        if accumulate { value += Tile8.Row.load(target) }
                                        value.store(target)
                                    }
                                }
                                p += 8
                            }
                        } else {
                            while p + 16 <= plane {
                                let from = channel + n0
                                let rows = Tile16 { i in Vec.load(from + table[p + i]) }.transposed()
                                rows.forEachRow { t, row in
                                    guard t < images else { return }
                                    let target = first + t * imageStride + p
                                    var value = row + shift
                                    if accumulate { value += Vec.load(target) }
                                    value.store(target)
                                }
                                p += 16
                            }
                        }
                        while p < plane {
                            let column = channel + table[p] + n0, bias = shift[0]
                            for t in 0..<images {
                                let index = t * imageStride + p
                                first[index] = accumulate ? first[index] + (column[t] + bias) : column[t] + bias
                            }
                            p += 1
                        }
                    }
                    n0 += 16
                }
            }
        }
    }

    /// Zeroes the padding rows and columns of one channel.
    private func zeroPadding(_ channel: UnsafeMutablePointer<Float>) {
        if padTop > 0 { channel.update(repeating: 0, count: padTop * rowStride) }
        if padBottom > 0 { (channel + (padTop + height) * rowStride).update(repeating: 0, count: padBottom * rowStride) }
        if padLeft > 0 || padRight > 0 {
            for h in 0..<height {
                let row = channel + (h + padTop) * rowStride
                if padLeft > 0 { row.update(repeating: 0, count: padLeft * lanes) }
                if padRight > 0 { (row + (padLeft + width) * lanes).update(repeating: 0, count: padRight * lanes) }
            }
        }
    }
}

/// Implicit-GEMM micro-kernels: A packed as `PackedGEMM` packs it (12 rows per k), B read
/// through a table of row offsets (`b + offsets[k]`, 32 or 16 contiguous floats).
enum TableKernel {
    /// C (12 x 32, row stride ldc; the first `rows` rows stored) = A panel * B rows.
    @inline(__always)
    static func kernel32(depth: Int, a: UnsafePointer<Float>, b: UnsafePointer<Float>, offsets: UnsafePointer<Int>,
                         c: UnsafeMutablePointer<Float>, ldc: Int, rows: Int) {
        var c0_0 = Vec(), c0_1 = Vec(), c1_0 = Vec(), c1_1 = Vec(), c2_0 = Vec(), c2_1 = Vec()
        var c3_0 = Vec(), c3_1 = Vec(), c4_0 = Vec(), c4_1 = Vec(), c5_0 = Vec(), c5_1 = Vec()
        var c6_0 = Vec(), c6_1 = Vec(), c7_0 = Vec(), c7_1 = Vec(), c8_0 = Vec(), c8_1 = Vec()
        var c9_0 = Vec(), c9_1 = Vec(), c10_0 = Vec(), c10_1 = Vec(), c11_0 = Vec(), c11_1 = Vec()
        var ap = a
        for k in 0..<depth {
            let bp = UnsafeRawPointer(b + offsets[k])
            let b0 = bp.loadUnaligned(fromByteOffset: 0, as: Vec.self)
            let b1 = bp.loadUnaligned(fromByteOffset: 64, as: Vec.self)
            let a0 = Vec(repeating: ap[0]); c0_0.addProduct(a0, b0); c0_1.addProduct(a0, b1)
            let a1 = Vec(repeating: ap[1]); c1_0.addProduct(a1, b0); c1_1.addProduct(a1, b1)
            let a2 = Vec(repeating: ap[2]); c2_0.addProduct(a2, b0); c2_1.addProduct(a2, b1)
            let a3 = Vec(repeating: ap[3]); c3_0.addProduct(a3, b0); c3_1.addProduct(a3, b1)
            let a4 = Vec(repeating: ap[4]); c4_0.addProduct(a4, b0); c4_1.addProduct(a4, b1)
            let a5 = Vec(repeating: ap[5]); c5_0.addProduct(a5, b0); c5_1.addProduct(a5, b1)
            let a6 = Vec(repeating: ap[6]); c6_0.addProduct(a6, b0); c6_1.addProduct(a6, b1)
            let a7 = Vec(repeating: ap[7]); c7_0.addProduct(a7, b0); c7_1.addProduct(a7, b1)
            let a8 = Vec(repeating: ap[8]); c8_0.addProduct(a8, b0); c8_1.addProduct(a8, b1)
            let a9 = Vec(repeating: ap[9]); c9_0.addProduct(a9, b0); c9_1.addProduct(a9, b1)
            let a10 = Vec(repeating: ap[10]); c10_0.addProduct(a10, b0); c10_1.addProduct(a10, b1)
            let a11 = Vec(repeating: ap[11]); c11_0.addProduct(a11, b0); c11_1.addProduct(a11, b1)
            ap += 12
        }
        if rows == 12 {
            c0_0.store(c); c0_1.store(c + 16)
            c1_0.store(c + ldc); c1_1.store(c + ldc + 16)
            c2_0.store(c + 2 * ldc); c2_1.store(c + 2 * ldc + 16)
            c3_0.store(c + 3 * ldc); c3_1.store(c + 3 * ldc + 16)
            c4_0.store(c + 4 * ldc); c4_1.store(c + 4 * ldc + 16)
            c5_0.store(c + 5 * ldc); c5_1.store(c + 5 * ldc + 16)
            c6_0.store(c + 6 * ldc); c6_1.store(c + 6 * ldc + 16)
            c7_0.store(c + 7 * ldc); c7_1.store(c + 7 * ldc + 16)
            c8_0.store(c + 8 * ldc); c8_1.store(c + 8 * ldc + 16)
            c9_0.store(c + 9 * ldc); c9_1.store(c + 9 * ldc + 16)
            c10_0.store(c + 10 * ldc); c10_1.store(c + 10 * ldc + 16)
            c11_0.store(c + 11 * ldc); c11_1.store(c + 11 * ldc + 16)
            return
        }
        withUnsafeTemporaryAllocation(of: Vec.self, capacity: 24) { buffer in
            let tile = buffer.baseAddress!
            tile[0] = c0_0; tile[1] = c0_1; tile[2] = c1_0; tile[3] = c1_1; tile[4] = c2_0; tile[5] = c2_1
            tile[6] = c3_0; tile[7] = c3_1; tile[8] = c4_0; tile[9] = c4_1; tile[10] = c5_0; tile[11] = c5_1
            tile[12] = c6_0; tile[13] = c6_1; tile[14] = c7_0; tile[15] = c7_1; tile[16] = c8_0; tile[17] = c8_1
            tile[18] = c9_0; tile[19] = c9_1; tile[20] = c10_0; tile[21] = c10_1; tile[22] = c11_0; tile[23] = c11_1
            for r in 0..<rows {
                tile[2 * r].store(c + r * ldc)
                tile[2 * r + 1].store(c + r * ldc + 16)
            }
        }
    }

    /// As `kernel32` for 16 columns (a batch tail of 16 lanes).
    @inline(__always)
    static func kernel16(depth: Int, a: UnsafePointer<Float>, b: UnsafePointer<Float>, offsets: UnsafePointer<Int>,
                         c: UnsafeMutablePointer<Float>, ldc: Int, rows: Int) {
        var c0 = Vec(), c1 = Vec(), c2 = Vec(), c3 = Vec(), c4 = Vec(), c5 = Vec()
        var c6 = Vec(), c7 = Vec(), c8 = Vec(), c9 = Vec(), c10 = Vec(), c11 = Vec()
        var ap = a
        for k in 0..<depth {
            let b0 = UnsafeRawPointer(b + offsets[k]).loadUnaligned(as: Vec.self)
            c0.addProduct(Vec(repeating: ap[0]), b0)
            c1.addProduct(Vec(repeating: ap[1]), b0)
            c2.addProduct(Vec(repeating: ap[2]), b0)
            c3.addProduct(Vec(repeating: ap[3]), b0)
            c4.addProduct(Vec(repeating: ap[4]), b0)
            c5.addProduct(Vec(repeating: ap[5]), b0)
            c6.addProduct(Vec(repeating: ap[6]), b0)
            c7.addProduct(Vec(repeating: ap[7]), b0)
            c8.addProduct(Vec(repeating: ap[8]), b0)
            c9.addProduct(Vec(repeating: ap[9]), b0)
            c10.addProduct(Vec(repeating: ap[10]), b0)
            c11.addProduct(Vec(repeating: ap[11]), b0)
            ap += 12
        }
        withUnsafeTemporaryAllocation(of: Vec.self, capacity: 12) { buffer in
            let tile = buffer.baseAddress!
            tile[0] = c0; tile[1] = c1; tile[2] = c2; tile[3] = c3; tile[4] = c4; tile[5] = c5
            tile[6] = c6; tile[7] = c7; tile[8] = c8; tile[9] = c9; tile[10] = c10; tile[11] = c11
            for r in 0..<rows { tile[r].store(c + r * ldc) }
        }
    }

    /// Rows per weight panel for `m` output rows: 12 (the 12 x 32 tile), or 8 where 12 would
    /// leave more than 5% of the tile's rows empty and 8 divides m (64 output channels: 6
    /// panels of 12 compute 72 rows, 8 panels of 8 exactly 64). With `RegisterFile.narrow`
    /// always 6, for the 6 x 16 kernel.
    static func panelRows(for m: Int) -> Int {
        if RegisterFile.narrow { return 6 }
        let waste = (m + 11) / 12 * 12 - m
        return waste * 20 > m && m % 8 == 0 ? 8 : 12
    }

    /// Packs rows `panels` (of `panelRows` each) of a row-major matrix (m x depth, row stride
    /// `rowStride`) k-major: element (panel * panelRows + r, k) at
    /// `into[(panel * depth + k) * panelRows + r]`, rows past m zero.
    static func packPanels(m: Int, depth: Int, panelRows: Int, a: UnsafePointer<Float>, rowStride: Int,
                           panels: Range<Int>, into packed: UnsafeMutablePointer<Float>) {
        for panel in panels {
            var out = packed + panel * depth * panelRows
            let first = panel * panelRows, rows = Swift.min(panelRows, m - first)
            for k in 0..<depth {
                for r in 0..<panelRows { out[r] = r < rows ? a[(first + r) * rowStride + k] : 0 }
                out += panelRows
            }
        }
    }

    /// C (8 x 32, row stride ldc; the first `rows` rows stored) = A panel (8 per k) * B rows.
    @inline(__always)
    static func kernel8x32(depth: Int, a: UnsafePointer<Float>, b: UnsafePointer<Float>, offsets: UnsafePointer<Int>,
                           c: UnsafeMutablePointer<Float>, ldc: Int, rows: Int) {
        var c0_0 = Vec(), c0_1 = Vec(), c1_0 = Vec(), c1_1 = Vec(), c2_0 = Vec(), c2_1 = Vec(), c3_0 = Vec(), c3_1 = Vec()
        var c4_0 = Vec(), c4_1 = Vec(), c5_0 = Vec(), c5_1 = Vec(), c6_0 = Vec(), c6_1 = Vec(), c7_0 = Vec(), c7_1 = Vec()
        var ap = a
        for k in 0..<depth {
            let bp = UnsafeRawPointer(b + offsets[k])
            let b0 = bp.loadUnaligned(fromByteOffset: 0, as: Vec.self)
            let b1 = bp.loadUnaligned(fromByteOffset: 64, as: Vec.self)
            let a0 = Vec(repeating: ap[0]); c0_0.addProduct(a0, b0); c0_1.addProduct(a0, b1)
            let a1 = Vec(repeating: ap[1]); c1_0.addProduct(a1, b0); c1_1.addProduct(a1, b1)
            let a2 = Vec(repeating: ap[2]); c2_0.addProduct(a2, b0); c2_1.addProduct(a2, b1)
            let a3 = Vec(repeating: ap[3]); c3_0.addProduct(a3, b0); c3_1.addProduct(a3, b1)
            let a4 = Vec(repeating: ap[4]); c4_0.addProduct(a4, b0); c4_1.addProduct(a4, b1)
            let a5 = Vec(repeating: ap[5]); c5_0.addProduct(a5, b0); c5_1.addProduct(a5, b1)
            let a6 = Vec(repeating: ap[6]); c6_0.addProduct(a6, b0); c6_1.addProduct(a6, b1)
            let a7 = Vec(repeating: ap[7]); c7_0.addProduct(a7, b0); c7_1.addProduct(a7, b1)
            ap += 8
        }
        withUnsafeTemporaryAllocation(of: Vec.self, capacity: 16) { buffer in
            let tile = buffer.baseAddress!
            tile[0] = c0_0; tile[1] = c0_1; tile[2] = c1_0; tile[3] = c1_1; tile[4] = c2_0; tile[5] = c2_1
            tile[6] = c3_0; tile[7] = c3_1; tile[8] = c4_0; tile[9] = c4_1; tile[10] = c5_0; tile[11] = c5_1
            tile[12] = c6_0; tile[13] = c6_1; tile[14] = c7_0; tile[15] = c7_1
            for r in 0..<rows {
                tile[2 * r].store(c + r * ldc)
                tile[2 * r + 1].store(c + r * ldc + 16)
            }
        }
    }

    /// C (6 x 16, row stride ldc; the first `rows` rows stored) = A panel (6 per k) * B rows:
    /// the tile of `RegisterFile.narrow`, six SIMD16 accumulators (12 ymm registers).
    /// With `accumulate` C's rows are added to (a later depth block).
    @inline(never)
    static func kernel6x16(depth: Int, a: UnsafePointer<Float>, b: UnsafePointer<Float>, offsets: UnsafePointer<Int>,
                           c: UnsafeMutablePointer<Float>, ldc: Int, rows: Int, accumulate: Bool) {
        var c0 = Vec(), c1 = Vec(), c2 = Vec(), c3 = Vec(), c4 = Vec(), c5 = Vec()
        if accumulate {
            c0 = Vec.load(c)
            if rows > 1 { c1 = Vec.load(c + ldc) }
            if rows > 2 { c2 = Vec.load(c + 2 * ldc) }
            if rows > 3 { c3 = Vec.load(c + 3 * ldc) }
            if rows > 4 { c4 = Vec.load(c + 4 * ldc) }
            if rows > 5 { c5 = Vec.load(c + 5 * ldc) }
        }
        var ap = a
        for k in 0..<depth {
            let b0 = UnsafeRawPointer(b + offsets[k]).loadUnaligned(as: Vec.self)
            c0.addProduct(Vec(repeating: ap[0]), b0)
            c1.addProduct(Vec(repeating: ap[1]), b0)
            c2.addProduct(Vec(repeating: ap[2]), b0)
            c3.addProduct(Vec(repeating: ap[3]), b0)
            c4.addProduct(Vec(repeating: ap[4]), b0)
            c5.addProduct(Vec(repeating: ap[5]), b0)
            ap += 6
        }
        if rows == 6 {
            c0.store(c); c1.store(c + ldc); c2.store(c + 2 * ldc); c3.store(c + 3 * ldc); c4.store(c + 4 * ldc); c5.store(c + 5 * ldc)
            return
        }
        withUnsafeTemporaryAllocation(of: Vec.self, capacity: 6) { buffer in
            let tile = buffer.baseAddress!
            tile[0] = c0; tile[1] = c1; tile[2] = c2; tile[3] = c3; tile[4] = c4; tile[5] = c5
            for r in 0..<rows { tile[r].store(c + r * ldc) }
        }
    }

    /// As `kernel8x32` for 16 columns.
    @inline(__always)
    static func kernel8x16(depth: Int, a: UnsafePointer<Float>, b: UnsafePointer<Float>, offsets: UnsafePointer<Int>,
                           c: UnsafeMutablePointer<Float>, ldc: Int, rows: Int) {
        var c0 = Vec(), c1 = Vec(), c2 = Vec(), c3 = Vec(), c4 = Vec(), c5 = Vec(), c6 = Vec(), c7 = Vec()
        var ap = a
        for k in 0..<depth {
            let b0 = UnsafeRawPointer(b + offsets[k]).loadUnaligned(as: Vec.self)
            c0.addProduct(Vec(repeating: ap[0]), b0)
            c1.addProduct(Vec(repeating: ap[1]), b0)
            c2.addProduct(Vec(repeating: ap[2]), b0)
            c3.addProduct(Vec(repeating: ap[3]), b0)
            c4.addProduct(Vec(repeating: ap[4]), b0)
            c5.addProduct(Vec(repeating: ap[5]), b0)
            c6.addProduct(Vec(repeating: ap[6]), b0)
            c7.addProduct(Vec(repeating: ap[7]), b0)
            ap += 8
        }
        withUnsafeTemporaryAllocation(of: Vec.self, capacity: 8) { buffer in
            let tile = buffer.baseAddress!
            tile[0] = c0; tile[1] = c1; tile[2] = c2; tile[3] = c3; tile[4] = c4; tile[5] = c5; tile[6] = c6; tile[7] = c7
            for r in 0..<rows { tile[r].store(c + r * ldc) }
        }
    }

    /// One output row (a single-channel result: the gradient of a one-channel input, a
    /// transposed convolution to one channel) for up to four positions at once, which gives
    /// eight independent accumulators where one position would have two. `bases[i]` and
    /// `targets[i]` for i < count; A has the `stride` of a packed panel (its panel rows).
    @inline(__always)
    static func singleRow(depth: Int, a: UnsafePointer<Float>, stride: Int, bases: UnsafePointer<UnsafePointer<Float>>,
                          offsets: UnsafePointer<Int>, targets: UnsafePointer<UnsafeMutablePointer<Float>>, count: Int,
                          lanes: Int) {
        let b0 = bases[0], b1 = bases[Swift.min(1, count - 1)], b2 = bases[Swift.min(2, count - 1)], b3 = bases[Swift.min(3, count - 1)]
        var n0 = 0
        while n0 < lanes {
            let wide = lanes - n0 >= 32 && !RegisterFile.narrow
            var s0 = Vec(), s1 = Vec(), s2 = Vec(), s3 = Vec(), t0 = Vec(), t1 = Vec(), t2 = Vec(), t3 = Vec()
            if wide {
                for k in 0..<depth {
                    let offset = offsets[k] + n0
                    let w = Vec(repeating: a[stride * k])
                    s0.addProduct(w, Vec.load(b0 + offset)); t0.addProduct(w, Vec.load(b0 + offset + 16))
                    s1.addProduct(w, Vec.load(b1 + offset)); t1.addProduct(w, Vec.load(b1 + offset + 16))
                    s2.addProduct(w, Vec.load(b2 + offset)); t2.addProduct(w, Vec.load(b2 + offset + 16))
                    s3.addProduct(w, Vec.load(b3 + offset)); t3.addProduct(w, Vec.load(b3 + offset + 16))
                }
            } else {
                for k in 0..<depth {
                    let offset = offsets[k] + n0
                    let w = Vec(repeating: a[stride * k])
                    s0.addProduct(w, Vec.load(b0 + offset))
                    s1.addProduct(w, Vec.load(b1 + offset))
                    s2.addProduct(w, Vec.load(b2 + offset))
                    s3.addProduct(w, Vec.load(b3 + offset))
                }
            }
            s0.store(targets[0] + n0)
            if wide { t0.store(targets[0] + n0 + 16) }
            if count > 1 { s1.store(targets[1] + n0); if wide { t1.store(targets[1] + n0 + 16) } }
            if count > 2 { s2.store(targets[2] + n0); if wide { t2.store(targets[2] + n0 + 16) } }
            if count > 3 { s3.store(targets[3] + n0); if wide { t3.store(targets[3] + n0 + 16) } }
            n0 += wide ? 32 : 16
        }
    }

    /// Depth of one block of the narrow kernels' loop (`LATENT_CPU_DEPTH_BLOCK` to measure others).
    static let narrowDepthBlock = ProcessInfo.processInfo.environment["LATENT_CPU_DEPTH_BLOCK"].flatMap(Int.init).map { Swift.max(1, $0) } ?? 128

    /// Runs the kernels over every panel (`panelRows` rows) for the lanes of `count` (1...4)
    /// positions: C rows `panelRows * panel ...`, row stride `ldc`, columns `0..<lanes` from each target.
    @inline(__always)
    static func allPanels(m: Int, panelRows: Int, depth: Int, packedA: UnsafePointer<Float>,
                          bases: UnsafePointer<UnsafePointer<Float>>, offsets: UnsafePointer<Int>,
                          targets: UnsafePointer<UnsafeMutablePointer<Float>>, count: Int, ldc: Int, lanes: Int) {
        if m == 1 {
            singleRow(depth: depth, a: packedA, stride: panelRows, bases: bases, offsets: offsets, targets: targets,
                      count: count, lanes: lanes)
            return
        }
        let panels = (m + panelRows - 1) / panelRows
        if panelRows == 6 {
            // Depth blocks outermost: a block of every weight panel (panels x 6 x 128 floats) stays
            // in L2 for all the group's positions, and one position's 16 lanes of B (8 KiB) in L1
            // for all the panels; C is added to from the second block on.
            var k0 = 0
            while k0 < depth {
                let block = Swift.min(narrowDepthBlock, depth - k0)
                for position in 0..<count {
                    let b = bases[position], c = targets[position]
                    for n0 in stride(from: 0, to: lanes, by: 16) {
                        for panel in 0..<panels {
                            kernel6x16(depth: block, a: packedA + panel * 6 * depth + k0 * 6, b: b + n0, offsets: offsets + k0,
                                       c: c + panel * 6 * ldc + n0, ldc: ldc, rows: Swift.min(6, m - panel * 6),
                                       accumulate: k0 > 0)
                        }
                    }
                }
                k0 += block
            }
            return
        }
        for position in 0..<count {
            let b = bases[position], c = targets[position]
            var n0 = 0
            while n0 < lanes {
                let wide = lanes - n0 >= 32
                for panel in 0..<panels {
                    let rows = Swift.min(panelRows, m - panel * panelRows)
                    let a = packedA + panel * panelRows * depth
                    let target = c + panel * panelRows * ldc + n0
                    switch (panelRows == 8, wide) {
                    case (false, true): kernel32(depth: depth, a: a, b: b + n0, offsets: offsets, c: target, ldc: ldc, rows: rows)
                    case (false, false): kernel16(depth: depth, a: a, b: b + n0, offsets: offsets, c: target, ldc: ldc, rows: rows)
                    case (true, true): kernel8x32(depth: depth, a: a, b: b + n0, offsets: offsets, c: target, ldc: ldc, rows: rows)
                    case (true, false): kernel8x16(depth: depth, a: a, b: b + n0, offsets: offsets, c: target, ldc: ldc, rows: rows)
                    }
                }
                n0 += wide ? 32 : 16
            }
        }
    }
}

/// The three passes of a convolution, for choosing a path per pass.
enum ConvPass {
    case forward, backwardData, backwardWeights
}

/// Up to four positions that share a table (one stride phase), run by `TableKernel.allPanels` together.
struct PositionGroup {
    static let capacity = 4
    var bases: (UnsafePointer<Float>, UnsafePointer<Float>, UnsafePointer<Float>, UnsafePointer<Float>)
    var targets: (UnsafeMutablePointer<Float>, UnsafeMutablePointer<Float>, UnsafeMutablePointer<Float>, UnsafeMutablePointer<Float>)
    var count = 0

    init(placeholder base: UnsafePointer<Float>, _ target: UnsafeMutablePointer<Float>) {
        bases = (base, base, base, base)
        targets = (target, target, target, target)
    }

    mutating func append(_ base: UnsafePointer<Float>, _ target: UnsafeMutablePointer<Float>) {
        switch count {
        case 0: bases.0 = base; targets.0 = target
        case 1: bases.1 = base; targets.1 = target
        case 2: bases.2 = base; targets.2 = target
        default: bases.3 = base; targets.3 = target
        }
        count += 1
    }

    /// Runs the group and empties it.
    mutating func flush(m: Int, panelRows: Int, depth: Int, packedA: UnsafePointer<Float>, offsets: UnsafePointer<Int>,
                        ldc: Int, lanes: Int) {
        guard count > 0 else { return }
        let n = count
        withUnsafePointer(to: bases) { basesTuple in
            withUnsafePointer(to: targets) { targetsTuple in
                basesTuple.withMemoryRebound(to: UnsafePointer<Float>.self, capacity: 4) { b in
                    targetsTuple.withMemoryRebound(to: UnsafeMutablePointer<Float>.self, capacity: 4) { t in
                        TableKernel.allPanels(m: m, panelRows: panelRows, depth: depth, packedA: packedA, bases: b,
                                              offsets: offsets, targets: t, count: n, ldc: ldc, lanes: lanes)
                    }
                }
            }
        }
        count = 0
    }
}

extension CPUBackend {
    /// Whether a pass of a convolution takes the batch-inner path: batches of 16 and more
    /// (smaller ones would compute mostly padding lanes), unless `convolutionPath` says otherwise.
    ///
    /// Except the two passes whose result has one input channel's worth of work per element of
    /// a many-channel operand (backward-data to a one-channel image, the weight gradient of a
    /// one-channel input) when that operand has 32 channels or more: batch-inner transposes the
    /// whole operand for little arithmetic, and its one-row kernels are memory-bound, while
    /// im2col's GEMM reads it in place with a deep k. Measured on AVX2 (`latent bench ops --group
    /// conv` with `LATENT_CPU_CONV=batch-inner|im2col`, batch 64): 64 channels at 28x28, k4 s2:
    /// 0.81 vs 0.43 ms (backward-data) and 0.86 vs 0.44 ms (weights); 8 channels, k3 s2: 0.15 vs
    /// 0.21 ms and 0.13 vs 0.45 ms the other way.
    func usesBatchInner(_ g: ConvGeometry, _ pass: ConvPass) -> Bool {
        switch convolutionPath {
        case .im2col: return false
        case .batchInner, .winograd: return true
        case .automatic:
            guard g.batch >= 16 else { return false }
            return pass == .forward || g.inChannels > 1 || g.outChannels < 32
        }
    }

    func batchInnerForward(_ g: ConvGeometry, x: UnsafePointer<Float>, w: UnsafePointer<Float>,
                           bias: UnsafePointer<Float>?, y: UnsafeMutablePointer<Float>) {
        let input = BatchInnerLayout.forwardInput(g)
        let output = BatchInnerLayout.output(g)
        let depth = g.inChannels * g.kernelHeight * g.kernelWidth
        let panelRows = TableKernel.panelRows(for: g.outChannels)
        let panels = (g.outChannels + panelRows - 1) / panelRows
        let pool = ScratchPool.shared
        let xs = pool.take(input.count), ys = pool.take(output.count), packed = pool.take(panels * panelRows * depth)
        defer { pool.give(xs); pool.give(ys); pool.give(packed) }
        input.pack(x, into: xs, parallel: parallel) { chunk, chunks in
            // The weights in panels, each thread a share of the panels.
            TableKernel.packPanels(m: g.outChannels, depth: depth, panelRows: panelRows, a: w, rowStride: depth,
                                   panels: CPUParallel.range(chunk, of: chunks, count: panels), into: packed)
        }
        withUnsafeTemporaryAllocation(of: Int.self, capacity: depth) { table in
            let offsets = table.baseAddress!
            var r = 0
            for ci in 0..<g.inChannels {
                for ki in 0..<g.kernelHeight {
                    for kj in 0..<g.kernelWidth {
                        offsets[r] = ci * input.channelStride + ki * input.rowStride + kj * input.lanes
                        r += 1
                    }
                }
            }
            // Groups of four positions, claimed one at a time by whichever thread is free.
            let positions = g.outHeight * g.outWidth
            let groups = (positions + PositionGroup.capacity - 1) / PositionGroup.capacity
            let items = g.multiplyAdds < 1 << 19 ? 1 : groups
            let range = { (item: Int) in
                items == 1 ? 0..<positions : item * PositionGroup.capacity..<Swift.min(positions, (item + 1) * PositionGroup.capacity)
            }
            parallel.forEachItem(count: items) { item in
                var group = PositionGroup(placeholder: xs, ys)
                for position in range(item) {
                    let oh = position / g.outWidth, ow = position % g.outWidth
                    group.append(xs + input.offset(0, oh * g.strideHeight - g.padHeight, ow * g.strideWidth - g.padWidth),
                                 ys + output.offset(0, oh, ow))
                    if group.count == PositionGroup.capacity {
                        group.flush(m: g.outChannels, panelRows: panelRows, depth: depth, packedA: packed, offsets: offsets,
                                    ldc: output.channelStride, lanes: input.lanes)
                    }
                }
                group.flush(m: g.outChannels, panelRows: panelRows, depth: depth, packedA: packed, offsets: offsets,
                            ldc: output.channelStride, lanes: input.lanes)
            }
        }
        output.unpack(ys, into: y, bias: bias, accumulate: false, parallel: parallel)
    }

    /// Backward-data (and transposed convolution's forward), one stride phase at a time.
    func batchInnerBackwardData(_ g: ConvGeometry, dy: UnsafePointer<Float>, w: UnsafePointer<Float>,
                                bias: UnsafePointer<Float>?, dx: UnsafeMutablePointer<Float>, accumulate: Bool) {
        let (sh, sw) = (g.strideHeight, g.strideWidth)
        let (tapsHigh, tapsWide) = BatchInnerLayout.phaseTaps(g)
        let gradient = BatchInnerLayout.backwardDataGradient(g)
        let result = BatchInnerLayout.input(g)
        let panelRows = TableKernel.panelRows(for: g.inChannels)
        let panels = (g.inChannels + panelRows - 1) / panelRows
        let phases = sh * sw
        let pool = ScratchPool.shared
        let dys = pool.take(gradient.count), dxs = pool.take(result.count)
        let packed = pool.take(panels * panelRows * g.outChannels * tapsHigh * tapsWide * phases)
        defer { pool.give(dys); pool.give(dxs); pool.give(packed) }

        // Per phase (a, b): the packed weights A[ci][(co, t, u)] = W[co][ci][a + sh t][b + sw u] and row offsets.
        let phaseStride = panels * panelRows * g.outChannels * tapsHigh * tapsWide
        let tableStride = g.outChannels * tapsHigh * tapsWide
        withUnsafeTemporaryAllocation(of: Int.self, capacity: tableStride * phases + phases) { storage in
            let tables = storage.baseAddress!, depths = tables + tableStride * phases
            let kernelArea = g.kernelHeight * g.kernelWidth
            func taps(_ a: Int, _ b: Int) -> (rows: Int, columns: Int) {
                (a < g.kernelHeight ? (g.kernelHeight - a + sh - 1) / sh : 0, b < g.kernelWidth ? (g.kernelWidth - b + sw - 1) / sw : 0)
            }
            for a in 0..<sh {
                for b in 0..<sw {
                    let phase = a * sw + b
                    let (rowsTaps, columnTaps) = taps(a, b)
                    depths[phase] = g.outChannels * rowsTaps * columnTaps
                    let table = tables + phase * tableStride
                    var k = 0
                    for co in 0..<g.outChannels {
                        for t in 0..<rowsTaps {
                            for u in 0..<columnTaps {
                                table[k] = co * gradient.channelStride - t * gradient.rowStride - u * gradient.lanes
                                k += 1
                            }
                        }
                    }
                }
            }
            // The gradient's layout and, in the same parallel region, the phases' weight panels.
            gradient.pack(dy, into: dys, parallel: parallel) { chunk, chunks in
                for item in CPUParallel.range(chunk, of: chunks, count: phases * panels) {
                    let phase = item / panels, panel = item % panels
                    let a = phase / sw, b = phase % sw
                    let (rowsTaps, columnTaps) = taps(a, b)
                    let ci0 = panel * panelRows
                    var out = packed + phase * phaseStride + panel * panelRows * depths[phase]
                    for co in 0..<g.outChannels {
                        for t in 0..<rowsTaps {
                            for u in 0..<columnTaps {
                                let tap = (a + sh * t) * g.kernelWidth + b + sw * u
                                let source = w + (co * g.inChannels) * kernelArea + tap
                                for r in 0..<panelRows {
                                    let ci = ci0 + r
                                    out[r] = ci < g.inChannels ? source[ci * kernelArea] : 0
                                }
                                out += panelRows
                            }
                        }
                    }
                }
            }
            // The positions sorted by phase (those of a phase share a table), cut into groups of
            // four within each phase; whichever thread is free claims the next group.
            let positions = g.inHeight * g.inWidth
            withUnsafeTemporaryAllocation(of: Int.self, capacity: positions + 2 * (phases + 1)) { storage in
                let sorted = storage.baseAddress!, phaseStart = sorted + positions, groupStart = phaseStart + phases + 1
                var filled = 0
                for phase in 0..<phases {
                    phaseStart[phase] = filled
                    groupStart[phase] = phase == 0 ? 0 : groupStart[phase - 1]
                        + (phaseStart[phase] - phaseStart[phase - 1] + PositionGroup.capacity - 1) / PositionGroup.capacity
                    for position in 0..<positions {
                        let ih = position / g.inWidth, iw = position % g.inWidth
                        if ((ih + g.padHeight) % sh) * sw + (iw + g.padWidth) % sw == phase {
                            sorted[filled] = position
                            filled += 1
                        }
                    }
                }
                phaseStart[phases] = filled
                groupStart[phases] = groupStart[phases - 1]
                    + (filled - phaseStart[phases - 1] + PositionGroup.capacity - 1) / PositionGroup.capacity
                let sortedConst = UnsafePointer(sorted), phaseStartConst = UnsafePointer(phaseStart)
                let groupStartConst = UnsafePointer(groupStart)
                // Small convolutions run on one thread, all groups in one item.
                let items = g.multiplyAdds < 1 << 19 ? 1 : groupStart[phases]
                parallel.forEachItem(count: items) { item in
                    var group = PositionGroup(placeholder: dys, dxs)
                    for phase in 0..<phases {
                        let first = phaseStartConst[phase], end = phaseStartConst[phase + 1]
                        let mine: Range<Int>
                        if items == 1 {
                            mine = first..<end
                        } else {
                            guard item >= groupStartConst[phase], item < groupStartConst[phase + 1] else { continue }
                            let start = first + (item - groupStartConst[phase]) * PositionGroup.capacity
                            mine = start..<Swift.min(end, start + PositionGroup.capacity)
                        }
                        let depth = depths[phase]
                        let packedA = packed + phase * phaseStride, offsets = tables + phase * tableStride
                        for index in mine {
                            let position = sortedConst[index]
                            let ih = position / g.inWidth, iw = position % g.inWidth
                            let target = dxs + result.offset(0, ih, iw)
                            if depth == 0 {
                                for c in 0..<g.inChannels { (target + c * result.channelStride).update(repeating: 0, count: result.lanes) }
                                continue
                            }
                            group.append(dys + gradient.offset(0, (ih + g.padHeight) / sh, (iw + g.padWidth) / sw), target)
                            if group.count == PositionGroup.capacity {
                                group.flush(m: g.inChannels, panelRows: panelRows, depth: depth, packedA: packedA, offsets: offsets,
                                            ldc: result.channelStride, lanes: result.lanes)
                            }
                        }
                        group.flush(m: g.inChannels, panelRows: panelRows, depth: depth, packedA: packedA, offsets: offsets,
                                    ldc: result.channelStride, lanes: result.lanes)
                    }
                }
            }
        }
        result.unpack(dxs, into: dx, bias: bias, accumulate: accumulate, parallel: parallel)
    }

    /// Backward-weights of a convolution of one-channel images (the first layer of a
    /// discriminator or an encoder, the last transposed convolution of a decoder): dW is only
    /// Cout x (kH * kW), so rather than packing the (large) gradient into the batch-inner
    /// layout, each thread builds the taps' column matrices of its images (kH*kW x Ho*Wo each,
    /// from NCHW) and accumulates dot products with the gradient rows, read in place, four
    /// output channels by four taps at a time in vector registers across all its images;
    /// partial sums are added up at the end.
    func singleChannelBackwardWeights(_ g: ConvGeometry, x: UnsafePointer<Float>, dy: UnsafePointer<Float>,
                                      dw: UnsafeMutablePointer<Float>) {
        let taps = g.kernelHeight * g.kernelWidth, positions = g.outHeight * g.outWidth
        let plan = ConvPlan(g, threads: 1)
        let single = CPUParallel(threadCount: 1)
        let threads = g.multiplyAdds < 1 << 18 ? 1 : parallel.threadCount
        let pool = ScratchPool.shared
        let weightCount = g.outChannels * taps
        let partials = pool.take(threads * weightCount)
        defer { pool.give(partials) }
        parallel.forEachChunk(chunkCount: threads) { chunk, chunks in
            let images = CPUParallel.range(chunk, of: chunks, count: g.batch)
            let target = partials + chunk * weightCount
            target.update(repeating: 0, count: weightCount)
            guard !images.isEmpty else { return }
            pool.with(images.count * taps * positions) { columns in
                for (index, n) in images.enumerated() {
                    plan.im2col(UnsafeMutablePointer(mutating: x + n * g.inHeight * g.inWidth),
                                columns + index * taps * positions, ld: positions, channels: 0..<1, parallel: single)
                }
                var co0 = 0
                while co0 < g.outChannels {
                    // Rows past the end repeat the last one; only real ones are stored.
                    let lastChannel = g.outChannels - 1
                    let co1 = Swift.min(co0 + 1, lastChannel), co2 = Swift.min(co0 + 2, lastChannel), co3 = Swift.min(co0 + 3, lastChannel)
                    var r0 = 0
                    while r0 < taps {
                        let r1 = Swift.min(r0 + 1, taps - 1), r2 = Swift.min(r0 + 2, taps - 1), r3 = Swift.min(r0 + 3, taps - 1)
                        var s00 = Vec(), s01 = Vec(), s02 = Vec(), s03 = Vec(), s10 = Vec(), s11 = Vec(), s12 = Vec(), s13 = Vec()
                        var s20 = Vec(), s21 = Vec(), s22 = Vec(), s23 = Vec(), s30 = Vec(), s31 = Vec(), s32 = Vec(), s33 = Vec()
                        for (index, n) in images.enumerated() {
                            let gradient = dy + n * g.outChannels * positions
                            let g0 = gradient + co0 * positions, g1 = gradient + co1 * positions
                            let g2 = gradient + co2 * positions, g3 = gradient + co3 * positions
                            let column = columns + index * taps * positions
                            let x0 = column + r0 * positions, x1 = column + r1 * positions
                            let x2 = column + r2 * positions, x3 = column + r3 * positions
                            vectorLoop(0..<positions) { p, lanes in
                                let a0 = Vec.load(g0 + p, lanes), a1 = Vec.load(g1 + p, lanes)
                                let a2 = Vec.load(g2 + p, lanes), a3 = Vec.load(g3 + p, lanes)
                                let b0 = Vec.load(x0 + p, lanes), b1 = Vec.load(x1 + p, lanes)
                                let b2 = Vec.load(x2 + p, lanes), b3 = Vec.load(x3 + p, lanes)
                                s00.addProduct(a0, b0); s01.addProduct(a0, b1); s02.addProduct(a0, b2); s03.addProduct(a0, b3)
                                s10.addProduct(a1, b0); s11.addProduct(a1, b1); s12.addProduct(a1, b2); s13.addProduct(a1, b3)
                                s20.addProduct(a2, b0); s21.addProduct(a2, b1); s22.addProduct(a2, b2); s23.addProduct(a2, b3)
                                s30.addProduct(a3, b0); s31.addProduct(a3, b1); s32.addProduct(a3, b2); s33.addProduct(a3, b3)
                            }
                        }
                        withUnsafeTemporaryAllocation(of: Vec.self, capacity: 16) { buffer in
                            let sums = buffer.baseAddress!
                            sums[0] = s00; sums[1] = s01; sums[2] = s02; sums[3] = s03
                            sums[4] = s10; sums[5] = s11; sums[6] = s12; sums[7] = s13
                            sums[8] = s20; sums[9] = s21; sums[10] = s22; sums[11] = s23
                            sums[12] = s30; sums[13] = s31; sums[14] = s32; sums[15] = s33
                            for i in 0..<Swift.min(4, g.outChannels - co0) {
                                for j in 0..<Swift.min(4, taps - r0) {
                                    target[(co0 + i) * taps + r0 + j] += sums[i * 4 + j].sum()
                                }
                            }
                        }
                        r0 += 4
                    }
                    co0 += 4
                }
            }
        }
        addUp(partials, chunks: threads, count: weightCount, into: dw)
    }

    /// `LATENT_CPU_SPLIT_DEPTH=1`: backward-weights always splits the positions between the
    /// threads (partial dW, added up) instead of splitting dW's columns. A measuring knob.
    static let splitsWeightGradientDepth = ProcessInfo.processInfo.environment["LATENT_CPU_SPLIT_DEPTH"] == "1"

    /// dW (Cout x R) = dY' (Cout x positions * lanes) * B, B[(position, n)][r] = X'[base(position) + offset[r] + n].
    func batchInnerBackwardWeights(_ g: ConvGeometry, x: UnsafePointer<Float>, dy: UnsafePointer<Float>,
                                   dw: UnsafeMutablePointer<Float>) {
        let input = BatchInnerLayout.forwardInput(g)
        let gradient = BatchInnerLayout.output(g)
        let depthR = g.inChannels * g.kernelHeight * g.kernelWidth
        let lanes = input.lanes
        let positions = g.outHeight * g.outWidth
        let pool = ScratchPool.shared
        let xs = pool.take(input.count), dys = pool.take(gradient.count)
        defer { pool.give(xs); pool.give(dys) }
        // Both layouts in one parallel region, each thread a share of each.
        input.pack(x, into: xs, parallel: parallel) { chunk, chunks in
            gradient.pack(dy, into: dys, channels: CPUParallel.range(chunk, of: chunks, count: gradient.channels))
        }
        let xsConst = UnsafePointer(xs)
        withUnsafeTemporaryAllocation(of: Int.self, capacity: depthR + positions) { storage in
            let offsets = storage.baseAddress!, bases = offsets + depthR
            var r = 0
            for ci in 0..<g.inChannels {
                for ki in 0..<g.kernelHeight {
                    for kj in 0..<g.kernelWidth {
                        offsets[r] = ci * input.channelStride + ki * input.rowStride + kj * lanes
                        r += 1
                    }
                }
            }
            for position in 0..<positions {
                let oh = position / g.outWidth, ow = position % g.outWidth
                bases[position] = input.offset(0, oh * g.strideHeight - g.padHeight, ow * g.strideWidth - g.padWidth)
            }
            let offsetsConst = UnsafePointer(offsets), basesConst = UnsafePointer(bases)
            // B panel for depth [p0, p0 + depth) (whole positions) and columns [j0, j0 + cols).
            let packB: (Int, Int, Int, Int, UnsafeMutablePointer<Float>) -> Void = { p0, depth, j0, cols, into in
                var out = into
                var panel = 0
                while panel < cols {
                    let panelCols = Swift.min(PackedGEMM.nr, cols - panel)
                    let columnOffsets = offsetsConst + j0 + panel
                    var p = p0
                    while p < p0 + depth {
                        let position = p / lanes, n0 = p % lanes
                        let base = xsConst + basesConst[position] + n0
                        let target = out + (p - p0) * PackedGEMM.nr
                        if RegisterFile.narrow {
                            // 8 lanes x 8 columns at a time (see `Tile8`).
                            for laneHalf in 0..<2 {
                                for first in stride(from: 0, to: PackedGEMM.nr, by: 8) {
                                    let from = base + laneHalf * 8
                                    let rows = panelCols >= first + 8
                                        ? Tile8 { t in Tile8.Row.load(from + columnOffsets[first + t]) }
                                        : Tile8 { t in first + t < panelCols ? Tile8.Row.load(from + columnOffsets[first + t]) : Tile8.Row() }
                                    let rowTarget = target + laneHalf * 8 * PackedGEMM.nr + first
                                    rows.transposed().forEachRow { i, row in row.store(rowTarget + i * PackedGEMM.nr) }
                                }
                            }
                        } else {
                            for half in 0..<(PackedGEMM.nr / 16) {
                                let first = half * 16
                                let rows = panelCols == PackedGEMM.nr
                                    ? Tile16 { t in Vec.load(base + columnOffsets[first + t]) }
                                    : Tile16 { t in first + t < panelCols ? Vec.load(base + columnOffsets[first + t]) : Vec() }
                                rows.transposed().forEachRow { i, row in row.store(target + i * PackedGEMM.nr + first) }
                            }
                        }
                        p += 16
                    }
                    out += depth * PackedGEMM.nr
                    panel += PackedGEMM.nr
                }
            }
            let dysConst = UnsafePointer(dys)
            let packA: (Int, Int, Int, Int, UnsafeMutablePointer<Float>) -> Void = { i0, rows, p0, depth, into in
                PackedGEMM.packA(rows: rows, depth: depth, a: dysConst + i0 * gradient.channelStride + p0,
                                 rowStride: gradient.channelStride, colStride: 1, into: into)
            }
            let k = positions * lanes
            // Whole positions per depth block, about `PackedGEMM.kc` deep.
            let blockDepth = Swift.max(1, PackedGEMM.kc / lanes) * lanes
            let columnPanels = (depthR + PackedGEMM.nr - 1) / PackedGEMM.nr
            let threads = g.multiplyAdds < 1 << 18 ? 1 : parallel.threadCount
            if columnPanels >= threads && !Self.splitsWeightGradientDepth {
                // dY' packed once, its blocks shared out; then column ranges of dW, four per
                // thread, claimed by whichever thread is free (see `forEachItem`), each packing
                // only its own columns of B.
                let workers = threads == 1 ? CPUParallel(threadCount: 1) : parallel
                let prepacked = pool.take(PackedGEMM.prepackedCount(m: g.outChannels, k: k))
                defer { pool.give(prepacked) }
                PackedGEMM.prepackA(m: g.outChannels, k: k, kc: blockDepth, packA: packA, into: prepacked, parallel: workers)
                let prepackedConst = UnsafePointer(prepacked)
                let items = Swift.min(columnPanels, 4 * workers.threadCount)
                workers.forEachItem(count: items) { item in
                    let columns = CPUParallel.range(item, of: items, count: depthR, alignment: PackedGEMM.nr)
                    guard !columns.isEmpty else { return }
                    PackedGEMM.multiplyCustom(m: g.outChannels, n: columns.count, k: k, kc: blockDepth,
                                              packA: packA, packB: { p0, depth, j0, cols, into in
                                                  packB(p0, depth, columns.lowerBound + j0, cols, into)
                                              },
                                              prepackedA: prepackedConst,
                                              beta: 0, c: dw + columns.lowerBound, ldc: depthR)
                }
            } else {
                // Few columns (a one-channel input): threads take position ranges into partial sums.
                let weightCount = g.weightCount
                let partials = pool.take(threads * weightCount)
                defer { pool.give(partials) }
                parallel.forEachChunk(chunkCount: threads) { chunk, chunks in
                    let range = CPUParallel.range(chunk, of: chunks, count: positions)
                    let target = partials + chunk * weightCount
                    guard !range.isEmpty else {
                        target.update(repeating: 0, count: weightCount)
                        return
                    }
                    let start = range.lowerBound * lanes
                    PackedGEMM.multiplyCustom(m: g.outChannels, n: depthR, k: range.count * lanes, kc: blockDepth,
                                              packA: { i0, rows, p0, depth, into in packA(i0, rows, start + p0, depth, into) },
                                              packB: { p0, depth, j0, cols, into in packB(start + p0, depth, j0, cols, into) },
                                              beta: 0, c: target, ldc: depthR)
                }
                addUp(partials, chunks: threads, count: weightCount, into: dw)
            }
        }
    }
}
