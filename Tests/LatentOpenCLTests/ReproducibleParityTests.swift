import XCTest
import LatentCore
import LatentCPU
@testable import LatentOpenCL

/// Reproducible mode (`reproducible: true`): every op that sums gives the same bits on the CPU
/// backend (`CPUBackend+Reproducible.swift`) and on OpenCL (`Kernels/reproducible.cl`). Shapes
/// that are no multiple of any tile, views at offsets, and besides random data, "order-sensitive"
/// data: two blocks of terms 2^40 times larger than the rest and opposite in sign, second and
/// last in the documented order, which cancel, so that the small terms before and between them
/// lose bits that depend on the order of the sum (random data alone rounds back to the same
/// floats in most orders; ReproducibleTests in LatentCPUTests explains the placement and checks
/// that this data tells orders apart).
final class ReproducibleParityTests: XCTestCase {
    static let huge: Float = 0x1p40

    static func geometries() throws -> [ConvGeometry] {
        [
            // The CPU's 4-output x 32-lane tiles with leftovers: batch 37 (forward and backward-data lanes),
            // 33 input channels (weight-gradient lanes), 33 output channels (lanes when there are fewer inputs).
            try ConvGeometry(batch: 37, inChannels: 5, height: 5, width: 5, outChannels: 6, kernel: 3, stride: 1, padding: 1),
            try ConvGeometry(batch: 3, inChannels: 33, height: 6, width: 6, outChannels: 5, kernel: 4, stride: 2, padding: 1),
            try ConvGeometry(batch: 3, inChannels: 5, height: 6, width: 6, outChannels: 33, kernel: 4, stride: 2, padding: 1),
            try ConvGeometry(batch: 3, inChannels: 3, height: 7, width: 7, outChannels: 5, kernel: 3, stride: 1, padding: 1),
            try ConvGeometry(batch: 3, inChannels: 5, height: 13, width: 13, outChannels: 17, kernel: 4, stride: 2, padding: 2),
            try ConvGeometry(batch: 3, inChannels: 17, height: 13, width: 7, outChannels: 3, kernel: 3, stride: 2, padding: 0),
            try ConvGeometry(batch: 4, inChannels: 3, height: 7, width: 13, outChannels: 5, kernel: 4, stride: 1, padding: 0),
            try ConvGeometry(batch: 3, inChannels: 5, height: 7, width: 7, outChannels: 7, kernel: 3, stride: 2, padding: 2),
            // Non-square kernel, unequal strides and padding.
            try ConvGeometry(batch: 3, inChannels: 5, height: 7, width: 13, outChannels: 3, kernelHeight: 3, kernelWidth: 4,
                             strideHeight: 1, strideWidth: 2, padHeight: 1, padWidth: 2),
        ]
    }

    /// Transposed convolutions (backward-data with a bias is their forward pass): 17 -> 3
    /// channels 7x7 -> 14x14, and 5 -> 3 channels 7x6 -> 14x12 with output padding.
    static func transposedGeometries() throws -> [ConvGeometry] {
        [
            try ConvGeometry.transposed(batch: 3, inChannels: 17, height: 7, width: 7, outChannels: 3, kernel: 4, stride: 2, padding: 1),
            try ConvGeometry.transposed(batch: 3, inChannels: 5, height: 7, width: 6, outChannels: 3, kernel: 3, stride: 2,
                                        padding: 1, outputPadding: 1),
        ]
    }

