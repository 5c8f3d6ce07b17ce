import Foundation
import LatentCore
import LatentCPU
import LatentData
@testable import LatentModels
import LatentNN
import XCTest

/// Training faults (docs/RELIABILITY.md): non-finite values stop the run at the first bad
/// step with the tensor named and the last good checkpoint kept; a full or read-only output
/// folder fails before training or at the write, leaving no partial file.
final class ReliabilityTrainerTests: XCTestCase {
    var folder: URL!

    override func setUpWithError() throws {
        folder = FileManager.default.temporaryDirectory.appendingPathComponent("latent-rel-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws {
        try? FileManager.default.removeItem(at: folder)
    }

    func options(epochs: Int = 2, lr: Float = 1e-3) -> TrainingOptions {
        var options = Zoo.options(.vaeFC)
        options.epochs = epochs
        options.learningRate = lr
        options.batchSize = 16
        return options
    }

    func trainer(_ options: TrainingOptions, in directory: URL? = nil) throws -> Trainer {
        let model = try Zoo.make(options)
        return Trainer(model: model, trainSet: try Zoo.dataset(count: 96, seed: 1), testSet: try Zoo.dataset(count: 32, seed: 2),
                       directory: directory ?? folder)
    }

    func files(_ directory: URL) throws -> [String] {
        try FileManager.default.contentsOfDirectory(atPath: directory.path).sorted()
    }

    /// `--lr 1e6`: the run stops in the first epoch, at the first step whose loss or gradient
    /// is not finite, names it, and writes nothing for the epoch.
    func testHugeLearningRateStopsAtFirstNonFiniteStep() throws {
        let run = try trainer(options(lr: 1e6))
        XCTAssertThrowsError(try run.run()) { error in
            guard case LatentError.nonFinite(let message) = error else { return XCTFail("\(error)") }
            XCTAssertTrue(message.contains("at epoch 1, step "), message)
            XCTAssertTrue(message.contains("NaN or infinite"), message)
            XCTAssertTrue(message.contains("'"), "names a tensor: \(message)")
            XCTAssertTrue(message.contains("before the first checkpoint"), message)
            XCTAssertTrue(message.contains("--lr"), message)
            XCTAssertFalse(message.contains("\n"), message)
        }
        XCTAssertEqual(try files(folder), [], "no checkpoint, metrics or samples of a failed epoch")
    }

    /// A run that goes bad in epoch 2 keeps epoch 1's checkpoint byte for byte, its metrics
    /// line and its sample grid, and nothing of epoch 2.
    func testNonFiniteInLaterEpochKeepsLastGoodCheckpoint() throws {
        let run = try trainer(options(epochs: 1))
        try run.run()
        let checkpoint = try Data(contentsOf: run.checkpointURL)
        let metrics = try Data(contentsOf: run.metricsURL)

        // Resume as --resume does, with a learning rate that diverges.
        var resumed = options(epochs: 3)
        resumed.learningRate = 1e6
        let model = try Zoo.make(resumed)
        let (info, entries) = try Checkpoint.info(at: run.checkpointURL)
        try Checkpoint.load(entries, info: info, into: model, source: run.checkpointURL.path)
        let second = Trainer(model: model, trainSet: run.trainSet, testSet: run.testSet, directory: folder)
        XCTAssertThrowsError(try second.run(firstEpoch: 2)) { error in
            guard case LatentError.nonFinite(let message) = error else { return XCTFail("\(error)") }
            XCTAssertTrue(message.contains("at epoch 2, step "), message)
            XCTAssertTrue(message.contains("the checkpoint of epoch 1 in \(run.checkpointURL.path) is kept"), message)
        }
        XCTAssertEqual(try Data(contentsOf: run.checkpointURL), checkpoint)
        XCTAssertEqual(try Data(contentsOf: run.metricsURL), metrics)
        XCTAssertEqual(try files(folder), ["checkpoint.safetensors", "metrics.jsonl", "samples-e001.png"])
    }

    /// The watch names the parameter whose gradient went bad, at the exact step, even when the
    /// counts are read back only every few steps.
    func testWatchNamesTheTensorAndTheExactStep() throws {
        let model = try Zoo.make(options())
        let watch = try NonFiniteWatch(model: model, steps: 4)
        let (images, labels) = try Zoo.batch(for: model, count: 4, seed: 3)
        let target = try XCTUnwrap(model.root.namedParameters().last)
        for step in 1...3 {
            let terms = try model.trainStep(images: images, labels: labels)
            if step == 2 {
                var values = try target.parameter.gradient.toArray()
                values[0] = .infinity
                values[values.count - 1] = .nan
                try target.parameter.gradient.copy(from: values)
            }
            try watch.record(terms: terms, epoch: 5, step: step)
        }
        let fault = try XCTUnwrap(try watch.check())
        XCTAssertEqual(fault, "at epoch 5, step 2 the gradient of '\(target.name)' (2 of its \(target.parameter.value.count) values) is NaN or infinite")
        XCTAssertNil(try watch.check(), "each step is reported once")
    }

    /// What the watch costs (the figure in docs/RELIABILITY.md comes from a release build;
    /// this only checks that it runs and stays finite on a healthy model).
    func testWatchIsQuietOnHealthyTraining() throws {
        let run = try trainer(options(epochs: 1))
        run.progressInterval = 3
        try run.run()
        let line = try String(contentsOf: run.metricsURL, encoding: .utf8)
        XCTAssertTrue(line.contains("\"epoch\": 1"), line)
        #if os(Linux)
        XCTAssertTrue(line.contains("\"rss_mb\": "), "resident memory is recorded each epoch: \(line)")
        #endif
    }

    /// A failed checkpoint write takes the epoch's metrics line back.
    func testMetricsRollBackWhenTheCheckpointCannotBeWritten() throws {
        let run = try trainer(options(epochs: 1))
        try run.run()
        let metrics = try Data(contentsOf: run.metricsURL)
        // A folder where the checkpoint's name is taken by a directory: rename(2) fails.
        try FileManager.default.removeItem(at: run.checkpointURL)
        try FileManager.default.createDirectory(at: run.checkpointURL.appendingPathComponent("blocker"), withIntermediateDirectories: true)
        let model = try Zoo.make(options(epochs: 2))
        let second = Trainer(model: model, trainSet: run.trainSet, testSet: run.testSet, directory: folder)
        XCTAssertThrowsError(try second.run(firstEpoch: 2)) { error in
            XCTAssertTrue("\(error)".contains("checkpoint.safetensors"), "\(error)")
        }
        XCTAssertEqual(try Data(contentsOf: run.metricsURL), metrics, "epoch 2's line is rolled back")
        let left = try files(folder)
        XCTAssertFalse(left.contains { $0.contains(".tmp-") }, "\(left)")
    }

    // MARK: - Full and read-only folders (need root and mount(8))

    func tinyFilesystem(size: String) throws -> URL {
        guard getuid() == 0, FileManager.default.isExecutableFile(atPath: "/bin/mount") else {
            throw XCTSkip("a tmpfs needs root and /bin/mount")
        }
        let mountPoint = folder.appendingPathComponent("tmpfs")
        try FileManager.default.createDirectory(at: mountPoint, withIntermediateDirectories: true)
        guard run("/bin/mount", ["-t", "tmpfs", "-o", "size=\(size)", "tmpfs", mountPoint.path]) == 0 else {
            throw XCTSkip("mount -t tmpfs failed (no CAP_SYS_ADMIN in this container?)")
        }
        addTeardownBlock { _ = self.run("/bin/umount", [mountPoint.path]) }
        return mountPoint
    }

    func run(_ tool: String, _ arguments: [String]) -> Int32 {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: tool)
        process.arguments = arguments
        process.standardError = FileHandle.nullDevice
        guard (try? process.run()) != nil else { return -1 }
        process.waitUntilExit()
        return process.terminationStatus
    }

