import LatentCore

/// Reductions and losses (reduce.cl, loss.cl). A sum to one element runs in two stages:
/// up to 64 work-groups write partial sums (in double where the device has it) to scratch,
/// then one work-group adds them and writes the scaled result into the output buffer. The
/// number of groups depends only on the size, so results repeat exactly from run to run.
extension OpenCLBackend {
    /// Stage one (`kernel` of `file` with `arguments`, then the partials buffer), then stage
    /// two writing `(sum * scale) / divisor` into `output` (lock held).
    func reduceToScalar(_ file: KernelFile, _ kernel: String, count: Int, arguments: [Argument], output: BufferView,
                        scale: Double = 1, divisor: Double = 1) throws {
        let group = config.reduceGroup
        let groups = Swift.min(64, Swift.max(1, (count + group * 4 - 1) / (group * 4)))
        let partials = try scratchBuffer(.partials, floats: 2 * groups) // room for doubles
        try enqueue(file, kernel, global: [groups * group], local: [group], arguments + [.mem(partials)])
        let finish = file == .loss ? "loss_finish" : "reduce_finish"
        try enqueue(file, finish, global: [group], local: [group], [
            .mem(partials), .int(groups), .ulong(scale.bitPattern), .ulong(divisor.bitPattern),
            .float(Float(scale)), .float(Float(divisor)), .view(output),
        ])
    }

    public func sum(_ x: BufferView, output: BufferView) throws {
        try Check.scalarOutput(output, "sum")
        if reproducible { return try reproducibleSum(x, output: output) }
        try withLock {
            try reduceToScalar(.reduce, "reduce_partials", count: x.count, arguments: [.view(x), .int(x.count), .int(0)], output: output)
        }
    }

    public func countNonFinite(_ x: BufferView, output: BufferView) throws {
        try Check.scalarOutput(output, "countNonFinite")
        try withLock {
            try reduceToScalar(.reduce, "reduce_partials", count: x.count, arguments: [.view(x), .int(x.count), .int(1)], output: output)
        }
    }

    public func channelSum(input: BufferView, output: BufferView, batch: Int, channels: Int, spatial: Int, accumulate: Bool) throws {
        let op = "channelSum"
        let total = try Check.product(op, ("batch", batch), ("channels", channels), ("spatial", spatial))
        try Check.count(input, total, "input", op)
        try Check.count(output, channels, "output", op)
        if reproducible {
            return try reproducibleChannelSum(input: input, output: output, batch: batch, channels: channels,
                                              spatial: spatial, accumulate: accumulate)
        }
        try withLock {
            if spatial == 1 {
                try enqueue(.reduce, "channel_sum_columns", global: [channels], [
                    .view(input), .int(batch), .int(channels), .view(output), .int(accumulate ? 1 : 0),
                ])
                return
            }
            if config.gemm == .block {
                // CPU-class devices: a work-item per channel (see reduce.cl).
                try enqueue(.reduce, "channel_sum_rows", global: [channels], [
                    .view(input), .int(batch), .int(channels), .int(spatial), .view(output), .int(accumulate ? 1 : 0),
                ])
                return
            }
            try enqueue(.reduce, "channel_sum", global: [channels * config.reduceGroup], local: [config.reduceGroup], [
                .view(input), .int(batch), .int(channels), .int(spatial), .view(output), .int(accumulate ? 1 : 0),
            ])
        }
    }

    public func lossForward(_ kind: LossKind, prediction: BufferView, target: BufferView, output: BufferView,
                            reduction: Reduction) throws {
        try Check.sameCount("lossForward", ("prediction", prediction), ("target", target))
        try Check.scalarOutput(output, "lossForward")
        let count = prediction.count
        if reproducible {
            return try reproducibleLossForward(kind, prediction: prediction, target: target, output: output, reduction: reduction)
        }
        try withLock {
            try reduceToScalar(.loss, "loss_partials_\(Self.lossCode(kind))", count: count,
                               arguments: [.view(prediction), .view(target), .int(count)],
                               output: output, divisor: reduction == .mean ? Double(count) : 1)
        }
    }

    public func lossBackward(_ kind: LossKind, prediction: BufferView, target: BufferView, gradPrediction: BufferView,
                             reduction: Reduction, scale: Float, accumulate: Bool) throws {
        try Check.sameCount("lossBackward", ("prediction", prediction), ("target", target), ("gradPrediction", gradPrediction))
        let count = prediction.count
        guard count > 0 else { return }
        let factor = reduction == .mean ? scale / Float(count) : scale
        if reproducible {
            return try reproducibleLossBackward(kind, prediction: prediction, target: target, gradPrediction: gradPrediction,
                                                reduction: reduction, scale: scale, accumulate: accumulate)
        }
        try withLock {
            try enqueue(.loss, "loss_backward", global: elementItems(count), [
                .int(Self.lossCode(kind)), .view(prediction), .view(target), .view(gradPrediction), .float(factor),
                .int(accumulate ? 1 : 0), .int(count),
            ])
        }
    }

