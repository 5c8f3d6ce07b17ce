import Foundation
import XCTest
import LatentCore
@testable import LatentCPU

/// Sums, losses, KL and the codebook ops against Double references and finite differences.
final class ReduceTests: XCTestCase {
    func testSumIsAccurateAndThreadIndependent() throws {
        var random = TestRandom(seed: 30)
        // 60k values around 1000 with small noise: a float running sum would be off by ~1e-3 relative.
        let values = random.array(60_000).map { 1000 + $0 }
        let exact = values.reduce(0.0) { $0 + Double($1) }
        var results: [Float] = []
        for threads in [1, 2] {
            let f = Fixture(threads: threads)
            let output = try f.zeros(1)
            try f.backend.sum(try f.buffer(values), output: output)
            results.append(try f.read(output)[0])
            assertClose(results.last ?? 0, exact, relative: 1e-7)
        }
        XCTAssertEqual(results[0], results[1], "one and two threads must agree bit for bit")
        let f = Fixture()
        let output = try f.buffer([7])
        try f.backend.sum(try f.zeros(0), output: output)
        XCTAssertEqual(try f.read(output), [0])
        assertThrowsLatentError { try f.backend.sum(try f.zeros(4), output: try f.zeros(2)) }
    }

    func testChannelSum() throws {
        let f = Fixture()
        var random = TestRandom(seed: 31)
        for (batch, channels, spatial) in [(7, 5, 1), (100, 40, 1), (3, 4, 7), (2, 3, 50)] {
            let x = random.array(batch * channels * spatial)
            var expected = [Double](repeating: 0, count: channels)
            for (i, v) in x.enumerated() { expected[(i / spatial) % channels] += Double(v) }
            let existing = random.array(channels)
            for accumulate in [false, true] {
                let output = try f.buffer(existing)
                try f.backend.channelSum(input: try f.buffer(x), output: output, batch: batch, channels: channels,
                                         spatial: spatial, accumulate: accumulate)
                let want = expected.indices.map { Float(expected[$0] + (accumulate ? Double(existing[$0]) : 0)) }
                assertClose(try f.read(output), want, absolute: 1e-5, relative: 1e-6, "\(batch)x\(channels)x\(spatial)")
            }
        }
        assertThrowsLatentError {
            try f.backend.channelSum(input: try f.zeros(10), output: try f.zeros(2), batch: 2, channels: 2, spatial: 3, accumulate: false)
        }
    }

    /// Per-element losses as torch.nn.functional defines them, in Double.
    static func loss(_ kind: LossKind, _ p: Double, _ t: Double) -> Double {
        switch kind {
        case .bce:
            return -(t * Swift.max(Foundation.log(p), -100) + (1 - t) * Swift.max(Foundation.log1p(-p), -100))
        case .bceWithLogits:
            return Swift.max(p, 0) - p * t + Foundation.log1p(Foundation.exp(-abs(p)))
        case .mse:
            return (p - t) * (p - t)
        case .l1:
            return abs(p - t)
        }
    }

    func data(_ kind: LossKind, count: Int, seed: UInt64) -> (prediction: [Float], target: [Float]) {
        var random = TestRandom(seed: seed)
        switch kind {
        case .bce:
            // Probabilities away from 0 and 1 (finite differences) and soft targets, as MNIST pixels are.
            return (random.array(count, 0.02, 0.98), random.array(count, 0, 1))
        case .bceWithLogits:
            return (random.array(count, -30, 30), random.array(count, 0, 1))
        case .mse, .l1:
            return (random.array(count, -2, 2), random.array(count, -2, 2))
        }
    }

    func testLossForwardMatchesReference() throws {
        for threads in [1, 2] {
            let f = Fixture(threads: threads)
            for kind in LossKind.allCases {
                for count in [1, 17, 60_000] {
                    let (p, t) = data(kind, count: count, seed: UInt64(count))
                    let total = zip(p, t).reduce(0.0) { $0 + Self.loss(kind, Double($1.0), Double($1.1)) }
                    for reduction in [Reduction.sum, .mean] {
                        let output = try f.zeros(1)
                        try f.backend.lossForward(kind, prediction: try f.buffer(p), target: try f.buffer(t), output: output,
                                                  reduction: reduction)
                        let expected = reduction == .sum ? total : total / Double(count)
                        assertClose(try f.read(output)[0], expected, relative: 2e-6, absolute: 1e-6, "\(kind) \(reduction) \(count)")
                    }
                }
            }
        }
    }

