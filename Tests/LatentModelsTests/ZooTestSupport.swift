import Foundation
import LatentCore
import LatentCPU
import LatentData
import LatentModels
import LatentNN
import XCTest

/// Shared helpers of the model-zoo tests: small versions of every model and synthetic digits.
enum Zoo {
    static let backend = CPUBackend(threads: 2)

    /// The repository root (this file is Tests/LatentModelsTests/ZooTestSupport.swift).
    static let repositoryRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .deletingLastPathComponent().deletingLastPathComponent()

    /// The catalogue's defaults for `kind`, shrunk where the architecture allows so that
    /// debug-build tests stay quick; the reports' fixed layers keep their sizes.
    static func options(_ kind: ModelKind) -> TrainingOptions {
        var options = ModelCatalog.descriptor(kind).defaults
        options.batchSize = 8
        options.seed = 11
        switch kind {
        case .vaeFC, .cvae, .ae, .designedLatent:
            options.hidden = 32; options.depth = 2; options.latentDim = 3
        case .pcaDecoder:
            options.hidden = 32; options.depth = 2; options.latentDim = 3
        case .vaeConv, .betaVAE:
            options.latentDim = 4
        case .vqvae:
            options.codebookSize = 16; options.codebookDim = 4
        case .ganMLP, .dcgan:
            options.latentDim = 16
        case .classifier:
            break
        }
        return options
    }

    /// Blobby synthetic digits: a diamond whose position depends on the class, values in
    /// [0, 1] with some texture. (count x 784 floats, labels)
    static func digits(count: Int, seed: UInt64) -> (images: [Float], labels: [UInt8]) {
        var generator = SplitMix64(seed: seed)
        var images = [Float](repeating: 0, count: count * 784)
        var labels = [UInt8](repeating: 0, count: count)
        for index in 0..<count {
            let label = Int(generator.next() % 10)
            labels[index] = UInt8(label)
            let centre = 6 + 1.5 * Double(label)
            for row in 0..<28 {
                for col in 0..<28 {
                    let distance = abs(Double(row) - centre) + abs(Double(col) - (27 - centre))
                    if distance < 5 {
                        images[index * 784 + row * 28 + col] = Float(200 + Int(generator.next() % 55)) / 255
                    }
                }
            }
        }
        return (images, labels)
    }

    static func dataset(count: Int, seed: UInt64) throws -> Dataset {
        let (images, labels) = digits(count: count, seed: seed)
        return try Dataset(images: images.map { UInt8(($0 * 255).rounded()) }, labels: labels, rows: 28, cols: 28)
    }

    /// A batch (N, 1, 28, 28) in the model's pixel range, with labels.
    static func batch(for model: any GenerativeModel, count: Int, seed: UInt64) throws -> (images: Tensor, labels: [UInt8]) {
        var (values, labels) = digits(count: count, seed: seed)
        if model.pixelRange == .minusOneToOne { values = values.map { $0 * 2 - 1 } }
        return (try Tensor(values, shape: [count, 1, 28, 28], on: backend), labels)
    }

    /// A model built as the trainer builds it; models that need the training set get a
    /// synthetic one.
    static func make(_ options: TrainingOptions) throws -> any GenerativeModel {
        let model = try ModelCatalog.makeModel(options, backend: backend, random: RandomSource(seed: options.seed))
        if let needy = model as? NeedsTrainingData {
            try needy.prepare(with: try dataset(count: 64, seed: 99))
        }
        return model
    }

    static func make(_ kind: ModelKind) throws -> any GenerativeModel {
        try make(options(kind))
    }
}

/// Python with torch, for the PyTorch cross-checks: `$LATENT_PYTHON` or the `python3` on the
/// PATH; nil when it cannot import torch and numpy.
enum Python {
    static let command: [String]? = {
        let environment = ProcessInfo.processInfo.environment
        var candidates: [[String]] = [["/usr/bin/env", "python3"]]
        if let chosen = environment["LATENT_PYTHON"], !chosen.isEmpty { candidates.insert([chosen], at: 0) }
        for candidate in candidates {
            if (try? run(candidate + ["-c", "import torch, numpy"]).status) == 0 { return candidate }
        }
        return nil
    }()
    static var executable: String? { command?.first }

    /// Runs a process and returns its exit status and combined output.
    static func run(_ commandLine: [String]) throws -> (status: Int32, output: String) {
        guard let executable = commandLine.first else { throw XCTSkip("empty command") }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = Array(commandLine.dropFirst())
        process.currentDirectoryURL = Zoo.repositoryRoot
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = pipe
        try process.run()
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return (process.terminationStatus, String(decoding: data, as: UTF8.self))
    }

    static func script(_ name: String, _ arguments: [String]) throws -> (status: Int32, output: String) {
        guard let command else { throw XCTSkip("python3 with torch and numpy is not available") }
        let path = Zoo.repositoryRoot.appendingPathComponent("Benchmarks/pytorch/\(name)").path
        return try run(command + [path] + arguments)
    }
}

func temporaryDirectory(_ test: XCTestCase) throws -> URL {
    let url = FileManager.default.temporaryDirectory.appendingPathComponent("latent-zoo-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    test.addTeardownBlock { try? FileManager.default.removeItem(at: url) }
    return url
}

func maxDifference(_ a: [Float], _ b: [Float]) -> Float {
    guard a.count == b.count else { return .infinity }
    return zip(a, b).reduce(0) { max($0, abs($1.0 - $1.1)) }
}
