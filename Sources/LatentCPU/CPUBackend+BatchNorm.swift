import CLatentSupport
import LatentCore

/// Batch normalisation with PyTorch's CPU semantics: statistics summed in Double (PyTorch's
/// CPU accumulation type for float), two passes (mean, then squared deviations, with the
/// rounding of the mean corrected), biased variance to normalise, unbiased variance into
/// the running average. Channels are independent, so threads take ranges of channels;
/// fully connected inputs (spatial 1) are vectorised across 16 channels at a time.
extension CPUBackend {
    // input (N, C, S) -> output (N, C, S); running/saved statistics (C)
    public func batchNormForwardTraining(input: BufferView, output: BufferView, gamma: BufferView, beta: BufferView,
                                         runningMean: BufferView, runningVariance: BufferView,
                                         savedMean: BufferView, savedInverseStd: BufferView,
                                         batch: Int, channels: Int, spatial: Int, momentum: Float, epsilon: Float) throws {
        let op = "batchNormForwardTraining"
        try checkBatchNorm(op, batch: batch, channels: channels, spatial: spatial,
                           data: [("input", input), ("output", output)],
                           perChannel: [("gamma", gamma), ("beta", beta), ("runningMean", runningMean),
                                        ("runningVariance", runningVariance), ("savedMean", savedMean),
                                        ("savedInverseStd", savedInverseStd)])
        let n = batch * spatial
        guard n > 1 else {
            throw LatentError.invalidArgument("\(op): expected more than 1 value per channel when training, got \(n)")
        }
        let x = try input.cpuPointer(), y = try output.cpuPointer()
        let g = try gamma.cpuPointer(), b = try beta.cpuPointer()
        let rm = try runningMean.cpuPointer(), rv = try runningVariance.cpuPointer()
        let sm = try savedMean.cpuPointer(), si = try savedInverseStd.cpuPointer()
        let m = decimalDouble(momentum), eps = Double(epsilon)
        if reproducible {
            return reproducibleBatchNormTraining(x: x, y: y, gamma: g, beta: b, runningMean: rm, runningVariance: rv,
                                                 savedMean: sm, savedInverseStd: si, batch: batch, channels: channels,
                                                 spatial: spatial, momentum: m, epsilon: eps)
        }
        let count = Double(n)
        try withChannelScratch(channels) { scale, shift in
            // Per channel: mean and biased variance in Double, then the affine map y = x * scale + shift.
            let finish: (Int, Double, Double, Double) -> Void = { c, sum, squares, deviationSum in
                let mean = sum / count
                // Two-pass variance with the first pass's rounding removed (Chan et al.).
                let variance = Swift.max(0, (squares - deviationSum * deviationSum / count) / count)
                let inverseStd = 1 / (variance + eps).squareRoot()
                sm[c] = Float(mean)
                si[c] = Float(inverseStd)
                rm[c] = Float(m * mean + (1 - m) * Double(rm[c]))
                rv[c] = Float(m * (variance * count / (count - 1)) + (1 - m) * Double(rv[c]))
                let a = Float(inverseStd) * g[c]
                scale[c] = a
                shift[c] = b[c] - Float(mean) * a
            }
            if spatial == 1 {
                forEachItemRange(count: (channels + 15) / 16, costPerItem: 16 * batch * 3) { blocks in
                    for block in blocks {
                        let c0 = block * 16, lanes = Swift.min(16, channels - c0)
                        let sums = columnSums(x + c0, rows: batch, stride: channels, lanes: lanes) { $0 }
                        let means = Vec(converting: sums / count)
                        var squares = SIMD16<Double>(), deviations = SIMD16<Double>()
                        columnSums2(x + c0, rows: batch, stride: channels, lanes: lanes, &deviations, &squares) { v in
                            let d = v - means
                            return (d, d * d)
                        }
                        for lane in 0..<lanes { finish(c0 + lane, sums[lane], squares[lane], deviations[lane]) }
                    }
                }
            } else {
                forEachItemRange(count: channels, costPerItem: n * 3) { channelRange in
                    for c in channelRange {
                        var sum: Double = 0
                        for s in 0..<batch {
                            let row = x + (s * channels + c) * spatial
                            if s + 2 < batch { latent_prefetch(row + 2 * channels * spatial, spatial * 4) }
                            var acc = Vec()
                            vectorLoop(0..<spatial) { i, lanes in acc += Vec.load(row + i, lanes) }
                            sum += acc.doubleSum()
                        }
                        let mean = Float(sum / count)
                        var squares: Double = 0, deviations: Double = 0
                        for s in 0..<batch {
                            let row = x + (s * channels + c) * spatial
                            var accD = Vec(), accS = Vec()
                            vectorLoop(0..<spatial) { i, lanes in
                                let d = Vec.load(row + i, lanes, padding: mean) - mean
                                accD += d
                                accS += d * d
                            }
                            deviations += accD.doubleSum()
                            squares += accS.doubleSum()
                        }
                        finish(c, sum, squares, deviations)
                    }
                }
            }
            applyChannelAffine(x, y, scale: scale, shift: shift, batch: batch, channels: channels, spatial: spatial)
        }
    }

