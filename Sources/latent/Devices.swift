import ArgumentParser
import Foundation
import LatentCore
import LatentOpenCL

struct Devices: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "List the OpenCL platforms and devices, one line each, with the index --device takes.",
        discussion: """
        OpenCL is loaded at run time (libOpenCL.so.1, or the file LATENT_OPENCL_LIBRARY names);
        without it the list is empty and the reason is printed. `--backend auto` takes the
        first GPU; `--backend opencl --device N` any device listed here.

        Examples:
          latent devices
          latent devices --json
        """
    )

    @Flag(help: "Print one JSON object instead of text.")
    var json = false

    struct Report: Codable {
        struct Device: Codable {
            var index: Int
            var type: String
            var name: String
            var vendor: String
            var platform: String
            var version: String
            var driver: String
            var computeUnits: Int
            var clockMHz: Int
            var globalMemoryBytes: UInt64
            var localMemoryBytes: UInt64
            var dedicatedLocalMemory: Bool
            var fp64: Bool
            var kernels: String

            enum CodingKeys: String, CodingKey {
                case index, type, name, vendor, platform, version, driver, fp64, kernels
                case computeUnits = "compute_units"
                case clockMHz = "clock_mhz"
                case globalMemoryBytes = "global_memory_bytes"
                case localMemoryBytes = "local_memory_bytes"
                case dedicatedLocalMemory = "dedicated_local_memory"
            }
        }

        var library: String
        var devices: [Device]
        var problem: String?
    }

    func run() throws {
        let found = OpenCLDiscovery.discover()
        if json {
            let devices = found.devices.map { d in
                Report.Device(index: d.index, type: d.kind.rawValue, name: d.name, vendor: d.vendor, platform: d.platformName,
                              version: d.version, driver: d.driverVersion, computeUnits: d.computeUnits, clockMHz: d.clockMHz,
                              globalMemoryBytes: d.globalMemoryBytes, localMemoryBytes: d.localMemoryBytes,
                              dedicatedLocalMemory: d.dedicatedLocalMemory, fp64: d.hasFP64,
                              kernels: OpenCLKernelConfig.defaults(for: d).description)
            }
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys]
            let data = try encoder.encode(Report(library: OpenCLLibrary.defaultPath, devices: devices, problem: found.problem))
            print(String(decoding: data, as: UTF8.self))
            return
        }
        if let problem = found.problem {
            print("no OpenCL device: \(problem)")
            return
        }
        for device in found.devices {
            print("\(device); kernels: \(OpenCLKernelConfig.defaults(for: device))")
        }
    }
}
