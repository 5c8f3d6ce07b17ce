import LatentModels

/// The 2-D principal plane of a cloud of points, in Double on the host, for scatter plots of
/// codes with more than two dimensions: the mean, the two directions of largest variance
/// (orthonormal, by decreasing variance) and the share of the total variance they hold.
///
/// The covariance (d x d) is diagonalised by cyclic Jacobi rotations, exact to rounding for
/// the code sizes of the zoo (d <= 256); larger codes use subspace iteration on a block of
/// eight vectors. Each axis is flipped so that its largest-magnitude element is positive, so
/// the picture does not mirror from run to run.
public struct PrincipalPlane: Sendable, Equatable {
    public let dimension: Int
    public let mean: [Double]
    /// Two unit vectors of `dimension` elements.
    public let axes: [[Double]]
    /// Variance along each axis (unbiased).
    public let variances: [Double]
    public let totalVariance: Double

    /// Fits `points` (count x dimension, row-major; count >= 2, dimension >= 2).
    public init(points: [Float], dimension: Int) throws {
        guard dimension >= 2 else { throw ExploreError("a principal plane needs at least 2 dimensions, got \(dimension)") }
        guard points.count % dimension == 0, points.count / dimension >= 2 else {
            throw ExploreError("a principal plane needs at least 2 points of \(dimension) floats, got \(points.count) floats")
        }
        // The same unbiased mean and covariance as the FID's feature statistics.
        let statistics = try FeatureStatistics(rows: points, dimension: dimension)
        let mean = statistics.mean, covariance = statistics.covariance
        let total = (0..<dimension).reduce(0.0) { $0 + covariance[$1 * dimension + $1] }
        let (values, vectors) = dimension <= 256
            ? Self.jacobi(covariance, dimension)
            : Self.subspace(covariance, dimension, wanted: 2)
        self.dimension = dimension
        self.mean = mean
        axes = vectors.prefix(2).map(Self.canonicalSign)
        variances = Array(values.prefix(2)).map { max(0, $0) }
        totalVariance = total
    }

    /// The share of the total variance the plane holds (0...1).
    public var explainedFraction: Double {
        totalVariance > 0 ? min(1, variances.reduce(0, +) / totalVariance) : 1
    }

    /// Coordinates (x, y) of `points` (count x dimension) in the plane.
    public func project(_ points: [Float]) -> (x: [Double], y: [Double]) {
        let count = points.count / dimension
        var x = [Double](repeating: 0, count: count), y = x
        for row in 0..<count {
            var a = 0.0, b = 0.0
            for j in 0..<dimension {
                let value = Double(points[row * dimension + j]) - mean[j]
                a += value * axes[0][j]
                b += value * axes[1][j]
            }
            x[row] = a
            y[row] = b
        }
        return (x, y)
    }

    /// The two largest eigenvalues of a symmetric matrix (dimension x dimension, row-major) by
    /// Jacobi rotations or, with `iterative`, by the subspace iteration used above 256
    /// dimensions (for tests of the two against each other).
    public static func topEigenvalues(_ matrix: [Double], dimension: Int, iterative: Bool) -> [Double] {
        iterative ? subspace(matrix, dimension, wanted: 2).values : Array(jacobi(matrix, dimension).values.prefix(2))
    }

    static func canonicalSign(_ vector: [Double]) -> [Double] {
        guard let index = vector.indices.max(by: { abs(vector[$0]) < abs(vector[$1]) }) else { return vector }
        return vector[index] < 0 ? vector.map { -$0 } : vector
    }

    /// Eigenpairs of the symmetric `n` x `n` matrix `a`, by decreasing eigenvalue (cyclic
    /// Jacobi; at most 100 sweeps, stops when the off-diagonal mass is negligible).
    static func jacobi(_ matrix: [Double], _ n: Int) -> (values: [Double], vectors: [[Double]]) {
        let (values, vectors) = SymmetricEigen.rotations(matrix, size: n)
        let order = (0..<n).reversed()
        return (order.map { values[$0] }, order.map { column in (0..<n).map { vectors[$0 * n + column] } })
    }

    /// The top `wanted` eigenpairs by subspace iteration on a block of `wanted + 6` vectors
    /// with a Rayleigh-Ritz step (Jacobi on the small projected matrix) each round.
    static func subspace(_ matrix: [Double], _ n: Int, wanted: Int) -> (values: [Double], vectors: [[Double]]) {
        let block = min(n, wanted + 6)
        var generator: UInt64 = 0x9E37_79B9_7F4A_7C15
        var basis: [[Double]] = (0..<block).map { _ in
            (0..<n).map { _ in
                generator = generator &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
                return Double(generator >> 11) / Double(1 << 53) - 0.5
            }
        }
        func multiply(_ x: [Double]) -> [Double] {
            (0..<n).map { i in (0..<n).reduce(0.0) { $0 + matrix[i * n + $1] * x[$1] } }
        }
        func orthonormalise(_ vectors: inout [[Double]]) {
            for i in vectors.indices {
                for j in 0..<i {
                    let dot = zip(vectors[i], vectors[j]).reduce(0.0) { $0 + $1.0 * $1.1 }
                    for k in 0..<n { vectors[i][k] -= dot * vectors[j][k] }
                }
                let norm = vectors[i].reduce(0.0) { $0 + $1 * $1 }.squareRoot()
                if norm > 0 { vectors[i] = vectors[i].map { $0 / norm } }
            }
        }
        orthonormalise(&basis)
        var values = [Double](repeating: 0, count: block)
        for _ in 0..<300 {
            var images = basis.map(multiply)
            orthonormalise(&images)
            let products = images.map(multiply)
            var small = [Double](repeating: 0, count: block * block)
            for i in 0..<block {
                for j in 0..<block { small[i * block + j] = zip(images[i], products[j]).reduce(0.0) { $0 + $1.0 * $1.1 } }
            }
            let (ritzValues, ritzVectors) = jacobi(small, block)
            let previous = values
            values = ritzValues
            basis = ritzVectors.map { coefficients in
                (0..<n).map { k in (0..<block).reduce(0.0) { $0 + coefficients[$1] * images[$1][k] } }
            }
            let change = zip(values.prefix(wanted), previous.prefix(wanted)).map { abs($0 - $1) }.max() ?? 0
            if change <= 1e-13 * max(abs(values.first ?? 0), Double.leastNormalMagnitude) { break }
        }
        return (Array(values.prefix(wanted)), Array(basis.prefix(wanted)))
    }
}
