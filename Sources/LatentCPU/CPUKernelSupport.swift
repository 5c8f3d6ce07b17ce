import Foundation
import LatentCore
import CLatentSupport

/// The vector type every CPU kernel works in: one AVX-512 register, two AVX2 registers.
typealias Vec = SIMD16<Float>

/// How many vector registers the register-tiled kernels may plan for.
public enum RegisterFile {
    /// 16 vector registers of 8 floats or fewer (AVX2, SSE, NEON's 128-bit view): a Vec takes
    /// two or more of them, so tiles with 24 accumulators would spill to the stack on every k.
    /// Kernels then use tiles of 6 rows x 16 columns (12 registers of accumulators), which keep
    /// each element's order of summation. AVX-512 (32 zmm of 16 floats) takes 12 x 32 tiles
    /// where its FMA units are 512 bits wide; on Zen 4, whose units are 256 bits wide, the
    /// narrow tiles measured faster (vae-conv training 1.14x, dcgan 1.03-1.13x, every conv
    /// pass, SGEMM 1024^3 1.2x; docs/PERFORMANCE.md). `LATENT_CPU_TILE=narrow|wide` overrides (tests of both paths).
    public static let narrow: Bool = {
        switch ProcessInfo.processInfo.environment["LATENT_CPU_TILE"] {
        case "narrow": return true
        case "wide": return false
        default: return CPUInfo.datapathLanes < 16
        }
    }()
}

extension SIMD16 where Scalar == Float {
    /// Loads `lanes` floats (16 in main loops, fewer for a remainder); missing lanes hold `padding`.
    @inline(__always)
    static func load(_ pointer: UnsafePointer<Float>, _ lanes: Int = 16, padding: Float = 0) -> Vec {
        if lanes == 16 { return UnsafeRawPointer(pointer).loadUnaligned(as: Vec.self) }
        return loadPartial(pointer, lanes, padding: padding)
    }

    /// Fewer than 16 lanes, assembled in registers from loads of 8, 4 and single floats with
    /// constant lane positions. Writing lanes one by one into a vector compiles to scalar
    /// stores into a stack slot and a vector load of it, which stalls on store forwarding
    /// (10-20 cycles): a third of batch norm's time on rows of 49 or 196 floats.
    @inline(__always)
    static func loadPartial(_ p: UnsafePointer<Float>, _ lanes: Int, padding: Float) -> Vec {
        let pad = SIMD8<Float>(repeating: padding)
        let low: SIMD8<Float>, high: SIMD8<Float>
        if lanes >= 8 {
            low = SIMD8<Float>.load(p)
            high = partial8(p + 8, lanes - 8, pad)
        } else {
            low = partial8(p, lanes, pad)
            high = pad
        }
        return Vec(low[0], low[1], low[2], low[3], low[4], low[5], low[6], low[7],
                   high[0], high[1], high[2], high[3], high[4], high[5], high[6], high[7])
    }

    /// `count` (0..<8) floats, the rest from `pad`.
    @inline(__always)
    private static func partial8(_ p: UnsafePointer<Float>, _ count: Int, _ pad: SIMD8<Float>) -> SIMD8<Float> {
        let low: SIMD4<Float>, high: SIMD4<Float>
        let pad4 = pad.lowHalfByLanes
        if count >= 4 {
            low = UnsafeRawPointer(p).loadUnaligned(as: SIMD4<Float>.self)
            high = partial4(p + 4, count - 4, pad4)
        } else {
            low = partial4(p, count, pad4)
            high = pad4
        }
        return SIMD8(low[0], low[1], low[2], low[3], high[0], high[1], high[2], high[3])
    }

    @inline(__always)
    private static func partial4(_ p: UnsafePointer<Float>, _ count: Int, _ pad: SIMD4<Float>) -> SIMD4<Float> {
        switch count {
        case 1: return SIMD4(p[0], pad[1], pad[2], pad[3])
        case 2: return SIMD4(p[0], p[1], pad[2], pad[3])
        case 3: return SIMD4(p[0], p[1], p[2], pad[3])
        default: return pad
        }
    }

    @inline(__always)
    static func load(_ pointer: UnsafeMutablePointer<Float>, _ lanes: Int = 16, padding: Float = 0) -> Vec {
        load(UnsafePointer(pointer), lanes, padding: padding)
    }

