import Foundation
import XCTest
import LatentCore
@testable import LatentCPU

/// Philox against Random123's known answers, the vector generator against the scalar
/// definition in `Philox`, and the fills' statistics and independence from threading.
final class RandomTests: XCTestCase {
    /// philox4x32-10 known-answer vectors from Random123's kat_vectors.
    func testPhiloxKnownAnswers() {
        XCTAssertEqual(Philox.block(counter: SIMD4(0, 0, 0, 0), key: SIMD2(0, 0)),
                       SIMD4(0x6627_E8D5, 0xE169_C58D, 0xBC57_AC4C, 0x9B00_DBD8))
        XCTAssertEqual(Philox.block(counter: SIMD4(repeating: 0xFFFF_FFFF), key: SIMD2(repeating: 0xFFFF_FFFF)),
                       SIMD4(0x408F_276D, 0x41C8_3B0E, 0xA20B_C7C6, 0x6D54_51FD))
        XCTAssertEqual(Philox.block(counter: SIMD4(0x243F_6A88, 0x85A3_08D3, 0x1319_8A2E, 0x0370_7344),
                                    key: SIMD2(0xA409_3822, 0x299F_31D0)),
                       SIMD4(0xD16C_FE09, 0x94FD_CCEB, 0x5001_E420, 0x2412_6EA1))
    }

    /// Sixteen blocks in SIMD lanes equal sixteen scalar blocks, across the 2^32 carry.
    func testVectorGeneratorMatchesScalarBlocks() {
        let seed: UInt64 = 0x1234_5678_9ABC_DEF0
        for first: UInt64 in [0, 12_345, 0xFFFF_FFF8, 0x7_FFFF_FFFA, UInt64.max - 7] {
            let bits = PhiloxGroup.generate(first, key: Philox.key(seed: seed))
            for j in 0..<16 {
                let expected = Philox.block(first &+ UInt64(j), seed: seed)
                XCTAssertEqual(SIMD4(bits.0[j], bits.1[j], bits.2[j], bits.3[j]), expected, "block \(first) + \(j)")
            }
        }
    }

    /// The vector Box-Muller equals `Philox.normals` bit for bit (so both backends can
    /// follow the scalar definition).
    func testVectorNormalsMatchScalarDefinition() {
        let seed: UInt64 = 99
        var mismatches = 0
        for group in 0..<2000 {
            let first = UInt64(group * 16)
            let values = PhiloxGroup.normals(PhiloxGroup.generate(first, key: Philox.key(seed: seed)))
            for j in 0..<16 {
                let expected = Philox.normals(Philox.block(first + UInt64(j), seed: seed))
                for w in 0..<4 where values[w][j].bitPattern != expected[w].bitPattern { mismatches += 1 }
            }
        }
        XCTAssertEqual(mismatches, 0)
        // Edge inputs of the log and the quadrant logic.
        var edges = Vec(repeating: 1)
        edges[1] = 0x1p-24
        edges[2] = Float(bitPattern: 0x3FB5_04F3)
        edges[3] = Float(bitPattern: 0x3FB5_04F4) / 2
        let logs = PhiloxGroup.log(edges)
        for lane in 0..<4 { XCTAssertEqual(logs[lane].bitPattern, Philox.log(edges[lane]).bitPattern) }
        var turns = Vec()
        for lane in 0..<16 { turns[lane] = Float(lane) / 16 + 0x1p-24 * Float(lane % 3) }
        turns[15] = 1 - 0x1p-24
        let (sines, cosines) = PhiloxGroup.sinCos2Pi(turns)
        for lane in 0..<16 {
            let (s, c) = Philox.sinCos2Pi(turns[lane])
            XCTAssertEqual(sines[lane].bitPattern, s.bitPattern, "sin lane \(lane)")
            XCTAssertEqual(cosines[lane].bitPattern, c.bitPattern, "cos lane \(lane)")
        }
    }

