import XCTest
import LatentCore
@testable import LatentCPU

/// The CPU backend's reproducible mode (`CPUBackend+Reproducible.swift`): every op that sums
/// gives exactly what a plain Double loop in the documented order gives, rounded to Float once;
/// one thread and two give the same bits; and the results are the fast mode's to float rounding.
///
/// Random data alone cannot tell summation orders apart (Double sums of float products round
/// back to the same floats), so the exact tests also run on "order-sensitive" data: two
/// blocks of terms 2^40 times larger than the rest and opposite in sign, second and last in
/// the documented order, that cancel exactly; the small terms before and between them are
/// added while the partial sum is ~2^40 and lose bits that depend on the order. (Not first
/// and last: then the partial sums of any order that keeps the blocks at the ends are each
/// other's negatives, the small terms round on the same grid and the order does not show.)
/// Each such test checks that the reference summed backwards differs, so that the data
/// really does tell orders apart.
final class ReproducibleTests: XCTestCase {
    static let huge: Float = 0x1p40

    static func geometries() throws -> [ConvGeometry] {
        [
            // Non-square kernel, unequal strides and padding, odd sizes.
            try ConvGeometry(batch: 3, inChannels: 5, height: 13, width: 7, outChannels: 3, kernelHeight: 3, kernelWidth: 4,
                             strideHeight: 2, strideWidth: 1, padHeight: 1, padWidth: 2),
            try ConvGeometry(batch: 3, inChannels: 3, height: 7, width: 7, outChannels: 5, kernel: 4, stride: 2, padding: 1),
            try ConvGeometry(batch: 4, inChannels: 3, height: 13, width: 13, outChannels: 17, kernel: 3, stride: 2, padding: 0),
            // The CPU's 4-output x 32-lane tiles with leftovers: batch 37 (forward and backward-data lanes),
            // 33 input channels (weight-gradient lanes), 33 output channels (lanes when there are fewer inputs).
            try ConvGeometry(batch: 37, inChannels: 5, height: 5, width: 5, outChannels: 6, kernel: 3, stride: 1, padding: 1),
            try ConvGeometry(batch: 3, inChannels: 33, height: 6, width: 6, outChannels: 5, kernel: 4, stride: 2, padding: 1),
            try ConvGeometry(batch: 3, inChannels: 5, height: 6, width: 6, outChannels: 33, kernel: 4, stride: 2, padding: 1),
            // A transposed convolution (3 -> 5 channels, 7x7 -> 14x14): its forward is backward-data with a bias.
            try ConvGeometry.transposed(batch: 3, inChannels: 5, height: 7, width: 7, outChannels: 3, kernel: 3, stride: 2,
                                        padding: 1, outputPadding: 1),
        ]
    }

    // MARK: (a) Bit for bit the documented order

    func testGemmMatchesDoubleLoopInOrder() throws {
        var random = TestRandom(seed: 1)
        let run = CPURun(CPUBackend(threads: 2, reproducible: true))
        for (m, n, k) in [(37, 29, 53), (5, 7, 13), (1, 3, 4)] {
            for transA in [Transpose.none, .transposed] {
                for transB in [Transpose.none, .transposed] {
                    for (alpha, beta) in [(Float(1), Float(0)), (-1.25, 0.75), (0.5, 1)] {
                        for sensitive in [false, true] {
                            let c = GemmCase(&random, transA, transB, m: m, n: n, k: k, alpha: alpha, beta: beta,
                                             sensitive: sensitive)
                            let label = "gemm \(m)x\(n)x\(k) \(transA) \(transB) alpha \(alpha) beta \(beta) sensitive \(sensitive)"
                            let expected = Reference.gemm(c)
                            assertSameBits(try run.gemm(c), expected, label)
                            if sensitive { assertOrderMatters(expected, Reference.gemm(c, reversed: true), label) }
                        }
                    }
                }
            }
        }
    }

    func testConvolutionPassesMatchDoubleLoopsInOrder() throws {
        var random = TestRandom(seed: 2)
        let run = CPURun(CPUBackend(threads: 2, reproducible: true))
        for g in try Self.geometries() {
            for sensitive in [false, true] {
                let forward = ConvCase(&random, g, .forward, sensitive: sensitive)
                for bias in [nil, forward.outBias] {
                    let label = "forward \(g) bias \(bias != nil) sensitive \(sensitive)"
                    let expected = Reference.convForward(g, x: forward.x, w: forward.w, bias: bias)
                    assertSameBits(try run.convForward(g, x: forward.x, w: forward.w, bias: bias), expected, label)
                    if sensitive {
                        assertOrderMatters(expected, Reference.convForward(g, x: forward.x, w: forward.w, bias: bias, reversed: true), label)
                    }
                }
                let data = ConvCase(&random, g, .backwardData, sensitive: sensitive)
                for bias in [nil, data.inBias] {
                    for old in [nil, data.oldDx] {
                        let label = "backward data \(g) bias \(bias != nil) accumulate \(old != nil) sensitive \(sensitive)"
                        let expected = Reference.convBackwardData(g, dy: data.dy, w: data.w, bias: bias, old: old)
                        assertSameBits(try run.convBackwardData(g, dy: data.dy, w: data.w, bias: bias, old: old), expected, label)
                        if sensitive {
                            assertOrderMatters(expected, Reference.convBackwardData(g, dy: data.dy, w: data.w, bias: bias, old: old,
                                                                                    reversed: true), label)
                        }
                    }
                }
                let weights = ConvCase(&random, g, .backwardWeights, sensitive: sensitive)
                for old in [nil, weights.oldDw] {
                    let label = "backward weights \(g) accumulate \(old != nil) sensitive \(sensitive)"
                    let expected = Reference.convBackwardWeights(g, x: weights.x, dy: weights.dy, old: old)
                    assertSameBits(try run.convBackwardWeights(g, x: weights.x, dy: weights.dy, old: old), expected, label)
                    if sensitive {
                        assertOrderMatters(expected, Reference.convBackwardWeights(g, x: weights.x, dy: weights.dy, old: old,
                                                                                   reversed: true), label)
                    }
                }
            }
        }
    }