    /// Stores the first `lanes` floats.
    @inline(__always)
    func store(_ pointer: UnsafeMutablePointer<Float>, _ lanes: Int = 16) {
        if lanes == 16 {
            UnsafeMutableRawPointer(pointer).storeBytes(of: self, as: Vec.self)
            return
        }
        for lane in 0..<lanes { pointer[lane] = self[lane] }
    }

    /// Lanes `0..<lanes` set: masks a remainder's padding out of a reduction.
    @inline(__always)
    static func lanes(below lanes: Int) -> SIMDMask<SIMD16<Int32>> {
        SIMD16<Int32>(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15) .< SIMD16<Int32>(repeating: Int32(truncatingIfNeeded: lanes))
    }

    @inline(__always)
    var bits: SIMD16<UInt32> { unsafeBitCast(self, to: SIMD16<UInt32>.self) }

    @inline(__always)
    init(bits: SIMD16<UInt32>) { self = unsafeBitCast(bits, to: Vec.self) }

    /// The lanes summed in double precision (reductions keep their partial sums in Double).
    @inline(__always)
    func doubleSum() -> Double {
        SIMD16<Double>(converting: self).sum()
    }

    // Conversions written as lane loops: the standard library's generic SIMD initialisers
    // (`init(_:)`, `init(truncatingIfNeeded:)`) are not inlined, a call per vector, while a
    // lane loop becomes one vcvt or vpmov instruction. The same holds for the integer
    // conversions below.

    @inline(__always)
    init(converting ints: SIMD16<Int32>) {
        self.init()
        for lane in 0..<16 { self[lane] = Float(ints[lane]) }
    }

    @inline(__always)
    init(converting doubles: SIMD16<Double>) {
        self.init()
        for lane in 0..<16 { self[lane] = Float(doubles[lane]) }
    }
}

extension SIMD16 where Scalar == UInt32 {
    /// The same bits as signed lanes (arithmetic shifts, integer-to-float conversion).
    @inline(__always)
    var signed: SIMD16<Int32> { unsafeBitCast(self, to: SIMD16<Int32>.self) }

    @inline(__always)
    var widened: SIMD16<UInt64> {
        var result = SIMD16<UInt64>()
        for lane in 0..<16 { result[lane] = UInt64(self[lane]) }
        return result
    }
}

extension SIMD16 where Scalar == Int32 {
    @inline(__always)
    var unsigned: SIMD16<UInt32> { unsafeBitCast(self, to: SIMD16<UInt32>.self) }
}

extension SIMD16 where Scalar == UInt64 {
    /// The low 32 bits of each lane.
    @inline(__always)
    var truncated: SIMD16<UInt32> {
        var result = SIMD16<UInt32>()
        for lane in 0..<16 { result[lane] = UInt32(truncatingIfNeeded: self[lane]) }
        return result
    }
}

extension SIMD16 where Scalar == Double {
    @inline(__always)
    init(converting floats: Vec) {
        self.init()
        for lane in 0..<16 { self[lane] = Double(floats[lane]) }
    }
}

/// Walks `range` sixteen floats at a time, then once more with the remainder:
/// `body(index, lanes)` with `lanes == 16` except for that last call.
@inline(__always)
func vectorLoop(_ range: Range<Int>, _ body: (_ index: Int, _ lanes: Int) -> Void) {
    var index = range.lowerBound
    let end = range.upperBound
    while index + 16 <= end {
        body(index, 16)
        index += 16
    }
    if index < end { body(index, end - index) }
}

/// A 16 x 16 float matrix held as 16 row vectors in named fields (so that, inlined, it lives
/// in registers), with its transpose: four rounds of splitting row pairs into even and odd
/// lanes, each a rotation of the (row, column) index bits by one.
struct Tile16 {
    var r0, r1, r2, r3, r4, r5, r6, r7, r8, r9, r10, r11, r12, r13, r14, r15: Vec

    /// Rows `row(0) ... row(15)`.
    @inline(__always)
    init(_ row: (Int) -> Vec) {
        r0 = row(0)
        r1 = row(1)
        r2 = row(2)
        r3 = row(3)
        r4 = row(4)
        r5 = row(5)
        r6 = row(6)
        r7 = row(7)
        r8 = row(8)
        r9 = row(9)
        r10 = row(10)
        r11 = row(11)
        r12 = row(12)
        r13 = row(13)
        r14 = row(14)
        r15 = row(15)
    }

