import ArgumentParser
import Foundation
import LatentData
import LatentExplore
import LatentModels

/// `latent centroids`: class centroids of the codes decoded, then with growing noise.
struct Centroids: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Decode the per-class centroids of the encoder's codes, then the centroids plus growing noise.",
        discussion: """
        The training images (the first --limit of them) are encoded, the codes averaged per class \
        (using the labels), and the ten centroids decoded in the top row. Each further row adds \
        noise of one --noise level to every centroid: level times a standard normal draw (the same \
        draw on every row), in units of the codes' standard deviation per dimension unless \
        --absolute. Report 001: the AE's centroids blur under noise, the VAE's stay digits and \
        change shape. For designed-latent the centroids are its class vectors [k, ..., k].

        Examples:
          latent centroids --checkpoint runs/ae/checkpoint.safetensors --output ae-centroids.png
          latent centroids --checkpoint runs/vae-fc --noise 0.5,1,2,3 --output vae-centroids.png
          latent centroids --checkpoint runs/designed-latent --noise 1,2,4 --absolute --output designed.png
        """
    )

    @OptionGroup var common: CheckpointOptions

    @Option(help: ArgumentHelp("PNG file to write.", valueName: "FILE.png"))
    var output: String

    @Option(help: ArgumentHelp("Noise levels, one row each after the clean centroids.", valueName: "X,Y,Z"))
    var noise = NumberList([1, 2, 3, 4])

    @Flag(help: "Noise in absolute code units instead of the codes' per-dimension spread.")
    var absolute = false

    @Option(help: ArgumentHelp("Encode only the first N training images (default: all).", valueName: "N"))
    var limit: Int?

    @OptionGroup var backendOptions: BackendOptions
    @OptionGroup var datasetOptions: DatasetOptions

    func validate() throws {
        guard noise.values.count <= 100 else { throw ValidationError("--noise takes at most 100 levels") }
        if let limit, limit < 10 { throw ValidationError("--limit must be at least 10, got \(limit)") }
        try PictureOutput.check(output, extensions: ["png"])
    }

    func run() throws {
        let loaded = try common.load(backendOptions)
        let decoder = try loaded.decoder(for: "centroids")
        var dataset: Dataset?
        if !(decoder is DesignedLatent) {
            _ = try loaded.encoder(for: "centroids")
            dataset = try ExploreData.load(datasetOptions, for: loaded, split: .train).0
        }
        let centroids = try Pictures.centroids(decoder, dataset: dataset, limit: limit)
        let table = try Pictures.centroidRows(decoder, centroids: centroids, noise: noise.values, relative: !absolute, seed: common.seed)
        let image = try PictureOutput.write(table, to: output, scale: common.scale)
        let levels = ([0] + noise.values).map { String(format: "%g", $0) }.joined(separator: ", ")
        let what = "centroids of classes 0-9 by \(loaded.options.model.rawValue) with noise \(levels)"
            + (absolute ? "" : " (times the codes' spread)") + ", one row per level"
        try PictureOutput.report(output, what: what, image: image, loaded: loaded, json: common.json,
                                 extra: ["rows": table.rows, "columns": table.columns, "images_per_class": centroids.counts])
    }
}
