import LatentCore

/// Random fills (random.cl): Philox4x32-10, one block of four values per work-item, the
/// same stream as `Philox` and the CPU backend, bit for bit.
extension OpenCLBackend {
    public func fillUniform(_ destination: BufferView, low: Float, high: Float, seed: UInt64, counter: UInt64) throws {
        try withLock {
            try enqueue(.random, "fill_uniform", global: [(destination.count + 3) / 4], [
                .view(destination), .int(destination.count), .float(low), .float(high - low), .ulong(seed), .ulong(counter),
            ])
        }
    }

    public func fillNormal(_ destination: BufferView, mean: Float, std: Float, seed: UInt64, counter: UInt64) throws {
        try withLock {
            try enqueue(.random, "fill_normal", global: [(destination.count + 3) / 4], [
                .view(destination), .int(destination.count), .float(mean), .float(std), .ulong(seed), .ulong(counter),
            ])
        }
    }

    public func fillBernoulli(probabilities: BufferView, output: BufferView, seed: UInt64, counter: UInt64) throws {
        try Check.sameCount("fillBernoulli", ("probabilities", probabilities), ("output", output))
        try withLock {
            try enqueue(.random, "fill_bernoulli", global: [(output.count + 3) / 4], [
                .view(probabilities), .view(output), .int(output.count), .ulong(seed), .ulong(counter),
            ])
        }
    }
}
