import Foundation
import LatentCore

/// Program binaries on disk, keyed by the assembled source, the build options, the device
/// and the driver: `LATENT_KERNEL_CACHE` names the folder (default
/// `$XDG_CACHE_HOME/latent/kernels` or `~/.cache/latent/kernels`); `0`, `off` or `none`
/// disables it. A file holds its full key, so a different build can never be loaded, and
/// is written to a temporary name and renamed into place. Cache problems are never errors:
/// the program is built from source instead.
public enum KernelBinaryCache {
    public static var directory: URL? {
        let environment = ProcessInfo.processInfo.environment
        if let value = environment["LATENT_KERNEL_CACHE"] {
            if ["", "0", "off", "none", "false"].contains(value.lowercased()) { return nil }
            return URL(fileURLWithPath: value)
        }
        if let xdg = environment["XDG_CACHE_HOME"], !xdg.isEmpty {
            return URL(fileURLWithPath: xdg).appendingPathComponent("latent/kernels")
        }
        guard let home = environment["HOME"], !home.isEmpty else { return nil }
        return URL(fileURLWithPath: home).appendingPathComponent(".cache/latent/kernels")
    }

    static let magic = Array("LATENT-CL-BINARY-1\n".utf8)

    static func key(source: String, options: String, device: OpenCLDeviceInfo) -> String {
        let bytes = Array(source.utf8)
        return [
            "source \(bytes.count) \(hex(fnv1a(bytes, basis: 0xCBF2_9CE4_8422_2325))) \(hex(fnv1a(bytes, basis: 0x8422_2325_CBF2_9CE4)))",
            "options \(options)",
            "device \(device.name) | \(device.vendor) | \(device.version)",
            "driver \(device.driverVersion) | \(device.platformName) | \(device.platformVersion)",
        ].joined(separator: "\n")
    }

    static func fileURL(key: String, in directory: URL?) -> URL? {
        directory?.appendingPathComponent(hex(fnv1a(Array(key.utf8), basis: 0xCBF2_9CE4_8422_2325)) + ".clbin")
    }

    static func load(key: String, in directory: URL? = directory) -> [UInt8]? {
        guard let url = fileURL(key: key, in: directory), let data = FileManager.default.contents(atPath: url.path) else { return nil }
        let bytes = [UInt8](data)
        let header = magic + Array(key.utf8) + [0]
        guard bytes.count > header.count, Array(bytes[0..<header.count]) == header else { return nil }
        return Array(bytes[header.count...])
    }

    static func store(key: String, binary: [UInt8]?, in directory: URL? = directory) {
        guard let binary, !binary.isEmpty, let url = fileURL(key: key, in: directory) else { return }
        let folder = url.deletingLastPathComponent()
        do {
            try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
            let temporary = folder.appendingPathComponent(".\(url.lastPathComponent).\(ProcessInfo.processInfo.processIdentifier).tmp")
            try Data(magic + Array(key.utf8) + [0] + binary).write(to: temporary)
            if rename(temporary.path, url.path) != 0 { try? FileManager.default.removeItem(at: temporary) }
        } catch {
            // An unwritable cache only costs a rebuild next time.
        }
    }

    static func fnv1a(_ bytes: [UInt8], basis: UInt64) -> UInt64 {
        var hash = basis
        for byte in bytes {
            hash ^= UInt64(byte)
            hash &*= 0x0000_0100_0000_01B3
        }
        return hash
    }

    static func hex(_ value: UInt64) -> String {
        let digits = String(value, radix: 16)
        return String(repeating: "0", count: 16 - digits.count) + digits
    }
}
