import ArgumentParser
import Foundation
import LatentCore
import LatentCPU

/// `--backend auto|cpu|opencl`.
enum BackendKind: String, ExpressibleByArgument, CaseIterable, Sendable {
    case auto
    case cpu
    case opencl
}

/// Options every command that runs ops shares.
struct BackendOptions: ParsableArguments {
    @Option(help: ArgumentHelp("Where ops run: auto (a GPU through OpenCL if there is one, else the SIMD CPU backend), cpu or opencl. Env: LATENT_BACKEND.", valueName: "auto|cpu|opencl"))
    var backend: BackendKind?

    @Option(help: ArgumentHelp("OpenCL device index from `latent devices`. Env: LATENT_OPENCL_DEVICE.", valueName: "N"))
    var device: Int?

    @Option(help: ArgumentHelp("Threads for the CPU backend (default: all cores).", valueName: "N"))
    var threads: Int?

    func validate() throws {
        if let threads, threads < 1 || threads > 1024 {
            throw ValidationError("--threads must be between 1 and 1024, got \(threads)")
        }
        if let device, device < 0 {
            throw ValidationError("--device must be >= 0, got \(device)")
        }
    }

    /// The requested kind: the flag, else `LATENT_BACKEND`, else auto.
    func requestedKind() throws -> BackendKind {
        if let backend { return backend }
        if let value = ProcessInfo.processInfo.environment["LATENT_BACKEND"], !value.isEmpty {
            guard let kind = BackendKind(rawValue: value.lowercased()) else {
                throw LatentError.invalidArgument("LATENT_BACKEND=\(value) is not one of auto, cpu, opencl")
            }
            return kind
        }
        return .auto
    }

    /// Starts the backend and says in one line which one and why.
    func makeBackend() throws -> (backend: any Backend, reason: String) {
        switch try requestedKind() {
        case .cpu:
            return (CPUBackend(threads: threads), "cpu: requested with --backend cpu")
        case .auto:
            return (CPUBackend(threads: threads), "cpu: auto found no OpenCL GPU (this build has no OpenCL backend yet)")
        case .opencl:
            throw LatentError.backend("the OpenCL backend is not part of this build yet; use --backend cpu")
        }
    }
}