    @inline(__always)
    init(_ r0: Vec, _ r1: Vec, _ r2: Vec, _ r3: Vec, _ r4: Vec, _ r5: Vec, _ r6: Vec, _ r7: Vec, _ r8: Vec, _ r9: Vec, _ r10: Vec, _ r11: Vec, _ r12: Vec, _ r13: Vec, _ r14: Vec, _ r15: Vec) {
        self.r0 = r0
        self.r1 = r1
        self.r2 = r2
        self.r3 = r3
        self.r4 = r4
        self.r5 = r5
        self.r6 = r6
        self.r7 = r7
        self.r8 = r8
        self.r9 = r9
        self.r10 = r10
        self.r11 = r11
        self.r12 = r12
        self.r13 = r13
        self.r14 = r14
        self.r15 = r15
    }

    /// Calls `body(i, row i)` for every row.
    @inline(__always)
    func forEachRow(_ body: (Int, Vec) -> Void) {
        body(0, r0)
        body(1, r1)
        body(2, r2)
        body(3, r3)
        body(4, r4)
        body(5, r5)
        body(6, r6)
        body(7, r7)
        body(8, r8)
        body(9, r9)
        body(10, r10)
        body(11, r11)
        body(12, r12)
        body(13, r13)
        body(14, r14)
        body(15, r15)
    }

    /// The even and the odd lanes of `a` followed by `b`. Written lane by lane, which LLVM turns
    /// into one vpermi2ps each; `SIMD32.evenHalf` is not inlined across modules and runs a
    /// scalar loop.
    @inline(__always)
    static func unzip(_ a: Vec, _ b: Vec) -> (Vec, Vec) {
        (Vec(a[0], a[2], a[4], a[6], a[8], a[10], a[12], a[14], b[0], b[2], b[4], b[6], b[8], b[10], b[12], b[14]),
         Vec(a[1], a[3], a[5], a[7], a[9], a[11], a[13], a[15], b[1], b[3], b[5], b[7], b[9], b[11], b[13], b[15]))
    }

    @inline(__always)
    func transposed() -> Tile16 {
        let (s0_0, s0_8) = Tile16.unzip(r0, r1)
        let (s0_1, s0_9) = Tile16.unzip(r2, r3)
        let (s0_2, s0_10) = Tile16.unzip(r4, r5)
        let (s0_3, s0_11) = Tile16.unzip(r6, r7)
        let (s0_4, s0_12) = Tile16.unzip(r8, r9)
        let (s0_5, s0_13) = Tile16.unzip(r10, r11)
        let (s0_6, s0_14) = Tile16.unzip(r12, r13)
        let (s0_7, s0_15) = Tile16.unzip(r14, r15)
        let (s1_0, s1_8) = Tile16.unzip(s0_0, s0_1)
        let (s1_1, s1_9) = Tile16.unzip(s0_2, s0_3)
        let (s1_2, s1_10) = Tile16.unzip(s0_4, s0_5)
        let (s1_3, s1_11) = Tile16.unzip(s0_6, s0_7)
        let (s1_4, s1_12) = Tile16.unzip(s0_8, s0_9)
        let (s1_5, s1_13) = Tile16.unzip(s0_10, s0_11)
        let (s1_6, s1_14) = Tile16.unzip(s0_12, s0_13)
        let (s1_7, s1_15) = Tile16.unzip(s0_14, s0_15)
        let (s2_0, s2_8) = Tile16.unzip(s1_0, s1_1)
        let (s2_1, s2_9) = Tile16.unzip(s1_2, s1_3)
        let (s2_2, s2_10) = Tile16.unzip(s1_4, s1_5)
        let (s2_3, s2_11) = Tile16.unzip(s1_6, s1_7)
        let (s2_4, s2_12) = Tile16.unzip(s1_8, s1_9)
        let (s2_5, s2_13) = Tile16.unzip(s1_10, s1_11)
        let (s2_6, s2_14) = Tile16.unzip(s1_12, s1_13)
        let (s2_7, s2_15) = Tile16.unzip(s1_14, s1_15)
        let (s3_0, s3_8) = Tile16.unzip(s2_0, s2_1)
        let (s3_1, s3_9) = Tile16.unzip(s2_2, s2_3)
        let (s3_2, s3_10) = Tile16.unzip(s2_4, s2_5)
        let (s3_3, s3_11) = Tile16.unzip(s2_6, s2_7)
        let (s3_4, s3_12) = Tile16.unzip(s2_8, s2_9)
        let (s3_5, s3_13) = Tile16.unzip(s2_10, s2_11)
        let (s3_6, s3_14) = Tile16.unzip(s2_12, s2_13)
        let (s3_7, s3_15) = Tile16.unzip(s2_14, s2_15)
        return Tile16(s3_0, s3_1, s3_2, s3_3, s3_4, s3_5, s3_6, s3_7, s3_8, s3_9, s3_10, s3_11, s3_12, s3_13, s3_14, s3_15)
    }
}

