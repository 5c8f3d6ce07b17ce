import COpenCL
import Foundation
import LatentCore

/// One OpenCL device as `latent devices` lists it. `index` counts devices across all
/// platforms in the order the platforms report them; `--device N` selects by it.
public struct OpenCLDeviceInfo: Sendable, CustomStringConvertible {
    public enum Kind: String, Sendable {
        case gpu = "GPU"
        case cpu = "CPU"
        case accelerator = "accelerator"
        case other = "other"
    }

    public let index: Int
    public let platformName: String
    public let platformVersion: String
    public let name: String
    public let vendor: String
    public let version: String
    public let driverVersion: String
    public let kind: Kind
    public let computeUnits: Int
    public let clockMHz: Int
    public let globalMemoryBytes: UInt64
    /// The largest single buffer the device accepts (`CL_DEVICE_MAX_MEM_ALLOC_SIZE`).
    public let maxAllocationBytes: UInt64
    public let localMemoryBytes: UInt64
    /// Local memory that is on-chip (`CL_LOCAL`) rather than ordinary memory (`CL_GLOBAL`, PoCL).
    public let dedicatedLocalMemory: Bool
    public let maxWorkGroupSize: Int
    /// Work-items a work-group may have along each dimension (`CL_DEVICE_MAX_WORK_ITEM_SIZES`).
    public let maxWorkItemSizes: [Int]
    public internal(set) var hasFP64: Bool
    /// `-cl-fp32-correctly-rounded-divide-sqrt` is accepted.
    public let correctlyRoundedDivideSqrt: Bool
    /// Floats in one native vector register (`CL_DEVICE_NATIVE_VECTOR_WIDTH_FLOAT`): 16 on a
    /// CPU with AVX-512, 8 with AVX2; sizes the register blocks of CPU-class kernels.
    public let nativeFloatVectorWidth: Int
    let handle: DeviceHandle

    /// One line: `0: GPU  NVIDIA GeForce ... (NVIDIA CUDA, OpenCL 3.0 CUDA, driver 535.x), 46 CU, 8.0 GiB`.
    public var description: String {
        let gib = Double(globalMemoryBytes) / Double(1 << 30)
        return "\(index): \(kind.rawValue) \(name) [\(platformName); \(version); driver \(driverVersion)], "
            + "\(computeUnits) compute units, \(String(format: "%.1f", gib)) GiB, local memory "
            + (dedicatedLocalMemory ? "dedicated" : "global")
    }
}

/// A `cl_device_id` (valid for the life of the process).
struct DeviceHandle: @unchecked Sendable {
    let id: cl_device_id
    let platform: cl_platform_id
}

/// What discovery found: the devices, and when there are none, why OpenCL is unavailable.
public struct OpenCLDiscoveryResult: Sendable {
    public let devices: [OpenCLDeviceInfo]
    /// One line saying why no device is usable (nil when `devices` is not empty).
    public let problem: String?

    public var firstGPU: OpenCLDeviceInfo? { devices.first { $0.kind == .gpu } }
}

public enum OpenCLDiscovery {
    private static let cache = DiscoveryCache()

    /// Loads the library (`libraryPath`, default `OpenCLLibrary.defaultPath`) and lists
    /// every device of every platform. "No platform" (-1001) and "no device" (-1) mean
    /// OpenCL is unavailable, never an error. Cached per library path for the process.
    public static func discover(libraryPath: String? = nil) -> OpenCLDiscoveryResult {
        let path = libraryPath ?? OpenCLLibrary.defaultPath
        return cache.value(for: path) { scan(path: path) }
    }

