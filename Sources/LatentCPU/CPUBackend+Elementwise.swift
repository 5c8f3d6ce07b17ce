import Foundation
import LatentCore

/// Elementwise ops: memory-bound loops over SIMD16 vectors, split across the threads
/// when a view is large. Every op may run in place (output == input): each element is
/// read before it is written.
extension CPUBackend {
    // destination (n) = value
    public func fill(_ destination: BufferView, value: Float) throws {
        let d = try destination.cpuPointer()
        let v = Vec(repeating: value)
        forEachRange(count: destination.count) { range in
            vectorLoop(range) { i, lanes in v.store(d + i, lanes) }
        }
    }

    // source (n) -> destination (n); overlapping views copy as memmove does
    public func copy(_ source: BufferView, to destination: BufferView) throws {
        try CPUCheck.sameCount("copy", ("source", source), ("destination", destination))
        let s = try source.cpuPointer(), d = try destination.cpuPointer()
        let count = source.count
        guard count > 0, s != d else { return }
        let overlapping = s < d + count && d < s + count
        if overlapping {
            memmove(d, s, count * MemoryLayout<Float>.stride)
            return
        }
        forEachRange(count: count) { range in
            (d + range.lowerBound).update(from: s + range.lowerBound, count: range.count)
        }
    }

