import ArgumentParser
import Foundation
import LatentData
import LatentExplore

/// `latent sweep`: a 1-D latent space decoded along a strip.
struct Sweep: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Decode evenly spaced codes of a 1-D latent space into one strip (wrapped into rows).",
        discussion: """
        For a model trained with --latent-dim 1: --steps codes from --from to --to (both included, \
        like numpy's linspace), left to right, wrapped every --columns images. Report 000 used 400 \
        codes over [-20, 20]; report 002 (-1.5, 1.5) in steps of 0.03 (100 codes).

        Examples:
          latent sweep --checkpoint runs/vae-latent1/checkpoint.safetensors --output strip.png
          latent sweep --checkpoint runs/vae-latent1 --from -20 --to 20 --steps 400 --output strip400.png
          latent sweep --checkpoint runs/vae-latent1 --from -1.5 --to 1.47 --steps 100 --columns 100 --output strip.png
        """
    )

    @OptionGroup var common: CheckpointOptions
    @OptionGroup var labelOption: LabelOption

    @Option(help: ArgumentHelp("PNG file to write.", valueName: "FILE.png"))
    var output: String

    @Option(parsing: .unconditional, help: ArgumentHelp("First code.", valueName: "X"))
    var from: Double = -3

    @Option(parsing: .unconditional, help: ArgumentHelp("Last code.", valueName: "Y"))
    var to: Double = 3

    @Option(help: ArgumentHelp("Number of codes.", valueName: "N"))
    var steps = 100

    @Option(help: ArgumentHelp("Images per row of the strip.", valueName: "N"))
    var columns = 20

    @OptionGroup var backendOptions: BackendOptions

    func validate() throws {
        guard from.isFinite, to.isFinite else { throw ValidationError("--from and --to must be finite numbers") }
        guard (1...10_000).contains(steps) else { throw ValidationError("--steps must be 1...10000, got \(steps)") }
        guard (1...10_000).contains(columns) else { throw ValidationError("--columns must be 1...10000, got \(columns)") }
        try PictureOutput.check(output, extensions: ["png"])
    }

    func run() throws {
        let loaded = try common.load(backendOptions)
        let model = try loaded.decoder(for: "sweep", dimensions: 1)
        let table = try Pictures.sweep(model, from: from, to: to, steps: steps, columns: columns, label: labelOption.label)
        let image = try PictureOutput.write(table, to: output, scale: common.scale)
        let what = "\(steps) codes from \(String(format: "%g", from)) to \(String(format: "%g", to)) decoded by \(loaded.options.model.rawValue) (\(table.rows) x \(table.columns))"
        try PictureOutput.report(output, what: what, image: image, loaded: loaded, json: common.json,
                                 extra: ["rows": table.rows, "columns": table.columns])
    }
}
