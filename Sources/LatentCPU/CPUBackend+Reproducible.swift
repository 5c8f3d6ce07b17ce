import Foundation
import LatentCore

/// Reproducible arithmetic (`CPUBackend(reproducible: true)`, `latent … --reproducible`).
///
/// Why: float32 sums taken in different orders (SIMD lanes, Winograd tiles, work-groups)
/// differ in the last bits, and Adam, which divides every gradient by its own running RMS,
/// grows those bits into differences of 1e-3 within five steps (docs/OPENCL.md, "Parity after
/// several Adam steps"). Here every op that sums — GEMM, the three convolution passes, batch
/// norm's statistics and gradients, bias gradients, sums, losses, the KL term, codebook
/// distances — accumulates in Double in the order of the plain loop written beside each
/// function and rounds to Float once; so do the loss gradient and axpby, whose fast versions
/// round differently on the two backends. A product of two floats is exact in Double, so that
/// order fixes every bit, and `Kernels/reproducible.cl` sums in the same order: the CPU and
/// OpenCL backends, on any number of threads, give the same floats. The other elementwise
/// ops, the optimizers and random numbers are bit-identical across the backends already and
/// run as in the fast mode. Threads split the outputs, never one output's sum.
extension CPUBackend {
    // C (m x n) = alpha * sum_k A(i, k) * B(k, j) + beta * C, k ascending. Lane sums: the
    // columns of C are the lanes (B as k rows of n Doubles), the rows of C the outputs.
    func reproducibleGemm(transA: Transpose, transB: Transpose, m: Int, n: Int, k: Int, alpha: Float,
                          a: UnsafePointer<Float>, lda: Int, b: UnsafePointer<Float>, ldb: Int,
                          beta: Float, c: UnsafeMutablePointer<Float>, ldc: Int) {
        guard m > 0, n > 0 else { return }
        let lanes = Self.roundedLanes(n)
        let rows = UnsafeMutablePointer<Double>.allocate(capacity: Swift.max(1, k * lanes))
        let aD = UnsafeMutablePointer<Double>.allocate(capacity: Swift.max(1, m * k))
        defer {
            rows.deallocate()
            aD.deallocate()
        }
        rows.initialize(repeating: 0, count: k * lanes)
        for kk in 0..<k {
            for j in 0..<n { rows[kk * lanes + j] = Double(transB == .none ? b[kk * ldb + j] : b[j * ldb + kk]) }
        }
        for i in 0..<m {
            for kk in 0..<k { aD[i * k + kk] = Double(transA == .none ? a[i * lda + kk] : a[kk * lda + i]) }
        }
        let alphaD = Double(alpha), betaD = Double(beta)
        forEachItemRange(count: m, costPerItem: n * Swift.max(1, k)) { rowRange in
            let scratch = LaneScratch(taps: k, lanes: lanes)
            defer { scratch.deallocate() }
            var taps = 0
            for kk in 0..<k { scratch.add(&taps, index: kk, offset: kk * lanes) }
            scratch.forEachOutput(count: rowRange.count, taps: taps, scales: aD + rowRange.lowerBound * k, scaleStride: k,
                                  rows: rows) { row, sums in
                let out = c + (rowRange.lowerBound + row) * ldc
                for j in 0..<n {
                    out[j] = Float(beta == 0 ? alphaD * sums[j] : alphaD * sums[j] + betaD * Double(out[j]))
                }
            }
        }
    }

