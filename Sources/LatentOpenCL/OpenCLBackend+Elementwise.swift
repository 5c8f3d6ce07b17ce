import LatentCore

/// Elementwise ops (elementwise.cl), one work-item per element.
extension OpenCLBackend {
    public func fill(_ destination: BufferView, value: Float) throws {
        guard destination.count > 0 else { return }
        try withLock {
            try enqueue(.elementwise, "fill", global: elementItems(destination.count), [.view(destination), .int(destination.count), .float(value)])
        }
    }

    // Overlapping views of one buffer copy as memmove does (through scratch).
    public func copy(_ source: BufferView, to destination: BufferView) throws {
        try Check.sameCount("copy", ("source", source), ("destination", destination))
        let count = source.count
        guard count > 0 else { return }
        let sourceMem = try memory(of: source), destinationMem = try memory(of: destination)
        if sourceMem == destinationMem && source.offset == destination.offset { return }
        try withLock {
            let overlapping = sourceMem == destinationMem
                && source.offset < destination.offset + count && destination.offset < source.offset + count
            if overlapping {
                let temporary = try scratchBuffer(.columns, floats: count)
                try enqueue(.elementwise, "copy", global: elementItems(count), [.view(source), .mem(temporary), .int(0), .int(count)])
                try enqueue(.elementwise, "copy", global: elementItems(count), [.mem(temporary), .int(0), .view(destination), .int(count)])
            } else {
                try enqueue(.elementwise, "copy", global: elementItems(count), [.view(source), .view(destination), .int(count)])
            }
        }
    }

    public func copyBlocks(_ source: BufferView, sourceStride: Int, to destination: BufferView, destinationStride: Int,
                           blockLength: Int, blockCount: Int) throws {
        let op = "copyBlocks"
        guard blockLength >= 0, blockCount >= 0, sourceStride >= 0, destinationStride >= 0 else {
            throw LatentError.invalidArgument("\(op): lengths, counts and strides must be >= 0")
        }
        guard blockLength > 0, blockCount > 0 else { return }
        for (name, view, stride) in [("source", source, sourceStride), ("destination", destination, destinationStride)] {
            let (last, overflow1) = (blockCount - 1).multipliedReportingOverflow(by: stride)
            let (needed, overflow2) = last.addingReportingOverflow(blockLength)
            guard !overflow1, !overflow2, needed <= view.count else {
                throw LatentError.shape("\(op): \(blockCount) blocks of \(blockLength) at stride \(stride) need \(needed) floats but \(name) has \(view.count)")
            }
        }
        try withLock {
            try enqueue(.elementwise, "copy_blocks", global: [blockLength, blockCount], [
                .view(source), .int(sourceStride), .view(destination), .int(destinationStride), .int(blockLength), .int(blockCount),
            ])
        }
    }

    public func axpby(alpha: Float, x: BufferView, beta: Float, y: BufferView) throws {
        try Check.sameCount("axpby", ("x", x), ("y", y))
        if reproducible { return try reproducibleAxpby(alpha: alpha, x: x, beta: beta, y: y) }
        try withLock {
            try enqueue(.elementwise, "axpby", global: elementItems(x.count), [.float(alpha), .view(x), .float(beta), .view(y), .int(x.count)])
        }
    }

    public func multiply(_ a: BufferView, _ b: BufferView, output: BufferView) throws {
        try Check.sameCount("multiply", ("a", a), ("b", b), ("output", output))
        try withLock {
            try enqueue(.elementwise, "multiply", global: elementItems(a.count), [.view(a), .view(b), .view(output), .int(a.count)])
        }
    }

