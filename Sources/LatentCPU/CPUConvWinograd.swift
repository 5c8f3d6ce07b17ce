import Foundation
import LatentCore

/// Winograd F(4x4, 2x2) for the report models' 4x4 stride-2 convolutions (the conv VAE's
/// and DCGAN's 64 <-> 128 channel layers), all three passes, in the batch-inner layout.
///
/// A 4x4 stride-2 convolution is four stride-1 2x2 convolutions, one per stride phase
/// (p, q) of the input: output (oh, ow) reads taps (2a + p, 2b + q) at input row 2(oh + a) + p
/// (padded coordinates). With the phases as extra input channels it is one stride-1 2x2
/// correlation over 4 Cin channels, and backward-data is one over Cout channels whose 4 Cin
/// output rows are the four phases of the input gradient; the weight gradient is the
/// adjoint of the forward one. Winograd F(4, 2) computes a 4x4
/// output tile from a 5x5 input tile with 25 multiplies per channel pair instead of 64, so
/// on a 7x7 map (two tiles a side) 100 instead of 196: the work becomes 25 GEMMs
/// (rows x depth x tiles * lanes) of half the direct convolution's multiply-adds, plus
/// transforms that are adds of whole 16-image vectors.
///
/// Points 0, 1, -1, 2 and infinity: the input and output transforms have integer
/// coefficients, the fractions sit in the filter transform (once per call). The error is
/// a few units of the last place per tile (max 5e-6 relative on random 5x5 tiles in
/// float32), not bit-identical to the direct kernels.
///
///     B^T = [2 -1 -2 1 0; 0 -2 -1 1 0; 0 2 -3 1 0; 0 -1 0 1 0; 0 2 -1 -2 1]
///     G   = [1/2 0; -1/2 -1/2; -1/6 1/6; 1/6 1/3; 0 1]
///     A^T = [1 1 1 1 0; 0 1 -1 2 0; 0 1 1 4 0; 0 1 -1 8 1]
///     y = A^T [(G g G^T) . (B^T d B)] A  (correlation: y[i][j] = sum g[a][b] d[i + a][j + b])
enum WinogradF42: WinogradTransform {
    static let points = 25
    static let tileSide = 5
    static let filterSide = 2

    /// A^T M A of the products at `source + e * stride` (point e = 5x + y), each of the 4x4
    /// outputs handed to `store(i, j, value)`: columns transformed straight from the loads
    /// into `scratch` (20 vectors), rows from there.
    @inline(__always)
    static func transformOutputTile(_ source: UnsafePointer<Float>, stride: Int, scratch t: UnsafeMutablePointer<Vec>,
                                    store: (_ i: Int, _ j: Int, _ value: Vec) -> Void) {
        let two = Vec(repeating: 2), four = Vec(repeating: 4), eight = Vec(repeating: 8)
        for y in 0..<5 {
            let m0 = Vec.load(source + y * stride), m1 = Vec.load(source + (5 + y) * stride)
            let m2 = Vec.load(source + (10 + y) * stride), m3 = Vec.load(source + (15 + y) * stride)
            let m4 = Vec.load(source + (20 + y) * stride)
            let sum = m1 + m2, difference = m1 - m2
            t[y] = m0 + sum + m3
            t[5 + y] = difference.addingProduct(two, m3)
            t[10 + y] = sum.addingProduct(four, m3)
            t[15 + y] = difference.addingProduct(eight, m3) + m4
        }
        for i in 0..<4 {
            let row = t + 5 * i
            let m0 = row[0], m1 = row[1], m2 = row[2], m3 = row[3], m4 = row[4]
            let sum = m1 + m2, difference = m1 - m2
            store(i, 0, m0 + sum + m3)
            store(i, 1, difference.addingProduct(two, m3))
            store(i, 2, sum.addingProduct(four, m3))
            store(i, 3, difference.addingProduct(eight, m3) + m4)
        }
    }

    /// The offsets of a 5x5 input tile: element (s, v) at `rows[s] + columns[v]` from a base,
    /// -1 where a row or column lies outside the data (zero there).
    struct TileOffsets {
        var rows: (Int, Int, Int, Int, Int) = (-1, -1, -1, -1, -1)
        var columns: (Int, Int, Int, Int, Int) = (-1, -1, -1, -1, -1)

        @inline(__always)
        init(rows: (Int) -> Int, columns: (Int) -> Int) {
            self.rows = (rows(0), rows(1), rows(2), rows(3), rows(4))
            self.columns = (columns(0), columns(1), columns(2), columns(3), columns(4))
        }
    }

    /// B^T d B of the tile at `base` + `offsets`, each point's 16 lanes handed to `store(e, value)`:
    /// columns transformed straight from the loads into `scratch` (25 vectors), rows from there.
    @inline(__always)
    static func transformInputTile(_ base: UnsafePointer<Float>, _ offsets: TileOffsets, scratch t: UnsafeMutablePointer<Vec>,
                                   store: (_ point: Int, _ value: Vec) -> Void) {
        let r = offsets.rows, c = offsets.columns
        @inline(__always) func column(_ v: Int, _ offset: Int) {
            guard offset >= 0 else {
                t[v] = Vec(); t[5 + v] = Vec(); t[10 + v] = Vec(); t[15 + v] = Vec(); t[20 + v] = Vec()
                return
            }
            @inline(__always) func load(_ row: Int) -> Vec { row >= 0 ? Vec.load(base + row + offset) : Vec() }
            let d0 = load(r.0), d1 = load(r.1), d2 = load(r.2), d3 = load(r.3), d4 = load(r.4)
            let two = Vec(repeating: 2)
            t[v] = (d3 - d1).addingProduct(two, d0 - d2)
            t[5 + v] = (d3 - d2).addingProduct(-two, d1)
            t[10 + v] = (d3 - d2).addingProduct(two, d1 - d2)
            t[15 + v] = d3 - d1
            t[20 + v] = (d4 - d2).addingProduct(two, d1 - d3)
        }
        column(0, c.0); column(1, c.1); column(2, c.2); column(3, c.3); column(4, c.4)
        let two = Vec(repeating: 2)
        for x in 0..<5 {
            let row = t + 5 * x
            let d0 = row[0], d1 = row[1], d2 = row[2], d3 = row[3], d4 = row[4]
            store(5 * x, (d3 - d1).addingProduct(two, d0 - d2))
            store(5 * x + 1, (d3 - d2).addingProduct(-two, d1))
            store(5 * x + 2, (d3 - d2).addingProduct(two, d1 - d2))
            store(5 * x + 3, d3 - d1)
            store(5 * x + 4, (d4 - d2).addingProduct(two, d1 - d3))
        }
    }

