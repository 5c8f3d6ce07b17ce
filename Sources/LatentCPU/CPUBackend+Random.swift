import LatentCore

/// Random fills from Philox4x32-10 exactly as `Philox` documents the stream: element `i`
/// of a fill is lane `i % 4` of block `counter + i / 4`. Sixteen blocks are generated at
/// once in SIMD16 lanes (64 values), and threads take disjoint runs of blocks, so the
/// result does not depend on the thread count.
extension CPUBackend {
    // destination (n) = low + (high - low) * u
    public func fillUniform(_ destination: BufferView, low: Float, high: Float, seed: UInt64, counter: UInt64) throws {
        let d = try destination.cpuPointer()
        let range = high - low
        forEachPhiloxGroup(count: destination.count, cost: 8, seed: seed, counter: counter) { group, start, lanes, _ in
            var values = PhiloxGroup.uniforms(group)
            for lane in 0..<4 { values[lane] = low + range * values[lane] }
            values.store(d + start, lanes)
        }
    }

    // destination (n) = mean + std * z, z standard normal by Box-Muller on lane pairs
    public func fillNormal(_ destination: BufferView, mean: Float, std: Float, seed: UInt64, counter: UInt64) throws {
        let d = try destination.cpuPointer()
        forEachPhiloxGroup(count: destination.count, cost: 40, seed: seed, counter: counter) { group, start, lanes, _ in
            var values = PhiloxGroup.normals(group)
            for lane in 0..<4 { values[lane] = mean + std * values[lane] }
            values.store(d + start, lanes)
        }
    }

    // output (n) = u < probabilities (n) ? 1 : 0
    public func fillBernoulli(probabilities: BufferView, output: BufferView, seed: UInt64, counter: UInt64) throws {
        try CPUCheck.sameCount("fillBernoulli", ("probabilities", probabilities), ("output", output))
        let p = try probabilities.cpuPointer(), o = try output.cpuPointer()
        forEachPhiloxGroup(count: output.count, cost: 8, seed: seed, counter: counter) { group, start, lanes, scratch in
            PhiloxGroup.uniforms(group).store(scratch, 64)
            vectorLoop(0..<lanes) { i, n in
                let u = Vec.load(scratch + i)
                Vec(repeating: 0).replacing(with: 1, where: u .< Vec.load(p + start + i, n)).store(o + start + i, n)
            }
        }
    }

    // input (n) * mask (n) -> output (n), mask = (u >= p) / (1 - p)
    public func dropoutForward(input: BufferView, output: BufferView, mask: BufferView, probability: Float,
                               seed: UInt64, counter: UInt64) throws {
        try CPUCheck.sameCount("dropoutForward", ("input", input), ("output", output), ("mask", mask))
        guard probability >= 0, probability <= 1 else {
            throw LatentError.invalidArgument("dropoutForward: probability \(probability) is outside [0, 1]")
        }
        let x = try input.cpuPointer(), y = try output.cpuPointer(), m = try mask.cpuPointer()
        let scale: Float = probability < 1 ? 1 / (1 - probability) : 0
        forEachPhiloxGroup(count: input.count, cost: 8, seed: seed, counter: counter) { group, start, lanes, scratch in
            PhiloxGroup.uniforms(group).store(scratch, 64)
            vectorLoop(0..<lanes) { i, n in
                let keep = Vec(repeating: 0).replacing(with: scale, where: Vec.load(scratch + i) .>= probability)
                keep.store(m + start + i, n)
                (Vec.load(x + start + i, n) * keep).store(y + start + i, n)
            }
        }
    }

    /// Calls `body(bits, start, lanes, scratch)` for each run of 16 blocks: elements
    /// `start ..< start + lanes` of the fill (`lanes` = 64 except at the end); `scratch`
    /// holds 64 floats for a body that needs the values in element order.
    @inline(__always)
    func forEachPhiloxGroup(count: Int, cost: Int, seed: UInt64, counter: UInt64,
                            _ body: (PhiloxGroup.Bits, Int, Int, UnsafeMutablePointer<Float>) -> Void) {
        guard count > 0 else { return }
        let key = Philox.key(seed: seed)
        let groups = (count + 63) / 64
        forEachItemRange(count: groups, costPerItem: 64 * cost) { range in
            withUnsafeTemporaryAllocation(of: Float.self, capacity: 64) { scratch in
                guard let scratch = scratch.baseAddress else { return }
                for group in range {
                    let start = group * 64
                    let bits = PhiloxGroup.generate(counter &+ UInt64(group * 16), key: key)
                    body(bits, start, Swift.min(64, count - start), scratch)
                }
            }
        }
    }
}

