import Foundation
import LatentCore
import LatentCPU
import LatentData
@testable import LatentModels
import LatentNN
import XCTest

/// Every model of the zoo, the VAE family included, on the CPU backend with tiny batches.
final class ModelZooTests: XCTestCase {
    func testEveryModelTrainsOneStepAndTouchesEveryParameter() throws {
        for kind in ModelKind.allCases {
            let model = try Zoo.make(kind)
            let (images, labels) = try Zoo.batch(for: model, count: 6, seed: 5)
            let parameters = model.root.namedParameters()
            XCTAssertFalse(parameters.isEmpty, "\(kind)")
            let before = try parameters.map { try $0.parameter.value.toArray() }
            let terms = try model.trainStep(images: images, labels: labels)
            XCTAssertEqual(terms.count, model.lossTermNames.count, "\(kind): one tensor per term")
            for (name, term) in zip(model.lossTermNames, terms) {
                XCTAssertEqual(term.shape, [1], "\(kind) \(name)")
                let value = try term.scalar()
                XCTAssertTrue(value.isFinite, "\(kind) \(name) = \(value)")
            }
            for ((name, parameter), old) in zip(parameters, before) {
                let gradient = try parameter.gradient.toArray()
                XCTAssertTrue(gradient.allSatisfy(\.isFinite), "\(kind) \(name): non-finite gradient")
                XCTAssertTrue(gradient.contains { $0 != 0 }, "\(kind) \(name): no gradient")
                XCTAssertNotEqual(try parameter.value.toArray(), old, "\(kind) \(name): not updated")
            }
            let evaluated = try model.evaluate(images: images, labels: labels)
            XCTAssertEqual(evaluated.count, model.lossTermNames.count, "\(kind)")
            for (name, term) in zip(model.lossTermNames, evaluated) {
                XCTAssertTrue(try term.scalar().isFinite, "\(kind) eval \(name)")
            }
            try checkOutputs(model, kind: kind, images: images, labels: labels)
        }
    }

    /// Shapes and ranges of what the later commands read: samples, reconstructions, codes.
    func checkOutputs(_ model: any GenerativeModel, kind: ModelKind, images: Tensor, labels: [UInt8]) throws {
        let count = images.shape[0]
        if kind == .classifier {
            XCTAssertThrowsError(try model.generate(count: 4, seed: 1)) { error in
                guard case ModelError.doesNotGenerate = error else { return XCTFail("\(kind): \(error)") }
            }
        } else {
            let samples = try model.generate(count: 5, seed: 42)
            XCTAssertEqual(samples.count, 5 * 784, "\(kind) samples")
            XCTAssertTrue(samples.allSatisfy { $0 >= 0 && $0 <= 1 }, "\(kind): samples outside [0, 1]")
            XCTAssertEqual(try model.generate(count: 5, seed: 42), samples, "\(kind): the same seed gives the same samples")
            XCTAssertNotEqual(try model.generate(count: 5, seed: 43), samples, "\(kind): another seed, other samples")
        }
        if let model = model as? ReconstructingModel {
            let output = try model.reconstruct(images, labels: labels)
            XCTAssertEqual(output.count, count * 784, "\(kind) reconstruction")
            XCTAssertTrue(output.allSatisfy { $0 >= 0 && $0 <= 1 }, "\(kind) reconstruction range")
        }
        if let model = model as? LatentEncodingModel {
            let codes = try model.encodeMeans(images, labels: labels)
            XCTAssertEqual(codes.count, count * model.codeSize, "\(kind) codes")
            let decoded = try model.decode(try Tensor(codes, shape: [count, model.codeSize], on: Zoo.backend), labels: labels)
            XCTAssertEqual(decoded.count, count * 784, "\(kind) decoded")
        }
        if let model = model as? LatentDecodingModel {
            let codes = try Tensor(zeros: [3, model.codeSize], on: Zoo.backend)
            XCTAssertEqual(try model.decode(codes, labels: nil).count, 3 * 784, "\(kind) decode")
        }
        if let classifier = model as? Classifier {
            let probabilities = try classifier.predict(images)
            XCTAssertEqual(probabilities.count, count)
            for row in probabilities {
                XCTAssertEqual(row.count, 10)
                XCTAssertEqual(row.reduce(0, +), 1, accuracy: 1e-5)
            }
            XCTAssertEqual(try classifier.features(images).count, count * 128)
        }
    }

    /// A few steps on one fixed batch lower every non-adversarial objective.
    func testFewStepsOnAFixedBatchReduceTheLoss() throws {
        for kind in ModelKind.allCases where kind != .ganMLP && kind != .dcgan {
            let model = try Zoo.make(kind)
            let (images, labels) = try Zoo.batch(for: model, count: 6, seed: 6)
            var losses: [Float] = []
            for _ in 0..<8 {
                losses.append(try model.trainStep(images: images, labels: labels)[0].scalar())
            }
            let first = losses[0], last = try model.evaluate(images: images, labels: labels)[0].scalar()
            let lastTrain = losses[losses.count - 1]
            XCTAssertLessThan(min(last, lastTrain), first, "\(kind): \(losses)")
            XCTAssertLessThan(lastTrain, first, "\(kind): \(losses)")
        }
    }

