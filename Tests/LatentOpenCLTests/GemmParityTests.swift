import XCTest
import LatentCore
@testable import LatentOpenCL

/// SGEMM on OpenCL against the CPU backend, for both kernel variants, every transpose,
/// strides wider than the matrices, view offsets, alpha/beta (beta 0 must not read C), and
/// sizes that are not multiples of any tile (1, 7, 17, 33, 65, 130, 257 ...).
final class GemmParityTests: XCTestCase {
    static let shapes: [(m: Int, n: Int, k: Int)] = [
        (1, 1, 1), (7, 13, 5), (17, 3, 40), (33, 65, 17), (64, 64, 64), (65, 130, 71), (130, 70, 300), (257, 31, 129),
        (3, 200, 0),
    ]

    func check(_ variant: OpenCLKernelConfig.GemmVariant) throws {
        try check(Pair(try OpenCLTestDevice.backend(variant)), "\(variant)")
    }

    func check(_ pair: Pair, _ variant: String) throws {
        var random = TestRandom(seed: 11)
        for (m, n, k) in Self.shapes {
            for transA in [Transpose.none, .transposed] {
                for transB in [Transpose.none, .transposed] {
                    for (alpha, beta) in [(Float(1), Float(0)), (0.5, 1), (-1.25, 0.75)] {
                        let (aRows, aCols) = transA == .none ? (m, k) : (k, m)
                        let (bRows, bCols) = transB == .none ? (k, n) : (n, k)
                        let lda = aCols + 3, ldb = bCols + 1, ldc = n + 2
                        let a = try pair.buffers(random.array(Swift.max(aRows * lda, 1)), offset: 5)
                        let b = try pair.buffers(random.array(Swift.max(bRows * ldb, 1)), offset: 2)
                        var cValues = random.array(m * ldc)
                        if beta == 0 { cValues = cValues.map { _ in Float.nan } } // must not be read
                        let c = try pair.buffers(cValues, offset: 1)
                        for (backend, views) in [(pair.cpu as any Backend, (a.cpu, b.cpu, c.cpu)), (pair.cl, (a.cl, b.cl, c.cl))] {
                            try backend.gemm(transA: transA, transB: transB, m: m, n: n, k: k, alpha: alpha,
                                             a: views.0, lda: lda, b: views.1, ldb: ldb, beta: beta, c: views.2, ldc: ldc)
                        }
                        var (expected, actual) = try pair.read(c)
                        // Columns past n (the ldc padding) are never written; NaN there on both sides is fine.
                        for row in 0..<m {
                            for column in n..<ldc {
                                expected[row * ldc + column] = 0
                                actual[row * ldc + column] = 0
                            }
                        }
                        assertScaled(actual, expected, tolerance: 1e-5,
                                     "\(variant) m \(m) n \(n) k \(k) \(transA) \(transB) alpha \(alpha) beta \(beta)")
                    }
                }
            }
        }
    }

    func testBlockVariant() throws { try check(.block) }

    /// The large-SGEMM build of gemm.cl (GEMM_ROWS_LARGE), from every size on: 12 rows
    /// (this device class's default) and 7 (panels that divide nothing here).
    func testBlockVariantLargeRows() throws {
        let device = try OpenCLTestDevice.backend().device
        for rows in [12, 7] {
            var config = OpenCLKernelConfig(gemm: .block, reduceGroup: 64)
            config.gemmRowsLarge = rows
            config.gemmLargeMinimum = 1
            XCTAssertEqual(config.blockRows(m: 7, n: 13, k: 5), rows)
            XCTAssertEqual(config.blockRows(m: 3, n: 200, k: 0), config.gemmRows)
            try check(Pair(try OpenCLBackend(device: device, config: config)), "\(config)")
        }
    }

    /// The default threshold: a 517 x 530 x 515 product (every extent past 512, none a
    /// multiple of 12 or 16) through whichever rows the device's defaults pick.
    func testLargeProductWithDefaultRows() throws {
        let pair = Pair(try OpenCLTestDevice.backend(.block))
        XCTAssertEqual(pair.cl.config.blockRows(m: 517, n: 530, k: 515), pair.cl.config.gemmRowsLarge)
        var random = TestRandom(seed: 5)
        let (m, n, k) = (517, 530, 515)
        let a = try pair.buffers(random.array(m * k)), b = try pair.buffers(random.array(k * n))
        let c = try pair.buffers(random.array(m * n))
        try pair.cpu.gemm(transA: .none, transB: .none, m: m, n: n, k: k, alpha: 1, a: a.cpu, lda: k, b: b.cpu, ldb: n, beta: 0.5, c: c.cpu, ldc: n)
        try pair.cl.gemm(transA: .none, transB: .none, m: m, n: n, k: k, alpha: 1, a: a.cl, lda: k, b: b.cl, ldb: n, beta: 0.5, c: c.cl, ldc: n)
        try pair.assertSame(c, tolerance: 1e-5, "\(pair.cl.config)")
    }
    func testTiledVariant() throws { try check(.tiled) }

    /// Views of another backend and wrong sizes are errors, not device faults.
    func testArgumentErrors() throws {
        let pair = Pair(try OpenCLTestDevice.backend())
        let cpuView = try BufferView(try pair.cpu.makeBuffer(count: 4))
        let clView = try BufferView(try pair.cl.makeBuffer(count: 4))
        XCTAssertThrowsError(try pair.cl.gemm(transA: .none, transB: .none, m: 2, n: 2, k: 2, alpha: 1, a: cpuView, lda: 2,
                                              b: clView, ldb: 2, beta: 0, c: clView, ldc: 2))
        XCTAssertThrowsError(try pair.cl.gemm(transA: .none, transB: .none, m: 3, n: 2, k: 2, alpha: 1, a: clView, lda: 2,
                                              b: clView, ldb: 2, beta: 0, c: clView, ldc: 2))
    }
}
