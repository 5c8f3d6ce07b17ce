/// Timing that a noisy two-core machine can trust: a warm-up call, then repeats until
/// `minimumSeconds` have passed (at least `minimumRepeats`), reporting the median.
public enum Timing {
    public static func median(minimumSeconds: Double = 0.25, minimumRepeats: Int = 5, maximumRepeats: Int = 200,
                              _ body: () throws -> Void) rethrows -> Double {
        try body()
        let clock = ContinuousClock()
        var samples: [Double] = []
        let start = clock.now
        while samples.count < maximumRepeats && (samples.count < minimumRepeats || seconds(clock.now - start) < minimumSeconds) {
            let before = clock.now
            try body()
            samples.append(seconds(clock.now - before))
        }
        samples.sort()
        return samples[samples.count / 2]
    }

    public static func seconds(_ duration: Duration) -> Double {
        let parts = duration.components
        return Double(parts.seconds) + Double(parts.attoseconds) * 1e-18
    }
}
