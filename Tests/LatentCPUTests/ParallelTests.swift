import XCTest
import Synchronization
@testable import LatentCPU

/// The work-sharing primitives under the CPU backend's kernels.
final class ParallelTests: XCTestCase {
    /// `forEachItem` runs every item exactly once, whatever the thread count (the pool's
    /// dynamic claiming when all cores are asked for, contiguous ranges with fewer threads,
    /// one thread below that), including more items than the pool's 16-bit chunk field holds.
    func testForEachItemRunsEveryItemOnce() {
        for threads in [1, 2, 3, CPUParallel.defaultThreadCount] {
            let parallel = CPUParallel(threadCount: threads)
            for count in [0, 1, 2, 3, 7, 64, 1000, 70_000] {
                let visits = UnsafeMutablePointer<Int>.allocate(capacity: Swift.max(1, count))
                visits.initialize(repeating: 0, count: Swift.max(1, count))
                defer { visits.deallocate() }
                parallel.forEachItem(count: count) { item in visits[item] += 1 }
                let wrong = (0..<count).filter { visits[$0] != 1 }
                XCTAssertEqual(wrong.count, 0, "threads \(threads), count \(count): items \(wrong.prefix(5)) ran \(wrong.prefix(5).map { visits[$0] }) times")
            }
        }
    }

    /// With two threads and many items both threads take part (on a machine with two or more
    /// cores): the items are claimed one at a time, not all by the caller.
    func testForEachItemSharesTheWork() throws {
        try XCTSkipIf(CPUParallel.defaultThreadCount < 2, "one core")
        let parallel = CPUParallel(threadCount: CPUParallel.defaultThreadCount)
        let caller = pthread_self()
        let elsewhere = Atomic<Int>(0)
        parallel.forEachItem(count: 256) { _ in
            if pthread_equal(pthread_self(), caller) == 0 { elsewhere.add(1, ordering: .relaxed) }
            // Long enough (tens of microseconds) that a spinning worker claims some items.
            var x: Float = 1
            for i in 0..<20_000 { x = x * 1.000001 + Float(i & 1) }
            if x.isNaN { XCTFail("unreachable") }
        }
        XCTAssertGreaterThan(elsewhere.load(ordering: .relaxed), 0)
    }
}
