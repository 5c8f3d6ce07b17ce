import XCTest
import LatentCore
@testable import LatentOpenCL

/// The three convolution passes on OpenCL against the CPU backend, for both SGEMM variants:
/// strides 1-3, padding 0-2, kernels 1-5, non-square kernels and inputs, odd channel
/// counts, pointwise (1x1) layers, the conv VAE's layers, bias and accumulation; every
/// convolution variant (im2col, batch-inner, Winograd F(4x4, 3x3) and F(4x4, 2x2)).
final class ConvParityTests: XCTestCase {
    static func geometries() throws -> [ConvGeometry] {
        [
            try ConvGeometry(batch: 2, inChannels: 3, height: 7, width: 7, outChannels: 5, kernel: 3, stride: 1, padding: 1),
            try ConvGeometry(batch: 3, inChannels: 2, height: 9, width: 8, outChannels: 4, kernel: 4, stride: 2, padding: 1),
            try ConvGeometry(batch: 2, inChannels: 5, height: 10, width: 10, outChannels: 3, kernel: 3, stride: 2, padding: 0),
            try ConvGeometry(batch: 4, inChannels: 3, height: 6, width: 5, outChannels: 7, kernel: 1),
            try ConvGeometry(batch: 1, inChannels: 1, height: 5, width: 5, outChannels: 1, kernel: 5, stride: 1, padding: 2),
            try ConvGeometry(batch: 2, inChannels: 2, height: 5, width: 70, outChannels: 3, kernel: 3, stride: 3, padding: 2),
            try ConvGeometry(batch: 2, inChannels: 3, height: 8, width: 9, outChannels: 2, kernelHeight: 3, kernelWidth: 2,
                             strideHeight: 2, strideWidth: 3, padHeight: 1, padWidth: 0),
            // The conv VAE's encoder and decoder shapes at a small batch.
            try ConvGeometry(batch: 3, inChannels: 1, height: 28, width: 28, outChannels: 64, kernel: 4, stride: 2, padding: 1),
            try ConvGeometry(batch: 3, inChannels: 64, height: 14, width: 14, outChannels: 128, kernel: 4, stride: 2, padding: 1),
            try ConvGeometry(batch: 2, inChannels: 128, height: 7, width: 7, outChannels: 128, kernel: 3, stride: 1, padding: 1),
            try ConvGeometry.transposed(batch: 3, inChannels: 64, height: 14, width: 14, outChannels: 1, kernel: 4, stride: 2, padding: 1),
        ]
    }

    /// Batches for the batch-inner kernels: a 16-lane tail, spare lanes, channel counts that
    /// leave partial panels, stride phases without taps, the conv VAE's layers at batch 64.
    static func batchInnerGeometries() throws -> [ConvGeometry] {
        [
            try ConvGeometry(batch: 20, inChannels: 3, height: 14, width: 14, outChannels: 13, kernel: 4, stride: 2, padding: 1),
            try ConvGeometry(batch: 48, inChannels: 5, height: 7, width: 7, outChannels: 7, kernel: 3, stride: 1, padding: 1),
            try ConvGeometry(batch: 16, inChannels: 14, height: 9, width: 11, outChannels: 1, kernelHeight: 2, kernelWidth: 3,
                             strideHeight: 3, strideWidth: 2, padHeight: 1, padWidth: 2),
            try ConvGeometry(batch: 18, inChannels: 4, height: 9, width: 9, outChannels: 6, kernel: 1, stride: 2, padding: 0),
            try ConvGeometry(batch: 64, inChannels: 64, height: 14, width: 14, outChannels: 128, kernel: 4, stride: 2, padding: 1),
            try ConvGeometry.transposed(batch: 64, inChannels: 64, height: 14, width: 14, outChannels: 1, kernel: 4, stride: 2, padding: 1),
            try ConvGeometry.transposed(batch: 17, inChannels: 9, height: 7, width: 7, outChannels: 2, kernel: 3, stride: 2,
                                        padding: 1, outputPadding: 1),
        ]
    }