    // input (N, C, S) -> output (N, C, S) with the running statistics (C)
    public func batchNormForwardInference(input: BufferView, output: BufferView, gamma: BufferView, beta: BufferView,
                                          runningMean: BufferView, runningVariance: BufferView,
                                          batch: Int, channels: Int, spatial: Int, epsilon: Float) throws {
        try checkBatchNorm("batchNormForwardInference", batch: batch, channels: channels, spatial: spatial,
                           data: [("input", input), ("output", output)],
                           perChannel: [("gamma", gamma), ("beta", beta), ("runningMean", runningMean),
                                        ("runningVariance", runningVariance)])
        let x = try input.cpuPointer(), y = try output.cpuPointer()
        let g = try gamma.cpuPointer(), b = try beta.cpuPointer()
        let rm = try runningMean.cpuPointer(), rv = try runningVariance.cpuPointer()
        let eps = Double(epsilon)
        if reproducible {
            return reproducibleBatchNormInference(x: x, y: y, gamma: g, beta: b, runningMean: rm, runningVariance: rv,
                                                  batch: batch, channels: channels, spatial: spatial, epsilon: eps)
        }
        try withChannelScratch(channels) { scale, shift in
            for c in 0..<channels {
                let a = Float(1 / (Double(rv[c]) + eps).squareRoot()) * g[c]
                scale[c] = a
                shift[c] = b[c] - rm[c] * a
            }
            applyChannelAffine(x, y, scale: scale, shift: shift, batch: batch, channels: channels, spatial: spatial)
        }
    }