    // y[n, co, oh, ow] = sum over ci, kh, kw (in that order, padding skipped) of x * w, then + bias[co].
    // The images of the batch are the lanes (x as (ci, ih, iw) rows of N Doubles); an output
    // position's taps are listed once for every co.
    func reproducibleConvForward(_ g: ConvGeometry, x: UnsafePointer<Float>, w: UnsafePointer<Float>,
                                 bias: UnsafePointer<Float>?, y: UnsafeMutablePointer<Float>) {
        let depth = g.inChannels * g.kernelHeight * g.kernelWidth, lanes = Self.roundedLanes(g.batch)
        let plane = g.inHeight * g.inWidth, outPlane = g.outHeight * g.outWidth
        let rows = Self.lanesLast(x, items: g.batch, length: g.inChannels * plane, lanes: lanes)
        let weights = Self.widened(w, count: g.outChannels * depth)
        defer {
            rows.deallocate()
            weights.deallocate()
        }
        forEachItemRange(count: outPlane, costPerItem: g.outChannels * depth * lanes) { positions in
            let scratch = LaneScratch(taps: depth, lanes: lanes)
            defer { scratch.deallocate() }
            for position in positions {
                let oh = position / g.outWidth, ow = position % g.outWidth
                var taps = 0
                for ci in 0..<g.inChannels {
                    for kh in 0..<g.kernelHeight {
                        let ih = oh * g.strideHeight - g.padHeight + kh
                        guard ih >= 0, ih < g.inHeight else { continue }
                        for kw in 0..<g.kernelWidth {
                            let iw = ow * g.strideWidth - g.padWidth + kw
                            guard iw >= 0, iw < g.inWidth else { continue }
                            scratch.add(&taps, index: (ci * g.kernelHeight + kh) * g.kernelWidth + kw,
                                        offset: (ci * plane + ih * g.inWidth + iw) * lanes)
                        }
                    }
                }
                scratch.forEachOutput(count: g.outChannels, taps: taps, scales: weights, scaleStride: depth, rows: rows) { co, sums in
                    let shift = bias.map { Double($0[co]) }
                    for n in 0..<g.batch {
                        y[(n * g.outChannels + co) * outPlane + position] = Float(shift.map { sums[n] + $0 } ?? sums[n])
                    }
                }
            }
        }
    }

    // dx[n, ci, ih, iw] = sum over co, kh, kw (in that order; the one (oh, ow) each tap meets)
    // of dy * w, then + bias[ci], then + the old dx when accumulating.
    // The images of the batch are the lanes (dy as (co, oh, ow) rows of N Doubles); an input
    // position's taps are listed once for every ci.
    func reproducibleConvBackwardData(_ g: ConvGeometry, dy: UnsafePointer<Float>, w: UnsafePointer<Float>,
                                      bias: UnsafePointer<Float>?, dx: UnsafeMutablePointer<Float>, accumulate: Bool) {
        let lanes = Self.roundedLanes(g.batch), kernel = g.kernelHeight * g.kernelWidth
        let plane = g.inHeight * g.inWidth, outPlane = g.outHeight * g.outWidth
        let rows = Self.lanesLast(dy, items: g.batch, length: g.outChannels * outPlane, lanes: lanes)
        let weights = Self.widened(w, count: g.outChannels * g.inChannels * kernel)
        defer {
            rows.deallocate()
            weights.deallocate()
        }
        let maxTaps = g.outChannels * kernel
        forEachItemRange(count: plane, costPerItem: g.inChannels * maxTaps * lanes) { positions in
            let scratch = LaneScratch(taps: maxTaps, lanes: lanes)
            defer { scratch.deallocate() }
            for position in positions {
                let ih = position / g.inWidth, iw = position % g.inWidth
                // Only kh = (ih + pad) mod stride + j * stride meet an output row (likewise kw).
                let firstRow = (ih + g.padHeight) % g.strideHeight, firstColumn = (iw + g.padWidth) % g.strideWidth
                var taps = 0
                for co in 0..<g.outChannels {
                    for kh in stride(from: firstRow, to: g.kernelHeight, by: g.strideHeight) {
                        let th = ih + g.padHeight - kh
                        guard th >= 0, th / g.strideHeight < g.outHeight else { continue }
                        for kw in stride(from: firstColumn, to: g.kernelWidth, by: g.strideWidth) {
                            let tw = iw + g.padWidth - kw
                            guard tw >= 0, tw / g.strideWidth < g.outWidth else { continue }
                            scratch.add(&taps, index: co * g.inChannels * kernel + kh * g.kernelWidth + kw,
                                        offset: (co * outPlane + th / g.strideHeight * g.outWidth + tw / g.strideWidth) * lanes)
                        }
                    }
                }
                scratch.forEachOutput(count: g.inChannels, taps: taps, scales: weights, scaleStride: kernel, rows: rows) { ci, sums in
                    for n in 0..<g.batch {
                        let at = (n * g.inChannels + ci) * plane + position
                        var v = sums[n]
                        if let bias { v += Double(bias[ci]) }
                        if accumulate { v += Double(dx[at]) }
                        dx[at] = Float(v)
                    }
                }
            }
        }
    }

