import Foundation
import LatentData

/// Several observers of one training: each call goes to every observer in order. The fanout
/// holds its observers strongly (the trainer holds its observer weakly, so keep the fanout
/// itself alive for the run).
public final class ObserverFanout: TrainingObserver {
    public let observers: [any TrainingObserver]

    public init(_ observers: [any TrainingObserver]) {
        self.observers = observers
    }

    public func trainingStarted(epochs: ClosedRange<Int>, batchesPerEpoch: Int, trainImages: Int, testImages: Int) {
        for observer in observers {
            observer.trainingStarted(epochs: epochs, batchesPerEpoch: batchesPerEpoch, trainImages: trainImages, testImages: testImages)
        }
    }

    public func batchFinished(epoch: Int, batch: Int, batchCount: Int, loss: Double?, imagesPerSecond: Double) {
        for observer in observers {
            observer.batchFinished(epoch: epoch, batch: batch, batchCount: batchCount, loss: loss, imagesPerSecond: imagesPerSecond)
        }
    }

    public func epochFinished(_ metrics: EpochMetrics, samplePath: String?) {
        for observer in observers { observer.epochFinished(metrics, samplePath: samplePath) }
    }
}

/// Writes a run's figures as TensorBoard event files in `DIR/tb/` (`tensorboard --logdir DIR/tb`):
///
/// - `train/<term>` and `test/<term>` per epoch (`train/loss`, `test/kl`, …; per image),
///   `perf/images_per_sec` and `perf/epoch_seconds`, `lr/<optimizer>` (step = epoch);
/// - `samples`, the epoch's sample grid as an image (step = epoch);
/// - `step/loss`, the latest batch's loss whenever the trainer reads it back (every
///   `Trainer.progressInterval` batches; step = batches since the start of epoch 1).
///
/// A resumed run adds a new event file beside the old ones; TensorBoard reads them all.
/// Writing never stops the training: the first failure is reported once through `warn`
/// and the log stops there.
public final class TensorBoardObserver: TrainingObserver {
    public let writer: TensorBoardWriter
    let learningRates: () -> [(name: String, value: Double)]
    var batchesPerEpoch = 0
    /// The first write that failed (nil while all went well).
    public private(set) var failure: String?
    /// Where a failure is reported (stderr by default).
    public var warn: (String) -> Void = { message in
        FileHandle.standardError.write(Data("warning: \(message)\n".utf8))
    }

    /// A new event file in `directory`; `learningRates` is asked once per epoch.
    public init(directory: URL, learningRates: @escaping () -> [(name: String, value: Double)] = { [] }) throws {
        writer = try TensorBoardWriter(directory: directory)
        self.learningRates = learningRates
    }

    /// The event file of a run in `runDirectory/tb`, with the learning rate of each of
    /// `model`'s optimizers (`lr/optimizer`, or `lr/optimizer_g` and `lr/optimizer_d`).
    public convenience init(runDirectory: URL, model: any GenerativeModel) throws {
        try self.init(directory: Self.folder(of: runDirectory)) { [weak model] in
            guard let model else { return [] }
            return model.optimizers.map { (name: $0.name, value: Double($0.optimizer.rule.learningRate)) }
        }
    }

    /// `DIR/tb`, where a run's event files go.
    public static func folder(of runDirectory: URL) -> URL {
        runDirectory.appendingPathComponent("tb")
    }

    public func trainingStarted(epochs: ClosedRange<Int>, batchesPerEpoch: Int, trainImages: Int, testImages: Int) {
        self.batchesPerEpoch = batchesPerEpoch
    }

    public func batchFinished(epoch: Int, batch: Int, batchCount: Int, loss: Double?, imagesPerSecond: Double) {
        guard let loss else { return }
        let step = (epoch - 1) * max(batchesPerEpoch, batchCount) + batch
        write { try writer.add([.scalar(tag: "step/loss", value: Float(loss))], step: step) }
    }

    public func epochFinished(_ metrics: EpochMetrics, samplePath: String?) {
        var values: [TensorBoardEvent.Value] = []
        for term in metrics.train { values.append(.scalar(tag: "train/\(term.name)", value: Float(term.value))) }
        for term in metrics.test { values.append(.scalar(tag: "test/\(term.name)", value: Float(term.value))) }
        values.append(.scalar(tag: "perf/images_per_sec", value: Float(metrics.imagesPerSecond)))
        values.append(.scalar(tag: "perf/epoch_seconds", value: Float(metrics.seconds)))
        for rate in learningRates() { values.append(.scalar(tag: "lr/\(rate.name)", value: Float(rate.value))) }
        write { try writer.add(values, step: metrics.epoch) }
        guard let samplePath else { return }
        write {
            guard let png = FileManager.default.contents(atPath: samplePath),
                  let image = TensorBoardEvent.Image(png: Array(png)) else {
                throw DataError("cannot read the sample grid \(samplePath) as PNG")
            }
            try writer.add([.image(tag: "samples", image: image)], step: metrics.epoch)
        }
    }

    public func close() {
        writer.close()
    }

    private func write(_ body: () throws -> Void) {
        guard failure == nil else { return }
        do {
            try body()
        } catch {
            failure = "\(error)"
            warn("the TensorBoard log stops here: \(error)")
        }
    }
}
