import XCTest
import LatentCore
@testable import LatentCPU

/// Convolution against direct loops, and the two backward passes as adjoints of the forward one.
/// Every check runs on all three algorithms: im2col + GEMM, the batch-inner implicit GEMM
/// (`CPUConvBatchInner.swift`) and Winograd, F(4x4, 2x2) for the 4x4 stride-2 shapes
/// (`CPUConvWinograd.swift`) and F(4x4, 3x3) for the 3x3 stride-1 ones
/// (`CPUConvWinograd3x3.swift`), whatever batch size each would be chosen for.
final class ConvTests: XCTestCase {
    static let paths: [ConvolutionPath] = [.im2col, .batchInner, .winograd]

    /// Absolute tolerance of a result: 1e-5, or for Winograd 1e-5 of the result's largest
    /// magnitude (its transforms scale values by up to 36 and 64 before rounding: measured
    /// 2.8e-6 of the scale at worst here, 6e-7 norm-relative; the direct paths 4e-7).
    static func absolute(_ path: ConvolutionPath, _ expected: [Float]) -> Float {
        path == .winograd ? 1e-5 * Swift.max(1, expected.map(abs).max() ?? 0) : 1e-5
    }

    /// The shapes under test: strides 1-3, padding 0-2, kernels 1-5, non-square kernels and
    /// inputs, odd channel counts, batches that fill several image groups.
    static func geometries() throws -> [ConvGeometry] {
        [
            try ConvGeometry(batch: 2, inChannels: 3, height: 7, width: 7, outChannels: 5, kernel: 3, stride: 1, padding: 1),
            try ConvGeometry(batch: 3, inChannels: 2, height: 9, width: 8, outChannels: 4, kernel: 4, stride: 2, padding: 1),
            try ConvGeometry(batch: 2, inChannels: 5, height: 10, width: 10, outChannels: 3, kernel: 3, stride: 2, padding: 0),
            try ConvGeometry(batch: 4, inChannels: 3, height: 6, width: 5, outChannels: 7, kernel: 1),
            try ConvGeometry(batch: 1, inChannels: 1, height: 5, width: 5, outChannels: 1, kernel: 5, stride: 1, padding: 2),
            // Wide rows: the stride-2 vector gather and scatter paths.
            try ConvGeometry(batch: 2, inChannels: 2, height: 5, width: 70, outChannels: 3, kernel: 3, stride: 2, padding: 1),
            try ConvGeometry(batch: 2, inChannels: 3, height: 8, width: 9, outChannels: 2, kernelHeight: 3, kernelWidth: 2,
                             strideHeight: 2, strideWidth: 3, padHeight: 1, padWidth: 0),
            // Enough work for threads to take whole groups of several images.
            try ConvGeometry(batch: 24, inChannels: 8, height: 14, width: 14, outChannels: 16, kernel: 4, stride: 2, padding: 1),
            try ConvGeometry(batch: 16, inChannels: 16, height: 7, width: 7, outChannels: 32, kernel: 3, stride: 1, padding: 1),
            try ConvGeometry(batch: 32, inChannels: 16, height: 8, width: 8, outChannels: 24, kernel: 1),
            // The batch-inner path's edges: a 16-lane tail after 32 (48), spare lanes (20), output
            // channels that leave a partial 12-row panel (13, 7), one input channel, stride 3,
            // kernels smaller than the stride (phases without taps).
            try ConvGeometry(batch: 20, inChannels: 3, height: 14, width: 14, outChannels: 13, kernel: 4, stride: 2, padding: 1),
            try ConvGeometry(batch: 48, inChannels: 5, height: 7, width: 7, outChannels: 7, kernel: 3, stride: 1, padding: 1),
            try ConvGeometry(batch: 17, inChannels: 1, height: 12, width: 12, outChannels: 8, kernel: 3, stride: 2, padding: 1),
            try ConvGeometry(batch: 16, inChannels: 14, height: 9, width: 11, outChannels: 1, kernelHeight: 2, kernelWidth: 3,
                             strideHeight: 3, strideWidth: 2, padHeight: 1, padWidth: 2),
            try ConvGeometry(batch: 18, inChannels: 4, height: 9, width: 9, outChannels: 6, kernel: 1, stride: 2, padding: 0),
            // 13 images in the last group: both 8-image halves of the narrow transposes, one partial;
            // 40 output channels of a one-channel input (the automatic choice sends two passes to im2col).
            try ConvGeometry(batch: 29, inChannels: 1, height: 10, width: 10, outChannels: 40, kernel: 4, stride: 2, padding: 1),
            try ConvGeometry.transposed(batch: 16, inChannels: 9, height: 7, width: 7, outChannels: 2, kernel: 3, stride: 2,
                                        padding: 1, outputPadding: 1),
            // Winograd's edges: padding 0 and 2, odd and unequal sides (partial 4x4 tiles, both
            // phases of the input grid), a transposed 4x4 stride-2 layer, a 48-lane batch.
            try ConvGeometry(batch: 5, inChannels: 3, height: 11, width: 13, outChannels: 6, kernel: 4, stride: 2, padding: 0),
            try ConvGeometry(batch: 16, inChannels: 4, height: 10, width: 9, outChannels: 5, kernel: 4, stride: 2, padding: 2),
            try ConvGeometry.transposed(batch: 17, inChannels: 6, height: 7, width: 7, outChannels: 5, kernel: 4, stride: 2,
                                        padding: 1),
            try ConvGeometry(batch: 33, inChannels: 9, height: 14, width: 14, outChannels: 18, kernel: 4, stride: 2, padding: 1),
            // Winograd F(4x4, 3x3)'s edges: padding 0 and 2, odd and unequal sides (partial
            // tiles; maps under one tile), a transposed 3x3 stride-1 layer, 40 output channels
            // (a partial 32-column panel of the weight GEMMs), a 48-lane batch.
            try ConvGeometry(batch: 5, inChannels: 3, height: 11, width: 13, outChannels: 6, kernel: 3, stride: 1, padding: 0),
            try ConvGeometry(batch: 16, inChannels: 4, height: 10, width: 9, outChannels: 5, kernel: 3, stride: 1, padding: 2),
            try ConvGeometry(batch: 3, inChannels: 2, height: 3, width: 5, outChannels: 2, kernel: 3, stride: 1, padding: 1),
            try ConvGeometry.transposed(batch: 17, inChannels: 6, height: 7, width: 7, outChannels: 5, kernel: 3, stride: 1,
                                        padding: 1),
            try ConvGeometry(batch: 33, inChannels: 40, height: 7, width: 7, outChannels: 19, kernel: 3, stride: 1, padding: 1),
        ]
    }

