import LatentCore

/// Reductions, losses, the Gaussian KL term and the vector-quantiser's codebook ops.
/// Sums run over fixed blocks of 4096 elements whose partial sums are kept in Double and
/// added in block order, so a 60k-element loss is accurate to float rounding and the
/// result is the same on one thread or two.
extension CPUBackend {
    // x (n) -> output (1)
    public func sum(_ x: BufferView, output: BufferView) throws {
        try CPUCheck.scalarOutput(output, "sum")
        let p = try x.cpuPointer(), o = try output.cpuPointer()
        if reproducible { return o.pointee = Float(Self.reproducibleSum(count: x.count) { Double(p[$0]) }) }
        o.pointee = Float(reduceSum(count: x.count, cost: 1) { i, lanes in Vec.load(p + i, lanes) })
    }

    // input (N, C, S) -> output (C)
    public func channelSum(input: BufferView, output: BufferView, batch: Int, channels: Int, spatial: Int,
                           accumulate: Bool) throws {
        let op = "channelSum"
        let total = try CPUCheck.product(op, ("batch", batch), ("channels", channels), ("spatial", spatial))
        try CPUCheck.count(input, total, "input", op)
        try CPUCheck.count(output, channels, "output", op)
        let x = try input.cpuPointer(), o = try output.cpuPointer()
        if reproducible {
            return reproducibleChannelSum(x: x, out: o, batch: batch, channels: channels, spatial: spatial, accumulate: accumulate)
        }
        if spatial == 1 {
            // Fully connected: each sample is one row of `channels` floats; sum rows 16 channels at a time.
            forEachItemRange(count: (channels + 15) / 16, costPerItem: 16 * batch) { blocks in
                for block in blocks {
                    let c0 = block * 16, lanes = Swift.min(16, channels - c0)
                    var sums = SIMD16<Double>()
                    var n = 0
                    while n < batch {
                        // Up to 64 rows in float, then into the double accumulators.
                        var acc = Vec()
                        let end = Swift.min(batch, n + 64)
                        while n < end {
                            acc += Vec.load(x + n * channels + c0, lanes)
                            n += 1
                        }
                        sums += SIMD16<Double>(converting: acc)
                    }
                    var result = Vec(converting: sums)
                    if accumulate { result += Vec.load(o + c0, lanes) }
                    result.store(o + c0, lanes)
                }
            }
            return
        }
        forEachItemRange(count: channels, costPerItem: batch * spatial) { channelRange in
            for c in channelRange {
                var total: Double = 0
                for n in 0..<batch {
                    let row = x + (n * channels + c) * spatial
                    var acc = Vec()
                    vectorLoop(0..<spatial) { i, lanes in acc += Vec.load(row + i, lanes) }
                    total += acc.doubleSum()
                }
                o[c] = (accumulate ? o[c] : 0) + Float(total)
            }
        }
    }

    // prediction (n), target (n) -> output (1)
    public func lossForward(_ kind: LossKind, prediction: BufferView, target: BufferView, output: BufferView,
                            reduction: Reduction) throws {
        try CPUCheck.sameCount("lossForward", ("prediction", prediction), ("target", target))
        try CPUCheck.scalarOutput(output, "lossForward")
        let p = try prediction.cpuPointer(), t = try target.cpuPointer(), o = try output.cpuPointer()
        let count = prediction.count
        let total: Double
        if reproducible {
            total = Self.reproducibleSum(count: count) { Self.reproducibleLossTerm(kind, Double(p[$0]), Double(t[$0])) }
        } else {
            switch kind {
            case .bce:
                total = reduceSum(count: count, cost: 30) { i, lanes in
                    Self.bceTerm(Vec.load(p + i, lanes, padding: 0.5), Vec.load(t + i, lanes))
                }
            case .bceWithLogits:
                total = reduceSum(count: count, cost: 30) { i, lanes in
                    let x = Vec.load(p + i, lanes), y = Vec.load(t + i, lanes)
                    let positive = x.replacing(with: 0, where: x .< 0)
                    let magnitude = Vec(bits: x.bits & 0x7FFF_FFFF)
                    return positive - x * y + VMath.log1p(VMath.exp(-magnitude))
                }
            case .mse:
                total = reduceSum(count: count, cost: 2) { i, lanes in
                    let d = Vec.load(p + i, lanes) - Vec.load(t + i, lanes)
                    return d * d
                }
            case .l1:
                total = reduceSum(count: count, cost: 2) { i, lanes in
                    Vec(bits: (Vec.load(p + i, lanes) - Vec.load(t + i, lanes)).bits & 0x7FFF_FFFF)
                }
            }
        }
        switch reduction {
        case .sum: o.pointee = Float(total)
        case .mean: o.pointee = count == 0 ? .nan : Float(total / Double(count))
        }
    }

