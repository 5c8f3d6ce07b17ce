import Foundation
import LatentCore

/// Winograd F(4x4, 3x3) for 3x3 stride-1 convolutions (the conv VAE's 128 -> 128 encoder
/// layer, the classifier's and the VQ-VAE's 3x3 layers), all three passes, in the
/// batch-inner layout and through the same point GEMMs as `WinogradF42`.
///
/// A 4x4 output tile comes from a 6x6 input tile with 36 multiplies per channel pair
/// instead of 144; on a 7x7 map (two tiles a side) 144 instead of 441, a third of the direct
/// convolution's multiply-adds. Backward-data of a stride-1 convolution is a correlation of
/// the output gradient with the flipped filters (padding 2 - pad), so it runs the same
/// transforms with rows and depth swapped; the weight gradient is the adjoint of the forward
/// one, dg = G^T [sum over tiles (A dY A^T) . (B^T d B)] G.
///
/// Points 0, 1, -1, 2, -2 and infinity (Lavin and Gray's F(4, 3)); correlation form,
/// y[i][j] = sum g[a][b] d[i + a][j + b]. Random 6x6 tiles in float32: 1.8e-6 of the result's
/// largest magnitude, checked against float64 direct sums.
///
///     B^T = [4 0 -5 0 1 0; 0 -4 -4 1 1 0; 0 4 -4 -1 1 0; 0 -2 -1 2 1 0; 0 2 -1 -2 1 0; 0 4 0 -5 0 1]
///     G   = [1/4 0 0; -1/6 -1/6 -1/6; -1/6 1/6 -1/6; 1/24 1/12 1/6; 1/24 -1/12 1/6; 0 0 1]
///     A^T = [1 1 1 1 1 0; 0 1 -1 2 -2 0; 0 1 1 4 4 0; 0 1 -1 8 -8 1]
enum WinogradF43: WinogradTransform {
    static let points = 36
    static let tileSide = 6
    static let filterSide = 3

    /// B^T d along six values.
    @inline(__always)
    static func inputTransform(_ d0: Vec, _ d1: Vec, _ d2: Vec, _ d3: Vec, _ d4: Vec, _ d5: Vec)
        -> (Vec, Vec, Vec, Vec, Vec, Vec) {
        let four = Vec(repeating: 4), minusFour = Vec(repeating: -4), minusFive = Vec(repeating: -5), two = Vec(repeating: 2)
        let a = d4.addingProduct(minusFour, d2), b = d3.addingProduct(minusFour, d1)
        let c = d4 - d2, e = two * (d3 - d1)
        return (d4.addingProduct(minusFive, d2).addingProduct(four, d0), a + b, a - b, c + e, c - e,
                d5.addingProduct(minusFive, d3).addingProduct(four, d1))
    }

    /// A^T m along six values (-> 4).
    @inline(__always)
    static func outputTransform(_ m0: Vec, _ m1: Vec, _ m2: Vec, _ m3: Vec, _ m4: Vec, _ m5: Vec) -> (Vec, Vec, Vec, Vec) {
        let s12 = m1 + m2, d12 = m1 - m2, s34 = m3 + m4, d34 = m3 - m4
        return (m0 + s12 + s34, d12.addingProduct(Vec(repeating: 2), d34), s12.addingProduct(Vec(repeating: 4), s34),
                d12.addingProduct(Vec(repeating: 8), d34) + m5)
    }

    /// G g along three values (-> 6).
    @inline(__always)
    static func filterTransform(_ g0: Vec, _ g1: Vec, _ g2: Vec) -> (Vec, Vec, Vec, Vec, Vec, Vec) {
        let sixth = Vec(repeating: 1 / 6 as Float)
        let outer = g0 + g2, a = (Vec(repeating: 1 / 24 as Float) * g0).addingProduct(sixth, g2)
        let b = Vec(repeating: 1 / 12 as Float) * g1
        return (Vec(repeating: 0.25) * g0, -sixth * (outer + g1), sixth * (g1 - outer), a + b, a - b, g2)
    }

