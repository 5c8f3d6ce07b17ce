import Foundation
import LatentCore
import LatentData
import LatentExplore
import LatentModels
import LatentNN
import XCTest

final class EvaluationTests: XCTestCase {
    // MARK: - Likelihood bounds

    /// A tiny vae-fc (hidden 32, z 3) trained one epoch on synthetic digits, and 12 test images.
    func trainedVAE(_ kind: ModelKind = .vaeFC) throws -> (model: GaussianVAE, images: [Float], labels: [UInt8]) {
        let loaded = try LoadedModel.load(try Explore.checkpoint(kind, test: self).path, backend: Explore.backend)
        let model = try XCTUnwrap(loaded.model as? GaussianVAE)
        let (images, labels) = Evaluation.images(try Explore.dataset(count: 12, seed: 9))
        return (model, images, labels)
    }

    func testLogMeanExpByHand() {
        XCTAssertEqual(logMeanExp([0, Foundation.log(3)]), Foundation.log(2), accuracy: 1e-12)
        // Far outside Float and Double exp range, still exact.
        XCTAssertEqual(logMeanExp([-1000, -1000 + Foundation.log(3)]), -1000 + Foundation.log(2), accuracy: 1e-9)
        XCTAssertEqual(logMeanExp([5]), 5)
    }

    /// Encoder heads zeroed (q = N(0, I), KL 0) and a decoder whose only nonzero parameter is the
    /// last bias b = 1: every log-weight is sum_j x_j - 784 softplus(1), so the ELBO and every
    /// IW bound equal that number exactly.
    func testHandComputedCaseWithAConstantDecoder() throws {
        let (model, images, labels) = try trainedVAE()
        let parameters = model.root.namedParameters()
        let lastDecoderBias = try XCTUnwrap(parameters.last { $0.name.hasPrefix("decoder.") && $0.name.hasSuffix(".bias") })
        for (name, parameter) in parameters {
            let value: Float = name == lastDecoderBias.name ? 1 : 0
            // Zero both heads and the whole decoder; keep the encoder body (it no longer matters).
            if name.hasPrefix("mu_layer") || name.hasPrefix("logvar_layer") || name.hasPrefix("decoder.") {
                try parameter.value.copy(from: [Float](repeating: value, count: parameter.value.count))
            }
        }
        let evaluator = VAELikelihood(model: model)
        let posterior = try evaluator.posterior(images: images, labels: labels)
        XCTAssertEqual(VAELikelihood.activeUnits(posterior).count, 0)
        for samples in [1, 7] {
            let bounds = try evaluator.bounds(images: images, labels: labels, posterior: posterior, samples: samples, seed: 3)
            for (index, bound) in bounds.enumerated() {
                let ink = images[(index * 784)..<((index + 1) * 784)].reduce(0.0) { $0 + Double($1) }
                let expected = ink - 784 * Foundation.log(1 + Foundation.exp(1.0))
                XCTAssertEqual(bound.kl, 0, accuracy: 1e-12)
                XCTAssertEqual(bound.meanLogLikelihood, expected, accuracy: 2e-3)
                XCTAssertEqual(bound.elbo, expected, accuracy: 2e-3)
                XCTAssertEqual(bound.importanceWeighted, expected, accuracy: 2e-3)
            }
        }
    }

