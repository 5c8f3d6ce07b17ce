import Foundation
import LatentCore
import LatentData
import LatentModels
import LatentNN

/// Likelihood bounds of a VAE on a test set, the way papers report them (Burda et al. 2016):
/// the ELBO with its reconstruction and KL terms, the number of active latent units, and the
/// importance-weighted bound
///
///   log p(x) >= L_K = logmeanexp_k [log p(x|z_k) + log p(z_k) - log q(z_k|x)],  z_k ~ q(z|x),
///
/// which equals the ELBO in expectation for K = 1 and grows towards log p(x) with K.
///
/// Speed: the decoder runs on many (image, sample) rows per pass (`rowsPerPass`), so the
/// fully connected decoder is a few large GEMMs; log p(x|z) = sum_j x_j l_j - softplus(l_j)
/// is computed on the device from the decoder's logits l, exact (no clamped log), one float
/// per row read back. log-weights are combined per image in Double with a running logsumexp.
public final class VAELikelihood {
    public let model: GaussianVAE
    /// (image, sample) rows per decoder pass.
    public var rowsPerPass: Int
    /// Images per encoder pass.
    public var encoderBatch = 500

    private var tiledSlot = TensorSlot()
    private var blockSlot = TensorSlot()
    private var onesSlot = ConstantOnes()
    private var codesSlot = TensorSlot()
    private var noiseSlot = TensorSlot()
    private var productSlot = TensorSlot()
    private var softplusSlot = TensorSlot()
    private var sumsSlot = TensorSlot()

    public init(model: GaussianVAE, rowsPerPass: Int? = nil) {
        self.model = model
        // Conv decoders hold (rows, 64, 14, 14) activations and their im2col buffers.
        let fullyConnected = model.options.model == .vaeFC || model.options.model == .cvae
        self.rowsPerPass = max(1, rowsPerPass ?? (fullyConnected ? 4096 : 256))
    }

    /// q(z|x) of every image: means and standard deviations, `count` x `dimension`.
    public struct Posterior: Sendable {
        public var mean: [Float]
        public var std: [Float]
        public var count: Int
        public var dimension: Int

        public init(mean: [Float], std: [Float], count: Int, dimension: Int) {
            self.mean = mean
            self.std = std
            self.count = count
            self.dimension = dimension
        }
    }

    /// What the samples of one image give.
    public struct ImageBound: Sendable, Equatable {
        /// L_K = logmeanexp_k log w_k (nats, or the objective's unit).
        public var importanceWeighted: Double
        /// mean_k log w_k: a one-sample ELBO estimate averaged over K samples.
        public var meanLogWeight: Double
        /// mean_k log p(x|z_k): minus the reconstruction term.
        public var meanLogLikelihood: Double
        /// KL(q(z|x) || N(0, I)), analytic.
        public var kl: Double
        /// The ELBO with the analytic KL: mean_k log p(x|z_k) - KL.
        public var elbo: Double { meanLogLikelihood - kl }
    }

    /// The encoder's q(z|x) for `images` (count x 784 floats in [0, 1]).
    public func posterior(images: [Float], labels: [UInt8]) throws -> Posterior {
        let pixels = Self.pixels
        let count = images.count / pixels
        guard count >= 1, images.count == count * pixels, labels.count == count else {
            throw ExploreError("likelihood evaluation needs N x 784 pixels and N labels, got \(images.count) values and \(labels.count) labels")
        }
        let dimension = model.options.latentDim
        var mean = [Float](), std = [Float]()
        mean.reserveCapacity(count * dimension)
        std.reserveCapacity(count * dimension)
        var start = 0
        while start < count {
            let n = min(encoderBatch, count - start)
            let batch = try Tensor(Array(images[(start * pixels)..<((start + n) * pixels)]), shape: [n, 1, 28, 28], on: model.backend)
            let (m, s) = try model.posterior(batch, labels: Array(labels[start..<(start + n)]))
            mean += m
            std += s
            start += n
        }
        return Posterior(mean: mean, std: std, count: count, dimension: dimension)
    }