    /// `rows` rows of 16 lanes -> 16 rows of `rows` floats (a panel's 16 depth entries), by
    /// 8 x 8 transposes; where `rows` is not a multiple of 8 a block's rows are stored lane by
    /// lane, so that nothing past the 16 rows is written.
    @inline(__always)
    static func transposeLanes(_ source: UnsafePointer<Float>, rows: Int, into destination: UnsafeMutablePointer<Float>) {
        for r0 in stride(from: 0, to: rows, by: 8) {
            let count = Swift.min(8, rows - r0)
            for i0 in stride(from: 0, to: 16, by: 8) {
                Tile8 { r in r < count ? Tile8.Row.load(source + (r0 + r) * 16 + i0) : Tile8.Row() }
                    .transposed().forEachRow { i, row in
                        let target = destination + (i0 + i) * rows + r0
                        if count == 8 {
                            row.store(target)
                        } else {
                            for lane in 0..<count { target[lane] = row[lane] }
                        }
                    }
            }
        }
    }

    /// A along a stride (4 values -> 5 in place): the adjoint of the output transform, for
    /// the output gradient of a tile (dM = A dY A^T).
    @inline(__always)
    static func transformOutputGradient(_ t: UnsafeMutablePointer<Vec>, stride s: Int) {
        let y0 = t[0], y1 = t[s], y2 = t[2 * s], y3 = t[3 * s]
        let even = y0 + y2, odd = y1 + y3
        t[s] = even + odd
        t[2 * s] = even - odd
        t[3 * s] = (y0.addingProduct(Vec(repeating: 2), y1)).addingProduct(Vec(repeating: 4), y2).addingProduct(Vec(repeating: 8), y3)
        t[4 * s] = y3
    }

    /// G^T along five values (-> 2): the adjoint of the filter transform, for dg = G^T dU G.
    @inline(__always)
    static func transformFilterGradient(_ u0: Vec, _ u1: Vec, _ u2: Vec, _ u3: Vec, _ u4: Vec) -> (Vec, Vec) {
        let half = Vec(repeating: 0.5), sixth = Vec(repeating: 1 / 6 as Float), third = Vec(repeating: 1 / 3 as Float)
        return ((half * (u0 - u1)).addingProduct(sixth, u3 - u2),
                (sixth * u2 - half * u1).addingProduct(third, u3) + u4)
    }

    /// G^T dU G: along x (the row taps) for each y, then along y (the column taps).
    @inline(__always)
    static func transformFilterGradientTile(_ u: UnsafePointer<Vec>, into taps: UnsafeMutablePointer<Vec>) {
        let y0 = transformFilterGradient(u[0], u[5], u[10], u[15], u[20])
        let y1 = transformFilterGradient(u[1], u[6], u[11], u[16], u[21])
        let y2 = transformFilterGradient(u[2], u[7], u[12], u[17], u[22])
        let y3 = transformFilterGradient(u[3], u[8], u[13], u[18], u[23])
        let y4 = transformFilterGradient(u[4], u[9], u[14], u[19], u[24])
        let top = transformFilterGradient(y0.0, y1.0, y2.0, y3.0, y4.0)
        let bottom = transformFilterGradient(y0.1, y1.1, y2.1, y3.1, y4.1)
        taps[0] = top.0; taps[1] = top.1; taps[2] = bottom.0; taps[3] = bottom.1
    }

    /// G g G^T of 16 2x2 filters g (row-major, one per lane) into the 25 points' rows
    /// `u + e * stride`.
    @inline(__always)
    static func transformFilters(_ g00: Vec, _ g01: Vec, _ g10: Vec, _ g11: Vec, into u: UnsafeMutablePointer<Float>,
                                 stride: Int, lanes: Int) {
        let half = Vec(repeating: 0.5), sixth = Vec(repeating: 1 / 6 as Float), third = Vec(repeating: 1 / 3 as Float)
        @inline(__always) func column(_ a: Vec, _ b: Vec) -> (Vec, Vec, Vec, Vec, Vec) {
            (half * a, -half * (a + b), sixth * (b - a), (sixth * a).addingProduct(third, b), b)
        }
        let left = column(g00, g10), right = column(g01, g11)
        @inline(__always) func row(_ x: Int, _ r: (Vec, Vec, Vec, Vec, Vec)) {
            let base = u + x * 5 * stride
            r.0.store(base, lanes); r.1.store(base + stride, lanes); r.2.store(base + 2 * stride, lanes)
            r.3.store(base + 3 * stride, lanes); r.4.store(base + 4 * stride, lanes)
        }
        row(0, column(left.0, right.0))
        row(1, column(left.1, right.1))
        row(2, column(left.2, right.2))
        row(3, column(left.3, right.3))
        row(4, column(left.4, right.4))
    }
}