    /// BCE's log clamp: a confident wrong prediction costs exactly 100, as in PyTorch.
    func testBCEClampsLogs() throws {
        let f = Fixture()
        let output = try f.zeros(1)
        try f.backend.lossForward(.bce, prediction: try f.buffer([0, 1, 0, 1]), target: try f.buffer([1, 0, 0, 1]),
                                  output: output, reduction: .sum)
        XCTAssertEqual(try f.read(output), [200])
        // Stable logits: huge logits give finite, exact losses.
        try f.backend.lossForward(.bceWithLogits, prediction: try f.buffer([100, -100, 100]), target: try f.buffer([1, 0, 0]),
                                  output: output, reduction: .sum)
        XCTAssertEqual(try f.read(output)[0], 100, accuracy: 1e-4)
    }

    func testLossBackwardMatchesFiniteDifferences() throws {
        let f = Fixture()
        var random = TestRandom(seed: 32)
        for kind in LossKind.allCases {
            let count = 301
            var (p, t) = data(kind, count: count, seed: 33)
            if kind == .l1 { p[0] = t[0] } // sign(0) = 0
            let existing = random.array(count)
            for reduction in [Reduction.sum, .mean] {
                for accumulate in [false, true] {
                    let scale: Float = 0.7
                    let grad = try f.buffer(existing)
                    try f.backend.lossBackward(kind, prediction: try f.buffer(p), target: try f.buffer(t), gradPrediction: grad,
                                               reduction: reduction, scale: scale, accumulate: accumulate)
                    let divisor = reduction == .mean ? Double(count) : 1
                    let h = 1e-6
                    let expected = (0..<count).map { i -> Float in
                        let pi = Double(p[i]), ti = Double(t[i])
                        let derivative = kind == .l1 && p[i] == t[i] ? 0
                            : (Self.loss(kind, pi + h, ti) - Self.loss(kind, pi - h, ti)) / (2 * h)
                        return Float(Double(scale) * derivative / divisor + (accumulate ? Double(existing[i]) : 0))
                    }
                    assertClose(try f.read(grad), expected, absolute: 1e-5, relative: 1e-4, "\(kind) \(reduction) \(accumulate)")
                }
            }
        }
    }

    static func kl(_ mu: Double, _ p: Double, _ parameterization: GaussianParameterization) -> Double {
        switch parameterization {
        case .logVariance: return -0.5 * (1 + p - mu * mu - Foundation.exp(p))
        case .logStd: return -0.5 * (1 + 2 * p - mu * mu - Foundation.exp(2 * p))
        case .std: return -Foundation.log(p) + 0.5 * (p * p + mu * mu - 1)
        }
    }

    func testKLDivergenceAndGradient() throws {
        let f = Fixture()
        var random = TestRandom(seed: 34)
        for parameterization in [GaussianParameterization.logVariance, .logStd, .std] {
            for count in [5, 20 * 128] {
                let mu = random.array(count, -2, 2)
                let p = parameterization == .std ? random.array(count, 0.05, 3) : random.array(count, -4, 2)
                let output = try f.zeros(1)
                try f.backend.klDivergence(mean: try f.buffer(mu), parameter: try f.buffer(p),
                                           parameterization: parameterization, output: output)
                let expected = zip(mu, p).reduce(0.0) { $0 + Self.kl(Double($1.0), Double($1.1), parameterization) }
                assertClose(try f.read(output)[0], expected, relative: 1e-6, absolute: 1e-5, "\(parameterization)")

                let existing = random.array(count)
                for accumulate in [false, true] {
                    let gradMean = try f.buffer(existing), gradParameter = try f.buffer(existing)
                    try f.backend.klDivergenceBackward(mean: try f.buffer(mu), parameter: try f.buffer(p),
                                                       parameterization: parameterization, scale: 0.5,
                                                       gradMean: gradMean, gradParameter: gradParameter, accumulate: accumulate)
                    let h = 1e-6
                    let base = accumulate ? existing : [Float](repeating: 0, count: count)
                    let wantMean = (0..<count).map { i in
                        Float(Double(base[i]) + 0.5 * (Self.kl(Double(mu[i]) + h, Double(p[i]), parameterization)
                            - Self.kl(Double(mu[i]) - h, Double(p[i]), parameterization)) / (2 * h))
                    }
                    let wantParameter = (0..<count).map { i in
                        Float(Double(base[i]) + 0.5 * (Self.kl(Double(mu[i]), Double(p[i]) + h, parameterization)
                            - Self.kl(Double(mu[i]), Double(p[i]) - h, parameterization)) / (2 * h))
                    }
                    assertClose(try f.read(gradMean), wantMean, absolute: 1e-5, relative: 1e-4, "\(parameterization)")
                    assertClose(try f.read(gradParameter), wantParameter, absolute: 1e-5, relative: 1e-4, "\(parameterization)")
                }
            }
        }
    }

