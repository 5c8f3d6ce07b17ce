import Foundation
import LatentCore
import LatentData
import LatentModels
import LatentNN

/// `latent eval`: test-set likelihoods of VAEs, a classifier's accuracy, and classifier-based
/// statistics of generated images with their floor (training images) and ceiling (noise).
public enum Evaluation {
    /// The first `count` images of `dataset` as floats in [0, 1], N x 784, and their labels;
    /// with `binarizeSeed`, one fixed Bernoulli draw per pixel (the trainer's dynamic
    /// binarisation, epoch 0 of a loader with that seed), the same on every call.
    public static func images(_ dataset: Dataset, count: Int? = nil, binarizeSeed: UInt64? = nil) -> (images: [Float], labels: [UInt8]) {
        let n = min(count ?? dataset.count, dataset.count)
        guard n > 0 else { return ([], []) }
        var loader = BatchLoader(dataset: dataset, batchSize: n, shuffle: false, seed: binarizeSeed ?? 0)
        loader.binarize = binarizeSeed != nil
        var images = [Float](repeating: 0, count: n * dataset.pixelsPerImage)
        var labels = [UInt8](repeating: 0, count: n)
        images.withUnsafeMutableBufferPointer { imageBuffer in
            labels.withUnsafeMutableBufferPointer { labelBuffer in
                loader.fill(indices: 0..<n, epoch: 0, images: imageBuffer, labels: labelBuffer)
            }
        }
        return (images, labels)
    }

    // MARK: - VAE likelihoods

    /// What `latent eval --checkpoint VAE` reports, per test image.
    public struct LikelihoodReport: Sendable {
        public var model: String
        public var checkpoint: String
        public var dataset: String
        public var images: Int
        /// The seed of the one fixed binarisation of the test set, when the run trained on
        /// binarised data (then the figures are nats).
        public var binarizeSeed: UInt64?
        public var conditional: Bool
        /// "nats", or "<loss> objective" where the figures are not log-likelihoods.
        public var unit: String
        public var loss: String
        public var beta: Double
        /// recon + beta * KL with z drawn once, as metrics.jsonl's test_loss.
        public var objective: Double
        /// -ELBO = reconstruction + KL (beta 1).
        public var negativeELBO: Double
        public var reconstruction: Double
        public var kl: Double
        /// Samples of z per image behind `reconstruction` (1 without --iw-samples).
        public var elboSamples: Int
        public var activeUnits: Int
        public var latentDim: Int
        public var unitVariances: [Double]
        /// K of the importance-weighted bound, and -L_K per image (an upper bound on -log p(x)).
        public var iwSamples: Int?
        public var iwBound: Double?
        /// Standard error of that mean over the images.
        public var iwStandardError: Double?
        public var seed: UInt64
        public var seconds: Double

        public var json: [String: Any] {
            var object: [String: Any] = [
                "kind": "likelihood", "model": model, "checkpoint": checkpoint, "dataset": dataset, "images": images,
                "conditional": conditional, "unit": unit, "loss": loss, "beta": beta, "objective": objective,
                "negative_elbo": negativeELBO, "reconstruction": reconstruction, "kl": kl, "elbo_samples": elboSamples,
                "active_units": activeUnits, "latent_dim": latentDim, "unit_variances": unitVariances, "seed": seed,
                "seconds": seconds,
            ]
            if let binarizeSeed { object["binarize_seed"] = binarizeSeed }
            if let iwSamples, let iwBound {
                object["iw_samples"] = iwSamples
                object["iw_bound"] = iwBound
                object["iw_standard_error"] = iwStandardError ?? 0
            }
            return object
        }