    // dw[co, ci, kh, kw] = sum over n, oh, ow (in that order, padding skipped) of dy * x, then
    // + the old dw when accumulating. The lanes are the input channels (x as (n, ih, iw) rows of
    // Cin Doubles), or the output channels where there are fewer input ones (dy as (n, oh, ow)
    // rows of Cout Doubles); a kernel tap's terms are listed once for every channel of the other side.
    func reproducibleConvBackwardWeights(_ g: ConvGeometry, x: UnsafePointer<Float>, dy: UnsafePointer<Float>,
                                         dw: UnsafeMutablePointer<Float>, accumulate: Bool) {
        let plane = g.inHeight * g.inWidth, outPlane = g.outHeight * g.outWidth, kernel = g.kernelHeight * g.kernelWidth
        let acrossInputs = g.inChannels >= g.outChannels || g.inChannels >= 8
        let channels = acrossInputs ? g.inChannels : g.outChannels, others = acrossInputs ? g.outChannels : g.inChannels
        let lanes = Self.roundedLanes(channels)
        let rows = acrossInputs ? Self.lanesLast(x, groups: g.batch, items: channels, length: plane, lanes: lanes)
            : Self.lanesLast(dy, groups: g.batch, items: channels, length: outPlane, lanes: lanes)
        // The other side's values, as stored: (n, other, position).
        let scalars = acrossInputs ? Self.widened(dy, count: g.outputCount) : Self.widened(x, count: g.inputCount)
        defer {
            rows.deallocate()
            scalars.deallocate()
        }
        let maxTaps = g.batch * outPlane
        forEachItemRange(count: kernel, costPerItem: others * maxTaps * lanes) { kernelTaps in
            let scratch = LaneScratch(taps: maxTaps, lanes: lanes)
            defer { scratch.deallocate() }
            for kernelTap in kernelTaps {
                let kh = kernelTap / g.kernelWidth, kw = kernelTap % g.kernelWidth
                var count = 0
                for n in 0..<g.batch {
                    for oh in 0..<g.outHeight {
                        let ih = oh * g.strideHeight - g.padHeight + kh
                        guard ih >= 0, ih < g.inHeight else { continue }
                        for ow in 0..<g.outWidth {
                            let iw = ow * g.strideWidth - g.padWidth + kw
                            guard iw >= 0, iw < g.inWidth else { continue }
                            let input = n * plane + ih * g.inWidth + iw, output = n * outPlane + oh * g.outWidth + ow
                            if acrossInputs {
                                scratch.add(&count, index: n * g.outChannels * outPlane + oh * g.outWidth + ow, offset: input * lanes)
                            } else {
                                scratch.add(&count, index: n * g.inChannels * plane + ih * g.inWidth + iw, offset: output * lanes)
                            }
                        }
                    }
                }
                scratch.forEachOutput(count: others, taps: count, scales: scalars, scaleStride: acrossInputs ? outPlane : plane,
                                      rows: rows) { other, sums in
                    for lane in 0..<channels {
                        let (co, ci) = acrossInputs ? (other, lane) : (lane, other)
                        let at = (co * g.inChannels + ci) * kernel + kernelTap
                        dw[at] = Float(accumulate ? sums[lane] + Double(dw[at]) : sums[lane])
                    }
                }
            }
        }
    }

    /// `count` floats as Doubles.
    static func widened(_ source: UnsafePointer<Float>, count: Int) -> UnsafeMutablePointer<Double> {
        let values = UnsafeMutablePointer<Double>.allocate(capacity: Swift.max(1, count))
        for i in 0..<count { values[i] = Double(source[i]) }
        return values
    }

    /// `count` rounded up to whole 8-lane vectors.
    static func roundedLanes(_ count: Int) -> Int { (count + 7) / 8 * 8 }