    /// The bound against a host reference built from public pieces: the same noise
    /// (RandomSource fills of the same sizes), the decoder's sigmoid output, the Bernoulli
    /// log-likelihood and Gaussian densities written out, logmeanexp over K. Two images, K = 10
    /// in passes of 4, 4 and 2 rows, so the running logsumexp spans passes.
    func testBoundMatchesAHostReference() throws {
        let (model, allImages, allLabels) = try trainedVAE()
        let images = Array(allImages[0..<(2 * 784)]), labels = Array(allLabels[0..<2])
        let samples = 10, seed: UInt64 = 11
        let evaluator = VAELikelihood(model: model, rowsPerPass: 4)
        let posterior = try evaluator.posterior(images: images, labels: labels)
        let bounds = try evaluator.bounds(images: images, labels: labels, posterior: posterior, samples: samples, seed: seed)

        let z = model.options.latentDim
        let random = RandomSource(seed: seed)
        for image in 0..<2 {
            var logWeights: [Double] = []
            var logLikelihoods: [Double] = []
            for chunk in [4, 4, 2] {
                let noise = try Tensor(zeros: [chunk, z], on: Explore.backend)
                try random.fillNormal(noise)
                let eps = try noise.toArray()
                var codes = [Float](repeating: 0, count: chunk * z)
                for row in 0..<chunk {
                    for d in 0..<z {
                        codes[row * z + d] = posterior.mean[image * z + d] + posterior.std[image * z + d] * eps[row * z + d]
                    }
                }
                let decoded = try model.decode(try Tensor(codes, shape: [chunk, z], on: Explore.backend), labels: nil)
                for row in 0..<chunk {
                    var logLikelihood = 0.0
                    for j in 0..<784 {
                        let p = Double(decoded[row * 784 + j]), x = Double(images[image * 784 + j])
                        logLikelihood += x * Foundation.log(p) + (1 - x) * Foundation.log(1 - p)
                    }
                    var logPrior = 0.0, logPosterior = 0.0
                    for d in 0..<z {
                        let code = Double(codes[row * z + d]), m = Double(posterior.mean[image * z + d])
                        let s = Double(posterior.std[image * z + d])
                        logPrior += -0.5 * code * code - 0.5 * Foundation.log(2 * Double.pi)
                        logPosterior += -0.5 * (code - m) * (code - m) / (s * s) - Foundation.log(s) - 0.5 * Foundation.log(2 * Double.pi)
                    }
                    logLikelihoods.append(logLikelihood)
                    logWeights.append(logLikelihood + logPrior - logPosterior)
                }
            }
            XCTAssertEqual(bounds[image].importanceWeighted, logMeanExp(logWeights), accuracy: 2e-3)
            XCTAssertEqual(bounds[image].meanLogWeight, logWeights.reduce(0, +) / Double(samples), accuracy: 2e-3)
            XCTAssertEqual(bounds[image].meanLogLikelihood, logLikelihoods.reduce(0, +) / Double(samples), accuracy: 2e-3)
        }
    }

    /// K = 1 is an unbiased estimate of the ELBO; the bound grows with K and exceeds the ELBO.
    func testBoundEqualsTheELBOForOneSampleAndGrowsWithK() throws {
        let (model, images, labels) = try trainedVAE()
        let evaluator = VAELikelihood(model: model)
        let posterior = try evaluator.posterior(images: images, labels: labels)
        func average(_ samples: Int, seeds: Range<UInt64>) throws -> (bound: Double, elbo: Double) {
            var bound = 0.0, elbo = 0.0
            for seed in seeds {
                let bounds = try evaluator.bounds(images: images, labels: labels, posterior: posterior, samples: samples, seed: seed)
                for b in bounds {
                    if samples == 1 { XCTAssertEqual(b.importanceWeighted, b.meanLogWeight, accuracy: 1e-9) }
                    bound += b.importanceWeighted
                    elbo += b.elbo
                }
            }
            let n = Double(seeds.count * images.count / 784)
            return (bound / n, elbo / n)
        }
        // The ELBO with the analytic KL from many samples: the reference.
        let reference = try average(1000, seeds: 0..<1).elbo
        var singles: [Double] = []
        for seed in UInt64(100)..<220 {
            singles.append(try average(1, seeds: seed..<(seed + 1)).bound)
        }
        let mean = singles.reduce(0, +) / Double(singles.count)
        let spread = (singles.reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / Double(singles.count - 1)).squareRoot()
        let standardError = spread / Double(singles.count).squareRoot()
        XCTAssertLessThan(abs(mean - reference), 4 * standardError + 1e-3, "K=1 mean \(mean), ELBO \(reference), se \(standardError)")

        let k1 = try average(1, seeds: 0..<4).bound
        let k10 = try average(10, seeds: 0..<4).bound
        let k100 = try average(100, seeds: 0..<4).bound
        XCTAssertLessThan(k1, k10)
        XCTAssertLessThan(k10, k100)
        XCTAssertGreaterThan(k10, reference)
        XCTAssertGreaterThan(k100, reference)
    }

