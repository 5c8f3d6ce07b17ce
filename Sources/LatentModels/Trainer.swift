import Foundation
import LatentCore
import LatentData
import LatentNN

/// One epoch's figures, per image: what `metrics.jsonl` records.
public struct EpochMetrics: Sendable {
    public var epoch: Int
    public var train: [(name: String, value: Double)]
    public var test: [(name: String, value: Double)]
    public var imagesPerSecond: Double
    public var seconds: Double
    public var backend: String
    /// The process's resident memory when the epoch ended (Linux), recorded as `rss_mb` so a
    /// long run shows whether memory grows (docs/RELIABILITY.md's soak).
    public var residentMegabytes: Double?
    /// The backend summed reproducibly (`--reproducible`); recorded only when true.
    public var reproducible = false

    public func value(_ name: String, test: Bool = false) -> Double? {
        (test ? self.test : train).first { $0.name == name }?.value
    }

    /// One JSON line: `epoch`, `train_loss`, `test_loss`, the train terms by name, the test
    /// terms as `test_<name>`, `images_per_sec`, `backend`, `seconds`.
    public var jsonLine: String {
        var fields: [(String, String)] = [("epoch", String(epoch))]
        fields.append(("train_loss", Self.number(train.first?.value ?? .nan)))
        fields.append(("test_loss", Self.number(test.first?.value ?? .nan)))
        for term in train.dropFirst() { fields.append((term.name, Self.number(term.value))) }
        for term in test.dropFirst() { fields.append(("test_\(term.name)", Self.number(term.value))) }
        fields.append(("images_per_sec", Self.number(imagesPerSecond)))
        fields.append(("backend", "\"\(backend)\""))
        fields.append(("seconds", Self.number(seconds)))
        if let residentMegabytes { fields.append(("rss_mb", String(format: "%.1f", residentMegabytes))) }
        if reproducible { fields.append(("reproducible", "true")) }
        return "{" + fields.map { "\"\($0.0)\": \($0.1)" }.joined(separator: ", ") + "}"
    }

    static func number(_ value: Double) -> String {
        value.isFinite ? String(format: "%.6g", value) : "null"
    }

    /// VmRSS from /proc/self/status in MiB; nil where there is no /proc (macOS).
    public static func residentMegabytes() -> Double? {
        processStatusMegabytes("VmRSS")
    }

    /// A kB field of /proc/self/status (VmRSS, VmHWM, …) in MiB; nil without /proc.
    public static func processStatusMegabytes(_ field: String) -> Double? {
        guard let status = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8) else { return nil }
        for line in status.split(separator: "\n") where line.hasPrefix(field + ":") {
            let fields = line.split(separator: " ", omittingEmptySubsequences: true)
            guard fields.count >= 2, let kilobytes = Double(fields[1]) else { return nil }
            return kilobytes / 1024
        }
        return nil
    }
}

/// What a trainer tells its user: progress within an epoch and each finished epoch.
public protocol TrainingObserver: AnyObject {
    func trainingStarted(epochs: ClosedRange<Int>, batchesPerEpoch: Int, trainImages: Int, testImages: Int)
    /// `loss` is the objective per image of the latest batch, read every few steps (nil otherwise).
    func batchFinished(epoch: Int, batch: Int, batchCount: Int, loss: Double?, imagesPerSecond: Double)
    func epochFinished(_ metrics: EpochMetrics, samplePath: String?)
}

/// Epochs over a dataset for any model of the zoo, with the files of DESIGN.md: one
/// `metrics.jsonl` line and one `samples-eNNN.png` per epoch, and an atomically replaced
/// `checkpoint.safetensors` after each epoch, so a killed run resumes from its last epoch
/// and, on the CPU backend, ends with the same weights as one never interrupted.
public final class Trainer {
    public let model: any GenerativeModel
    public let trainSet: Dataset
    public let testSet: Dataset
    public let directory: URL
    public weak var observer: (any TrainingObserver)?
    /// Noise seed of the sample grids: fixed, so epoch after epoch shows the same codes.
    public var sampleSeed: UInt64 = 0x5A4D_504C_4553
    public var sampleCount = 64
    /// How often the progress display reads the loss back (a device sync on OpenCL); the
    /// non-finite watch is read back at the same steps.
    public var progressInterval = 10
    /// Counts NaN and Inf in every gradient and loss term after each step (on the device;
    /// read back with the loss) and stops at the first one. Turned off only to measure its cost.
    public var checksNonFinite = true