    func testGemmEveryTransposeIsBitIdentical() throws {
        // Both kernel variants: one work-item per output (GPUs), eight columns per work-item (CPU-class).
        for variant in OpenCLKernelConfig.GemmVariant.allCases {
            let pair = try ReproduciblePair(variant)
            var random = TestRandom(seed: 1)
            for (m, n, k) in [(37, 29, 53), (1, 1, 1), (7, 13, 5), (17, 3, 40), (65, 33, 130), (3, 5, 0)] {
                for transA in [Transpose.none, .transposed] {
                    for transB in [Transpose.none, .transposed] {
                        for (alpha, beta) in [(Float(1), Float(0)), (0.5, 1), (-1.25, 0.75), (0.3, 0)] {
                            for sensitive in [false, true] where !sensitive || k >= 4 {
                                var logicalA = random.array(m * k), logicalB = random.array(k * n)
                                if sensitive {
                                    // Terms k = 1 and k - 2 are A(i, 1) * 2^40 * B(1, j) and its negative.
                                    mirror(&logicalA, middle: k, inner: 1, from: 1, to: k - 2, scale: Self.huge)
                                    mirror(&logicalB, middle: k, inner: n, from: 1, to: k - 2, sign: -1)
                                }
                                // Row strides wider than the matrices; the floats between rows are NaN, never read.
                                let (aStored, lda) = stored(logicalA, rows: m, columns: k, transposed: transA == .transposed, padding: 3)
                                let (bStored, ldb) = stored(logicalB, rows: k, columns: n, transposed: transB == .transposed, padding: 1)
                                let ldc = n + 2
                                // beta 0 must not read C: NaN there would show.
                                let c = try pair.buffers(beta == 0 ? [Float](repeating: .nan, count: m * ldc) : random.array(m * ldc),
                                                         offset: 1)
                                let a = try pair.buffers(aStored, offset: 5), b = try pair.buffers(bStored, offset: 2)
                                try pair.both { backend, side in
                                    try backend.gemm(transA: transA, transB: transB, m: m, n: n, k: k, alpha: alpha, a: a[side], lda: lda,
                                                     b: b[side], ldb: ldb, beta: beta, c: c[side], ldc: ldc)
                                }
                                // The ldc padding columns stay as they were (NaN when beta is 0); the rest must be written.
                                let label = "gemm \(m)x\(n)x\(k) \(transA) \(transB) alpha \(alpha) beta \(beta) sensitive \(sensitive)"
                                try pair.assertIdentical(c, label, finite: false)
                                let written = try pair.read(pair.cpu, c.cpu).enumerated().filter { $0.offset % ldc < n }
                                XCTAssertTrue(written.allSatisfy { $0.element.isFinite }, "unwritten or non-finite C: \(label)")
                            }
                        }
                    }
                }
            }
        }
    }

    func testConvForwardIsBitIdentical() throws {
        // Both kernel variants: one work-item per output (GPUs), eight per work-item (CPU-class).
        for variant in OpenCLKernelConfig.GemmVariant.allCases {
            let pair = try ReproduciblePair(variant)
            var random = TestRandom(seed: 2)
            for g in try Self.geometries() + Self.transposedGeometries() {
                for sensitive in [false, true] {
                    var x = random.array(g.inputCount), w = random.array(g.weightCount)
                    if sensitive {
                        // Second and last input channels: equal images, weights 2^40 and opposite.
                        mirror(&x, middle: g.inChannels, inner: g.inHeight * g.inWidth, from: 1, to: g.inChannels - 1)
                        mirror(&w, middle: g.inChannels, inner: g.kernelHeight * g.kernelWidth, from: 1, to: g.inChannels - 1,
                               scale: Self.huge, sign: -1)
                    }
                    let input = try pair.buffers(x, offset: 3), weight = try pair.buffers(w, offset: 1)
                    let bias = try pair.buffers(random.array(g.outChannels), offset: 2)
                    for withBias in [false, true] {
                        let output = try pair.buffers([Float](repeating: .nan, count: g.outputCount), offset: 1)
                        try pair.both { backend, side in
                            try backend.conv2dForward(g, input: input[side], weight: weight[side], bias: withBias ? bias[side] : nil,
                                                      output: output[side])
                        }
                        try pair.assertIdentical(output, "forward \(g) bias \(withBias) sensitive \(sensitive)")
                    }
                }
            }
        }
    }

