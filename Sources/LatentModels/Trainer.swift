import Foundation
import LatentCore
import LatentData
import LatentNN

/// One epoch's figures, per image: what `metrics.jsonl` records.
public struct EpochMetrics: Sendable {
    public var epoch: Int
    public var train: [(name: String, value: Double)]
    public var test: [(name: String, value: Double)]
    public var imagesPerSecond: Double
    public var seconds: Double
    public var backend: String

    public func value(_ name: String, test: Bool = false) -> Double? {
        (test ? self.test : train).first { $0.name == name }?.value
    }

    /// One JSON line: `epoch`, `train_loss`, `test_loss`, the train terms by name, the test
    /// terms as `test_<name>`, `images_per_sec`, `backend`, `seconds`.
    public var jsonLine: String {
        var fields: [(String, String)] = [("epoch", String(epoch))]
        fields.append(("train_loss", Self.number(train.first?.value ?? .nan)))
        fields.append(("test_loss", Self.number(test.first?.value ?? .nan)))
        for term in train.dropFirst() { fields.append((term.name, Self.number(term.value))) }
        for term in test.dropFirst() { fields.append(("test_\(term.name)", Self.number(term.value))) }
        fields.append(("images_per_sec", Self.number(imagesPerSecond)))
        fields.append(("backend", "\"\(backend)\""))
        fields.append(("seconds", Self.number(seconds)))
        return "{" + fields.map { "\"\($0.0)\": \($0.1)" }.joined(separator: ", ") + "}"
    }

    static func number(_ value: Double) -> String {
        value.isFinite ? String(format: "%.6g", value) : "null"
    }
}

/// What a trainer tells its user: progress within an epoch and each finished epoch.
public protocol TrainingObserver: AnyObject {
    func trainingStarted(epochs: ClosedRange<Int>, batchesPerEpoch: Int, trainImages: Int, testImages: Int)
    /// `loss` is the objective per image of the latest batch, read every few steps (nil otherwise).
    func batchFinished(epoch: Int, batch: Int, batchCount: Int, loss: Double?, imagesPerSecond: Double)
    func epochFinished(_ metrics: EpochMetrics, samplePath: String?)
}

/// Epochs over a dataset for any model of the zoo, with the files of DESIGN.md: one
/// `metrics.jsonl` line and one `samples-eNNN.png` per epoch, and an atomically replaced
/// `checkpoint.safetensors` after each epoch, so a killed run resumes from its last epoch
/// and, on the CPU backend, ends with the same weights as one never interrupted.
public final class Trainer {
    public let model: any GenerativeModel
    public let trainSet: Dataset
    public let testSet: Dataset
    public let directory: URL
    public weak var observer: (any TrainingObserver)?
    /// Noise seed of the sample grids: fixed, so epoch after epoch shows the same codes.
    public var sampleSeed: UInt64 = 0x5A4D_504C_4553
    public var sampleCount = 64
    /// How often the progress display reads the loss back (a device sync on OpenCL).
    public var progressInterval = 10

    public init(model: any GenerativeModel, trainSet: Dataset, testSet: Dataset, directory: URL) {
        self.model = model
        self.trainSet = trainSet
        self.testSet = testSet
        self.directory = directory
    }

    public var checkpointURL: URL { directory.appendingPathComponent("checkpoint.safetensors") }
    public var metricsURL: URL { directory.appendingPathComponent("metrics.jsonl") }
    public var configURL: URL { directory.appendingPathComponent("config.json") }

    func loader(for dataset: Dataset, training: Bool) -> BatchLoader {
        let options = model.options
        var loader = BatchLoader(dataset: dataset, batchSize: options.batchSize, shuffle: training, seed: options.seed)
        loader.range = model.pixelRange
        loader.binarize = options.binarize
        if training { loader.saltAndPepperFraction = options.noise }
        return loader
    }

    /// Trains epochs `firstEpoch...options.epochs` (1-based).
    public func run(firstEpoch: Int = 1) throws {
        let options = model.options
        guard firstEpoch <= options.epochs else { return }
        let backend = model.backend
        let trainLoader = loader(for: trainSet, training: true)
        let testLoader = loader(for: testSet, training: false)
        observer?.trainingStarted(epochs: firstEpoch...options.epochs, batchesPerEpoch: trainLoader.batchesPerEpoch,
                                  trainImages: trainSet.count, testImages: testSet.count)
        if model is NeedsTrainingData, firstEpoch == 1 {
            try (model as? NeedsTrainingData)?.prepare(with: trainSet)
        }
        let accumulators = try model.lossTermNames.map { _ in try Tensor(zeros: [1], on: backend) }
        var batches = BatchTensors(backend: backend)
        let clock = ContinuousClock()
        for epoch in firstEpoch...options.epochs {
            let start = clock.now
            // Train.
            for accumulator in accumulators { try backend.fill(accumulator.view, value: 0) }
            let pass = trainLoader.epoch(epoch)
            var images = 0
            for batch in 0..<pass.batchCount {
                let (tensor, labels) = try batches.load(pass, batch: batch)
                let terms = try model.trainStep(images: tensor, labels: labels)
                for (term, accumulator) in zip(terms, accumulators) {
                    try backend.axpby(alpha: 1, x: term.view, beta: 1, y: accumulator.view)
                }
                images += labels.count
                let elapsed = Timing.seconds(clock.now - start)
                let showLoss = batch % progressInterval == 0 || batch == pass.batchCount - 1
                let loss = showLoss ? Double(try terms[0].scalar()) / Double(labels.count) : nil
                if let loss, !loss.isFinite {
                    throw LatentError.nonFinite("the loss became \(loss) at epoch \(epoch), step \(batch + 1); the last good checkpoint is kept. Try a smaller --lr.")
                }
                observer?.batchFinished(epoch: epoch, batch: batch + 1, batchCount: pass.batchCount, loss: loss,
                                        imagesPerSecond: Double(images) / max(elapsed, 1e-9))
            }
            try backend.synchronize()
            let trainSeconds = Timing.seconds(clock.now - start)
            let trainTerms = try accumulators.map { Double(try $0.scalar()) / Double(max(images, 1)) }
            if let bad = zip(model.lossTermNames, trainTerms).first(where: { !$0.1.isFinite }) {
                throw LatentError.nonFinite("the training \(bad.0) of epoch \(epoch) is \(bad.1); the last good checkpoint is kept. Try a smaller --lr.")
            }
            // Test.
            let testTerms = try evaluate(testLoader, batches: &batches, accumulators: accumulators)
            let metrics = EpochMetrics(epoch: epoch,
                                       train: Array(zip(model.lossTermNames, trainTerms)).map { (name: $0.0, value: $0.1) },
                                       test: Array(zip(model.lossTermNames, testTerms)).map { (name: $0.0, value: $0.1) },
                                       imagesPerSecond: Double(images) / max(trainSeconds, 1e-9),
                                       seconds: Timing.seconds(clock.now - start), backend: backend.name)
            let samplePath = try writeSamples(epoch: epoch)
            try appendMetrics(metrics)
            try Checkpoint.save(model, epoch: epoch, to: checkpointURL)
            observer?.epochFinished(metrics, samplePath: samplePath)
        }
    }