    public init(model: any GenerativeModel, trainSet: Dataset, testSet: Dataset, directory: URL) {
        self.model = model
        self.trainSet = trainSet
        self.testSet = testSet
        self.directory = directory
    }

    public var checkpointURL: URL { directory.appendingPathComponent("checkpoint.safetensors") }
    public var metricsURL: URL { directory.appendingPathComponent("metrics.jsonl") }
    public var configURL: URL { directory.appendingPathComponent("config.json") }

    func loader(for dataset: Dataset, training: Bool) -> BatchLoader {
        let options = model.options
        var loader = BatchLoader(dataset: dataset, batchSize: options.batchSize, shuffle: training, seed: options.seed)
        loader.range = model.pixelRange
        loader.binarize = options.binarize
        if training { loader.saltAndPepperFraction = options.noise }
        return loader
    }

    /// Trains epochs `firstEpoch...options.epochs` (1-based).
    public func run(firstEpoch: Int = 1) throws {
        let options = model.options
        guard firstEpoch <= options.epochs else { return }
        let backend = model.backend
        let trainLoader = loader(for: trainSet, training: true)
        let testLoader = loader(for: testSet, training: false)
        observer?.trainingStarted(epochs: firstEpoch...options.epochs, batchesPerEpoch: trainLoader.batchesPerEpoch,
                                  trainImages: trainSet.count, testImages: testSet.count)
        if model is NeedsTrainingData, firstEpoch == 1 {
            try (model as? NeedsTrainingData)?.prepare(with: trainSet)
        }
        let accumulators = try model.lossTermNames.map { _ in try Tensor(zeros: [1], on: backend) }
        var batches = BatchTensors(backend: backend)
        let interval = max(1, progressInterval)
        let watch = checksNonFinite ? try NonFiniteWatch(model: model, steps: interval) : nil
        let clock = ContinuousClock()
        for epoch in firstEpoch...options.epochs {
            let start = clock.now
            // Train.
            for accumulator in accumulators { try backend.fill(accumulator.view, value: 0) }
            let pass = trainLoader.epoch(epoch)
            var images = 0
            for batch in 0..<pass.batchCount {
                let (tensor, labels) = try batches.load(pass, batch: batch)
                let terms = try model.trainStep(images: tensor, labels: labels)
                for (term, accumulator) in zip(terms, accumulators) {
                    try backend.axpby(alpha: 1, x: term.view, beta: 1, y: accumulator.view)
                }
                try watch?.record(terms: terms, epoch: epoch, step: batch + 1)
                images += labels.count
                let elapsed = Timing.seconds(clock.now - start)
                let showLoss = batch % interval == 0 || batch == pass.batchCount - 1 || watch?.isFull == true
                if showLoss, let fault = try watch?.check() {
                    throw LatentError.nonFinite(fault + "; " + keptCheckpointNote(failedEpoch: epoch))
                }
                let loss = showLoss ? Double(try terms[0].scalar()) / Double(labels.count) : nil
                if let loss, !loss.isFinite {
                    throw LatentError.nonFinite("the loss became \(loss) at epoch \(epoch), step \(batch + 1); \(keptCheckpointNote(failedEpoch: epoch))")
                }
                observer?.batchFinished(epoch: epoch, batch: batch + 1, batchCount: pass.batchCount, loss: loss,
                                        imagesPerSecond: Double(images) / max(elapsed, 1e-9))
            }
            try backend.synchronize()
            let trainSeconds = Timing.seconds(clock.now - start)
            let trainTerms = try accumulators.map { Double(try $0.scalar()) / Double(max(images, 1)) }
            if let bad = zip(model.lossTermNames, trainTerms).first(where: { !$0.1.isFinite }) {
                throw LatentError.nonFinite("the training \(bad.0) of epoch \(epoch) is \(bad.1); \(keptCheckpointNote(failedEpoch: epoch))")
            }
            // Test.
            let testTerms = try evaluate(testLoader, batches: &batches, accumulators: accumulators)
            if let bad = zip(model.lossTermNames, testTerms).first(where: { !$0.1.isFinite }) {
                throw LatentError.nonFinite("the test \(bad.0) of epoch \(epoch) is \(bad.1); \(keptCheckpointNote(failedEpoch: epoch))")
            }
            // Hand the allocator's freed pages back (glibc keeps them after the first epochs'
            // transient buffers), so the figure below is the memory the run really holds.
            Memory.releaseFreePages()
            let metrics = EpochMetrics(epoch: epoch,
                                       train: Array(zip(model.lossTermNames, trainTerms)).map { (name: $0.0, value: $0.1) },
                                       test: Array(zip(model.lossTermNames, testTerms)).map { (name: $0.0, value: $0.1) },
                                       imagesPerSecond: Double(images) / max(trainSeconds, 1e-9),
                                       seconds: Timing.seconds(clock.now - start), backend: backend.name,
                                       residentMegabytes: EpochMetrics.residentMegabytes(), reproducible: backend.reproducible)
            let samplePath = try writeSamples(epoch: epoch)
            let metricsEnd = try appendMetrics(metrics)
            do {
                try Checkpoint.save(model, epoch: epoch, to: checkpointURL)
            } catch {
                // The epoch is not saved: take its metrics line back too, so the folder reads
                // as a run that ended after the previous epoch (what --resume will see).
                rollBackMetrics(to: metricsEnd)
                throw error
            }
            observer?.epochFinished(metrics, samplePath: samplePath)
        }
    }