    private static func scan(path: String) -> OpenCLDiscoveryResult {
        if let problem = OpenCLLibrary.load(path: path) {
            return OpenCLDiscoveryResult(devices: [], problem: "OpenCL is not available: \(problem)")
        }
        var platformCount: cl_uint = 0
        let status = latent_clGetPlatformIDs(0, nil, &platformCount)
        if status == LATENT_CL_PLATFORM_NOT_FOUND_KHR || (status == CL_SUCCESS && platformCount == 0) {
            return OpenCLDiscoveryResult(devices: [], problem: "OpenCL found no platform (no driver registered in /etc/OpenCL/vendors)" + poclHint())
        }
        guard status == CL_SUCCESS else {
            return OpenCLDiscoveryResult(devices: [], problem: "OpenCL platform query failed: \(CL.errorName(status))")
        }
        var platforms = [cl_platform_id?](repeating: nil, count: Int(platformCount))
        guard latent_clGetPlatformIDs(platformCount, &platforms, nil) == CL_SUCCESS else {
            return OpenCLDiscoveryResult(devices: [], problem: "OpenCL platform query failed")
        }
        var devices: [OpenCLDeviceInfo] = []
        var platformNames: [String] = []
        for case let platform? in platforms {
            let platformName = platformString(platform, cl_platform_info(CL_PLATFORM_NAME))
            let platformVersion = platformString(platform, cl_platform_info(CL_PLATFORM_VERSION))
            platformNames.append(platformName)
            var count: cl_uint = 0
            let deviceStatus = latent_clGetDeviceIDs(platform, cl_device_type(CL_DEVICE_TYPE_ALL), 0, nil, &count)
            // CL_DEVICE_NOT_FOUND: this platform has none; others may.
            guard deviceStatus == CL_SUCCESS, count > 0 else { continue }
            var ids = [cl_device_id?](repeating: nil, count: Int(count))
            guard latent_clGetDeviceIDs(platform, cl_device_type(CL_DEVICE_TYPE_ALL), count, &ids, nil) == CL_SUCCESS else { continue }
            for case let id? in ids {
                devices.append(describe(id, platform: platform, index: devices.count,
                                        platformName: platformName, platformVersion: platformVersion))
            }
        }
        if devices.isEmpty {
            let names = platformNames.joined(separator: ", ")
            return OpenCLDiscoveryResult(devices: [], problem: "OpenCL platform \(names) offers no device" + poclHint())
        }
        return OpenCLDiscoveryResult(devices: devices, problem: nil)
    }

    /// PoCL reports no device when its cache folder is not writable; say so when that is the case.
    static func poclHint() -> String {
        let environment = ProcessInfo.processInfo.environment
        let folder: String
        if let dir = environment["POCL_CACHE_DIR"], !dir.isEmpty {
            folder = dir
        } else if let xdg = environment["XDG_CACHE_HOME"], !xdg.isEmpty {
            folder = xdg + "/pocl"
        } else {
            folder = (environment["HOME"] ?? NSHomeDirectory()) + "/.cache/pocl"
        }
        guard !isWritableOrCreatable(folder) else { return "" }
        return "; PoCL needs a writable cache folder and \(folder) is not writable (set POCL_CACHE_DIR to one that is)"
    }

    /// Whether a file can be created in `path` (creating the folder if needed, as PoCL
    /// would): a real attempt, since permission bits say little for root or read-only mounts.
    static func isWritableOrCreatable(_ path: String) -> Bool {
        let folder = URL(fileURLWithPath: path)
        do {
            try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        } catch {
            return false
        }
        let probe = folder.appendingPathComponent(".latent-write-test-\(ProcessInfo.processInfo.processIdentifier)")
        guard FileManager.default.createFile(atPath: probe.path, contents: Data()) else { return false }
        try? FileManager.default.removeItem(at: probe)
        return true
    }