    func testBatchNormTrainingMatchesDoubleLoopInOrder() throws {
        var random = TestRandom(seed: 3)
        let run = CPURun(CPUBackend(threads: 2, reproducible: true))
        for (batch, channels, spatial) in [(3, 5, 13), (7, 17, 1), (4, 3, 49)] {
            for sensitive in [false, true] {
                let c = NormCase(&random, batch: batch, channels: channels, spatial: spatial, sensitive: sensitive)
                let label = "batch norm training \(batch)x\(channels)x\(spatial) sensitive \(sensitive)"
                let expected = Reference.batchNormTraining(c)
                let actual = try run.batchNormTraining(c)
                for (name, a, e) in zip3(NormCase.trainingOutputs, actual, expected) { assertSameBits(a, e, "\(label) \(name)") }
                if sensitive {
                    assertOrderMatters(expected.flatMap { $0 }, Reference.batchNormTraining(c, reversed: true).flatMap { $0 }, label)
                }
            }
        }
    }

    func testBatchNormBackwardMatchesDoubleLoopInOrder() throws {
        var random = TestRandom(seed: 4)
        let run = CPURun(CPUBackend(threads: 2, reproducible: true))
        for (batch, channels, spatial) in [(3, 5, 13), (7, 17, 1), (4, 3, 49)] {
            for sensitive in [false, true] {
                let c = NormCase(&random, batch: batch, channels: channels, spatial: spatial, sensitive: sensitive)
                for accumulate in [false, true] {
                    let label = "batch norm backward \(batch)x\(channels)x\(spatial) accumulate \(accumulate) sensitive \(sensitive)"
                    let expected = Reference.batchNormBackward(c, accumulate: accumulate)
                    let actual = try run.batchNormBackward(c, accumulate: accumulate)
                    for (name, a, e) in zip3(NormCase.backwardOutputs, actual, expected) { assertSameBits(a, e, "\(label) \(name)") }
                    if sensitive {
                        assertOrderMatters(expected.flatMap { $0 },
                                           Reference.batchNormBackward(c, accumulate: accumulate, reversed: true).flatMap { $0 }, label)
                    }
                }
            }
        }
    }

    func testChannelSumMatchesDoubleLoopInOrder() throws {
        var random = TestRandom(seed: 5)
        let run = CPURun(CPUBackend(threads: 2, reproducible: true))
        for (batch, channels, spatial) in [(3, 5, 13), (7, 17, 1), (4, 3, 49)] {
            for sensitive in [false, true] {
                let c = NormCase(&random, batch: batch, channels: channels, spatial: spatial, sensitive: sensitive)
                for old in [nil, c.oldGamma] {
                    let label = "channelSum \(batch)x\(channels)x\(spatial) accumulate \(old != nil) sensitive \(sensitive)"
                    let expected = Reference.channelSum(c.dy, batch: batch, channels: channels, spatial: spatial, old: old)
                    assertSameBits(try run.channelSum(c.dy, batch: batch, channels: channels, spatial: spatial, old: old), expected, label)
                    if sensitive {
                        assertOrderMatters(expected, Reference.channelSum(c.dy, batch: batch, channels: channels, spatial: spatial,
                                                                          old: old, reversed: true), label)
                    }
                }
            }
        }
    }

    // MARK: (b) Threads split outputs, never a sum

    /// Shapes with enough work for two threads to take part (over 2 x 32,768 multiply-adds),
    /// on order-sensitive data, where a sum split between threads would show.
    func testOneAndTwoThreadsGiveTheSameBits() throws {
        var random = TestRandom(seed: 6)
        let one = CPURun(CPUBackend(threads: 1, reproducible: true)), two = CPURun(CPUBackend(threads: 2, reproducible: true))
        for transA in [Transpose.none, .transposed] {
            for transB in [Transpose.none, .transposed] {
                let c = GemmCase(&random, transA, transB, m: 67, n: 61, k: 53, alpha: -1.25, beta: 0.75, sensitive: true)
                assertSameBits(try two.gemm(c), try one.gemm(c), "gemm \(transA) \(transB)")
            }
        }
        let geometries = [
            try ConvGeometry(batch: 3, inChannels: 5, height: 13, width: 13, outChannels: 17, kernel: 3, stride: 1, padding: 1),
            try ConvGeometry(batch: 4, inChannels: 7, height: 13, width: 13, outChannels: 9, kernel: 4, stride: 2, padding: 2),
        ]
        for g in geometries {
            let forward = ConvCase(&random, g, .forward, sensitive: true)
            assertSameBits(try two.convForward(g, x: forward.x, w: forward.w, bias: forward.outBias),
                           try one.convForward(g, x: forward.x, w: forward.w, bias: forward.outBias), "forward \(g)")
            let data = ConvCase(&random, g, .backwardData, sensitive: true)
            assertSameBits(try two.convBackwardData(g, dy: data.dy, w: data.w, bias: data.inBias, old: data.oldDx),
                           try one.convBackwardData(g, dy: data.dy, w: data.w, bias: data.inBias, old: data.oldDx), "backward data \(g)")
            let weights = ConvCase(&random, g, .backwardWeights, sensitive: true)
            assertSameBits(try two.convBackwardWeights(g, x: weights.x, dy: weights.dy, old: nil),
                           try one.convBackwardWeights(g, x: weights.x, dy: weights.dy, old: nil), "backward weights \(g)")
        }
        let norm = NormCase(&random, batch: 16, channels: 17, spatial: 289, sensitive: true)
        for (name, a, e) in zip3(NormCase.trainingOutputs, try two.batchNormTraining(norm), try one.batchNormTraining(norm)) {
            assertSameBits(a, e, "batch norm training \(name)")
        }
        for (name, a, e) in zip3(NormCase.backwardOutputs, try two.batchNormBackward(norm, accumulate: true),
                                 try one.batchNormBackward(norm, accumulate: true)) {
            assertSameBits(a, e, "batch norm backward \(name)")
        }
        assertSameBits(try two.channelSum(norm.dy, batch: 16, channels: 17, spatial: 289, old: nil),
                       try one.channelSum(norm.dy, batch: 16, channels: 17, spatial: 289, old: nil), "channelSum")
    }

