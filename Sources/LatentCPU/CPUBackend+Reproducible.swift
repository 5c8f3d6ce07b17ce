import Foundation
import LatentCore

/// Reproducible arithmetic (`CPUBackend(reproducible: true)`, `latent … --reproducible`).
///
/// Why: float32 sums taken in different orders (SIMD lanes, Winograd tiles, work-groups)
/// differ in the last bits, and Adam, which divides every gradient by its own running RMS,
/// grows those bits into differences of 1e-3 within five steps (docs/OPENCL.md, "Parity after
/// several Adam steps"). Here every op that sums — GEMM, the three convolution passes, batch
/// norm's statistics and gradients, bias gradients, sums, losses, the KL term — accumulates in
/// Double in the order of the plain loop written beside each function and rounds to Float
/// once. A product of two floats is exact in Double, so that order fixes every bit, and
/// `Kernels/reproducible.cl` sums in the same order: the CPU and OpenCL backends, on any
/// number of threads, give the same floats. Elementwise ops, optimizers and random numbers
/// are bit-identical across the backends already and run as in the fast mode.
/// Threads split the outputs, never one output's sum.
extension CPUBackend {
    // C (m x n) = alpha * sum_k A(i, k) * B(k, j) + beta * C, k ascending.
    func reproducibleGemm(transA: Transpose, transB: Transpose, m: Int, n: Int, k: Int, alpha: Float,
                          a: UnsafePointer<Float>, lda: Int, b: UnsafePointer<Float>, ldb: Int,
                          beta: Float, c: UnsafeMutablePointer<Float>, ldc: Int) {
        guard m > 0, n > 0 else { return }
        // B as k x n Doubles, so that a row of C is a run of independent sums over k.
        let bD = UnsafeMutablePointer<Double>.allocate(capacity: Swift.max(1, k * n))
        defer { bD.deallocate() }
        for kk in 0..<k {
            for j in 0..<n { bD[kk * n + j] = Double(transB == .none ? b[kk * ldb + j] : b[j * ldb + kk]) }
        }
        let alphaD = Double(alpha), betaD = Double(beta)
        forEachItemRange(count: m, costPerItem: n * Swift.max(1, k)) { rows in
            let acc = UnsafeMutablePointer<Double>.allocate(capacity: n)
            defer { acc.deallocate() }
            for i in rows {
                acc.initialize(repeating: 0, count: n)
                for kk in 0..<k {
                    let aik = Double(transA == .none ? a[i * lda + kk] : a[kk * lda + i])
                    let row = bD + kk * n
                    for j in 0..<n { acc[j] += aik * row[j] }
                }
                let out = c + i * ldc
                for j in 0..<n {
                    out[j] = Float(beta == 0 ? alphaD * acc[j] : alphaD * acc[j] + betaD * Double(out[j]))
                }
            }
        }
    }

    // y[n, co, oh, ow] = sum over ci, kh, kw (in that order, padding skipped) of x * w, then + bias[co].
    // Vectorised across co: the weights as (ci, kh, kw) rows of Cout Doubles.
    func reproducibleConvForward(_ g: ConvGeometry, x: UnsafePointer<Float>, w: UnsafePointer<Float>,
                                 bias: UnsafePointer<Float>?, y: UnsafeMutablePointer<Float>) {
        let taps = g.kernelHeight * g.kernelWidth, depth = g.inChannels * taps, channels = g.outChannels
        let rows = Self.doubles(depth * channels) { wT in
            for co in 0..<channels {
                for d in 0..<depth { wT[d * channels + co] = Double(w[co * depth + d]) }
            }
        }
        defer { rows.deallocate() }
        let plane = g.outHeight * g.outWidth
        forEachItemRange(count: g.batch * g.outHeight, costPerItem: g.outWidth * depth * channels) { items in
            let acc = UnsafeMutablePointer<Double>.allocate(capacity: channels)
            defer { acc.deallocate() }
            for item in items {
                let n = item / g.outHeight, oh = item % g.outHeight
                for ow in 0..<g.outWidth {
                    acc.initialize(repeating: 0, count: channels)
                    for ci in 0..<g.inChannels {
                        let image = x + (n * g.inChannels + ci) * g.inHeight * g.inWidth
                        for kh in 0..<g.kernelHeight {
                            let ih = oh * g.strideHeight - g.padHeight + kh
                            guard ih >= 0, ih < g.inHeight else { continue }
                            for kw in 0..<g.kernelWidth {
                                let iw = ow * g.strideWidth - g.padWidth + kw
                                guard iw >= 0, iw < g.inWidth else { continue }
                                Self.addScaled(acc, Double(image[ih * g.inWidth + iw]), rows + ((ci * g.kernelHeight + kh) * g.kernelWidth + kw) * channels, channels)
                            }
                        }
                    }
                    let destination = y + n * channels * plane + oh * g.outWidth + ow
                    for co in 0..<channels {
                        destination[co * plane] = Float(bias.map { acc[co] + Double($0[co]) } ?? acc[co])
                    }
                }
            }
        }
    }

