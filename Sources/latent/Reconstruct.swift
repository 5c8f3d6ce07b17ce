import ArgumentParser
import Foundation
import LatentData
import LatentExplore

/// `latent reconstruct`: dataset images over their reconstructions.
struct Reconstruct: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Show images over their reconstructions (AE, the VAEs, VQ-VAE, PCA decoder).",
        discussion: """
        Rows come in pairs: N test images (from --start) in one row, the model's reconstructions \
        under them (the decoder applied to the encoder's mean, code or quantised code, in eval mode). \
        --dump also writes the inputs, outputs and labels as safetensors (tensors input, output, \
        labels; metadata function=reconstruct) for Benchmarks/pytorch/check_checkpoint.py.

        Examples:
          latent reconstruct --checkpoint runs/vae-fc/checkpoint.safetensors --count 16 --output recon.png
          latent reconstruct --checkpoint runs/ae --count 32 --columns 16 --start 100 --output ae-recon.png
          latent reconstruct --checkpoint runs/vae-conv --count 16 --output r.png --dump recon.safetensors
        """
    )

    @OptionGroup var common: CheckpointOptions

    @Option(help: ArgumentHelp("Number of images.", valueName: "N"))
    var count = 16

    @Option(help: ArgumentHelp("PNG file to write.", valueName: "FILE.png"))
    var output: String

    @Option(help: ArgumentHelp("Index of the first image.", valueName: "N"))
    var start = 0

    @Option(help: ArgumentHelp("Images per row.", valueName: "N"))
    var columns = 8

    @Option(help: ArgumentHelp("Which split the images come from.", valueName: "train|test"))
    var split: DatasetSplit = .test

    @Option(help: ArgumentHelp("Also write input, output and labels as safetensors.", valueName: "FILE.safetensors"))
    var dump: String?

    @OptionGroup var backendOptions: BackendOptions
    @OptionGroup var datasetOptions: DatasetOptions

    func validate() throws {
        guard (1...10_000).contains(count) else { throw ValidationError("--count must be 1...10000, got \(count)") }
        guard (1...1_000).contains(columns) else { throw ValidationError("--columns must be 1...1000, got \(columns)") }
        guard start >= 0 else { throw ValidationError("--start must be >= 0, got \(start)") }
        try PictureOutput.check(output, extensions: ["png"])
        if let dump { try PictureOutput.check(dump, extensions: ["safetensors"]) }
    }

    func run() throws {
        let loaded = try common.load(backendOptions)
        let model = try loaded.reconstructor(for: "reconstruct")
        let (dataset, _) = try ExploreData.load(datasetOptions, for: loaded, split: split)
        guard start < dataset.count else { throw ExploreError("--start \(start) is past the \(dataset.count) images of the \(split) split") }
        let indices = Array(start..<min(dataset.count, start + count))
        let result = try Pictures.reconstructions(model, dataset: dataset, indices: indices, columns: columns)
        let image = try PictureOutput.write(result.table, to: output, scale: common.scale)
        if let dump {
            try PictureOutput.prepare(dump)
            try result.writeDump(to: URL(fileURLWithPath: dump), model: loaded.options.model, checkpoint: loaded.source)
        }
        let what = "\(indices.count) \(split) images over their reconstructions by \(loaded.options.model.rawValue)"
            + (dump.map { "; tensors in \($0)" } ?? "")
        try PictureOutput.report(output, what: what, image: image, loaded: loaded, json: common.json,
                                 extra: ["count": indices.count, "rows": result.table.rows, "columns": result.table.columns])
    }
}
