import Foundation
import LatentCore
import LatentCPU
import LatentData
import LatentModels
import LatentNN
import XCTest

final class TrainerTests: XCTestCase {
    /// Blobby synthetic digits: enough structure for a VAE to lower its loss.
    func syntheticDataset(count: Int, seed: UInt64) throws -> Dataset {
        var generator = SplitMix64(seed: seed)
        var images = [UInt8](repeating: 0, count: count * 784)
        var labels = [UInt8](repeating: 0, count: count)
        for index in 0..<count {
            let label = Int(generator.next() % 10)
            labels[index] = UInt8(label)
            let centre = 6 + 1.5 * Double(label)
            for row in 0..<28 {
                for col in 0..<28 {
                    let distance = abs(Double(row) - centre) + abs(Double(col) - (27 - centre))
                    images[index * 784 + row * 28 + col] = distance < 5 ? UInt8(200 + Int(generator.next() % 55)) : 0
                }
            }
        }
        return try Dataset(images: images, labels: labels, rows: 28, cols: 28)
    }

    func temporaryFolder() throws -> URL {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("latent-trainer-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        addTeardownBlock { try? FileManager.default.removeItem(at: url) }
        return url
    }

    func options(epochs: Int) -> TrainingOptions {
        var options = ModelCatalog.descriptor(.vaeFC).defaults
        options.epochs = epochs
        options.batchSize = 32
        options.hidden = 64
        options.latentDim = 4
        options.depth = 2
        options.seed = 3
        return options
    }

    func train(_ options: TrainingOptions, in folder: URL, resume: Bool, train: Dataset, test: Dataset) throws {
        let backend = CPUBackend(threads: 2)
        let url = folder.appendingPathComponent("checkpoint.safetensors")
        var firstEpoch = 1
        let model: any GenerativeModel
        if resume {
            let (info, entries) = try Checkpoint.info(at: url)
            var resumed = info.options
            resumed.epochs = options.epochs
            model = try ModelCatalog.makeModel(resumed, backend: backend, random: RandomSource(info.random))
            try Checkpoint.load(entries, info: info, into: model, source: url.path)
            firstEpoch = info.epoch + 1
        } else {
            model = try ModelCatalog.makeModel(options, backend: backend, random: RandomSource(seed: options.seed))
        }
        let trainer = Trainer(model: model, trainSet: train, testSet: test, directory: folder)
        try trainer.truncateMetrics(after: firstEpoch - 1)
        try trainer.run(firstEpoch: firstEpoch)
    }

    func testResumedRunEqualsUninterruptedRunAndLossFalls() throws {
        let trainSet = try syntheticDataset(count: 200, seed: 1)
        let testSet = try syntheticDataset(count: 50, seed: 2)
        let straight = try temporaryFolder()
        try train(options(epochs: 3), in: straight, resume: false, train: trainSet, test: testSet)
        let interrupted = try temporaryFolder()
        try train(options(epochs: 1), in: interrupted, resume: false, train: trainSet, test: testSet)
        try train(options(epochs: 3), in: interrupted, resume: true, train: trainSet, test: testSet)

        let a = try Data(contentsOf: straight.appendingPathComponent("checkpoint.safetensors"))
        let b = try Data(contentsOf: interrupted.appendingPathComponent("checkpoint.safetensors"))
        XCTAssertEqual(a, b, "a resumed run must end with the same weights, optimizer state and RNG state")
        let lines = try String(contentsOf: interrupted.appendingPathComponent("metrics.jsonl"), encoding: .utf8)
            .split(separator: "\n")
        XCTAssertEqual(lines.count, 3)
        let losses = try lines.map { line -> Double in
            let object = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
            return try XCTUnwrap(object["train_loss"] as? Double)
        }
        XCTAssertLessThan(losses[2], losses[0])
        XCTAssertTrue(FileManager.default.fileExists(atPath: interrupted.appendingPathComponent("samples-e003.png").path))
    }

    func testCheckpointOfAnotherModelIsRefusedWhole() throws {
        let folder = try temporaryFolder()
        let backend = CPUBackend(threads: 1)
        let source = try ModelCatalog.makeModel(options(epochs: 1), backend: backend, random: RandomSource(seed: 1))
        let url = folder.appendingPathComponent("checkpoint.safetensors")
        try Checkpoint.save(source, epoch: 1, to: url)
        var other = options(epochs: 1)
        other.hidden = 32
        let target = try ModelCatalog.makeModel(other, backend: backend, random: RandomSource(seed: 2))
        let before = try target.root.stateDict().map { try $0.tensor.toArray() }
        let (info, entries) = try Checkpoint.info(at: url)
        XCTAssertThrowsError(try Checkpoint.load(entries, info: info, into: target, source: url.path)) { error in
            XCTAssertTrue("\(error)".contains("shape"), "\(error)")
        }
        let after = try target.root.stateDict().map { try $0.tensor.toArray() }
        XCTAssertEqual(before, after, "nothing may be loaded half-way")
    }
}