    func testFullFolderIsRefusedBeforeTraining() throws {
        let tiny = try tinyFilesystem(size: "64k")
        let run = try trainer(options(), in: tiny)
        XCTAssertThrowsError(try run.checkOutputFolder()) { error in
            let text = "\(error)"
            XCTAssertTrue(text.contains("free"), text)
            XCTAssertTrue(text.contains(tiny.path), text)
        }
        XCTAssertEqual(try files(tiny), [])
    }

    func testReadOnlyFolderIsRefusedBeforeTraining() throws {
        let tiny = try tinyFilesystem(size: "1m")
        XCTAssertEqual(run("/bin/mount", ["-o", "remount,ro", tiny.path]), 0)
        let run = try trainer(options(), in: tiny)
        XCTAssertThrowsError(try run.checkOutputFolder()) { error in
            let text = "\(error)"
            XCTAssertTrue(text.contains("does not take files"), text)
            XCTAssertTrue(text.contains("Read-only file system"), text)
        }
    }

    /// The disk fills during the run (the preflight passed): the write that fails reports
    /// the file and the reason, the previous epoch's checkpoint stays whole, the epoch's
    /// metrics line is taken back and no temporary or half-written file remains.
    func testDiskFillingUpDuringTheRunLeavesNoPartialFiles() throws {
        let tiny = try tinyFilesystem(size: "4m")
        let run = try trainer(options(epochs: 2), in: tiny)
        try run.checkOutputFolder()
        try run.run(firstEpoch: 1)
        let checkpoint = try Data(contentsOf: run.checkpointURL)
        let metrics = try Data(contentsOf: run.metricsURL)
        // Fill the disk, then free room for a sample grid and a metrics line, not a checkpoint.
        let reserve = tiny.appendingPathComponent("reserve")
        XCTAssertTrue(FileManager.default.createFile(atPath: reserve.path, contents: Data(repeating: 0, count: 160 * 1024)))
        let filler = tiny.appendingPathComponent("filler")
        XCTAssertTrue(FileManager.default.createFile(atPath: filler.path, contents: nil))
        let handle = try FileHandle(forWritingTo: filler)
        while (try? handle.write(contentsOf: Data(repeating: 0, count: 4 * 1024))) != nil {}
        try? handle.close()
        try FileManager.default.removeItem(at: reserve)

        let model = try Zoo.make(options(epochs: 3))
        let (info, entries) = try Checkpoint.info(at: run.checkpointURL)
        try Checkpoint.load(entries, info: info, into: model, source: run.checkpointURL.path)
        let more = Trainer(model: model, trainSet: run.trainSet, testSet: run.testSet, directory: tiny)
        XCTAssertThrowsError(try more.checkOutputFolder(), "the preflight sees the full disk")
        XCTAssertThrowsError(try more.run(firstEpoch: 3)) { error in
            let text = "\(error)"
            XCTAssertTrue(text.contains("No space left on device"), text)
            XCTAssertTrue(text.contains("checkpoint.safetensors"), text)
            XCTAssertFalse(text.contains("\n"), text)
        }
        XCTAssertEqual(try Data(contentsOf: run.checkpointURL), checkpoint, "the last good checkpoint is intact")
        XCTAssertEqual(try Data(contentsOf: run.metricsURL), metrics, "epoch 3's metrics line is taken back")
        let left = try files(tiny)
        XCTAssertFalse(left.contains { $0.contains(".tmp-") }, "\(left)")
    }
}