    // MARK: (c) The same maths as the fast mode

    func testGemmAgreesWithFastMode() throws {
        var random = TestRandom(seed: 7)
        let (exact, fast) = (CPURun(CPUBackend(threads: 2, reproducible: true)), CPURun(CPUBackend(threads: 2)))
        for (m, n, k) in [(37, 29, 53), (130, 67, 300)] {
            for transA in [Transpose.none, .transposed] {
                for transB in [Transpose.none, .transposed] {
                    for (alpha, beta) in [(Float(1), Float(0)), (-1.25, 0.75)] {
                        let c = GemmCase(&random, transA, transB, m: m, n: n, k: k, alpha: alpha, beta: beta, sensitive: false)
                        assertAgree(try exact.gemm(c), try fast.gemm(c), "gemm \(m)x\(n)x\(k) \(transA) \(transB) beta \(beta)")
                    }
                }
            }
        }
    }

    /// Batches of 16 and more take the fast mode's batch-inner and Winograd paths, below it im2col.
    func testConvolutionAgreesWithFastMode() throws {
        var random = TestRandom(seed: 8)
        let (exact, fast) = (CPURun(CPUBackend(threads: 2, reproducible: true)), CPURun(CPUBackend(threads: 2)))
        let geometries = try Self.geometries() + [
            try ConvGeometry(batch: 16, inChannels: 17, height: 13, width: 13, outChannels: 19, kernel: 3, stride: 1, padding: 1),
            try ConvGeometry(batch: 17, inChannels: 9, height: 13, width: 13, outChannels: 18, kernel: 4, stride: 2, padding: 1),
        ]
        for g in geometries {
            let c = ConvCase(&random, g, .forward, sensitive: false)
            assertAgree(try exact.convForward(g, x: c.x, w: c.w, bias: c.outBias), try fast.convForward(g, x: c.x, w: c.w, bias: c.outBias),
                        "forward \(g)")
            for old in [nil, c.oldDx] {
                assertAgree(try exact.convBackwardData(g, dy: c.dy, w: c.w, bias: c.inBias, old: old),
                            try fast.convBackwardData(g, dy: c.dy, w: c.w, bias: c.inBias, old: old), "backward data \(g) \(old != nil)")
            }
            for old in [nil, c.oldDw] {
                assertAgree(try exact.convBackwardWeights(g, x: c.x, dy: c.dy, old: old),
                            try fast.convBackwardWeights(g, x: c.x, dy: c.dy, old: old), "backward weights \(g) \(old != nil)")
            }
        }
    }

    func testBatchNormAndChannelSumAgreeWithFastMode() throws {
        var random = TestRandom(seed: 9)
        let (exact, fast) = (CPURun(CPUBackend(threads: 2, reproducible: true)), CPURun(CPUBackend(threads: 2)))
        for (batch, channels, spatial) in [(3, 5, 13), (64, 17, 1), (4, 3, 49)] {
            let c = NormCase(&random, batch: batch, channels: channels, spatial: spatial, sensitive: false)
            let shape = "\(batch)x\(channels)x\(spatial)"
            for (name, a, e) in zip3(NormCase.trainingOutputs, try exact.batchNormTraining(c), try fast.batchNormTraining(c)) {
                assertAgree(a, e, "batch norm training \(shape) \(name)")
            }
            assertAgree(try exact.batchNormInference(c), try fast.batchNormInference(c), "batch norm inference \(shape)")
            for accumulate in [false, true] {
                for (name, a, e) in zip3(NormCase.backwardOutputs, try exact.batchNormBackward(c, accumulate: accumulate),
                                         try fast.batchNormBackward(c, accumulate: accumulate)) {
                    assertAgree(a, e, "batch norm backward \(shape) \(accumulate) \(name)")
                }
            }
            for old in [nil, c.oldGamma] {
                assertAgree(try exact.channelSum(c.dy, batch: batch, channels: channels, spatial: spatial, old: old),
                            try fast.channelSum(c.dy, batch: batch, channels: channels, spatial: spatial, old: old),
                            "channelSum \(shape) \(old != nil)")
            }
        }
    }

