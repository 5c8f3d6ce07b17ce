import LatentCore
@testable import LatentCPU
import XCTest

final class CPUGemmTests: XCTestCase {
    /// Row-major naive GEMM in Double, the reference every blocked path is checked against.
    func referenceGEMM(transA: Transpose, transB: Transpose, m: Int, n: Int, k: Int, alpha: Float,
                       a: [Float], lda: Int, b: [Float], ldb: Int, beta: Float, c: [Float], ldc: Int) -> [Float] {
        var result = c
        for i in 0..<m {
            for j in 0..<n {
                var sum = 0.0
                for p in 0..<k {
                    let av = transA == .none ? a[i * lda + p] : a[p * lda + i]
                    let bv = transB == .none ? b[p * ldb + j] : b[j * ldb + p]
                    sum += Double(av) * Double(bv)
                }
                result[i * ldc + j] = Float(Double(alpha) * sum + (beta == 0 ? 0 : Double(beta) * Double(c[i * ldc + j])))
            }
        }
        return result
    }

    func randomArray(_ count: Int, seed: UInt64) -> [Float] {
        var state = seed &* 0x9E37_79B9_7F4A_7C15 | 1
        return (0..<count).map { _ in
            state ^= state << 13; state ^= state >> 7; state ^= state << 17
            return Float(state % 2001) / 1000 - 1
        }
    }

    func check(transA: Transpose, transB: Transpose, m: Int, n: Int, k: Int, alpha: Float = 1, beta: Float = 0,
               padding: Int = 0, threads: Int = 2, file: StaticString = #filePath, line: UInt = #line) throws {
        let backend = CPUBackend(threads: threads)
        let lda = (transA == .none ? k : m) + padding
        let ldb = (transB == .none ? n : k) + padding
        let ldc = n + padding
        let aRows = transA == .none ? m : k
        let bRows = transB == .none ? k : n
        let aValues = randomArray(aRows * lda, seed: UInt64(m * 31 + k))
        let bValues = randomArray(bRows * ldb, seed: UInt64(n * 17 + k))
        let cValues = randomArray(m * ldc, seed: UInt64(m + n))
        let a = try Tensor(aValues, shape: [aValues.count], on: backend)
        let b = try Tensor(bValues, shape: [bValues.count], on: backend)
        let c = try Tensor(cValues, shape: [cValues.count], on: backend)
        try backend.gemm(transA: transA, transB: transB, m: m, n: n, k: k, alpha: alpha, a: a.view, lda: lda,
                         b: b.view, ldb: ldb, beta: beta, c: c.view, ldc: ldc)
        let expected = referenceGEMM(transA: transA, transB: transB, m: m, n: n, k: k, alpha: alpha,
                                     a: aValues, lda: lda, b: bValues, ldb: ldb, beta: beta, c: cValues, ldc: ldc)
        let actual = try c.toArray()
        for index in 0..<actual.count {
            let tolerance = 1e-5 * Float(max(k, 1)) + 1e-5
            if abs(actual[index] - expected[index]) > tolerance {
                XCTFail("gemm \(transA) \(transB) m\(m) n\(n) k\(k): element \(index) is \(actual[index]), expected \(expected[index])", file: file, line: line)
                return
            }
        }
    }

    func testAllTransposesOnEdgeSizes() throws {
        for transA in [Transpose.none, .transposed] {
            for transB in [Transpose.none, .transposed] {
                for (m, n, k) in [(1, 1, 1), (13, 33, 7), (12, 32, 256), (25, 70, 300), (100, 3, 40), (3, 100, 513)] {
                    try check(transA: transA, transB: transB, m: m, n: n, k: k)
                }
            }
        }
    }

    /// One row or one column of C: the matrix-vector path (a discriminator's last Linear and
    /// its gradients), every transpose, strided operands, alpha and beta, threaded sizes.
    func testMatrixVectorShapes() throws {
        for transA in [Transpose.none, .transposed] {
            for transB in [Transpose.none, .transposed] {
                for (m, n, k) in [(64, 1, 6272), (1, 6272, 64), (300, 1, 513), (1, 300, 513), (1, 1, 700), (37, 1, 5), (1, 29, 3)] {
                    try check(transA: transA, transB: transB, m: m, n: n, k: k)
                    try check(transA: transA, transB: transB, m: m, n: n, k: k, alpha: -0.5, beta: 1.5, padding: 3, threads: 1)
                }
            }
        }
    }

    func testAlphaBetaAndLeadingDimensions() throws {
        try check(transA: .none, transB: .none, m: 37, n: 45, k: 29, alpha: 0.5, beta: 2, padding: 3)
        try check(transA: .transposed, transB: .transposed, m: 64, n: 64, k: 64, alpha: -1, beta: 1, padding: 5)
        // k == 0 leaves beta * C.
        try check(transA: .none, transB: .none, m: 5, n: 6, k: 0, alpha: 1, beta: 0.5)
    }

