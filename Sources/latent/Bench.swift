import ArgumentParser
import Foundation
import LatentBench
import LatentCore
import LatentCPU

struct Bench: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Measure op and training speed on this machine.",
        subcommands: [BenchOps.self, BenchTrain.self, BenchChart.self]
    )
}

struct BenchOps: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ops",
        abstract: "Per-op speed with shares of this machine's peak: SGEMM cubes, every conv layer of the report models (three passes), the FC models' Linear GEMMs, batch norm, the fused elementwise ops and Adam.",
        discussion: """
        Compute-bound rows give GFLOP/s against the measured FP32 peak (independent FMAs on \
        every thread; the nominal figure from /proc/cpuinfo is printed beside it); memory-bound \
        rows give GB/s of the bytes the op must move against the measured copy bandwidth \
        (y = a x + y over 64 MiB). Each figure is the median of repeats after a warm-up. \
        LATENT_BENCH_CLOCK=cpu times with process CPU time (for kernel work on a busy machine, \
        with --threads 1). See docs/PERFORMANCE.md.

        Examples:
          latent bench ops --backend cpu
          latent bench ops --backend cpu --group conv --filter tconv
          latent bench ops --backend cpu --threads 1 --json
        """
    )

    @OptionGroup var backendOptions: BackendOptions

    @Option(help: "Batch size for the convolution rows.")
    var batch = 64

    @Option(help: ArgumentHelp("Only these groups, comma-separated: \(OpBenchmarks.groups.joined(separator: ",")).", valueName: "LIST"))
    var group: String?

    @Option(help: ArgumentHelp("Only layers whose name contains this text (conv, linear and batchnorm rows).", valueName: "TEXT"))
    var filter: String?

    @Flag(help: "Print one JSON object instead of a table.")
    var json = false

    func validate() throws {
        guard (1...4096).contains(batch) else { throw ValidationError("--batch must be between 1 and 4096") }
        if let group {
            for name in group.split(separator: ",") where !OpBenchmarks.groups.contains(String(name)) {
                throw ValidationError("--group: unknown group '\(name)'; one of \(OpBenchmarks.groups.joined(separator: ", "))")
            }
        }
    }

    struct Report: Codable {
        var backend: String
        var device: String
        var threads: Int
        var peakGFLOPS: Double
        var nominalPeakGFLOPS: Double
        var peakGBPS: Double
        var loadAverage: Double?
        var results: [OpResult]

        enum CodingKeys: String, CodingKey {
            case backend, device, threads, results
            case peakGFLOPS = "peak_gflops"
            case nominalPeakGFLOPS = "nominal_peak_gflops"
            case peakGBPS = "peak_gbps"
            case loadAverage = "load_average"
        }
    }

    func run() throws {
        let (backend, reason) = try backendOptions.makeBackend()
        let threads = (backend as? CPUBackend)?.parallel.threadCount ?? CPUParallel.defaultThreadCount
        let log: (String) -> Void = { line in if !json { print(line) } }
        let load = BenchTrainSupport.loadAverage()
        log("backend \(reason)")
        log("device  \(backend.deviceName)")
        let peak = Peak.measuredGFLOPS(threads: threads)
        let nominal = CPUInfo.peakGFLOPS(threads: threads)
        let bandwidth = Peak.measuredGBPS(threads: threads)
        log(String(format: "peak    %.0f GFLOP/s measured on %d thread(s) (nominal %.0f at %.2f GHz); copy bandwidth %.1f GB/s; load %.2f",
                   peak, threads, nominal, CPUInfo.clockGHz, bandwidth, load ?? .nan))
        if Timing.usesCPUClock { log("timing  process CPU time (LATENT_BENCH_CLOCK=cpu)") }
        let benchmarks = OpBenchmarks(backend: backend, peakGFLOPS: peak, peakGBPS: bandwidth)
        let groups = Set((group ?? OpBenchmarks.groups.joined(separator: ",")).split(separator: ",").map(String.init))
        let wanted: (String) -> Bool = { name in filter.map { name.contains($0) } ?? true }
        var results: [OpResult] = []
        let report: (OpResult) -> Void = { result in
            results.append(result)
            let rate = result.gflops.map { String(format: "%8.1f GFLOP/s", $0) } ?? String(format: "%8.1f GB/s   ", result.gbps ?? 0)
            log(result.op.padding(toLength: 44, withPad: " ", startingAt: 0) + " "
                + result.shape.padding(toLength: 50, withPad: " ", startingAt: 0)
                + String(format: " %9.3f ms ", result.milliseconds) + rate + String(format: " %6.1f%% of peak", result.peakShare * 100))
        }
        if groups.contains("sgemm") {
            for size in OpBenchmarks.gemmSizes { report(try benchmarks.gemm(size: size)) }
        }
        if groups.contains("conv") {
            for layer in try OpBenchmarks.convVAELayers(batch: batch) + OpBenchmarks.betaVAELayers(batch: batch) where wanted(layer.name) {
                for result in try benchmarks.conv(name: layer.name, geometry: layer.geometry, transposed: layer.transposed) { report(result) }
            }
        }
        if groups.contains("linear") {
            for layer in OpBenchmarks.linearLayers where wanted(layer.name) {
                for result in try benchmarks.linear(name: layer.name, batch: layer.batch, inFeatures: layer.inFeatures,
                                                    outFeatures: layer.outFeatures) { report(result) }
            }
        }
        if groups.contains("batchnorm") {
            for layer in OpBenchmarks.batchNormLayers where wanted(layer.name) {
                for result in try benchmarks.batchNorm(name: layer.name, batch: layer.batch, channels: layer.channels,
                                                       spatial: layer.spatial) { report(result) }
            }
        }
        if groups.contains("elementwise") {
            for result in try benchmarks.elementwise() { report(result) }
        }
        if json {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys]
            let data = try encoder.encode(Report(backend: backend.name, device: backend.deviceName, threads: threads,
                                                 peakGFLOPS: peak, nominalPeakGFLOPS: nominal, peakGBPS: bandwidth,
                                                 loadAverage: load, results: results))
            print(String(decoding: data, as: UTF8.self))
        }
    }
}