    /// Plain gradients and transposed convolutions (with a bias), accumulating or not.
    func testConvBackwardDataIsBitIdentical() throws {
        // Both kernel variants: one work-item per output (GPUs), eight per work-item (CPU-class).
        for variant in OpenCLKernelConfig.GemmVariant.allCases {
            let pair = try ReproduciblePair(variant)
            var random = TestRandom(seed: 3)
            for g in try Self.geometries() + Self.transposedGeometries() {
                for sensitive in [false, true] {
                    var dy = random.array(g.outputCount), w = random.array(g.weightCount)
                    if sensitive {
                        // Second and last output channels: equal gradients, weights 2^40 and opposite.
                        mirror(&dy, middle: g.outChannels, inner: g.outHeight * g.outWidth, from: 1, to: g.outChannels - 1)
                        mirror(&w, middle: g.outChannels, inner: g.inChannels * g.kernelHeight * g.kernelWidth, from: 1,
                               to: g.outChannels - 1, scale: Self.huge, sign: -1)
                    }
                    let gradOutput = try pair.buffers(dy, offset: 2), weight = try pair.buffers(w, offset: 3)
                    let bias = try pair.buffers(random.array(g.inChannels), offset: 1)
                    for withBias in [false, true] {
                        for accumulate in [false, true] {
                            // Not accumulating, the old gradient must not be read: NaN there would show.
                            let old = accumulate ? random.array(g.inputCount) : [Float](repeating: .nan, count: g.inputCount)
                            let gradInput = try pair.buffers(old, offset: 4)
                            try pair.both { backend, side in
                                try backend.conv2dBackwardData(g, gradOutput: gradOutput[side], weight: weight[side],
                                                               bias: withBias ? bias[side] : nil, gradInput: gradInput[side],
                                                               accumulate: accumulate)
                            }
                            try pair.assertIdentical(gradInput, "backward data \(g) bias \(withBias) accumulate \(accumulate) sensitive \(sensitive)")
                        }
                    }
                }
            }
        }
    }

    func testConvBackwardWeightsIsBitIdentical() throws {
        // Both kernel variants: one work-item per output (GPUs), eight per work-item (CPU-class).
        for variant in OpenCLKernelConfig.GemmVariant.allCases {
            let pair = try ReproduciblePair(variant)
            var random = TestRandom(seed: 4)
            for g in try Self.geometries() + Self.transposedGeometries() {
                for sensitive in [false, true] {
                    var x = random.array(g.inputCount), dy = random.array(g.outputCount)
                    if sensitive {
                        // Second and last images: equal inputs, gradients 2^40 and opposite.
                        mirror(&x, middle: g.batch, inner: g.inChannels * g.inHeight * g.inWidth, from: 1, to: g.batch - 1)
                        mirror(&dy, middle: g.batch, inner: g.outChannels * g.outHeight * g.outWidth, from: 1, to: g.batch - 1,
                               scale: Self.huge, sign: -1)
                    }
                    let input = try pair.buffers(x, offset: 1), gradOutput = try pair.buffers(dy, offset: 2)
                    for accumulate in [false, true] {
                        let old = accumulate ? random.array(g.weightCount) : [Float](repeating: .nan, count: g.weightCount)
                        let gradWeight = try pair.buffers(old, offset: 3)
                        try pair.both { backend, side in
                            try backend.conv2dBackwardWeights(g, input: input[side], gradOutput: gradOutput[side],
                                                              gradWeight: gradWeight[side], accumulate: accumulate)
                        }
                        try pair.assertIdentical(gradWeight, "backward weights \(g) accumulate \(accumulate) sensitive \(sensitive)")
                    }
                }
            }
        }
    }

    static let normShapes = [(3, 5, 13), (7, 17, 1), (2, 3, 49), (5, 1, 7), (4, 3, 169)]

