import CLatentSupport
import Dispatch
import Foundation

/// Splits work across the CPU backend's threads (the calling thread and `CPUWorkerPool`'s
/// workers). Work below `minimumWorkPerThread` stays on the calling thread: handing work to
/// a second core costs a few microseconds, more than a small op takes.
public struct CPUParallel: Sendable {
    public let threadCount: Int

    public init(threadCount: Int) {
        self.threadCount = max(1, threadCount)
    }

    /// Threads the machine offers (both cores here), used when `--threads` is not given.
    public static var defaultThreadCount: Int { max(1, ProcessInfo.processInfo.activeProcessorCount) }

    /// Calls `body(chunk, chunkCount)` for `chunk` in `0..<chunkCount`, on up to `threadCount`
    /// threads, each with flush-to-zero on. `chunkCount` is at most `threadCount`, and is 1
    /// when `work` (a rough count of float operations) is small.
    @inline(__always)
    public func forEachChunk(work: Int, minimumWorkPerThread: Int = 32_768,
                             _ body: (_ chunk: Int, _ chunkCount: Int) -> Void) {
        forEachChunk(chunkCount: threads(forWork: work, minimumWorkPerThread: minimumWorkPerThread), body)
    }

    /// Threads worth waking for `work`: at least `minimumWorkPerThread` each, at most `threadCount`.
    @inline(__always)
    func threads(forWork work: Int, minimumWorkPerThread: Int) -> Int {
        Swift.min(threadCount, Swift.max(1, work / Swift.max(1, minimumWorkPerThread)))
    }

    /// Calls `body(chunk, chunkCount)` for exactly `chunkCount` chunks (at least 1), in
    /// parallel when there are several.
    @inline(__always)
    public func forEachChunk(chunkCount: Int, _ body: (_ chunk: Int, _ chunkCount: Int) -> Void) {
        let chunks = Swift.max(1, chunkCount)
        if chunks == 1 {
            latent_enable_flush_to_zero()
            body(0, 1)
            return
        }
        withoutActuallyEscaping(body) { escapable in
            let box = UnsafeSendableClosure(escapable)
            // The spinning workers (see CPUWorkerPool); Dispatch when they are taken or too few.
            if #available(macOS 15.0, *), CPUWorkerPool.shared.run(chunkCount: chunks, box) { return }
            DispatchQueue.concurrentPerform(iterations: chunks) { chunk in
                latent_enable_flush_to_zero()
                box.closure(chunk, chunks)
            }
        }
    }

    /// Calls `body(item)` for every item in `0..<count`, each thread claiming the next
    /// unclaimed item as it finishes one (dynamic scheduling). For work whose items are
    /// independent and many (a few per thread or more): the two vCPUs here often run at
    /// different speeds (two single-threaded SGEMMs at once measured 64 and 43 GFLOP/s), so
    /// equal static halves leave the faster thread waiting for the slower one. Which thread
    /// runs an item never changes what it computes.
    /// With fewer threads than the pool has (`--threads` below the core count) the items are
    /// split into contiguous ranges instead, so that the thread count is honoured.
    @inline(__always)
    public func forEachItem(count: Int, _ body: (_ item: Int) -> Void) {
        guard count > 0 else { return }
        let threads = Swift.min(threadCount, count)
        if threads == 1 {
            latent_enable_flush_to_zero()
            for item in 0..<count { body(item) }
            return
        }
        if #available(macOS 15.0, *), threads == CPUWorkerPool.shared.workers + 1, count <= 0xFFFF {
            // A non-escaping adapter, so that no closure context is allocated per call.
            let claimed = withoutActuallyEscaping({ (item: Int, _: Int) in body(item) }) { escapable in
                CPUWorkerPool.shared.run(chunkCount: count, UnsafeSendableClosure(escapable))
            }
            if claimed { return }
        }
        forEachChunk(chunkCount: threads) { chunk, chunks in
            for item in CPUParallel.range(chunk, of: chunks, count: count) { body(item) }
        }
    }

    /// Calls `body` on contiguous ranges covering `0..<count` (starts at multiples of
    /// `alignment`), in parallel when `work` is worth it. With the whole worker pool the
    /// ranges are about four per thread, claimed by whichever thread is free, so that a
    /// slower vCPU takes fewer; results never depend on which thread runs a range.
    @inline(__always)
    public func forEachBalancedRange(count: Int, work: Int, alignment: Int = 1, minimumWorkPerThread: Int = 32_768,
                                     _ body: (Range<Int>) -> Void) {
        guard count > 0 else { return }
        let busy = threads(forWork: work, minimumWorkPerThread: minimumWorkPerThread)
        var chunks = busy
        if busy > 1, #available(macOS 15.0, *), threadCount == CPUWorkerPool.shared.workers + 1 {
            let units = (count + alignment - 1) / alignment
            chunks = Swift.max(busy, Swift.min(units, busy * 4, work / Swift.max(1, minimumWorkPerThread / 4)))
        }
        forEachChunk(chunkCount: chunks) { chunk, chunkCount in
            let range = CPUParallel.range(chunk, of: chunkCount, count: count, alignment: alignment)
            if !range.isEmpty { body(range) }
        }
    }

    /// Splits `0..<count` into `chunkCount` contiguous ranges, the i-th of which is returned.
    /// `alignment` keeps range starts at multiples (SIMD widths, GEMM panels).
    @inline(__always)
    public static func range(_ chunk: Int, of chunkCount: Int, count: Int, alignment: Int = 1) -> Range<Int> {
        let units = (count + alignment - 1) / alignment
        let start = Swift.min(count, (units * chunk / chunkCount) * alignment)
        let end = Swift.min(count, (units * (chunk + 1) / chunkCount) * alignment)
        return start..<end
    }
}

/// concurrentPerform needs a Sendable closure; the bodies we pass write disjoint ranges of
/// memory, which the compiler cannot see.
struct UnsafeSendableClosure: @unchecked Sendable {
    let closure: (Int, Int) -> Void
    init(_ closure: @escaping (Int, Int) -> Void) { self.closure = closure }
}