    /// For each of `groups` groups, `items` runs of `length` floats (an image, a channel) as
    /// `length` rows of `lanes` Doubles, run i in lane i, the lanes past `items` zero; as
    /// reproducible.cl's repro_lanes_last lays out its copy.
    static func lanesLast(_ source: UnsafePointer<Float>, groups: Int = 1, items: Int, length: Int,
                          lanes: Int) -> UnsafeMutablePointer<Double> {
        let count = groups * length * lanes
        let rows = UnsafeMutablePointer<Double>.allocate(capacity: Swift.max(1, count))
        rows.initialize(repeating: 0, count: count)
        for group in 0..<groups {
            for item in 0..<items {
                let run = source + (group * items + item) * length, destination = rows + group * length * lanes + item
                for e in 0..<length { destination[e * lanes] = Double(run[e]) }
            }
        }
        return rows
    }

    // Per channel c over (n, s) in order: mean, then the biased variance as the mean of
    // (x - mean)^2, invstd = 1 / sqrt(var + eps); y = (x - mean) * invstd * gamma + beta.
    func reproducibleBatchNormTraining(x: UnsafePointer<Float>, y: UnsafeMutablePointer<Float>,
                                       gamma: UnsafePointer<Float>, beta: UnsafePointer<Float>,
                                       runningMean: UnsafeMutablePointer<Float>, runningVariance: UnsafeMutablePointer<Float>,
                                       savedMean: UnsafeMutablePointer<Float>, savedInverseStd: UnsafeMutablePointer<Float>,
                                       batch: Int, channels: Int, spatial: Int, momentum: Double, epsilon: Double) {
        let count = Double(batch * spatial)
        forEachItemRange(count: channels, costPerItem: batch * spatial * 4) { range in
            for c in range {
                let mean = Self.channelTotal(x, c, batch: batch, channels: channels, spatial: spatial) / count
                var squares: Double = 0
                for n in 0..<batch {
                    let row = x + (n * channels + c) * spatial
                    for s in 0..<spatial {
                        let d = Double(row[s]) - mean
                        squares += d * d
                    }
                }
                let variance = squares / count
                let inverseStd = 1 / (variance + epsilon).squareRoot()
                savedMean[c] = Float(mean)
                savedInverseStd[c] = Float(inverseStd)
                runningMean[c] = Float(momentum * mean + (1 - momentum) * Double(runningMean[c]))
                runningVariance[c] = Float(momentum * (variance * count / (count - 1)) + (1 - momentum) * Double(runningVariance[c]))
                let g = Double(gamma[c]), b = Double(beta[c])
                for n in 0..<batch {
                    let offset = (n * channels + c) * spatial
                    for s in 0..<spatial { y[offset + s] = Float((Double(x[offset + s]) - mean) * inverseStd * g + b) }
                }
            }
        }
    }

    // y = (x - runningMean) * (1 / sqrt(runningVariance + eps)) * gamma + beta.
    func reproducibleBatchNormInference(x: UnsafePointer<Float>, y: UnsafeMutablePointer<Float>,
                                        gamma: UnsafePointer<Float>, beta: UnsafePointer<Float>,
                                        runningMean: UnsafePointer<Float>, runningVariance: UnsafePointer<Float>,
                                        batch: Int, channels: Int, spatial: Int, epsilon: Double) {
        forEachItemRange(count: batch * channels, costPerItem: spatial * 2) { rows in
            for row in rows {
                let c = row % channels
                let mean = Double(runningMean[c]), inverseStd = 1 / (Double(runningVariance[c]) + epsilon).squareRoot()
                let g = Double(gamma[c]), b = Double(beta[c])
                let offset = row * spatial
                for s in 0..<spatial { y[offset + s] = Float((Double(x[offset + s]) - mean) * inverseStd * g + b) }
            }
        }
    }