    func testCountNonFinite() throws {
        for threads in [1, 2] {
            let f = Fixture(threads: threads)
            var values = [Float](repeating: 1, count: 100_037)
            let positions = [0, 15, 16, 17, 5000, 50_000, 100_036]
            let specials: [Float] = [.nan, .infinity, -.infinity, .nan, .signalingNaN, -.nan, .infinity]
            for (position, special) in zip(positions, specials) { values[position] = special }
            values[3] = .greatestFiniteMagnitude
            values[4] = .leastNonzeroMagnitude
            let output = try f.zeros(1)
            try f.backend.countNonFinite(try f.buffer(values), output: output)
            XCTAssertEqual(try f.read(output), [7])
        }
    }

    func testNearestCodebookEntry() throws {
        let f = Fixture()
        var random = TestRandom(seed: 35)
        for (rows, entries, width) in [(50, 7, 3), (200, 64, 16), (33, 10, 37)] {
            let input = random.array(rows * width)
            var codebook = random.array(entries * width)
            // Entry 5 duplicates entry 2: a tie that must resolve to 2.
            for i in 0..<width { codebook[5 * width + i] = codebook[2 * width + i] }
            var inputWithTie = input
            for i in 0..<width { inputWithTie[i] = codebook[5 * width + i] + 1e-3 }
            var expected = [Float]()
            for r in 0..<rows {
                var best = Double.infinity, bestIndex = 0
                for e in 0..<entries {
                    var distance = 0.0
                    for i in 0..<width {
                        let d = Double(inputWithTie[r * width + i]) - Double(codebook[e * width + i])
                        distance += d * d
                    }
                    if distance < best { best = distance; bestIndex = e }
                }
                expected.append(Float(bestIndex))
            }
            let indices = try f.zeros(rows)
            try f.backend.nearestCodebookEntry(input: try f.buffer(inputWithTie), codebook: try f.buffer(codebook),
                                               indices: indices, rows: rows, entries: entries, width: width)
            XCTAssertEqual(try f.read(indices), expected)
            XCTAssertEqual(try f.read(indices)[0], 2)
        }
        assertThrowsLatentError {
            try f.backend.nearestCodebookEntry(input: try f.zeros(6), codebook: try f.zeros(6), indices: try f.zeros(3),
                                               rows: 3, entries: 3, width: 3)
        }
    }

    func testGatherAndScatterRows() throws {
        let f = Fixture()
        var random = TestRandom(seed: 36)
        let (tableRows, width, rows) = (9, 20, 40)
        let table = random.array(tableRows * width), grad = random.array(rows * width)
        var indices = (0..<rows).map { _ in Float(Int(random.uniform(0, Float(tableRows)))) }
        indices[1] = indices[0] // repeated rows accumulate
        let output = try f.zeros(rows * width)
        try f.backend.gatherRows(table: try f.buffer(table), indices: try f.buffer(indices), output: output, rows: rows, width: width)
        let gathered = (0..<rows * width).map { table[Int(indices[$0 / width]) * width + $0 % width] }
        XCTAssertEqual(try f.read(output), gathered)

        for threads in [1, 2] {
            let fixture = Fixture(threads: threads)
            let gradTable = try fixture.buffer(table)
            try fixture.backend.scatterAddRows(gradOutput: try fixture.buffer(grad), indices: try fixture.buffer(indices),
                                               gradTable: gradTable, rows: rows, width: width)
            var expected = table.map(Double.init)
            for r in 0..<rows { for i in 0..<width { expected[Int(indices[r]) * width + i] += Double(grad[r * width + i]) } }
            assertClose(try fixture.read(gradTable), expected.map(Float.init), absolute: 1e-6, relative: 1e-6)
        }

        for bad: Float in [-1, Float(tableRows), 2.5, .nan] {
            var badIndices = indices
            badIndices[3] = bad
            assertThrowsLatentError("index \(bad)") {
                try f.backend.gatherRows(table: try f.buffer(table), indices: try f.buffer(badIndices), output: output,
                                         rows: rows, width: width)
            }
            assertThrowsLatentError("index \(bad)") {
                try f.backend.scatterAddRows(gradOutput: try f.buffer(grad), indices: try f.buffer(badIndices),
                                             gradTable: try f.buffer(table), rows: rows, width: width)
            }
        }
        assertThrowsLatentError("table not whole rows") {
            try f.backend.gatherRows(table: try f.zeros(7), indices: try f.buffer([0]), output: try f.zeros(2), rows: 1, width: 2)
        }
    }
}