extension SIMD8 where Scalar == Float {
    /// Lanes 0-3, written lane by lane (the stdlib's `lowHalf` is not inlined across modules).
    @inline(__always)
    var lowHalfByLanes: SIMD4<Float> { SIMD4(self[0], self[1], self[2], self[3]) }

    @inline(__always)
    static func load(_ pointer: UnsafePointer<Float>) -> Self { UnsafeRawPointer(pointer).loadUnaligned(as: Self.self) }

    @inline(__always)
    static func load(_ pointer: UnsafeMutablePointer<Float>) -> Self { load(UnsafePointer(pointer)) }

    @inline(__always)
    func store(_ pointer: UnsafeMutablePointer<Float>) { UnsafeMutableRawPointer(pointer).storeBytes(of: self, as: Self.self) }
}

/// An 8 x 8 float matrix as eight SIMD8 rows, with its transpose: the 16 x 16 transposes of
/// `Tile16` need 32 registers of 8 floats (AVX2 has 16) and spill every round, while one 8 x 8
/// block fits with room to spare. Three rounds of lane shuffles, each written lane by lane
/// in the patterns of vunpcklps/vunpckhps, vshufps and vperm2f128, which LLVM emits as such.
struct Tile8 {
    typealias Row = SIMD8<Float>
    var r0, r1, r2, r3, r4, r5, r6, r7: Row

    @inline(__always)
    init(_ row: (Int) -> Row) {
        r0 = row(0); r1 = row(1); r2 = row(2); r3 = row(3)
        r4 = row(4); r5 = row(5); r6 = row(6); r7 = row(7)
    }

    @inline(__always)
    init(_ r0: Row, _ r1: Row, _ r2: Row, _ r3: Row, _ r4: Row, _ r5: Row, _ r6: Row, _ r7: Row) {
        self.r0 = r0; self.r1 = r1; self.r2 = r2; self.r3 = r3
        self.r4 = r4; self.r5 = r5; self.r6 = r6; self.r7 = r7
    }

    @inline(__always)
    func forEachRow(_ body: (Int, Row) -> Void) {
        body(0, r0); body(1, r1); body(2, r2); body(3, r3)
        body(4, r4); body(5, r5); body(6, r6); body(7, r7)
    }

    /// Interleaves the low (high) pairs of each 128-bit half: vunpcklps / vunpckhps.
    @inline(__always)
    static func interleaveLow(_ a: Row, _ b: Row) -> Row { Row(a[0], b[0], a[1], b[1], a[4], b[4], a[5], b[5]) }
    @inline(__always)
    static func interleaveHigh(_ a: Row, _ b: Row) -> Row { Row(a[2], b[2], a[3], b[3], a[6], b[6], a[7], b[7]) }
    /// Lanes 0-1 (2-3) of each half of `a`, then of `b`: vshufps.
    @inline(__always)
    static func pairsLow(_ a: Row, _ b: Row) -> Row { Row(a[0], a[1], b[0], b[1], a[4], a[5], b[4], b[5]) }
    @inline(__always)
    static func pairsHigh(_ a: Row, _ b: Row) -> Row { Row(a[2], a[3], b[2], b[3], a[6], a[7], b[6], b[7]) }
    /// The low (high) 128-bit halves of `a` and `b`: vperm2f128.
    @inline(__always)
    static func halvesLow(_ a: Row, _ b: Row) -> Row { Row(a[0], a[1], a[2], a[3], b[0], b[1], b[2], b[3]) }
    @inline(__always)
    static func halvesHigh(_ a: Row, _ b: Row) -> Row { Row(a[4], a[5], a[6], a[7], b[4], b[5], b[6], b[7]) }