    /// `Philox.log` and `sinCos2Pi` are within a few ulp of the C library.
    func testPhiloxMathAccuracy() {
        var worstLog = 0.0, worstTrig = 0.0
        var random = TestRandom(seed: 50)
        for i in 0..<200_000 {
            // Every value u1 can take has the form k * 2^-24, k in 1...2^24.
            let x = i < 100 ? Float(i + 1) * 0x1p-24 : (Float(Int(random.uniform(0, 1) * 0x1p24)) + 1) * 0x1p-24
            let reference = Foundation.log(Double(x))
            let logError = abs(Double(Philox.log(x)) - reference) / Double(Float(Swift.max(abs(reference), 1e-7)).ulp)
            worstLog = Swift.max(worstLog, logError)

            let u = Float(Int(random.uniform(0, 1) * 0x1p24)) * 0x1p-24
            let (s, c) = Philox.sinCos2Pi(u)
            let angle = 2 * Double.pi * Double(u)
            // Absolute error in units of 2^-24: what the normals' radius multiplies.
            worstTrig = Swift.max(worstTrig, abs(Double(s) - Foundation.sin(angle)) / 0x1p-24,
                                  abs(Double(c) - Foundation.cos(angle)) / 0x1p-24)
        }
        XCTAssertLessThan(worstLog, 2, "log error in ulp")
        XCTAssertLessThan(worstTrig, 4, "sin/cos error in units of 2^-24")
    }

    /// Element `i` is lane `i % 4` of block `counter + i / 4`: the scalar definition.
    func testFillsFollowTheDocumentedStream() throws {
        let f = Fixture()
        let seed: UInt64 = 0xDEAD_BEEF_0000_0042, counter: UInt64 = 0xFFFF_FFF0
        for count in [1, 3, 4, 5, 63, 64, 65, 1000, 4099] {
            let uniform = try f.zeros(count), normal = try f.zeros(count)
            try f.backend.fillUniform(uniform, low: -2, high: 3, seed: seed, counter: counter)
            try f.backend.fillNormal(normal, mean: 0.5, std: 2, seed: seed, counter: counter)
            let u = try f.read(uniform), n = try f.read(normal)
            for i in 0..<count {
                let block = Philox.block(counter &+ UInt64(i / 4), seed: seed)
                let expectedU = -2 + (3 - -2) * Philox.unitFloat(block[i % 4])
                let expectedN = 0.5 + 2 * Philox.normals(block)[i % 4]
                XCTAssertEqual(u[i].bitPattern, expectedU.bitPattern, "uniform \(i) of \(count)")
                XCTAssertEqual(n[i].bitPattern, expectedN.bitPattern, "normal \(i) of \(count)")
            }
        }
    }

    func testNormalAndUniformStatistics() throws {
        let f = Fixture()
        let count = 1_000_000
        let normal = try f.zeros(count), uniform = try f.zeros(count)
        try f.backend.fillNormal(normal, mean: 0, std: 1, seed: 7, counter: 0)
        try f.backend.fillUniform(uniform, low: 0, high: 1, seed: 7, counter: 1_000)
        let z = try f.read(normal).map(Double.init), u = try f.read(uniform).map(Double.init)
        let mean = z.reduce(0, +) / Double(count)
        let variance = z.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / Double(count)
        let kurtosis = z.map { pow($0 - mean, 4) }.reduce(0, +) / Double(count) / (variance * variance)
        XCTAssertEqual(mean, 0, accuracy: 0.005) // 5 standard errors
        XCTAssertEqual(variance.squareRoot(), 1, accuracy: 0.004)
        XCTAssertEqual(kurtosis, 3, accuracy: 0.03)
        XCTAssertEqual(Double(z.filter { abs($0) < 1 }.count) / Double(count), 0.682_689, accuracy: 0.003)
        let uMean = u.reduce(0, +) / Double(count)
        XCTAssertEqual(uMean, 0.5, accuracy: 0.0015)
        XCTAssertEqual(u.map { ($0 - uMean) * ($0 - uMean) }.reduce(0, +) / Double(count), 1.0 / 12, accuracy: 0.0005)
        XCTAssertTrue(u.allSatisfy { $0 >= 0 && $0 < 1 })
    }