    private static func describe(_ id: cl_device_id, platform: cl_platform_id, index: Int,
                                 platformName: String, platformVersion: String) -> OpenCLDeviceInfo {
        let type: cl_device_type = deviceValue(id, CL_DEVICE_TYPE, 0)
        let kind: OpenCLDeviceInfo.Kind
        if type & cl_device_type(CL_DEVICE_TYPE_GPU) != 0 {
            kind = .gpu
        } else if type & cl_device_type(CL_DEVICE_TYPE_CPU) != 0 {
            kind = .cpu
        } else if type & cl_device_type(CL_DEVICE_TYPE_ACCELERATOR) != 0 {
            kind = .accelerator
        } else {
            kind = .other
        }
        let localType: cl_device_local_mem_type = deviceValue(id, CL_DEVICE_LOCAL_MEM_TYPE, 0)
        let doubleConfig: cl_device_fp_config = deviceValue(id, CL_DEVICE_DOUBLE_FP_CONFIG, 0)
        let singleConfig: cl_device_fp_config = deviceValue(id, CL_DEVICE_SINGLE_FP_CONFIG, 0)
        let extensions = deviceString(id, CL_DEVICE_EXTENSIONS)
        return OpenCLDeviceInfo(
            index: index, platformName: platformName, platformVersion: platformVersion,
            name: deviceString(id, CL_DEVICE_NAME), vendor: deviceString(id, CL_DEVICE_VENDOR),
            version: deviceString(id, CL_DEVICE_VERSION), driverVersion: deviceString(id, CL_DRIVER_VERSION),
            kind: kind,
            computeUnits: Int(deviceValue(id, CL_DEVICE_MAX_COMPUTE_UNITS, cl_uint(0))),
            clockMHz: Int(deviceValue(id, CL_DEVICE_MAX_CLOCK_FREQUENCY, cl_uint(0))),
            globalMemoryBytes: deviceValue(id, CL_DEVICE_GLOBAL_MEM_SIZE, cl_ulong(0)),
            maxAllocationBytes: deviceValue(id, CL_DEVICE_MAX_MEM_ALLOC_SIZE, cl_ulong(0)),
            localMemoryBytes: deviceValue(id, CL_DEVICE_LOCAL_MEM_SIZE, cl_ulong(0)),
            dedicatedLocalMemory: localType == cl_device_local_mem_type(CL_LOCAL),
            maxWorkGroupSize: Int(deviceValue(id, CL_DEVICE_MAX_WORK_GROUP_SIZE, Int(0))),
            maxWorkItemSizes: deviceArray(id, CL_DEVICE_MAX_WORK_ITEM_SIZES, of: Int.self),
            hasFP64: doubleConfig != 0 || extensions.contains("cl_khr_fp64"),
            correctlyRoundedDivideSqrt: singleConfig & cl_device_fp_config(CL_FP_CORRECTLY_ROUNDED_DIVIDE_SQRT) != 0,
            nativeFloatVectorWidth: Int(deviceValue(id, CL_DEVICE_NATIVE_VECTOR_WIDTH_FLOAT, cl_uint(0))),
            handle: DeviceHandle(id: id, platform: platform))
    }

    static func deviceValue<T>(_ id: cl_device_id, _ parameter: Int32, _ fallback: T) -> T {
        var value = fallback
        let status = withUnsafeMutableBytes(of: &value) { raw in
            latent_clGetDeviceInfo(id, cl_device_info(parameter), raw.count, raw.baseAddress, nil)
        }
        return status == CL_SUCCESS ? value : fallback
    }

    /// An array parameter of `T` elements ([] when the query fails): its size, then its bytes.
    static func deviceArray<T: FixedWidthInteger>(_ id: cl_device_id, _ parameter: Int32, of _: T.Type) -> [T] {
        var bytes = 0
        guard latent_clGetDeviceInfo(id, cl_device_info(parameter), 0, nil, &bytes) == CL_SUCCESS, bytes > 0 else { return [] }
        var values = [T](repeating: 0, count: (bytes + MemoryLayout<T>.size - 1) / MemoryLayout<T>.size)
        let status = values.withUnsafeMutableBytes { raw in
            latent_clGetDeviceInfo(id, cl_device_info(parameter), bytes, raw.baseAddress, nil)
        }
        return status == CL_SUCCESS ? values : []
    }

    static func deviceString(_ id: cl_device_id, _ parameter: Int32) -> String {
        cString(deviceArray(id, parameter, of: CChar.self))
    }

    static func platformString(_ platform: cl_platform_id, _ parameter: cl_platform_info) -> String {
        var size = 0
        guard latent_clGetPlatformInfo(platform, parameter, 0, nil, &size) == CL_SUCCESS, size > 0 else { return "" }
        var bytes = [CChar](repeating: 0, count: size)
        guard latent_clGetPlatformInfo(platform, parameter, size, &bytes, nil) == CL_SUCCESS else { return "" }
        return cString(bytes)
    }
}

/// Text of a NUL-terminated C string in an array, trimmed.
func cString(_ bytes: [CChar]) -> String {
    String(decoding: bytes.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        .trimmingCharacters(in: .whitespacesAndNewlines)
}

/// Discovery results per library path, computed once.
private final class DiscoveryCache: @unchecked Sendable {
    private let lock = NSLock()
    private var results: [String: OpenCLDiscoveryResult] = [:]

    func value(for path: String, _ compute: () -> OpenCLDiscoveryResult) -> OpenCLDiscoveryResult {
        lock.lock()
        defer { lock.unlock() }
        if let result = results[path] { return result }
        let result = compute()
        results[path] = result
        return result
    }
}
