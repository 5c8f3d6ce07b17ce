import ArgumentParser
import Foundation
import LatentCore
import LatentCPU
import LatentOpenCL

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

    @Flag(help: ArgumentHelp("Sum in double precision in one fixed order (GEMM, convolutions, batch norm, losses), so that the CPU and OpenCL backends and any thread count give the same numbers to the bit; several times slower. OpenCL needs a device with doubles. Env: LATENT_REPRODUCIBLE=1."))
    var reproducible = false

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

    /// `--reproducible`, or `LATENT_REPRODUCIBLE` set to 1, true or yes.
    func requestedReproducible() throws -> Bool {
        if reproducible { return true }
        guard let value = ProcessInfo.processInfo.environment["LATENT_REPRODUCIBLE"], !value.isEmpty else { return false }
        switch value.lowercased() {
        case "1", "true", "yes": return true
        case "0", "false", "no": return false
        default: throw LatentError.invalidArgument("LATENT_REPRODUCIBLE=\(value) is not one of 1, 0, true, false, yes, no")
        }
    }

    /// The requested OpenCL device index: `--device`, else `LATENT_OPENCL_DEVICE`, else nil.
    func requestedDevice() throws -> Int? {
        if let device { return device }
        if let value = ProcessInfo.processInfo.environment["LATENT_OPENCL_DEVICE"], !value.isEmpty {
            guard let index = Int(value), index >= 0 else {
                throw LatentError.invalidArgument("LATENT_OPENCL_DEVICE=\(value) is not a device index (see `latent devices`)")
            }
            return index
        }
        return nil
    }

    /// Starts the backend and says in one line which one and why.
    ///
    /// - `cpu`: the SIMD CPU backend.
    /// - `auto`: an OpenCL GPU when a platform offers one (`--device N` if that is a GPU),
    ///   else the CPU backend, with the reason OpenCL was not taken.
    /// - `opencl`: device `--device N` (default 0, PoCL on a machine without a GPU); an
    ///   error when OpenCL is unavailable or there is no such device.
    func makeBackend() throws -> (backend: any Backend, reason: String) {
        let made = try makeBackendOfKind()
        return (made.backend, made.reason + (made.backend.reproducible ? "; reproducible sums (double precision, fixed order)" : ""))
    }

    private func makeBackendOfKind() throws -> (backend: any Backend, reason: String) {
        let deviceIndex = try requestedDevice()
        let reproducible = try requestedReproducible()
        func cpu() -> CPUBackend { CPUBackend(threads: threads, reproducible: reproducible) }
        switch try requestedKind() {
        case .cpu:
            return (cpu(), "cpu: requested with --backend cpu")
        case .auto:
            let found = OpenCLDiscovery.discover()
            let candidate: OpenCLDeviceInfo?
            let why: String
            if let problem = found.problem {
                candidate = nil
                why = problem
            } else if let deviceIndex {
                if found.devices.indices.contains(deviceIndex) {
                    let chosen = found.devices[deviceIndex]
                    candidate = chosen.kind == .gpu ? chosen : nil
                    why = "OpenCL device \(deviceIndex) (\(chosen.name)) is a \(chosen.kind.rawValue) device, not a GPU; --backend opencl runs it"
                } else {
                    candidate = nil
                    why = "there is no OpenCL device \(deviceIndex) (`latent devices` lists \(found.devices.count))"
                }
            } else {
                candidate = found.firstGPU
                why = "OpenCL offers no GPU, only " + Self.deviceSummary(found.devices) + "; --backend opencl runs those"
            }
            if let gpu = candidate {
                do {
                    let backend = try OpenCLBackend(device: gpu, reproducible: reproducible)
                    return (backend, "opencl: auto chose GPU \(gpu.index), \(gpu.name)")
                } catch {
                    return (cpu(), "cpu: auto found GPU \(gpu.index) (\(gpu.name)) but it did not start: \(error)")
                }
            }
            return (cpu(), "cpu: auto found no OpenCL GPU (\(why))")
        case .opencl:
            let found = OpenCLDiscovery.discover()
            if let problem = found.problem {
                throw LatentError.backend("--backend opencl: \(problem); use --backend cpu or auto")
            }
            let index = deviceIndex ?? 0
            guard found.devices.indices.contains(index) else {
                throw LatentError.invalidArgument("there is no OpenCL device \(index); `latent devices` lists \(found.devices.count) (0...\(found.devices.count - 1))")
            }
            let chosen = found.devices[index]
            let backend = try OpenCLBackend(device: chosen, reproducible: reproducible)
            let source = deviceIndex == nil ? "the first device" : "device \(index)"
            return (backend, "opencl: requested with --backend opencl, \(source): \(chosen.kind.rawValue) \(chosen.name)")
        }
    }

    /// `2 devices: 0 CPU pthread-..., 1 ...` for the reasons above.
    static func deviceSummary(_ devices: [OpenCLDeviceInfo]) -> String {
        devices.map { "device \($0.index): \($0.kind.rawValue) \($0.name)" }.joined(separator: ", ")
    }

    /// One line for `latent info`: the OpenCL devices found, or why there are none.
    static func openCLSummary() -> String {
        let found = OpenCLDiscovery.discover()
        if let problem = found.problem { return problem }
        return "\(found.devices.count) device(s): " + deviceSummary(found.devices)
    }
}
