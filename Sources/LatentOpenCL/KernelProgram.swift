import COpenCL
import Foundation
import LatentCore
import LatentKernels

/// The kernel files, one per op family, and how each is assembled for a build.
public enum KernelFile: String, Sendable, CaseIterable {
    case gemm = "gemm.cl"
    case conv = "conv.cl"
    case batchnorm = "batchnorm.cl"
    case elementwise = "elementwise.cl"
    case reduce = "reduce.cl"
    case loss = "loss.cl"
    case optim = "optim.cl"
    case random = "random.cl"
    /// Double-accumulating kernels of the reproducible mode (needs cl_khr_fp64).
    case reproducible = "reproducible.cl"

    /// Shared headers prepended to the file, in order.
    var headers: [String] {
        switch self {
        case .random, .elementwise: return ["common.clh", "philox.clh"]
        default: return ["common.clh"]
        }
    }

    /// Files whose arithmetic must match the CPU backend bit for bit need correctly rounded
    /// single-precision `/` and `sqrt` (OpenCL's default allows 2.5 and 3 ulp): Philox, the
    /// optimizers, and the activations, reparameterisation and loss gradients (sigmoid's and
    /// tanh's divisions, the KL gradient's 1 / std).
    var needsCorrectRounding: Bool { self == .random || self == .optim || self == .elementwise || self == .loss }
}

/// Where kernel sources come from: the copies embedded in the binary, or the folder named
/// by `LATENT_KERNEL_DIR` (to try a kernel change without rebuilding `latent`).
public enum KernelSourceStore {
    public static var overrideDirectory: String? {
        guard let dir = ProcessInfo.processInfo.environment["LATENT_KERNEL_DIR"], !dir.isEmpty else { return nil }
        return dir
    }

    /// The display name of a file in messages and `#line` markers: `Kernels/gemm.cl`, or the override's path.
    static func displayName(_ file: String) -> String {
        if let dir = overrideDirectory { return URL(fileURLWithPath: dir).appendingPathComponent(file).path }
        return "Kernels/" + file
    }

    static func text(_ file: String) throws -> String {
        if let dir = overrideDirectory {
            let path = URL(fileURLWithPath: dir).appendingPathComponent(file).path
            guard let data = FileManager.default.contents(atPath: path) else {
                throw LatentError.io("cannot read kernel source \(path) (LATENT_KERNEL_DIR=\(dir))")
            }
            return String(decoding: data, as: UTF8.self)
        }
        guard let text = KernelSources.files[file] else {
            throw LatentError.backend("kernel source \(file) is not embedded in this build")
        }
        return text
    }

    /// The text handed to the compiler: headers and file with `#line` markers, so that a
    /// build log names `Kernels/gemm.cl:42`, not a temporary file.
    static func assemble(_ file: KernelFile) throws -> String {
        var parts: [String] = []
        for name in file.headers + [file.rawValue] {
            parts.append("#line 1 \"\(displayName(name))\"\n" + (try text(name)) + "\n")
        }
        return parts.joined()
    }
}

/// A compiled program (process lifetime; shared by every backend on its device).
final class ProgramHandle: @unchecked Sendable {
    let program: cl_program
    init(_ program: cl_program) { self.program = program }
}

/// A context for one device plus its built programs, shared by every `OpenCLBackend` on
/// the device so that each program is built once per process (and loaded from the binary
/// cache after the first run).
final class DeviceContext: @unchecked Sendable {
    let device: OpenCLDeviceInfo
    let context: cl_context
    /// What Latent holds on the device, checked before each allocation.
    let memory: DeviceMemoryBudget
    private let lock = NSLock()
    private var programs: [String: ProgramHandle] = [:]

    private init(device: OpenCLDeviceInfo) throws {
        self.device = device
        memory = try DeviceMemoryBudget(device: device)
        var status: cl_int = 0
        var id: cl_device_id? = device.handle.id
        guard let context = latent_clCreateContext(nil, 1, &id, nil, nil, &status), status == CL_SUCCESS else {
            throw LatentError.backend("OpenCL could not create a context on \(device.name): \(CL.errorName(status))")
        }
        self.context = context
    }

