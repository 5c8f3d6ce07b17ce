import ArgumentParser
import Foundation
import LatentCore
import LatentCPU

struct Info: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Print the version, the backends found, and which backend runs and why.",
        discussion: """
        Examples:
          latent info
          latent info --backend cpu --threads 1 --json
        """
    )

    @OptionGroup var backendOptions: BackendOptions

    @Flag(help: "Print one JSON object instead of text.")
    var json = false

    func run() throws {
        let (backend, reason) = try backendOptions.makeBackend()
        let cpu = CPUBackend(threads: backendOptions.threads)
        let fields: [(String, String)] = [
            ("version", LatentVersion.string),
            ("backend", backend.name),
            ("device", backend.deviceName),
            ("reason", reason),
            ("cpu", CPUInfo.modelName),
            ("cpu_threads", String(cpu.parallel.threadCount)),
            ("simd", CPUInfo.simdDescription),
            ("opencl", BackendOptions.openCLSummary()),
        ]
        if json {
            print(JSONLine.object(fields))
        } else {
            print("latent \(LatentVersion.string)")
            for (key, value) in fields.dropFirst() { print("  \(key): \(value)") }
        }
    }
}

/// A flat JSON object from string fields, for `--json` output without Codable boilerplate.
enum JSONLine {
    static func object(_ fields: [(String, String)]) -> String {
        "{" + fields.map { "\(quote($0.0)): \(quote($0.1))" }.joined(separator: ", ") + "}"
    }

    static func quote(_ text: String) -> String {
        var result = "\""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\"": result += "\\\""
            case "\\": result += "\\\\"
            case "\n": result += "\\n"
            case "\t": result += "\\t"
            default:
                if scalar.value < 0x20 { result += String(format: "\\u%04x", scalar.value) } else { result.unicodeScalars.append(scalar) }
            }
        }
        return result + "\""
    }
}