        public var lines: [String] {
            let data = binarizeSeed.map { "test set binarised once with seed \($0) (the run trained on --binarize): figures in nats" }
                ?? "grey-level test set: figures are the \(loss) objective, not log-likelihoods"
            var lines = ["\(model) \(checkpoint): \(images) \(dataset) test images; \(data)"]
            let condition = conditional ? " (conditional: bounds on -log p(x | label))" : ""
            lines.append("objective (recon + \(fixed(beta, 3)) KL, z drawn once, as metrics.jsonl's test_loss): \(fixed(objective, 3))")
            lines.append("-ELBO \(fixed(negativeELBO, 3)) \(unit) = recon \(fixed(reconstruction, 3)) + KL \(fixed(kl, 3)) "
                         + "(recon over \(elboSamples) sample\(elboSamples == 1 ? "" : "s") of z per image)\(condition)")
            lines.append("active units: \(activeUnits) of \(latentDim) (Var_x E_q[z_d] > 0.01)")
            if let iwSamples, let iwBound {
                lines.append("IW bound, K = \(iwSamples): -log p(x) <= \(fixed(iwBound, 3)) \(unit) "
                             + "(+- \(fixed(iwStandardError ?? 0, 3)) standard error over images), seed \(seed)")
            }
            lines.append("evaluated in \(fixed(seconds, 2)) s")
            return lines
        }
    }

    /// Evaluates a VAE on the first `limit` images of `testSet`: objective, ELBO terms,
    /// active units and, with `iwSamples`, the importance-weighted bound.
    public static func likelihood(_ loaded: LoadedModel, testSet: Dataset, iwSamples: Int?, seed: UInt64, limit: Int?,
                                  binarizeSeed: UInt64 = 0, rowsPerPass: Int? = nil,
                                  progress: ((_ done: Int, _ total: Int) -> Void)? = nil) throws -> LikelihoodReport {
        guard let model = loaded.model as? GaussianVAE else {
            throw ExploreError("latent eval --checkpoint measures likelihoods of VAEs (vae-fc, vae-conv, beta-vae, cvae) and the accuracy "
                               + "of a classifier; \(loaded.source) is a '\(loaded.options.model.rawValue)' checkpoint "
                               + "(judge its samples with latent eval --samples FILE.idx --classifier FILE)")
        }
        let start = Date()
        let options = model.options
        let bernoulli = options.lossKind == .bce
        if iwSamples != nil && !bernoulli {
            throw ExploreError("--iw-samples needs a Bernoulli decoder (--loss bce); \(loaded.source) was trained with --loss \(options.loss)")
        }
        let binarized = options.binarize ? binarizeSeed : nil
        let (images, labels) = Self.images(testSet, count: limit, binarizeSeed: binarized)
        guard !labels.isEmpty else { throw ExploreError("the test set has no images") }
        let objective = try objectiveTerms(model, images: images, labels: labels)
        let evaluator = VAELikelihood(model: model, rowsPerPass: rowsPerPass)
        let posterior = try evaluator.posterior(images: images, labels: labels)
        let active = VAELikelihood.activeUnits(posterior)
        var reconstruction = objective.recon, kl = objective.kl
        var elboSamples = 1
        var iwBound: Double?, iwError: Double?
        if bernoulli {
            let samples = iwSamples ?? 1
            let bounds = try evaluator.bounds(images: images, labels: labels, posterior: posterior, samples: samples, seed: seed) {
                progress?($0, labels.count)
            }
            let n = Double(bounds.count)
            reconstruction = -bounds.reduce(0) { $0 + $1.meanLogLikelihood } / n
            kl = bounds.reduce(0) { $0 + $1.kl } / n
            elboSamples = samples
            if iwSamples != nil {
                let values = bounds.map { -$0.importanceWeighted }
                let mean = values.reduce(0, +) / n
                let variance = values.reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / max(n - 1, 1)
                iwBound = mean
                iwError = (variance / n).squareRoot()
            }
        }
        return LikelihoodReport(
            model: options.model.rawValue, checkpoint: loaded.source, dataset: options.dataset, images: labels.count,
            binarizeSeed: binarized, conditional: model.isConditional,
            unit: binarized != nil && bernoulli ? "nats" : "\(options.loss) objective", loss: options.loss,
            beta: Double(options.kl ? options.beta : 0), objective: objective.total, negativeELBO: reconstruction + kl,
            reconstruction: reconstruction, kl: kl, elboSamples: elboSamples, activeUnits: active.count,
            latentDim: options.latentDim, unitVariances: active.variances, iwSamples: iwBound == nil ? nil : iwSamples,
            iwBound: iwBound, iwStandardError: iwError, seed: seed, seconds: Date().timeIntervalSince(start))
    }

