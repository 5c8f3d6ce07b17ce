import ArgumentParser
import Foundation
import LatentData
import LatentExplore

/// `latent scatter`: codes of the test set coloured by class.
struct Scatter: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Plot the encoder's codes of the test set, coloured by class (PCA to 2-D above two dimensions).",
        discussion: """
        A 2-D code is plotted as it is; a longer one is projected on its two principal axes \
        (PCA of the codes, in Double, the axes titled with their share of the variance); a 1-D \
        code is plotted against its class, jittered. Needs a model with an encoder (ae, vae-fc, \
        cvae, vae-conv, beta-vae, pca-decoder).

        Examples:
          latent scatter --checkpoint runs/vae-latent2/checkpoint.safetensors --output codes.png
          latent scatter --checkpoint runs/ae --split train --limit 10000 --output ae-codes.png
        """
    )

    @OptionGroup var common: CheckpointOptions

    @Option(help: ArgumentHelp("PNG file to write.", valueName: "FILE.png"))
    var output: String

    @Option(help: ArgumentHelp("Which split to encode.", valueName: "train|test"))
    var split: DatasetSplit = .test

    @Option(help: ArgumentHelp("Encode only the first N images (default: all).", valueName: "N"))
    var limit: Int?

    @Option(help: ArgumentHelp("Width of the chart in pixels (--scale does not apply).", valueName: "N"))
    var width = 800

    @Option(help: ArgumentHelp("Height of the chart in pixels.", valueName: "N"))
    var height = 640

    @OptionGroup var backendOptions: BackendOptions
    @OptionGroup var datasetOptions: DatasetOptions

    func validate() throws {
        guard (300...8_000).contains(width), (240...8_000).contains(height) else {
            throw ValidationError("--width must be 300...8000 and --height 240...8000, got \(width) x \(height)")
        }
        if let limit, limit < 2 { throw ValidationError("--limit must be at least 2, got \(limit)") }
        try PictureOutput.check(output, extensions: ["png"])
    }

    func run() throws {
        let loaded = try common.load(backendOptions)
        let model = try loaded.encoder(for: "scatter")
        let (dataset, files) = try ExploreData.load(datasetOptions, for: loaded, split: split)
        var (chart, x, _, explained) = try Pictures.scatter(model, dataset: dataset, limit: limit, classNames: files.dataset.classNames)
        chart.width = width
        chart.height = height
        let image = chart.render()
        try PictureOutput.write(image, to: output)
        var what = "\(x.count) \(split) codes of \(loaded.options.model.rawValue) (\(model.codeSize)-D)"
        if let explained { what += String(format: ", PCA plane holds %.0f%% of the variance", explained * 100) }
        var extra: [String: Any] = ["points": x.count, "dimensions": model.codeSize]
        if let explained { extra["explained_variance"] = explained }
        try PictureOutput.report(output, what: what, image: image, loaded: loaded, json: common.json, extra: extra)
    }
}
