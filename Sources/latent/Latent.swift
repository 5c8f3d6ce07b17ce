import ArgumentParser
import LatentCore

@main
struct Latent: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "latent",
        abstract: "Train, explore and benchmark generative models (AE, VAE, GAN) on the CPU or through OpenCL.",
        discussion: """
        Examples:
          latent info                          # version, backends, which one runs and why
          latent data show --count 64 --output grid.png
          latent bench ops --backend cpu       # SGEMM and conv speed on this machine
        """,
        version: LatentVersion.string,
        subcommands: [Info.self, Bench.self]
    )
}
