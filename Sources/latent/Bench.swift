import ArgumentParser
import Foundation
import LatentBench
import LatentCore
import LatentCPU

struct Bench: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Measure op and training speed on this machine.",
        subcommands: [BenchOps.self]
    )
}

struct BenchOps: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ops",
        abstract: "SGEMM GFLOP/s for 256..2048 cubes and the conv VAE's convolutions at batch 64, with shares of FP32 peak.",
        discussion: """
        The peak is measured (independent FMAs on every thread) and the nominal figure from
        /proc/cpuinfo is printed beside it; see docs/PERFORMANCE.md.

        Examples:
          latent bench ops --backend cpu
          latent bench ops --backend cpu --threads 1 --json
        """
    )

    @OptionGroup var backendOptions: BackendOptions

    @Option(help: "Batch size for the convolution rows.")
    var batch = 64

    @Flag(help: "Print one JSON object instead of a table.")
    var json = false

    func validate() throws {
        guard (1...4096).contains(batch) else { throw ValidationError("--batch must be between 1 and 4096") }
    }

    struct Report: Codable {
        var backend: String
        var device: String
        var threads: Int
        var peakGFLOPS: Double
        var nominalPeakGFLOPS: Double
        var results: [OpResult]

        enum CodingKeys: String, CodingKey {
            case backend, device, threads, results
            case peakGFLOPS = "peak_gflops"
            case nominalPeakGFLOPS = "nominal_peak_gflops"
        }
    }

    func run() throws {
        let (backend, reason) = try backendOptions.makeBackend()
        let threads = (backend as? CPUBackend)?.parallel.threadCount ?? CPUParallel.defaultThreadCount
        let log: (String) -> Void = { line in if !json { print(line) } }
        log("backend \(reason)")
        log("device  \(backend.deviceName)")
        let peak = Peak.measuredGFLOPS(threads: threads)
        let nominal = CPUInfo.peakGFLOPS(threads: threads)
        log(String(format: "peak    %.0f GFLOP/s measured on %d thread(s) (nominal %.0f at %.2f GHz)", peak, threads, nominal, CPUInfo.clockGHz))
        let benchmarks = OpBenchmarks(backend: backend, peakGFLOPS: peak)
        var results: [OpResult] = []
        let report: (OpResult) -> Void = { result in
            results.append(result)
            log(result.op.padding(toLength: 40, withPad: " ", startingAt: 0) + " "
                + result.shape.padding(toLength: 42, withPad: " ", startingAt: 0)
                + String(format: " %9.3f ms %8.1f GFLOP/s %6.1f%% of peak", result.milliseconds, result.gflops, result.peakShare * 100))
        }
        for size in OpBenchmarks.gemmSizes { report(try benchmarks.gemm(size: size)) }
        for layer in try OpBenchmarks.convVAELayers(batch: batch) {
            for result in try benchmarks.conv(name: layer.name, geometry: layer.geometry, transposed: layer.transposed) { report(result) }
        }
        if json {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys]
            let data = try encoder.encode(Report(backend: backend.name, device: backend.deviceName, threads: threads,
                                                 peakGFLOPS: peak, nominalPeakGFLOPS: nominal, results: results))
            print(String(decoding: data, as: UTF8.self))
        }
    }
}
