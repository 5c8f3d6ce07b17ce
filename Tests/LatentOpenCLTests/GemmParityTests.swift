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
        let pair = Pair(try OpenCLTestDevice.backend(variant))
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
