// Fuzz target: the config/JSON readers. A run's training options come back from JSON on
// --resume (the checkpoint's `latent_config` metadata), with the epoch and random state as
// strings beside them; `metrics.jsonl` is parsed line by line when a run resumes.
//
// Input layout: up to four fields separated by 0x00 bytes: latent_config, epoch, rng_seed,
// rng_counter (missing fields get valid values, so most inputs reach the JSON decoder).
// Promises checked: Checkpoint.info accepts or throws LatentError, and what it accepts
// passes TrainingOptions.validate; options that are accepted and small build their model
// and survive one training step and one evaluation on two images; truncateMetrics never
// crashes on the input as a metrics file and keeps only whole JSON lines.
import Foundation
import LatentCore
import LatentCPU
import LatentData
import LatentModels
import LatentNN

let backend = CPUBackend(threads: 1)

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzConfig(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let input = fuzzBytes(data, size)
    let fields = input.split(separator: 0, maxSplits: 3, omittingEmptySubsequences: false).map { String(decoding: $0, as: UTF8.self) }
    var metadata = ["format": Checkpoint.format, "epoch": "1", "rng_seed": "7", "rng_counter": "0", "latent_config": ""]
    for (key, value) in zip(["latent_config", "epoch", "rng_seed", "rng_counter"], fields) { metadata[key] = value }
    do {
        let info = try Checkpoint.info(metadata: metadata, source: "fuzz-input")
        do { try info.options.validate() } catch { violated("Checkpoint.info accepted options that do not validate: \(error)") }
        try trainBriefly(info.options)
    } catch is LatentError {
    } catch {
        violated("unexpected error type \(type(of: error)): \(error)")
    }
    metricsFile(input)
    return 0
}

/// Small models only: the fuzzer looks for crashes, not for out-of-memory on purpose-built
/// huge (but valid) sizes.
func trainBriefly(_ options: TrainingOptions) throws {
    guard options.hidden <= 256, options.depth <= 4, options.latentDim <= 64, options.codebookSize <= 256,
          options.codebookDim <= 64 else { return }
    var small = options
    small.batchSize = 2
    let model = try ModelCatalog.makeModel(small, backend: backend, random: RandomSource(seed: small.seed))
    var images = [Float](repeating: 0, count: 2 * 784)
    for index in images.indices where index % 7 == 0 { images[index] = 1 }
    let tensor = try Tensor(images, shape: [2, 1, 28, 28], on: backend)
    _ = try model.trainStep(images: tensor, labels: [3, 8])
    _ = try model.evaluate(images: tensor, labels: [3, 8])
}

func metricsFile(_ input: [UInt8]) {
    let folder = URL(fileURLWithPath: scratchPath("run"))
    try? FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(at: folder) }
    let metrics = folder.appendingPathComponent("metrics.jsonl")
    guard FileManager.default.createFile(atPath: metrics.path, contents: Data(input)) else { violated("cannot write scratch") }
    do {
        guard let model = dummyModel else { return }
        let empty = try Dataset(images: [], labels: [], rows: 28, cols: 28)
        let trainer = Trainer(model: model, trainSet: empty, testSet: empty, directory: folder)
        try trainer.truncateMetrics(after: 3)
        let kept = String(decoding: try Data(contentsOf: metrics), as: UTF8.self)
        for line in kept.split(separator: "\n") {
            guard let object = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any],
                  let epoch = object["epoch"] as? Int, epoch <= 3 else {
                violated("truncateMetrics kept a line it should have dropped: \(line.prefix(80))")
            }
        }
    } catch is LatentError {
    } catch {
        violated("unexpected error type \(type(of: error)): \(error)")
    }
}

nonisolated(unsafe) let dummyModel: (any GenerativeModel)? = {
    var options = ModelCatalog.descriptor(.vaeFC).defaults
    options.hidden = 8
    options.latentDim = 2
    options.depth = 1
    return try? ModelCatalog.makeModel(options, backend: backend, random: RandomSource(seed: 1))
}()
