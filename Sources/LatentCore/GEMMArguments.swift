/// Argument checks every backend's GEMM shares, so a wrong stride is an error on both
/// and never an out-of-bounds read.
public enum GEMMArguments {
    public static func check(transA: Transpose, transB: Transpose, m: Int, n: Int, k: Int,
                             a: Int, lda: Int, b: Int, ldb: Int, c: Int, ldc: Int) throws {
        guard m >= 0, n >= 0, k >= 0 else { throw LatentError.invalidArgument("gemm sizes must be >= 0, got m \(m) n \(n) k \(k)") }
        if m == 0 || n == 0 { return }
        let (aRows, aCols) = transA == .none ? (m, k) : (k, m)
        let (bRows, bCols) = transB == .none ? (k, n) : (n, k)
        try checkMatrix("A", rows: aRows, cols: aCols, stride: lda, available: a)
        try checkMatrix("B", rows: bRows, cols: bCols, stride: ldb, available: b)
        try checkMatrix("C", rows: m, cols: n, stride: ldc, available: c)
    }

    static func checkMatrix(_ name: String, rows: Int, cols: Int, stride: Int, available: Int) throws {
        if rows == 0 || cols == 0 { return }
        guard stride >= cols else { throw LatentError.invalidArgument("gemm: leading dimension of \(name) (\(stride)) is below its \(cols) columns") }
        let needed = (rows - 1) * stride + cols
        guard needed <= available else {
            throw LatentError.shape("gemm: \(name) needs \(needed) floats (\(rows)x\(cols), stride \(stride)) but its view has \(available)")
        }
    }
}
