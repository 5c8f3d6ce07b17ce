/// Philox4x32-10 (Salmon et al., "Parallel random numbers: as easy as 1, 2, 3", SC 2011),
/// the counter-based generator behind every random fill. Element `i` of any fill depends
/// only on `(seed, counter, i)`, so the CPU and OpenCL backends produce the same stream in
/// any order and on any number of threads. The exact definition, which a kernel must
/// follow bit for bit:
///
/// - Key: `k0 = UInt32(seed & 0xFFFF_FFFF)`, `k1 = UInt32(seed >> 32)`.
/// - A fill starting at block `counter` (a UInt64) gives element `i` lane `i % 4` of the
///   block `b = counter &+ UInt64(i / 4)`, whose counter words are
///   `(UInt32(b & 0xFFFF_FFFF), UInt32(b >> 32), 0, 0)`. A fill of `n` values uses
///   `ceil(n / 4)` blocks; callers advance their counter by that much.
/// - Round: `(hi0, lo0) = mulhilo(0xD2511F53, c0)`, `(hi1, lo1) = mulhilo(0xCD9E8D57, c2)`,
///   `c = (hi1 ^ c1 ^ k0, lo1, hi0 ^ c3 ^ k1, lo0)`; ten rounds, the key bumped by
///   `(0x9E3779B9, 0xBB67AE85)` (wrapping) between rounds.
/// - Uniform: `u = Float(x >> 8) * 0x1p-24` in [0, 1); `low + (high - low) * u`.
/// - Normal: Box-Muller on lane pairs (0, 1) and (2, 3) of a block:
///   `u1 = (Float(x0 >> 8) + 1) * 0x1p-24` in (0, 1], `u2 = Float(x1 >> 8) * 0x1p-24`,
///   `r = sqrt(-2 * log(u1))`, `z0 = r * cos(2 pi u2)`, `z1 = r * sin(2 pi u2)`, then
///   `mean + std * z`. `log` and `sincos2pi` are the float-only polynomials below, so
///   the result does not depend on a platform's libm. IEEE single precision throughout,
///   correctly rounded `sqrt` and `/`, no fused multiply-adds (OpenCL: `FP_CONTRACT OFF`,
///   `-cl-fp32-correctly-rounded-divide-sqrt`).
/// - Bernoulli: `u < p ? 1 : 0` with the uniform `u`.
public enum Philox {
    public static let multiplier0: UInt32 = 0xD251_1F53
    public static let multiplier1: UInt32 = 0xCD9E_8D57
    public static let weyl0: UInt32 = 0x9E37_79B9
    public static let weyl1: UInt32 = 0xBB67_AE85

    /// One Philox4x32-10 block.
    @inline(__always)
    public static func block(counter: SIMD4<UInt32>, key: SIMD2<UInt32>) -> SIMD4<UInt32> {
        var c = counter
        var k = key
        for round in 0..<10 {
            if round > 0 {
                k.x &+= weyl0
                k.y &+= weyl1
            }
            let product0 = UInt64(multiplier0) &* UInt64(c.x)
            let product1 = UInt64(multiplier1) &* UInt64(c.z)
            let hi0 = UInt32(truncatingIfNeeded: product0 >> 32), lo0 = UInt32(truncatingIfNeeded: product0)
            let hi1 = UInt32(truncatingIfNeeded: product1 >> 32), lo1 = UInt32(truncatingIfNeeded: product1)
            c = SIMD4(hi1 ^ c.y ^ k.x, lo1, hi0 ^ c.w ^ k.y, lo0)
        }
        return c
    }

    @inline(__always)
    public static func key(seed: UInt64) -> SIMD2<UInt32> {
        SIMD2(UInt32(truncatingIfNeeded: seed), UInt32(truncatingIfNeeded: seed >> 32))
    }

    /// The block for stream position `block` (see the type's documentation).
    @inline(__always)
    public static func block(_ block: UInt64, seed: UInt64) -> SIMD4<UInt32> {
        Self.block(counter: SIMD4(UInt32(truncatingIfNeeded: block), UInt32(truncatingIfNeeded: block >> 32), 0, 0),
                   key: key(seed: seed))
    }

    /// Blocks a fill of `count` values consumes.
    @inline(__always)
    public static func blocks(for count: Int) -> UInt64 { UInt64((count + 3) / 4) }

    /// [0, 1) with 24 random bits.
    @inline(__always)
    public static func unitFloat(_ bits: UInt32) -> Float { Float(bits >> 8) * 0x1p-24 }