    // blockCount runs of blockLength floats, source[i * sourceStride ...] -> destination[i * destinationStride ...];
    // the spans must not overlap
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
        let s = try source.cpuPointer(), d = try destination.cpuPointer()
        // Blocks are copied in parallel, so the two spans must not share memory.
        let sourceEnd = s + (blockCount - 1) * sourceStride + blockLength
        let destinationEnd = d + (blockCount - 1) * destinationStride + blockLength
        guard sourceEnd <= d || destinationEnd <= s else {
            throw LatentError.invalidArgument("\(op): source and destination overlap")
        }
        forEachItemRange(count: blockCount, costPerItem: blockLength) { blocks in
            for block in blocks {
                (d + block * destinationStride).update(from: s + block * sourceStride, count: blockLength)
            }
        }
    }

    // y (n) = alpha * x (n) + beta * y (n); beta == 0 does not read y (BLAS convention)
    public func axpby(alpha: Float, x: BufferView, beta: Float, y: BufferView) throws {
        try CPUCheck.sameCount("axpby", ("x", x), ("y", y))
        let xp = try x.cpuPointer(), yp = try y.cpuPointer()
        if reproducible { return reproducibleAxpby(alpha: alpha, x: xp, beta: beta, y: yp, count: x.count) }
        forEachRange(count: x.count, cost: 2) { range in
            if beta == 0 {
                vectorLoop(range) { i, lanes in (alpha * Vec.load(xp + i, lanes)).store(yp + i, lanes) }
            } else {
                vectorLoop(range) { i, lanes in
                    (alpha * Vec.load(xp + i, lanes) + beta * Vec.load(yp + i, lanes)).store(yp + i, lanes)
                }
            }
        }
    }

    // output (n) = a (n) * b (n)
    public func multiply(_ a: BufferView, _ b: BufferView, output: BufferView) throws {
        try CPUCheck.sameCount("multiply", ("a", a), ("b", b), ("output", output))
        let ap = try a.cpuPointer(), bp = try b.cpuPointer(), o = try output.cpuPointer()
        forEachRange(count: a.count, cost: 2) { range in
            vectorLoop(range) { i, lanes in (Vec.load(ap + i, lanes) * Vec.load(bp + i, lanes)).store(o + i, lanes) }
        }
    }

    // input (N, C, S) + bias (C) -> activation -> output (N, C, S)
    public func biasActivationForward(input: BufferView, bias: BufferView?, activation: Activation, output: BufferView,
                                      channels: Int, spatial: Int) throws {
        let op = "biasActivationForward"
        let plane = try CPUCheck.product(op, ("channels", channels), ("spatial", spatial))
        try CPUCheck.sameCount(op, ("input", input), ("output", output))
        guard input.count % plane == 0 else {
            throw LatentError.shape("\(op): \(input.count) floats are not a whole number of \(channels)x\(spatial) samples")
        }
        if let bias { try CPUCheck.count(bias, channels, "bias", op) }
        let x = try input.cpuPointer(), y = try output.cpuPointer()
        let b = try bias?.cpuPointer()
        let cost = activationCost(activation)
        guard let b else {
            forEachRange(count: input.count, cost: cost) { range in
                vectorLoop(range) { i, lanes in Self.activate(Vec.load(x + i, lanes), activation).store(y + i, lanes) }
            }
            return
        }
        if spatial < 16 {
            // Short rows (fully connected layers: spatial 1): vectorise along the channels of a sample.
            forEachItemRange(count: input.count / plane, costPerItem: plane * cost) { samples in
                for n in samples {
                    let base = n * plane
                    vectorLoop(0..<plane) { i, lanes in
                        let v = Vec.load(x + base + i, lanes) + biasVector(b, start: i, lanes: lanes, spatial: spatial)
                        Self.activate(v, activation).store(y + base + i, lanes)
                    }
                }
            }
            return
        }
        // One row per (n, c), all of it shifted by bias[c].
        forEachItemRange(count: input.count / spatial, costPerItem: spatial * cost) { rowRange in
            for row in rowRange {
                let base = row * spatial
                let shift = Vec(repeating: b[row % channels])
                vectorLoop(0..<spatial) { i, lanes in
                    Self.activate(Vec.load(x + base + i, lanes) + shift, activation).store(y + base + i, lanes)
                }
            }
        }
    }

    // gradInput (n) (+)= gradOutput (n) * activation'(input or output)
    public func activationBackward(_ activation: Activation, input: BufferView, output: BufferView,
                                   gradOutput: BufferView, gradInput: BufferView, accumulate: Bool) throws {
        try CPUCheck.sameCount("activationBackward", ("input", input), ("output", output),
                               ("gradOutput", gradOutput), ("gradInput", gradInput))
        let x = try input.cpuPointer(), y = try output.cpuPointer()
        let g = try gradOutput.cpuPointer(), gi = try gradInput.cpuPointer()
        forEachRange(count: input.count, cost: activationCost(activation) + 2) { range in
            vectorLoop(range) { i, lanes in
                let grad = Vec.load(g + i, lanes)
                var result: Vec
                switch activation {
                case .identity:
                    result = grad
                case .relu:
                    // PyTorch's threshold_backward on the result: 0 where output <= 0.
                    result = grad.replacing(with: 0, where: Vec.load(y + i, lanes) .<= 0)
                case .leakyReLU(let slope):
                    // PyTorch: input > 0 ? grad : grad * slope.
                    result = grad.replacing(with: grad * slope, where: .!(Vec.load(x + i, lanes) .> 0))
                case .sigmoid:
                    let out = Vec.load(y + i, lanes)
                    result = grad * (1 - out) * out
                case .tanh:
                    // PyTorch's kernel, contracted by its compiler: grad * fma(-y, y, 1).
                    let out = Vec.load(y + i, lanes)
                    result = grad * Vec(repeating: 1).addingProduct(-out, out)
                case .softplus:
                    // PyTorch: z = exp(x); x > 20 ? grad : grad * z / (z + 1).
                    let xv = Vec.load(x + i, lanes)
                    let z = VMath.exp(xv)
                    result = (grad * z / (z + 1)).replacing(with: grad, where: xv .> 20)
                }
                if accumulate { result += Vec.load(gi + i, lanes) }
                result.store(gi + i, lanes)
            }
        }
    }

    // output (n) = mean (n) + std(parameter (n)) * noise (n)
    public func reparameterize(mean: BufferView, parameter: BufferView, noise: BufferView, output: BufferView,
                               parameterization: GaussianParameterization) throws {
        try CPUCheck.sameCount("reparameterize", ("mean", mean), ("parameter", parameter), ("noise", noise), ("output", output))
        let mu = try mean.cpuPointer(), p = try parameter.cpuPointer(), e = try noise.cpuPointer(), o = try output.cpuPointer()
        forEachRange(count: mean.count, cost: 8) { range in
            vectorLoop(range) { i, lanes in
                let std = Self.standardDeviation(Vec.load(p + i, lanes), parameterization)
                (Vec.load(mu + i, lanes) + Vec.load(e + i, lanes) * std).store(o + i, lanes)
            }
        }
    }

    // gradMean (n) (+)= gradOutput; gradParameter (n) (+)= gradOutput * noise * dstd/dparameter
    public func reparameterizeBackward(parameter: BufferView, noise: BufferView, gradOutput: BufferView,
                                       gradMean: BufferView, gradParameter: BufferView,
                                       parameterization: GaussianParameterization, accumulate: Bool) throws {
        try CPUCheck.sameCount("reparameterizeBackward", ("parameter", parameter), ("noise", noise), ("gradOutput", gradOutput),
                               ("gradMean", gradMean), ("gradParameter", gradParameter))
        let p = try parameter.cpuPointer(), e = try noise.cpuPointer(), g = try gradOutput.cpuPointer()
        let gm = try gradMean.cpuPointer(), gp = try gradParameter.cpuPointer()
        forEachRange(count: parameter.count, cost: 10) { range in
            vectorLoop(range) { i, lanes in
                let grad = Vec.load(g + i, lanes)
                let gradStd = grad * Vec.load(e + i, lanes)
                var gradParam: Vec
                switch parameterization {
                case .logVariance: gradParam = gradStd * VMath.exp(0.5 * Vec.load(p + i, lanes)) * 0.5
                case .logStd: gradParam = gradStd * VMath.exp(Vec.load(p + i, lanes))
                case .std: gradParam = gradStd
                }
                var gradMu = grad
                if accumulate {
                    gradMu += Vec.load(gm + i, lanes)
                    gradParam += Vec.load(gp + i, lanes)
                }
                gradMu.store(gm + i, lanes)
                gradParam.store(gp + i, lanes)
            }
        }
    }

    /// `std` from the encoder's second head.
    @inline(__always)
    static func standardDeviation(_ p: Vec, _ parameterization: GaussianParameterization) -> Vec {
        switch parameterization {
        case .logVariance: return VMath.exp(0.5 * p)
        case .logStd: return VMath.exp(p)
        case .std: return p
        }
    }

    @inline(__always)
    static func activate(_ v: Vec, _ activation: Activation) -> Vec {
        switch activation {
        case .identity: return v
        case .relu: return v.replacing(with: 0, where: v .< 0)
        case .leakyReLU(let slope): return v.replacing(with: v * slope, where: .!(v .> 0))
        case .sigmoid: return VMath.sigmoid(v)
        case .tanh: return VMath.tanh(v)
        case .softplus: return VMath.softplus(v)
        }
    }

    func activationCost(_ activation: Activation) -> Int {
        switch activation {
        case .identity, .relu, .leakyReLU: return 1
        case .sigmoid, .tanh: return 12
        case .softplus: return 24
        }
    }
}

/// Bias values for flat positions `start ..< start + lanes` of one sample (channel `position / spatial`).
@inline(__always)
private func biasVector(_ bias: UnsafeMutablePointer<Float>, start: Int, lanes: Int, spatial: Int) -> Vec {
    if spatial == 1 { return Vec.load(bias + start, lanes) }
    var v = Vec()
    for lane in 0..<lanes { v[lane] = bias[(start + lane) / spatial] }
    return v
}
