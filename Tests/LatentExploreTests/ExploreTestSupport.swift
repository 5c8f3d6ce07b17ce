import Foundation
import LatentCore
import LatentCPU
import LatentData
import LatentExplore
import LatentModels
import LatentNN
import XCTest

/// Synthetic digits, tiny models and their checkpoints for the explore tests.
enum Explore {
    static let backend = CPUBackend(threads: 2)

    /// Blobby synthetic digits: a diamond whose position depends on the class (as the model
    /// tests' data), every class present in the first ten images.
    static func dataset(count: Int, seed: UInt64) throws -> Dataset {
        var generator = SplitMix64(seed: seed)
        var images = [UInt8](repeating: 0, count: count * 784)
        var labels = [UInt8](repeating: 0, count: count)
        for index in 0..<count {
            let label = index < 10 ? index : Int(generator.next() % 10)
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

    /// Real MNIST when `LATENT_TEST_MNIST` names its folder, else nil.
    static func realMNIST(limit: Int) -> (train: Dataset, test: Dataset)? {
        guard let folder = ProcessInfo.processInfo.environment["LATENT_TEST_MNIST"], !folder.isEmpty else { return nil }
        let locator = DatasetLocator(dataset: .mnist, dataDirectory: folder)
        guard let files = try? locator.locate(), let data = try? TrainingSession.loadData(files, limit: limit) else { return nil }
        return data
    }

    /// Small options for `kind`: tiny hidden layers where the architecture allows.
    static func options(_ kind: ModelKind, latent: Int? = nil) -> TrainingOptions {
        var options = ModelCatalog.descriptor(kind).defaults
        options.epochs = 1
        options.batchSize = 16
        options.seed = 5
        switch kind {
        case .vaeFC, .cvae, .ae, .designedLatent, .pcaDecoder:
            options.hidden = 32; options.depth = 2; options.latentDim = latent ?? 3
        case .vaeConv, .betaVAE:
            options.latentDim = latent ?? 4
        case .vqvae:
            options.codebookSize = 16; options.codebookDim = 4
        case .ganMLP, .dcgan:
            options.latentDim = latent ?? 8
        case .classifier:
            break
        }
        return options
    }

    /// A checkpoint of `kind` trained one epoch on 64 synthetic images, in a fresh folder.
    static func checkpoint(_ kind: ModelKind, latent: Int? = nil, test: XCTestCase) throws -> URL {
        let folder = try temporaryFolder(test)
        let session = try TrainingSession(options: options(kind, latent: latent), directory: folder, resume: false, backend: backend)
        try session.train(trainSet: try dataset(count: 64, seed: 1), testSet: try dataset(count: 20, seed: 2), observer: nil)
        return folder.appendingPathComponent("checkpoint.safetensors")
    }

    static func temporaryFolder(_ test: XCTestCase) throws -> URL {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("latent-explore-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        test.addTeardownBlock { try? FileManager.default.removeItem(at: url) }
        return url
    }
}
