import XCTest
import LatentCore
@testable import LatentCPU

/// Batch normalisation against a Double-precision transcription of PyTorch's definition.
final class BatchNormTests: XCTestCase {
    struct Reference {
        var output: [Float]
        var mean: [Double]
        var inverseStd: [Double]
        var runningMean: [Double]
        var runningVariance: [Double]
    }

    func reference(_ x: [Float], gamma: [Float], beta: [Float], runningMean: [Float], runningVariance: [Float],
                   batch: Int, channels: Int, spatial: Int, momentum: Double, epsilon: Double) -> Reference {
        let n = Double(batch * spatial)
        var result = Reference(output: x, mean: [], inverseStd: [], runningMean: [], runningVariance: [])
        for c in 0..<channels {
            var values: [Double] = []
            for i in 0..<batch { for s in 0..<spatial { values.append(Double(x[(i * channels + c) * spatial + s])) } }
            let mean = values.reduce(0, +) / n
            let variance = values.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / n
            let inverseStd = 1 / (variance + epsilon).squareRoot()
            result.mean.append(mean)
            result.inverseStd.append(inverseStd)
            result.runningMean.append((1 - momentum) * Double(runningMean[c]) + momentum * mean)
            result.runningVariance.append((1 - momentum) * Double(runningVariance[c]) + momentum * variance * n / (n - 1))
            for i in 0..<batch {
                for s in 0..<spatial {
                    let index = (i * channels + c) * spatial + s
                    result.output[index] = Float((Double(x[index]) - mean) * inverseStd * Double(gamma[c]) + Double(beta[c]))
                }
            }
        }
        return result
    }

    /// Shapes for both code paths: spatial 1 (vectorised across channels, with a partial
    /// block of channels) and spatial > 1 (vectorised along rows, with remainders).
    let shapes: [(batch: Int, channels: Int, spatial: Int)] = [
        (8, 5, 1), (33, 40, 1), (4, 3, 5), (3, 6, 17), (16, 8, 49), (2, 4, 196), (64, 16, 16),
    ]

    func testTrainingForwardMatchesReference() throws {
        for threads in [1, 2] {
            let f = Fixture(threads: threads)
            var random = TestRandom(seed: 10)
            for (batch, channels, spatial) in shapes {
                let count = batch * channels * spatial
                // An offset mean makes a one-pass variance lose digits; the two-pass one must not.
                let x = random.array(count).map { 3 + 2 * $0 }
                let gamma = random.array(channels, 0.5, 1.5), beta = random.array(channels)
                let rm = random.array(channels), rv = random.array(channels, 0.5, 2)
                let ref = reference(x, gamma: gamma, beta: beta, runningMean: rm, runningVariance: rv,
                                    batch: batch, channels: channels, spatial: spatial, momentum: 0.1, epsilon: 1e-5)
                let output = try f.zeros(count), runningMean = try f.buffer(rm), runningVariance = try f.buffer(rv)
                let savedMean = try f.zeros(channels), savedInverseStd = try f.zeros(channels)
                try f.backend.batchNormForwardTraining(input: try f.buffer(x), output: output, gamma: try f.buffer(gamma),
                                                       beta: try f.buffer(beta), runningMean: runningMean,
                                                       runningVariance: runningVariance, savedMean: savedMean,
                                                       savedInverseStd: savedInverseStd, batch: batch, channels: channels,
                                                       spatial: spatial, momentum: 0.1, epsilon: 1e-5)
                let label = "\(batch)x\(channels)x\(spatial) threads \(threads)"
                assertClose(try f.read(output), ref.output, absolute: 1e-5, relative: 1e-5, label)
                assertClose(try f.read(savedMean), ref.mean.map(Float.init), absolute: 1e-6, relative: 1e-6, label)
                assertClose(try f.read(savedInverseStd), ref.inverseStd.map(Float.init), absolute: 0, relative: 1e-6, label)
                assertClose(try f.read(runningMean), ref.runningMean.map(Float.init), absolute: 1e-6, relative: 1e-6, label)
                assertClose(try f.read(runningVariance), ref.runningVariance.map(Float.init), absolute: 0, relative: 1e-6, label)
            }
        }
    }