    /// Per-image bounds from `samples` draws of z each, seeded by `seed`. `progress` gets the
    /// number of images finished after each group of images.
    public func bounds(images: [Float], labels: [UInt8], posterior: Posterior, samples: Int, seed: UInt64,
                       progress: ((Int) -> Void)? = nil) throws -> [ImageBound] {
        let pixels = Self.pixels
        let count = posterior.count
        let dimension = posterior.dimension
        guard samples >= 1 else { throw ExploreError("--iw-samples must be at least 1, got \(samples)") }
        guard images.count == count * pixels, labels.count == count else {
            throw ExploreError("likelihood evaluation: \(count) posteriors for \(images.count / pixels) images")
        }
        let backend = model.backend
        let random = RandomSource(seed: seed)
        // Images per pass, then samples per pass split evenly (5000 in 4096-row passes: 2 x 2500).
        let group = max(1, min(count, rowsPerPass / samples))
        let passes = (samples * group + rowsPerPass - 1) / rowsPerPass
        let perPass = (samples + passes - 1) / passes
        var results: [ImageBound] = []
        results.reserveCapacity(count)
        var start = 0
        while start < count {
            let g = min(group, count - start)
            // The images tiled sample-major (row s * g + j is image start + j), so one tile
            // serves every pass over this group: ones (perPass x 1) times the block (1 x g*784),
            // a rank-1 GEMM whose products are exact copies.
            let tiledRows = perPass * g
            let tiled = try tiledSlot.tensor([tiledRows, pixels], on: backend)
            let block = try blockSlot.tensor([g, pixels], on: backend)
            try block.copy(from: Array(images[(start * pixels)..<((start + g) * pixels)]))
            let ones = try onesSlot.tensor([perPass], on: backend)
            try backend.gemm(transA: .none, transB: .none, m: perPass, n: g * pixels, k: 1, alpha: 1, a: ones.view, lda: 1,
                             b: block.view, ldb: g * pixels, beta: 0, c: tiled.view, ldc: g * pixels)
            // sum_d log sd of each image of the group, for log q(z|x).
            let logStdSums = (0..<g).map { j in
                (0..<dimension).reduce(0.0) { $0 + Foundation.log(max(Double(posterior.std[(start + j) * dimension + $1]), 1e-30)) }
            }
            let groupLabels = Array(labels[start..<(start + g)])

            var maximum = [Double](repeating: -.infinity, count: g)
            var scaled = [Double](repeating: 0, count: g)
            var sumLogWeight = [Double](repeating: 0, count: g)
            var sumLogLikelihood = [Double](repeating: 0, count: g)
            var done = 0
            while done < samples {
                let s = min(perPass, samples - done)
                let rows = s * g
                let noise = try noiseSlot.tensor([rows, dimension], on: backend)
                try random.fillNormal(noise)
                let eps = try noise.toArray()
                var z = [Float](repeating: 0, count: rows * dimension)
                var logRatio = [Double](repeating: 0, count: rows)
                for row in 0..<rows {
                    let image = start + row % g
                    // log N(z; 0, 1) - log N(z; mu, sd^2); the 2 pi terms cancel.
                    var ratio = logStdSums[row % g]
                    for d in 0..<dimension {
                        let e = Double(eps[row * dimension + d])
                        let sd = max(Double(posterior.std[image * dimension + d]), 1e-30)
                        let code = Double(posterior.mean[image * dimension + d]) + sd * e
                        z[row * dimension + d] = Float(code)
                        ratio += 0.5 * (e * e - code * code)
                    }
                    logRatio[row] = ratio
                }
                let codes = try codesSlot.tensor([rows, dimension], on: backend)
                try codes.copy(from: z)
                let rowLabels: [UInt8]? = model.isConditional ? (0..<rows).map { groupLabels[$0 % g] } : nil
                let logLikelihoods = try logLikelihood(codes: codes, labels: rowLabels, tiled: tiled, rows: rows)
                for row in 0..<rows {
                    let j = row % g
                    let logWeight = logLikelihoods[row] + logRatio[row]
                    sumLogWeight[j] += logWeight
                    sumLogLikelihood[j] += logLikelihoods[row]
                    // Running logsumexp: scaled = sum exp(log w - maximum).
                    if logWeight > maximum[j] {
                        scaled[j] = scaled[j] * Foundation.exp(maximum[j] - logWeight) + 1
                        maximum[j] = logWeight
                    } else {
                        scaled[j] += Foundation.exp(logWeight - maximum[j])
                    }
                }
                done += s
            }
            for j in 0..<g {
                let image = start + j
                var kl = 0.0
                for d in 0..<dimension {
                    let m = Double(posterior.mean[image * dimension + d])
                    let sd = max(Double(posterior.std[image * dimension + d]), 1e-30)
                    kl += 0.5 * (m * m + sd * sd - 1) - Foundation.log(sd)
                }
                results.append(ImageBound(importanceWeighted: maximum[j] + Foundation.log(scaled[j] / Double(samples)),
                                          meanLogWeight: sumLogWeight[j] / Double(samples),
                                          meanLogLikelihood: sumLogLikelihood[j] / Double(samples), kl: kl))
            }
            start += g
            progress?(start)
        }
        return results
    }

