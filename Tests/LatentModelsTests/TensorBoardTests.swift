import Foundation
import LatentCore
import LatentCPU
import LatentData
@testable import LatentModels
import LatentNN
import XCTest

/// A tiny run trained through `Trainer` with the observers `latent train` attaches, shared by
/// the TensorBoard and report tests.
enum ObservedRun {
    static let epochs = 2

    static func options() -> TrainingOptions {
        var options = Zoo.options(.vaeFC)
        options.epochs = epochs
        options.batchSize = 32
        return options
    }

    /// Trains `options()` into a fresh folder with a fanout of a TensorBoard observer, a
    /// report observer and `extra`; writes config.json as `latent train` does.
    static func train(_ test: XCTestCase, extra: [any TrainingObserver] = []) throws -> (folder: URL, tensorBoard: TensorBoardObserver) {
        let folder = try temporaryDirectory(test)
        let options = options()
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        try encoder.encode(options).write(to: folder.appendingPathComponent("config.json"))
        let model = try ModelCatalog.makeModel(options, backend: Zoo.backend, random: RandomSource(seed: options.seed))
        let trainer = Trainer(model: model, trainSet: try Zoo.dataset(count: 160, seed: 1),
                              testSet: try Zoo.dataset(count: 40, seed: 2), directory: folder)
        trainer.progressInterval = 2
        let tensorBoard = try TensorBoardObserver(runDirectory: folder, model: model)
        let fanout = ObserverFanout([tensorBoard, RunReportObserver(directory: folder)] + extra)
        trainer.observer = fanout
        try trainer.run()
        withExtendedLifetime(fanout) {}
        tensorBoard.close()
        return (folder, tensorBoard)
    }
}

/// Records every call, to check the fanout.
final class RecordingObserver: TrainingObserver {
    let name: String
    let log: LogBox

    final class LogBox {
        var lines: [String] = []
    }

    init(_ name: String, log: LogBox) {
        self.name = name
        self.log = log
    }

    func trainingStarted(epochs: ClosedRange<Int>, batchesPerEpoch: Int, trainImages: Int, testImages: Int) {
        log.lines.append("\(name) started \(epochs.lowerBound)-\(epochs.upperBound) \(batchesPerEpoch)")
    }

    func batchFinished(epoch: Int, batch: Int, batchCount: Int, loss: Double?, imagesPerSecond: Double) {
        log.lines.append("\(name) batch \(epoch).\(batch)")
    }

    func epochFinished(_ metrics: EpochMetrics, samplePath: String?) {
        log.lines.append("\(name) epoch \(metrics.epoch)")
    }
}

final class TensorBoardTests: XCTestCase {
    func testFanoutForwardsEveryCallInOrder() {
        let log = RecordingObserver.LogBox()
        let fanout = ObserverFanout([RecordingObserver("a", log: log), RecordingObserver("b", log: log)])
        fanout.trainingStarted(epochs: 1...3, batchesPerEpoch: 5, trainImages: 10, testImages: 2)
        fanout.batchFinished(epoch: 1, batch: 2, batchCount: 5, loss: nil, imagesPerSecond: 1)
        fanout.epochFinished(EpochMetrics(epoch: 1, train: [], test: [], imagesPerSecond: 1, seconds: 1, backend: "cpu"), samplePath: nil)
        XCTAssertEqual(log.lines, ["a started 1-3 5", "b started 1-3 5", "a batch 1.2", "b batch 1.2", "a epoch 1", "b epoch 1"])
    }

    /// The event file of a real run, read back with our own record reader: the version
    /// event, then per epoch the scalars and the sample grid, with the running loss between.
    func testTrainingWritesEventFile() throws {
        let log = RecordingObserver.LogBox()
        let (folder, tensorBoard) = try ObservedRun.train(self, extra: [RecordingObserver("r", log: log)])
        XCTAssertNil(tensorBoard.failure)
        XCTAssertEqual(log.lines.filter { $0.hasPrefix("r epoch") }, ["r epoch 1", "r epoch 2"])
        let files = try FileManager.default.contentsOfDirectory(atPath: folder.appendingPathComponent("tb").path)
        XCTAssertEqual(files.count, 1)
        let name = try XCTUnwrap(files.first)
        XCTAssertTrue(name.hasPrefix("events.out.tfevents."), name)
        let records = try TFRecord.records(in: Array(try Data(contentsOf: tensorBoard.writer.url)))
        XCTAssertGreaterThan(records.count, 1 + 2 * ObservedRun.epochs)
        // "brain.Event:2" as the first event's file_version.
        XCTAssertTrue(records[0].contains(subsequence: Array("brain.Event:2".utf8)))
        let joined = records.dropFirst().flatMap { $0 }
        for tag in ["train/loss", "train/recon", "train/kl", "test/loss", "test/recon", "test/kl",
                    "perf/images_per_sec", "perf/epoch_seconds", "lr/optimizer", "step/loss", "samples"] {
            XCTAssertTrue(joined.contains(subsequence: Array(tag.utf8)), "no \(tag) in the events")
        }
        let grid = try Data(contentsOf: folder.appendingPathComponent("samples-e002.png"))
        XCTAssertTrue(joined.contains(subsequence: Array(grid)), "the last sample grid is not in the events")
    }

    /// TensorBoard's own reader (EventAccumulator) on the same run: every scalar equals
    /// metrics.jsonl and every grid is there (scripts/check_tensorboard.py). Skips without
    /// the tensorboard Python package.
    func testTensorBoardReaderAcceptsRun() throws {
        guard (try? Python.run(["/usr/bin/env", "python3", "-c", "import tensorboard"]).status) == 0 else {
            throw XCTSkip("the tensorboard Python package is not importable (pip install tensorboard)")
        }
        let (folder, _) = try ObservedRun.train(self)
        let script = Zoo.repositoryRoot.appendingPathComponent("scripts/check_tensorboard.py").path
        let (status, output) = try Python.run(["/usr/bin/env", "python3", script, folder.path])
        XCTAssertEqual(status, 0, output)
        XCTAssertTrue(output.contains("tensorboard check: OK"), output)
        print(output, terminator: "")
    }

    func testUnwritableFolderWarnsOnceAndTrainingGoesOn() throws {
        let folder = try temporaryDirectory(self)
        let observer = try TensorBoardObserver(directory: folder.appendingPathComponent("tb"))
        var warnings: [String] = []
        observer.warn = { warnings.append($0) }
        let metrics = EpochMetrics(epoch: 1, train: [(name: "loss", value: 1)], test: [(name: "loss", value: 2)],
                                   imagesPerSecond: 10, seconds: 1, backend: "cpu")
        // A sample path that is not a PNG: the log stops with one warning, nothing throws.
        let notPNG = folder.appendingPathComponent("samples-e001.png")
        try Data("text".utf8).write(to: notPNG)
        observer.epochFinished(metrics, samplePath: notPNG.path)
        observer.epochFinished(metrics, samplePath: notPNG.path)
        XCTAssertEqual(warnings.count, 1)
        XCTAssertNotNil(observer.failure)
    }
}

extension Array where Element == UInt8 {
    func contains(subsequence needle: [UInt8]) -> Bool {
        guard !needle.isEmpty, needle.count <= count else { return needle.isEmpty }
        return (0...(count - needle.count)).contains { start in
            self[start] == needle[0] && Array(self[start..<(start + needle.count)]) == needle
        }
    }
}
