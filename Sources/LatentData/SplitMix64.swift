/// SplitMix64 (Steele, Lea and Flood, 2014): a 64-bit state advanced by a constant and
/// scrambled by a fixed mixer. Chosen for data order and augmentation because it is tiny,
/// fast, passes BigCrush, and, unlike `SystemRandomNumberGenerator` or the standard library's
/// `shuffle(using:)` (whose algorithm may change between Swift releases), gives the same
/// numbers on every platform and toolchain: the same seed gives the same run.
public struct SplitMix64: RandomNumberGenerator, Sendable {
    public private(set) var state: UInt64

    public init(seed: UInt64) {
        state = seed
    }

    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        return SplitMix64.scramble(state)
    }

    /// A uniform integer in `0..<bound` (Lemire's multiply-shift; bias below 2^-40 for the
    /// bounds used here, and fixed arithmetic so that results never depend on the platform).
    public mutating func next(below bound: Int) -> Int {
        precondition(bound > 0, "bound must be positive")
        return Int(UInt64(bound).multipliedFullWidth(by: next()).high)
    }

    /// A generator for one independent stream, keyed by any number of integers (seed, purpose,
    /// epoch, image index…). Keying by image index makes a draw independent of batch size,
    /// batch order and how many images came before it.
    public static func stream(_ keys: UInt64...) -> SplitMix64 {
        var hash: UInt64 = 0x243F_6A88_85A3_08D3
        for key in keys {
            hash = scramble(hash ^ scramble(key &+ 0x9E37_79B9_7F4A_7C15))
        }
        return SplitMix64(seed: hash)
    }

    @inline(__always)
    static func scramble(_ value: UInt64) -> UInt64 {
        var z = value
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

extension Array {
    /// Fisher-Yates shuffle driven by SplitMix64: the same generator state gives the same order.
    mutating func shuffleDeterministically(using generator: inout SplitMix64) {
        guard count > 1 else { return }
        for i in stride(from: count - 1, to: 0, by: -1) {
            swapAt(i, generator.next(below: i + 1))
        }
    }
}