    /// Winograd F(4x4, 3x3)'s edges: padding 0 and 2, odd and unequal sides (partial tiles),
    /// a map smaller than one tile, a transposed 3x3 stride-1 layer, the conv VAE's layer.
    static func winogradGeometries() throws -> [ConvGeometry] {
        [
            try ConvGeometry(batch: 5, inChannels: 3, height: 11, width: 13, outChannels: 6, kernel: 3, stride: 1, padding: 0),
            try ConvGeometry(batch: 16, inChannels: 4, height: 10, width: 9, outChannels: 5, kernel: 3, stride: 1, padding: 2),
            try ConvGeometry(batch: 3, inChannels: 2, height: 3, width: 5, outChannels: 2, kernel: 3, stride: 1, padding: 1),
            try ConvGeometry.transposed(batch: 17, inChannels: 6, height: 7, width: 7, outChannels: 5, kernel: 3, stride: 1,
                                        padding: 1),
            try ConvGeometry(batch: 33, inChannels: 40, height: 7, width: 7, outChannels: 19, kernel: 3, stride: 1, padding: 1),
            try ConvGeometry(batch: 64, inChannels: 128, height: 7, width: 7, outChannels: 128, kernel: 3, stride: 1, padding: 1),
        ]
    }

    /// Winograd F(4x4, 2x2)'s edges (4x4 stride 2): padding 0 and 2, unequal padding, odd and
    /// unequal sides (partial tiles, stride phases one row short), a map smaller than one tile,
    /// transposed layers (their forward is backward-data), channel counts that leave partial
    /// panels, spare lanes, and the conv VAE's and DCGAN's layers at batch 64.
    static func winograd4x4Geometries() throws -> [ConvGeometry] {
        [
            try ConvGeometry(batch: 5, inChannels: 3, height: 11, width: 13, outChannels: 6, kernel: 4, stride: 2, padding: 0),
            try ConvGeometry(batch: 16, inChannels: 4, height: 10, width: 9, outChannels: 5, kernel: 4, stride: 2, padding: 2),
            try ConvGeometry(batch: 17, inChannels: 9, height: 12, width: 15, outChannels: 18, kernelHeight: 4, kernelWidth: 4,
                             strideHeight: 2, strideWidth: 2, padHeight: 2, padWidth: 1),
            try ConvGeometry(batch: 3, inChannels: 2, height: 4, width: 6, outChannels: 2, kernel: 4, stride: 2, padding: 1),
            try ConvGeometry.transposed(batch: 17, inChannels: 6, height: 7, width: 7, outChannels: 5, kernel: 4, stride: 2,
                                        padding: 1),
            try ConvGeometry.transposed(batch: 20, inChannels: 10, height: 5, width: 6, outChannels: 3, kernel: 4, stride: 2,
                                        padding: 2, outputPadding: 1),
            try ConvGeometry(batch: 33, inChannels: 40, height: 14, width: 14, outChannels: 19, kernel: 4, stride: 2, padding: 1),
            try ConvGeometry(batch: 64, inChannels: 64, height: 14, width: 14, outChannels: 128, kernel: 4, stride: 2, padding: 1),
            try ConvGeometry.transposed(batch: 64, inChannels: 128, height: 7, width: 7, outChannels: 64, kernel: 4, stride: 2,
                                        padding: 1),
        ]
    }

