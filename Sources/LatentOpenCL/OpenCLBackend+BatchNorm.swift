import LatentCore

/// Batch normalisation (batchnorm.cl): one work-group per channel for the statistics and
/// the backward sums, with the normalisation fused into the same kernel.
extension OpenCLBackend {
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
        guard batch * spatial > 1 else {
            throw LatentError.invalidArgument("\(op): expected more than 1 value per channel when training, got \(batch * spatial)")
        }
        // PyTorch's momentum is a Python float (decimal), eps a float32 widened to double.
        let m = decimalDouble(momentum), eps = Double(epsilon)
        if reproducible {
            return try reproducibleBatchNormTraining(input: input, output: output, gamma: gamma, beta: beta,
                                                     runningMean: runningMean, runningVariance: runningVariance,
                                                     savedMean: savedMean, savedInverseStd: savedInverseStd, batch: batch,
                                                     channels: channels, spatial: spatial, momentum: m, epsilon: eps)
        }
        try withLock {
            // CPU-class devices: a work-item per channel (see batchnorm.cl), fully connected features apart.
            let perChannel = config.gemm == .block
            let name = perChannel ? (spatial == 1 ? "batchnorm_train_features" : "batchnorm_train_channels") : "batchnorm_train"
            try enqueue(.batchnorm, name,
                        global: [channels * (perChannel ? 1 : config.reduceGroup)], local: perChannel ? nil : [config.reduceGroup], [
                .view(input), .view(output), .view(gamma), .view(beta), .view(runningMean), .view(runningVariance),
                .view(savedMean), .view(savedInverseStd), .int(batch), .int(channels), .int(spatial),
                .ulong(m.bitPattern), .float(Float(m)), .ulong(eps.bitPattern), .float(epsilon),
            ])
        }
    }

    public func batchNormForwardInference(input: BufferView, output: BufferView, gamma: BufferView, beta: BufferView,
                                          runningMean: BufferView, runningVariance: BufferView,
                                          batch: Int, channels: Int, spatial: Int, epsilon: Float) throws {
        try checkBatchNorm("batchNormForwardInference", batch: batch, channels: channels, spatial: spatial,
                           data: [("input", input), ("output", output)],
                           perChannel: [("gamma", gamma), ("beta", beta), ("runningMean", runningMean),
                                        ("runningVariance", runningVariance)])
        let eps = Double(epsilon)
        if reproducible {
            return try reproducibleBatchNormInference(input: input, output: output, gamma: gamma, beta: beta,
                                                      runningMean: runningMean, runningVariance: runningVariance,
                                                      batch: batch, channels: channels, spatial: spatial, epsilon: eps)
        }
        try withLock {
            try enqueue(.batchnorm, "batchnorm_infer", global: [input.count], [
                .view(input), .view(output), .view(gamma), .view(beta), .view(runningMean), .view(runningVariance),
                .int(channels), .int(spatial), .int(input.count), .ulong(eps.bitPattern), .float(epsilon),
            ])
        }
    }

    public func batchNormBackward(gradOutput: BufferView, input: BufferView, gamma: BufferView,
                                  savedMean: BufferView, savedInverseStd: BufferView,
                                  gradInput: BufferView, gradGamma: BufferView, gradBeta: BufferView,
                                  batch: Int, channels: Int, spatial: Int, accumulate: Bool) throws {
        try checkBatchNorm("batchNormBackward", batch: batch, channels: channels, spatial: spatial,
                           data: [("gradOutput", gradOutput), ("input", input), ("gradInput", gradInput)],
                           perChannel: [("gamma", gamma), ("savedMean", savedMean), ("savedInverseStd", savedInverseStd),
                                        ("gradGamma", gradGamma), ("gradBeta", gradBeta)])
        if reproducible {
            return try reproducibleBatchNormBackward(gradOutput: gradOutput, input: input, gamma: gamma, savedMean: savedMean,
                                                     savedInverseStd: savedInverseStd, gradInput: gradInput, gradGamma: gradGamma,
                                                     gradBeta: gradBeta, batch: batch, channels: channels, spatial: spatial,
                                                     accumulate: accumulate)
        }
        try withLock {
            let perChannel = config.gemm == .block
            let name = perChannel ? (spatial == 1 ? "batchnorm_backward_features" : "batchnorm_backward_channels") : "batchnorm_backward"
            try enqueue(.batchnorm, name,
                        global: [channels * (perChannel ? 1 : config.reduceGroup)], local: perChannel ? nil : [config.reduceGroup], [
                .view(gradOutput), .view(input), .view(gamma), .view(savedMean), .view(savedInverseStd),
                .view(gradInput), .view(gradGamma), .view(gradBeta), .int(batch), .int(channels), .int(spatial),
                .int(accumulate ? 1 : 0),
            ])
        }
    }

    private func checkBatchNorm(_ op: String, batch: Int, channels: Int, spatial: Int,
                                data: [(String, BufferView)], perChannel: [(String, BufferView)]) throws {
        let total = try Check.product(op, ("batch", batch), ("channels", channels), ("spatial", spatial))
        for (name, view) in data { try Check.count(view, total, name, op) }
        for (name, view) in perChannel { try Check.count(view, channels, name, op) }
    }
}
