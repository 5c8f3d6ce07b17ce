import ArgumentParser
import Foundation
import LatentBench
import LatentCore
import LatentCPU
import LatentData
import LatentModels
import LatentNN

/// `latent bench train MODEL`: training images per second of one model on one backend,
/// timed as a training loop runs (batch copied to the device, `trainStep`, `synchronize`),
/// after warm-up steps, as the median of several repeats. Benchmarks/compare-train.sh runs
/// it alternately with Benchmarks/pytorch/train_step_bench.py, the same steps in PyTorch.
struct BenchTrain: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "train",
        abstract: "Training images/s of a model (median of repeats) and the process's peak resident memory.",
        discussion: """
        Each repeat times --steps training steps on real batches (shuffled MNIST, the model's \
        pixel range; --synthetic: uniform noise) at the model's catalogue batch size (64, or \
        128 for the fully connected VAEs) after --warmup untimed steps. A step is what \
        `latent train` does per batch: copy the batch to the device, one `trainStep` (forward, \
        backward, optimizer), then `synchronize`. images/s = steps x batch / seconds; the \
        median over --repeats is reported. peak_rss_mb is VmHWM from /proc/self/status.

        --profile times every backend op of the timed steps and prints where a step's time \
        goes, by op and shape (the layers' convolutions, GEMMs, batch norms, ...), with the \
        time spent between ops (the layers' own host code) as the last row. On OpenCL each \
        op is then followed by a synchronize, so a profiled step is slower than a plain one.

        Examples:
          latent bench train vae-conv
          latent bench train dcgan --steps 50 --repeats 1 --profile
          latent bench train dcgan --backend cpu --steps 100 --repeats 5 --json
          latent bench train vae-conv --backend opencl --steps 50 --json
        """
    )

    @Argument(help: ArgumentHelp("The model: \(ModelKind.allCases.map(\.rawValue).joined(separator: ", ")).", valueName: "MODEL"))
    var model: ModelKind

    @Option(help: "Timed training steps per repeat.")
    var steps = 200

    @Option(help: "Untimed steps before the first repeat (first-step allocations, kernel builds, caches).")
    var warmup = 10

    @Option(help: "Timed repeats; the median is reported.")
    var repeats = 3

    @Option(help: "Images per batch (default: the model's catalogue batch size).")
    var batchSize: Int?

    @Option(help: "Seed of the weights, the noise and the batch order.")
    var seed: UInt64 = 0

    @Flag(help: "Train on uniform noise instead of MNIST (no dataset needed).")
    var synthetic = false

    @Flag(help: "Print one JSON object instead of text.")
    var json = false

    @Flag(help: "Time every backend op of the timed steps and print the step's time by op and shape.")
    var profile = false

    @OptionGroup var backendOptions: BackendOptions
    @OptionGroup var datasetOptions: DatasetOptions

    func validate() throws {
        guard (1...100_000).contains(steps) else { throw ValidationError("--steps must be between 1 and 100000") }
        guard (0...100_000).contains(warmup) else { throw ValidationError("--warmup must be between 0 and 100000") }
        guard (1...1000).contains(repeats) else { throw ValidationError("--repeats must be between 1 and 1000") }
        if let batchSize, !(1...65_536).contains(batchSize) { throw ValidationError("--batch-size must be between 1 and 65536") }
    }

    struct Report: Codable {
        var model: String
        var backend: String
        var device: String
        var threads: Int?
        var batchSize: Int
        var steps: Int
        var warmup: Int
        var repeats: Int
        var data: String
        var imagesPerSec: Double
        var imagesPerSecRepeats: [Double]
        var stepMilliseconds: Double
        var peakRSSMegabytes: Double?
        var loadAverage: Double?
        var profile: [ProfileRow]?

        enum CodingKeys: String, CodingKey {
            case model, backend, device, threads, steps, warmup, repeats, data
            case batchSize = "batch_size"
            case imagesPerSec = "images_per_sec"
            case imagesPerSecRepeats = "images_per_sec_repeats"
            case stepMilliseconds = "step_ms"
            case peakRSSMegabytes = "peak_rss_mb"
            case loadAverage = "load_average"
            case profile
        }
    }

    /// One row of `--profile`: an op at one shape, per timed step.
    struct ProfileRow: Codable {
        var op: String
        var shape: String
        var callsPerStep: Double
        var millisecondsPerStep: Double
        var share: Double

        enum CodingKeys: String, CodingKey {
            case op, shape, share
            case callsPerStep = "calls_per_step"
            case millisecondsPerStep = "ms_per_step"
        }
    }

    func run() throws {
        let (plainBackend, reason) = try backendOptions.makeBackend()
        let profiler = profile ? ProfilingBackend(plainBackend, synchronizeEachOp: !(plainBackend is CPUBackend)) : nil
        let backend: any Backend = profiler ?? plainBackend
        var options = ModelCatalog.descriptor(model).defaults
        if let batchSize { options.batchSize = batchSize }
        options.seed = seed
        let batch = options.batchSize
        let log: (String) -> Void = { line in if !json { print(line) } }
        let load = BenchTrainSupport.loadAverage()
        log("backend \(reason)")
        log("device  \(backend.deviceName)")

        // Batches are filled per step from the shuffled training set, as the trainer does
        // (the fill is part of the timed step); --synthetic cycles through four noise batches.
        let model = try ModelCatalog.makeModel(options, backend: backend, random: RandomSource(seed: seed))
        let images = try Tensor(zeros: [batch, 1, 28, 28], on: backend)
        var host = [Float](repeating: 0, count: batch * 784)
        var labels = [UInt8](repeating: 0, count: batch)
        let fillBatch: (Int, inout [Float], inout [UInt8]) -> Void
        let dataName: String
        if synthetic {
            dataName = "synthetic"
            var generator = SplitMix64(seed: seed)
            let low: Float = model.pixelRange == .zeroToOne ? 0 : -1
            let noise = (0..<4).map { _ in (0..<(batch * 784)).map { _ in low + (1 - low) * Float(generator.next() >> 40) / 16_777_216 } }
            let noiseLabels = (0..<4).map { _ in (0..<batch).map { _ in UInt8(generator.next() % 10) } }
            if let needs = model as? NeedsTrainingData {
                let pixels = (0..<(batch * 784 * 4)).map { _ in UInt8(truncatingIfNeeded: generator.next()) }
                try needs.prepare(with: try Dataset(images: pixels, labels: noiseLabels.flatMap { $0 }, rows: 28, cols: 28))
            }
            fillBatch = { step, images, labels in
                images = noise[step % noise.count]
                labels = noiseLabels[step % noiseLabels.count]
            }
        } else {
            let files = try datasetOptions.locate()
            dataName = files.dataset.rawValue
            let trainSet = try files.load(.train, limit: nil)
            if let needs = model as? NeedsTrainingData { try needs.prepare(with: trainSet) }
            var loader = BatchLoader(dataset: trainSet, batchSize: batch, shuffle: true, seed: seed)
            loader.range = model.pixelRange
            loader.dropLast = true
            guard loader.batchesPerEpoch > 0 else {
                throw LatentError.invalidArgument("--batch-size \(batch) is larger than the training set (\(trainSet.count) images)")
            }
            let epoch = loader.epoch(1)
            fillBatch = { step, images, labels in
                epoch.fill(batch: step % epoch.batchCount, images: &images, labels: &labels)
            }
        }

        var step = 0
        func trainOne() throws {
            fillBatch(step, &host, &labels)
            try images.copy(from: host)
            _ = try model.trainStep(images: images, labels: labels)
            try backend.synchronize()
            step += 1
        }
        for _ in 0..<warmup { try trainOne() }
        // A finite loss after the warm-up, so a broken kernel cannot post a fast figure.
        if warmup > 0 {
            let terms = try model.trainStep(images: images, labels: labels)
            let loss = try terms[0].scalar()
            guard loss.isFinite else { throw LatentError.nonFinite("\(model.options.model.rawValue): the loss is \(loss) after the warm-up") }
        }
        let clock = ContinuousClock()
        var rates: [Double] = []
        var timedSeconds = 0.0
        profiler?.isRecording = true
        for repeatIndex in 0..<repeats {
            let start = clock.now
            for _ in 0..<steps { try trainOne() }
            let seconds = Timing.seconds(clock.now - start)
            timedSeconds += seconds
            let rate = Double(steps * batch) / seconds
            rates.append(rate)
            log(String(format: "repeat %d: %d steps of %d in %.3f s, %.0f images/s, %.2f ms/step",
                       repeatIndex + 1, steps, batch, seconds, rate, seconds / Double(steps) * 1e3))
        }
        profiler?.isRecording = false
        let median = rates.sorted()[rates.count / 2]
        let profileRows = profiler.map { Self.profileRows($0.recorded, steps: steps * repeats, seconds: timedSeconds) }
        let report = Report(model: model.options.model.rawValue, backend: backend.name, device: backend.deviceName,
                            threads: (plainBackend as? CPUBackend)?.parallel.threadCount, batchSize: batch,
                            steps: steps, warmup: warmup, repeats: repeats, data: dataName,
                            imagesPerSec: median, imagesPerSecRepeats: rates,
                            stepMilliseconds: Double(batch) / median * 1e3,
                            peakRSSMegabytes: BenchTrainSupport.peakResidentMegabytes(), loadAverage: load,
                            profile: profileRows)
        if json {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys]
            print(String(decoding: try encoder.encode(report), as: UTF8.self))
        } else {
            log(String(format: "%@ on %@: %.0f images/s (median of %d), %.2f ms/step, batch %d, peak RSS %.0f MiB, load %.2f",
                       report.model, report.backend, median, repeats, report.stepMilliseconds, batch,
                       report.peakRSSMegabytes ?? .nan, load ?? .nan))
            if let profileRows {
                log("")
                log(String(format: "profile of the %d timed steps (%.2f ms/step)%@:", steps * repeats,
                           timedSeconds / Double(steps * repeats) * 1e3,
                           profiler?.synchronizeEachOp == true ? ", every op synchronized" : ""))
                log("   ms/step   share  calls/step  op")
                for row in profileRows {
                    log(String(format: "%10.3f  %5.1f%%  %10.1f  %@%@", row.millisecondsPerStep, row.share * 100, row.callsPerStep,
                               row.op, row.shape.isEmpty ? "" : "  " + row.shape))
                }
            }
        }
    }

    /// Per-step rows of a profile, the costliest first, and the time between ops last.
    static func profileRows(_ entries: [ProfilingBackend.Entry], steps: Int, seconds: Double) -> [ProfileRow] {
        let perStep = 1 / Double(max(steps, 1))
        let total = max(seconds, .leastNonzeroMagnitude)
        var rows = entries.map { entry in
            ProfileRow(op: entry.op, shape: entry.shape, callsPerStep: Double(entry.calls) * perStep,
                       millisecondsPerStep: entry.seconds * perStep * 1e3, share: entry.seconds / total)
        }
        let betweenOps = max(0, seconds - entries.reduce(0) { $0 + $1.seconds })
        rows.append(ProfileRow(op: "between ops (host code)", shape: "", callsPerStep: 0,
                               millisecondsPerStep: betweenOps * perStep * 1e3, share: betweenOps / total))
        return rows
    }
}