    func check(_ variant: OpenCLKernelConfig.GemmVariant, convolution: OpenCLKernelConfig.ConvolutionVariant? = nil,
               geometries: [ConvGeometry]? = nil, backend: OpenCLBackend? = nil) throws {
        let pair = Pair(try backend ?? OpenCLTestDevice.backend(variant, convolution: convolution))
        var random = TestRandom(seed: 5)
        for g in try geometries ?? Self.geometries() {
            let x = try pair.buffers(random.array(g.inputCount), offset: 3)
            let w = try pair.buffers(random.array(g.weightCount, -0.5, 0.5), offset: 1)
            let dy = try pair.buffers(random.array(g.outputCount), offset: 2)
            let outBias = try pair.buffers(random.array(g.outChannels))
            let inBias = try pair.buffers(random.array(g.inChannels))
            let name = "\(variant) \(convolution.map { "\($0)" } ?? "") \(backend.map { "\($0.config)" } ?? "") \(g)"
            for bias in [nil, outBias] {
                let y = try pair.buffers([Float](repeating: .nan, count: g.outputCount), offset: 4)
                try pair.cpu.conv2dForward(g, input: x.cpu, weight: w.cpu, bias: bias?.cpu, output: y.cpu)
                try pair.cl.conv2dForward(g, input: x.cl, weight: w.cl, bias: bias?.cl, output: y.cl)
                try pair.assertSame(y, tolerance: 2e-5, "forward \(name) bias \(bias != nil)")
            }
            for (bias, accumulate) in [(nil, false), (inBias, false), (nil, true), (inBias, true)] {
                let dx = try pair.buffers(random.array(g.inputCount), offset: 1)
                try pair.cpu.conv2dBackwardData(g, gradOutput: dy.cpu, weight: w.cpu, bias: bias?.cpu, gradInput: dx.cpu, accumulate: accumulate)
                try pair.cl.conv2dBackwardData(g, gradOutput: dy.cl, weight: w.cl, bias: bias?.cl, gradInput: dx.cl, accumulate: accumulate)
                try pair.assertSame(dx, tolerance: 2e-5, "backward-data \(name) bias \(bias != nil) accumulate \(accumulate)")
            }
            for accumulate in [false, true] {
                let dw = try pair.buffers(random.array(g.weightCount), offset: 2)
                try pair.cpu.conv2dBackwardWeights(g, input: x.cpu, gradOutput: dy.cpu, gradWeight: dw.cpu, accumulate: accumulate)
                try pair.cl.conv2dBackwardWeights(g, input: x.cl, gradOutput: dy.cl, gradWeight: dw.cl, accumulate: accumulate)
                try pair.assertSame(dw, tolerance: 2e-5, "backward-weights \(name) accumulate \(accumulate)")
            }
        }
    }

