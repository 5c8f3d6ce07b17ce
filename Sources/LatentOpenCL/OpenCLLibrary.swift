import COpenCL
import Foundation
import LatentCore

/// The OpenCL library, opened at run time (see COpenCL): a `latent` binary starts on a
/// machine without OpenCL and falls back to the CPU backend. `LATENT_OPENCL_LIBRARY`
/// names another library file (a test points it at a missing path).
public enum OpenCLLibrary {
    /// The path the loader opens: `LATENT_OPENCL_LIBRARY`, else the platform's default.
    public static var defaultPath: String {
        if let path = ProcessInfo.processInfo.environment["LATENT_OPENCL_LIBRARY"], !path.isEmpty { return path }
        return String(cString: latent_cl_default_path())
    }

    /// Opens `path` (default: `defaultPath`); returns why it could not, or nil when loaded.
    /// The first library that loads stays loaded for the process.
    static func load(path: String? = nil) -> String? {
        let path = path ?? defaultPath
        var message = [CChar](repeating: 0, count: 1024)
        let ok = message.withUnsafeMutableBufferPointer { buffer in
            latent_cl_load(path, buffer.baseAddress, buffer.count)
        }
        if ok == 1 { return nil }
        let reason = String(decoding: message.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        return "cannot load \(path) (\(reason))"
    }
}

/// Status checks and OpenCL error names.
enum CL {
    static func check(_ status: cl_int, _ what: @autoclosure () -> String) throws {
        guard status == CL_SUCCESS else {
            // GPU drivers allocate buffers when a kernel first uses them, so running out of
            // device memory shows up here, at a launch or a read.
            // CL_OUT_OF_RESOURCES is also a launch whose work-group needs more registers than there are.
            let hint = status == -5 ? "; the device ran out of memory or of resources for this launch, try a smaller --batch-size"
                : outOfMemory.contains(status) ? "; the device ran out of memory, try a smaller --batch-size" : ""
            throw LatentError.backend("OpenCL \(what()) failed: \(errorName(status))\(hint)")
        }
    }

    /// CL_MEM_OBJECT_ALLOCATION_FAILURE, CL_OUT_OF_RESOURCES, CL_OUT_OF_HOST_MEMORY.
    static let outOfMemory: Set<cl_int> = [-4, -5, -6]

    static func errorName(_ code: cl_int) -> String {
        let names: [cl_int: String] = [
            -1: "CL_DEVICE_NOT_FOUND", -2: "CL_DEVICE_NOT_AVAILABLE", -3: "CL_COMPILER_NOT_AVAILABLE",
            -4: "CL_MEM_OBJECT_ALLOCATION_FAILURE", -5: "CL_OUT_OF_RESOURCES", -6: "CL_OUT_OF_HOST_MEMORY",
            -7: "CL_PROFILING_INFO_NOT_AVAILABLE", -8: "CL_MEM_COPY_OVERLAP", -11: "CL_BUILD_PROGRAM_FAILURE",
            -30: "CL_INVALID_VALUE", -33: "CL_INVALID_DEVICE", -34: "CL_INVALID_CONTEXT",
            -36: "CL_INVALID_COMMAND_QUEUE", -38: "CL_INVALID_MEM_OBJECT", -42: "CL_INVALID_BINARY",
            -43: "CL_INVALID_BUILD_OPTIONS", -44: "CL_INVALID_PROGRAM", -45: "CL_INVALID_PROGRAM_EXECUTABLE",
            -46: "CL_INVALID_KERNEL_NAME", -48: "CL_INVALID_KERNEL", -49: "CL_INVALID_ARG_INDEX",
            -50: "CL_INVALID_ARG_VALUE", -51: "CL_INVALID_ARG_SIZE", -52: "CL_INVALID_KERNEL_ARGS",
            -53: "CL_INVALID_WORK_DIMENSION", -54: "CL_INVALID_WORK_GROUP_SIZE", -55: "CL_INVALID_WORK_ITEM_SIZE",
            -56: "CL_INVALID_GLOBAL_OFFSET", -61: "CL_INVALID_BUFFER_SIZE", -63: "CL_INVALID_GLOBAL_WORK_SIZE",
            -1001: "CL_PLATFORM_NOT_FOUND_KHR", LATENT_CL_NOT_LOADED: "OpenCL library not loaded",
        ]
        return "\(names[code] ?? "error") (\(code))"
    }
}