    func referenceForward(_ g: ConvGeometry, _ x: [Float], _ w: [Float], _ bias: [Float]?) -> [Float] {
        var y = [Float](repeating: 0, count: g.outputCount)
        for n in 0..<g.batch {
            for co in 0..<g.outChannels {
                for oh in 0..<g.outHeight {
                    for ow in 0..<g.outWidth {
                        var sum = Double(bias?[co] ?? 0)
                        for ci in 0..<g.inChannels {
                            for ki in 0..<g.kernelHeight {
                                for kj in 0..<g.kernelWidth {
                                    let ih = oh * g.strideHeight - g.padHeight + ki
                                    let iw = ow * g.strideWidth - g.padWidth + kj
                                    guard ih >= 0, ih < g.inHeight, iw >= 0, iw < g.inWidth else { continue }
                                    let xv = x[((n * g.inChannels + ci) * g.inHeight + ih) * g.inWidth + iw]
                                    let wv = w[((co * g.inChannels + ci) * g.kernelHeight + ki) * g.kernelWidth + kj]
                                    sum += Double(xv) * Double(wv)
                                }
                            }
                        }
                        y[((n * g.outChannels + co) * g.outHeight + oh) * g.outWidth + ow] = Float(sum)
                    }
                }
            }
        }
        return y
    }