    func testBlockVariant() throws { try check(.block) }
    func testTiledVariant() throws { try check(.tiled) }
    func testBatchInnerKernels() throws {
        try check(.block, convolution: .batchInner, geometries: try Self.geometries() + Self.batchInnerGeometries())
    }
    /// Winograd wherever the shape is 3x3 stride 1 or 4x4 stride 2, through both SGEMM variants.
    func testWinogradKernels() throws {
        try check(.block, convolution: .winograd, geometries: try Self.geometries() + Self.winogradGeometries())
        try check(.tiled, convolution: .winograd, geometries: try Self.winogradGeometries())
    }
    /// Which layers take Winograd without being forced: the CPU backend's rule (4x4 stride 2
    /// from 8 input and 16 output channels, 3x3 stride 1 from 16 on both sides, batch 16 or
    /// more, padding up to 2), so that both backends run the report models' big layers the same way.
    func testWinogradIsChosenForTheReportModelsLayers() throws {
        let cl = try OpenCLTestDevice.backend()
        let conv2 = try ConvGeometry(batch: 64, inChannels: 64, height: 14, width: 14, outChannels: 128, kernel: 4, stride: 2, padding: 1)
        let tconv1 = try ConvGeometry.transposed(batch: 64, inChannels: 128, height: 7, width: 7, outChannels: 64, kernel: 4,
                                                 stride: 2, padding: 1)
        let conv3 = try ConvGeometry(batch: 64, inChannels: 128, height: 7, width: 7, outChannels: 128, kernel: 3, stride: 1, padding: 1)
        XCTAssertTrue(cl.usesWinograd4x4(conv2))
        XCTAssertTrue(cl.usesWinograd4x4(tconv1))
        XCTAssertTrue(cl.usesWinograd3x3(conv3))
        XCTAssertFalse(cl.usesWinograd4x4(conv3))
        XCTAssertFalse(cl.usesWinograd3x3(conv2))
        // The 1-channel layers, small batches and wide padding stay on the direct kernels.
        XCTAssertFalse(cl.usesWinograd4x4(try ConvGeometry(batch: 64, inChannels: 1, height: 28, width: 28, outChannels: 64,
                                                           kernel: 4, stride: 2, padding: 1)))
        XCTAssertFalse(cl.usesWinograd4x4(try ConvGeometry(batch: 8, inChannels: 64, height: 14, width: 14, outChannels: 128,
                                                           kernel: 4, stride: 2, padding: 1)))
        XCTAssertFalse(cl.usesWinograd4x4(try ConvGeometry(batch: 64, inChannels: 64, height: 14, width: 14, outChannels: 128,
                                                           kernel: 4, stride: 2, padding: 3)))
        let direct = try OpenCLTestDevice.backend(convolution: .batchInner)
        XCTAssertFalse(direct.usesWinograd4x4(conv2))
        XCTAssertFalse(direct.usesWinograd3x3(conv3))
    }
    func testWinogradFourByFourKernels() throws {
        try check(.block, convolution: .winograd, geometries: try Self.winograd4x4Geometries())
        try check(.tiled, convolution: .winograd, geometries: try Self.winograd4x4Geometries().filter { $0.batch < 30 })
    }
    /// The batch-inner kernels (block SGEMM; `convolution` batch-inner or Winograd) with the
    /// device's defaults changed by `change`.
    func checkBatchInner(_ geometries: [ConvGeometry], convolution: OpenCLKernelConfig.ConvolutionVariant = .batchInner,
                         _ change: (inout OpenCLKernelConfig) -> Void) throws {
        let device = try OpenCLTestDevice.backend().device
        var config = OpenCLKernelConfig.defaults(for: device)
        config.gemm = .block
        config.convolution = convolution
        change(&config)
        try check(.block, convolution: convolution, geometries: geometries, backend: try OpenCLBackend(device: device, config: config))
    }
    /// The weight gradient's register blocks (BW_CO x BW_R, float16 or float8 lanes): both
    /// device-class defaults and blocks that divide none of the channel or tap counts, in the
    /// direct kernel and in F(4x4, 2x2)'s products (`winograd_multiply_nt`).
    func testWeightGradientBlocks() throws {
        for (channels, rows, width) in [(4, 4, 16), (4, 3, 8), (3, 5, 8), (1, 1, 16)] {
            try checkBatchInner(try Self.batchInnerGeometries()) {
                $0.weightGradientChannels = channels
                $0.weightGradientRows = rows
                $0.weightGradientWidth = width
            }
            try checkBatchInner(try Self.winograd4x4Geometries().filter { $0.batch < 30 }, convolution: .winograd) {
                $0.weightGradientChannels = channels
                $0.weightGradientRows = rows
                $0.weightGradientWidth = width
            }
        }
    }
    /// Backward-data into fewer channels than GEMM_ROWS (bi_conv_backward_data_narrow): 1, 3
    /// and 4 positions per work-item, and 16-row blocks, under which every layer here with
    /// fewer than 16 input channels (stride phases without taps, rows that end mid-block) takes it.
    /// Only those layers: the others' passes are testBatchInnerKernels'.
    func testNarrowBackwardData() throws {
        for (rows, positions) in [(8, 1), (8, 3), (16, 4)] {
            try checkBatchInner(try Self.batchInnerGeometries().filter { $0.inChannels < rows }) {
                $0.gemmRows = rows
                $0.gemmRowsLarge = rows
                $0.narrowBackwardDataPositions = positions
            }
        }
    }
    func testIm2colKernelsAtLargeBatches() throws {
        try check(.block, convolution: .im2col, geometries: try Self.batchInnerGeometries())
    }

    func testWrongSizesThrow() throws {
        let pair = Pair(try OpenCLTestDevice.backend())
        let g = try ConvGeometry(batch: 1, inChannels: 1, height: 4, width: 4, outChannels: 1, kernel: 3)
        let small = try BufferView(try pair.cl.makeBuffer(count: 3))
        XCTAssertThrowsError(try pair.cl.conv2dForward(g, input: small, weight: small, bias: nil, output: small))
    }
}