    @inline(__always)
    func transposed() -> Tile8 {
        let t0 = Tile8.interleaveLow(r0, r1), t1 = Tile8.interleaveHigh(r0, r1)
        let t2 = Tile8.interleaveLow(r2, r3), t3 = Tile8.interleaveHigh(r2, r3)
        let t4 = Tile8.interleaveLow(r4, r5), t5 = Tile8.interleaveHigh(r4, r5)
        let t6 = Tile8.interleaveLow(r6, r7), t7 = Tile8.interleaveHigh(r6, r7)
        let u0 = Tile8.pairsLow(t0, t2), u1 = Tile8.pairsHigh(t0, t2)
        let u2 = Tile8.pairsLow(t1, t3), u3 = Tile8.pairsHigh(t1, t3)
        let u4 = Tile8.pairsLow(t4, t6), u5 = Tile8.pairsHigh(t4, t6)
        let u6 = Tile8.pairsLow(t5, t7), u7 = Tile8.pairsHigh(t5, t7)
        return Tile8(Tile8.halvesLow(u0, u4), Tile8.halvesLow(u1, u5), Tile8.halvesLow(u2, u6), Tile8.halvesLow(u3, u7),
                     Tile8.halvesHigh(u0, u4), Tile8.halvesHigh(u1, u5), Tile8.halvesHigh(u2, u6), Tile8.halvesHigh(u3, u7))
    }
}

// MARK: Vector math

/// Float-only vector versions of exp, log, log1p and tanh (Cephes polynomials, about 1 ulp):
/// Swift has no vector libm, and a scalar call per element would cost more than the rest
/// of a kernel. NaN propagates; overflow gives infinity, underflow zero.
enum VMath {
    static let log2e: Float = 1.442_695_04
    /// 1.5 * 2^23: adding it rounds to an integer held in the low mantissa bits.
    static let roundMagic: Float = 12_582_912

    /// Correctly rounded square root in one vsqrtps (IEEE: NaN below zero, -0 kept), through
    /// `latent_sqrt16`: a per-lane `Float.squareRoot()` loop keeps libm's errno path, and
    /// its selects or its lanes were split into 128- and 256-bit pieces by LLVM.
    @inline(__always)
    static func sqrt(_ x: Vec) -> Vec {
        latent_sqrt16(x)
    }

    @inline(__always)
    static func exp(_ x: Vec) -> Vec {
        // (`clamped` and `pointwiseMin` are not inlined; comparisons and selects are.)
        var clamped = x.replacing(with: -104, where: x .< -104)
        clamped = clamped.replacing(with: 88.8, where: clamped .> 88.8)
        let shifted = clamped * log2e + roundMagic
        let n = shifted - roundMagic
        let r = (clamped - n * 0.693_359_375) - n * -2.121_944_4e-4
        var p = Vec(repeating: 1.987_569_150_0e-4)
        p = p * r + 1.398_199_950_7e-3
        p = p * r + 8.333_451_907_3e-3
        p = p * r + 4.166_579_589_4e-2
        p = p * r + 1.666_666_545_9e-1
        p = p * r + 5.000_000_120_1e-1
        let y = p * (r * r) + r + 1
        // 2^n as two factors so that n in [-150, 128] never leaves the exponent range.
        let ni = shifted.bits.signed &- 0x4B40_0000
        let n1 = ni &>> 1, n2 = ni &- n1
        let s1 = Vec(bits: ((n1 &+ 127) &<< 23).unsigned)
        let s2 = Vec(bits: ((n2 &+ 127) &<< 23).unsigned)
        let result = (y * s1 * s2).replacing(with: .infinity, where: x .> 88.722_839)
        return result.replacing(with: x, where: x .!= x) // clamping turned NaN into a bound
    }

    /// Natural log: `-inf` at 0, NaN below 0, `+inf` at `+inf`. The mantissa is reduced to
    /// [sqrt(1/2), sqrt(2)) with integer arithmetic on the bits (a select there defeats
    /// LLVM's vectoriser), then Cephes' polynomial in fused multiply-adds.
    @inline(__always)
    static func log(_ x: Vec) -> Vec {
        let adjusted = x.bits &- 0x3F35_04F3 // bits of sqrt(1/2)
        let e = Vec(converting: adjusted.signed &>> 23)
        let f = Vec(bits: (adjusted & 0x007F_FFFF) &+ 0x3F35_04F3) - 1
        let z = f * f
        var p = Vec(repeating: 7.037_683_629_2e-2)
        p = Vec(repeating: -1.151_461_031_0e-1).addingProduct(p, f)
        p = Vec(repeating: 1.167_699_874_0e-1).addingProduct(p, f)
        p = Vec(repeating: -1.242_014_084_6e-1).addingProduct(p, f)
        p = Vec(repeating: 1.424_932_278_7e-1).addingProduct(p, f)
        p = Vec(repeating: -1.666_805_766_5e-1).addingProduct(p, f)
        p = Vec(repeating: 2.000_071_476_5e-1).addingProduct(p, f)
        p = Vec(repeating: -2.499_999_399_3e-1).addingProduct(p, f)
        p = Vec(repeating: 3.333_333_117_4e-1).addingProduct(p, f)
        var y = p * f * z
        y = y.addingProduct(e, Vec(repeating: -2.121_944_4e-4))
        y = y.addingProduct(z, Vec(repeating: -0.5))
        var result = (f + y).addingProduct(e, Vec(repeating: 0.693_359_375))
        result = result.replacing(with: -.infinity, where: x .== 0)
        result = result.replacing(with: .infinity, where: x .== .infinity)
        return result.replacing(with: .nan, where: x .< 0 .| x .!= x)
    }