    /// log p(x_row | z_row) for the first `rows` rows of `tiled`: sum_j x_j l_j - softplus(l_j)
    /// over the decoder's logits l, summed per row on the device.
    private func logLikelihood(codes: Tensor, labels: [UInt8]?, tiled: Tensor, rows: Int) throws -> [Double] {
        let backend = model.backend
        let pixels = Self.pixels
        let logits = try model.decodeLogits(codes, labels: labels)
        guard logits.shape == [rows, pixels] else {
            throw ExploreError("\(model.options.model.rawValue): the decoder gives \(Shape.describe(logits.shape)), expected (\(rows), \(pixels))")
        }
        let inputs = try tiled.view.slice(0, count: rows * pixels)
        let product = try productSlot.tensor([rows, pixels], on: backend)
        let softplus = try softplusSlot.tensor([rows, pixels], on: backend)
        let sums = try sumsSlot.tensor([rows], on: backend)
        try backend.multiply(logits.view, inputs, output: product.view)
        try backend.biasActivationForward(input: logits.view, bias: nil, activation: .softplus, output: softplus.view,
                                          channels: rows, spatial: pixels)
        try backend.axpby(alpha: -1, x: softplus.view, beta: 1, y: product.view)
        try backend.channelSum(input: product.view, output: sums.view, batch: 1, channels: rows, spatial: pixels, accumulate: false)
        return try sums.toArray().map(Double.init)
    }

    /// Active units (Burda et al.): dimensions whose encoder mean varies over the images,
    /// Var_x(E_q[z_d]) > `threshold`. Returns the count and every dimension's variance.
    public static func activeUnits(_ posterior: Posterior, threshold: Double = 1e-2) -> (count: Int, variances: [Double]) {
        let n = posterior.count, dimension = posterior.dimension
        var variances = [Double](repeating: 0, count: dimension)
        guard n > 1 else { return (0, variances) }
        for d in 0..<dimension {
            var mean = 0.0
            for i in 0..<n { mean += Double(posterior.mean[i * dimension + d]) }
            mean /= Double(n)
            var sum = 0.0
            for i in 0..<n {
                let delta = Double(posterior.mean[i * dimension + d]) - mean
                sum += delta * delta
            }
            variances[d] = sum / Double(n)
        }
        return (variances.filter { $0 > threshold }.count, variances)
    }

    static let pixels = 28 * 28
}

/// A vector of ones, refilled only when its length changes.
private struct ConstantOnes {
    private var slot = TensorSlot()
    private var length = -1

    mutating func tensor(_ shape: [Int], on backend: any Backend) throws -> Tensor {
        let tensor = try slot.tensor(shape, on: backend)
        if shape[0] != length {
            try backend.fill(tensor.view, value: 1)
            length = shape[0]
        }
        return tensor
    }
}

/// `logmeanexp` in Double, stable for large magnitudes (the reference the tests check the
/// running version against).
public func logMeanExp(_ values: [Double]) -> Double {
    guard let maximum = values.max(), maximum.isFinite else { return values.max() ?? -.infinity }
    return maximum + Foundation.log(values.reduce(0) { $0 + Foundation.exp($1 - maximum) } / Double(values.count))
}