    /// Three training steps (the running statistics carry over), then inference on them.
    func testBatchNormTrainingAndInferenceAreBitIdentical() throws {
        let pair = try ReproduciblePair()
        var random = TestRandom(seed: 5)
        for (batch, channels, spatial) in Self.normShapes {
            let count = batch * channels * spatial, shape = "\(batch)x\(channels)x\(spatial)"
            let gamma = try pair.buffers(random.array(channels, 0.5, 1.5), offset: 1), beta = try pair.buffers(random.array(channels))
            let runningMean = try pair.buffers(random.array(channels), offset: 2)
            let runningVariance = try pair.buffers(random.array(channels, 0.5, 2), offset: 1)
            for step in 0..<3 {
                let sensitive = step == 1 && batch >= 3
                var x = random.array(count, -2, 3).map { $0 * Float(step + 1) + 1 }
                if sensitive {
                    // Second and last images 2^40 and opposite: the mean's sum cancels.
                    mirror(&x, middle: batch, inner: channels * spatial, from: 1, to: batch - 1, scale: Self.huge, sign: -1)
                }
                let input = try pair.buffers(x, offset: step)
                let nans = [Float](repeating: .nan, count: channels)
                let output = try pair.buffers([Float](repeating: .nan, count: count), offset: 1)
                let savedMean = try pair.buffers(nans, offset: 3), savedInverseStd = try pair.buffers(nans)
                try pair.both { backend, side in
                    try backend.batchNormForwardTraining(input: input[side], output: output[side], gamma: gamma[side], beta: beta[side],
                                                         runningMean: runningMean[side], runningVariance: runningVariance[side],
                                                         savedMean: savedMean[side], savedInverseStd: savedInverseStd[side],
                                                         batch: batch, channels: channels, spatial: spatial, momentum: 0.1, epsilon: 1e-5)
                }
                let label = "\(shape) step \(step) sensitive \(sensitive)"
                try pair.assertIdentical(output, "training output \(label)")
                try pair.assertIdentical(savedMean, "saved mean \(label)")
                try pair.assertIdentical(savedInverseStd, "saved inverse std \(label)")
                try pair.assertIdentical(runningMean, "running mean \(label)")
                try pair.assertIdentical(runningVariance, "running variance \(label)")
            }
            let input = try pair.buffers(random.array(count, -2, 3), offset: 2)
            let output = try pair.buffers([Float](repeating: .nan, count: count), offset: 1)
            try pair.both { backend, side in
                try backend.batchNormForwardInference(input: input[side], output: output[side], gamma: gamma[side], beta: beta[side],
                                                      runningMean: runningMean[side], runningVariance: runningVariance[side],
                                                      batch: batch, channels: channels, spatial: spatial, epsilon: 1e-5)
            }
            try pair.assertIdentical(output, "inference \(shape)")
        }
    }

    func testBatchNormBackwardIsBitIdentical() throws {
        let pair = try ReproduciblePair()
        var random = TestRandom(seed: 6)
        for (batch, channels, spatial) in Self.normShapes {
            let count = batch * channels * spatial
            for sensitive in [false, true] where !sensitive || batch >= 3 {
                var x = random.array(count, -2, 3), dy = random.array(count)
                if sensitive {
                    // Second and last images: equal x, dy 2^40 and opposite, so sum(dy) and sum((x - mean) * dy) cancel.
                    mirror(&x, middle: batch, inner: channels * spatial, from: 1, to: batch - 1)
                    mirror(&dy, middle: batch, inner: channels * spatial, from: 1, to: batch - 1, scale: Self.huge, sign: -1)
                }
                let input = try pair.buffers(x, offset: 1), gradOutput = try pair.buffers(dy, offset: 2)
                let gamma = try pair.buffers(random.array(channels, 0.5, 1.5), offset: 3)
                let savedMean = try pair.buffers(random.array(channels, -0.5, 0.5))
                let savedInverseStd = try pair.buffers(random.array(channels, 0.5, 2), offset: 1)
                for accumulate in [false, true] {
                    let old = { accumulate ? random.array(channels) : [Float](repeating: .nan, count: channels) }
                    let gradGamma = try pair.buffers(old(), offset: 1), gradBeta = try pair.buffers(old(), offset: 2)
                    let gradInput = try pair.buffers([Float](repeating: .nan, count: count), offset: 3)
                    try pair.both { backend, side in
                        try backend.batchNormBackward(gradOutput: gradOutput[side], input: input[side], gamma: gamma[side],
                                                      savedMean: savedMean[side], savedInverseStd: savedInverseStd[side],
                                                      gradInput: gradInput[side], gradGamma: gradGamma[side], gradBeta: gradBeta[side],
                                                      batch: batch, channels: channels, spatial: spatial, accumulate: accumulate)
                    }
                    let label = "\(batch)x\(channels)x\(spatial) accumulate \(accumulate) sensitive \(sensitive)"
                    try pair.assertIdentical(gradInput, "backward input \(label)")
                    try pair.assertIdentical(gradGamma, "backward gamma \(label)")
                    try pair.assertIdentical(gradBeta, "backward beta \(label)")
                }
            }
        }
    }