    /// Direct scatter loops for both gradients.
    func referenceBackward(_ g: ConvGeometry, _ x: [Float], _ w: [Float], _ dy: [Float]) -> (dx: [Float], dw: [Float]) {
        var dx = [Double](repeating: 0, count: g.inputCount)
        var dw = [Double](repeating: 0, count: g.weightCount)
        for n in 0..<g.batch {
            for co in 0..<g.outChannels {
                for oh in 0..<g.outHeight {
                    for ow in 0..<g.outWidth {
                        let grad = Double(dy[((n * g.outChannels + co) * g.outHeight + oh) * g.outWidth + ow])
                        for ci in 0..<g.inChannels {
                            for ki in 0..<g.kernelHeight {
                                for kj in 0..<g.kernelWidth {
                                    let ih = oh * g.strideHeight - g.padHeight + ki
                                    let iw = ow * g.strideWidth - g.padWidth + kj
                                    guard ih >= 0, ih < g.inHeight, iw >= 0, iw < g.inWidth else { continue }
                                    let xi = ((n * g.inChannels + ci) * g.inHeight + ih) * g.inWidth + iw
                                    let wi = ((co * g.inChannels + ci) * g.kernelHeight + ki) * g.kernelWidth + kj
                                    dx[xi] += Double(w[wi]) * grad
                                    dw[wi] += Double(x[xi]) * grad
                                }
                            }
                        }
                    }
                }
            }
        }
        return (dx.map(Float.init), dw.map(Float.init))
    }

    func testForwardMatchesDirectLoops() throws {
        for threads in [1, 2] { for path in Self.paths {
            let f = Fixture(threads: threads, convolution: path)
            var random = TestRandom(seed: 1)
            for g in try Self.geometries() {
                let x = random.array(g.inputCount), w = random.array(g.weightCount), b = random.array(g.outChannels)
                for bias in [nil, b] {
                    let output = try f.zeros(g.outputCount)
                    try f.backend.fill(output, value: .nan) // every element must be written
                    try f.backend.conv2dForward(g, input: try f.buffer(x), weight: try f.buffer(w),
                                                bias: try bias.map { try f.buffer($0) }, output: output)
                    let expected = referenceForward(g, x, w, bias)
                    assertClose(try f.read(output), expected, absolute: Self.absolute(path, expected), relative: 1e-4,
                                "\(g) bias \(bias != nil) threads \(threads) \(path)")
                }
            }
        } }
    }

    func testBackwardDataAndWeightsMatchDirectLoops() throws {
        for threads in [1, 2] { for path in Self.paths {
            let f = Fixture(threads: threads, convolution: path)
            var random = TestRandom(seed: 2)
            for g in try Self.geometries() {
                let x = random.array(g.inputCount), w = random.array(g.weightCount), dy = random.array(g.outputCount)
                let (dxRef, dwRef) = referenceBackward(g, x, w, dy)
                let dx = try f.buffer(random.array(g.inputCount)), dw = try f.buffer(random.array(g.weightCount))
                try f.backend.conv2dBackwardData(g, gradOutput: try f.buffer(dy), weight: try f.buffer(w), bias: nil,
                                                 gradInput: dx, accumulate: false)
                try f.backend.conv2dBackwardWeights(g, input: try f.buffer(x), gradOutput: try f.buffer(dy),
                                                    gradWeight: dw, accumulate: false)
                assertClose(try f.read(dx), dxRef, absolute: Self.absolute(path, dxRef), relative: 1e-4, "dx \(g) threads \(threads) \(path)")
                assertClose(try f.read(dw), dwRef, absolute: Swift.max(1e-4, Self.absolute(path, dwRef)), relative: 1e-4, "dw \(g) threads \(threads) \(path)")
            }
        } }
    }

