import Foundation
import LatentCore
import LatentCPU
import LatentData
import LatentModels
import LatentNN
import XCTest

/// Latent checkpoints load into Benchmarks/pytorch/models.py with strict names and give the
/// same outputs to 1e-4 (check_checkpoint.py). Skipped without python3 + torch.
final class PyTorchParityTests: XCTestCase {
    /// The dump check_checkpoint.py reads: the model's deterministic function on fixed inputs.
    func dump(_ model: any GenerativeModel, kind: ModelKind) throws -> (entries: [SafeTensors.Entry], function: String) {
        let count = 4
        let (images, labels) = try Zoo.batch(for: model, count: count, seed: 17)
        let labelEntry = SafeTensors.Entry(name: "labels", shape: [count], values: labels.map(Float.init))
        let imageEntry = SafeTensors.Entry(name: "input", shape: [count, 1, 28, 28], values: try images.toArray())
        func output(_ values: [Float], _ shape: [Int]) -> SafeTensors.Entry { .init(name: "output", shape: shape, values: values) }
        if let classifier = model as? Classifier {
            return ([imageEntry, output(try classifier.predict(images).flatMap { $0 }, [count, 10])], "classify")
        }
        if let model = model as? ReconstructingModel {
            return ([imageEntry, labelEntry, output(try model.reconstruct(images, labels: labels), [count, 1, 28, 28])], "reconstruct")
        }
        if let model = model as? LatentDecodingModel {
            let codes = try Tensor(zeros: [count, model.codeSize], on: Zoo.backend)
            try RandomSource(seed: 5).fillNormal(codes, mean: 0, std: 2)
            let input = SafeTensors.Entry(name: "input", shape: codes.shape, values: try codes.toArray())
            let function = model is GAN ? "generate" : "decode"
            return ([input, output(try model.decode(codes, labels: nil), [count, 1, 28, 28])], function)
        }
        throw XCTSkip("\(kind) has no deterministic function to compare")
    }

    func testCheckpointsLoadIntoPyTorchAndMatchOutputs() throws {
        guard Python.executable != nil else { throw XCTSkip("python3 with torch and numpy is not available") }
        let folder = try temporaryDirectory(self)
        var arguments: [String] = [], dumps: [String] = []
        var cases: [(ModelKind, (inout TrainingOptions) -> Void)] = ModelKind.allCases.map { ($0, { _ in }) }
        cases.append((.betaVAE, { $0.sharedBatchnorm = true }))
        cases.append((.vaeFC, { $0.batchnorm = true; $0.dropout = 0.1 }))
        for (index, (kind, adjust)) in cases.enumerated() {
            var options = Zoo.options(kind)
            adjust(&options)
            let model = try Zoo.make(options)
            let (images, labels) = try Zoo.batch(for: model, count: 8, seed: 3)
            // Train a little so weights and batch-norm statistics are not their initial values.
            for _ in 0..<2 { _ = try model.trainStep(images: images, labels: labels) }
            let checkpoint = folder.appendingPathComponent("\(index)-\(kind.rawValue).safetensors")
            try Checkpoint.save(model, epoch: 1, to: checkpoint)
            let (entries, function) = try dump(model, kind: kind)
            let dumpURL = folder.appendingPathComponent("\(index)-\(kind.rawValue)-dump.safetensors")
            try SafeTensors.write(entries, metadata: ["function": function], to: dumpURL)
            arguments.append(checkpoint.path)
            dumps.append(dumpURL.path)
        }
        let (status, output) = try Python.script("check_checkpoint.py", arguments + ["--dump"] + dumps)
        XCTAssertEqual(status, 0, output)
        let passed = output.split(separator: "\n").filter { $0.hasPrefix("ok") && $0.contains("max |PyTorch - Latent|") }
        XCTAssertEqual(passed.count, cases.count, output)
        XCTAssertFalse(output.contains("FAIL"), output)
        print(output)
    }

    /// A checkpoint that lacks a weight, or has one too many, fails the strict load.
    func testStrictLoadingRefusesMissingAndUnexpectedNames() throws {
        guard Python.executable != nil else { throw XCTSkip("python3 with torch and numpy is not available") }
        let folder = try temporaryDirectory(self)
        let model = try Zoo.make(.ae)
        let good = folder.appendingPathComponent("good.safetensors")
        try Checkpoint.save(model, epoch: 1, to: good)
        let (entries, metadata) = try SafeTensors.read(good)
        XCTAssertEqual(try Python.script("check_checkpoint.py", [good.path]).status, 0)

        let missing = folder.appendingPathComponent("missing.safetensors")
        try SafeTensors.write(entries.filter { $0.name != "decoder.0.bias" }, metadata: metadata, to: missing)
        let (status, output) = try Python.script("check_checkpoint.py", [missing.path])
        XCTAssertEqual(status, 1, output)
        XCTAssertTrue(output.contains("decoder.0.bias"), output)

        let extra = folder.appendingPathComponent("extra.safetensors")
        try SafeTensors.write(entries + [.init(name: "decoder.9.weight", shape: [1], values: [0])], metadata: metadata, to: extra)
        XCTAssertEqual(try Python.script("check_checkpoint.py", [extra.path]).status, 1)
    }
}