    // dx[n, ci, ih, iw] = sum over co, kh, kw (in that order; the one (oh, ow) each tap meets)
    // of dy * w, then + bias[ci], then + the old dx when accumulating.
    // Vectorised across ci: the weights as (co, kh, kw) rows of Cin Doubles.
    func reproducibleConvBackwardData(_ g: ConvGeometry, dy: UnsafePointer<Float>, w: UnsafePointer<Float>,
                                      bias: UnsafePointer<Float>?, dx: UnsafeMutablePointer<Float>, accumulate: Bool) {
        let taps = g.kernelHeight * g.kernelWidth, channels = g.inChannels
        let rows = Self.doubles(g.outChannels * taps * channels) { w2 in
            for co in 0..<g.outChannels {
                for ci in 0..<channels {
                    for t in 0..<taps { w2[(co * taps + t) * channels + ci] = Double(w[(co * channels + ci) * taps + t]) }
                }
            }
        }
        defer { rows.deallocate() }
        let plane = g.inHeight * g.inWidth, outPlane = g.outHeight * g.outWidth
        forEachItemRange(count: g.batch * g.inHeight, costPerItem: g.inWidth * g.outChannels * taps * channels) { items in
            let acc = UnsafeMutablePointer<Double>.allocate(capacity: channels)
            defer { acc.deallocate() }
            for item in items {
                let n = item / g.inHeight, ih = item % g.inHeight
                for iw in 0..<g.inWidth {
                    acc.initialize(repeating: 0, count: channels)
                    for co in 0..<g.outChannels {
                        let gradient = dy + (n * g.outChannels + co) * outPlane
                        for kh in 0..<g.kernelHeight {
                            let th = ih + g.padHeight - kh
                            guard th >= 0, th % g.strideHeight == 0, th / g.strideHeight < g.outHeight else { continue }
                            let oh = th / g.strideHeight
                            for kw in 0..<g.kernelWidth {
                                let tw = iw + g.padWidth - kw
                                guard tw >= 0, tw % g.strideWidth == 0, tw / g.strideWidth < g.outWidth else { continue }
                                Self.addScaled(acc, Double(gradient[oh * g.outWidth + tw / g.strideWidth]),
                                               rows + ((co * g.kernelHeight + kh) * g.kernelWidth + kw) * channels, channels)
                            }
                        }
                    }
                    let destination = dx + n * channels * plane + ih * g.inWidth + iw
                    for ci in 0..<channels {
                        var v = acc[ci]
                        if let bias { v += Double(bias[ci]) }
                        if accumulate { v += Double(destination[ci * plane]) }
                        destination[ci * plane] = Float(v)
                    }
                }
            }
        }
    }