    func testFillsDoNotDependOnThreadCount() throws {
        let one = Fixture(threads: 1), two = Fixture(threads: 2)
        let count = 100_003 // enough for every op to split across two threads
        var random = TestRandom(seed: 51)
        let probabilities = random.array(count, 0, 1), input = random.array(count)
        var results: [[[Float]]] = []
        for f in [one, two] {
            let u = try f.zeros(count), n = try f.zeros(count), b = try f.zeros(count)
            let out = try f.zeros(count), mask = try f.zeros(count)
            try f.backend.fillUniform(u, low: 0, high: 1, seed: 3, counter: 10)
            try f.backend.fillNormal(n, mean: 0, std: 1, seed: 3, counter: 10)
            try f.backend.fillBernoulli(probabilities: try f.buffer(probabilities), output: b, seed: 3, counter: 10)
            try f.backend.dropoutForward(input: try f.buffer(input), output: out, mask: mask, probability: 0.3, seed: 3, counter: 10)
            results.append(try [u, n, b, out, mask].map { try f.read($0) })
        }
        for op in 0..<5 {
            XCTAssertTrue(zip(results[0][op], results[1][op]).allSatisfy { $0.bitPattern == $1.bitPattern }, "op \(op)")
        }
    }

    /// A fill of n at counter c is the fill of m at c followed by the fill of n - m at c + m / 4.
    func testSplitFillsConcatenate() throws {
        let f = Fixture()
        for (n, m) in [(1000, 64), (1000, 4), (999, 500), (130_000, 65_536)] {
            for kind in 0..<2 {
                func fill(_ count: Int, _ counter: UInt64) throws -> [Float] {
                    let view = try f.zeros(count)
                    if kind == 0 {
                        try f.backend.fillUniform(view, low: 0, high: 1, seed: 11, counter: counter)
                    } else {
                        try f.backend.fillNormal(view, mean: 0, std: 1, seed: 11, counter: counter)
                    }
                    return try f.read(view)
                }
                let whole = try fill(n, 77)
                let parts = try fill(m, 77) + fill(n - m, 77 + UInt64(m / 4))
                XCTAssertEqual(whole, parts, "n \(n) m \(m) kind \(kind)")
            }
        }
    }

    func testBernoulliAndDropout() throws {
        let f = Fixture()
        var random = TestRandom(seed: 52)
        let count = 20_000
        let probabilities = random.array(count, 0, 1), input = random.array(count)
        let output = try f.zeros(count)
        try f.backend.fillBernoulli(probabilities: try f.buffer(probabilities), output: output, seed: 5, counter: 9)
        let bits = try f.read(output)
        for i in 0..<count {
            let u = Philox.unitFloat(Philox.block(9 + UInt64(i / 4), seed: 5)[i % 4])
            XCTAssertEqual(bits[i], u < probabilities[i] ? 1 : 0)
        }

        let p: Float = 0.25
        let y = try f.zeros(count), mask = try f.zeros(count)
        try f.backend.dropoutForward(input: try f.buffer(input), output: y, mask: mask, probability: p, seed: 5, counter: 9)
        let m = try f.read(mask), out = try f.read(y)
        for i in 0..<count {
            let u = Philox.unitFloat(Philox.block(9 + UInt64(i / 4), seed: 5)[i % 4])
            XCTAssertEqual(m[i], u >= p ? 1 / (1 - p) : 0)
            XCTAssertEqual(out[i], input[i] * m[i])
        }
        XCTAssertEqual(Double(m.filter { $0 == 0 }.count) / Double(count), 0.25, accuracy: 0.015)

        // p = 0 keeps everything, p = 1 drops everything.
        try f.backend.dropoutForward(input: try f.buffer(input), output: y, mask: mask, probability: 0, seed: 5, counter: 9)
        XCTAssertEqual(try f.read(y), input)
        try f.backend.dropoutForward(input: try f.buffer(input), output: y, mask: mask, probability: 1, seed: 5, counter: 9)
        XCTAssertTrue(try f.read(y).allSatisfy { $0 == 0 })
        assertThrowsLatentError { try f.backend.dropoutForward(input: y, output: y, mask: mask, probability: 1.5, seed: 0, counter: 0) }
        assertThrowsLatentError { try f.backend.dropoutForward(input: y, output: y, mask: try f.zeros(3), probability: 0.5, seed: 0, counter: 0) }
    }
}