    // gradOutput, input (N, C, S) -> gradInput (N, C, S); gradGamma, gradBeta (C)
    public func batchNormBackward(gradOutput: BufferView, input: BufferView, gamma: BufferView,
                                  savedMean: BufferView, savedInverseStd: BufferView,
                                  gradInput: BufferView, gradGamma: BufferView, gradBeta: BufferView,
                                  batch: Int, channels: Int, spatial: Int, accumulate: Bool) throws {
        try checkBatchNorm("batchNormBackward", batch: batch, channels: channels, spatial: spatial,
                           data: [("gradOutput", gradOutput), ("input", input), ("gradInput", gradInput)],
                           perChannel: [("gamma", gamma), ("savedMean", savedMean), ("savedInverseStd", savedInverseStd),
                                        ("gradGamma", gradGamma), ("gradBeta", gradBeta)])
        let dy = try gradOutput.cpuPointer(), x = try input.cpuPointer(), g = try gamma.cpuPointer()
        let sm = try savedMean.cpuPointer(), si = try savedInverseStd.cpuPointer()
        let dx = try gradInput.cpuPointer(), dg = try gradGamma.cpuPointer(), db = try gradBeta.cpuPointer()
        if reproducible {
            return reproducibleBatchNormBackward(dy: dy, x: x, gamma: g, savedMean: sm, savedInverseStd: si, dx: dx,
                                                 gradGamma: dg, gradBeta: db, batch: batch, channels: channels,
                                                 spatial: spatial, accumulate: accumulate)
        }
        let count = Double(batch * spatial)
        // PyTorch: k = dotp * invstd^2 / n, gradMean = sum(dy) / n,
        // dx = (dy - gradMean - (x - mean) * k) * invstd * gamma.
        if spatial == 1 {
            forEachItemRange(count: (channels + 15) / 16, costPerItem: 16 * batch * 4) { blocks in
                for block in blocks {
                    let c0 = block * 16, lanes = Swift.min(16, channels - c0)
                    let mean = Vec.load(sm + c0, lanes), inverseStd = Vec.load(si + c0, lanes)
                    var sums = SIMD16<Double>(), dots = SIMD16<Double>()
                    var row = 0
                    while row < batch {
                        // Up to 64 rows in float lanes, then into the Double sums.
                        let end = Swift.min(batch, row + 64)
                        var accSum = Vec(), accDot = Vec()
                        while row < end {
                            let offset = row * channels + c0
                            let dyv = Vec.load(dy + offset, lanes)
                            accSum += dyv
                            accDot += (Vec.load(x + offset, lanes) - mean) * dyv
                            row += 1
                        }
                        sums += SIMD16<Double>(converting: accSum)
                        dots += SIMD16<Double>(converting: accDot)
                    }
                    let invD = SIMD16<Double>(converting: inverseStd)
                    let k = Vec(converting: dots * invD * invD / count)
                    let gradMean = Vec(converting: sums / count)
                    let factor = inverseStd * Vec.load(g + c0, lanes)
                    for row in 0..<batch {
                        let offset = row * channels + c0
                        let xv = Vec.load(x + offset, lanes), dyv = Vec.load(dy + offset, lanes)
                        ((dyv - gradMean - (xv - mean) * k) * factor).store(dx + offset, lanes)
                    }
                    var newGamma = Vec(converting: dots * invD), newBeta = Vec(converting: sums)
                    if accumulate {
                        newGamma += Vec.load(dg + c0, lanes)
                        newBeta += Vec.load(db + c0, lanes)
                    }
                    newGamma.store(dg + c0, lanes)
                    newBeta.store(db + c0, lanes)
                }
            }
            return
        }
        forEachItemRange(count: channels, costPerItem: batch * spatial * 4) { channelRange in
            for c in channelRange {
                let mean = sm[c], inverseStd = si[c]
                var sum: Double = 0, dot: Double = 0
                for s in 0..<batch {
                    let offset = (s * channels + c) * spatial
                    if s + 2 < batch {
                        let ahead = offset + 2 * channels * spatial
                        latent_prefetch(dy + ahead, spatial * 4)
                        latent_prefetch(x + ahead, spatial * 4)
                    }
                    var accSum = Vec(), accDot = Vec()
                    vectorLoop(0..<spatial) { i, lanes in
                        let dyv = Vec.load(dy + offset + i, lanes)
                        accSum += dyv
                        accDot += (Vec.load(x + offset + i, lanes, padding: mean) - mean) * dyv
                    }
                    sum += accSum.doubleSum()
                    dot += accDot.doubleSum()
                }
                let invD = Double(inverseStd)
                let k = Float(dot * invD * invD / count)
                let gradMean = Float(sum / count)
                let factor = inverseStd * g[c]
                for s in 0..<batch {
                    let offset = (s * channels + c) * spatial
                    vectorLoop(0..<spatial) { i, lanes in
                        let xv = Vec.load(x + offset + i, lanes), dyv = Vec.load(dy + offset + i, lanes)
                        ((dyv - gradMean - (xv - mean) * k) * factor).store(dx + offset + i, lanes)
                    }
                }
                dg[c] = (accumulate ? dg[c] : 0) + Float(dot * invD)
                db[c] = (accumulate ? db[c] : 0) + Float(sum)
            }
        }
    }