    /// <conv(x), dy> == <x, backwardData(dy)> and == <w, backwardWeights(x, dy)>.
    func testBackwardPassesAreAdjoints() throws {
        for path in Self.paths {
            let f = Fixture(convolution: path)
            var random = TestRandom(seed: 3)
            for g in try Self.geometries() {
                let x = random.array(g.inputCount), w = random.array(g.weightCount), dy = random.array(g.outputCount)
                let y = try f.zeros(g.outputCount), dx = try f.zeros(g.inputCount), dw = try f.zeros(g.weightCount)
                try f.backend.conv2dForward(g, input: try f.buffer(x), weight: try f.buffer(w), bias: nil, output: y)
                try f.backend.conv2dBackwardData(g, gradOutput: try f.buffer(dy), weight: try f.buffer(w), bias: nil,
                                                 gradInput: dx, accumulate: false)
                try f.backend.conv2dBackwardWeights(g, input: try f.buffer(x), gradOutput: try f.buffer(dy),
                                                    gradWeight: dw, accumulate: false)
                let forward = dot(try f.read(y), dy)
                let scale = Swift.max(1, abs(forward))
                XCTAssertEqual(forward, dot(x, try f.read(dx)), accuracy: 1e-4 * scale, "data adjoint \(g) \(path)")
                XCTAssertEqual(forward, dot(w, try f.read(dw)), accuracy: 1e-4 * scale, "weight adjoint \(g) \(path)")
            }
        }
    }

    func testAccumulateAndTransposedBias() throws {
        for path in Self.paths {
            let f = Fixture(convolution: path)
            var random = TestRandom(seed: 4)
            for g in try Self.geometries() {
                let w = random.array(g.weightCount), dy = random.array(g.outputCount), x = random.array(g.inputCount)
                let bias = random.array(g.inChannels)
                let existing = random.array(g.inputCount), existingW = random.array(g.weightCount)
                let (dxRef, dwRef) = referenceBackward(g, x, w, dy)
                let plane = g.inHeight * g.inWidth
                let withBias = dxRef.indices.map { dxRef[$0] + bias[($0 / plane) % g.inChannels] }

                // Transposed convolution's forward: overwrite, bias per input channel.
                let dx = try f.buffer(existing)
                try f.backend.conv2dBackwardData(g, gradOutput: try f.buffer(dy), weight: try f.buffer(w),
                                                 bias: try f.buffer(bias), gradInput: dx, accumulate: false)
                assertClose(try f.read(dx), withBias, absolute: Self.absolute(path, dxRef), relative: 1e-4, "bias \(g) \(path)")

                // Accumulating adds onto what was there, bias included.
                let dxAccumulated = try f.buffer(existing)
                try f.backend.conv2dBackwardData(g, gradOutput: try f.buffer(dy), weight: try f.buffer(w),
                                                 bias: try f.buffer(bias), gradInput: dxAccumulated, accumulate: true)
                assertClose(try f.read(dxAccumulated), zip(existing, withBias).map { $0 + $1 }, absolute: Self.absolute(path, dxRef),
                            relative: 1e-4, "accumulate dx \(g) \(path)")

                let dw = try f.buffer(existingW)
                try f.backend.conv2dBackwardWeights(g, input: try f.buffer(x), gradOutput: try f.buffer(dy),
                                                    gradWeight: dw, accumulate: true)
                assertClose(try f.read(dw), zip(existingW, dwRef).map { $0 + $1 },
                            absolute: Swift.max(1e-4, Self.absolute(path, dwRef)), relative: 1e-4,
                            "accumulate dw \(g) \(path)")
            }
        }
    }