/// What the loops shared by the Winograd transforms need of one: F(4x4, 2x2) (`WinogradF42`)
/// or F(4x4, 3x3) (`WinogradF43`). Both make 4x4 output tiles; they differ in the input
/// tile's side and the number of points (at most `points` scratch vectors either way).
protocol WinogradTransform {
    associatedtype TileOffsets
    static var points: Int { get }
    /// Side of the input tile (points = side x side) and of the filter.
    static var tileSide: Int { get }
    static var filterSide: Int { get }
    /// B^T d B of the input tile at `base` + `offsets`, each point's 16 lanes to `store`.
    static func transformInputTile(_ base: UnsafePointer<Float>, _ offsets: TileOffsets, scratch: UnsafeMutablePointer<Vec>,
                                   store: (_ point: Int, _ value: Vec) -> Void)
    /// A^T M A of the products at `source + e * stride`, each of the 4x4 outputs to `store`.
    static func transformOutputTile(_ source: UnsafePointer<Float>, stride: Int, scratch: UnsafeMutablePointer<Vec>,
                                    store: (_ i: Int, _ j: Int, _ value: Vec) -> Void)
    /// A along a stride (4 values -> `tileSide`, in place): the output transform's adjoint.
    static func transformOutputGradient(_ t: UnsafeMutablePointer<Vec>, stride: Int)
    /// G^T dU G of the `points` vectors at `u` into `filterSide` x `filterSide` taps at `taps` (row-major).
    static func transformFilterGradientTile(_ u: UnsafePointer<Vec>, into taps: UnsafeMutablePointer<Vec>)
}

/// One Winograd problem: 25 (or 36) GEMMs M_e (rows x columns) = U_e (rows x depth) * V_e (depth x
/// columns), columns = tiles x lanes, in `PackedGEMM`'s panel formats so that the transforms
/// write straight into what the micro-kernel reads.
struct WinogradPlan {
    let rows: Int, depth: Int, tiles: Int, lanes: Int
    /// Transform points: 25 for F(4x4, 2x2), 36 for F(4x4, 3x3).
    var points = WinogradF42.points
    var columns: Int { tiles * lanes }
    var paddedRows: Int { (rows + PackedGEMM.mr - 1) / PackedGEMM.mr * PackedGEMM.mr }
    var paddedColumns: Int { (columns + PackedGEMM.nr - 1) / PackedGEMM.nr * PackedGEMM.nr }
    /// Floats of U per point: MR-row panels, k-major (`PackedGEMM.packA`'s format).
    var filterStride: Int { WinogradPlanes.stride(paddedRows * depth) }
    /// Floats of V per point: NR-column panels, k-major (`PackedGEMM.packB`'s format).
    var inputStride: Int { WinogradPlanes.stride(depth * paddedColumns) }
    /// Floats of M per point: row-major, row stride `paddedColumns`.
    var productStride: Int { WinogradPlanes.stride(paddedRows * paddedColumns) }

    /// Where the 16 lanes of V_e[k][column ..< column + 16] go (column a multiple of 16).
    @inline(__always)
    func inputIndex(point e: Int, k: Int, column: Int) -> Int {
        e * inputStride + (column / PackedGEMM.nr * depth + k) * PackedGEMM.nr + column % PackedGEMM.nr
    }

    /// Fills U for this thread's share of the row panels: `taps(row, k)` gives the 2x2 filter
    /// (g00, g01, g10, g11) of U_e[row][k]; rows past `rows` are zero. A panel's entries
    /// (k, r) are consecutive in every point's plane, so the taps of a block of them are
    /// gathered side by side and transformed 16 at a time straight into the 25 planes.
    func fillFilters(_ filters: UnsafeMutablePointer<Float>, chunk: Int, of chunks: Int,
                     taps: (_ row: Int, _ k: Int) -> (Float, Float, Float, Float)) {
        let mr = PackedGEMM.mr, block = 16 * mr
        withUnsafeTemporaryAllocation(of: Float.self, capacity: 4 * block) { buffer in
            let g00 = buffer.baseAddress!, g01 = g00 + block, g10 = g01 + block, g11 = g10 + block
            for panel in CPUParallel.range(chunk, of: chunks, count: paddedRows / mr) {
                // A panel's entries (k, r) in order, a block of 16 k at a time.
                var k0 = 0
                while k0 < depth {
                    let count = Swift.min(16, depth - k0) * mr
                    for i in 0..<count {
                        let row = panel * mr + i % mr
                        (g00[i], g01[i], g10[i], g11[i]) = row < rows ? taps(row, k0 + i / mr) : (0, 0, 0, 0)
                    }
                    let destination = filters + (panel * depth + k0) * mr
                    vectorLoop(0..<count) { i, lanes in
                        WinogradF42.transformFilters(Vec.load(g00 + i, lanes), Vec.load(g01 + i, lanes), Vec.load(g10 + i, lanes),
                                                     Vec.load(g11 + i, lanes), into: destination + i, stride: filterStride,
                                                     lanes: lanes)
                    }
                    k0 += 16
                }
            }
        }
    }