    /// What a run that fails in `failedEpoch` leaves to resume from, for error messages.
    func keptCheckpointNote(failedEpoch: Int) -> String {
        let advice = "Try a smaller --lr."
        guard failedEpoch > 1, FileManager.default.fileExists(atPath: checkpointURL.path) else {
            return "training stopped before the first checkpoint was written. \(advice)"
        }
        return "training stopped; the checkpoint of epoch \(failedEpoch - 1) in \(checkpointURL.path) is kept. \(advice)"
    }

    /// Checks, before any training, that the output folder takes files and has room for the
    /// files of one epoch: a checkpoint written beside the old one (atomic replacement keeps
    /// both for a moment), a sample grid and a metrics line. A full or read-only folder then
    /// fails in a second with one clear line instead of after the first epoch.
    public func checkOutputFolder() throws {
        let folder = directory.path
        // Named like a temporary file, so that a kill right here leaves nothing the next
        // run would not clear (AtomicFile.removeStale).
        let probe = directory.appendingPathComponent(".latent-write-test\(AtomicFile.temporaryMarker)\(getpid())")
        do {
            try AtomicFile.write(Data(repeating: 0x20, count: 4096), to: probe)
        } catch {
            try? FileManager.default.removeItem(at: probe)
            throw LatentError.io("the output folder \(folder) does not take files: \(Self.reason(error))")
        }
        try? FileManager.default.removeItem(at: probe)
        var checkpointFloats = 0
        for (_, tensor) in model.root.stateDict() { checkpointFloats += tensor.count }
        for (_, optimizer) in model.optimizers {
            for (_, tensor) in optimizer.namedState() { checkpointFloats += tensor.count }
        }
        let checkpointBytes = 4 * checkpointFloats + 64 * 1024
        // The old checkpoint's space is freed only after the new one is renamed over it.
        let needed = checkpointBytes + 512 * 1024
        if let free = Self.freeBytes(in: folder), free < needed {
            throw LatentError.io("the output folder \(folder) has \(Self.megabytes(free)) free, an epoch's checkpoint and samples need about \(Self.megabytes(needed))")
        }
    }

    static func freeBytes(in folder: String) -> Int? {
        var info = statvfs()
        guard statvfs(folder, &info) == 0 else { return nil }
        let (bytes, overflow) = Int(info.f_bavail).multipliedReportingOverflow(by: Int(info.f_frsize))
        return overflow ? Int.max : bytes
    }

    static func megabytes(_ bytes: Int) -> String {
        String(format: "%.1f MB", Double(bytes) / 1_000_000)
    }

    static func reason(_ error: Error) -> String {
        if let latent = error as? LatentError, case .io(let message) = latent { return message }
        return "\(error)"
    }

    /// Per-image test terms, the model in eval mode, the file order.
    func evaluate(_ loader: BatchLoader, batches: inout BatchTensors, accumulators: [Tensor]) throws -> [Double] {
        let backend = model.backend
        for accumulator in accumulators { try backend.fill(accumulator.view, value: 0) }
        let pass = loader.epoch(0)
        var images = 0
        for batch in 0..<pass.batchCount {
            let (tensor, labels) = try batches.load(pass, batch: batch)
            let terms = try model.evaluate(images: tensor, labels: labels)
            for (term, accumulator) in zip(terms, accumulators) {
                try backend.axpby(alpha: 1, x: term.view, beta: 1, y: accumulator.view)
            }
            images += labels.count
        }
        return try accumulators.map { Double(try $0.scalar()) / Double(max(images, 1)) }
    }