    func testConditionalModelAndTheReport() throws {
        let folder = try Explore.checkpoint(.cvae, test: self)
        let loaded = try LoadedModel.load(folder.path, backend: Explore.backend)
        let test = try Explore.dataset(count: 12, seed: 9)
        let report = try Evaluation.likelihood(loaded, testSet: test, iwSamples: 20, seed: 1, limit: 10)
        XCTAssertEqual(report.images, 10)
        XCTAssertTrue(report.conditional)
        XCTAssertEqual(report.unit, "bce objective")
        XCTAssertNil(report.binarizeSeed)
        let bound = try XCTUnwrap(report.iwBound)
        XCTAssertTrue(bound.isFinite)
        XCTAssertLessThanOrEqual(bound, report.negativeELBO + 1e-6)
        XCTAssertEqual(report.negativeELBO, report.reconstruction + report.kl, accuracy: 1e-9)
        // The model's own objective (one z per image) is near the K-sample ELBO.
        XCTAssertEqual(report.objective, report.negativeELBO, accuracy: 0.05 * abs(report.negativeELBO) + 1)
        XCTAssertEqual(report.unitVariances.count, report.latentDim)
        XCTAssertTrue(report.lines.joined().contains("IW bound, K = 20"))
    }

    func testBinarisedRunsAreInNatsOnOneFixedBinarisation() throws {
        var options = Explore.options(.vaeFC)
        options.binarize = true
        let folder = try Explore.temporaryFolder(self)
        let session = try TrainingSession(options: options, directory: folder, resume: false, backend: Explore.backend)
        try session.train(trainSet: try Explore.dataset(count: 64, seed: 1), testSet: try Explore.dataset(count: 20, seed: 2), observer: nil)
        let loaded = try LoadedModel.load(folder.path, backend: Explore.backend)
        let test = try Explore.dataset(count: 12, seed: 9)
        let first = try Evaluation.likelihood(loaded, testSet: test, iwSamples: nil, seed: 1, limit: nil)
        XCTAssertEqual(first.unit, "nats")
        XCTAssertEqual(first.binarizeSeed, 0)
        XCTAssertNil(first.iwBound)
        XCTAssertTrue(first.lines[0].contains("binarised once with seed 0"))

        let a = Evaluation.images(test, binarizeSeed: 0).images
        XCTAssertEqual(a, Evaluation.images(test, binarizeSeed: 0).images)
        XCTAssertNotEqual(a, Evaluation.images(test, binarizeSeed: 1).images)
        XCTAssertTrue(a.allSatisfy { $0 == 0 || $0 == 1 })
    }

    func testWrongModelsAreOneLine() throws {
        let ae = try LoadedModel.load(try Explore.checkpoint(.ae, test: self).path, backend: Explore.backend)
        XCTAssertThrowsError(try Evaluation.likelihood(ae, testSet: try Explore.dataset(count: 4, seed: 1), iwSamples: nil, seed: 0, limit: nil)) {
            XCTAssertTrue("\($0)".contains("'ae' checkpoint"), "\($0)")
        }
        XCTAssertThrowsError(try Evaluation.accuracy(ae, testSet: try Explore.dataset(count: 4, seed: 1), limit: nil)) {
            XCTAssertTrue("\($0)".contains("not a classifier"), "\($0)")
        }
    }

    func testActiveUnitsByHand() {
        // Dimension 0 varies (variance 1), dimension 1 barely (0.0025), dimension 2 not at all.
        let means: [Float] = [1, 0.05, 3, -1, -0.05, 3]
        let posterior = VAELikelihood.Posterior(mean: means, std: [Float](repeating: 1, count: 6), count: 2, dimension: 3)
        let (count, variances) = VAELikelihood.activeUnits(posterior)
        XCTAssertEqual(count, 1)
        XCTAssertEqual(variances[0], 1, accuracy: 1e-9)
        XCTAssertEqual(variances[1], 0.0025, accuracy: 1e-8)
        XCTAssertEqual(variances[2], 0, accuracy: 1e-12)
    }

    // MARK: - Fréchet distance and classifier statistics