    /// V: for every (k, tile, 16 lanes) `tileAt` gives where the input tile lies; it is
    /// transformed and stored into the planes. Items are a tile's 16 lanes for a range of
    /// k, so that each plane is written front to back; `stagedRun` consecutive k are
    /// transformed into a buffer first and then written plane by plane, a run of lines each.
    func forEachInputTile<T: WinogradTransform>(_ transform: T.Type, _ backend: CPUBackend, _ inputs: UnsafeMutablePointer<Float>,
                                                tileAt: (_ k: Int, _ tile: Int, _ lane: Int) -> (UnsafePointer<Float>, T.TileOffsets)) {
        // Where a 32-column panel holds 32 lanes of one tile (12 x 32 register tiles), an item
        // takes both 16-lane halves, so that a run writes whole 128-byte panel rows, one
        // stretch of lines per plane; 16 lanes alone wrote every other line of the stretch.
        let nr = PackedGEMM.nr
        let halves = nr == 32 && lanes % 32 == 0 ? 2 : 1
        let blocks = lanes / (16 * halves), kChunks = Swift.max(1, Swift.min(8, depth / 32)), plane = inputStride
        let run = Self.stagedRun
        backend.forEachItemRange(count: tiles * blocks * kChunks, costPerItem: 2 * T.points * 16 * halves * depth / kChunks) { items in
            withUnsafeTemporaryAllocation(of: Vec.self, capacity: T.points * (1 + run * halves)) { buffer in
                let t = buffer.baseAddress!, staged = t + T.points
                for item in items {
                    let block = item / kChunks, tile = block / blocks, n0 = (block % blocks) * 16 * halves
                    let ks = CPUParallel.range(item % kChunks, of: kChunks, count: depth)
                    var k0 = ks.lowerBound
                    while k0 < ks.upperBound {
                        let count = Swift.min(run, ks.upperBound - k0)
                        for j in 0..<count {
                            for h in 0..<halves {
                                let (base, offsets) = tileAt(k0 + j, tile, n0 + 16 * h)
                                T.transformInputTile(base, offsets, scratch: t) { e, value in staged[(e * run + j) * halves + h] = value }
                            }
                        }
                        // V_e[k0 + j] lies nr floats after V_e[k0] (`inputIndex`), its second half 16 after that.
                        let target = inputs + inputIndex(point: 0, k: k0, column: tile * lanes + n0)
                        for e in 0..<T.points {
                            let row = target + e * plane, source = staged + e * run * halves
                            for j in 0..<count {
                                for h in 0..<halves { source[j * halves + h].store(row + j * nr + 16 * h) }
                            }
                        }
                        k0 += count
                    }
                }
            }
        }
    }

    /// k transformed per write-out: 25 or 36 vectors straight to as many planes per k left
    /// the forward's input transform of vae-conv's conv2 at 1.59 ms (median of ~185 calls,
    /// alternating runs, 2026-12-03, Zen 3); runs of 4 took 1.15, of 8 1.27, of 16 1.31.
    static let stagedRun = 4

    /// M_e = U_e V_e for every point, items of (point, four column panels) claimed by free threads.
    func multiply(filters: UnsafePointer<Float>, inputs: UnsafeMutablePointer<Float>, products: UnsafeMutablePointer<Float>,
                  parallel: CPUParallel) {
        let (mr, nr) = (PackedGEMM.mr, PackedGEMM.nr)
        // Spare columns of the last panel hold zeros (their products are never read, but
        // must not be NaN from stale scratch).
        if paddedColumns > columns {
            for e in 0..<points {
                for k in 0..<depth {
                    let row = inputs + inputIndex(point: e, k: k, column: columns - columns % nr)
                    (row + columns % nr).update(repeating: 0, count: paddedColumns - columns)
                }
            }
        }
        WinogradF42.multiply(points: points, rowPanels: paddedRows / mr, columnPanels: paddedColumns / nr, depth: depth,
                             a: filters, aStride: filterStride, b: inputs, bStride: inputStride,
                             c: products, cStride: productStride, ldc: paddedColumns, parallel: parallel)
    }
}

extension WinogradF42 {
    /// C_e (row-major, `ldc`) = A_e B_e for `points` points, A_e in MR-row panels and B_e in
    /// NR-column panels (k-major, `depth` deep), items of (point, four column panels)
    /// claimed by whichever thread is free.
    static func multiply(points: Int = WinogradF42.points, rowPanels: Int, columnPanels: Int, depth: Int, a: UnsafePointer<Float>, aStride: Int,
                         b: UnsafePointer<Float>, bStride: Int, c: UnsafeMutablePointer<Float>, cStride: Int, ldc: Int,
                         parallel: CPUParallel) {
        let (mr, nr, kc) = (PackedGEMM.mr, PackedGEMM.nr, PackedGEMM.kc)
        let panelsPerItem = 4
        let groups = (columnPanels + panelsPerItem - 1) / panelsPerItem
        parallel.forEachItem(count: points * groups) { item in
            let e = item / groups, group = item % groups
            let u = a + e * aStride, v = b + e * bStride, m = c + e * cStride
            for panel in group * panelsPerItem..<Swift.min(columnPanels, (group + 1) * panelsPerItem) {
                let bPanel = v + panel * depth * nr
                var k0 = 0
                while k0 < depth {
                    let block = Swift.min(kc, depth - k0)
                    for rowPanel in 0..<rowPanels {
                        PackedGEMM.microKernel(depth: block, a: u + rowPanel * mr * depth + k0 * mr, aStride: mr, b: bPanel + k0 * nr,
                                               c: m + rowPanel * mr * ldc + panel * nr, ldc: ldc,
                                               alpha: 1, beta: k0 == 0 ? 0 : 1)
                    }
                    k0 += block
                }
            }
        }
    }
}