    func testChannelSumIsBitIdentical() throws {
        let pair = try ReproduciblePair()
        var random = TestRandom(seed: 7)
        for (batch, channels, spatial) in Self.normShapes + [(1, 1, 1), (64, 33, 1)] {
            for sensitive in [false, true] where !sensitive || batch >= 3 {
                var x = random.array(batch * channels * spatial)
                if sensitive { mirror(&x, middle: batch, inner: channels * spatial, from: 1, to: batch - 1, scale: Self.huge, sign: -1) }
                let input = try pair.buffers(x, offset: 1)
                for accumulate in [false, true] {
                    let output = try pair.buffers(accumulate ? random.array(channels) : [Float](repeating: .nan, count: channels), offset: 2)
                    try pair.both { backend, side in
                        try backend.channelSum(input: input[side], output: output[side], batch: batch, channels: channels,
                                               spatial: spatial, accumulate: accumulate)
                    }
                    try pair.assertIdentical(output, "channelSum \(batch)x\(channels)x\(spatial) accumulate \(accumulate) sensitive \(sensitive)")
                }
            }
        }
    }

    func testSumIsBitIdentical() throws {
        let pair = try ReproduciblePair()
        var random = TestRandom(seed: 8)
        for n in [0, 1, 7, 255, 4097, 100_003] {
            for sensitive in [false, true] where !sensitive || n >= 3 {
                var values = random.array(n, -1, 3)
                if sensitive { mirror(&values, middle: n, inner: 1, from: 1, to: n - 1, scale: Self.huge, sign: -1) }
                let x = try pair.buffers(values, offset: 2), out = try pair.buffers([.nan], offset: 1)
                try pair.both { backend, side in try backend.sum(x[side], output: out[side]) }
                try pair.assertIdentical(out, "sum \(n) sensitive \(sensitive)")
            }
        }
    }

    /// Every loss both ways; BCE at probabilities 0 and 1 (its logs clamped at -100, its
    /// gradient's denominator at 1e-12), L1 at p == t (gradient 0).
    func testLossForwardAndBackwardAreBitIdentical() throws {
        let pair = try ReproduciblePair()
        var random = TestRandom(seed: 9)
        for n in [1, 13, 784 * 3 + 1, 50_001] {
            var probabilities = random.array(n, 0.001, 0.999), targets = random.array(n, 0, 1)
            if n > 3 { (probabilities[0], probabilities[1], probabilities[2], targets[0], targets[1]) = (0, 1, 0.5, 0, 1) }
            for kind in LossKind.allCases {
                var predictions = kind == .bce ? probabilities : random.array(n, -4, 4)
                if n > 5 { predictions[5] = targets[5] }
                let prediction = try pair.buffers(predictions, offset: 1), target = try pair.buffers(targets, offset: 3)
                for reduction in [Reduction.sum, .mean] {
                    let out = try pair.buffers([.nan], offset: 2)
                    try pair.both { backend, side in
                        try backend.lossForward(kind, prediction: prediction[side], target: target[side], output: out[side],
                                                reduction: reduction)
                    }
                    try pair.assertIdentical(out, "\(kind) \(reduction) forward \(n)")
                    for accumulate in [false, true] {
                        let grad = try pair.buffers(accumulate ? random.array(n) : [Float](repeating: .nan, count: n), offset: 2)
                        try pair.both { backend, side in
                            try backend.lossBackward(kind, prediction: prediction[side], target: target[side], gradPrediction: grad[side],
                                                     reduction: reduction, scale: 0.7, accumulate: accumulate)
                        }
                        try pair.assertIdentical(grad, "\(kind) \(reduction) backward \(n) accumulate \(accumulate)")
                    }
                }
            }
        }
    }