    /// Per-image test terms, the model in eval mode, the file order.
    func evaluate(_ loader: BatchLoader, batches: inout BatchTensors, accumulators: [Tensor]) throws -> [Double] {
        let backend = model.backend
        for accumulator in accumulators { try backend.fill(accumulator.view, value: 0) }
        let pass = loader.epoch(0)
        var images = 0
        for batch in 0..<pass.batchCount {
            let (tensor, labels) = try batches.load(pass, batch: batch)
            let terms = try model.evaluate(images: tensor, labels: labels)
            for (term, accumulator) in zip(terms, accumulators) {
                try backend.axpby(alpha: 1, x: term.view, beta: 1, y: accumulator.view)
            }
            images += labels.count
        }
        return try accumulators.map { Double(try $0.scalar()) / Double(max(images, 1)) }
    }

    /// `samples-eNNN.png`: a grid of generated images; nil for models that do not generate.
    func writeSamples(epoch: Int) throws -> String? {
        let pixels: [Float]
        do {
            pixels = try model.generate(count: sampleCount, seed: sampleSeed)
        } catch ModelError.doesNotGenerate {
            return nil
        }
        let grid = ImageGrid.make(images: pixels, height: 28, width: 28, columns: 8, padding: 2, scale: 2)
        let url = directory.appendingPathComponent(String(format: "samples-e%03d.png", epoch))
        try AtomicFile.write(Data(grid.pngData()), to: url)
        return url.path
    }

    func appendMetrics(_ metrics: EpochMetrics) throws {
        let line = metrics.jsonLine + "\n"
        if !FileManager.default.fileExists(atPath: metricsURL.path) {
            try AtomicFile.write(Data(line.utf8), to: metricsURL)
            return
        }
        do {
            let handle = try FileHandle(forWritingTo: metricsURL)
            defer { try? handle.close() }
            try handle.seekToEnd()
            try handle.write(contentsOf: Data(line.utf8))
        } catch {
            throw LatentError.io("cannot append to \(metricsURL.path): \(error.localizedDescription)")
        }
    }

    /// Drops metrics lines of epochs after `epoch` (a run killed between its metrics line
    /// and its checkpoint), so a resumed run writes each epoch once.
    public func truncateMetrics(after epoch: Int) throws {
        guard let text = try? String(contentsOf: metricsURL, encoding: .utf8) else { return }
        let kept = text.split(separator: "\n").filter { line in
            guard let data = line.data(using: .utf8),
                  let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any],
                  let lineEpoch = object["epoch"] as? Int else { return false }
            return lineEpoch <= epoch
        }
        try AtomicFile.write(Data(kept.map { $0 + "\n" }.joined().utf8), to: metricsURL)
    }
}

public enum ModelError: Error {
    /// `generate` of a model that makes no images (the classifier).
    case doesNotGenerate
}

/// Device tensors for batches, one per batch size, reused every step.
struct BatchTensors {
    let backend: any Backend
    var tensors: [Int: Tensor] = [:]
    var host: [Float] = []
    var labels: [UInt8] = []

    init(backend: any Backend) {
        self.backend = backend
    }

    mutating func load(_ pass: BatchLoader.Epoch, batch: Int) throws -> (Tensor, [UInt8]) {
        let count = pass.fill(batch: batch, images: &host, labels: &labels)
        let rows = pass.loader.dataset.rows, cols = pass.loader.dataset.cols
        let tensor: Tensor
        if let existing = tensors[count] {
            tensor = existing
        } else {
            tensor = try Tensor(zeros: [count, 1, rows, cols], on: backend)
            tensors[count] = tensor
        }
        try tensor.copy(from: host)
        return (tensor, labels)
    }
}

enum Timing {
    static func seconds(_ duration: Duration) -> Double {
        let parts = duration.components
        return Double(parts.seconds) + Double(parts.attoseconds) * 1e-18
    }
}