    /// `samples-eNNN.png`: a grid of generated images; nil for models that do not generate.
    func writeSamples(epoch: Int) throws -> String? {
        let pixels: [Float]
        do {
            pixels = try model.generate(count: sampleCount, seed: sampleSeed)
        } catch ModelError.doesNotGenerate {
            return nil
        }
        let grid = ImageGrid.make(images: pixels, height: 28, width: 28, columns: 8, padding: 2, scale: 2)
        let url = directory.appendingPathComponent(String(format: "samples-e%03d.png", epoch))
        try AtomicFile.write(Data(grid.pngData()), to: url)
        return url.path
    }

    /// Appends one line; returns the file's length before it (to roll the line back). A
    /// failed append (a full disk) is cut back off, so no half line is left behind.
    @discardableResult
    func appendMetrics(_ metrics: EpochMetrics) throws -> UInt64 {
        let line = metrics.jsonLine + "\n"
        if !FileManager.default.fileExists(atPath: metricsURL.path) {
            try AtomicFile.write(Data(line.utf8), to: metricsURL)
            return 0
        }
        let handle: FileHandle
        do {
            handle = try FileHandle(forWritingTo: metricsURL)
        } catch {
            throw LatentError.io("cannot append to \(metricsURL.path): \(AtomicFile.describe(error))")
        }
        defer { try? handle.close() }
        var end: UInt64 = 0
        do {
            end = try handle.seekToEnd()
            try handle.write(contentsOf: Data(line.utf8))
            try handle.synchronize()
        } catch {
            try? handle.truncate(atOffset: end)
            throw LatentError.io("cannot append to \(metricsURL.path): \(AtomicFile.describe(error))")
        }
        return end
    }

    /// Cuts `metrics.jsonl` back to `length` bytes (best effort: this runs on a failure path).
    func rollBackMetrics(to length: UInt64) {
        if length == 0 {
            try? FileManager.default.removeItem(at: metricsURL)
            return
        }
        guard let handle = try? FileHandle(forWritingTo: metricsURL) else { return }
        try? handle.truncate(atOffset: length)
        try? handle.close()
    }

    /// Drops metrics lines of epochs after `epoch` (a run killed between its metrics line
    /// and its checkpoint), so a resumed run writes each epoch once.
    public func truncateMetrics(after epoch: Int) throws {
        guard let data = try? Data(contentsOf: metricsURL) else { return }
        let text = String(decoding: data, as: UTF8.self)
        let kept = text.split(separator: "\n").filter { line in
            guard let data = line.data(using: .utf8),
                  let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any],
                  let lineEpoch = object["epoch"] as? Int else { return false }
            return lineEpoch <= epoch
        }
        try AtomicFile.write(Data(kept.map { $0 + "\n" }.joined().utf8), to: metricsURL)
    }
}

/// Finds the first NaN or infinity in a step's gradients or loss terms without a host read
/// per step: after each step `countNonFinite` writes one count per tensor into a row of a
/// small device matrix (one row per step since the last check); `check` reads the matrix
/// back with the loss (every `progressInterval` steps) and names the first bad step and
/// tensor. The gradients checked are those the optimizers just applied, under the model's
/// state_dict names.
final class NonFiniteWatch {
    let backend: any Backend
    let gradients: [(name: String, tensor: Tensor)]
    let lossNames: [String]
    let capacity: Int
    let columns: Int
    let counts: Tensor
    private var pending: [(epoch: Int, step: Int)] = []

    init(model: any GenerativeModel, steps: Int) throws {
        backend = model.backend
        var names: [ObjectIdentifier: String] = [:]
        for (name, parameter) in model.root.namedParameters() { names[ObjectIdentifier(parameter)] = name }
        var seen = Set<ObjectIdentifier>()
        var gradients: [(name: String, tensor: Tensor)] = []
        for (prefix, optimizer) in model.optimizers {
            for (name, parameter) in optimizer.parameters where parameter.requiresGradient {
                guard seen.insert(ObjectIdentifier(parameter)).inserted else { continue }
                gradients.append((names[ObjectIdentifier(parameter)] ?? "\(prefix).\(name)", parameter.gradient))
            }
        }
        self.gradients = gradients
        lossNames = model.lossTermNames
        capacity = max(1, steps)
        columns = lossNames.count + gradients.count
        counts = try Tensor(zeros: [capacity * max(columns, 1)], on: backend)
    }

    var isFull: Bool { pending.count >= capacity }