    /// The names the checkpoint writes: PyTorch's state_dict names of the equivalent modules.
    func testStateDictNames() throws {
        func names(_ kind: ModelKind, _ adjust: (inout TrainingOptions) -> Void = { _ in }) throws -> [String] {
            var options = ModelCatalog.descriptor(kind).defaults
            adjust(&options)
            let model = try ModelCatalog.makeModel(options, backend: Zoo.backend, random: RandomSource(seed: 1))
            return model.root.stateDict().map(\.name)
        }
        XCTAssertEqual(try names(.ae) { $0.depth = 1 }, [
            "encoder.1.weight", "encoder.1.bias", "encoder.3.weight", "encoder.3.bias",
            "decoder.0.weight", "decoder.0.bias", "decoder.2.weight", "decoder.2.bias",
        ])
        XCTAssertEqual(try names(.vqvae), [
            "encoder.0.weight", "encoder.0.bias", "encoder.2.weight", "encoder.2.bias", "encoder.4.weight", "encoder.4.bias",
            "codebook.weight", "codebook.usage",
            "decoder.0.weight", "decoder.0.bias", "decoder.2.weight", "decoder.2.bias", "decoder.4.weight", "decoder.4.bias",
        ])
        let batchNorm = { (prefix: String) in
            ["\(prefix).weight", "\(prefix).bias", "\(prefix).running_mean", "\(prefix).running_var", "\(prefix).num_batches_tracked"]
        }
        XCTAssertEqual(try names(.ganMLP),
                       ["generator.0.weight", "generator.0.bias", "generator.2.weight", "generator.2.bias"]
                       + batchNorm("generator.3") + ["generator.5.weight", "generator.5.bias"] + batchNorm("generator.6")
                       + ["generator.8.weight", "generator.8.bias"] + batchNorm("generator.9")
                       + ["generator.11.weight", "generator.11.bias",
                          "discriminator.1.weight", "discriminator.1.bias", "discriminator.3.weight", "discriminator.3.bias",
                          "discriminator.5.weight", "discriminator.5.bias"])
        XCTAssertEqual(try names(.dcgan),
                       ["generator.0.weight", "generator.0.bias"] + batchNorm("generator.1")
                       + ["generator.4.weight", "generator.4.bias"] + batchNorm("generator.5")
                       + ["generator.7.weight", "generator.7.bias",
                          "discriminator.0.weight", "discriminator.0.bias", "discriminator.2.weight", "discriminator.2.bias"]
                       + batchNorm("discriminator.3") + ["discriminator.6.weight", "discriminator.6.bias"])
        XCTAssertEqual(try names(.designedLatent) { $0.depth = 1 },
                       ["decoder.0.weight", "decoder.0.bias", "decoder.2.weight", "decoder.2.bias"])
        XCTAssertEqual(try names(.pcaDecoder) { $0.depth = 1 },
                       ["pca.mean", "pca.components", "pca.std", "decoder.0.weight", "decoder.0.bias", "decoder.2.weight", "decoder.2.bias"])
        XCTAssertEqual(try names(.classifier), [
            "features.0.weight", "features.0.bias", "features.2.weight", "features.2.bias",
            "features.4.weight", "features.4.bias", "features.6.weight", "features.6.bias",
            "features.9.weight", "features.9.bias", "classifier.1.weight", "classifier.1.bias",
        ])
        XCTAssertEqual(try names(.classifier) { $0.dropout = 0 }, try names(.classifier), "names do not depend on --dropout")
    }

    /// Every model's names and shapes against models.py's `state_dict()`, with variants of
    /// the knobs that change the layer list (BatchNorm, dropout, depth, shared BN).
    func testStateDictMatchesModelsPy() throws {
        var cases: [(ModelKind, (inout TrainingOptions) -> Void)] = ModelKind.allCases.map { ($0, { _ in }) }
        cases.append((.vaeFC, { $0.batchnorm = true; $0.dropout = 0.2; $0.depth = 2; $0.latentDim = 2 }))
        cases.append((.cvae, { $0.depth = 4; $0.hidden = 64; $0.latentDim = 30 }))
        cases.append((.ae, { $0.batchnorm = true; $0.latentDim = 2 }))
        cases.append((.betaVAE, { $0.sharedBatchnorm = true }))
        cases.append((.vqvae, { $0.codebookSize = 64; $0.codebookDim = 8 }))
        cases.append((.pcaDecoder, { $0.latentDim = 10; $0.dropout = 0.1 }))
        var configurations: [TrainingOptions] = []
        for (kind, adjust) in cases {
            var options = ModelCatalog.descriptor(kind).defaults
            adjust(&options)
            configurations.append(options)
        }
        let folder = try temporaryDirectory(self)
        let casesFile = folder.appendingPathComponent("cases.json")
        try JSONEncoder().encode(configurations).write(to: casesFile)
        let (status, output) = try Python.script("models.py", ["--cases", casesFile.path])
        XCTAssertEqual(status, 0, output)
        let lines = output.split(separator: "\n").filter { $0.hasPrefix("{") }
        XCTAssertEqual(lines.count, configurations.count, output)
        for (options, line) in zip(configurations, lines) {
            let model = try ModelCatalog.makeModel(options, backend: Zoo.backend, random: RandomSource(seed: 1))
            let object = try JSONSerialization.jsonObject(with: Data(line.utf8))
            let python = try XCTUnwrap(object as? [String: [Int]])
            let swift = model.root.stateDict()
            XCTAssertEqual(Set(swift.map(\.name)), Set(python.keys), "\(options.model)")
            for (name, tensor) in swift {
                XCTAssertEqual(tensor.shape, python[name], "\(options.model) \(name)")
            }
        }
    }
}
