import Foundation
import LatentModels

/// Mean and covariance of feature rows, in Double (the unbiased n - 1 covariance, as
/// numpy.cov and pytorch-fid use).
public struct FeatureStatistics: Sendable, Equatable {
    public var mean: [Double]
    /// dimension x dimension, row-major.
    public var covariance: [Double]
    public var dimension: Int
    public var count: Int

    public init(mean: [Double], covariance: [Double], dimension: Int, count: Int) {
        self.mean = mean
        self.covariance = covariance
        self.dimension = dimension
        self.count = count
    }

    /// Statistics of `count` rows of `dimension` floats.
    public init(rows features: [Float], dimension: Int) throws {
        guard dimension >= 1, features.count % dimension == 0, features.count / dimension >= 2 else {
            throw ExploreError("feature statistics need at least 2 rows of \(dimension) values, got \(features.count) values")
        }
        let count = features.count / dimension
        var mean = [Double](repeating: 0, count: dimension)
        for row in 0..<count {
            for d in 0..<dimension { mean[d] += Double(features[row * dimension + d]) }
        }
        for d in 0..<dimension { mean[d] /= Double(count) }
        var covariance = [Double](repeating: 0, count: dimension * dimension)
        var centred = [Double](repeating: 0, count: dimension)
        for row in 0..<count {
            for d in 0..<dimension { centred[d] = Double(features[row * dimension + d]) - mean[d] }
            // Upper triangle; mirrored below.
            for a in 0..<dimension where centred[a] != 0 {
                let x = centred[a]
                for b in a..<dimension { covariance[a * dimension + b] += x * centred[b] }
            }
        }
        for a in 0..<dimension {
            for b in a..<dimension {
                let value = covariance[a * dimension + b] / Double(count - 1)
                covariance[a * dimension + b] = value
                covariance[b * dimension + a] = value
            }
        }
        self.init(mean: mean, covariance: covariance, dimension: dimension, count: count)
    }
}

/// The Fréchet distance between Gaussians fitted to two feature sets (FID when the features
/// are Inception's; here the classifier's penultimate layer):
///
///   d^2 = |mu1 - mu2|^2 + tr C1 + tr C2 - 2 tr sqrt(sqrt(C1) C2 sqrt(C1)),
///
/// the last trace from the eigenvalues of the symmetric PSD matrix sqrt(C1) C2 sqrt(C1) (which
/// has the eigenvalues of C1 C2), so no non-symmetric square root is needed.
public enum FrechetDistance {
    public static func distance(_ first: FeatureStatistics, _ second: FeatureStatistics) throws -> Double {
        try Reference(first).distance(to: second)
    }

    /// One side's statistics with sqrt(C1) computed once, for several distances to it (the
    /// test set against samples, floor and ceiling).
    public struct Reference: Sendable {
        public let statistics: FeatureStatistics
        let root: [Double]

        public init(_ statistics: FeatureStatistics) throws {
            self.statistics = statistics
            root = try SymmetricEigen.squareRoot(statistics.covariance, size: statistics.dimension)
        }

        public func distance(to other: FeatureStatistics) throws -> Double {
            let first = statistics, n = first.dimension
            guard other.dimension == n else { throw ExploreError("Fréchet distance of \(n)- and \(other.dimension)-dimensional features") }
            var meanTerm = 0.0
            for d in 0..<n { meanTerm += (first.mean[d] - other.mean[d]) * (first.mean[d] - other.mean[d]) }
            var traces = 0.0
            for d in 0..<n { traces += first.covariance[d * n + d] + other.covariance[d * n + d] }
            let product = multiply(multiply(root, other.covariance, n), root, n)
            let values = try SymmetricEigen.decompose(product, size: n).values
            let crossTrace = values.reduce(0) { $0 + max($1, 0).squareRoot() }
            // Rounding can leave a tiny negative value for identical sets.
            return max(meanTerm + traces - 2 * crossTrace, 0)
        }
    }

    static func multiply(_ a: [Double], _ b: [Double], _ n: Int) -> [Double] {
        var c = [Double](repeating: 0, count: n * n)
        c.withUnsafeMutableBufferPointer { c in
            a.withUnsafeBufferPointer { a in
                b.withUnsafeBufferPointer { b in
                    for i in 0..<n {
                        for k in 0..<n {
                            let x = a[i * n + k]
                            if x == 0 { continue }
                            for j in 0..<n { c[i * n + j] += x * b[k * n + j] }
                        }
                    }
                }
            }
        }
        return c
    }
}

/// What the classifier says of a set of images: how sure it is and how the classes spread.
public struct ClassifierVerdict: Sendable, Equatable {
    /// Share of images whose largest softmax probability exceeds 0.9.
    public var confidentShare: Double
    /// Entropy (nats) of the histogram of predicted classes; ln 10 = 2.303 when every class is
    /// predicted equally often, 0 when one class takes everything.
    public var classEntropy: Double
    /// Images per predicted class.
    public var histogram: [Int]

    /// From softmax rows (`classes` values each).
    public init(probabilities: [Float], classes: Int, threshold: Float = 0.9) {
        let count = classes > 0 ? probabilities.count / classes : 0
        var histogram = [Int](repeating: 0, count: max(classes, 0))
        var confident = 0
        for row in 0..<count {
            let slice = probabilities[(row * classes)..<((row + 1) * classes)]
            var best = slice.startIndex
            for index in slice.indices where slice[index] > slice[best] { best = index }
            histogram[best - slice.startIndex] += 1
            if slice[best] > threshold { confident += 1 }
        }
        self.histogram = histogram
        confidentShare = count > 0 ? Double(confident) / Double(count) : 0
        classEntropy = Self.entropy(histogram)
    }

    /// Entropy in nats of a histogram of counts.
    public static func entropy(_ histogram: [Int]) -> Double {
        let total = Double(histogram.reduce(0, +))
        guard total > 0 else { return 0 }
        return histogram.reduce(0.0) { sum, count in
            guard count > 0 else { return sum }
            let p = Double(count) / total
            return sum - p * Foundation.log(p)
        }
    }
}