    func testSumLossesKLAxpbyAndCodebookAgreeWithFastMode() throws {
        var random = TestRandom(seed: 10)
        let (exact, fast) = (CPURun(CPUBackend(threads: 2, reproducible: true)), CPURun(CPUBackend(threads: 2)))
        for n in [1, 13, 5003] {
            let values = random.array(n, -1, 3)
            assertAgree(try exact.scalar { try $0.sum($1(values), output: $2) }, try fast.scalar { try $0.sum($1(values), output: $2) },
                        "sum \(n)")
            var probabilities = random.array(n, 0.001, 0.999), targets = random.array(n, 0, 1)
            if n > 2 { (probabilities[0], probabilities[1], targets[0], targets[1]) = (0, 1, 0, 1) }
            for kind in LossKind.allCases {
                let prediction = kind == .bce ? probabilities : random.array(n, -4, 4)
                for reduction in [Reduction.sum, .mean] {
                    let forward: (CPUBackend, ([Float]) throws -> BufferView, BufferView) throws -> Void = {
                        try $0.lossForward(kind, prediction: $1(prediction), target: $1(targets), output: $2, reduction: reduction)
                    }
                    assertAgree(try exact.scalar(forward), try fast.scalar(forward), "\(kind) \(reduction) forward \(n)")
                    let old = random.array(n)
                    for accumulate in [false, true] {
                        let backward: (CPUBackend, ([Float]) throws -> BufferView) throws -> BufferView = { backend, upload in
                            let grad = try upload(old)
                            try backend.lossBackward(kind, prediction: upload(prediction), target: upload(targets), gradPrediction: grad,
                                                     reduction: reduction, scale: 0.7, accumulate: accumulate)
                            return grad
                        }
                        assertAgree(try exact.output(backward), try fast.output(backward), "\(kind) \(reduction) backward \(n) \(accumulate)")
                    }
                }
            }
            let mean = random.array(n, -2, 2)
            for (parameterization, parameter) in [(GaussianParameterization.logVariance, random.array(n, -3, 2)),
                                                  (.logStd, random.array(n, -2, 1)), (.std, random.array(n, 0.05, 3))] {
                let kl: (CPUBackend, ([Float]) throws -> BufferView, BufferView) throws -> Void = {
                    try $0.klDivergence(mean: $1(mean), parameter: $1(parameter), parameterization: parameterization, output: $2)
                }
                assertAgree(try exact.scalar(kl), try fast.scalar(kl), "KL \(parameterization) \(n)")
            }
            let x = random.array(n), y = random.array(n)
            for (alpha, beta) in [(Float(0.7), Float(0)), (-1.3, 0.25)] {
                let axpby: (CPUBackend, ([Float]) throws -> BufferView) throws -> BufferView = { backend, upload in
                    let out = try upload(y)
                    try backend.axpby(alpha: alpha, x: upload(x), beta: beta, y: out)
                    return out
                }
                assertAgree(try exact.output(axpby), try fast.output(axpby), "axpby \(alpha) \(beta) \(n)")
            }
        }
        // Well separated entries, so float and Double distances pick the same one.
        let (rows, entries, width) = (37, 17, 5)
        let table = random.array(entries * width, -4, 4), input = random.array(rows * width, -4, 4)
        let nearest: (CPUBackend, ([Float]) throws -> BufferView) throws -> BufferView = { backend, upload in
            let indices = try upload([Float](repeating: -1, count: rows))
            try backend.nearestCodebookEntry(input: upload(input), codebook: upload(table), indices: indices,
                                             rows: rows, entries: entries, width: width)
            return indices
        }
        XCTAssertEqual(try exact.output(nearest), try fast.output(nearest), "nearestCodebookEntry")
    }
}

// MARK: - Test data

/// A GEMM's operands as stored (row strides wider than the matrices, the unused floats NaN
/// so that reading one shows), from logical A (m x k) and B (k x n).
private struct GemmCase {
    let transA: Transpose, transB: Transpose
    let m: Int, n: Int, k: Int, alpha: Float, beta: Float
    let a: [Float], lda: Int, b: [Float], ldb: Int, c: [Float], ldc: Int

    init(_ random: inout TestRandom, _ transA: Transpose, _ transB: Transpose, m: Int, n: Int, k: Int,
         alpha: Float, beta: Float, sensitive: Bool) {
        (self.transA, self.transB, self.m, self.n, self.k, self.alpha, self.beta) = (transA, transB, m, n, k, alpha, beta)
        var logicalA = random.array(m * k), logicalB = random.array(k * n)
        if sensitive && k >= 4 {
            // Terms k = 1 and k - 2 are A(i, 1) * 2^40 * B(1, j) and its negative.
            mirror(&logicalA, middle: k, inner: 1, from: 1, to: k - 2, scale: ReproducibleTests.huge)
            mirror(&logicalB, middle: k, inner: n, from: 1, to: k - 2, sign: -1)
        }
        (a, lda) = Self.store(logicalA, rows: m, columns: k, transposed: transA == .transposed, padding: 3)
        (b, ldb) = Self.store(logicalB, rows: k, columns: n, transposed: transB == .transposed, padding: 1)
        ldc = n + 2
        // beta 0 must not read C: NaN there would show.
        c = beta == 0 ? [Float](repeating: .nan, count: m * ldc) : random.array(m * ldc)
    }

    static func store(_ logical: [Float], rows: Int, columns: Int, transposed: Bool, padding: Int) -> ([Float], Int) {
        let (storedRows, storedColumns) = transposed ? (columns, rows) : (rows, columns)
        let ld = storedColumns + padding
        var stored = [Float](repeating: .nan, count: Swift.max(1, storedRows * ld))
        for i in 0..<rows {
            for j in 0..<columns { stored[transposed ? j * ld + i : i * ld + j] = logical[i * columns + j] }
        }
        return (stored, ld)
    }
}

