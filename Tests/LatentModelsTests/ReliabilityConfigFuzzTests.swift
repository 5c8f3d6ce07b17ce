import Foundation
import LatentCore
import LatentCPU
import LatentData
@testable import LatentModels
import LatentNN
import XCTest

/// The config fuzz target's seeds (Fuzz/corpus/config) and every input a fuzzer flagged
/// (Fuzz/regressions/config), replayed as Fuzz/Targets/Config.swift runs them: fields
/// split at NUL bytes become a checkpoint's metadata (latent_config, epoch, rng_seed,
/// rng_counter); Checkpoint.info accepts only options that validate; accepted small
/// options build a model that takes a training step; the input as a metrics.jsonl goes
/// through truncateMetrics.
final class ReliabilityConfigFuzzTests: XCTestCase {
    static let fuzzFolder = Zoo.repositoryRoot.appendingPathComponent("Fuzz")

    func inputs() throws -> [(name: String, bytes: [UInt8])] {
        var result: [(String, [UInt8])] = []
        for folder in ["corpus", "regressions"] {
            let url = Self.fuzzFolder.appendingPathComponent(folder).appendingPathComponent("config")
            guard let names = try? FileManager.default.contentsOfDirectory(atPath: url.path) else { continue }
            for name in names.sorted() where !name.hasPrefix(".") {
                result.append(("\(folder)/\(name)", [UInt8](try Data(contentsOf: url.appendingPathComponent(name)))))
            }
        }
        return result
    }

    func testCorpusAndRegressions() throws {
        let all = try inputs()
        XCTAssertFalse(all.isEmpty, "the seed corpus is in the repository")
        var accepted = 0
        for (name, bytes) in all {
            let fields = bytes.split(separator: 0, maxSplits: 3, omittingEmptySubsequences: false)
                .map { String(decoding: $0, as: UTF8.self) }
            var metadata = ["format": Checkpoint.format, "epoch": "1", "rng_seed": "7", "rng_counter": "0", "latent_config": ""]
            for (key, value) in zip(["latent_config", "epoch", "rng_seed", "rng_counter"], fields) { metadata[key] = value }
            let info: Checkpoint.Info
            do {
                info = try Checkpoint.info(metadata: metadata, source: name)
            } catch is LatentError {
                continue
            } catch {
                XCTFail("\(name): unexpected error type \(type(of: error))")
                continue
            }
            accepted += 1
            XCTAssertNoThrow(try info.options.validate(), name)
            var small = info.options
            guard small.hidden <= 256, small.depth <= 4, small.latentDim <= 64, small.codebookSize <= 256, small.codebookDim <= 64 else { continue }
            small.batchSize = 2
            do {
                let model = try Zoo.make(small)
                let (images, labels) = try Zoo.batch(for: model, count: 2, seed: 1)
                _ = try model.trainStep(images: images, labels: labels)
            } catch is LatentError {
            }
            try checkMetrics(bytes, name)
        }
        XCTAssertGreaterThan(accepted, 0, "some seeds are valid configurations")
    }

    func checkMetrics(_ bytes: [UInt8], _ name: String) throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("latent-metrics-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        let empty = try Dataset(images: [], labels: [], rows: 28, cols: 28)
        let trainer = Trainer(model: try Zoo.make(Zoo.options(.vaeFC)), trainSet: empty, testSet: empty, directory: folder)
        try Data(bytes).write(to: trainer.metricsURL)
        try trainer.truncateMetrics(after: 3)
        for line in String(decoding: try Data(contentsOf: trainer.metricsURL), as: UTF8.self).split(separator: "\n") {
            let object = try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any]
            XCTAssertLessThanOrEqual(object?["epoch"] as? Int ?? .max, 3, name)
        }
    }

    /// truncateMetrics keeps whole lines of epochs up to the checkpoint's, drops the rest
    /// (a half line left by a kill, lines of later epochs, junk).
    func testTruncateMetricsKeepsOnlyWholeLinesOfSavedEpochs() throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("latent-metrics-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        let empty = try Dataset(images: [], labels: [], rows: 28, cols: 28)
        let trainer = Trainer(model: try Zoo.make(Zoo.options(.vaeFC)), trainSet: empty, testSet: empty, directory: folder)
        // An invalid UTF-8 byte (0xFF) on a line of its own, a later epoch, a half line.
        let text = Array("{\"epoch\": 1, \"train_loss\": 3}\n".utf8) + [0xFF] + Array("garbage\n{\"epoch\": 2}\n{\"epoch\": 3}\n{\"epoch\": 4, \"tra".utf8)
        try Data(text).write(to: trainer.metricsURL)
        try trainer.truncateMetrics(after: 2)
        XCTAssertEqual(try String(contentsOf: trainer.metricsURL, encoding: .utf8), "{\"epoch\": 1, \"train_loss\": 3}\n{\"epoch\": 2}\n")
    }
}