    /// beta != 0 past one depth block (KC 256): the reference above (alpha and beta 0.5 and 2
    /// included), and two products accumulated into C (beta 1) give the same bits in either
    /// order, as a Linear layer's weight gradient over several passes needs (GAN.swift).
    func testDeepAccumulationAddsTheProductOnce() throws {
        try check(transA: .transposed, transB: .none, m: 40, n: 33, k: 600, alpha: 0.5, beta: 2, threads: 2)
        let (m, n, k) = (24, 70, 520)
        let a1 = randomArray(m * k, seed: 1), b1 = randomArray(k * n, seed: 2)
        let a2 = randomArray(m * k, seed: 3), b2 = randomArray(k * n, seed: 4)
        func accumulate(_ terms: [([Float], [Float])]) -> [Float] {
            var c = [Float](repeating: 0, count: m * n)
            for (a, b) in terms {
                a.withUnsafeBufferPointer { a in
                    b.withUnsafeBufferPointer { b in
                        c.withUnsafeMutableBufferPointer { c in
                            CPUGemm.sgemm(transA: .none, transB: .none, m: m, n: n, k: k, alpha: 1, a: a.baseAddress!, lda: k,
                                          b: b.baseAddress!, ldb: n, beta: 1, c: c.baseAddress!, ldc: n,
                                          parallel: CPUParallel(threadCount: 2))
                        }
                    }
                }
            }
            return c
        }
        XCTAssertEqual(accumulate([(a1, b1), (a2, b2)]), accumulate([(a2, b2), (a1, b1)]))
    }

    func testBlocksLargerThanOnePanelAndThreadCounts() throws {
        // Crosses the MC (192), KC (256) and NC (2048) block edges.
        try check(transA: .none, transB: .none, m: 200, n: 2100, k: 260, threads: 2)
        try check(transA: .none, transB: .transposed, m: 400, n: 50, k: 300, threads: 2)
        try check(transA: .transposed, transB: .none, m: 97, n: 131, k: 65, threads: 1)
    }

    /// The 12 x 32 tile in one pass (AVX-512) and as four 6 x 16 tiles (AVX2's register file,
    /// read here out of the 12 x 32 panels) sum every element in the same order, so they agree
    /// bit for bit, alpha and beta included. Both are tested on any machine (the whole tile on
    /// AVX2 is slow, not wrong).
    func testSixBySixteenTilesAreBitIdenticalToTheWholeTile() {
        let depth = 37
        var generator = SystemRandomNumberGenerator()
        let a = (0..<(12 * depth)).map { _ in Float.random(in: -1...1, using: &generator) }
        let b = (0..<(32 * depth)).map { _ in Float.random(in: -1...1, using: &generator) }
        let start = (0..<(12 * 40)).map { _ in Float.random(in: -1...1, using: &generator) }
        for (alpha, beta) in [(Float(1), Float(0)), (0.5, 1), (-2, 0.25)] {
            var whole = start, quarters = start
            a.withUnsafeBufferPointer { a in
                b.withUnsafeBufferPointer { b in
                    PackedGEMM.kernel12x32(depth: depth, a: a.baseAddress!, b: b.baseAddress!, c: &whole, ldc: 40, alpha: alpha, beta: beta)
                    quarters.withUnsafeMutableBufferPointer { c in
                        for rows in [0, 6] {
                            for columns in [0, 16] {
                                PackedGEMM.kernel6x16(depth: depth, a: a.baseAddress! + rows, aStride: 12,
                                                      b: b.baseAddress! + columns, bStride: 32,
                                                      c: c.baseAddress! + rows * 40 + columns, ldc: 40, alpha: alpha, beta: beta)
                            }
                        }
                    }
                }
            }
            XCTAssertEqual(quarters, whole, "alpha \(alpha) beta \(beta)")
        }
    }

    /// Rows 4 KiB apart are packed rather than read in place (`DirectA.aliases`); the result
    /// is the reference's either way: k = 1024 with lda 1024 (packed) and 1027 (in place).
    func testFourKiBStridedRowsArePackedAndCorrect() throws {
        XCTAssertTrue(PackedGEMM.DirectA.aliases(rowStride: 1024))
        XCTAssertTrue(PackedGEMM.DirectA.aliases(rowStride: 2048))
        XCTAssertFalse(PackedGEMM.DirectA.aliases(rowStride: 1027))
        XCTAssertFalse(PackedGEMM.DirectA.aliases(rowStride: 256))
        try check(transA: .none, transB: .none, m: 20, n: 70, k: 1024, alpha: 0.5, beta: 1)
        try check(transA: .none, transB: .transposed, m: 20, n: 70, k: 1024, padding: 3)
    }