/// The transformed filters of recent Winograd calls, reused while the weights hold the same
/// bytes: a GAN step runs its discriminator's forward and backward-data three times each
/// between two optimizer steps, and the filter transform is a tenth of such a call. An
/// entry is found by pass, geometry and weight address, and used only after its copy of the
/// weights compares equal byte for byte, so a changed weight tensor is never served stale.
/// An entry is taken out while a call uses it (concurrent calls on one key each build their
/// own). At most `capacity` entries are kept.
final class WinogradFilterCache: @unchecked Sendable {
    struct Key: Hashable {
        let pass: ConvPass
        let geometry: ConvGeometry
        let weights: UnsafePointer<Float>
    }

    final class Entry {
        let weights: UnsafeMutablePointer<Float>
        let weightCount: Int
        let filters: UnsafeMutablePointer<Float>
        let filterCount: Int
        var valid = false

        init(weightCount: Int, filterCount: Int) {
            self.weightCount = weightCount
            self.filterCount = filterCount
            weights = .allocate(capacity: weightCount)
            filters = .allocate(capacity: filterCount)
        }

        deinit {
            weights.deallocate()
            filters.deallocate()
        }

        func holds(_ w: UnsafePointer<Float>) -> Bool {
            valid && memcmp(weights, w, weightCount * MemoryLayout<Float>.stride) == 0
        }

        /// The filters now hold the transform of `w`.
        func record(_ w: UnsafePointer<Float>) {
            weights.update(from: w, count: weightCount)
            valid = true
        }
    }

    static let capacity = 8
    private let lock = NSLock()
    private var entries: [Key: Entry] = [:]
    private var order: [Key] = []

    /// The entry for `key`, its filters valid when `holds(weights)`; give it back with `checkIn`.
    func checkOut(_ key: Key, weightCount: Int, filterCount: Int) -> Entry {
        lock.lock()
        defer { lock.unlock() }
        if let entry = entries.removeValue(forKey: key), entry.weightCount == weightCount, entry.filterCount == filterCount {
            order.removeAll { $0 == key }
            return entry
        }
        order.removeAll { $0 == key }
        return Entry(weightCount: weightCount, filterCount: filterCount)
    }

    /// Records that `entry` now holds the filters of `weights`, and keeps it.
    func checkIn(_ key: Key, _ entry: Entry) {
        lock.lock()
        defer { lock.unlock() }
        entries[key] = entry
        order.removeAll { $0 == key }
        order.append(key)
        while order.count > Self.capacity { entries.removeValue(forKey: order.removeFirst()) }
    }
}

extension CPUBackend {
    /// Whether a pass runs as Winograd F(4x4, 2x2): a 4x4 kernel with stride 2 on the
    /// batch-inner path, with enough channels on both sides for its GEMMs (depth 4 Cin
    /// forward, Cout backward-data; 4 Cin columns for the weights) to be worth the transforms.
    func usesWinograd(_ g: ConvGeometry, _ pass: ConvPass) -> Bool {
        guard g.kernelHeight == 4, g.kernelWidth == 4, g.strideHeight == 2, g.strideWidth == 2,
              usesBatchInner(g, pass) else { return false }
        switch convolutionPath {
        case .winograd: return true
        case .automatic: return g.inChannels >= 8 && g.outChannels >= 16
        case .im2col, .batchInner: return false
        }
    }

    /// Runs `pack` (a layout's pack with work alongside in its parallel region) and hands
    /// `body` the transformed filters of `plan` for `pass`: built from `taps` alongside the
    /// packing, unless `winogradFilters` holds them for these exact weights.
    private func withWinogradFilters<R>(_ pass: ConvPass, _ g: ConvGeometry, weights w: UnsafePointer<Float>, plan: WinogradPlan,
                                        pack: (_ alongside: (_ chunk: Int, _ chunks: Int) -> Void) -> Void,
                                        taps: (_ row: Int, _ k: Int) -> (Float, Float, Float, Float),
                                        _ body: (UnsafePointer<Float>) -> R) -> R {
        withoutActuallyEscaping(taps) { taps in
            withWinogradFilters(pass, g, weights: w, plan: plan, pack: pack, fill: { filters, chunk, chunks in
                plan.fillFilters(filters, chunk: chunk, of: chunks, taps: taps)
            }, body)
        }
    }

    /// The same for any transform: `fill(filters, chunk, chunks)` builds a thread's share.
    func withWinogradFilters<R>(_ pass: ConvPass, _ g: ConvGeometry, weights w: UnsafePointer<Float>, plan: WinogradPlan,
                                pack: (_ alongside: (_ chunk: Int, _ chunks: Int) -> Void) -> Void,
                                fill: (_ filters: UnsafeMutablePointer<Float>, _ chunk: Int, _ chunks: Int) -> Void,
                                _ body: (UnsafePointer<Float>) -> R) -> R {
        let key = WinogradFilterCache.Key(pass: pass, geometry: g, weights: w)
        let cached = winogradFilters.checkOut(key, weightCount: g.weightCount, filterCount: plan.points * plan.filterStride)
        defer { winogradFilters.checkIn(key, cached) }
        let filters = cached.filters, reuse = cached.holds(w)
        withoutActuallyEscaping(fill) { fill in
            pack { chunk, chunks in
                if !reuse { fill(filters, chunk, chunks) }
            }
        }
        if !reuse { cached.record(w) }
        return body(filters)
    }