    // MARK: Helpers

    private func checkBatchNorm(_ op: String, batch: Int, channels: Int, spatial: Int,
                                data: [(String, BufferView)], perChannel: [(String, BufferView)]) throws {
        let total = try CPUCheck.product(op, ("batch", batch), ("channels", channels), ("spatial", spatial))
        for (name, view) in data { try CPUCheck.count(view, total, name, op) }
        for (name, view) in perChannel { try CPUCheck.count(view, channels, name, op) }
    }

    /// Two per-channel float arrays for the affine map, from the scratch pool (no allocation per step).
    private func withChannelScratch(_ channels: Int,
                                    _ body: (UnsafeMutablePointer<Float>, UnsafeMutablePointer<Float>) throws -> Void) throws {
        let scratch = ScratchPool.shared.take(2 * channels)
        defer { ScratchPool.shared.give(scratch) }
        scratch.update(repeating: 0, count: 2 * channels)
        try body(scratch, scratch + channels)
    }

    /// `y[n, c, s] = x[n, c, s] * scale[c] + shift[c]`.
    private func applyChannelAffine(_ x: UnsafeMutablePointer<Float>, _ y: UnsafeMutablePointer<Float>,
                                    scale: UnsafeMutablePointer<Float>, shift: UnsafeMutablePointer<Float>,
                                    batch: Int, channels: Int, spatial: Int) {
        if spatial == 1 {
            forEachItemRange(count: batch, costPerItem: channels * 2) { rows in
                for row in rows {
                    let offset = row * channels
                    vectorLoop(0..<channels) { i, lanes in
                        (Vec.load(x + offset + i, lanes) * Vec.load(scale + i, lanes) + Vec.load(shift + i, lanes))
                            .store(y + offset + i, lanes)
                    }
                }
            }
            return
        }
        forEachItemRange(count: batch * channels, costPerItem: spatial * 2) { planes in
            for plane in planes {
                let c = plane % channels
                let a = Vec(repeating: scale[c]), b = Vec(repeating: shift[c])
                let offset = plane * spatial
                vectorLoop(0..<spatial) { i, lanes in
                    (Vec.load(x + offset + i, lanes) * a + b).store(y + offset + i, lanes)
                }
            }
        }
    }
}

/// Column sums of `rows` rows of 16 (or `lanes`) floats at `stride`: up to 64 rows in
/// float lanes, then into Double lanes.
@inline(__always)
private func columnSums(_ base: UnsafeMutablePointer<Float>, rows: Int, stride: Int, lanes: Int,
                        _ term: (Vec) -> Vec) -> SIMD16<Double> {
    var total = SIMD16<Double>()
    var row = 0
    while row < rows {
        let end = Swift.min(rows, row + 64)
        var acc = Vec()
        while row < end {
            acc += term(Vec.load(base + row * stride, lanes))
            row += 1
        }
        total += SIMD16<Double>(converting: acc)
    }
    return total
}

/// Two column sums at once (the terms `term(row)` returns), as `columnSums`.
@inline(__always)
private func columnSums2(_ base: UnsafeMutablePointer<Float>, rows: Int, stride: Int, lanes: Int,
                         _ first: inout SIMD16<Double>, _ second: inout SIMD16<Double>,
                         _ term: (Vec) -> (Vec, Vec)) {
    var row = 0
    while row < rows {
        let end = Swift.min(rows, row + 64)
        var acc1 = Vec(), acc2 = Vec()
        while row < end {
            // Padding lanes (lanes < 16) read zeros; their sums are never used.
            let (a, b) = term(Vec.load(base + row * stride, lanes))
            acc1 += a
            acc2 += b
            row += 1
        }
        first += SIMD16<Double>(converting: acc1)
        second += SIMD16<Double>(converting: acc2)
    }
}