    /// PyTorch's binary_cross_entropy: `(t - 1) * max(log1p(-p), -100) - t * max(log(p), -100)`.
    @inline(__always)
    static func bceTerm(_ p: Vec, _ t: Vec) -> Vec {
        var logP = VMath.log(p)
        logP = logP.replacing(with: -100, where: logP .< -100)
        var log1MinusP = VMath.log1p(-p)
        log1MinusP = log1MinusP.replacing(with: -100, where: log1MinusP .< -100)
        return (t - 1) * log1MinusP - t * logP
    }

    // prediction (n), target (n) -> gradPrediction (n)
    public func lossBackward(_ kind: LossKind, prediction: BufferView, target: BufferView, gradPrediction: BufferView,
                             reduction: Reduction, scale: Float, accumulate: Bool) throws {
        try CPUCheck.sameCount("lossBackward", ("prediction", prediction), ("target", target), ("gradPrediction", gradPrediction))
        let p = try prediction.cpuPointer(), t = try target.cpuPointer(), g = try gradPrediction.cpuPointer()
        let count = prediction.count
        guard count > 0 else { return }
        if reproducible {
            return reproducibleLossBackward(kind, p: p, t: t, g: g, count: count, mean: reduction == .mean,
                                            scale: scale, accumulate: accumulate)
        }
        // The order of PyTorch's backward kernels: the elementwise gradient times the incoming
        // gradient (`scale`), then, for a mean, a division by the count (BCE, BCE with
        // logits); MSE folds 2/count into one factor first; L1 gets scale/count from mean().
        let mean = reduction == .mean
        let divisor = Float(count)
        let mseNorm = Float(mean ? 2 / Double(count) : 2)
        let l1Factor = mean ? scale / divisor : scale
        forEachRange(count: count, cost: kind == .bceWithLogits ? 14 : 4) { range in
            vectorLoop(range) { i, lanes in
                let x = Vec.load(p + i, lanes), y = Vec.load(t + i, lanes)
                var grad: Vec
                switch kind {
                case .bce:
                    // PyTorch: grad * (p - t) / max((1 - p) * p, 1e-12).
                    var denominator = (1 - x) * x
                    denominator = denominator.replacing(with: 1e-12, where: denominator .< 1e-12)
                    grad = scale * (x - y) / denominator
                    if mean { grad /= divisor }
                case .bceWithLogits:
                    grad = (VMath.sigmoid(x) - y) * scale
                    if mean { grad /= divisor }
                case .mse:
                    grad = mseNorm * (x - y) * scale
                case .l1:
                    let d = x - y
                    let sign = Vec(repeating: 0).replacing(with: 1, where: d .> 0).replacing(with: -1, where: d .< 0)
                    grad = sign * l1Factor
                }
                if accumulate { grad += Vec.load(g + i, lanes) }
                grad.store(g + i, lanes)
            }
        }
    }

