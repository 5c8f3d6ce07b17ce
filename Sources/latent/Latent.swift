import ArgumentParser
import Foundation
import LatentCore

@main
struct Latent: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "latent",
        abstract: "Train, explore and benchmark generative models (AE, VAE, GAN) on the CPU or through OpenCL.",
        discussion: """
        Every command has --help with more examples. One line each:
          latent info                                        # version, backends, which one runs and why
          latent devices                                     # OpenCL platforms and devices
          latent models                                      # the model zoo with each report's defaults
          latent train vae-fc --epochs 1                     # train; writes runs/vae-fc/
          latent data show --count 64 --output grid.png      # look at the dataset
          latent sample --checkpoint runs/vae-fc/checkpoint.safetensors --count 64 --output s.png
          latent reconstruct --checkpoint CKPT --count 16 --output r.png
          latent interpolate --checkpoint CKPT --output i.png --steps 10
          latent sweep --checkpoint CKPT --output strip.png --from -3 --to 3 --steps 20
          latent manifold --checkpoint CKPT --output m.png --range 3 --steps 20
          latent centroids --checkpoint CKPT --output c.png --noise 0,0.5,1,2
          latent scatter --checkpoint CKPT --output codes.png
          latent denoise --checkpoint CKPT --output d.png --noise 0.1
          latent eval --checkpoint runs/vae-fc --iw-samples 5000  # test -ELBO, IW bound in nats, active units
          latent compare runs/a runs/b --output table.md     # a table and loss curves of runs
          latent reproduce --list                            # the reports' experiments
          latent report runs/vae-fc                          # runs/vae-fc/report.html: one self-contained page
          latent bench ops --backend cpu                     # op speed and shares of peak
          latent bench train --backend cpu                   # training images/s per model
          latent --generate-completion-script bash           # shell completions
        """,
        version: LatentVersion.string,
        subcommands: [Info.self, Models.self, Train.self, DataCommand.self, Bench.self, Devices.self, Sample.self, Reconstruct.self, Interpolate.self, Sweep.self, Manifold.self, Centroids.self, Scatter.self, Denoise.self, Compare.self, Reproduce.self, Report.self, Eval.self]
    )

    /// CLI.md's exit codes: 0 success, 1 a failure the user can act on (one line on
    /// stderr), 2 bad usage. ArgumentParser's own default for usage errors is 64.
    static func main() {
        do {
            var command = try parseAsRoot()
            try command.run()
        } catch {
            let code = exitCode(for: error)
            if code == .validationFailure {
                FileHandle.standardError.write(Data((fullMessage(for: error) + "\n").utf8))
                Foundation.exit(2)
            }
            if code == .success || error is ExitCode || error is CleanExit {
                exit(withError: error)
            }
            FileHandle.standardError.write(Data("error: \(error)\n".utf8))
            Foundation.exit(1)
        }
    }
}
