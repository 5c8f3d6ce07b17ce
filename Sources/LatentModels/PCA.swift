import LatentCore

/// Principal component analysis of a data set of `dimension`-float rows, deterministic:
///
/// 1. The mean, in Double on the host.
/// 2. The covariance `C = sum (x - mean)(x - mean)^T / (n - 1)` (dimension^2), accumulated
///    on the backend with GEMM over chunks of centred rows (Float, the backend's own
///    summation order; for MNIST 60000 x 784 this is 37 G multiply-adds, about a second or
///    two on the CPU backend), then read back as Double.
/// 3. The top `components` eigenpairs of C by subspace iteration in Double on the host: a
///    block of `components + 8` vectors (fixed start: a SplitMix64 pattern), multiplied by C
///    and re-orthonormalised (modified Gram-Schmidt) each round, with a Rayleigh-Ritz step
///    (cyclic Jacobi on the small projected matrix) ordering the vectors; it stops when every
///    wanted pair has residual `||C v - lambda v|| <= 1e-10 * lambda_1` (or after 10000 rounds).
/// 4. Signs: each component is flipped so that its largest-magnitude element is positive
///    (the first such element on ties), so a run is reproducible to the sign.
///
/// The result: the mean, the components as rows (components x dimension, orthonormal, by
/// decreasing variance), and the standard deviation of the data along each component
/// (sqrt of its eigenvalue: the spread of the training projections, unbiased).
public struct PrincipalComponents: Sendable, Equatable {
    public var mean: [Float]
    public var components: [Float]
    public var standardDeviations: [Float]
    public var dimension: Int
    public var count: Int { standardDeviations.count }

    /// `rows(start, count, into)` writes rows `start ..< start + count` (count x dimension
    /// floats) into the buffer; it is called twice per row (mean, then covariance).
    public static func compute(rowCount: Int, dimension: Int, components: Int, backend: any Backend,
                               chunkSize: Int = 2048,
                               rows: (_ start: Int, _ count: Int, _ into: inout [Float]) throws -> Void) throws -> PrincipalComponents {
        guard rowCount >= 2 else { throw LatentError.invalidArgument("PCA needs at least 2 samples, got \(rowCount)") }
        guard dimension >= 1, components >= 1, components <= dimension else {
            throw LatentError.invalidArgument("PCA to \(components) components needs 1 <= components <= dimension \(dimension)")
        }
        let chunkSize = max(1, chunkSize)
        var buffer = [Float](repeating: 0, count: min(chunkSize, rowCount) * dimension)

        // 1. Mean.
        var sum = [Double](repeating: 0, count: dimension)
        var start = 0
        while start < rowCount {
            let count = min(chunkSize, rowCount - start)
            try rows(start, count, &buffer)
            for r in 0..<count {
                let base = r * dimension
                for j in 0..<dimension { sum[j] += Double(buffer[base + j]) }
            }
            start += count
        }
        let mean = sum.map { $0 / Double(rowCount) }
        let meanFloat = mean.map { Float($0) }

        // 2. Covariance on the backend.
        let chunk = try Tensor(zeros: [min(chunkSize, rowCount), dimension], on: backend)
        let covariance = try Tensor(zeros: [dimension, dimension], on: backend)
        start = 0
        var first = true
        while start < rowCount {
            let count = min(chunkSize, rowCount - start)
            try rows(start, count, &buffer)
            for r in 0..<count {
                let base = r * dimension
                for j in 0..<dimension { buffer[base + j] -= meanFloat[j] }
            }
            let view = try chunk.view.slice(0, count: count * dimension)
            try buffer.withUnsafeBufferPointer { try backend.write(UnsafeBufferPointer(rebasing: $0[0..<(count * dimension)]), to: view) }
            // C (d x d) += X^T (d x count) X (count x d)
            try backend.gemm(transA: .transposed, transB: .none, m: dimension, n: dimension, k: count,
                             alpha: 1, a: view, lda: dimension, b: view, ldb: dimension,
                             beta: first ? 0 : 1, c: covariance.view, ldc: dimension)
            first = false
            start += count
        }
        let scale = 1 / Double(rowCount - 1)
        var matrix = try covariance.toArray().map { Double($0) * scale }
        // Symmetrise (the GEMM's two triangles may differ in the last bit).
        for i in 0..<dimension {
            for j in (i + 1)..<dimension {
                let average = (matrix[i * dimension + j] + matrix[j * dimension + i]) / 2
                matrix[i * dimension + j] = average
                matrix[j * dimension + i] = average
            }
        }

        // 3. Top eigenpairs.
        let (values, vectors) = topEigenpairs(symmetric: matrix, dimension: dimension, count: components)
        // 4. Signs.
        var componentRows = [Float](repeating: 0, count: components * dimension)
        for c in 0..<components {
            var vector = Array(vectors[(c * dimension)..<((c + 1) * dimension)])
            var largest = 0
            for j in 1..<dimension where abs(vector[j]) > abs(vector[largest]) { largest = j }
            if vector[largest] < 0 { vector = vector.map { -$0 } }
            for j in 0..<dimension { componentRows[c * dimension + j] = Float(vector[j]) }
        }
        return PrincipalComponents(mean: meanFloat, components: componentRows,
                                   standardDeviations: values.map { Float(max($0, 0).squareRoot()) },
                                   dimension: dimension)
    }