    // Per channel over (n, s) in order, from the saved mean and invstd: sum = sum(dy),
    // dot = sum((x - mean) * dy); dx = (dy - sum / M - (x - mean) * (dot * invstd^2 / M)) * invstd * gamma,
    // dgamma (+)= dot * invstd, dbeta (+)= sum.
    func reproducibleBatchNormBackward(dy: UnsafePointer<Float>, x: UnsafePointer<Float>, gamma: UnsafePointer<Float>,
                                       savedMean: UnsafePointer<Float>, savedInverseStd: UnsafePointer<Float>,
                                       dx: UnsafeMutablePointer<Float>, gradGamma: UnsafeMutablePointer<Float>,
                                       gradBeta: UnsafeMutablePointer<Float>,
                                       batch: Int, channels: Int, spatial: Int, accumulate: Bool) {
        let count = Double(batch * spatial)
        forEachItemRange(count: channels, costPerItem: batch * spatial * 4) { range in
            for c in range {
                let mean = Double(savedMean[c]), inverseStd = Double(savedInverseStd[c])
                var sum: Double = 0, dot: Double = 0
                for n in 0..<batch {
                    let offset = (n * channels + c) * spatial
                    for s in 0..<spatial {
                        let d = Double(dy[offset + s])
                        sum += d
                        dot += (Double(x[offset + s]) - mean) * d
                    }
                }
                let gradMean = sum / count, k = dot * inverseStd * inverseStd / count
                let g = Double(gamma[c])
                for n in 0..<batch {
                    let offset = (n * channels + c) * spatial
                    for s in 0..<spatial {
                        let centred = Double(x[offset + s]) - mean
                        dx[offset + s] = Float((Double(dy[offset + s]) - gradMean - centred * k) * inverseStd * g)
                    }
                }
                gradGamma[c] = Float(accumulate ? dot * inverseStd + Double(gradGamma[c]) : dot * inverseStd)
                gradBeta[c] = Float(accumulate ? sum + Double(gradBeta[c]) : sum)
            }
        }
    }

    // out[c] (+)= sum over n, s in order of x[n, c, s].
    func reproducibleChannelSum(x: UnsafePointer<Float>, out: UnsafeMutablePointer<Float>,
                                batch: Int, channels: Int, spatial: Int, accumulate: Bool) {
        forEachItemRange(count: channels, costPerItem: batch * spatial) { range in
            for c in range {
                let sum = Self.channelTotal(x, c, batch: batch, channels: channels, spatial: spatial)
                out[c] = Float(accumulate ? sum + Double(out[c]) : sum)
            }
        }
    }

    /// The sum over n, s in order of x[n, c, s], in Double (batch norm's mean, channelSum).
    static func channelTotal(_ x: UnsafePointer<Float>, _ c: Int, batch: Int, channels: Int, spatial: Int) -> Double {
        var sum: Double = 0
        for n in 0..<batch {
            let row = x + (n * channels + c) * spatial
            for s in 0..<spatial { sum += Double(row[s]) }
        }
        return sum
    }

    /// `sum(term(i))` over `0..<count` in index order, in Double.
    static func reproducibleSum(count: Int, _ term: (Int) -> Double) -> Double {
        var total: Double = 0
        for i in 0..<count { total += term(i) }
        return total
    }

    /// A loss's term in Double, as `Kernels/reproducible.cl` computes it.
    static func reproducibleLossTerm(_ kind: LossKind, _ p: Double, _ t: Double) -> Double {
        switch kind {
        case .bce:
            let logP = Foundation.log(p), log1MinusP = Foundation.log1p(-p)
            return (t - 1) * (log1MinusP < -100 ? -100 : log1MinusP) - t * (logP < -100 ? -100 : logP)
        case .bceWithLogits:
            return (p > 0 ? p : 0) - p * t + Foundation.log1p(Foundation.exp(-Swift.abs(p)))
        case .mse:
            let d = p - t
            return d * d
        case .l1:
            return Swift.abs(p - t)
        }
    }

    /// The KL term of one element in Double (summed, then scaled by -0.5 for the exp forms).
    static func reproducibleKLTerm(_ parameterization: GaussianParameterization, _ m: Double, _ q: Double) -> Double {
        switch parameterization {
        case .logVariance: return 1 + q - m * m - Foundation.exp(q)
        case .logStd: return 1 + 2 * q - m * m - Foundation.exp(2 * q)
        case .std: return 0.5 * (q * q + m * m - 1) - Foundation.log(q)
        }
    }