/// Sixteen consecutive Philox blocks in SIMD lanes: `x[w][j]` is word `w` of block
/// `first + j`, i.e. element `4 j + w` of the group.
enum PhiloxGroup {
    typealias Words = SIMD16<UInt32>
    typealias Bits = (Words, Words, Words, Words)

    /// Sixty-four floats as four vectors, `values[w][j]` standing for element `4 j + w`.
    struct Values {
        var lanes: (Vec, Vec, Vec, Vec) = (Vec(), Vec(), Vec(), Vec())

        subscript(word: Int) -> Vec {
            @inline(__always) get {
                switch word {
                case 0: return lanes.0
                case 1: return lanes.1
                case 2: return lanes.2
                default: return lanes.3
                }
            }
            @inline(__always) set {
                switch word {
                case 0: lanes.0 = newValue
                case 1: lanes.1 = newValue
                case 2: lanes.2 = newValue
                default: lanes.3 = newValue
                }
            }
        }

        /// Writes elements `0..<count` in stream order (interleaving the four words).
        @inline(__always)
        func store(_ destination: UnsafeMutablePointer<Float>, _ count: Int) {
            if count == 64 {
                storeAll(destination)
                return
            }
            withUnsafeTemporaryAllocation(of: Float.self, capacity: 64) { buffer in
                guard let base = buffer.baseAddress else { return }
                storeAll(base)
                destination.update(from: base, count: count)
            }
        }

        /// The 4 x 16 transpose as two rounds of even/odd interleaves (32-bit words, then
        /// 64-bit pairs), which LLVM lowers to a few permutes instead of 64 lane moves.
        @inline(__always)
        private func storeAll(_ destination: UnsafeMutablePointer<Float>) {
            var low = SIMD32<Float>(), high = SIMD32<Float>()
            low.evenHalf = lanes.0
            low.oddHalf = lanes.1
            high.evenHalf = lanes.2
            high.oddHalf = lanes.3
            var pairs = SIMD32<UInt64>()
            pairs.evenHalf = unsafeBitCast(low, to: SIMD16<UInt64>.self)
            pairs.oddHalf = unsafeBitCast(high, to: SIMD16<UInt64>.self)
            UnsafeMutableRawPointer(destination).storeBytes(of: pairs, as: SIMD32<UInt64>.self)
        }
    }

    /// Uniforms in the interleaved layout for lanes `(w, j)`, stored per word.
    @inline(__always)
    static func uniforms(_ bits: Bits) -> Values {
        var values = Values()
        values.lanes = (unit(bits.0), unit(bits.1), unit(bits.2), unit(bits.3))
        return values
    }

    /// `[0, 1)` from the top 24 bits, as `Philox.unitFloat`.
    @inline(__always)
    static func unit(_ x: Words) -> Vec {
        Vec(converting: (x &>> 8).signed) * 0x1p-24
    }

    /// Box-Muller on words (0, 1) and (2, 3), the same IEEE operations in the same order
    /// as `Philox.normals`, so the values are bit-identical.
    @inline(__always)
    static func normals(_ bits: Bits) -> Values {
        let (a0, a1) = boxMuller(bits.0, bits.1)
        let (b0, b1) = boxMuller(bits.2, bits.3)
        var values = Values()
        values.lanes = (a0, a1, b0, b1)
        return values
    }

    @inline(__always)
    static func boxMuller(_ x0: Words, _ x1: Words) -> (Vec, Vec) {
        let u1 = (Vec(converting: (x0 &>> 8).signed) + 1) * 0x1p-24
        let u2 = Vec(converting: (x1 &>> 8).signed) * 0x1p-24
        let radius = VMath.sqrt(-2 * log(u1))
        let (sine, cosine) = sinCos2Pi(u2)
        return (radius * cosine, radius * sine)
    }