/// One convolution's data. `sensitive` makes the sums of `pass` order-sensitive: the second and
/// last of the summed-over channels (input channels forward, output channels backward-data) or
/// images (backward-weights) hold the same data, with weights or gradients 2^40 times larger and
/// opposite in sign.
private struct ConvCase {
    enum Pass { case forward, backwardData, backwardWeights }
    var x: [Float], w: [Float], dy: [Float]
    let outBias: [Float], inBias: [Float], oldDx: [Float], oldDw: [Float]

    init(_ random: inout TestRandom, _ g: ConvGeometry, _ pass: Pass, sensitive: Bool) {
        x = random.array(g.inputCount)
        w = random.array(g.weightCount)
        dy = random.array(g.outputCount)
        outBias = random.array(g.outChannels)
        inBias = random.array(g.inChannels)
        oldDx = random.array(g.inputCount)
        oldDw = random.array(g.weightCount)
        guard sensitive else { return }
        let taps = g.kernelHeight * g.kernelWidth, huge = ReproducibleTests.huge
        switch pass {
        case .forward:
            mirror(&x, middle: g.inChannels, inner: g.inHeight * g.inWidth, from: 1, to: g.inChannels - 1)
            mirror(&w, middle: g.inChannels, inner: taps, from: 1, to: g.inChannels - 1, scale: huge, sign: -1)
        case .backwardData:
            mirror(&dy, middle: g.outChannels, inner: g.outHeight * g.outWidth, from: 1, to: g.outChannels - 1)
            mirror(&w, middle: g.outChannels, inner: g.inChannels * taps, from: 1, to: g.outChannels - 1, scale: huge, sign: -1)
        case .backwardWeights:
            mirror(&x, middle: g.batch, inner: g.inChannels * g.inHeight * g.inWidth, from: 1, to: g.batch - 1)
            mirror(&dy, middle: g.batch, inner: g.outChannels * g.outHeight * g.outWidth, from: 1, to: g.batch - 1,
                   scale: huge, sign: -1)
        }
    }
}

/// Batch norm's and channelSum's data (N, C, S). `sensitive`: the second and last images of x
/// (training) and dy are 2^40 times larger and opposite, so sum(x), sum(dy) and
/// sum((x - mean) * dy) (over `backwardX`, whose second and last images are equal) cancel.
private struct NormCase {
    static let trainingOutputs = ["y", "savedMean", "savedInverseStd", "runningMean", "runningVariance"]
    static let backwardOutputs = ["gradInput", "gradGamma", "gradBeta"]
    static let momentum: Float = 0.1, epsilon: Float = 1e-5
    let batch: Int, channels: Int, spatial: Int
    var x: [Float], dy: [Float]
    let gamma: [Float], beta: [Float], runningMean: [Float], runningVariance: [Float]
    let savedMean: [Float], savedInverseStd: [Float], oldGamma: [Float], oldBeta: [Float]
    /// The input of the backward tests: x unscaled, the last image equal to the second when sensitive.
    let backwardX: [Float]

    init(_ random: inout TestRandom, batch: Int, channels: Int, spatial: Int, sensitive: Bool) {
        (self.batch, self.channels, self.spatial) = (batch, channels, spatial)
        let count = batch * channels * spatial
        x = random.array(count, -2, 3)
        dy = random.array(count)
        gamma = random.array(channels, 0.5, 1.5)
        beta = random.array(channels)
        runningMean = random.array(channels)
        runningVariance = random.array(channels, 0.5, 2)
        savedMean = random.array(channels, -0.5, 0.5)
        savedInverseStd = random.array(channels, 0.5, 2)
        oldGamma = random.array(channels)
        oldBeta = random.array(channels)
        guard sensitive && batch >= 3 else {
            backwardX = x
            return
        }
        // Backward: x's last image equals its second, so the dot product's cancelling terms meet equal x.
        var equal = x
        mirror(&equal, middle: batch, inner: channels * spatial, from: 1, to: batch - 1)
        backwardX = equal
        mirror(&x, middle: batch, inner: channels * spatial, from: 1, to: batch - 1, scale: ReproducibleTests.huge, sign: -1)
        mirror(&dy, middle: batch, inner: channels * spatial, from: 1, to: batch - 1, scale: ReproducibleTests.huge, sign: -1)
    }
}

/// Viewing `values` as (outer, middle, inner): scales `values[o, from, :]` by `scale` and
/// writes it times `sign` to `values[o, to, :]`, for every o.
private func mirror(_ values: inout [Float], middle: Int, inner: Int, from: Int, to: Int, scale: Float = 1, sign: Float = 1) {
    precondition(from != to && values.count % (middle * inner) == 0)
    for o in 0..<(values.count / (middle * inner)) {
        for i in 0..<inner {
            let source = (o * middle + from) * inner + i
            values[source] *= scale
            values[(o * middle + to) * inner + i] = sign * values[source]
        }
    }
}

private func zip3<A, B, C>(_ a: [A], _ b: [B], _ c: [C]) -> [(A, B, C)] {
    precondition(a.count == b.count && b.count == c.count)
    return (0..<a.count).map { (a[$0], b[$0], c[$0]) }
}

// MARK: - Running the ops

/// The ops on one backend from plain arrays; outputs that are overwritten start as NaN, so an
/// element left unwritten, or an old value read when it should not be, shows.
private struct CPURun {
    let backend: CPUBackend

    init(_ backend: CPUBackend) { self.backend = backend }

    func upload(_ values: [Float]) throws -> BufferView {
        let view = try BufferView(try backend.makeBuffer(count: values.count))
        try values.withUnsafeBufferPointer { try backend.write($0, to: view) }
        return view
    }