    /// A row-major A read in place by the kernels (`PackedGEMM.DirectA`) and the same A packed
    /// give the same bits: MC and KC block edges, fewer than MR rows left over, a padded lda,
    /// alpha and beta, both B layouts.
    func testRowMajorAInPlaceIsBitIdenticalToPackedA() {
        for (m, n, k) in [(13, 33, 7), (12, 32, 256), (25, 70, 300), (200, 100, 260), (5, 40, 9)] {
            for transB in [Transpose.none, .transposed] {
                let lda = k + 3, ldb = (transB == .none ? n : k) + 2, ldc = n + 1
                let a = randomArray(m * lda, seed: UInt64(m * 7 + k)), b = randomArray((transB == .none ? k : n) * ldb, seed: UInt64(n))
                let start = randomArray(m * ldc, seed: UInt64(m + n + k))
                let (bRowStride, bColStride) = transB == .none ? (ldb, 1) : (1, ldb)
                var results: [[Float]] = []
                for inPlace in [false, true] {
                    var c = start
                    let scratch = PackingScratch(capacityB: PackedGEMM.kc * ((n + PackedGEMM.nr - 1) / PackedGEMM.nr * PackedGEMM.nr))
                    a.withUnsafeBufferPointer { a in
                        b.withUnsafeBufferPointer { b in
                            c.withUnsafeMutableBufferPointer { c in
                                PackedGEMM.multiply(m: m, n: n, k: k, alpha: -0.75, a: a.baseAddress!, aRowStride: lda, aColStride: 1,
                                                    b: b.baseAddress!, bRowStride: bRowStride, bColStride: bColStride,
                                                    beta: 0.5, c: c.baseAddress!, ldc: ldc, packedA: scratch.packedA,
                                                    packedB: scratch.packedB, edgeTile: scratch.edgeTile, aInPlace: inPlace)
                            }
                        }
                    }
                    results.append(c)
                }
                XCTAssertEqual(results[1], results[0], "m\(m) n\(n) k\(k) \(transB)")
                XCTAssertNotEqual(results[0], start)
            }
        }
        // Both register tiles, whichever this machine uses: rows lda apart against a packed panel.
        let depth = 29, lda = 41
        let rowMajor = randomArray(12 * lda, seed: 5), b = randomArray(32 * depth, seed: 6)
        var packed = [Float](repeating: 0, count: 12 * depth)
        for p in 0..<depth { for r in 0..<12 { packed[p * 12 + r] = rowMajor[r * lda + p] } }
        var packed6 = [Float](repeating: 0, count: 6 * depth)
        for p in 0..<depth { for r in 0..<6 { packed6[p * 6 + r] = rowMajor[r * lda + p] } }
        var fromPanel = [Float](repeating: 1, count: 12 * 32), inPlace = fromPanel
        var fromPanel6 = [Float](repeating: 1, count: 6 * 16), inPlace6 = fromPanel6
        PackedGEMM.kernel12x32(depth: depth, a: packed, b: b, c: &fromPanel, ldc: 32, alpha: 1, beta: 0.5)
        PackedGEMM.kernel12x32(depth: depth, a: rowMajor, aStride: 1, aRow: lda, b: b, c: &inPlace, ldc: 32, alpha: 1, beta: 0.5)
        XCTAssertEqual(inPlace, fromPanel)
        let b16 = randomArray(16 * depth, seed: 7)
        PackedGEMM.kernel6x16(depth: depth, a: packed6, aStride: 6, b: b16, bStride: 16, c: &fromPanel6, ldc: 16, alpha: 2, beta: 1)
        PackedGEMM.kernel6x16Rows(depth: depth, a: rowMajor, lda: lda, b: b16, c: &inPlace6, ldc: 16, alpha: 2, beta: 1)
        XCTAssertNotEqual(inPlace6, [Float](repeating: 1, count: 6 * 16))
        XCTAssertEqual(inPlace6, fromPanel6)
    }

    func testRejectsStridesThatWouldReadOutOfBounds() throws {
        let backend = CPUBackend(threads: 1)
        let a = try Tensor(zeros: [6], on: backend)
        let b = try Tensor(zeros: [6], on: backend)
        let c = try Tensor(zeros: [4], on: backend)
        XCTAssertThrowsError(try backend.gemm(transA: .none, transB: .none, m: 2, n: 2, k: 3, alpha: 1, a: a.view, lda: 2,
                                              b: b.view, ldb: 2, beta: 0, c: c.view, ldc: 2))
        XCTAssertThrowsError(try backend.gemm(transA: .none, transB: .none, m: 3, n: 2, k: 3, alpha: 1, a: a.view, lda: 3,
                                              b: b.view, ldb: 2, beta: 0, c: c.view, ldc: 2))
    }
}