    /// A large offset (1e4 + noise of 1e-2): the variance must still be right to float precision.
    func testVarianceOfOffsetDataIsAccurate() throws {
        let f = Fixture()
        var random = TestRandom(seed: 11)
        let (batch, channels, spatial) = (32, 2, 64)
        let x = random.array(batch * channels * spatial).map { 10_000 + 0.01 * $0 }
        let ref = reference(x, gamma: [1, 1], beta: [0, 0], runningMean: [0, 0], runningVariance: [1, 1],
                            batch: batch, channels: channels, spatial: spatial, momentum: 0.1, epsilon: 0)
        let savedInverseStd = try f.zeros(channels)
        try f.backend.batchNormForwardTraining(input: try f.buffer(x), output: try f.zeros(x.count), gamma: try f.buffer([1, 1]),
                                               beta: try f.buffer([0, 0]), runningMean: try f.zeros(2),
                                               runningVariance: try f.buffer([1, 1]), savedMean: try f.zeros(2),
                                               savedInverseStd: savedInverseStd, batch: batch, channels: channels,
                                               spatial: spatial, momentum: 0.1, epsilon: 0)
        assertClose(try f.read(savedInverseStd), ref.inverseStd.map(Float.init), absolute: 0, relative: 1e-5)
    }

    func testInferenceUsesRunningStatistics() throws {
        let f = Fixture()
        var random = TestRandom(seed: 12)
        for (batch, channels, spatial) in shapes {
            let count = batch * channels * spatial
            let x = random.array(count), gamma = random.array(channels), beta = random.array(channels)
            let rm = random.array(channels), rv = random.array(channels, 0.1, 2)
            var expected = x
            for i in 0..<count {
                let c = (i / spatial) % channels
                expected[i] = Float((Double(x[i]) - Double(rm[c])) / (Double(rv[c]) + 1e-3).squareRoot() * Double(gamma[c]) + Double(beta[c]))
            }
            let output = try f.zeros(count)
            try f.backend.batchNormForwardInference(input: try f.buffer(x), output: output, gamma: try f.buffer(gamma),
                                                    beta: try f.buffer(beta), runningMean: try f.buffer(rm),
                                                    runningVariance: try f.buffer(rv), batch: batch, channels: channels,
                                                    spatial: spatial, epsilon: 1e-3)
            assertClose(try f.read(output), expected, absolute: 1e-5, relative: 1e-5)
        }
    }