    /// The output transform of every (row, tile) of `plan`: `store(row, i, j, n0, value)` for
    /// each position (i, j) = (4 th + i', 4 tw + j') of the 4x4 tile (th, tw) = (tile / tilesWide,
    /// tile % tilesWide), 16 lanes at `n0`; the caller drops positions outside its map.
    func forEachOutputTile<T: WinogradTransform>(_ transform: T.Type, _ plan: WinogradPlan, products: UnsafePointer<Float>,
                                                 tilesWide: Int,
                                                 store: (_ row: Int, _ i: Int, _ j: Int, _ n0: Int, _ value: Vec) -> Void) {
        forEachItemRange(count: plan.rows * plan.tiles, costPerItem: T.points * plan.lanes * 2) { items in
            withUnsafeTemporaryAllocation(of: Vec.self, capacity: T.points) { buffer in
                let t = buffer.baseAddress!
                for item in items {
                    let row = item / plan.tiles, tile = item % plan.tiles
                    let (th, tw) = (tile / tilesWide, tile % tilesWide)
                    for n0 in stride(from: 0, to: plan.lanes, by: 16) {
                        let source = products + row * plan.paddedColumns + tile * plan.lanes + n0
                        T.transformOutputTile(source, stride: plan.productStride, scratch: t) { i, j, value in
                            store(row, 4 * th + i, 4 * tw + j, n0, value)
                        }
                    }
                }
            }
        }
    }

    /// Where the 5x5 input tile (th, tw) of stride phase (p, q) lies in X' (forward-input layout):
    /// padded row 2 (4 th + s) + p, column 2 (4 tw + v) + q; past the padding, zero.
    private static func forwardInputTile(_ input: BatchInnerLayout, _ th: Int, _ tw: Int, _ p: Int, _ q: Int) -> WinogradF42.TileOffsets {
        WinogradF42.TileOffsets(rows: { s in
            let row = 2 * (4 * th + s) + p
            return row < input.paddedHeight ? row * input.rowStride : -1
        }, columns: { v in
            let column = 2 * (4 * tw + v) + q
            return column < input.paddedWidth ? column * input.lanes : -1
        })
    }

    /// Forward: rows Cout, depth (ci, p, q), tiles of the output; X' in the forward-input layout.
    func winogradForward(_ g: ConvGeometry, x: UnsafePointer<Float>, w: UnsafePointer<Float>,
                         bias: UnsafePointer<Float>?, y: UnsafeMutablePointer<Float>) {
        let input = BatchInnerLayout.forwardInput(g)
        let output = BatchInnerLayout.output(g)
        let tilesHigh = (g.outHeight + 3) / 4, tilesWide = (g.outWidth + 3) / 4
        let plan = WinogradPlan(rows: g.outChannels, depth: 4 * g.inChannels, tiles: tilesHigh * tilesWide, lanes: input.lanes)
        let pool = ScratchPool.shared
        let xs = pool.take(input.count), ys = pool.take(output.count)
        let inputs = pool.take(WinogradF42.points * plan.inputStride)
        let products = pool.take(WinogradF42.points * plan.productStride)
        defer { pool.give(xs); pool.give(ys); pool.give(inputs); pool.give(products) }
        let kernelArea = 16
        withWinogradFilters(.forward, g, weights: w, plan: plan, pack: { input.pack(x, into: xs, parallel: parallel, alongside: $0) },
                            taps: { row, k in
            // U_e[co][(ci, p, q)] from the taps (2a + p, 2b + q).
            let ci = k / 4, (p, q) = ((k % 4) / 2, k % 2)
            let taps = w + (row * g.inChannels + ci) * kernelArea
            return (taps[p * 4 + q], taps[p * 4 + 2 + q], taps[(2 + p) * 4 + q], taps[(2 + p) * 4 + 2 + q])
        }) { filters in
            // V: the 5x5 input tiles of every (ci, phase, tile), 16 images at a time; an item is
            // one tile's 16 lanes for a range of k, so that each point's plane is written front to back.
            let xsConst = UnsafePointer(xs)
            plan.forEachInputTile(WinogradF42.self, self, inputs) { k, tile, n0 in
                let ci = k / 4, (p, q) = ((k % 4) / 2, k % 2)
                return (xsConst + ci * input.channelStride + n0, Self.forwardInputTile(input, tile / tilesWide, tile % tilesWide, p, q))
            }
            plan.multiply(filters: filters, inputs: inputs, products: products, parallel: parallel)
        }
        // Y: each (co, tile)'s 4x4 outputs inside the map.
        forEachOutputTile(WinogradF42.self, plan, products: products, tilesWide: tilesWide) { co, oh, ow, n0, value in
            if oh < g.outHeight && ow < g.outWidth { value.store(ys + output.offset(co, oh, ow) + n0) }
        }
        output.unpack(ys, into: y, bias: bias, accumulate: false, parallel: parallel)
    }

