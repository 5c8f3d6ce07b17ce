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
        let chunks = Swift.min(threadCount, Swift.max(1, work / Swift.max(1, minimumWorkPerThread)))
        forEachChunk(chunkCount: chunks, body)
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