    /// Two weight-gradient terms accumulated into a zeroed gradient give the same bits in
    /// either order, on every path (im2col's running sums over image groups, the batch-inner
    /// GEMM's depth blocks, one-channel images' per-thread partials, Winograd), which a GAN's
    /// discriminator step relies on (GAN.swift): each term is computed in full, then added once.
    func testWeightGradientTermsAddInEitherOrder() throws {
        let shapes = try Self.geometries() + [
            try ConvGeometry(batch: 20, inChannels: 1, height: 28, width: 28, outChannels: 64, kernel: 4, stride: 2, padding: 1),
            try ConvGeometry(batch: 20, inChannels: 64, height: 14, width: 14, outChannels: 128, kernel: 4, stride: 2, padding: 1),
            try ConvGeometry(batch: 6, inChannels: 64, height: 14, width: 14, outChannels: 128, kernel: 4, stride: 2, padding: 1),
        ]
        for path in Self.paths + [.automatic] {
            let f = Fixture(convolution: path)
            var random = TestRandom(seed: 8)
            for g in shapes {
                let x1 = try f.buffer(random.array(g.inputCount)), dy1 = try f.buffer(random.array(g.outputCount))
                let x2 = try f.buffer(random.array(g.inputCount)), dy2 = try f.buffer(random.array(g.outputCount))
                let first = try f.zeros(g.weightCount), second = try f.zeros(g.weightCount)
                for (x, dy) in [(x1, dy1), (x2, dy2)] {
                    try f.backend.conv2dBackwardWeights(g, input: x, gradOutput: dy, gradWeight: first, accumulate: true)
                }
                for (x, dy) in [(x2, dy2), (x1, dy1)] {
                    try f.backend.conv2dBackwardWeights(g, input: x, gradOutput: dy, gradWeight: second, accumulate: true)
                }
                XCTAssertEqual(try f.read(first), try f.read(second), "\(g) \(path)")
            }
        }
    }

    /// A transposed convolution built from `ConvGeometry.transposed` against a direct
    /// ConvTranspose2d loop (PyTorch's definition).
    func testTransposedConvolutionMatchesDefinition() throws {
        for path in Self.paths {
            let f = Fixture(convolution: path)
            var random = TestRandom(seed: 5)
            // ConvTranspose2d(4 -> 3, kernel 4, stride 2, padding 1) on 2x4x5x5, output_padding 1.
            let (n, cin, h, wdt, cout, k, s, p, op) = (2, 4, 5, 5, 3, 4, 2, 1, 1)
            let g = try ConvGeometry.transposed(batch: n, inChannels: cin, height: h, width: wdt, outChannels: cout,
                                                kernel: k, stride: s, padding: p, outputPadding: op)
            let x = random.array(n * cin * h * wdt)
            // PyTorch stores a transposed weight as (in, out, k, k): the forward conv's (Cout=cin, Cin=cout, k, k).
            let w = random.array(cin * cout * k * k), b = random.array(cout)
            let outH = g.inHeight, outW = g.inWidth
            var expected = [Double](repeating: 0, count: n * cout * outH * outW)
            for i in 0..<n { for co in 0..<cout { for y in 0..<outH { for xx in 0..<outW {
                expected[((i * cout + co) * outH + y) * outW + xx] = Double(b[co])
            } } } }
            for i in 0..<n { for ci in 0..<cin { for ih in 0..<h { for iw in 0..<wdt {
                for co in 0..<cout { for ki in 0..<k { for kj in 0..<k {
                    let oy = ih * s - p + ki, ox = iw * s - p + kj
                    guard oy >= 0, oy < outH, ox >= 0, ox < outW else { continue }
                    expected[((i * cout + co) * outH + oy) * outW + ox] +=
                        Double(x[((i * cin + ci) * h + ih) * wdt + iw]) * Double(w[((ci * cout + co) * k + ki) * k + kj])
                } } }
            } } } }
            let output = try f.zeros(g.inputCount)
            try f.backend.conv2dBackwardData(g, gradOutput: try f.buffer(x), weight: try f.buffer(w), bias: try f.buffer(b),
                                             gradInput: output, accumulate: false)
            let reference = expected.map(Float.init)
            assertClose(try f.read(output), reference, absolute: Self.absolute(path, reference), relative: 1e-4, "\(path)")
        }
    }