    /// The `count` largest eigenvalues (descending) of a symmetric matrix and their unit
    /// eigenvectors (rows), by subspace iteration with Rayleigh-Ritz.
    static func topEigenpairs(symmetric a: [Double], dimension n: Int, count k: Int) -> (values: [Double], vectors: [Double]) {
        let b = min(n, k + 8)
        // Q: b orthonormal columns stored as rows (b x n).
        var q = [Double](repeating: 0, count: b * n)
        var state: UInt64 = 0x5EED_0F0C_A000_0001
        for i in 0..<(b * n) {
            state &+= 0x9E37_79B9_7F4A_7C15
            var z = state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            z ^= z >> 31
            q[i] = Double(z >> 11) * 0x1p-53 - 0.5
        }
        orthonormalize(&q, rows: b, length: n)
        var z = [Double](repeating: 0, count: b * n)
        var values = [Double](repeating: 0, count: b)
        var scaleReference = 0.0
        for iteration in 0..<10_000 {
            // Z = (A Q^T)^T: z_i = A q_i.
            multiply(a, n, q, b, into: &z)
            // Rayleigh-Ritz: T = Q A Q^T (b x b), T = V diag V^T; Q <- V^T Q, Z <- V^T Z.
            var t = [Double](repeating: 0, count: b * b)
            for i in 0..<b {
                for j in i..<b {
                    var s = 0.0
                    for l in 0..<n { s += q[i * n + l] * z[j * n + l] }
                    t[i * b + j] = s
                    t[j * b + i] = s
                }
            }
            let (eigenvalues, eigenvectors) = SymmetricEigen.rotations(t, size: b)
            let order = (0..<b).sorted { eigenvalues[$0] > eigenvalues[$1] || (eigenvalues[$0] == eigenvalues[$1] && $0 < $1) }
            var rotatedQ = [Double](repeating: 0, count: b * n)
            var rotatedZ = [Double](repeating: 0, count: b * n)
            for (newIndex, old) in order.enumerated() {
                values[newIndex] = eigenvalues[old]
                for i in 0..<b {
                    let weight = eigenvectors[i * b + old]
                    if weight == 0 { continue }
                    for l in 0..<n {
                        rotatedQ[newIndex * n + l] += weight * q[i * n + l]
                        rotatedZ[newIndex * n + l] += weight * z[i * n + l]
                    }
                }
            }
            q = rotatedQ
            z = rotatedZ
            // Residuals of the wanted pairs: ||A q_i - lambda_i q_i||.
            scaleReference = max(abs(values[0]), 1e-300)
            var converged = true
            for i in 0..<k {
                var r = 0.0
                for l in 0..<n {
                    let d = z[i * n + l] - values[i] * q[i * n + l]
                    r += d * d
                }
                if r.squareRoot() > 1e-10 * scaleReference { converged = false; break }
            }
            if converged || iteration == 9_999 || values[0] == 0 { break }
            // Next block: the Ritz vectors multiplied by A, orthonormalised.
            q = z
            orthonormalize(&q, rows: b, length: n)
        }
        return (Array(values[0..<k]), Array(q[0..<(k * n)]))
    }

    /// z (b x n) = rows q_i multiplied by the symmetric A (n x n).
    static func multiply(_ a: [Double], _ n: Int, _ q: [Double], _ b: Int, into z: inout [Double]) {
        a.withUnsafeBufferPointer { a in
            q.withUnsafeBufferPointer { q in
                z.withUnsafeMutableBufferPointer { z in
                    for i in 0..<b {
                        for r in 0..<n {
                            var s = 0.0
                            let row = r * n, column = i * n
                            for l in 0..<n { s += a[row + l] * q[column + l] }
                            z[i * n + r] = s
                        }
                    }
                }
            }
        }
    }

    /// Modified Gram-Schmidt on the rows, twice for stability; a row that vanishes is replaced
    /// by the first unit vector independent of the others.
    static func orthonormalize(_ q: inout [Double], rows b: Int, length n: Int) {
        for i in 0..<b {
            for _ in 0..<2 {
                for j in 0..<i {
                    var d = 0.0
                    for l in 0..<n { d += q[i * n + l] * q[j * n + l] }
                    for l in 0..<n { q[i * n + l] -= d * q[j * n + l] }
                }
            }
            var norm = 0.0
            for l in 0..<n { norm += q[i * n + l] * q[i * n + l] }
            norm = norm.squareRoot()
            if norm > 1e-150 {
                for l in 0..<n { q[i * n + l] /= norm }
                continue
            }
            // Degenerate: take a basis vector and orthogonalise it.
            for axis in 0..<n {
                for l in 0..<n { q[i * n + l] = l == axis ? 1 : 0 }
                for j in 0..<i {
                    let d = q[j * n + axis]
                    for l in 0..<n { q[i * n + l] -= d * q[j * n + l] }
                }
                var norm = 0.0
                for l in 0..<n { norm += q[i * n + l] * q[i * n + l] }
                norm = norm.squareRoot()
                if norm > 1e-6 {
                    for l in 0..<n { q[i * n + l] /= norm }
                    break
                }
            }
        }
    }
}
