import ArgumentParser
import Foundation
import LatentData
import LatentExplore

/// `latent manifold`: a 2-D latent space decoded on a grid.
struct Manifold: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Decode a square grid of a 2-D latent space (the 2-D manifold of digits).",
        discussion: """
        For a model trained with --latent-dim 2: a --steps x --steps grid over [-X, X]^2, z1 growing \
        to the right, z2 growing upwards. Report 000 used 20 x 20 over [-5, 5]; report 002 a step \
        of 0.2 over (-5, 5) (--steps 51).

        Examples:
          latent manifold --checkpoint runs/vae-latent2/checkpoint.safetensors --output manifold.png
          latent manifold --checkpoint runs/vae-latent2 --range 5 --steps 20 --output manifold20.png
        """
    )

    @OptionGroup var common: CheckpointOptions
    @OptionGroup var labelOption: LabelOption

    @Option(help: ArgumentHelp("PNG file to write.", valueName: "FILE.png"))
    var output: String

    @Option(help: ArgumentHelp("Half the side of the square: codes in [-X, X] on both axes.", valueName: "X"))
    var range: Double = 3

    @Option(help: ArgumentHelp("Codes per side.", valueName: "N"))
    var steps = 20

    @OptionGroup var backendOptions: BackendOptions

    func validate() throws {
        guard range.isFinite, range > 0 else { throw ValidationError("--range must be a positive number, got \(range)") }
        guard (1...200).contains(steps) else { throw ValidationError("--steps must be 1...200, got \(steps)") }
        try PictureOutput.check(output, extensions: ["png"])
    }

    func run() throws {
        let loaded = try common.load(backendOptions)
        let model = try loaded.decoder(for: "manifold", dimensions: 2)
        let table = try Pictures.manifold(model, range: range, steps: steps, label: labelOption.label)
        let image = try PictureOutput.write(table, to: output, scale: common.scale)
        let what = "a \(steps) x \(steps) grid over [-\(String(format: "%g", range)), \(String(format: "%g", range))]^2 decoded by \(loaded.options.model.rawValue)"
        try PictureOutput.report(output, what: what, image: image, loaded: loaded, json: common.json,
                                 extra: ["rows": table.rows, "columns": table.columns])
    }
}
