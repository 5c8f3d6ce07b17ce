/// Where the Winograd convolutions of both backends put their points' planes.
public enum WinogradPlanes {
    /// Floats from one Winograd point's plane to the next: at least `floats`, a whole number
    /// of 64-byte lines, and an odd number of them. A transform reads or writes one vector
    /// in each of its 25 or 36 planes per tile; planes a multiple of 4 KiB apart (the conv
    /// VAE's 128 x 256-float planes) put all of those lines in one cache set, more than its
    /// ways hold (8 in L1), and each access evicts the one before. Measured on PoCL: the
    /// F(4x4, 2x2) filter transform spent 64% of its samples on one store and took 1.7 ms a
    /// call, 0.8-1.0 ms with the planes skewed. On the CPU backend (2026-12-03, Zen 3, the
    /// medians of some 250-400 calls per build in alternating runs) the weight gradient's
    /// transforms of conv3 took 5-15% less and its products 6% less, the other phases the same
    /// within noise.
    @inlinable
    public static func stride(_ floats: Int) -> Int {
        let lines = (floats + 15) / 16
        return (lines % 2 == 0 ? lines + 1 : lines) * 16
    }
}