    // mean (n), parameter (n) -> output (1)
    public func klDivergence(mean: BufferView, parameter: BufferView, parameterization: GaussianParameterization,
                             output: BufferView) throws {
        try CPUCheck.sameCount("klDivergence", ("mean", mean), ("parameter", parameter))
        try CPUCheck.scalarOutput(output, "klDivergence")
        let mu = try mean.cpuPointer(), p = try parameter.cpuPointer(), o = try output.cpuPointer()
        let count = mean.count
        if reproducible {
            let total = Self.reproducibleSum(count: count) { Self.reproducibleKLTerm(parameterization, Double(mu[$0]), Double(p[$0])) }
            return o.pointee = Float(parameterization == .std ? total : -0.5 * total)
        }
        switch parameterization {
        case .logVariance:
            // PyTorch's VAE example: -0.5 * sum(1 + logvar - mu^2 - exp(logvar)).
            let total = reduceSum(count: count, cost: 14) { i, lanes in
                let m = Vec.load(mu + i, lanes), lv = Vec.load(p + i, lanes)
                return 1 + lv - m * m - VMath.exp(lv)
            }
            o.pointee = Float(-0.5 * total)
        case .logStd:
            let total = reduceSum(count: count, cost: 14) { i, lanes in
                let m = Vec.load(mu + i, lanes), s = Vec.load(p + i, lanes)
                return 1 + 2 * s - m * m - VMath.exp(2 * s)
            }
            o.pointee = Float(-0.5 * total)
        case .std:
            // -log(std) + (std^2 + mu^2 - 1) / 2; padding std 1 contributes 0.
            let total = reduceSum(count: count, cost: 20) { i, lanes in
                let m = Vec.load(mu + i, lanes), s = Vec.load(p + i, lanes, padding: 1)
                return 0.5 * (s * s + m * m - 1) - VMath.log(s)
            }
            o.pointee = Float(total)
        }
    }

    // mean (n), parameter (n) -> gradMean (n), gradParameter (n), both scaled by `scale`
    public func klDivergenceBackward(mean: BufferView, parameter: BufferView, parameterization: GaussianParameterization,
                                     scale: Float, gradMean: BufferView, gradParameter: BufferView, accumulate: Bool) throws {
        try CPUCheck.sameCount("klDivergenceBackward", ("mean", mean), ("parameter", parameter),
                               ("gradMean", gradMean), ("gradParameter", gradParameter))
        let mu = try mean.cpuPointer(), p = try parameter.cpuPointer()
        let gm = try gradMean.cpuPointer(), gp = try gradParameter.cpuPointer()
        forEachRange(count: mean.count, cost: 14) { range in
            vectorLoop(range) { i, lanes in
                let m = Vec.load(mu + i, lanes), q = Vec.load(p + i, lanes, padding: 1)
                var gradMu = scale * m
                var gradP: Vec
                switch parameterization {
                case .logVariance:
                    // Autograd's sum of the two paths to logvar: -0.5 * scale + 0.5 * scale * exp(logvar).
                    gradP = (0.5 * scale) * VMath.exp(q) + (-0.5 * scale)
                case .logStd: gradP = scale * (VMath.exp(2 * q) - 1)
                case .std: gradP = scale * (q - 1 / q)
                }
                if accumulate {
                    gradMu += Vec.load(gm + i, lanes)
                    gradP += Vec.load(gp + i, lanes)
                }
                gradMu.store(gm + i, lanes)
                gradP.store(gp + i, lanes)
            }
        }
    }

    // x (n) -> output (1): NaNs and infinities counted
    public func countNonFinite(_ x: BufferView, output: BufferView) throws {
        try CPUCheck.scalarOutput(output, "countNonFinite")
        let p = try x.cpuPointer(), o = try output.cpuPointer()
        let count = x.count
        let chunks = Swift.max(1, parallel.threadCount)
        // Per-chunk counts on the stack (no heap allocation per call: the trainer counts every step).
        let nonFinite = withUnsafeTemporaryAllocation(of: Int.self, capacity: chunks) { partial -> Int in
            partial.initialize(repeating: 0)
            forEachChunkedRange(count: count, cost: 1) { chunk, range in
                var acc = SIMD16<Int32>()
                var total = 0
                var sinceFlush = 0
                vectorLoop(range) { i, lanes in
                    let bits = Vec.load(p + i, lanes).bits
                    // An all-ones exponent plus one carries into bit 31; no other exponent does.
                    // (Integer arithmetic: a comparison mask here is built lane by lane.)
                    acc &+= (((bits & 0x7F80_0000) &+ 0x0080_0000) &>> 31).signed
                    sinceFlush += 1
                    if sinceFlush == 1 << 20 {
                        total += acc.wrappedSum().asInt
                        acc = SIMD16<Int32>()
                        sinceFlush = 0
                    }
                }
                partial[chunk] = total + acc.wrappedSum().asInt
            }
            return partial.reduce(0, +)
        }
        o.pointee = Float(nonFinite)
    }