    private static let registryLock = NSLock()
    nonisolated(unsafe) private static var registry: [Int: DeviceContext] = [:]

    /// The shared context of `device` (created on first use).
    static func shared(for device: OpenCLDeviceInfo) throws -> DeviceContext {
        registryLock.lock()
        defer { registryLock.unlock() }
        if let existing = registry[device.index] { return existing }
        let created = try DeviceContext(device: device)
        registry[device.index] = created
        return created
    }

    /// `file` built with `options`, from the binary cache when it holds a build for this
    /// source, these options, this device and driver; built from source otherwise.
    func program(_ file: KernelFile, options: String) throws -> ProgramHandle {
        let key = file.rawValue + "|" + options
        lock.lock()
        defer { lock.unlock() }
        if let program = programs[key] { return program }
        let source = try KernelSourceStore.assemble(file)
        let cacheKey = KernelBinaryCache.key(source: source, options: options, device: device)
        let program: cl_program
        if let cached = loadCached(cacheKey, options: options) {
            program = cached
        } else {
            program = try build(file, source: source, options: options)
            KernelBinaryCache.store(key: cacheKey, binary: binary(of: program))
        }
        let handle = ProgramHandle(program)
        programs[key] = handle
        return handle
    }

    /// Builds `source` (named `file` in messages); a failure reports the file, the options and the log.
    func build(_ file: KernelFile, source: String, options: String) throws -> cl_program {
        try build(name: KernelSourceStore.displayName(file.rawValue), source: source, options: options)
    }

    func build(name: String, source: String, options: String) throws -> cl_program {
        var status: cl_int = 0
        let created: cl_program? = source.withCString { text in
            var pointer: UnsafePointer<CChar>? = text
            var length = strlen(text)
            return latent_clCreateProgramWithSource(context, 1, &pointer, &length, &status)
        }
        guard let program = created, status == CL_SUCCESS else {
            throw LatentError.backend("OpenCL could not create a program from \(name): \(CL.errorName(status))")
        }
        var id: cl_device_id? = device.handle.id
        // PoCL's compiler also prints to stderr ("1 error generated."); that text is held
        // back while building, so a failure is the one line below, and passed on otherwise.
        let (buildStatus, compilerOutput) = StderrCapture.run { latent_clBuildProgram(program, 1, &id, options, nil, nil) }
        guard buildStatus == CL_SUCCESS else {
            let log = Self.namingOurLines(buildLog(program), source: source)
            _ = latent_clReleaseProgram(program)
            StderrCapture.pass(compilerOutput.split(separator: "\n").filter { line in
                !line.contains("generated.") && !log.contains(line.trimmingCharacters(in: .whitespaces))
            }.joined(separator: "\n"))
            throw LatentError.backend("OpenCL could not build \(name) for \(device.name) with options \"\(options)\" "
                + "(\(CL.errorName(buildStatus))); build log: \(Self.condensed(log))")
        }
        StderrCapture.pass(compilerOutput)
        return program
    }

    /// A build log on one line: its error lines, with the lines that point into our sources
    /// when no error line does (all lines when there are none), joined with " | " and cut at
    /// 2,000 characters.
    /// NVIDIA's "kernel, so overriding noinline" notes, one per kernel, are left out.
    static func condensed(_ log: String) -> String {
        let lines = log.split(whereSeparator: \.isNewline).map { $0.trimmingCharacters(in: .whitespaces) }
            .filter { !$0.isEmpty && !$0.contains("so overriding noinline attribute") }
        let isError = { (line: String) in
            (line.localizedCaseInsensitiveContains("error") || line.contains("fatal")) && !line.hasSuffix("generated.")
        }
        // A link error (NVIDIA's "ptxas fatal") names no line: keep the located warnings then.
        let errorsAreLocated = lines.contains { isError($0) && pointsIntoSource($0) }
        let errors = lines.filter { isError($0) || (!errorsAreLocated && pointsIntoSource($0)) }
        let text = (errors.isEmpty ? lines : errors).joined(separator: " | ")
        if text.isEmpty { return "(empty)" }
        return text.count > 2000 ? String(text.prefix(2000)) + " …" : text
    }