    /// Counts the step's non-finite values on the device (no read).
    func record(terms: [Tensor], epoch: Int, step: Int) throws {
        if isFull, let fault = try check() { throw LatentError.nonFinite(fault) }
        let row = pending.count * columns
        for (column, term) in terms.prefix(lossNames.count).enumerated() {
            try backend.countNonFinite(term.view, output: try counts.view.slice(row + column, count: 1))
        }
        for (column, gradient) in gradients.enumerated() {
            try backend.countNonFinite(gradient.tensor.view, output: try counts.view.slice(row + lossNames.count + column, count: 1))
        }
        pending.append((epoch, step))
    }

    /// Reads the counts of the steps recorded since the last check; returns a description of
    /// the first step with a non-finite value (nil if all were finite).
    func check() throws -> String? {
        guard !pending.isEmpty else { return nil }
        defer { pending.removeAll(keepingCapacity: true) }
        let values = try counts.view.slice(0, count: pending.count * columns)
        var host = [Float](repeating: 0, count: values.count)
        try host.withUnsafeMutableBufferPointer { try backend.read(values, into: $0) }
        for (index, position) in pending.enumerated() {
            let row = host[(index * columns)..<((index + 1) * columns)]
            let badColumns = row.indices.filter { row[$0] != 0 }.map { $0 - index * columns }
            guard !badColumns.isEmpty else { continue }
            let badLosses = badColumns.filter { $0 < lossNames.count }.map { "'\(lossNames[$0])'" }
            let badGradients = badColumns.filter { $0 >= lossNames.count }.map { $0 - lossNames.count }
            var parts: [String] = []
            if !badLosses.isEmpty {
                parts.append("the loss term\(badLosses.count > 1 ? "s" : "") \(badLosses.joined(separator: ", "))")
            }
            if let first = badGradients.first {
                var part = "the gradient of '\(gradients[first].name)'"
                if badLosses.isEmpty {
                    let count = row[index * columns + lossNames.count + first]
                    let bad = count.isFinite && count < 1e15 ? Int(count) : 0
                    part += " (\(bad) of its \(gradients[first].tensor.count) values)"
                }
                if badGradients.count > 1 { part += " and of \(badGradients.count - 1) more tensors" }
                parts.append(part)
            }
            let verb = badColumns.count > 1 ? "are" : "is"
            let text = "at epoch \(position.epoch), step \(position.step) \(parts.joined(separator: " and ")) \(verb) NaN or infinite"
            return text
        }
        return nil
    }
}

public enum ModelError: Error {
    /// `generate` of a model that makes no images (the classifier).
    case doesNotGenerate
}

/// Device tensors for batches, one per batch size, reused every step.
struct BatchTensors {
    let backend: any Backend
    var tensors: [Int: Tensor] = [:]
    var host: [Float] = []
    var labels: [UInt8] = []

    init(backend: any Backend) {
        self.backend = backend
    }

    mutating func load(_ pass: BatchLoader.Epoch, batch: Int) throws -> (Tensor, [UInt8]) {
        let count = pass.fill(batch: batch, images: &host, labels: &labels)
        let rows = pass.loader.dataset.rows, cols = pass.loader.dataset.cols
        let tensor: Tensor
        if let existing = tensors[count] {
            tensor = existing
        } else {
            tensor = try Tensor(zeros: [count, 1, rows, cols], on: backend)
            tensors[count] = tensor
        }
        try tensor.copy(from: host)
        return (tensor, labels)
    }
}

/// The C allocator's housekeeping.
enum Memory {
    private typealias TrimFunction = @convention(c) (Int) -> Int32
    /// glibc's `malloc_trim` (not in Swift's Glibc module; looked up once), nil elsewhere.
    private static let trim: TrimFunction? = {
        #if os(Linux)
        guard let symbol = dlsym(nil, "malloc_trim") else { return nil }
        return unsafeBitCast(symbol, to: TrimFunction.self)
        #else
        return nil
        #endif
    }()

    /// Returns free heap pages to the system (`malloc_trim(0)`): a few milliseconds once
    /// per epoch. Without it glibc keeps the high-water mark of the first epochs' transient
    /// buffers (checkpoint encoding, sample grids) resident for the rest of the run.
    static func releaseFreePages() {
        _ = trim?(0)
    }
}

enum Timing {
    static func seconds(_ duration: Duration) -> Double {
        let parts = duration.components
        return Double(parts.seconds) + Double(parts.attoseconds) * 1e-18
    }
}
