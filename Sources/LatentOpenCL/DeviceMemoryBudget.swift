import Foundation
import LatentCore

/// The device memory Latent holds on one device, checked before each allocation, so that a
/// buffer the device cannot hold (a batch too large) is refused with one clear line. Asking
/// the driver is not enough: PoCL's device memory is the host's RAM (all of it, by its own
/// count), and GPU drivers allocate lazily, failing at a later launch.
///
/// The limit is the device's global memory, or `LATENT_OPENCL_MEMORY_MB` (to share a device,
/// or to test the refusal without filling the machine).
final class DeviceMemoryBudget: @unchecked Sendable {
    let deviceName: String
    /// `CL_DEVICE_MAX_MEM_ALLOC_SIZE`; 0 when the driver does not say.
    let maxAllocationBytes: UInt64
    private let lock = NSLock()
    private var limit: UInt64
    private var limitSource: String
    private var held: UInt64 = 0

    init(device: OpenCLDeviceInfo, environment: [String: String] = ProcessInfo.processInfo.environment) throws {
        deviceName = device.name
        maxAllocationBytes = device.maxAllocationBytes
        if let text = environment["LATENT_OPENCL_MEMORY_MB"], !text.isEmpty {
            guard let megabytes = UInt64(text), megabytes > 0, megabytes < (1 << 40) else {
                throw LatentError.invalidArgument("LATENT_OPENCL_MEMORY_MB=\(text) is not a positive number of megabytes")
            }
            limit = megabytes << 20
            limitSource = "LATENT_OPENCL_MEMORY_MB"
        } else {
            limit = device.globalMemoryBytes == 0 ? .max : device.globalMemoryBytes
            limitSource = "its global memory"
        }
    }

    /// Bytes held in live buffers.
    var heldBytes: UInt64 { lock.withLock { held } }

    /// Counts `bytes` as held, or throws when the device cannot take them.
    func reserve(_ bytes: Int) throws {
        let size = UInt64(Swift.max(bytes, 0))
        if maxAllocationBytes > 0 && size > maxAllocationBytes {
            throw LatentError.backend("the OpenCL device \(deviceName) takes at most \(Self.megabytes(maxAllocationBytes)) in one buffer "
                + "(CL_DEVICE_MAX_MEM_ALLOC_SIZE) and an op needs \(Self.megabytes(size)); try a smaller --batch-size")
        }
        try lock.withLock {
            guard size <= limit && held <= limit - size else {
                throw LatentError.backend("the OpenCL device \(deviceName) is out of memory: an op needs \(Self.megabytes(size)) more, "
                    + "Latent holds \(Self.megabytes(held)) of the \(Self.megabytes(limit)) of \(limitSource); try a smaller --batch-size")
            }
            held += size
        }
    }

    func release(_ bytes: Int) {
        let size = UInt64(Swift.max(bytes, 0))
        lock.withLock { held -= Swift.min(size, held) }
    }

    /// Replaces the limit (tests); returns the previous one.
    @discardableResult
    func setLimit(_ bytes: UInt64, source: String) -> (bytes: UInt64, source: String) {
        lock.withLock {
            let previous = (limit, limitSource)
            limit = bytes
            limitSource = source
            return previous
        }
    }

    static func megabytes(_ bytes: UInt64) -> String {
        String(format: "%.1f MB", Double(bytes) / 1_048_576)
    }
}