    /// `scale * d(loss)/d(prediction)` of one element in Double (then / count for a mean).
    static func reproducibleLossGradient(_ kind: LossKind, _ p: Double, _ t: Double, scale: Double) -> Double {
        switch kind {
        case .bce:
            let denominator = (1 - p) * p
            return scale * (p - t) / (denominator < 1e-12 ? 1e-12 : denominator)
        case .bceWithLogits:
            return (1 / (1 + Foundation.exp(-p)) - t) * scale
        case .mse:
            return 2 * (p - t) * scale
        case .l1:
            return (p > t ? 1 : (p < t ? -1 : 0)) * scale
        }
    }

    // g (+)= reproducibleLossGradient(p, t) (/ count); one rounding.
    func reproducibleLossBackward(_ kind: LossKind, p: UnsafePointer<Float>, t: UnsafePointer<Float>,
                                  g: UnsafeMutablePointer<Float>, count: Int, mean: Bool, scale: Float, accumulate: Bool) {
        let scaleD = Double(scale), divisor = Double(count)
        forEachRange(count: count, cost: 8) { range in
            for i in range {
                var v = Self.reproducibleLossGradient(kind, Double(p[i]), Double(t[i]), scale: scaleD)
                if mean { v /= divisor }
                if accumulate { v += Double(g[i]) }
                g[i] = Float(v)
            }
        }
    }

    // y = alpha * x + beta * y with one rounding (beta 0: y not read).
    func reproducibleAxpby(alpha: Float, x: UnsafePointer<Float>, beta: Float, y: UnsafeMutablePointer<Float>, count: Int) {
        let a = Double(alpha), b = Double(beta)
        forEachRange(count: count, cost: 2) { range in
            for i in range { y[i] = Float(beta == 0 ? a * Double(x[i]) : a * Double(x[i]) + b * Double(y[i])) }
        }
    }

    // indices[r] = the entry with the least sum over i in order of (x - e)^2 in Double; ties to the lowest.
    func reproducibleNearestEntry(x: UnsafePointer<Float>, table: UnsafePointer<Float>, indices: UnsafeMutablePointer<Float>,
                                  rows: Int, entries: Int, width: Int) {
        forEachItemRange(count: rows, costPerItem: entries * width * 2) { rowRange in
            for r in rowRange {
                var best = Double.infinity, bestIndex = 0
                for e in 0..<entries {
                    var distance: Double = 0
                    for i in 0..<width {
                        let d = Double(x[r * width + i]) - Double(table[e * width + i])
                        distance += d * d
                    }
                    if distance < best {
                        best = distance
                        bestIndex = e
                    }
                }
                indices[r] = Float(bestIndex)
            }
        }
    }
}

/// One thread's list of terms for lane sums and their results: term t adds the scale at
/// `indices[t]` (of a table the caller shifts per output) times the row of lanes at `offsets[t]`.
struct LaneScratch {
    typealias V = SIMD8<Double>
    let indices: UnsafeMutablePointer<Int>
    let offsets: UnsafeMutablePointer<Int>
    /// Four outputs' lanes, one after another.
    let out: UnsafeMutablePointer<Double>
    let lanes: Int

    init(taps: Int, lanes: Int) {
        indices = .allocate(capacity: Swift.max(1, taps))
        offsets = .allocate(capacity: Swift.max(1, taps))
        out = .allocate(capacity: Swift.max(1, 4 * lanes))
        self.lanes = lanes
    }

    func deallocate() {
        indices.deallocate()
        offsets.deallocate()
        out.deallocate()
    }

    @inline(__always)
    func add(_ count: inout Int, index: Int, offset: Int) {
        indices[count] = index
        offsets[count] = offset
        count += 1
    }