    // input (rows, width), codebook (entries, width) -> indices (rows) as Floats
    public func nearestCodebookEntry(input: BufferView, codebook: BufferView, indices: BufferView,
                                     rows: Int, entries: Int, width: Int) throws {
        let op = "nearestCodebookEntry"
        guard rows >= 0 else { throw LatentError.invalidArgument("\(op): rows must be >= 0, got \(rows)") }
        let tableSize = try CPUCheck.product(op, ("entries", entries), ("width", width))
        guard entries <= 1 << 24 else {
            throw LatentError.invalidArgument("\(op): \(entries) entries cannot all be stored exactly as Float indices")
        }
        try CPUCheck.count(codebook, tableSize, "codebook", op)
        try CPUCheck.count(indices, rows, "indices", op)
        let (inputSize, overflow) = rows.multipliedReportingOverflow(by: width)
        guard !overflow else { throw LatentError.invalidArgument("\(op): sizes overflow") }
        try CPUCheck.count(input, inputSize, "input", op)
        let x = try input.cpuPointer(), table = try codebook.cpuPointer(), out = try indices.cpuPointer()
        if reproducible {
            return reproducibleNearestEntry(x: x, table: table, indices: out, rows: rows, entries: entries, width: width)
        }
        forEachItemRange(count: rows, costPerItem: entries * width * 2) { rowRange in
            for r in rowRange {
                let row = x + r * width
                var best: Float = .infinity
                var bestIndex = 0
                for e in 0..<entries {
                    let entry = table + e * width
                    var acc = Vec()
                    vectorLoop(0..<width) { i, lanes in
                        let d = Vec.load(row + i, lanes) - Vec.load(entry + i, lanes)
                        acc += d * d
                    }
                    let distance = acc.sum()
                    if distance < best {
                        best = distance
                        bestIndex = e
                    }
                }
                out[r] = Float(bestIndex)
            }
        }
    }

    // table (T, width), indices (rows) -> output (rows, width)
    public func gatherRows(table: BufferView, indices: BufferView, output: BufferView, rows: Int, width: Int) throws {
        let op = "gatherRows"
        let tableRows = try rowIndexCheck(op, table: table, indices: indices, rows: rows, width: width)
        try CPUCheck.count(output, rows * width, "output", op)
        let t = try table.cpuPointer(), idx = try indices.cpuPointer(), o = try output.cpuPointer()
        try validateIndices(idx, rows: rows, tableRows: tableRows, op)
        forEachItemRange(count: rows, costPerItem: width) { rowRange in
            for r in rowRange {
                (o + r * width).update(from: t + Int(idx[r]) * width, count: width)
            }
        }
    }

