import ArgumentParser
import Foundation
import LatentData
import LatentExplore

/// `latent denoise`: noisy test images over their reconstructions.
struct Denoise: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Add salt-and-pepper noise to test images and show them over the model's reconstructions.",
        discussion: """
        Each pixel of the chosen test images turns black or white with probability --noise (the \
        noise of `latent train --noise`, report 004); rows come in pairs, the noisy images over \
        what the model reconstructs from them.

        Examples:
          latent denoise --checkpoint runs/vae-conv/checkpoint.safetensors --noise 0.1 --output denoise.png
          latent denoise --checkpoint runs/ae --noise 0.2 --count 32 --columns 16 --output ae-denoise.png
        """
    )

    @OptionGroup var common: CheckpointOptions

    @Option(help: ArgumentHelp("PNG file to write.", valueName: "FILE.png"))
    var output: String

    @Option(help: ArgumentHelp("Fraction of pixels turned black or white.", valueName: "P"))
    var noise = 0.1

    @Option(help: ArgumentHelp("Number of images.", valueName: "N"))
    var count = 16

    @Option(help: ArgumentHelp("Index of the first test image.", valueName: "N"))
    var start = 0

    @Option(help: ArgumentHelp("Images per row.", valueName: "N"))
    var columns = 8

    @OptionGroup var backendOptions: BackendOptions
    @OptionGroup var datasetOptions: DatasetOptions

    func validate() throws {
        guard noise.isFinite, (0...1).contains(noise) else { throw ValidationError("--noise must be a fraction in [0, 1], got \(noise)") }
        guard (1...10_000).contains(count) else { throw ValidationError("--count must be 1...10000, got \(count)") }
        guard (1...1_000).contains(columns) else { throw ValidationError("--columns must be 1...1000, got \(columns)") }
        guard start >= 0 else { throw ValidationError("--start must be >= 0, got \(start)") }
        try PictureOutput.check(output, extensions: ["png"])
    }

    func run() throws {
        let loaded = try common.load(backendOptions)
        let model = try loaded.reconstructor(for: "denoise")
        let (dataset, _) = try ExploreData.load(datasetOptions, for: loaded, split: .test)
        guard start < dataset.count else { throw ExploreError("--start \(start) is past the \(dataset.count) test images") }
        let indices = Array(start..<min(dataset.count, start + count))
        let result = try Pictures.reconstructions(model, dataset: dataset, indices: indices, columns: columns,
                                                  noise: noise, seed: common.seed)
        let image = try PictureOutput.write(result.table, to: output, scale: common.scale)
        let what = "\(indices.count) test images with \(String(format: "%g", noise * 100)) % salt-and-pepper noise over their reconstructions by \(loaded.options.model.rawValue)"
        try PictureOutput.report(output, what: what, image: image, loaded: loaded, json: common.json,
                                 extra: ["rows": result.table.rows, "columns": result.table.columns])
    }
}
