import LatentCore

/// Eigen-decomposition of a real symmetric matrix by cyclic Jacobi rotations, in Double:
/// slow for big matrices (O(n^3) per sweep) but exact to rounding and simple, and the
/// 128 x 128 feature covariances take a fraction of a second.
public enum SymmetricEigen {
    /// Eigenvalues (ascending) and eigenvectors (column k of the row-major n x n `vectors`
    /// belongs to `values[k]`) of the symmetric n x n `matrix`.
    public static func decompose(_ matrix: [Double], size n: Int, maxSweeps: Int = 100) throws -> (values: [Double], vectors: [Double]) {
        guard n >= 1, matrix.count == n * n else { throw LatentError.invalidArgument("eigen-decomposition needs an n x n matrix, got \(matrix.count) values for n = \(n)") }
        guard matrix.allSatisfy(\.isFinite) else { throw LatentError.invalidArgument("eigen-decomposition of a matrix with NaN or infinite entries") }
        return rotations(matrix, size: n, maxSweeps: maxSweeps)
    }

    /// `decompose` without the checks, for callers whose matrix is square and finite by
    /// construction (PCA's and the principal plane's covariances and Ritz matrices).
    public static func rotations(_ matrix: [Double], size n: Int, maxSweeps: Int = 100) -> (values: [Double], vectors: [Double]) {
        var a = matrix
        var v = [Double](repeating: 0, count: n * n)
        for i in 0..<n { v[i * n + i] = 1 }
        let total = a.reduce(0) { $0 + $1 * $1 }
        a.withUnsafeMutableBufferPointer { a in
            v.withUnsafeMutableBufferPointer { v in
                // Symmetrise against rounding in the caller's products.
                for i in 0..<n { for j in (i + 1)..<n { let m = 0.5 * (a[i * n + j] + a[j * n + i]); a[i * n + j] = m; a[j * n + i] = m } }
                for _ in 0..<maxSweeps {
                    var off = 0.0
                    for i in 0..<n { for j in (i + 1)..<n { off += a[i * n + j] * a[i * n + j] } }
                    if off <= 1e-30 * max(total, 1e-300) { break }
                    for p in 0..<n {
                        for q in (p + 1)..<n {
                            let apq = a[p * n + q]
                            if apq == 0 { continue }
                            let app = a[p * n + p], aqq = a[q * n + q]
                            // Rotation angle that zeroes a[p][q] (Golub & Van Loan 8.4).
                            let theta = (aqq - app) / (2 * apq)
                            let t = (theta >= 0 ? 1.0 : -1.0) / (abs(theta) + (theta * theta + 1).squareRoot())
                            let c = 1 / (t * t + 1).squareRoot(), s = t * c
                            // Columns p and q, then rows p and q (A <- J^T A J), then V <- V J.
                            for k in 0..<n {
                                let akp = a[k * n + p], akq = a[k * n + q]
                                a[k * n + p] = c * akp - s * akq
                                a[k * n + q] = s * akp + c * akq
                            }
                            for k in 0..<n {
                                let apk = a[p * n + k], aqk = a[q * n + k]
                                a[p * n + k] = c * apk - s * aqk
                                a[q * n + k] = s * apk + c * aqk
                            }
                            for k in 0..<n {
                                let vkp = v[k * n + p], vkq = v[k * n + q]
                                v[k * n + p] = c * vkp - s * vkq
                                v[k * n + q] = s * vkp + c * vkq
                            }
                        }
                    }
                }
            }
        }
        let order = (0..<n).sorted { a[$0 * n + $0] < a[$1 * n + $1] }
        var vectors = [Double](repeating: 0, count: n * n)
        for (column, k) in order.enumerated() { for row in 0..<n { vectors[row * n + column] = v[row * n + k] } }
        return (order.map { a[$0 * n + $0] }, vectors)
    }

    /// The symmetric positive semi-definite square root V sqrt(max(L, 0)) V^T.
    public static func squareRoot(_ matrix: [Double], size n: Int) throws -> [Double] {
        let (values, vectors) = try decompose(matrix, size: n)
        let roots = values.map { max($0, 0).squareRoot() }
        var result = [Double](repeating: 0, count: n * n)
        for i in 0..<n {
            for j in i..<n {
                var sum = 0.0
                for k in 0..<n { sum += vectors[i * n + k] * roots[k] * vectors[j * n + k] }
                result[i * n + j] = sum
                result[j * n + i] = sum
            }
        }
        return result
    }
}