    /// Backward-data: rows (phase (a, b), ci) of the input gradient, depth Cout, tiles over the
    /// phase grid i' (input row ih = 2 i' + a - pad), each reading dY rows i' - 1 ... i' + 3.
    func winogradBackwardData(_ g: ConvGeometry, dy: UnsafePointer<Float>, w: UnsafePointer<Float>,
                              bias: UnsafePointer<Float>?, dx: UnsafeMutablePointer<Float>, accumulate: Bool) {
        let gradient = BatchInnerLayout.output(g)
        let result = BatchInnerLayout.input(g)
        let gridHigh = (g.inHeight - 1 + g.padHeight) / 2 + 1, gridWide = (g.inWidth - 1 + g.padWidth) / 2 + 1
        let tilesHigh = (gridHigh + 3) / 4, tilesWide = (gridWide + 3) / 4
        let plan = WinogradPlan(rows: 4 * g.inChannels, depth: g.outChannels, tiles: tilesHigh * tilesWide, lanes: result.lanes)
        let pool = ScratchPool.shared
        let dys = pool.take(gradient.count), dxs = pool.take(result.count)
        let inputs = pool.take(WinogradF42.points * plan.inputStride)
        let products = pool.take(WinogradF42.points * plan.productStride)
        defer { pool.give(dys); pool.give(dxs); pool.give(inputs); pool.give(products) }
        let kernelArea = 16
        withWinogradFilters(.backwardData, g, weights: w, plan: plan, pack: { gradient.pack(dy, into: dys, parallel: parallel, alongside: $0) },
                            taps: { row, co in
            // U_e[(phase, ci)][co]: taps (a + 2(1 - t), b + 2(1 - u)) as a correlation over t, u.
            let phase = row / g.inChannels, ci = row % g.inChannels
            let (a, b) = (phase / 2, phase % 2)
            let taps = w + (co * g.inChannels + ci) * kernelArea
            return (taps[(a + 2) * 4 + b + 2], taps[(a + 2) * 4 + b], taps[a * 4 + b + 2], taps[a * 4 + b])
        }) { filters in
            let dysConst = UnsafePointer(dys)
            plan.forEachInputTile(WinogradF42.self, self, inputs) { co, tile, n0 in
                let (th, tw) = (tile / tilesWide, tile % tilesWide)
                return (dysConst + co * gradient.channelStride + n0, WinogradF42.TileOffsets(rows: { s in
                    let row = 4 * th - 1 + s
                    return row >= 0 && row < g.outHeight ? row * gradient.rowStride : -1
                }, columns: { v in
                    let column = 4 * tw - 1 + v
                    return column >= 0 && column < g.outWidth ? column * gradient.lanes : -1
                }))
            }
            plan.multiply(filters: filters, inputs: inputs, products: products, parallel: parallel)
        }
        // dX: grid position (i', j') of phase (a, b) is input (2 i' + a - pad, 2 j' + b - pad).
        forEachOutputTile(WinogradF42.self, plan, products: products, tilesWide: tilesWide) { row, gi, gj, n0, value in
            let phase = row / g.inChannels, ci = row % g.inChannels
            let ih = 2 * gi + phase / 2 - g.padHeight, iw = 2 * gj + phase % 2 - g.padWidth
            if ih >= 0 && ih < g.inHeight && iw >= 0 && iw < g.inWidth {
                value.store(dxs + result.offset(ci, ih, iw) + n0)
            }
        }
        result.unpack(dxs, into: dx, bias: bias, accumulate: accumulate, parallel: parallel)
    }

    /// Backward-weights: dU_e[co][(ci, p, q)] = sum over tiles and images of dM_e V_e, where
    /// dM = A dY A^T is the output gradient's tile transform (the adjoint of the output
    /// transform) and V the forward's input tiles; then dW = G^T dU G per tap phase. The
    /// GEMMs run with depth tiles x lanes, dM as the A operand (MR rows of Cout, packed
    /// lane by lane) and V as the B operand (NR columns of (ci, p, q), transposed from the
    /// 16-image vectors by 8 x 8 tiles).
    func winogradBackwardWeights(_ g: ConvGeometry, x: UnsafePointer<Float>, dy: UnsafePointer<Float>,
                                 dw: UnsafeMutablePointer<Float>) {
        let input = BatchInnerLayout.forwardInput(g)
        winogradBackwardWeights(WinogradF42.self, g, x: x, dy: dy, dw: dw, columns: 4 * g.inChannels,
                                inputTile: { k, th, tw in
            let ci = k / 4, (p, q) = ((k % 4) / 2, k % 2)
            return (ci * input.channelStride, Self.forwardInputTile(input, th, tw, p, q))
        }, tapIndex: { k, a, b in
            // Column (ci, p, q), tap (a, b) of the phase filter: tap (2a + p, 2b + q) of the 4x4 one.
            let ci = k / 4, (p, q) = ((k % 4) / 2, k % 2)
            return ci * 16 + (2 * a + p) * 4 + 2 * b + q
        })
    }

