import ArgumentParser
import Foundation
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
        subcommands: [Info.self, Models.self, Train.self, DataCommand.self, Bench.self, Devices.self]
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