enum BenchTrainSupport {
    /// VmHWM (peak resident set) from /proc/self/status in MiB; nil without /proc.
    static func peakResidentMegabytes() -> Double? {
        EpochMetrics.processStatusMegabytes("VmHWM")
    }

    /// The one-minute load average from /proc/loadavg, recorded beside every figure.
    static func loadAverage() -> Double? {
        guard let text = try? String(contentsOfFile: "/proc/loadavg", encoding: .utf8) else { return nil }
        return text.split(separator: " ").first.flatMap { Double($0) }
    }
}

/// `latent bench chart`: a bar chart PNG from a small JSON description, so that the
/// benchmark scripts' tables become pictures drawn by Latent itself (docs/PERFORMANCE.md).
struct BenchChart: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "chart",
        abstract: "Draw a bar chart PNG from a JSON description (the benchmark scripts write one).",
        discussion: """
        The input is one JSON object: {"title": ..., "y_label": ..., "categories": [...], \
        "series": [{"name": ..., "values": [...]}], "reference_lines": [{"value": 1, "label": ...}], \
        "value_format": "%.2fx"}; reference_lines and value_format are optional.

        Example:
          latent bench chart --input ratios.json --output docs/images/train-ratio.png
        """
    )

    @Option(help: ArgumentHelp("The chart's JSON description.", valueName: "FILE.json"))
    var input: String

    @Option(help: ArgumentHelp("Where to write the PNG.", valueName: "FILE.png"))
    var output: String

    struct Description: Decodable {
        struct Series: Decodable {
            var name: String
            var values: [Double?]
        }

        struct Line: Decodable {
            var value: Double
            var label: String
        }

        var title: String
        var yLabel: String
        var categories: [String]
        var series: [Series]
        var referenceLines: [Line]?
        var valueFormat: String?

        enum CodingKeys: String, CodingKey {
            case title, categories, series
            case yLabel = "y_label"
            case referenceLines = "reference_lines"
            case valueFormat = "value_format"
        }
    }

    func run() throws {
        let data: Data
        do {
            data = try Data(contentsOf: URL(fileURLWithPath: input))
        } catch {
            throw LatentError.io("cannot read \(input): \(error.localizedDescription)")
        }
        let description: Description
        do {
            description = try JSONDecoder().decode(Description.self, from: data)
        } catch {
            throw LatentError.invalidArgument("\(input) is not a chart description: \(error)")
        }
        guard !description.categories.isEmpty,
              description.series.allSatisfy({ $0.values.count == description.categories.count }) else {
            throw LatentError.invalidArgument("\(input): every series needs one value per category")
        }
        let chart = BarChart(title: description.title, yLabel: description.yLabel, categories: description.categories,
                             series: description.series.map { .init(name: $0.name, values: $0.values.map { $0 ?? .nan }) },
                             referenceLines: (description.referenceLines ?? []).map { .init(value: $0.value, label: $0.label) },
                             valueFormat: description.valueFormat ?? "%.2f")
        try chart.render().writePNG(to: output)
    }
}