    /// Backward-weights of either transform: dU_e[co][k] = sum over tiles and images of
    /// dM_e V_e, then dW = G^T dU G. Rows Cout, `columns` columns k whose input tile (th, tw)
    /// `inputTile` locates in X' (forward-input layout: channel offset and tile offsets);
    /// `tapIndex(k, a, b)` is where tap (a, b) of column k's filter goes in row co of dW (from
    /// co Cin kh kw).
    func winogradBackwardWeights<T: WinogradTransform>(_ transform: T.Type, _ g: ConvGeometry, x: UnsafePointer<Float>,
                                                       dy: UnsafePointer<Float>, dw: UnsafeMutablePointer<Float>,
                                                       columns: Int, inputTile: (_ k: Int, _ th: Int, _ tw: Int) -> (Int, T.TileOffsets),
                                                       tapIndex: (_ k: Int, _ a: Int, _ b: Int) -> Int) {
        let points = T.points, side = T.tileSide, filterSide = T.filterSide
        let input = BatchInnerLayout.forwardInput(g)
        let gradient = BatchInnerLayout.output(g)
        let tilesHigh = (g.outHeight + 3) / 4, tilesWide = (g.outWidth + 3) / 4, tiles = tilesHigh * tilesWide
        let lanes = input.lanes, blocks = lanes / 16, depth = tiles * lanes
        let (mr, nr) = (PackedGEMM.mr, PackedGEMM.nr)
        let rows = g.outChannels, paddedRows = (rows + mr - 1) / mr * mr
        let paddedColumns = (columns + nr - 1) / nr * nr
        let aStride = WinogradPlanes.stride(paddedRows * depth), bStride = WinogradPlanes.stride(depth * paddedColumns)
        let cStride = WinogradPlanes.stride(paddedRows * paddedColumns)
        let pool = ScratchPool.shared
        let xs = pool.take(input.count), dys = pool.take(gradient.count)
        let gradients = pool.take(points * aStride), inputs = pool.take(points * bStride)
        let products = pool.take(points * cStride)
        defer { pool.give(xs); pool.give(dys); pool.give(gradients); pool.give(inputs); pool.give(products) }
        input.pack(x, into: xs, parallel: parallel) { chunk, chunks in
            gradient.pack(dy, into: dys, channels: CPUParallel.range(chunk, of: chunks, count: gradient.channels))
        }
        let xsConst = UnsafePointer(xs), dysConst = UnsafePointer(dys)
        // Per (panel, tile, 16 lanes): `stage(index, th, tw, n0, t, slots)` transforms the tile of
        // row (or column) `index` and writes point e's 16 lanes to slots[e * width]; indices past
        // `count` (the last panel's padding) stage zeros. The staged tiles are then transposed lane by
        // lane into each point's panel (depth-major, `width` side by side).
        func stagePanels(width: Int, count: Int, into target: UnsafeMutablePointer<Float>, stride: Int,
                         stage: (_ index: Int, _ th: Int, _ tw: Int, _ n0: Int, _ t: UnsafeMutablePointer<Vec>,
                                 _ slots: UnsafeMutablePointer<Vec>) -> Void) {
            let panels = (count + width - 1) / width
            forEachItemRange(count: panels * tiles * blocks, costPerItem: 2 * (points + 10) * width * 16) { items in
                withUnsafeTemporaryAllocation(of: Vec.self, capacity: points + points * width) { buffer in
                    let t = buffer.baseAddress!, staged = t + points
                    let stagedFloats = UnsafeMutableRawPointer(staged).assumingMemoryBound(to: Float.self)
                    for item in items {
                        let panel = item / (tiles * blocks), tile = (item / blocks) % tiles, n0 = (item % blocks) * 16
                        for r in 0..<width {
                            let index = panel * width + r
                            if index < count {
                                stage(index, tile / tilesWide, tile % tilesWide, n0, t, staged + r)
                            } else {
                                for e in 0..<points { staged[e * width + r] = Vec() }
                            }
                        }
                        for e in 0..<points {
                            WinogradF42.transposeLanes(stagedFloats + e * width * 16, rows: width,
                                                       into: target + e * stride + (panel * depth + tile * lanes + n0) * width)
                        }
                    }
                }
            }
        }
        // dM = A dY A^T: the A operand, MR rows of Cout.
        stagePanels(width: mr, count: rows, into: gradients, stride: aStride) { co, th, tw, n0, t, slots in
            for i in 0..<4 {
                let oh = 4 * th + i
                for j in 0..<4 {
                    let ow = 4 * tw + j
                    t[i * side + j] = oh < g.outHeight && ow < g.outWidth ? Vec.load(dysConst + gradient.offset(co, oh, ow) + n0) : Vec()
                }
            }
            for j in 0..<4 { T.transformOutputGradient(t + j, stride: side) }
            for x in 0..<side { T.transformOutputGradient(t + side * x, stride: 1) }
            for e in 0..<points { slots[e * mr] = t[e] }
        }
        // V = B^T d B of the forward's input tiles: the B operand, NR columns.
        stagePanels(width: nr, count: columns, into: inputs, stride: bStride) { k, th, tw, n0, t, slots in
            let (offset, offsets) = inputTile(k, th, tw)
            T.transformInputTile(xsConst + offset + n0, offsets, scratch: t) { e, value in slots[e * nr] = value }
        }
        WinogradF42.multiply(points: points, rowPanels: paddedRows / mr, columnPanels: paddedColumns / nr, depth: depth,
                             a: gradients, aStride: aStride, b: inputs, bStride: bStride, c: products, cStride: cStride,
                             ldc: paddedColumns, parallel: parallel)
        // dW = G^T dU G for 16 columns at a time, each tap to where `tapIndex` says (looked up
        // once per call: a closure call per element was half of this loop's time).
        let productsConst = UnsafePointer(products)
        let taps = filterSide * filterSide
        let rowOffset = g.inChannels * g.kernelHeight * g.kernelWidth
        withUnsafeTemporaryAllocation(of: Int32.self, capacity: columns * taps) { table in
            let tapOffsets = table.baseAddress!
            for k in 0..<columns {
                for a in 0..<filterSide {
                    for b in 0..<filterSide { tapOffsets[k * taps + a * filterSide + b] = Int32(truncatingIfNeeded: tapIndex(k, a, b)) }
                }
            }
            forEachItemRange(count: rows, costPerItem: points * columns) { items in
                withUnsafeTemporaryAllocation(of: Vec.self, capacity: points + taps) { buffer in
                    let u = buffer.baseAddress!, result = u + points
                    let resultFloats = UnsafeMutableRawPointer(result).assumingMemoryBound(to: Float.self)
                    for co in items {
                        var k0 = 0
                        while k0 < columns {
                            let count = Swift.min(16, columns - k0)
                            let source = productsConst + co * paddedColumns + k0
                            for e in 0..<points { u[e] = Vec.load(source + e * cStride, count) }
                            T.transformFilterGradientTile(u, into: result)
                            let row = dw + co * rowOffset
                            for lane in 0..<count {
                                let offsets = tapOffsets + (k0 + lane) * taps
                                for ab in 0..<taps {
                                    let index = Int(offsets[ab]), value = resultFloats[ab * 16 + lane]
                                    row[index] = value
                                }
                            }
                            k0 += 16
                        }
                    }
                }
            }
        }
    }
}
