import LatentCore

/// Host memory for the CPU backend, 64-byte aligned so that SIMD16 loads never split a
/// cache line.
public final class CPUBuffer: DeviceBuffer, @unchecked Sendable {
    public let count: Int
    public let pointer: UnsafeMutablePointer<Float>

    init(count: Int) {
        self.count = count
        let raw = UnsafeMutableRawPointer.allocate(byteCount: Swift.max(count, 1) * MemoryLayout<Float>.stride, alignment: 64)
        pointer = raw.bindMemory(to: Float.self, capacity: Swift.max(count, 1))
        pointer.initialize(repeating: 0, count: Swift.max(count, 1))
    }

    deinit {
        pointer.deallocate()
    }
}

extension BufferView {
    /// The view's first float, for CPU kernels. Throws for a view of another backend's buffer.
    @inline(__always)
    func cpuPointer() throws -> UnsafeMutablePointer<Float> {
        guard let buffer = buffer as? CPUBuffer else {
            throw LatentError.backend("a buffer of another backend was passed to the CPU backend")
        }
        return buffer.pointer + offset
    }
}
