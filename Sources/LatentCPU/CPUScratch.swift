import Foundation

/// Float scratch memory that outlives the op that takes it: buffers go back to the pool and
/// the next op gets one that is already mapped, so a training step allocates (and
/// page-faults) nothing after the first. 64-byte aligned. Safe to use from several
/// threads; concurrent ops get distinct buffers.
final class ScratchPool: @unchecked Sendable {
    private let lock = NSLock()
    private var free: [(pointer: UnsafeMutablePointer<Float>, capacity: Int)] = []
    private var taken: [UnsafeMutablePointer<Float>: Int] = [:]

    static let shared = ScratchPool()

    /// A buffer of at least `count` floats (contents undefined).
    func take(_ count: Int) -> UnsafeMutablePointer<Float> {
        let wanted = Swift.max(16, count)
        lock.lock()
        defer { lock.unlock() }
        // The smallest free buffer that fits, so that a small request leaves the big ones.
        var best: Int?
        for (index, entry) in free.enumerated() where entry.capacity >= wanted {
            if best.map({ free[$0].capacity > entry.capacity }) ?? true { best = index }
        }
        if let best {
            let entry = free.remove(at: best)
            taken[entry.pointer] = entry.capacity
            return entry.pointer
        }
        let raw = UnsafeMutableRawPointer.allocate(byteCount: wanted * MemoryLayout<Float>.stride, alignment: 64)
        let pointer = raw.bindMemory(to: Float.self, capacity: wanted)
        taken[pointer] = wanted
        return pointer
    }

    func give(_ pointer: UnsafeMutablePointer<Float>) {
        lock.lock()
        defer { lock.unlock() }
        guard let capacity = taken.removeValue(forKey: pointer) else { return }
        free.append((pointer, capacity))
    }

    /// Runs `body` with a buffer of `count` floats.
    @inline(__always)
    func with<T>(_ count: Int, _ body: (UnsafeMutablePointer<Float>) throws -> T) rethrows -> T {
        let pointer = take(count)
        defer { give(pointer) }
        return try body(pointer)
    }
}
