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

    /// `forEachBalancedRange` covers every index exactly once with ranges that start at
    /// multiples of the alignment, for small work (one range on the caller) and large work
    /// (several ranges per thread), at every thread count.
    func testForEachBalancedRangeCoversEveryIndexOnce() {
        for threads in [1, 2, 3, CPUParallel.defaultThreadCount] {
            let parallel = CPUParallel(threadCount: threads)
            for count in [0, 1, 15, 16, 17, 100, 1000, 70_000] {
                for alignment in [1, 16] {
                    for work in [1, count * 1000] {
                        let visits = UnsafeMutablePointer<Int>.allocate(capacity: Swift.max(1, count))
                        visits.initialize(repeating: 0, count: Swift.max(1, count))
                        defer { visits.deallocate() }
                        let misaligned = Atomic<Int>(0), ranges = Atomic<Int>(0)
                        parallel.forEachBalancedRange(count: count, work: work, alignment: alignment) { range in
                            if range.lowerBound % alignment != 0 { misaligned.add(1, ordering: .relaxed) }
                            ranges.add(1, ordering: .relaxed)
                            for i in range { visits[i] += 1 }
                        }
                        let wrong = (0..<count).filter { visits[$0] != 1 }
                        let label = "threads \(threads), count \(count), alignment \(alignment), work \(work)"
                        XCTAssertEqual(wrong.count, 0, "\(label): indices \(wrong.prefix(5)) visited \(wrong.prefix(5).map { visits[$0] }) times")
                        XCTAssertEqual(misaligned.load(ordering: .relaxed), 0, label)
                        if work == 1 { XCTAssertLessThanOrEqual(ranges.load(ordering: .relaxed), 1, "\(label): small work stays in one range") }
                    }
                }
            }
        }
    }
}