    // gradOutput (rows, width), indices (rows) -> gradTable (T, width) accumulated
    public func scatterAddRows(gradOutput: BufferView, indices: BufferView, gradTable: BufferView, rows: Int, width: Int) throws {
        let op = "scatterAddRows"
        let tableRows = try rowIndexCheck(op, table: gradTable, indices: indices, rows: rows, width: width)
        try CPUCheck.count(gradOutput, rows * width, "gradOutput", op)
        let g = try gradOutput.cpuPointer(), idx = try indices.cpuPointer(), t = try gradTable.cpuPointer()
        try validateIndices(idx, rows: rows, tableRows: tableRows, op)
        // Each thread owns a range of table rows and adds the matching gradient rows in
        // order: no two threads write one row, and the sum order is fixed.
        parallel.forEachChunk(work: rows * width) { chunk, chunks in
            let owned = CPUParallel.range(chunk, of: chunks, count: tableRows)
            for r in 0..<rows {
                let target = Int(idx[r])
                guard owned.contains(target) else { continue }
                let destination = t + target * width, source = g + r * width
                vectorLoop(0..<width) { i, lanes in
                    (Vec.load(destination + i, lanes) + Vec.load(source + i, lanes)).store(destination + i, lanes)
                }
            }
        }
    }

    /// Checks the shared sizes of gather and scatter; returns the table's row count.
    private func rowIndexCheck(_ op: String, table: BufferView, indices: BufferView, rows: Int, width: Int) throws -> Int {
        guard rows >= 0, width > 0 else {
            throw LatentError.invalidArgument("\(op): rows must be >= 0 and width > 0, got \(rows) and \(width)")
        }
        guard rows.multipliedReportingOverflow(by: width).overflow == false else {
            throw LatentError.invalidArgument("\(op): sizes overflow")
        }
        guard table.count % width == 0 else {
            throw LatentError.shape("\(op): table of \(table.count) floats is not a whole number of rows of \(width)")
        }
        try CPUCheck.count(indices, rows, "indices", op)
        return table.count / width
    }

    /// Indices are Floats holding whole numbers in `0..<tableRows`; anything else would read
    /// or write outside the table.
    private func validateIndices(_ indices: UnsafeMutablePointer<Float>, rows: Int, tableRows: Int, _ op: String) throws {
        let limit = Float(tableRows)
        for r in 0..<rows {
            let value = indices[r]
            guard value >= 0, value < limit, value.rounded(.towardZero) == value else {
                throw LatentError.invalidArgument("\(op): index \(value) at row \(r) is not a row of a \(tableRows)-row table")
            }
        }
    }

    /// `sum(term(i, lanes))` over `0..<count` in fixed blocks (see the extension's note);
    /// lanes past a remainder are masked to zero.
    @inline(__always)
    func reduceSum(count: Int, cost: Int, _ term: (_ index: Int, _ lanes: Int) -> Vec) -> Double {
        guard count > 0 else { return 0 }
        let blockSize = 4096
        let blocks = (count + blockSize - 1) / blockSize
        // Block sums on the stack for the usual sizes (a loss: a few blocks), so a step allocates nothing.
        return withUnsafeTemporaryAllocation(of: Double.self, capacity: blocks) { partials -> Double in
            partials.initialize(repeating: 0)
            forEachItemRange(count: blocks, costPerItem: blockSize * cost) { blockRange in
                for block in blockRange {
                    let start = block * blockSize, end = Swift.min(count, start + blockSize)
                    var total: Double = 0
                    var inner = start
                    while inner < end {
                        // 256 elements (16 per lane) in float, then into the double total.
                        let innerEnd = Swift.min(end, inner + 256)
                        var acc = Vec()
                        vectorLoop(inner..<innerEnd) { i, lanes in
                            let value = term(i, lanes)
                            acc += lanes == 16 ? value : value.replacing(with: 0, where: .!Vec.lanes(below: lanes))
                        }
                        total += acc.doubleSum()
                        inner = innerEnd
                    }
                    partials[block] = total
                }
            }
            return partials.reduce(0, +)
        }
    }

    /// `forEachRange` that also passes the chunk number, for per-chunk partial results.
    @inline(__always)
    func forEachChunkedRange(count: Int, cost: Int, _ body: (_ chunk: Int, _ range: Range<Int>) -> Void) {
        guard count > 0 else { return }
        parallel.forEachChunk(work: count * cost) { chunk, chunks in
            body(chunk, CPUParallel.range(chunk, of: chunks, count: count, alignment: 16))
        }
    }
}

private extension Int32 {
    var asInt: Int { Int(self) }
}