    /// A along four values (-> 6), in place along a stride: the adjoint of the output
    /// transform, for the output gradient of a tile (dM = A dY A^T).
    @inline(__always)
    static func transformOutputGradient(_ t: UnsafeMutablePointer<Vec>, stride s: Int) {
        let y0 = t[0], y1 = t[s], y2 = t[2 * s], y3 = t[3 * s]
        let even = y0 + y2, odd = y1 + y3
        let evenWide = y0.addingProduct(Vec(repeating: 4), y2), oddWide = (Vec(repeating: 2) * y1).addingProduct(Vec(repeating: 8), y3)
        t[s] = even + odd
        t[2 * s] = even - odd
        t[3 * s] = evenWide + oddWide
        t[4 * s] = evenWide - oddWide
        t[5 * s] = y3
    }

    /// G^T along six values (-> 3): the adjoint of the filter transform, for dg = G^T dU G.
    @inline(__always)
    static func transformFilterGradient(_ u0: Vec, _ u1: Vec, _ u2: Vec, _ u3: Vec, _ u4: Vec, _ u5: Vec) -> (Vec, Vec, Vec) {
        let sixth = Vec(repeating: 1 / 6 as Float), twelfth = Vec(repeating: 1 / 12 as Float)
        let s12 = u1 + u2, s34 = u3 + u4
        return ((Vec(repeating: 0.25) * u0 - sixth * s12).addingProduct(Vec(repeating: 1 / 24 as Float), s34),
                (sixth * (u2 - u1)).addingProduct(twelfth, u3 - u4),
                (sixth * (s34 - s12)) + u5)
    }

    /// G^T dU G: along x (the row taps a) for each y, then along y (the column taps b).
    @inline(__always)
    static func transformFilterGradientTile(_ u: UnsafePointer<Vec>, into taps: UnsafeMutablePointer<Vec>) {
        let y0 = transformFilterGradient(u[0], u[6], u[12], u[18], u[24], u[30])
        let y1 = transformFilterGradient(u[1], u[7], u[13], u[19], u[25], u[31])
        let y2 = transformFilterGradient(u[2], u[8], u[14], u[20], u[26], u[32])
        let y3 = transformFilterGradient(u[3], u[9], u[15], u[21], u[27], u[33])
        let y4 = transformFilterGradient(u[4], u[10], u[16], u[22], u[28], u[34])
        let y5 = transformFilterGradient(u[5], u[11], u[17], u[23], u[29], u[35])
        let r0 = transformFilterGradient(y0.0, y1.0, y2.0, y3.0, y4.0, y5.0)
        let r1 = transformFilterGradient(y0.1, y1.1, y2.1, y3.1, y4.1, y5.1)
        let r2 = transformFilterGradient(y0.2, y1.2, y2.2, y3.2, y4.2, y5.2)
        taps[0] = r0.0; taps[1] = r0.1; taps[2] = r0.2
        taps[3] = r1.0; taps[4] = r1.1; taps[5] = r1.2
        taps[6] = r2.0; taps[7] = r2.1; taps[8] = r2.2
    }

    /// The offsets of a 6x6 input tile: element (s, v) at `rows[s] + columns[v]` from a base,
    /// -1 where a row or column lies outside the data (zero there).
    struct TileOffsets {
        var rows: (Int, Int, Int, Int, Int, Int)
        var columns: (Int, Int, Int, Int, Int, Int)

        @inline(__always)
        init(rows: (Int) -> Int, columns: (Int) -> Int) {
            self.rows = (rows(0), rows(1), rows(2), rows(3), rows(4), rows(5))
            self.columns = (columns(0), columns(1), columns(2), columns(3), columns(4), columns(5))
        }
    }

