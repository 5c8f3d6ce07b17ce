import ArgumentParser
import Foundation
import LatentData
import LatentExplore

/// `latent eval`: likelihoods of a VAE, accuracy of a classifier, or classifier-based
/// statistics of generated samples with their floor and ceiling.
struct Eval: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Evaluate a checkpoint on the test set (VAE likelihoods, classifier accuracy) or judge samples with a classifier.",
        discussion: """
        --checkpoint VAE (vae-fc, vae-conv, beta-vae, cvae): the test-set -ELBO per image with its \
        reconstruction and KL terms, the model's own objective (as metrics.jsonl's test_loss), and the \
        active latent units (Var_x E_q[z_d] > 0.01). A run trained with --binarize is evaluated on one \
        fixed binarisation of the test set (--binarize-seed) and its figures are nats; otherwise they are \
        the training objective, not a log-likelihood. --iw-samples K adds the importance-weighted bound \
        -log p(x) <= -logmeanexp_k [log p(x|z_k) + log p(z_k) - log q(z_k|x)] (K = 5000 is the usual \
        log-likelihood estimate), many samples per decoder pass, with progress on stderr.

        --checkpoint CLASSIFIER: test accuracy.

        --samples FILE.idx --classifier FILE: the Fréchet distance between the classifier's 128-d \
        penultimate features of the samples and of the test set (classifier FID), the share of samples \
        classified with max softmax > 0.9, and the entropy of the predicted-class histogram (nats, \
        ln 10 at most); the floor (the first 10000 training images) and the ceiling (10000 uniform-noise \
        images) are printed beside them.

        Examples:
          latent eval --checkpoint runs/vae-fc --iw-samples 5000
          latent eval --checkpoint runs/vae-conv --iw-samples 100 --limit 1000 --json
          latent eval --checkpoint runs/classifier
          latent sample --checkpoint runs/vae-fc --count 10000 --output s.idx && latent eval --samples s.idx --classifier runs/classifier
        """
    )

    @Option(help: ArgumentHelp("A VAE or classifier checkpoint (or its run folder) to evaluate on the test set.", valueName: "FILE"))
    var checkpoint: String?

    @Option(help: ArgumentHelp("Importance-weighted bound with K samples of z per image (VAEs).", valueName: "K"))
    var iwSamples: Int?

    @Option(help: ArgumentHelp("Generated images to judge: IDX3 bytes N x 28 x 28 (latent sample --output FILE.idx).", valueName: "FILE.idx"))
    var samples: String?

    @Option(help: ArgumentHelp("The classifier checkpoint that judges --samples.", valueName: "FILE"))
    var classifier: String?

    @Option(help: ArgumentHelp("Seed of the samples of z (and of the noise images).", valueName: "N"))
    var seed: UInt64 = 0

    @Option(help: ArgumentHelp("Evaluate only the first N test images.", valueName: "N"))
    var limit: Int?

    @Option(help: ArgumentHelp("Seed of the one binarisation of the test set (runs trained with --binarize).", valueName: "N"))
    var binarizeSeed: UInt64 = 0

    @Option(help: ArgumentHelp("(image, sample) rows per decoder pass (default 4096 for FC decoders, 256 for conv).", valueName: "N"))
    var rowsPerPass: Int?

    @Flag(help: "Print one JSON object instead of lines of text.")
    var json = false

    @Flag(help: "No progress line on stderr.")
    var quiet = false

    @OptionGroup var backendOptions: BackendOptions
    @OptionGroup var datasetOptions: DatasetOptions

    func validate() throws {
        switch (checkpoint, samples, classifier) {
        case (.some, nil, nil): break
        case (nil, .some, .some): break
        case (nil, .some, nil): throw ValidationError("--samples needs --classifier FILE (a classifier checkpoint)")
        case (nil, nil, .some): throw ValidationError("--classifier judges --samples FILE.idx; give both")
        case (nil, nil, nil): throw ValidationError("give --checkpoint FILE, or --samples FILE.idx with --classifier FILE")
        default: throw ValidationError("--checkpoint evaluates a model; --samples with --classifier judges images: give one or the other")
        }
        if let iwSamples {
            guard checkpoint != nil else { throw ValidationError("--iw-samples goes with --checkpoint (a VAE)") }
            guard (1...1_000_000).contains(iwSamples) else { throw ValidationError("--iw-samples must be 1...1000000, got \(iwSamples)") }
        }
        if let limit, limit < 1 { throw ValidationError("--limit must be at least 1, got \(limit)") }
        if let rowsPerPass, !(1...1_000_000).contains(rowsPerPass) { throw ValidationError("--rows-per-pass must be 1...1000000, got \(rowsPerPass)") }
        if let samples, !samples.lowercased().hasSuffix(".idx") { throw ValidationError("--samples must be an .idx file, got \(samples)") }
    }

    func run() throws {
        let (backend, _) = try backendOptions.makeBackend()
        if let samples, let classifier {
            let loaded = try LoadedModel.load(classifier, backend: backend)
            let pixels = try Self.readSamples(samples, limit: limit)
            let files = try ExploreData.files(datasetOptions, for: loaded)
            let report = try Evaluation.sampleQuality(loaded, samples: pixels, sampleName: "samples: \(samples)",
                                                      trainSet: try files.load(.train), testSet: try files.load(.test), seed: seed)
            try emit(report.json, lines: report.lines)
            return
        }
        guard let checkpoint else { return }
        let loaded = try LoadedModel.load(checkpoint, backend: backend)
        let (testSet, _) = try ExploreData.load(datasetOptions, for: loaded, split: .test)
        if loaded.options.model == .classifier {
            if iwSamples != nil { throw ExploreError("--iw-samples measures VAEs; \(loaded.source) is a classifier") }
            let report = try Evaluation.accuracy(loaded, testSet: testSet, limit: limit)
            try emit(report.json, lines: [report.line])
            return
        }
        let progress = ProgressLine(enabled: !quiet && iwSamples != nil, label: "IW bound, K = \(iwSamples ?? 1)")
        let report = try Evaluation.likelihood(loaded, testSet: testSet, iwSamples: iwSamples, seed: seed, limit: limit,
                                               binarizeSeed: binarizeSeed, rowsPerPass: rowsPerPass) { progress.update($0, $1) }
        progress.finish()
        try emit(report.json, lines: report.lines)
    }

    func emit(_ object: [String: Any], lines: [String]) throws {
        if json {
            let data = try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .withoutEscapingSlashes])
            print(String(decoding: data, as: UTF8.self))
        } else {
            for line in lines { print(line) }
        }
    }

    /// IDX3 unsigned bytes N x 28 x 28 as floats in [0, 1].
    static func readSamples(_ path: String, limit: Int?) throws -> [Float] {
        guard FileManager.default.fileExists(atPath: path) else { throw ExploreError("there is no samples file at \(path)") }
        let array: IDXArray
        do {
            array = try IDXFile.read(path)
        } catch {
            throw ExploreError("\(path) is not an IDX file: \(error)")
        }
        guard array.dimensions.count == 3, array.dimensions[1] == 28, array.dimensions[2] == 28, array.dimensions[0] >= 2 else {
            throw ExploreError("\(path) holds \(array.dimensions.map(String.init).joined(separator: " x ")) values; "
                               + "expected N x 28 x 28 images with N >= 2 (latent sample --output FILE.idx)")
        }
        let count = min(array.dimensions[0], limit ?? Int.max)
        return array.bytes.prefix(count * 784).map { Float($0) / 255 }
    }
}

/// `IW bound, K = 5000: 1200/10000 images, 31 s, about 227 s left` on stderr, rewritten
/// at most once a second.
final class ProgressLine {
    let enabled: Bool
    let label: String
    let start = Date()
    var last = Date.distantPast
    var shown = false

    init(enabled: Bool, label: String) {
        self.enabled = enabled
        self.label = label
    }

    func update(_ done: Int, _ total: Int) {
        guard enabled else { return }
        let now = Date()
        guard now.timeIntervalSince(last) >= 1 || done == total else { return }
        last = now
        let elapsed = now.timeIntervalSince(start)
        let left = done > 0 ? elapsed / Double(done) * Double(total - done) : 0
        let line = "\r\(label): \(done)/\(total) images, \(Int(elapsed)) s, about \(Int(left.rounded())) s left "
        FileHandle.standardError.write(Data(line.utf8))
        shown = true
    }

    func finish() {
        if shown { FileHandle.standardError.write(Data("\n".utf8)) }
    }
}