    /// The model's own test terms (`evaluate`, z drawn once), per image.
    static func objectiveTerms(_ model: GaussianVAE, images: [Float], labels: [UInt8], batch: Int = 500) throws -> (total: Double, recon: Double, kl: Double) {
        var sums = [Double](repeating: 0, count: 3)
        var start = 0
        let pixels = 784
        while start < labels.count {
            let n = min(batch, labels.count - start)
            let tensor = try Tensor(Array(images[(start * pixels)..<((start + n) * pixels)]), shape: [n, 1, 28, 28], on: model.backend)
            let terms = try model.evaluate(images: tensor, labels: Array(labels[start..<(start + n)]))
            for (index, term) in terms.prefix(3).enumerated() { sums[index] += Double(try term.scalar()) }
            start += n
        }
        let n = Double(labels.count)
        return (sums[0] / n, sums[1] / n, sums[2] / n)
    }

    // MARK: - Classifier

    /// Softmax rows (N x 10) and penultimate features (N x 128) of images (N x 784 in [0, 1]).
    public static func classify(_ classifier: Classifier, images: [Float], batch: Int = 500) throws -> (probabilities: [Float], features: [Float]) {
        let pixels = 784
        let count = images.count / pixels
        var probabilities = [Float](), features = [Float]()
        probabilities.reserveCapacity(count * classifier.classes)
        features.reserveCapacity(count * classifier.featureSize)
        var start = 0
        while start < count {
            let n = min(batch, count - start)
            let tensor = try Tensor(Array(images[(start * pixels)..<((start + n) * pixels)]), shape: [n, 1, 28, 28], on: classifier.backend)
            features += try classifier.features(tensor)
            probabilities += try classifier.predict(tensor).flatMap { $0 }
            start += n
        }
        return (probabilities, features)
    }

    public struct AccuracyReport: Sendable {
        public var checkpoint: String
        public var dataset: String
        public var images: Int
        public var correct: Int
        public var accuracy: Double { images > 0 ? Double(correct) / Double(images) : 0 }

        public var json: [String: Any] {
            ["kind": "accuracy", "model": "classifier", "checkpoint": checkpoint, "dataset": dataset, "images": images,
             "correct": correct, "accuracy": accuracy]
        }

        public var line: String {
            "classifier \(checkpoint): test accuracy \(fixed(100 * accuracy, 2))% (\(correct) of \(images) \(dataset) test images)"
        }
    }

    /// Test accuracy of a classifier checkpoint on the first `limit` images of `testSet`.
    public static func accuracy(_ loaded: LoadedModel, testSet: Dataset, limit: Int?) throws -> AccuracyReport {
        let classifier = try classifier(loaded)
        let (images, labels) = Self.images(testSet, count: limit)
        let probabilities = try classify(classifier, images: images).probabilities
        let classes = classifier.classes
        var correct = 0
        for (row, label) in labels.enumerated() {
            let slice = probabilities[(row * classes)..<((row + 1) * classes)]
            var best = slice.startIndex
            for index in slice.indices where slice[index] > slice[best] { best = index }
            if best - slice.startIndex == Int(label) { correct += 1 }
        }
        return AccuracyReport(checkpoint: loaded.source, dataset: loaded.options.dataset, images: labels.count, correct: correct)
    }

    static func classifier(_ loaded: LoadedModel) throws -> Classifier {
        guard let classifier = loaded.model as? Classifier else {
            throw ExploreError("\(loaded.source) is a '\(loaded.options.model.rawValue)' checkpoint, not a classifier "
                               + "(train one with latent train classifier)")
        }
        return classifier
    }

    // MARK: - Sample quality

    /// Classifier statistics of one image set against the test set.
    public struct SampleQuality: Sendable {
        public var name: String
        public var images: Int
        /// Fréchet distance of penultimate-layer features to the test set's.
        public var fid: Double
        public var confidentShare: Double
        public var classEntropy: Double
        public var histogram: [Int]

        public var json: [String: Any] {
            ["images": images, "fid": fid, "confident_share": confidentShare, "class_entropy": classEntropy, "histogram": histogram]
        }
    }