    func download(_ view: BufferView) throws -> [Float] {
        var values = [Float](repeating: 0, count: view.count)
        try values.withUnsafeMutableBufferPointer { try backend.read(view, into: $0) }
        return values
    }

    func nans(_ count: Int) -> [Float] { [Float](repeating: .nan, count: count) }

    /// `body(backend, upload, output)` with a one-float output, returned.
    func scalar(_ body: (CPUBackend, ([Float]) throws -> BufferView, BufferView) throws -> Void) throws -> [Float] {
        let out = try upload([.nan])
        try body(backend, upload, out)
        return try download(out)
    }

    /// The view `body(backend, upload)` returns, read back.
    func output(_ body: (CPUBackend, ([Float]) throws -> BufferView) throws -> BufferView) throws -> [Float] {
        try download(try body(backend, upload))
    }

    func gemm(_ c: GemmCase) throws -> [Float] {
        let out = try upload(c.c)
        try backend.gemm(transA: c.transA, transB: c.transB, m: c.m, n: c.n, k: c.k, alpha: c.alpha, a: upload(c.a), lda: c.lda,
                         b: upload(c.b), ldb: c.ldb, beta: c.beta, c: out, ldc: c.ldc)
        return try download(out)
    }

    func convForward(_ g: ConvGeometry, x: [Float], w: [Float], bias: [Float]?) throws -> [Float] {
        let out = try upload(nans(g.outputCount))
        try backend.conv2dForward(g, input: upload(x), weight: upload(w), bias: bias.map(upload), output: out)
        return try download(out)
    }

    func convBackwardData(_ g: ConvGeometry, dy: [Float], w: [Float], bias: [Float]?, old: [Float]?) throws -> [Float] {
        let out = try upload(old ?? nans(g.inputCount))
        try backend.conv2dBackwardData(g, gradOutput: upload(dy), weight: upload(w), bias: bias.map(upload), gradInput: out,
                                       accumulate: old != nil)
        return try download(out)
    }

    func convBackwardWeights(_ g: ConvGeometry, x: [Float], dy: [Float], old: [Float]?) throws -> [Float] {
        let out = try upload(old ?? nans(g.weightCount))
        try backend.conv2dBackwardWeights(g, input: upload(x), gradOutput: upload(dy), gradWeight: out, accumulate: old != nil)
        return try download(out)
    }

    func batchNormTraining(_ c: NormCase) throws -> [[Float]] {
        let y = try upload(nans(c.x.count)), mean = try upload(nans(c.channels)), inverseStd = try upload(nans(c.channels))
        let runningMean = try upload(c.runningMean), runningVariance = try upload(c.runningVariance)
        try backend.batchNormForwardTraining(input: upload(c.x), output: y, gamma: upload(c.gamma), beta: upload(c.beta),
                                             runningMean: runningMean, runningVariance: runningVariance, savedMean: mean,
                                             savedInverseStd: inverseStd, batch: c.batch, channels: c.channels, spatial: c.spatial,
                                             momentum: NormCase.momentum, epsilon: NormCase.epsilon)
        return try [y, mean, inverseStd, runningMean, runningVariance].map(download)
    }

    func batchNormInference(_ c: NormCase) throws -> [Float] {
        let y = try upload(nans(c.x.count))
        try backend.batchNormForwardInference(input: upload(c.x), output: y, gamma: upload(c.gamma), beta: upload(c.beta),
                                              runningMean: upload(c.runningMean), runningVariance: upload(c.runningVariance),
                                              batch: c.batch, channels: c.channels, spatial: c.spatial, epsilon: NormCase.epsilon)
        return try download(y)
    }

    func batchNormBackward(_ c: NormCase, accumulate: Bool) throws -> [[Float]] {
        let dx = try upload(nans(c.x.count))
        let dgamma = try upload(accumulate ? c.oldGamma : nans(c.channels)), dbeta = try upload(accumulate ? c.oldBeta : nans(c.channels))
        try backend.batchNormBackward(gradOutput: upload(c.dy), input: upload(c.backwardX), gamma: upload(c.gamma),
                                      savedMean: upload(c.savedMean), savedInverseStd: upload(c.savedInverseStd),
                                      gradInput: dx, gradGamma: dgamma, gradBeta: dbeta,
                                      batch: c.batch, channels: c.channels, spatial: c.spatial, accumulate: accumulate)
        return try [dx, dgamma, dbeta].map(download)
    }

    func channelSum(_ x: [Float], batch: Int, channels: Int, spatial: Int, old: [Float]?) throws -> [Float] {
        let out = try upload(old ?? nans(channels))
        try backend.channelSum(input: upload(x), output: out, batch: batch, channels: channels, spatial: spatial, accumulate: old != nil)
        return try download(out)
    }
}

// MARK: - Naive references in the documented order

/// Plain loops that list each output's terms in the order `CPUBackend+Reproducible.swift`
/// documents, add them in Double and round once. `reversed` adds every list backwards, to
/// check that the data tells the orders apart.
private enum Reference {
    static func total(_ terms: [Double], _ reversed: Bool) -> Double {
        reversed ? terms.reversed().reduce(0, +) : terms.reduce(0, +)
    }

    // alpha * (sum over k ascending of A(i, k) * B(k, j)) + beta * C; C not read when beta == 0.
    static func gemm(_ c: GemmCase, reversed: Bool = false) -> [Float] {
        var out = c.c
        for i in 0..<c.m {
            for j in 0..<c.n {
                let terms = (0..<c.k).map { p in
                    Double(c.transA == .none ? c.a[i * c.lda + p] : c.a[p * c.lda + i])
                        * Double(c.transB == .none ? c.b[p * c.ldb + j] : c.b[j * c.ldb + p])
                }
                let sum = Double(c.alpha) * total(terms, reversed)
                out[i * c.ldc + j] = Float(c.beta == 0 ? sum : sum + Double(c.beta) * Double(c.c[i * c.ldc + j]))
            }
        }
        return out
    }

