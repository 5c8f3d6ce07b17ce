import XCTest
import LatentCore
@testable import LatentOpenCL

/// The Philox stream on OpenCL equals the CPU backend's bit for bit: uniforms, normals
/// (Box-Muller with the float-only log and sincos), Bernoulli; odd counts, view offsets,
/// counters that carry into the high word, seeds with both halves set.
final class RandomParityTests: XCTestCase {
    static let cases: [(count: Int, seed: UInt64, counter: UInt64)] = [
        (1, 0, 0), (3, 1, 0), (5, 42, 7), (1023, 0xDEAD_BEEF_1234_5678, 0xFFFF_FFFE), (65_537, 7, 1 << 40),
        (100_000, 2024, 123),
    ]

    func testUniformIsBitIdentical() throws {
        let pair = Pair(try OpenCLTestDevice.backend())
        for (count, seed, counter) in Self.cases {
            let d = try pair.buffers([Float](repeating: 0, count: count), offset: 3)
            try pair.cpu.fillUniform(d.cpu, low: -2, high: 3, seed: seed, counter: counter)
            try pair.cl.fillUniform(d.cl, low: -2, high: 3, seed: seed, counter: counter)
            try pair.assertIdentical(d, "uniform \(count) seed \(seed) counter \(counter)")
        }
    }

    func testNormalIsBitIdentical() throws {
        let pair = Pair(try OpenCLTestDevice.backend())
        for (count, seed, counter) in Self.cases {
            let d = try pair.buffers([Float](repeating: 0, count: count), offset: 1)
            try pair.cpu.fillNormal(d.cpu, mean: 0.5, std: 2, seed: seed, counter: counter)
            try pair.cl.fillNormal(d.cl, mean: 0.5, std: 2, seed: seed, counter: counter)
            try pair.assertIdentical(d, "normal \(count) seed \(seed) counter \(counter)")
        }
        // And against the scalar definition in LatentCore.
        let d = try pair.buffers([Float](repeating: 0, count: 8))
        try pair.cl.fillNormal(d.cl, mean: 0, std: 1, seed: 9, counter: 4)
        let (_, values) = try pair.read(d)
        let expected = (0..<2).flatMap { b -> [Float] in
            let z = Philox.normals(Philox.block(4 + UInt64(b), seed: 9))
            return [z.x, z.y, z.z, z.w]
        }
        assertBitIdentical(values, expected, "Philox.normals")
    }

    func testBernoulliIsBitIdentical() throws {
        let pair = Pair(try OpenCLTestDevice.backend())
        var random = TestRandom(seed: 8)
        for (count, seed, counter) in Self.cases.prefix(5) {
            let p = try pair.buffers(random.array(count, 0, 1), offset: 2)
            let o = try pair.buffers([Float](repeating: 0, count: count))
            try pair.cpu.fillBernoulli(probabilities: p.cpu, output: o.cpu, seed: seed, counter: counter)
            try pair.cl.fillBernoulli(probabilities: p.cl, output: o.cl, seed: seed, counter: counter)
            try pair.assertIdentical(o, "bernoulli \(count)")
        }
    }
}