    public struct SampleReport: Sendable {
        public var classifier: String
        public var dataset: String
        public var testImages: Int
        /// The samples, then the floor (training images) and the ceiling (uniform noise).
        public var rows: [SampleQuality]

        public var json: [String: Any] {
            var object: [String: Any] = ["kind": "samples", "classifier": classifier, "dataset": dataset, "test_images": testImages]
            for (key, row) in zip(["samples", "floor", "ceiling"], rows) {
                var entry = row.json
                entry["name"] = row.name
                object[key] = entry
            }
            return object
        }

        public var lines: [String] {
            var lines = ["classifier \(classifier), features of \(testImages) \(dataset) test images (FID: Fréchet distance of 128-d penultimate features)"]
            let width = max(rows.map(\.name.count).max() ?? 0, 3)
            lines.append(pad("set", width) + " " + pad("images", 7, left: true) + " " + pad("FID", 12, left: true) + " "
                         + pad("conf>0.9", 9, left: true) + " " + pad("entropy", 8, left: true))
            for row in rows {
                lines.append(pad(row.name, width) + " " + pad("\(row.images)", 7, left: true) + " " + pad(fixed(row.fid, 4), 12, left: true)
                             + " " + pad(fixed(100 * row.confidentShare, 1) + "%", 9, left: true) + " " + pad(fixed(row.classEntropy, 4), 8, left: true))
            }
            lines.append("class entropy in nats (ln 10 = 2.3026 for even classes); conf>0.9: share of images with max softmax > 0.9")
            return lines
        }
    }

    /// The statistics of `samples` (N x 784 in [0, 1]), of the first `floorCount` training
    /// images (the floor) and of `floorCount` uniform-noise images drawn with `seed` (the
    /// ceiling), each against the whole test set.
    public static func sampleQuality(_ loaded: LoadedModel, samples: [Float], sampleName: String, trainSet: Dataset, testSet: Dataset,
                                     floorCount: Int = 10_000, seed: UInt64 = 0) throws -> SampleReport {
        var report = try sampleQuality(try classifier(loaded), samples: samples, sampleName: sampleName, trainSet: trainSet,
                                       testSet: testSet, floorCount: floorCount, seed: seed)
        report.classifier = loaded.source
        report.dataset = loaded.options.dataset
        return report
    }

    /// The same for a classifier in memory.
    public static func sampleQuality(_ classifier: Classifier, samples: [Float], sampleName: String, trainSet: Dataset, testSet: Dataset,
                                     floorCount: Int = 10_000, seed: UInt64 = 0) throws -> SampleReport {
        let features = classifier.featureSize
        let test = try classify(classifier, images: images(testSet).images)
        let reference = try FrechetDistance.Reference(try FeatureStatistics(rows: test.features, dimension: features))
        func quality(_ name: String, _ pixels: [Float]) throws -> SampleQuality {
            let (probabilities, rows) = try classify(classifier, images: pixels)
            let verdict = ClassifierVerdict(probabilities: probabilities, classes: classifier.classes)
            let fid = try reference.distance(to: try FeatureStatistics(rows: rows, dimension: features))
            return SampleQuality(name: name, images: pixels.count / 784, fid: fid, confidentShare: verdict.confidentShare,
                                 classEntropy: verdict.classEntropy, histogram: verdict.histogram)
        }
        let floorImages = images(trainSet, count: floorCount).images
        var generator = SplitMix64(seed: seed)
        let noise = (0..<(floorCount * 784)).map { _ in Float(generator.next() >> 40) / Float(1 << 24) }
        let rows = [
            try quality(sampleName, samples),
            try quality("floor: first \(floorImages.count / 784) training images", floorImages),
            try quality("ceiling: \(floorCount) uniform-noise images", noise),
        ]
        return SampleReport(classifier: "(in memory)", dataset: classifier.options.dataset, testImages: testSet.count, rows: rows)
    }
}

/// `value` with `digits` decimals.
func fixed(_ value: Double, _ digits: Int) -> String { String(format: "%.\(digits)f", value) }

/// `text` padded with spaces to `width` characters, on the right or (numbers) the left.
func pad(_ text: String, _ width: Int, left: Bool = false) -> String {
    let fill = String(repeating: " ", count: max(0, width - text.count))
    return left ? fill + text : text + fill
}