    public func biasActivationForward(input: BufferView, bias: BufferView?, activation: Activation, output: BufferView,
                                      channels: Int, spatial: Int) throws {
        let op = "biasActivationForward"
        let plane = try Check.product(op, ("channels", channels), ("spatial", spatial))
        try Check.sameCount(op, ("input", input), ("output", output))
        guard input.count % plane == 0 else {
            throw LatentError.shape("\(op): \(input.count) floats are not a whole number of \(channels)x\(spatial) samples")
        }
        if let bias { try Check.count(bias, channels, "bias", op) }
        let (code, slope) = Self.activationCode(activation)
        try withLock {
            let samples = input.count / plane
            try enqueue(.elementwise, "bias_activation_\(code)",
                        global: spatial == 1 ? [elementItems(channels)[0], 1, samples] : [elementItems(spatial)[0], channels, samples], [
                .view(input), .optionalView(bias, placeholder: try placeholder()), .float(slope),
                .view(output), .int(channels), .int(spatial == 1 ? 0 : spatial),
            ])
        }
    }

    public func activationBackward(_ activation: Activation, input: BufferView, output: BufferView,
                                   gradOutput: BufferView, gradInput: BufferView, accumulate: Bool) throws {
        try Check.sameCount("activationBackward", ("input", input), ("output", output),
                            ("gradOutput", gradOutput), ("gradInput", gradInput))
        let (code, slope) = Self.activationCode(activation)
        try withLock {
            try enqueue(.elementwise, "activation_backward_\(code)", global: elementItems(input.count), [
                .float(slope), .view(input), .view(output), .view(gradOutput), .view(gradInput),
                .int(accumulate ? 1 : 0), .int(input.count),
            ])
        }
    }

    public func reparameterize(mean: BufferView, parameter: BufferView, noise: BufferView, output: BufferView,
                               parameterization: GaussianParameterization) throws {
        try Check.sameCount("reparameterize", ("mean", mean), ("parameter", parameter), ("noise", noise), ("output", output))
        try withLock {
            try enqueue(.elementwise, "reparameterize", global: elementItems(mean.count), [
                .view(mean), .view(parameter), .view(noise), .view(output), .int(Self.parameterizationCode(parameterization)),
                .int(mean.count),
            ])
        }
    }

    public func reparameterizeBackward(parameter: BufferView, noise: BufferView, gradOutput: BufferView,
                                       gradMean: BufferView, gradParameter: BufferView,
                                       parameterization: GaussianParameterization, accumulate: Bool) throws {
        try Check.sameCount("reparameterizeBackward", ("parameter", parameter), ("noise", noise), ("gradOutput", gradOutput),
                            ("gradMean", gradMean), ("gradParameter", gradParameter))
        try withLock {
            try enqueue(.elementwise, "reparameterize_backward", global: elementItems(parameter.count), [
                .view(parameter), .view(noise), .view(gradOutput), .view(gradMean), .view(gradParameter),
                .int(Self.parameterizationCode(parameterization)), .int(accumulate ? 1 : 0), .int(parameter.count),
            ])
        }
    }

    public func dropoutForward(input: BufferView, output: BufferView, mask: BufferView, probability: Float,
                               seed: UInt64, counter: UInt64) throws {
        try Check.sameCount("dropoutForward", ("input", input), ("output", output), ("mask", mask))
        guard probability >= 0, probability <= 1 else {
            throw LatentError.invalidArgument("dropoutForward: probability \(probability) is outside [0, 1]")
        }
        let scale: Float = probability < 1 ? 1 / (1 - probability) : 0
        try withLock {
            try enqueue(.elementwise, "dropout", global: [(input.count + 3) / 4], [
                .view(input), .view(output), .view(mask), .float(probability), .float(scale), .ulong(seed), .ulong(counter),
                .int(input.count),
            ])
        }
    }

    static func activationCode(_ activation: Activation) -> (Int, Float) {
        switch activation {
        case .identity: return (0, 0)
        case .relu: return (1, 0)
        case .leakyReLU(let slope): return (2, slope)
        case .sigmoid: return (3, 0)
        case .tanh: return (4, 0)
        case .softplus: return (5, 0)
        }
    }

    static func parameterizationCode(_ parameterization: GaussianParameterization) -> Int {
        switch parameterization {
        case .logVariance: return 0
        case .logStd: return 1
        case .std: return 2
        }
    }
}