    /// B^T d B of the tile at `base` + `offsets`, each point's 16 lanes handed to
    /// `store(e, value)` (point e = 6x + y): columns transformed straight from the loads into
    /// `scratch` (36 vectors), rows from there.
    @inline(__always)
    static func transformInputTile(_ base: UnsafePointer<Float>, _ offsets: TileOffsets, scratch t: UnsafeMutablePointer<Vec>,
                                   store: (_ point: Int, _ value: Vec) -> Void) {
        let r = offsets.rows, c = offsets.columns
        @inline(__always) func column(_ v: Int, _ offset: Int) {
            guard offset >= 0 else {
                for x in 0..<6 { t[6 * x + v] = Vec() }
                return
            }
            @inline(__always) func load(_ row: Int) -> Vec { row >= 0 ? Vec.load(base + row + offset) : Vec() }
            let b = inputTransform(load(r.0), load(r.1), load(r.2), load(r.3), load(r.4), load(r.5))
            t[v] = b.0; t[6 + v] = b.1; t[12 + v] = b.2; t[18 + v] = b.3; t[24 + v] = b.4; t[30 + v] = b.5
        }
        column(0, c.0); column(1, c.1); column(2, c.2); column(3, c.3); column(4, c.4); column(5, c.5)
        for x in 0..<6 {
            let row = t + 6 * x
            let b = inputTransform(row[0], row[1], row[2], row[3], row[4], row[5])
            store(6 * x, b.0); store(6 * x + 1, b.1); store(6 * x + 2, b.2)
            store(6 * x + 3, b.3); store(6 * x + 4, b.4); store(6 * x + 5, b.5)
        }
    }

    /// A^T M A of the products at `source + e * stride`, each of the 4x4 outputs handed to
    /// `store(i, j, value)`: columns transformed straight from the loads into `scratch`
    /// (24 vectors), rows from there.
    @inline(__always)
    static func transformOutputTile(_ source: UnsafePointer<Float>, stride: Int, scratch t: UnsafeMutablePointer<Vec>,
                                    store: (_ i: Int, _ j: Int, _ value: Vec) -> Void) {
        for y in 0..<6 {
            @inline(__always) func load(_ x: Int) -> Vec { Vec.load(source + (6 * x + y) * stride) }
            let a = outputTransform(load(0), load(1), load(2), load(3), load(4), load(5))
            t[y] = a.0; t[6 + y] = a.1; t[12 + y] = a.2; t[18 + y] = a.3
        }
        for i in 0..<4 {
            let row = t + 6 * i
            let a = outputTransform(row[0], row[1], row[2], row[3], row[4], row[5])
            store(i, 0, a.0); store(i, 1, a.1); store(i, 2, a.2); store(i, 3, a.3)
        }
    }

    /// G g G^T of 16 3x3 filters (tap (a, b) in `g[3a + b]`, one filter per lane) into the
    /// 36 points' rows `u + e * stride`.
    @inline(__always)
    static func transformFilters(_ g: UnsafePointer<Vec>, into u: UnsafeMutablePointer<Float>, stride: Int, lanes: Int) {
        // Along a for each column b, then along b.
        let c0 = filterTransform(g[0], g[3], g[6]), c1 = filterTransform(g[1], g[4], g[7]), c2 = filterTransform(g[2], g[5], g[8])
        @inline(__always) func row(_ x: Int, _ a: Vec, _ b: Vec, _ c: Vec) {
            let r = filterTransform(a, b, c), base = u + 6 * x * stride
            r.0.store(base, lanes); r.1.store(base + stride, lanes); r.2.store(base + 2 * stride, lanes)
            r.3.store(base + 3 * stride, lanes); r.4.store(base + 4 * stride, lanes); r.5.store(base + 5 * stride, lanes)
        }
        row(0, c0.0, c1.0, c2.0); row(1, c0.1, c1.1, c2.1); row(2, c0.2, c1.2, c2.2)
        row(3, c0.3, c1.3, c2.3); row(4, c0.4, c1.4, c2.4); row(5, c0.5, c1.5, c2.5)
    }
}