    /// Winograd keeps transformed filters while the weights hold the same bytes: weights
    /// changed in place (an optimizer step) must give the new result, on every pass, and
    /// changing them back the old one.
    func testWinogradFiltersFollowWeightsChangedInPlace() throws {
        let f = Fixture(convolution: .winograd)
        var random = TestRandom(seed: 6)
        let g = try ConvGeometry(batch: 16, inChannels: 8, height: 14, width: 14, outChannels: 16, kernel: 4, stride: 2, padding: 1)
        let x = random.array(g.inputCount), dy = random.array(g.outputCount)
        let first = random.array(g.weightCount), second = random.array(g.weightCount)
        let weight = try f.buffer(first)
        let input = try f.buffer(x), gradOutput = try f.buffer(dy)
        for values in [first, second, first] {
            try values.withUnsafeBufferPointer { try f.backend.write($0, to: weight) }
            for _ in 0..<2 {
                let output = try f.zeros(g.outputCount), dx = try f.zeros(g.inputCount)
                try f.backend.conv2dForward(g, input: input, weight: weight, bias: nil, output: output)
                try f.backend.conv2dBackwardData(g, gradOutput: gradOutput, weight: weight, bias: nil, gradInput: dx, accumulate: false)
                let expected = referenceForward(g, x, values, nil), dxRef = referenceBackward(g, x, values, dy).dx
                assertClose(try f.read(output), expected, absolute: Self.absolute(.winograd, expected), relative: 1e-4, "forward")
                assertClose(try f.read(dx), dxRef, absolute: Self.absolute(.winograd, dxRef), relative: 1e-4, "backward-data")
            }
        }
    }

    func testMismatchedSizesThrow() throws {
        let f = Fixture()
        let g = try ConvGeometry(batch: 2, inChannels: 3, height: 5, width: 5, outChannels: 4, kernel: 3, padding: 1)
        let x = try f.zeros(g.inputCount), w = try f.zeros(g.weightCount), y = try f.zeros(g.outputCount)
        assertThrowsLatentError { try f.backend.conv2dForward(g, input: try f.zeros(g.inputCount - 1), weight: w, bias: nil, output: y) }
        assertThrowsLatentError { try f.backend.conv2dForward(g, input: x, weight: try f.zeros(g.weightCount + 1), bias: nil, output: y) }
        assertThrowsLatentError { try f.backend.conv2dForward(g, input: x, weight: w, bias: try f.zeros(3), output: y) }
        assertThrowsLatentError { try f.backend.conv2dBackwardData(g, gradOutput: y, weight: w, bias: try f.zeros(4), gradInput: x, accumulate: false) }
        assertThrowsLatentError { try f.backend.conv2dBackwardWeights(g, input: x, gradOutput: try f.zeros(1), gradWeight: w, accumulate: false) }
        var broken = g
        broken.outHeight += 1 // inconsistent with the other sizes
        assertThrowsLatentError {
            try f.backend.conv2dForward(broken, input: x, weight: w, bias: nil, output: try f.zeros(broken.outputCount))
        }
    }

    /// The automatic choice per pass: batch-inner from batches of 16, except the single-channel
    /// passes of a one-channel input with 32 or more output channels (see `usesBatchInner`);
    /// a forced path applies to every pass.
    func testAutomaticPathPerPass() throws {
        let automatic = CPUBackend(threads: 2)
        func choices(_ backend: CPUBackend, batch: Int, _ inChannels: Int, _ outChannels: Int) throws -> [Bool] {
            let g = try ConvGeometry(batch: batch, inChannels: inChannels, height: 28, width: 28, outChannels: outChannels,
                                     kernel: 4, stride: 2, padding: 1)
            return [ConvPass.forward, .backwardData, .backwardWeights].map { backend.usesBatchInner(g, $0) }
        }
        XCTAssertEqual(try choices(automatic, batch: 64, 1, 64), [true, false, false])
        XCTAssertEqual(try choices(automatic, batch: 64, 1, 8), [true, true, true])
        XCTAssertEqual(try choices(automatic, batch: 64, 64, 1), [true, true, true])
        XCTAssertEqual(try choices(automatic, batch: 8, 64, 128), [false, false, false])
        XCTAssertEqual(try choices(CPUBackend(threads: 2, convolution: .batchInner), batch: 64, 1, 64), [true, true, true])
        XCTAssertEqual(try choices(CPUBackend(threads: 2, convolution: .im2col), batch: 64, 64, 128), [false, false, false])
    }
}