    /// Four normals from one block, `z0 z1` from lanes 0-1 and `z2 z3` from lanes 2-3.
    @inline(__always)
    public static func normals(_ bits: SIMD4<UInt32>) -> SIMD4<Float> {
        let (a0, a1) = boxMuller(bits.x, bits.y)
        let (b0, b1) = boxMuller(bits.z, bits.w)
        return SIMD4(a0, a1, b0, b1)
    }

    @inline(__always)
    static func boxMuller(_ x0: UInt32, _ x1: UInt32) -> (Float, Float) {
        let u1 = (Float(x0 >> 8) + 1) * 0x1p-24
        let u2 = Float(x1 >> 8) * 0x1p-24
        let radius = (-2 * log(u1)).squareRoot()
        let (sine, cosine) = sinCos2Pi(u2)
        return (radius * cosine, radius * sine)
    }

    /// Natural log for `x` in (0, 1] (normal floats only), fdlibm's logf reduction and
    /// polynomial written with plain IEEE operations so every backend rounds identically.
    @inline(__always)
    public static func log(_ x: Float) -> Float {
        let bits = x.bitPattern
        var exponent = Int32(bitPattern: (bits >> 23) & 0xFF) - 127
        var mantissa = Float(bitPattern: (bits & 0x007F_FFFF) | 0x3F80_0000)
        if mantissa > Float(bitPattern: 0x3FB5_04F3) { // sqrt(2)
            mantissa *= 0.5
            exponent += 1
        }
        let f = mantissa - 1
        let s = f / (2 + f)
        let z = s * s
        let w = z * z
        let t1 = w * (lg2 + w * lg4)
        let t2 = z * (lg1 + w * lg3)
        let r = t2 + t1
        let halfFSquared = 0.5 * f * f
        let e = Float(exponent)
        return e * ln2High - ((halfFSquared - (s * (halfFSquared + r) + e * ln2Low)) - f)
    }

    /// `(sin(2 pi u), cos(2 pi u))` for `u` in [0, 1): exact reduction to an eighth of a
    /// turn (round half to even), then Taylor polynomials of degree 9 and 8.
    @inline(__always)
    public static func sinCos2Pi(_ u: Float) -> (Float, Float) {
        let quarterTurns = (u * 4).rounded(.toNearestOrEven)
        let r = u - quarterTurns * 0.25
        let theta = r * twoPi
        let theta2 = theta * theta
        let sine = theta + theta * theta2 * (sin1 + theta2 * (sin2 + theta2 * (sin3 + theta2 * sin4)))
        let cosine = 1 + theta2 * (cos1 + theta2 * (cos2 + theta2 * (cos3 + theta2 * cos4)))
        switch Int(quarterTurns) & 3 {
        case 0: return (sine, cosine)
        case 1: return (cosine, -sine)
        case 2: return (-sine, -cosine)
        default: return (-cosine, sine)
        }
    }

    static let lg1 = Float(bitPattern: 0x3F2A_AAAA)
    static let lg2 = Float(bitPattern: 0x3ECC_CCE1)
    static let lg3 = Float(bitPattern: 0x3E91_E9EE)
    static let lg4 = Float(bitPattern: 0x3E78_9E26)
    static let ln2High = Float(bitPattern: 0x3F31_7180)
    static let ln2Low = Float(bitPattern: 0x3717_F7D1)
    static let twoPi = Float(bitPattern: 0x40C9_0FDB)
    static let sin1: Float = -1.0 / 6.0
    static let sin2: Float = 1.0 / 120.0
    static let sin3: Float = -1.0 / 5040.0
    static let sin4: Float = 1.0 / 362_880.0
    static let cos1: Float = -0.5
    static let cos2: Float = 1.0 / 24.0
    static let cos3: Float = -1.0 / 720.0
    static let cos4: Float = 1.0 / 40_320.0
}

/// A seeded stream position: the `seed` of every fill plus a running block `counter`, so
/// that successive fills draw fresh numbers and a checkpoint can store the RNG state as
/// two integers.
public struct RandomStream: Sendable, Equatable, Codable {
    public var seed: UInt64
    public var counter: UInt64

    public init(seed: UInt64, counter: UInt64 = 0) {
        self.seed = seed
        self.counter = counter
    }

    /// Reserves the blocks for a fill of `count` values and returns the counter it starts at.
    public mutating func advance(by count: Int) -> UInt64 {
        let start = counter
        counter &+= Philox.blocks(for: count)
        return start
    }
}