    func testKLDivergenceIsBitIdentical() throws {
        let pair = try ReproduciblePair()
        var random = TestRandom(seed: 10)
        // Single elements too: a term computed differently shows when the sum is that one term.
        for n in [1, 13, 1000, 20_001] + [Int](repeating: 1, count: 32) {
            let mean = try pair.buffers(random.array(n, -2, 2), offset: 1)
            for (parameterization, values) in [(GaussianParameterization.logVariance, random.array(n, -3, 2)),
                                               (.logStd, random.array(n, -2, 1)), (.std, random.array(n, 0.05, 3))] {
                let parameter = try pair.buffers(values, offset: 2), out = try pair.buffers([.nan], offset: 3)
                try pair.both { backend, side in
                    try backend.klDivergence(mean: mean[side], parameter: parameter[side], parameterization: parameterization,
                                             output: out[side])
                }
                try pair.assertIdentical(out, "KL \(parameterization) \(n)")
            }
        }
    }

    func testAxpbyIsBitIdentical() throws {
        let pair = try ReproduciblePair()
        var random = TestRandom(seed: 11)
        for n in [1, 13, 1001, 65_537] {
            let x = try pair.buffers(random.array(n, -3, 3), offset: 1)
            for (alpha, beta) in [(Float(0.7), Float(0)), (-1.3, 0.25), (2, 1), (0.1, -0.3)] {
                // beta 0 must not read y: NaN there would show.
                let y = try pair.buffers(beta == 0 ? [Float](repeating: .nan, count: n) : random.array(n, -3, 3), offset: 2)
                try pair.both { backend, side in try backend.axpby(alpha: alpha, x: x[side], beta: beta, y: y[side]) }
                try pair.assertIdentical(y, "axpby \(n) alpha \(alpha) beta \(beta)")
            }
        }
    }

    /// Duplicate entries (ties go to the lowest index), rows equal to entries (distance 0),
    /// and entries one ulp apart.
    func testNearestCodebookEntryIsBitIdentical() throws {
        let pair = try ReproduciblePair()
        var random = TestRandom(seed: 12)
        for (rows, entries, width) in [(13, 17, 5), (37, 3, 64), (101, 64, 7)] {
            var table = random.array(entries * width)
            var input = random.array(rows * width)
            if entries > 4 {
                for i in 0..<width {
                    table[3 * width + i] = table[1 * width + i]
                    table[4 * width + i] = table[2 * width + i].nextUp
                }
            }
            for r in stride(from: 0, to: rows, by: 3) {
                let entry = (r / 3) % entries
                for i in 0..<width { input[r * width + i] = table[entry * width + i] }
            }
            let x = try pair.buffers(input, offset: 1), codebook = try pair.buffers(table, offset: 2)
            let indices = try pair.buffers([Float](repeating: .nan, count: rows), offset: 3)
            try pair.both { backend, side in
                try backend.nearestCodebookEntry(input: x[side], codebook: codebook[side], indices: indices[side],
                                                 rows: rows, entries: entries, width: width)
            }
            try pair.assertIdentical(indices, "nearestCodebookEntry \(rows)x\(entries)x\(width)")
        }
    }
}

// MARK: - Support

/// A reproducible CPU backend and a reproducible OpenCL backend on the same data (`Pair`'s
/// CPU backend is the fast one).
private struct ReproduciblePair {
    enum Side { case cpu, cl }