    /// `log(1 + x)`, accurate for small `x` (BCE's `log1p(-p)` and softplus).
    @inline(__always)
    static func log1p(_ x: Vec) -> Vec {
        let u = 1 + x
        let d = u - 1
        var result = log(u) * (x / d)
        result = result.replacing(with: x, where: d .== 0)
        return result.replacing(with: .infinity, where: x .== .infinity)
    }

    @inline(__always)
    static func sigmoid(_ x: Vec) -> Vec {
        1 / (1 + exp(-x))
    }

    /// Odd polynomial below |x| = 0.625, `1 - 2 / (exp(2|x|) + 1)` above.
    @inline(__always)
    static func tanh(_ x: Vec) -> Vec {
        let a = Vec(bits: x.bits & 0x7FFF_FFFF)
        let sign = x.bits & 0x8000_0000
        let large = 1 - 2 / (exp(a + a) + 1)
        let z = x * x
        var p = Vec(repeating: -5.704_988_727_45e-3)
        p = p * z + 2.063_908_879_54e-2
        p = p * z - 5.373_971_555_31e-2
        p = p * z + 1.333_144_220_36e-1
        p = p * z - 3.333_328_194_22e-1
        let small = p * z * x + x
        let signedLarge = Vec(bits: large.bits | sign)
        return small.replacing(with: signedLarge, where: a .> 0.625)
    }

    /// PyTorch's softplus (beta 1, threshold 20): `x` above 20, `log1p(exp(x))` below.
    @inline(__always)
    static func softplus(_ x: Vec) -> Vec {
        log1p(exp(x)).replacing(with: x, where: x .> 20)
    }
}

// MARK: Argument checks

/// The shared argument checks (LatentCore.OpCheck).
typealias CPUCheck = OpCheck

extension CPUBackend {
    /// Splits `0..<count` across the threads when `count * cost` is worth it; ranges start
    /// at multiples of 16 so that only the last one has a vector remainder.
    @inline(__always)
    func forEachRange(count: Int, cost: Int = 1, _ body: (Range<Int>) -> Void) {
        parallel.forEachBalancedRange(count: count, work: count * cost, alignment: 16, body)
    }

    /// dW[i] = the sum of `chunks` threads' partial gradients (`count` floats each, one after
    /// another), added in chunk order.
    func addUp(_ partials: UnsafePointer<Float>, chunks: Int, count: Int, into dw: UnsafeMutablePointer<Float>) {
        forEachRange(count: count, cost: chunks + 1) { range in
            vectorLoop(range) { i, lanes in
                var total = Vec()
                for chunk in 0..<chunks { total += Vec.load(partials + chunk * count + i, lanes) }
                total.store(dw + i, lanes)
            }
        }
    }

    /// Like `forEachRange` but over items (channels, images, blocks) without alignment.
    @inline(__always)
    func forEachItemRange(count: Int, costPerItem: Int, _ body: (Range<Int>) -> Void) {
        parallel.forEachBalancedRange(count: count, work: count * costPerItem, body)
    }
}

/// The double a Python float literal with the same decimal digits holds: `Float(0.9)`
/// becomes 0.9 exactly as PyTorch's Python-side arithmetic sees it, so `1 - beta1` or
/// `beta2 ** step` round the way `torch.optim` and `BatchNorm`'s momentum do.
@inline(__always)
func decimalDouble(_ value: Float) -> Double {
    guard value.isFinite else { return Double(value) }
    return Double(value.description) ?? Double(value)
}
