import ArgumentParser
import Foundation
import LatentData
import LatentExplore

/// `latent sample`: random samples of a trained model as a PNG grid or IDX bytes.
struct Sample: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Draw samples from a checkpoint: a PNG grid, or N x 28 x 28 IDX bytes for evaluation.",
        discussion: """
        VAEs decode z ~ N(0, I), GANs G(z), the VQ-VAE decodes code maps drawn from its codebook \
        usage, the PCA decoder codes scaled by each component's spread, the designed latent space \
        class vectors plus noise (cvae and designed-latent cycle the classes 0...9, or draw --label K). \
        A .idx output holds IDX3 unsigned bytes, N x 28 x 28, 0..255 (10,000 samples are drawn in \
        batches of 500).

        Examples:
          latent sample --checkpoint runs/vae-fc/checkpoint.safetensors --count 64 --output samples.png
          latent sample --checkpoint runs/cvae --count 16 --label 7 --output sevens.png
          latent sample --checkpoint runs/vae-conv --count 10000 --output samples.idx
        """
    )

    @OptionGroup var common: CheckpointOptions
    @OptionGroup var labelOption: LabelOption

    @Option(help: ArgumentHelp("Number of samples.", valueName: "N"))
    var count = 64

    @Option(help: ArgumentHelp("File to write: a PNG grid or IDX bytes.", valueName: "FILE.png|FILE.idx"))
    var output: String

    @Option(help: ArgumentHelp("Images per row of the PNG grid.", valueName: "N"))
    var columns = 8

    @OptionGroup var backendOptions: BackendOptions

    var isIDX: Bool { output.lowercased().hasSuffix(".idx") }

    func validate() throws {
        guard (1...100_000).contains(count) else { throw ValidationError("--count must be 1...100000, got \(count)") }
        guard (1...1_000).contains(columns) else { throw ValidationError("--columns must be 1...1000, got \(columns)") }
        try PictureOutput.check(output, extensions: ["png", "idx"])
        if !isIDX && count > 10_000 { throw ValidationError("a PNG grid takes at most 10000 samples; write --output FILE.idx for more") }
    }

    func run() throws {
        let loaded = try common.load(backendOptions)
        let model = loaded.model
        if isIDX {
            let images = try LatentOps.samples(model, count: count, seed: common.seed, label: labelOption.label)
            try PictureOutput.prepare(output)
            try IDXFile.write(IDXArray(dimensions: [count, 28, 28], bytes: LatentOps.bytes(images)), to: output)
            try PictureOutput.report(output, what: "\(count) samples of \(loaded.options.model.rawValue) as IDX bytes (\(count) x 28 x 28)",
                                     image: nil, loaded: loaded, json: common.json, extra: ["count": count])
            return
        }
        let table = try Pictures.samples(model, count: count, columns: columns, seed: common.seed, label: labelOption.label)
        let image = try PictureOutput.write(table, to: output, scale: common.scale)
        let what = "\(count) samples of \(loaded.options.model.rawValue)" + (labelOption.label.map { " of class \($0)" } ?? "")
            + " (\(table.rows) x \(table.columns))"
        try PictureOutput.report(output, what: what, image: image, loaded: loaded, json: common.json,
                                 extra: ["count": count, "rows": table.rows, "columns": table.columns])
    }
}
