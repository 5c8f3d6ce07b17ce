import ArgumentParser
import Foundation
import LatentData
import LatentExplore

/// `latent interpolate`: rows of decoded codes between pairs of test images.
struct Interpolate: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Decode straight lines in latent space between pairs of test images, one row per pair.",
        discussion: """
        Each row: a test image, --steps decodings of codes evenly spaced from its code to the \
        other image's (both ends included), the other image. Pairs are consecutive test images \
        of different classes from --start. Needs a model with an encoder (ae, vae-fc, cvae, \
        vae-conv, beta-vae, pca-decoder); the cvae decodes the first half with the first image's \
        class, the rest with the second's.

        Examples:
          latent interpolate --checkpoint runs/vae-fc/checkpoint.safetensors --output interpolation.png
          latent interpolate --checkpoint runs/vae-conv --pairs 4 --steps 16 --output morph.png
        """
    )

    @OptionGroup var common: CheckpointOptions

    @Option(help: ArgumentHelp("PNG file to write.", valueName: "FILE.png"))
    var output: String

    @Option(help: ArgumentHelp("Decoded images per row, both ends included.", valueName: "N"))
    var steps = 10

    @Option(help: ArgumentHelp("Number of pairs (rows).", valueName: "N"))
    var pairs = 8

    @Option(help: ArgumentHelp("Test image the first pair starts at.", valueName: "N"))
    var start = 0

    @OptionGroup var backendOptions: BackendOptions
    @OptionGroup var datasetOptions: DatasetOptions

    func validate() throws {
        guard (2...200).contains(steps) else { throw ValidationError("--steps must be 2...200, got \(steps)") }
        guard (1...200).contains(pairs) else { throw ValidationError("--pairs must be 1...200, got \(pairs)") }
        guard start >= 0 else { throw ValidationError("--start must be >= 0, got \(start)") }
        try PictureOutput.check(output, extensions: ["png"])
    }

    func run() throws {
        let loaded = try common.load(backendOptions)
        let model = try loaded.encoder(for: "interpolate")
        let (dataset, _) = try ExploreData.load(datasetOptions, for: loaded, split: .test)
        let chosen = try Pictures.interpolationPairs(dataset, count: pairs, start: start)
        let table = try Pictures.interpolation(model, dataset: dataset, pairs: chosen, steps: steps)
        let image = try PictureOutput.write(table, to: output, scale: common.scale)
        let what = "\(pairs) interpolations of \(steps) steps by \(loaded.options.model.rawValue), the test images at both ends"
        try PictureOutput.report(output, what: what, image: image, loaded: loaded, json: common.json,
                                 extra: ["rows": table.rows, "columns": table.columns])
    }
}