    func testEigenDecompositionOfKnownAndRandomMatrices() throws {
        let (values, vectors) = try SymmetricEigen.decompose([2, 1, 1, 2], size: 2)
        XCTAssertEqual(values[0], 1, accuracy: 1e-12)
        XCTAssertEqual(values[1], 3, accuracy: 1e-12)
        XCTAssertEqual(abs(vectors[0 * 2 + 1]), 0.5.squareRoot(), accuracy: 1e-12)

        var generator = SplitMix64(seed: 7)
        let n = 24
        var a = [Double](repeating: 0, count: n * n)
        for i in 0..<n {
            for j in i..<n {
                let x = Double(generator.next() >> 11) / Double(1 << 53) - 0.5
                a[i * n + j] = x
                a[j * n + i] = x
            }
        }
        let (l, v) = try SymmetricEigen.decompose(a, size: n)
        XCTAssertEqual(l, l.sorted())
        for i in 0..<n {
            for j in 0..<n {
                var reconstructed = 0.0, orthogonality = 0.0
                for k in 0..<n {
                    reconstructed += v[i * n + k] * l[k] * v[j * n + k]
                    orthogonality += v[k * n + i] * v[k * n + j]
                }
                XCTAssertEqual(reconstructed, a[i * n + j], accuracy: 1e-10)
                XCTAssertEqual(orthogonality, i == j ? 1 : 0, accuracy: 1e-10)
            }
        }
        // The PSD square root squares back.
        var psd = [Double](repeating: 0, count: n * n)
        for i in 0..<n { for j in 0..<n { for k in 0..<n { psd[i * n + j] += a[i * n + k] * a[j * n + k] } } }
        let root = try SymmetricEigen.squareRoot(psd, size: n)
        for i in 0..<n {
            for j in 0..<n {
                var square = 0.0
                for k in 0..<n { square += root[i * n + k] * root[k * n + j] }
                XCTAssertEqual(square, psd[i * n + j], accuracy: 1e-9)
            }
        }
    }

    func testFrechetDistanceKnownAnswers() throws {
        // Identical statistics: 0.
        let c: [Double] = [2, 0.5, 0.5, 1]
        let s = FeatureStatistics(mean: [1, 2], covariance: c, dimension: 2, count: 10)
        XCTAssertEqual(try FrechetDistance.distance(s, s), 0, accuracy: 1e-10)
        // N(0, I) against N(m, 4 I) in d dimensions: |m|^2 + d (1 + 4 - 2 * 2).
        let d = 5
        var identity = [Double](repeating: 0, count: d * d)
        for i in 0..<d { identity[i * d + i] = 1 }
        let a = FeatureStatistics(mean: [Double](repeating: 0, count: d), covariance: identity, dimension: d, count: 10)
        let b = FeatureStatistics(mean: [1, 2, 0, 0, 0], covariance: identity.map { 4 * $0 }, dimension: d, count: 10)
        XCTAssertEqual(try FrechetDistance.distance(a, b), 5 + Double(d), accuracy: 1e-10)
        // Non-commuting 2 x 2 covariances: tr sqrt(C1 C2) = sqrt(tr(C1 C2) + 2 sqrt(det C1 det C2)).
        let c1: [Double] = [2, 0.7, 0.7, 1], c2: [Double] = [1, -0.3, -0.3, 3]
        let trace12 = c1[0] * c2[0] + c1[1] * c2[2] + c1[2] * c2[1] + c1[3] * c2[3]
        let determinants = (c1[0] * c1[3] - c1[1] * c1[2]) * (c2[0] * c2[3] - c2[1] * c2[2])
        let cross = (trace12 + 2 * determinants.squareRoot()).squareRoot()
        let expected = 1.0 + 3 + 4 - 2 * cross  // mean term 1, traces 3 and 4
        let first = FeatureStatistics(mean: [0, 0], covariance: c1, dimension: 2, count: 10)
        let second = FeatureStatistics(mean: [1, 0], covariance: c2, dimension: 2, count: 10)
        XCTAssertEqual(try FrechetDistance.distance(first, second), expected, accuracy: 1e-10)
        XCTAssertEqual(try FrechetDistance.distance(second, first), expected, accuracy: 1e-10)
    }

    func testFeatureStatisticsByHand() throws {
        // Rows (1, 2), (3, 2), (2, 5): mean (2, 3); unbiased covariance [[1, 0], [0, 3]].
        let statistics = try FeatureStatistics(rows: [1, 2, 3, 2, 2, 5], dimension: 2)
        XCTAssertEqual(statistics.mean, [2, 3])
        XCTAssertEqual(statistics.count, 3)
        for (value, expected) in zip(statistics.covariance, [1.0, 0, 0, 3]) { XCTAssertEqual(value, expected, accuracy: 1e-12) }
        XCTAssertThrowsError(try FeatureStatistics(rows: [1, 2], dimension: 2))
    }