    // Over ci, kh, kw (padding skipped), then + bias.
    static func convForward(_ g: ConvGeometry, x: [Float], w: [Float], bias: [Float]?, reversed: Bool = false) -> [Float] {
        var y = [Float](repeating: 0, count: g.outputCount)
        for n in 0..<g.batch {
            for co in 0..<g.outChannels {
                for oh in 0..<g.outHeight {
                    for ow in 0..<g.outWidth {
                        var terms: [Double] = []
                        for ci in 0..<g.inChannels {
                            for kh in 0..<g.kernelHeight {
                                for kw in 0..<g.kernelWidth {
                                    let ih = oh * g.strideHeight - g.padHeight + kh, iw = ow * g.strideWidth - g.padWidth + kw
                                    guard ih >= 0, ih < g.inHeight, iw >= 0, iw < g.inWidth else { continue }
                                    terms.append(Double(w[((co * g.inChannels + ci) * g.kernelHeight + kh) * g.kernelWidth + kw])
                                                 * Double(x[((n * g.inChannels + ci) * g.inHeight + ih) * g.inWidth + iw]))
                                }
                            }
                        }
                        var sum = total(terms, reversed)
                        if let bias { sum += Double(bias[co]) }
                        y[((n * g.outChannels + co) * g.outHeight + oh) * g.outWidth + ow] = Float(sum)
                    }
                }
            }
        }
        return y
    }

    // Over co, kh, kw (the one output each tap meets), then + bias, then + the old value.
    static func convBackwardData(_ g: ConvGeometry, dy: [Float], w: [Float], bias: [Float]?, old: [Float]?,
                                 reversed: Bool = false) -> [Float] {
        var dx = [Float](repeating: 0, count: g.inputCount)
        for n in 0..<g.batch {
            for ci in 0..<g.inChannels {
                for ih in 0..<g.inHeight {
                    for iw in 0..<g.inWidth {
                        var terms: [Double] = []
                        for co in 0..<g.outChannels {
                            for kh in 0..<g.kernelHeight {
                                for kw in 0..<g.kernelWidth {
                                    let th = ih + g.padHeight - kh, tw = iw + g.padWidth - kw
                                    guard th >= 0, tw >= 0, th % g.strideHeight == 0, tw % g.strideWidth == 0 else { continue }
                                    let oh = th / g.strideHeight, ow = tw / g.strideWidth
                                    guard oh < g.outHeight, ow < g.outWidth else { continue }
                                    terms.append(Double(w[((co * g.inChannels + ci) * g.kernelHeight + kh) * g.kernelWidth + kw])
                                                 * Double(dy[((n * g.outChannels + co) * g.outHeight + oh) * g.outWidth + ow]))
                                }
                            }
                        }
                        let at = ((n * g.inChannels + ci) * g.inHeight + ih) * g.inWidth + iw
                        var sum = total(terms, reversed)
                        if let bias { sum += Double(bias[ci]) }
                        if let old { sum += Double(old[at]) }
                        dx[at] = Float(sum)
                    }
                }
            }
        }
        return dx
    }

    // Over n, oh, ow (padding skipped), then + the old value.
    static func convBackwardWeights(_ g: ConvGeometry, x: [Float], dy: [Float], old: [Float]?, reversed: Bool = false) -> [Float] {
        var dw = [Float](repeating: 0, count: g.weightCount)
        for co in 0..<g.outChannels {
            for ci in 0..<g.inChannels {
                for kh in 0..<g.kernelHeight {
                    for kw in 0..<g.kernelWidth {
                        var terms: [Double] = []
                        for n in 0..<g.batch {
                            for oh in 0..<g.outHeight {
                                for ow in 0..<g.outWidth {
                                    let ih = oh * g.strideHeight - g.padHeight + kh, iw = ow * g.strideWidth - g.padWidth + kw
                                    guard ih >= 0, ih < g.inHeight, iw >= 0, iw < g.inWidth else { continue }
                                    terms.append(Double(dy[((n * g.outChannels + co) * g.outHeight + oh) * g.outWidth + ow])
                                                 * Double(x[((n * g.inChannels + ci) * g.inHeight + ih) * g.inWidth + iw]))
                                }
                            }
                        }
                        let at = ((co * g.inChannels + ci) * g.kernelHeight + kh) * g.kernelWidth + kw
                        var sum = total(terms, reversed)
                        if let old { sum += Double(old[at]) }
                        dw[at] = Float(sum)
                    }
                }
            }
        }
        return dw
    }

    /// channel c's values over (n, s) in order.
    static func channel(_ values: [Float], _ c: Int, batch: Int, channels: Int, spatial: Int) -> [Double] {
        (0..<batch).flatMap { n in (0..<spatial).map { s in Double(values[(n * channels + c) * spatial + s]) } }
    }