    /// Whether a log line starts with a location in a kernel file (`Kernels/gemm.cl:42:7: ...`).
    static func pointsIntoSource(_ line: String) -> Bool {
        let head = line.prefix { $0 != " " }
        for suffix in [".cl:", ".clh:"] {
            if let range = head.range(of: suffix), head[range.upperBound...].first?.isNumber == true { return true }
        }
        return false
    }

    /// NVIDIA's compiler ignores `#line` and names lines of the text it was given
    /// `<kernel>:LINE`; this puts our file and line there (from the `#line` markers that
    /// `KernelSourceStore.assemble` wrote), as PoCL's log has them.
    static func namingOurLines(_ log: String, source: String) -> String {
        guard log.contains("<kernel>:") else { return log }
        var markers: [(raw: Int, line: Int, file: String)] = []
        for (index, text) in source.split(separator: "\n", omittingEmptySubsequences: false).enumerated() where text.hasPrefix("#line ") {
            let parts = text.dropFirst(6).split(separator: " ", maxSplits: 1)
            guard parts.count == 2, let value = Int(parts[0]) else { continue }
            markers.append((index + 1, value, parts[1].trimmingCharacters(in: CharacterSet(charactersIn: "\"\r "))))
        }
        var result = ""
        var rest = Substring(log)
        while let range = rest.range(of: "<kernel>:") {
            result += rest[..<range.lowerBound]
            rest = rest[range.upperBound...]
            let digits = rest.prefix { $0.isNumber }
            guard let raw = Int(digits), let marker = markers.last(where: { $0.raw < raw }) else {
                result += "<kernel>:"
                continue
            }
            result += "\(marker.file):\(marker.line + raw - marker.raw - 1)"
            rest = rest.dropFirst(digits.count)
        }
        return result + rest
    }

    private func buildLog(_ program: cl_program) -> String {
        var size = 0
        let id = device.handle.id
        guard latent_clGetProgramBuildInfo(program, id, cl_program_build_info(CL_PROGRAM_BUILD_LOG), 0, nil, &size) == CL_SUCCESS,
              size > 0 else { return "(no log)" }
        var bytes = [CChar](repeating: 0, count: size)
        guard latent_clGetProgramBuildInfo(program, id, cl_program_build_info(CL_PROGRAM_BUILD_LOG), size, &bytes, nil) == CL_SUCCESS else {
            return "(no log)"
        }
        let log = cString(bytes)
        return log.isEmpty ? "(empty)" : log
    }

    private func binary(of program: cl_program) -> [UInt8]? {
        var size = 0
        guard latent_clGetProgramInfo(program, cl_program_info(CL_PROGRAM_BINARY_SIZES), MemoryLayout<Int>.size, &size, nil) == CL_SUCCESS,
              size > 0 else { return nil }
        var bytes = [UInt8](repeating: 0, count: size)
        let status = bytes.withUnsafeMutableBufferPointer { buffer -> cl_int in
            var pointer: UnsafeMutablePointer<UInt8>? = buffer.baseAddress
            return latent_clGetProgramInfo(program, cl_program_info(CL_PROGRAM_BINARIES),
                                           MemoryLayout<UnsafeMutablePointer<UInt8>?>.size, &pointer, nil)
        }
        return status == CL_SUCCESS ? bytes : nil
    }

    private func loadCached(_ key: String, options: String) -> cl_program? {
        guard let bytes = KernelBinaryCache.load(key: key) else { return nil }
        var status: cl_int = 0, binaryStatus: cl_int = 0
        var id: cl_device_id? = device.handle.id
        let created: cl_program? = bytes.withUnsafeBufferPointer { buffer in
            var pointer: UnsafePointer<UInt8>? = buffer.baseAddress
            var length = buffer.count
            return latent_clCreateProgramWithBinary(context, 1, &id, &length, &pointer, &binaryStatus, &status)
        }
        guard let program = created, status == CL_SUCCESS, binaryStatus == CL_SUCCESS else { return nil }
        guard latent_clBuildProgram(program, 1, &id, options, nil, nil) == CL_SUCCESS else {
            _ = latent_clReleaseProgram(program)
            return nil
        }
        return program
    }
}