    func testConfidenceShareAndClassEntropyByHand() {
        // Rows: class 0 at 0.95 (confident), class 1 at 0.6, class 1 at 0.91 (confident), class 2 at 0.9 (not > 0.9).
        var rows: [Float] = []
        for (top, cls) in [(Float(0.95), 0), (0.6, 1), (0.91, 1), (0.9, 2)] {
            var row = [Float](repeating: (1 - top) / 9, count: 10)
            row[cls] = top
            rows += row
        }
        let verdict = ClassifierVerdict(probabilities: rows, classes: 10)
        XCTAssertEqual(verdict.confidentShare, 0.5)
        XCTAssertEqual(verdict.histogram, [1, 2, 1, 0, 0, 0, 0, 0, 0, 0])
        // p = (1/4, 1/2, 1/4): 1.5 ln 2.
        XCTAssertEqual(verdict.classEntropy, 1.5 * Foundation.log(2), accuracy: 1e-12)
        XCTAssertEqual(ClassifierVerdict.entropy([Int](repeating: 7, count: 10)), Foundation.log(10), accuracy: 1e-12)
        XCTAssertEqual(ClassifierVerdict.entropy([0, 40, 0]), 0)
    }

    /// The test set judged against itself is at distance 0; training images (the floor) are
    /// close, uniform noise (the ceiling) far. An untrained classifier's features suffice, and
    /// keep the debug build's convolutions few.
    func testSampleQualityWithFloorAndCeiling() throws {
        let options = Explore.options(.classifier)
        let classifier = try XCTUnwrap(try ModelCatalog.makeModel(options, backend: Explore.backend, random: RandomSource(seed: 4)) as? Classifier)
        let train = try Explore.dataset(count: 24, seed: 1), test = try Explore.dataset(count: 20, seed: 2)
        let report = try Evaluation.sampleQuality(classifier, samples: Evaluation.images(test).images, sampleName: "test itself",
                                                  trainSet: train, testSet: test, floorCount: 24, seed: 3)
        XCTAssertEqual(report.rows.map(\.images), [20, 24, 24])
        XCTAssertEqual(report.rows[0].fid, 0, accuracy: 1e-6)
        XCTAssertGreaterThan(report.rows[2].fid, 10 * report.rows[1].fid)
        XCTAssertEqual(report.rows[0].histogram.reduce(0, +), 20)
        XCTAssertTrue(report.lines.joined(separator: "\n").contains("ceiling: 24 uniform-noise images"))
    }

    func testClassifierAccuracyCountsArgmaxHits() throws {
        let loaded = try LoadedModel.load(try Explore.checkpoint(.classifier, test: self).path, backend: Explore.backend)
        let test = try Explore.dataset(count: 20, seed: 2)
        let classifier = try XCTUnwrap(loaded.model as? Classifier)
        let (images, labels) = Evaluation.images(test, count: 12)
        let tensor = try Tensor(images, shape: [12, 1, 28, 28], on: Explore.backend)
        let expected = zip(try classifier.predict(tensor), labels).filter { row, label in row.firstIndex(of: row.max() ?? 0) == Int(label) }.count
        let accuracy = try Evaluation.accuracy(loaded, testSet: test, limit: 12)
        XCTAssertEqual(accuracy.images, 12)
        XCTAssertEqual(accuracy.correct, expected)
        XCTAssertTrue(accuracy.line.contains("test accuracy"))
    }

    /// A classifier whose logits are (200, 0, ..., 0) for every image: softmax must give
    /// (1, 0, ..., 0) and a finite loss (a shift by the row mean, 180 here, overflowed exp).
    func testConfidentLogitsDoNotOverflow() throws {
        let classifier = try XCTUnwrap(try ModelCatalog.makeModel(Explore.options(.classifier), backend: Explore.backend,
                                                                  random: RandomSource(seed: 4)) as? Classifier)
        for (name, parameter) in classifier.root.namedParameters() where name.hasPrefix("classifier.1.") {
            var values = [Float](repeating: 0, count: parameter.value.count)
            if name.hasSuffix("bias") { values[0] = 200 }
            try parameter.value.copy(from: values)
        }
        let (images, _) = Evaluation.images(try Explore.dataset(count: 2, seed: 1))
        let tensor = try Tensor(images, shape: [2, 1, 28, 28], on: Explore.backend)
        for row in try classifier.predict(tensor) {
            XCTAssertEqual(row[0], 1, accuracy: 1e-6)
            XCTAssertEqual(row.dropFirst().reduce(0, +), 0, accuracy: 1e-6)
        }
        // Labels 0 and 1: cross-entropy 0 and 200; one error.
        let terms = try classifier.evaluate(images: tensor, labels: [0, 1])
        XCTAssertEqual(try terms[0].scalar(), 200, accuracy: 1e-2)
        XCTAssertEqual(try terms[1].scalar(), 1)
    }
}