    /// `Philox.log` lane by lane (same reduction, same polynomial, same order). The mantissa
    /// test and halving are done on the bits (halving a float in [sqrt 2, 2) is exact, so
    /// this equals `mantissa *= 0.5`): vector selects here make LLVM scalarise the function.
    @inline(__always)
    static func log(_ x: Vec) -> Vec {
        let bits = x.bits
        let mantissaBits = bits & 0x007F_FFFF
        // 1 where the mantissa exceeds sqrt(2) (0x3FB5_04F3), else 0.
        let big = (0x0035_04F3 &- mantissaBits) &>> 31
        let exponent = ((bits &>> 23) & 0xFF).signed &- 127 &+ big.signed
        let mantissa = Vec(bits: (mantissaBits | 0x3F80_0000) &- (big &<< 23))
        let f = mantissa - 1
        let s = f / (2 + f)
        let z = s * s
        let w = z * z
        let t1 = w * (lg2 + w * lg4)
        let t2 = z * (lg1 + w * lg3)
        let r = t2 + t1
        let halfFSquared = 0.5 * f * f
        let e = Vec(converting: exponent)
        return e * ln2High - ((halfFSquared - (s * (halfFSquared + r) + e * ln2Low)) - f)
    }

    /// `Philox.sinCos2Pi` lane by lane; the quadrant's swap and signs are applied with bit
    /// operations for the same reason as in `log`.
    @inline(__always)
    static func sinCos2Pi(_ u: Vec) -> (Vec, Vec) {
        let quarterTurns = (u * 4).rounded(.toNearestOrEven)
        let r = u - quarterTurns * 0.25
        let theta = r * twoPi
        let theta2 = theta * theta
        let sine = theta + theta * theta2 * (sin1 + theta2 * (sin2 + theta2 * (sin3 + theta2 * sin4)))
        let cosine = 1 + theta2 * (cos1 + theta2 * (cos2 + theta2 * (cos3 + theta2 * cos4)))
        // quarterTurns is a small whole number: its low bits after adding 1.5 * 2^23.
        let quadrant = (quarterTurns + VMath.roundMagic).bits & 3
        // Quadrant 0: (s, c); 1: (c, -s); 2: (-s, -c); 3: (-c, s).
        let swap = 0 &- (quadrant & 1) // all ones in odd quadrants
        let first = (sine.bits & ~swap) | (cosine.bits & swap)
        let second = (cosine.bits & ~swap) | (sine.bits & swap)
        let firstSign = (quadrant &>> 1) &<< 31
        let secondSign = ((quadrant ^ (quadrant &>> 1)) & 1) &<< 31
        return (Vec(bits: first ^ firstSign), Vec(bits: second ^ secondSign))
    }

    /// Philox4x32-10 on sixteen counters `first ..< first + 16` (the high word carries).
    @inline(__always)
    static func generate(_ first: UInt64, key: SIMD2<UInt32>) -> Bits {
        let counters = SIMD16<UInt64>(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15) &+ first
        var c0 = counters.truncated
        var c1 = (counters &>> 32).truncated
        var c2 = Words(repeating: 0)
        var c3 = Words(repeating: 0)
        var k0 = key.x, k1 = key.y
        for round in 0..<10 {
            if round > 0 {
                k0 &+= Philox.weyl0
                k1 &+= Philox.weyl1
            }
            let product0 = c0.widened &* UInt64(Philox.multiplier0)
            let product1 = c2.widened &* UInt64(Philox.multiplier1)
            let hi0 = (product0 &>> 32).truncated, lo0 = product0.truncated
            let hi1 = (product1 &>> 32).truncated, lo1 = product1.truncated
            let next0 = hi1 ^ c1 ^ k0
            let next2 = hi0 ^ c3 ^ k1
            c0 = next0
            c1 = lo1
            c2 = next2
            c3 = lo0
        }
        return (c0, c1, c2, c3)
    }

    // The constants of `Philox.log` and `Philox.sinCos2Pi` (internal there); a test checks
    // that this file's normals equal `Philox.normals` bit for bit.
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
