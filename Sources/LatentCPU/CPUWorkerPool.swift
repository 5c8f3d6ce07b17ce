import CLatentSupport
import Foundation
import Synchronization

/// The worker threads behind `CPUParallel.forEachChunk`: one fewer than the machine's cores
/// (the calling thread works too), started on first use and kept for the process.
///
/// A training step is a few hundred ops in quick succession, each with one or more parallel
/// regions. `DispatchQueue.concurrentPerform` puts its workers to sleep between them, and
/// waking one costs tens of microseconds here, more than a small op's whole work (a beta-VAE
/// convolution took longer on two threads than on one). These workers spin for a while
/// (`spinWindow`) after each job, so the next region of the same step starts at once, and
/// then sleep on a condition variable, so an idle process costs nothing.
///
/// A job is published through one atomic word, `ticket` = generation (32 bits) | chunk
/// count (16) | next chunk (16). A thread claims chunk `next` by a compare-exchange that
/// also checks the generation, so a worker that wakes late can never run a chunk of a job
/// that has finished; the job's closure is read only after a successful claim, and the
/// publisher waits until every claimed chunk has finished before it returns (and before the
/// closure goes out of scope).
/// (`Synchronization.Atomic` needs macOS 15; on older macOS, Dispatch runs every region.)
@available(macOS 15.0, *)
final class CPUWorkerPool: @unchecked Sendable {
    /// `LATENT_CPU_WORKERS=dispatch` leaves every parallel region to Dispatch (for comparisons).
    static let shared = CPUWorkerPool(workers: ProcessInfo.processInfo.environment["LATENT_CPU_WORKERS"] == "dispatch"
                                          ? 0 : max(0, ProcessInfo.processInfo.activeProcessorCount - 1))

    let workers: Int
    private let ticket = Atomic<Int>(0)
    private let remaining = Atomic<Int>(0)
    private let busy = Atomic<Bool>(false)
    private let sleepers = Atomic<Int>(0)
    private let started = Atomic<Bool>(false)
    /// The published job's body; valid while its chunks run.
    private var job: UnsafeSendableClosure?
    private let mutex: UnsafeMutablePointer<pthread_mutex_t>
    private let condition: UnsafeMutablePointer<pthread_cond_t>

    /// How long a worker spins after a job before it sleeps, in nanoseconds: a time rather
    /// than a count of loads, whose duration depends on the core. With 40,000 loads (estimated at tens of
    /// microseconds) the worker slept between the parallel regions of beta-vae's 1.4 ms steps
    /// whenever the host slowed the process (17-22 thousand context switches a second); with a
    /// millisecond it stays awake through a step (80-600 switches in 1,000 steps); in two
    /// alternating rounds that both caught a slow phase, 1.10x and 1.12x faster (2026-12-04, Zen 5).
    /// `LATENT_CPU_SPIN_US` overrides (measuring).
    static let spinWindow: UInt64 = ProcessInfo.processInfo.environment["LATENT_CPU_SPIN_US"].flatMap(UInt64.init).map { $0 * 1000 }
        ?? 1_000_000

    init(workers: Int) {
        self.workers = workers
        mutex = .allocate(capacity: 1)
        condition = .allocate(capacity: 1)
        pthread_mutex_init(mutex, nil)
        pthread_cond_init(condition, nil)
    }

    private static func generation(_ ticket: Int) -> Int { ticket >> 32 }
    private static func chunks(_ ticket: Int) -> Int { (ticket >> 16) & 0xFFFF }
    private static func next(_ ticket: Int) -> Int { ticket & 0xFFFF }

    /// Runs `body(chunk, chunkCount)` for every chunk on the calling thread and the workers;
    /// each thread claims the next unclaimed chunk when it finishes one, so with more chunks
    /// than threads a faster core takes more of them.
    /// Returns false without running anything when the pool cannot take the job (another
    /// thread's job is in flight, too many chunks, no workers): the caller falls back.
    func run(chunkCount: Int, _ body: UnsafeSendableClosure) -> Bool {
        guard workers > 0, chunkCount >= 2, chunkCount <= 0xFFFF else { return false }
        guard busy.compareExchange(expected: false, desired: true, ordering: .acquiring).exchanged else { return false }
        startWorkersOnce()
        job = body
        remaining.store(chunkCount, ordering: .relaxed)
        let generation = (Self.generation(ticket.load(ordering: .relaxed)) + 1) & 0x7FFF_FFFF
        let published = generation << 32 | chunkCount << 16
        ticket.store(published, ordering: .sequentiallyConsistent)
        if sleepers.load(ordering: .sequentiallyConsistent) > 0 {
            pthread_mutex_lock(mutex)
            pthread_cond_broadcast(condition)
            pthread_mutex_unlock(mutex)
        }
        work(generation: generation)
        // The workers finish their chunks; on a busy machine one may have been descheduled,
        // so after a short spin give the core away rather than burn it.
        var spins = 0
        while remaining.load(ordering: .acquiring) > 0 {
            spins += 1
            if spins > 2_000 { sched_yield() }
        }
        job = nil
        busy.store(false, ordering: .releasing)
        return true
    }

    /// Claims and runs chunks of job `generation` until none is left.
    private func work(generation: Int) {
        while true {
            let current = ticket.load(ordering: .acquiring)
            guard Self.generation(current) == generation, Self.next(current) < Self.chunks(current) else { return }
            guard ticket.compareExchange(expected: current, desired: current + 1, ordering: .acquiringAndReleasing).exchanged else {
                continue
            }
            latent_enable_flush_to_zero()
            job?.closure(Self.next(current), Self.chunks(current))
            remaining.subtract(1, ordering: .releasing)
        }
    }

    private func startWorkersOnce() {
        guard !started.load(ordering: .acquiring) else { return }
        guard started.compareExchange(expected: false, desired: true, ordering: .acquiringAndReleasing).exchanged else { return }
        for index in 0..<workers {
            let thread = Thread { [self] in self.workerLoop() }
            thread.name = "latent-cpu-\(index + 1)"
            thread.stackSize = 8 << 20
            thread.start()
        }
    }

    private func workerLoop() {
        latent_enable_flush_to_zero()
        var seen = Self.generation(ticket.load(ordering: .acquiring))
        while true {
            var spins = 0
            var spinStart: UInt64 = 0
            var current = ticket.load(ordering: .acquiring)
            while Self.generation(current) == seen {
                spins += 1
                // The clock every 256 loads: its cost stays out of the loop.
                let spinning = spins & 255 != 0 || {
                    let now = DispatchTime.now().uptimeNanoseconds
                    if spinStart == 0 { spinStart = now }
                    return now - spinStart < Self.spinWindow
                }()
                if !spinning {
                    pthread_mutex_lock(mutex)
                    sleepers.add(1, ordering: .sequentiallyConsistent)
                    while Self.generation(ticket.load(ordering: .sequentiallyConsistent)) == seen {
                        pthread_cond_wait(condition, mutex)
                    }
                    sleepers.subtract(1, ordering: .sequentiallyConsistent)
                    pthread_mutex_unlock(mutex)
                    spins = 0
                    spinStart = 0
                }
                current = ticket.load(ordering: .acquiring)
            }
            seen = Self.generation(current)
            work(generation: seen)
        }
    }
}