extension WinogradPlan {
    /// Fills U (36 points) for this thread's share of the row panels: `tap(row, k, a, b)` is
    /// tap (a, b) of the 3x3 filter of U_e[row][k]; rows past `rows` are zero.
    func fillFilters3x3(_ filters: UnsafeMutablePointer<Float>, chunk: Int, of chunks: Int,
                        tap: (_ row: Int, _ k: Int, _ a: Int, _ b: Int) -> Float) {
        let mr = PackedGEMM.mr, block = 16 * mr
        withUnsafeTemporaryAllocation(of: Float.self, capacity: 9 * block) { buffer in
            let gathered = buffer.baseAddress!
            withUnsafeTemporaryAllocation(of: Vec.self, capacity: 9) { vectors in
                let g = vectors.baseAddress!
                for panel in CPUParallel.range(chunk, of: chunks, count: paddedRows / mr) {
                    var k0 = 0
                    while k0 < depth {
                        let count = Swift.min(16, depth - k0) * mr
                        for i in 0..<count {
                            let row = panel * mr + i % mr, k = k0 + i / mr
                            for ab in 0..<9 { gathered[ab * block + i] = row < rows ? tap(row, k, ab / 3, ab % 3) : 0 }
                        }
                        let destination = filters + (panel * depth + k0) * mr
                        var i = 0
                        while i < count {
                            let lanes = Swift.min(16, count - i)
                            for ab in 0..<9 { g[ab] = Vec.load(gathered + ab * block + i, lanes) }
                            WinogradF43.transformFilters(g, into: destination + i, stride: filterStride, lanes: lanes)
                            i += 16
                        }
                        k0 += 16
                    }
                }
            }
        }
    }
}

extension CPUBackend {
    /// Whether a pass runs as Winograd F(4x4, 3x3): a 3x3 kernel with stride 1 on the
    /// batch-inner path, with at least 16 channels on each side (fewer leave GEMMs too thin
    /// to pay for the transforms).
    func usesWinograd3x3(_ g: ConvGeometry, _ pass: ConvPass) -> Bool {
        guard g.kernelHeight == 3, g.kernelWidth == 3, g.strideHeight == 1, g.strideWidth == 1,
              usesBatchInner(g, pass) else { return false }
        switch convolutionPath {
        case .winograd: return true
        case .automatic: return g.inChannels >= 16 && g.outChannels >= 16
        case .im2col, .batchInner: return false
        }
    }

    /// Where the 6x6 input tile (th, tw) lies in X' (forward-input layout): padded rows
    /// 4 th + s, columns 4 tw + v; past the layout, zero (only outputs past the map read there).
    private static func forwardInputTile3x3(_ input: BatchInnerLayout, _ th: Int, _ tw: Int) -> WinogradF43.TileOffsets {
        WinogradF43.TileOffsets(rows: { s in
            let row = 4 * th + s
            return row < input.paddedHeight ? row * input.rowStride : -1
        }, columns: { v in
            let column = 4 * tw + v
            return column < input.paddedWidth ? column * input.lanes : -1
        })
    }

    /// Forward: rows Cout, depth Cin, tiles of the output; X' in the forward-input layout.
    func winograd3x3Forward(_ g: ConvGeometry, x: UnsafePointer<Float>, w: UnsafePointer<Float>,
                            bias: UnsafePointer<Float>?, y: UnsafeMutablePointer<Float>) {
        let input = BatchInnerLayout.forwardInput(g)
        let output = BatchInnerLayout.output(g)
        let tilesHigh = (g.outHeight + 3) / 4, tilesWide = (g.outWidth + 3) / 4
        let plan = WinogradPlan(rows: g.outChannels, depth: g.inChannels, tiles: tilesHigh * tilesWide, lanes: input.lanes,
                                points: WinogradF43.points)
        let pool = ScratchPool.shared
        let xs = pool.take(input.count), ys = pool.take(output.count)
        let inputs = pool.take(plan.points * plan.inputStride)
        let products = pool.take(plan.points * plan.productStride)
        defer { pool.give(xs); pool.give(ys); pool.give(inputs); pool.give(products) }
        withWinogradFilters(.forward, g, weights: w, plan: plan, pack: { input.pack(x, into: xs, parallel: parallel, alongside: $0) },
                            fill: { filters, chunk, chunks in
            plan.fillFilters3x3(filters, chunk: chunk, of: chunks) { co, ci, a, b in w[((co * g.inChannels + ci) * 3 + a) * 3 + b] }
        }) { filters in
            let xsConst = UnsafePointer(xs)
            plan.forEachInputTile(WinogradF43.self, self, inputs) { ci, tile, n0 in
                (xsConst + ci * input.channelStride + n0, Self.forwardInputTile3x3(input, tile / tilesWide, tile % tilesWide))
            }
            plan.multiply(filters: filters, inputs: inputs, products: products, parallel: parallel)
        }
        forEachOutputTile(WinogradF43.self, plan, products: products, tilesWide: tilesWide) { co, oh, ow, n0, value in
            if oh < g.outHeight && ow < g.outWidth { value.store(ys + output.offset(co, oh, ow) + n0) }
        }
        output.unpack(ys, into: y, bias: bias, accumulate: false, parallel: parallel)
    }