    // dw[co, ci, kh, kw] = sum over n, oh, ow (in that order, padding skipped) of dy * x,
    // then + the old dw when accumulating.
    // Vectorised across ci: the input as (n, ih, iw) rows of Cin Doubles.
    func reproducibleConvBackwardWeights(_ g: ConvGeometry, x: UnsafePointer<Float>, dy: UnsafePointer<Float>,
                                         dw: UnsafeMutablePointer<Float>, accumulate: Bool) {
        let taps = g.kernelHeight * g.kernelWidth, channels = g.inChannels
        let plane = g.inHeight * g.inWidth, outPlane = g.outHeight * g.outWidth
        let rows = Self.doubles(g.batch * plane * channels) { xT in
            for n in 0..<g.batch {
                for ci in 0..<channels {
                    let image = x + (n * channels + ci) * plane
                    for p in 0..<plane { xT[(n * plane + p) * channels + ci] = Double(image[p]) }
                }
            }
        }
        defer { rows.deallocate() }
        forEachItemRange(count: g.outChannels * taps, costPerItem: g.batch * outPlane * channels) { items in
            let acc = UnsafeMutablePointer<Double>.allocate(capacity: channels)
            defer { acc.deallocate() }
            for item in items {
                let co = item / taps, kh = (item % taps) / g.kernelWidth, kw = item % g.kernelWidth
                acc.initialize(repeating: 0, count: channels)
                for n in 0..<g.batch {
                    let gradient = dy + (n * g.outChannels + co) * outPlane
                    for oh in 0..<g.outHeight {
                        let ih = oh * g.strideHeight - g.padHeight + kh
                        guard ih >= 0, ih < g.inHeight else { continue }
                        for ow in 0..<g.outWidth {
                            let iw = ow * g.strideWidth - g.padWidth + kw
                            guard iw >= 0, iw < g.inWidth else { continue }
                            Self.addScaled(acc, Double(gradient[oh * g.outWidth + ow]),
                                           rows + ((n * g.inHeight + ih) * g.inWidth + iw) * channels, channels)
                        }
                    }
                }
                for ci in 0..<channels {
                    let at = (co * channels + ci) * taps + kh * g.kernelWidth + kw
                    dw[at] = Float(accumulate ? acc[ci] + Double(dw[at]) : acc[ci])
                }
            }
        }
    }

    /// `acc[i] += scale * row[i]` for `i < count`: independent sums, one more term each.
    @inline(__always)
    static func addScaled(_ acc: UnsafeMutablePointer<Double>, _ scale: Double, _ row: UnsafePointer<Double>, _ count: Int) {
        var i = 0
        while i + 8 <= count {
            let a = UnsafeRawPointer(acc + i).loadUnaligned(as: SIMD8<Double>.self)
            let r = UnsafeRawPointer(row + i).loadUnaligned(as: SIMD8<Double>.self)
            UnsafeMutableRawPointer(acc + i).storeBytes(of: a + scale * r, as: SIMD8<Double>.self)
            i += 8
        }
        while i < count {
            acc[i] += scale * row[i]
            i += 1
        }
    }

    /// `count` Doubles filled by `fill`; the caller deallocates them.
    static func doubles(_ count: Int, _ fill: (UnsafeMutablePointer<Double>) -> Void) -> UnsafeMutablePointer<Double> {
        let pointer = UnsafeMutablePointer<Double>.allocate(capacity: Swift.max(1, count))
        fill(pointer)
        return pointer
    }

    /// The output columns `ow` whose input column `ow * stride - pad + kernel` lies inside the image.
    static func validOutputs(kernel: Int, stride: Int, pad: Int, input: Int, output: Int) -> Range<Int> {
        // ow * stride >= pad - kernel and ow * stride <= input - 1 + pad - kernel.
        let low = Swift.max(0, (pad - kernel + stride - 1) / stride)
        let highNumerator = input - 1 + pad - kernel
        guard highNumerator >= 0 else { return 0..<0 }
        let high = Swift.min(output - 1, highNumerator / stride)
        return low <= high ? low..<(high + 1) : 0..<0
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
                var sum: Double = 0
                for n in 0..<batch {
                    let row = x + (n * channels + c) * spatial
                    for s in 0..<spatial { sum += Double(row[s]) }
                }
                let mean = sum / count
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
                var sum: Double = 0
                for n in 0..<batch {
                    let row = x + (n * channels + c) * spatial
                    for s in 0..<spatial { sum += Double(row[s]) }
                }
                out[c] = Float(accumulate ? sum + Double(out[c]) : sum)
            }
        }
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