    // Per channel: mean and biased variance (mean of (x - mean)^2) over (n, s); running
    // statistics with the unbiased variance; y = (x - mean) * invstd * gamma + beta.
    static func batchNormTraining(_ c: NormCase, reversed: Bool = false) -> [[Float]] {
        // PyTorch's momentum is a Python float: the double of its decimal digits.
        let momentum = Double(NormCase.momentum.description)!, epsilon = Double(NormCase.epsilon)
        let count = Double(c.batch * c.spatial)
        var y = [Float](repeating: 0, count: c.x.count)
        var outputs = [[Float]](repeating: [Float](repeating: 0, count: c.channels), count: 4)
        for ch in 0..<c.channels {
            let xs = channel(c.x, ch, batch: c.batch, channels: c.channels, spatial: c.spatial)
            let mean = total(xs, reversed) / count
            let variance = total(xs.map { ($0 - mean) * ($0 - mean) }, reversed) / count
            let inverseStd = 1 / (variance + epsilon).squareRoot()
            outputs[0][ch] = Float(mean)
            outputs[1][ch] = Float(inverseStd)
            outputs[2][ch] = Float(momentum * mean + (1 - momentum) * Double(c.runningMean[ch]))
            outputs[3][ch] = Float(momentum * (variance * count / (count - 1)) + (1 - momentum) * Double(c.runningVariance[ch]))
            for n in 0..<c.batch {
                for s in 0..<c.spatial {
                    let at = (n * c.channels + ch) * c.spatial + s
                    y[at] = Float((Double(c.x[at]) - mean) * inverseStd * Double(c.gamma[ch]) + Double(c.beta[ch]))
                }
            }
        }
        return [y] + outputs
    }

    // Per channel over (n, s): sum = sum(dy), dot = sum((x - mean) * dy) from the saved statistics;
    // dx = (dy - sum / M - (x - mean) * (dot * invstd^2 / M)) * invstd * gamma; dgamma (+)= dot * invstd, dbeta (+)= sum.
    static func batchNormBackward(_ c: NormCase, accumulate: Bool, reversed: Bool = false) -> [[Float]] {
        let count = Double(c.batch * c.spatial)
        var dx = [Float](repeating: 0, count: c.x.count)
        var dgamma = [Float](repeating: 0, count: c.channels), dbeta = dgamma
        for ch in 0..<c.channels {
            let mean = Double(c.savedMean[ch]), inverseStd = Double(c.savedInverseStd[ch])
            let xs = channel(c.backwardX, ch, batch: c.batch, channels: c.channels, spatial: c.spatial)
            let dys = channel(c.dy, ch, batch: c.batch, channels: c.channels, spatial: c.spatial)
            let sum = total(dys, reversed), dot = total(zip(xs, dys).map { ($0 - mean) * $1 }, reversed)
            let gradMean = sum / count, k = dot * inverseStd * inverseStd / count
            for n in 0..<c.batch {
                for s in 0..<c.spatial {
                    let at = (n * c.channels + ch) * c.spatial + s
                    let centred = Double(c.backwardX[at]) - mean
                    dx[at] = Float((Double(c.dy[at]) - gradMean - centred * k) * inverseStd * Double(c.gamma[ch]))
                }
            }
            dgamma[ch] = Float(accumulate ? dot * inverseStd + Double(c.oldGamma[ch]) : dot * inverseStd)
            dbeta[ch] = Float(accumulate ? sum + Double(c.oldBeta[ch]) : sum)
        }
        return [dx, dgamma, dbeta]
    }

    // Per channel over (n, s), then + the old value.
    static func channelSum(_ x: [Float], batch: Int, channels: Int, spatial: Int, old: [Float]?, reversed: Bool = false) -> [Float] {
        (0..<channels).map { c in
            let sum = total(channel(x, c, batch: batch, channels: channels, spatial: spatial), reversed)
            return Float(old.map { sum + Double($0[c]) } ?? sum)
        }
    }
}

// MARK: - Assertions

private func assertSameBits(_ actual: [Float], _ expected: [Float], _ message: String,
                    file: StaticString = #filePath, line: UInt = #line) {
    XCTAssertEqual(actual.count, expected.count, "count \(message)", file: file, line: line)
    for i in 0..<Swift.min(actual.count, expected.count) where actual[i].bitPattern != expected[i].bitPattern {
        XCTFail("element \(i) of \(actual.count): \(actual[i]) (0x\(String(actual[i].bitPattern, radix: 16))) vs "
                + "\(expected[i]) (0x\(String(expected[i].bitPattern, radix: 16))) \(message)", file: file, line: line)
        return
    }
}

/// The order-sensitive data gives other floats when summed backwards: else an exact match
/// with the documented order would prove nothing about the order.
private func assertOrderMatters(_ documented: [Float], _ reversed: [Float], _ message: String,
                        file: StaticString = #filePath, line: UInt = #line) {
    XCTAssertTrue(zip(documented, reversed).contains { $0.bitPattern != $1.bitPattern },
                  "order-sensitive data gives the same floats summed backwards: \(message)", file: file, line: line)
}

/// `|a - b| <= tolerance * scale`, the scale being the largest magnitude of the fast mode's output.
private func assertAgree(_ reproducible: [Float], _ fast: [Float], tolerance: Float = 1e-5, _ message: String,
                 file: StaticString = #filePath, line: UInt = #line) {
    XCTAssertEqual(reproducible.count, fast.count, "count \(message)", file: file, line: line)
    let scale = fast.reduce(Float.leastNormalMagnitude) { Swift.max($0, $1.isFinite ? abs($1) : 0) }
    for i in 0..<Swift.min(reproducible.count, fast.count) {
        let a = reproducible[i], b = fast[i]
        guard !(a == b || (a.isNaN && b.isNaN)) else { continue }
        if !(abs(a - b) <= tolerance * scale) {
            XCTFail("element \(i) of \(fast.count): reproducible \(a) vs fast \(b) (scale \(scale), tolerance \(tolerance)) \(message)",
                    file: file, line: line)
            return
        }
    }
}