    /// One array on both backends, inside a larger buffer: `offset` floats of -7 before, 3 of -9 after.
    struct Views {
        let cpu: BufferView, cl: BufferView
        let cpuWhole: BufferView, clWhole: BufferView

        subscript(side: Side) -> BufferView { side == .cpu ? cpu : cl }
    }

    static let before: Float = -7, after: Float = -9
    let cpu = CPUBackend(threads: 2, reproducible: true)
    let cl: OpenCLBackend

    /// `variant` picks the kernels: `.block` (CPU-class) runs the convolutions' `_lanes` kernels.
    init(_ variant: OpenCLKernelConfig.GemmVariant? = nil, file: StaticString = #filePath, line: UInt = #line) throws {
        cl = try OpenCLTestDevice.backend(variant, reproducible: true, file: file, line: line)
        XCTAssertTrue(cpu.reproducible && cl.reproducible, "both backends must be in reproducible mode", file: file, line: line)
    }

    func buffers(_ values: [Float], offset: Int = 0) throws -> Views {
        let padded = [Float](repeating: Self.before, count: offset) + values + [Float](repeating: Self.after, count: 3)
        let cpuWhole = try BufferView(try cpu.makeBuffer(count: padded.count))
        let clWhole = try BufferView(try cl.makeBuffer(count: padded.count))
        try padded.withUnsafeBufferPointer { try cpu.write($0, to: cpuWhole) }
        try padded.withUnsafeBufferPointer { try cl.write($0, to: clWhole) }
        return Views(cpu: try cpuWhole.slice(offset, count: values.count), cl: try clWhole.slice(offset, count: values.count),
                     cpuWhole: cpuWhole, clWhole: clWhole)
    }

    /// Runs `body` on the CPU backend, then on OpenCL.
    func both(_ body: (any Backend, Side) throws -> Void) throws {
        try body(cpu, .cpu)
        try body(cl, .cl)
    }

    func read(_ backend: any Backend, _ view: BufferView) throws -> [Float] {
        var values = [Float](repeating: 0, count: view.count)
        try values.withUnsafeMutableBufferPointer { try backend.read(view, into: $0) }
        return values
    }

    /// The views hold the same bits on both backends, and every value is finite (unless
    /// `finite` is false), so that NaN from an unwritten or wrongly read element cannot pass
    /// as a match; the floats around the views are untouched.
    func assertIdentical(_ views: Views, _ message: String, finite: Bool = true,
                         file: StaticString = #filePath, line: UInt = #line) throws {
        let expected = try read(cpu, views.cpuWhole), actual = try read(cl, views.clWhole)
        let start = views.cpu.offset - views.cpuWhole.offset, end = start + views.cpu.count
        assertBitIdentical(Array(actual[start..<end]), Array(expected[start..<end]), message, file: file, line: line)
        if finite, let bad = expected[start..<end].firstIndex(where: { !$0.isFinite }) {
            XCTFail("element \(bad - start) is \(expected[bad]) on the CPU: \(message)", file: file, line: line)
        }
        for (name, values) in [("CPU", expected), ("OpenCL", actual)] {
            let outside = values[..<start].contains { $0 != Self.before } || values[end...].contains { $0 != Self.after }
            XCTAssertFalse(outside, "\(name) wrote outside the view: \(message)", file: file, line: line)
        }
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

/// A logical rows x columns matrix stored row-major (or its transpose) with `padding` NaN
/// floats at the end of each stored row; returns the storage and its row stride.
private func stored(_ logical: [Float], rows: Int, columns: Int, transposed: Bool, padding: Int) -> ([Float], Int) {
    let (storedRows, storedColumns) = transposed ? (columns, rows) : (rows, columns)
    let ld = storedColumns + padding
    var values = [Float](repeating: .nan, count: Swift.max(1, storedRows * ld))
    for i in 0..<rows {
        for j in 0..<columns { values[transposed ? j * ld + i : i * ld + j] = logical[i * columns + j] }
    }
    return (values, ld)
}
