import Foundation

/// Timing that a noisy two-core machine can trust: a warm-up call, then repeats until
/// `minimumSeconds` have passed (at least `minimumRepeats`), reporting the median.
///
/// `LATENT_BENCH_CLOCK=cpu` times with the process's CPU time instead of the wall clock:
/// with one thread (`--threads 1`) that is the time the op really ran, whatever else the
/// machine is doing, which makes kernel work comparable from run to run on a busy machine.
/// (With several threads it is the sum over threads.) Published figures use the wall clock.
public enum Timing {
    public static let usesCPUClock = ProcessInfo.processInfo.environment["LATENT_BENCH_CLOCK"] == "cpu"

    public static func median(minimumSeconds: Double = 0.25, minimumRepeats: Int = 5, maximumRepeats: Int = 200,
                              _ body: () throws -> Void) rethrows -> Double {
        try body()
        let clock = ContinuousClock()
        var samples: [Double] = []
        let start = clock.now
        while samples.count < maximumRepeats && (samples.count < minimumRepeats || seconds(clock.now - start) < minimumSeconds) {
            if usesCPUClock {
                let before = processCPUSeconds()
                try body()
                samples.append(processCPUSeconds() - before)
            } else {
                let before = clock.now
                try body()
                samples.append(seconds(clock.now - before))
            }
        }
        samples.sort()
        return samples[samples.count / 2]
    }

    /// CPU time of the whole process (every thread), in seconds.
    public static func processCPUSeconds() -> Double {
        var time = timespec()
        clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &time)
        return Double(time.tv_sec) + Double(time.tv_nsec) * 1e-9
    }

    public static func seconds(_ duration: Duration) -> Double {
        let parts = duration.components
        return Double(parts.seconds) + Double(parts.attoseconds) * 1e-18
    }
}