    /// Backward-data: dX[ci][ih][iw] = sum over co, a', b' of dY[co][ih + pad - 2 + a'][...]
    /// W[co][ci][2 - a'][2 - b']: rows Cin, depth Cout, tiles over the input map.
    func winograd3x3BackwardData(_ g: ConvGeometry, dy: UnsafePointer<Float>, w: UnsafePointer<Float>,
                                 bias: UnsafePointer<Float>?, dx: UnsafeMutablePointer<Float>, accumulate: Bool) {
        let gradient = BatchInnerLayout.output(g)
        let result = BatchInnerLayout.input(g)
        let tilesHigh = (g.inHeight + 3) / 4, tilesWide = (g.inWidth + 3) / 4
        let plan = WinogradPlan(rows: g.inChannels, depth: g.outChannels, tiles: tilesHigh * tilesWide, lanes: result.lanes,
                                points: WinogradF43.points)
        let pool = ScratchPool.shared
        let dys = pool.take(gradient.count), dxs = pool.take(result.count)
        let inputs = pool.take(plan.points * plan.inputStride)
        let products = pool.take(plan.points * plan.productStride)
        defer { pool.give(dys); pool.give(dxs); pool.give(inputs); pool.give(products) }
        let shiftHigh = g.padHeight - 2, shiftWide = g.padWidth - 2
        withWinogradFilters(.backwardData, g, weights: w, plan: plan,
                            pack: { gradient.pack(dy, into: dys, parallel: parallel, alongside: $0) },
                            fill: { filters, chunk, chunks in
            plan.fillFilters3x3(filters, chunk: chunk, of: chunks) { ci, co, a, b in
                w[((co * g.inChannels + ci) * 3 + 2 - a) * 3 + 2 - b]
            }
        }) { filters in
            let dysConst = UnsafePointer(dys)
            plan.forEachInputTile(WinogradF43.self, self, inputs) { co, tile, n0 in
                let (th, tw) = (tile / tilesWide, tile % tilesWide)
                return (dysConst + co * gradient.channelStride + n0, WinogradF43.TileOffsets(rows: { s in
                    let row = 4 * th + shiftHigh + s
                    return row >= 0 && row < g.outHeight ? row * gradient.rowStride : -1
                }, columns: { v in
                    let column = 4 * tw + shiftWide + v
                    return column >= 0 && column < g.outWidth ? column * gradient.lanes : -1
                }))
            }
            plan.multiply(filters: filters, inputs: inputs, products: products, parallel: parallel)
        }
        forEachOutputTile(WinogradF43.self, plan, products: products, tilesWide: tilesWide) { ci, ih, iw, n0, value in
            if ih < g.inHeight && iw < g.inWidth { value.store(dxs + result.offset(ci, ih, iw) + n0) }
        }
        result.unpack(dxs, into: dx, bias: bias, accumulate: accumulate, parallel: parallel)
    }

    /// Backward-weights: dU_e[co][ci] = sum over tiles and images of dM_e V_e (dM = A dY A^T,
    /// V the forward's input tiles), then dW = G^T dU G (`winogradBackwardWeights`'s loops).
    func winograd3x3BackwardWeights(_ g: ConvGeometry, x: UnsafePointer<Float>, dy: UnsafePointer<Float>,
                                    dw: UnsafeMutablePointer<Float>) {
        let input = BatchInnerLayout.forwardInput(g)
        winogradBackwardWeights(WinogradF43.self, g, x: x, dy: dy, dw: dw, columns: g.inChannels,
                                inputTile: { ci, th, tw in (ci * input.channelStride, Self.forwardInputTile3x3(input, th, tw)) },
                                tapIndex: { ci, a, b in ci * 9 + a * 3 + b })
    }
}