    /// Backward against the closed form and against finite differences of
    /// `L = sum(weights * batchnorm(x))` computed in Double.
    func testBackwardMatchesFiniteDifferences() throws {
        for threads in [1, 2] {
            let f = Fixture(threads: threads)
            var random = TestRandom(seed: 13)
            for (batch, channels, spatial) in [(6, 3, 1), (5, 20, 1), (3, 2, 5), (2, 3, 19)] {
                let count = batch * channels * spatial
                let x = random.array(count), gamma = random.array(channels, 0.5, 1.5), beta = random.array(channels)
                let weights = random.array(count)
                func loss(_ input: [Double], _ gammaD: [Double], _ betaD: [Double]) -> Double {
                    var total = 0.0
                    for c in 0..<channels {
                        var values: [(Int, Double)] = []
                        for i in 0..<batch { for s in 0..<spatial {
                            let index = (i * channels + c) * spatial + s
                            values.append((index, input[index]))
                        } }
                        let mean = values.map(\.1).reduce(0, +) / Double(values.count)
                        let variance = values.map { ($0.1 - mean) * ($0.1 - mean) }.reduce(0, +) / Double(values.count)
                        for (index, value) in values {
                            total += Double(weights[index]) * ((value - mean) / (variance + 1e-5).squareRoot() * gammaD[c] + betaD[c])
                        }
                    }
                    return total
                }
                let xD = x.map(Double.init), gD = gamma.map(Double.init), bD = beta.map(Double.init)
                let h = 1e-6
                var dxRef = [Float](), dgRef = [Float](), dbRef = [Float]()
                for i in 0..<count {
                    var plus = xD, minus = xD
                    plus[i] += h
                    minus[i] -= h
                    dxRef.append(Float((loss(plus, gD, bD) - loss(minus, gD, bD)) / (2 * h)))
                }
                for c in 0..<channels {
                    var plus = gD, minus = gD
                    plus[c] += h
                    minus[c] -= h
                    dgRef.append(Float((loss(xD, plus, bD) - loss(xD, minus, bD)) / (2 * h)))
                    plus = bD
                    minus = bD
                    plus[c] += h
                    minus[c] -= h
                    dbRef.append(Float((loss(xD, gD, plus) - loss(xD, gD, minus)) / (2 * h)))
                }

                let input = try f.buffer(x), savedMean = try f.zeros(channels), savedInverseStd = try f.zeros(channels)
                try f.backend.batchNormForwardTraining(input: input, output: try f.zeros(count), gamma: try f.buffer(gamma),
                                                       beta: try f.buffer(beta), runningMean: try f.zeros(channels),
                                                       runningVariance: try f.zeros(channels), savedMean: savedMean,
                                                       savedInverseStd: savedInverseStd, batch: batch, channels: channels,
                                                       spatial: spatial, momentum: 0.1, epsilon: 1e-5)
                let existingG = random.array(channels), existingB = random.array(channels)
                for accumulate in [false, true] {
                    let dx = try f.buffer(random.array(count))
                    let dg = try f.buffer(existingG), db = try f.buffer(existingB)
                    try f.backend.batchNormBackward(gradOutput: try f.buffer(weights), input: input, gamma: try f.buffer(gamma),
                                                    savedMean: savedMean, savedInverseStd: savedInverseStd, gradInput: dx,
                                                    gradGamma: dg, gradBeta: db, batch: batch, channels: channels,
                                                    spatial: spatial, accumulate: accumulate)
                    let label = "\(batch)x\(channels)x\(spatial) accumulate \(accumulate) threads \(threads)"
                    assertClose(try f.read(dx), dxRef, absolute: 2e-4, relative: 1e-3, label)
                    let base: ([Float], [Float]) = accumulate ? (existingG, existingB) : ([Float](repeating: 0, count: channels), [Float](repeating: 0, count: channels))
                    assertClose(try f.read(dg), zip(base.0, dgRef).map { $0 + $1 }, absolute: 2e-4, relative: 1e-3, label)
                    assertClose(try f.read(db), zip(base.1, dbRef).map { $0 + $1 }, absolute: 2e-4, relative: 1e-3, label)
                }
            }
        }
    }

    func testInvalidArgumentsThrow() throws {
        let f = Fixture()
        let x = try f.zeros(12), c = try f.zeros(3)
        assertThrowsLatentError("wrong channel count") {
            try f.backend.batchNormForwardTraining(input: x, output: x, gamma: try f.zeros(2), beta: c, runningMean: c,
                                                   runningVariance: c, savedMean: c, savedInverseStd: c, batch: 2,
                                                   channels: 3, spatial: 2, momentum: 0.1, epsilon: 1e-5)
        }
        assertThrowsLatentError("one value per channel") {
            try f.backend.batchNormForwardTraining(input: try f.zeros(3), output: try f.zeros(3), gamma: c, beta: c,
                                                   runningMean: c, runningVariance: c, savedMean: c, savedInverseStd: c,
                                                   batch: 1, channels: 3, spatial: 1, momentum: 0.1, epsilon: 1e-5)
        }
        assertThrowsLatentError("wrong input size") {
            try f.backend.batchNormBackward(gradOutput: x, input: try f.zeros(11), gamma: c, savedMean: c, savedInverseStd: c,
                                            gradInput: x, gradGamma: c, gradBeta: c, batch: 2, channels: 3, spatial: 2,
                                            accumulate: false)
        }
        assertThrowsLatentError("zero batch") {
            try f.backend.batchNormForwardInference(input: x, output: x, gamma: c, beta: c, runningMean: c, runningVariance: c,
                                                    batch: 0, channels: 3, spatial: 2, epsilon: 1e-5)
        }
    }
}