    /// For each output o < count: sum over t < taps, in order, of
    /// scales[o * scaleStride + indices[t]] * rows[offsets[t] + l], every lane l, into
    /// `out + o * lanes`; then `store(o, out + o * lanes)`. Four outputs share each row
    /// loaded (a 4 x 32-lane register tile); a product of two floats is exact in Double, so
    /// the fused multiply-adds round as separate multiplies and adds would.
    func forEachOutput(count: Int, taps: Int, scales: UnsafePointer<Double>, scaleStride: Int, rows: UnsafePointer<Double>,
                       _ store: (_ output: Int, _ values: UnsafePointer<Double>) -> Void) {
        var output = 0
        while output < count {
            let group = Swift.min(4, count - output)
            let table = scales + output * scaleStride
            var done = 0
            if group == 4 {
                while done + 32 <= lanes {
                    sumFour(taps: taps, scales: table, scaleStride: scaleStride, rows: rows, lane: done)
                    done += 32
                }
            }
            for o in 0..<group { sumOne(taps: taps, scales: table + o * scaleStride, rows: rows, from: done, into: out + o * lanes) }
            for o in 0..<group { store(output + o, out + o * lanes) }
            output += group
        }
    }

    /// Lanes `lane ..< lane + 32` of four outputs.
    private func sumFour(taps: Int, scales: UnsafePointer<Double>, scaleStride: Int, rows: UnsafePointer<Double>, lane: Int) {
        var a00 = V(), a01 = V(), a02 = V(), a03 = V(), a10 = V(), a11 = V(), a12 = V(), a13 = V()
        var a20 = V(), a21 = V(), a22 = V(), a23 = V(), a30 = V(), a31 = V(), a32 = V(), a33 = V()
        for t in 0..<taps {
            let p = UnsafeRawPointer(rows + offsets[t] + lane), i = indices[t]
            let r0 = p.loadUnaligned(as: V.self), r1 = p.loadUnaligned(fromByteOffset: 64, as: V.self)
            let r2 = p.loadUnaligned(fromByteOffset: 128, as: V.self), r3 = p.loadUnaligned(fromByteOffset: 192, as: V.self)
            let s0 = V(repeating: scales[i]), s1 = V(repeating: scales[scaleStride + i])
            let s2 = V(repeating: scales[2 * scaleStride + i]), s3 = V(repeating: scales[3 * scaleStride + i])
            a00 = a00.addingProduct(s0, r0); a01 = a01.addingProduct(s0, r1); a02 = a02.addingProduct(s0, r2); a03 = a03.addingProduct(s0, r3)
            a10 = a10.addingProduct(s1, r0); a11 = a11.addingProduct(s1, r1); a12 = a12.addingProduct(s1, r2); a13 = a13.addingProduct(s1, r3)
            a20 = a20.addingProduct(s2, r0); a21 = a21.addingProduct(s2, r1); a22 = a22.addingProduct(s2, r2); a23 = a23.addingProduct(s2, r3)
            a30 = a30.addingProduct(s3, r0); a31 = a31.addingProduct(s3, r1); a32 = a32.addingProduct(s3, r2); a33 = a33.addingProduct(s3, r3)
        }
        store(a00, a01, a02, a03, output: 0, lane: lane)
        store(a10, a11, a12, a13, output: 1, lane: lane)
        store(a20, a21, a22, a23, output: 2, lane: lane)
        store(a30, a31, a32, a33, output: 3, lane: lane)
    }

    @inline(__always)
    private func store(_ v0: V, _ v1: V, _ v2: V, _ v3: V, output: Int, lane: Int) {
        let destination = UnsafeMutableRawPointer(out + output * lanes + lane)
        destination.storeBytes(of: v0, as: V.self)
        destination.storeBytes(of: v1, toByteOffset: 64, as: V.self)
        destination.storeBytes(of: v2, toByteOffset: 128, as: V.self)
        destination.storeBytes(of: v3, toByteOffset: 192, as: V.self)
    }

    /// Lanes `from ..< lanes` of one output, 8 at a time.
    private func sumOne(taps: Int, scales: UnsafePointer<Double>, rows: UnsafePointer<Double>, from: Int,
                        into destination: UnsafeMutablePointer<Double>) {
        var l = from
        while l < lanes {
            var a = V()
            for t in 0..<taps {
                a = a.addingProduct(V(repeating: scales[indices[t]]), UnsafeRawPointer(rows + offsets[t] + l).loadUnaligned(as: V.self))
            }
            UnsafeMutableRawPointer(destination + l).storeBytes(of: a, as: V.self)
            l += 8
        }
    }
}