    public func klDivergence(mean: BufferView, parameter: BufferView, parameterization: GaussianParameterization,
                             output: BufferView) throws {
        try Check.sameCount("klDivergence", ("mean", mean), ("parameter", parameter))
        try Check.scalarOutput(output, "klDivergence")
        let kind: Int, scale: Double
        switch parameterization {
        case .logVariance: (kind, scale) = (4, -0.5)
        case .logStd: (kind, scale) = (5, -0.5)
        case .std: (kind, scale) = (6, 1)
        }
        if reproducible {
            return try reproducibleKLDivergence(mean: mean, parameter: parameter, parameterization: parameterization, output: output)
        }
        try withLock {
            try reduceToScalar(.loss, "loss_partials_\(kind)", count: mean.count,
                               arguments: [.view(mean), .view(parameter), .int(mean.count)],
                               output: output, scale: scale)
        }
    }

    public func klDivergenceBackward(mean: BufferView, parameter: BufferView, parameterization: GaussianParameterization,
                                     scale: Float, gradMean: BufferView, gradParameter: BufferView, accumulate: Bool) throws {
        try Check.sameCount("klDivergenceBackward", ("mean", mean), ("parameter", parameter),
                            ("gradMean", gradMean), ("gradParameter", gradParameter))
        try withLock {
            try enqueue(.loss, "kl_backward", global: elementItems(mean.count), [
                .int(Self.parameterizationCode(parameterization)), .view(mean), .view(parameter), .float(scale),
                .view(gradMean), .view(gradParameter), .int(accumulate ? 1 : 0), .int(mean.count),
            ])
        }
    }

    public func nearestCodebookEntry(input: BufferView, codebook: BufferView, indices: BufferView,
                                     rows: Int, entries: Int, width: Int) throws {
        let op = "nearestCodebookEntry"
        guard rows >= 0 else { throw LatentError.invalidArgument("\(op): rows must be >= 0, got \(rows)") }
        let tableSize = try Check.product(op, ("entries", entries), ("width", width))
        guard entries <= 1 << 24 else {
            throw LatentError.invalidArgument("\(op): \(entries) entries cannot all be stored exactly as Float indices")
        }
        try Check.count(codebook, tableSize, "codebook", op)
        try Check.count(indices, rows, "indices", op)
        let (inputSize, overflow) = rows.multipliedReportingOverflow(by: width)
        guard !overflow else { throw LatentError.invalidArgument("\(op): sizes overflow") }
        try Check.count(input, inputSize, "input", op)
        if reproducible {
            return try reproducibleNearestEntry(input: input, codebook: codebook, indices: indices, rows: rows,
                                                entries: entries, width: width)
        }
        try withLock {
            try enqueue(.reduce, "nearest_codebook", global: [rows], [
                .view(input), .view(codebook), .view(indices), .int(rows), .int(entries), .int(width),
            ])
        }
    }

    /// Indices live on the device, so they are not checked on the host as the CPU backend
    /// does: an index that is not a row of the table gathers zeros and scatters nothing.
    public func gatherRows(table: BufferView, indices: BufferView, output: BufferView, rows: Int, width: Int) throws {
        let op = "gatherRows"
        let tableRows = try rowIndexCheck(op, table: table, indices: indices, rows: rows, width: width)
        try Check.count(output, rows * width, "output", op)
        try withLock {
            try enqueue(.reduce, "gather_rows", global: [width, rows], [
                .view(table), .int(tableRows), .view(indices), .view(output), .int(rows), .int(width),
            ])
        }
    }

    public func scatterAddRows(gradOutput: BufferView, indices: BufferView, gradTable: BufferView, rows: Int, width: Int) throws {
        let op = "scatterAddRows"
        let tableRows = try rowIndexCheck(op, table: gradTable, indices: indices, rows: rows, width: width)
        try Check.count(gradOutput, rows * width, "gradOutput", op)
        try withLock {
            try enqueue(.reduce, "scatter_add_rows", global: [width], [
                .view(gradOutput), .view(indices), .view(gradTable), .int(tableRows), .int(rows), .int(width),
            ])
        }
    }

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
        try Check.count(indices, rows, "indices", op)
        return table.count / width
    }

    static func lossCode(_ kind: LossKind) -> Int {
        switch kind {
        case .bce: return 0
        case .bceWithLogits: return 1
        case .mse: return 2
        case .l1: return 3
        }
    }
}
