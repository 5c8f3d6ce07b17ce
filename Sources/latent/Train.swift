import ArgumentParser
import Foundation
import LatentCore
import LatentData
import LatentExplore
import LatentModels
import LatentNN

extension ModelKind: ExpressibleByArgument {}
extension OptimizerName: ExpressibleByArgument {}

/// `--loss bce|mse|l1`.
enum ReconstructionLoss: String, ExpressibleByArgument, CaseIterable {
    case bce, mse, l1
}

/// `--parameterization logvar|logstd|std`.
enum HeadParameterization: String, ExpressibleByArgument, CaseIterable {
    case logvar, logstd, std
}

struct Train: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Train a model of the zoo with the reports' defaults; writes metrics, sample grids and checkpoints.",
        discussion: """
        Defaults are the reports' values (see `latent models`); every option overrides one. \
        Each epoch appends a line to DIR/metrics.jsonl, writes DIR/samples-eNNN.png and replaces \
        DIR/checkpoint.safetensors atomically; --resume continues from the last checkpoint.

        Examples:
          latent train vae-fc --epochs 1
          latent train vae-conv --epochs 3 --seed 0 --out runs/vae-conv
          latent train beta-vae --beta 4 --latent-dim 10
          latent train vae-fc --latent-dim 2 --no-kl --limit 6000
          latent train vae-conv --out runs/vae-conv --resume
          latent train vae-conv --limit 320 --reproducible --backend opencl
            (--backend cpu then writes the same checkpoint, byte for byte)
        """
    )

    @Argument(help: ArgumentHelp("The model: \(ModelKind.allCases.map(\.rawValue).joined(separator: ", ")).", valueName: "MODEL"))
    var model: ModelKind = .vaeFC

    @Option(help: "Epochs to train (total, including resumed ones).") var epochs: Int?
    @Option(help: "Images per batch.") var batchSize: Int?
    @Option(name: .customLong("lr"), help: "Learning rate.") var learningRate: Float?
    @Option(help: ArgumentHelp("Optimizer: \(OptimizerName.allCases.map(\.rawValue).joined(separator: ", ")).", valueName: "NAME")) var optimizer: OptimizerName?
    @Option(help: "Weight decay (default: the optimizer's PyTorch default).") var weightDecay: Float?
    @Option(help: "Size of the latent code.") var latentDim: Int?
    @Option(help: "Width of fully connected hidden layers.") var hidden: Int?
    @Option(help: "Number of hidden Linear+ReLU layers (fully connected models).") var depth: Int?
    @Flag(help: "BatchNorm after each hidden Linear (fully connected models).") var batchnorm = false
    @Option(help: "Dropout probability after each hidden layer.") var dropout: Float?
    @Option(help: ArgumentHelp("Reconstruction loss, summed over pixels.", valueName: "bce|mse|l1")) var loss: ReconstructionLoss?
    @Option(help: "Weight of the KL term (beta-VAE).") var beta: Float?
    @Flag(help: "Train on reconstruction alone (no KL term).") var noKl = false
    @Option(help: "KL warm-up: the KL weight rises linearly from 0 to --beta over this many steps.") var klWarmupSteps: Int?
    @Option(help: ArgumentHelp("What the VAE's second head predicts.", valueName: "logvar|logstd|std")) var parameterization: HeadParameterization?
    @Option(help: "Salt-and-pepper noise on this fraction of training pixels (0.01, 0.1, 0.2, 0.8 in report 004).") var noise: Double?
    @Flag(help: "Dynamically binarise the images (likelihoods in nats).") var binarize = false
    @Option(help: "Use only the first N training images (and N/6 test images).") var limit: Int?
    @Option(help: "Seed of the weights, noise and data order.") var seed: UInt64?
    @Option(help: "VQ-VAE codebook entries.") var codebookSize: Int?
    @Option(help: "VQ-VAE codebook vector size.") var codebookDim: Int?
    @Option(help: "VQ-VAE commitment weight.") var commitment: Float?
    @Option(help: "Adam's beta1 (report 004's GAN: 0.5).") var beta1: Float?
    @Flag(help: "beta-VAE: one BatchNorm2d shared by encoder and decoder, as report 004's code did.") var sharedBatchnorm = false
    @Flag(help: "GAN: zero both optimizers once per batch, as report 004's code did.") var ganSharedZeroGrad = false
    @Option(help: "Output folder (default runs/MODEL).") var out: String?
    @Flag(help: "Continue the run in --out from its checkpoint.") var resume = false
    @Flag(help: "Print nothing but errors.") var quiet = false

    @OptionGroup var backendOptions: BackendOptions
    @OptionGroup var datasetOptions: DatasetOptions

    /// The report's defaults with the user's overrides.
    func trainingOptions() -> TrainingOptions {
        var options = ModelCatalog.descriptor(model).defaults
        options.dataset = datasetOptions.dataset.rawValue
        if let epochs { options.epochs = epochs }
        if let batchSize { options.batchSize = batchSize }
        if let learningRate { options.learningRate = learningRate }
        if let optimizer { options.optimizer = optimizer.rawValue }
        if let weightDecay { options.weightDecay = weightDecay }
        if let latentDim { options.latentDim = latentDim }
        if let hidden { options.hidden = hidden }
        if let depth { options.depth = depth }
        if batchnorm { options.batchnorm = true }
        if let dropout { options.dropout = dropout }
        if let loss { options.loss = loss.rawValue }
        if let beta { options.beta = beta }
        if noKl { options.kl = false }
        if let klWarmupSteps { options.klWarmupSteps = klWarmupSteps }
        if let parameterization { options.parameterization = parameterization.rawValue }
        if let noise { options.noise = noise }
        if binarize { options.binarize = true }
        if let limit { options.limit = limit }
        if let seed { options.seed = seed }
        if let codebookSize { options.codebookSize = codebookSize }
        if let codebookDim { options.codebookDim = codebookDim }
        if let commitment { options.commitment = commitment }
        if let beta1 { options.beta1 = beta1 }
        if sharedBatchnorm { options.sharedBatchnorm = true }
        if ganSharedZeroGrad { options.ganSharedZeroGrad = true }
        return options
    }

    func validate() throws {
        do {
            try trainingOptions().validate()
        } catch let error as LatentError {
            throw ValidationError(error.description)
        }
    }

    func run() throws {
        let directory = URL(fileURLWithPath: out ?? "runs/\(model.rawValue)")
        let (backend, reason) = try backendOptions.makeBackend()
        // The build (or resume) and the epochs are LatentExplore's TrainingSession, which
        // `latent reproduce` runs too; the folder checks and the lock stay here.
        let session = try TrainingSession(options: trainingOptions(), directory: directory, resume: resume,
                                          requestedEpochs: epochs, backend: backend)
        let options = session.options
        let files = try datasetOptions.locate()
        let (trainSet, testSet) = try TrainingSession.loadData(files, limit: options.limit)
        try RunFolder.prepare(directory, resuming: resume)
        let lock = try RunFolder.lock(directory)
        defer { close(lock) }
        let progress = ProgressDisplay(quiet: quiet, lossNames: session.model.lossTermNames)
        let tensorBoard = TensorBoardOnStart(runDirectory: directory, model: session.model)
        defer { tensorBoard.close() }
        let report = RunReportObserver(directory: directory)
        // The trainer holds its observer weakly; `observers` keeps all three alive for the run.
        let observers = ObserverFanout([progress, tensorBoard, report])
        _ = try session.train(trainSet: trainSet, testSet: testSet, observer: observers, starting: {
            progress.note("latent train \(options.model.rawValue): \(reason); data \(files.dataset.displayName) from \(files.directory); output \(directory.path)")
            if resume { progress.note("resuming after epoch \(session.firstEpoch - 1) of \(options.epochs)") }
        })
        withExtendedLifetime(observers) {}
        progress.finish()
    }
}

/// The run folder: created (or checked writable) before any training starts, so a bad
/// --out fails in a second, not after the first epoch.
enum RunFolder {
    static func prepare(_ directory: URL, resuming: Bool) throws {
        let manager = FileManager.default
        var isDirectory: ObjCBool = false
        if manager.fileExists(atPath: directory.path, isDirectory: &isDirectory) {
            guard isDirectory.boolValue else { throw LatentError.io("--out \(directory.path) is a file, not a folder") }
        } else {
            do {
                try manager.createDirectory(at: directory, withIntermediateDirectories: true)
            } catch {
                throw LatentError.io("cannot create the output folder \(directory.path): \(AtomicFile.describe(error))")
            }
        }
        guard manager.isWritableFile(atPath: directory.path) else {
            throw LatentError.io("the output folder \(directory.path) is not writable")
        }
        // Temporary files of a run killed in the middle of a write.
        AtomicFile.removeStale(in: directory)
    }

    /// Locks the folder itself (flock on its descriptor, released when the process ends,
    /// however it ends; no lock file is left behind), so a second `latent train` into the
    /// same folder fails at once instead of interleaving its checkpoints with the first's.
    static func lock(_ directory: URL) throws -> Int32 {
        let descriptor = open(directory.path, O_RDONLY | O_CLOEXEC)
        guard descriptor >= 0 else {
            throw LatentError.io("cannot open the output folder \(directory.path): \(String(cString: strerror(errno)))")
        }
        guard flock(descriptor, LOCK_EX | LOCK_NB) == 0 else {
            let busy = errno == EWOULDBLOCK
            let reason = String(cString: strerror(errno))
            close(descriptor)
            throw LatentError.io(busy ? "another latent process is writing to \(directory.path); wait for it or choose another --out"
                                      : "cannot lock the output folder \(directory.path): \(reason)")
        }
        return descriptor
    }
}

/// The run's TensorBoard log (DIR/tb), opened when training starts: after the trainer has
/// checked the folder's space, so a run refused for a full disk leaves no event file behind.
/// A log that cannot be opened is a warning; the training goes on without it.
final class TensorBoardOnStart: TrainingObserver {
    let runDirectory: URL
    weak var model: (any GenerativeModel)?
    private(set) var observer: TensorBoardObserver?

    init(runDirectory: URL, model: any GenerativeModel) {
        self.runDirectory = runDirectory
        self.model = model
    }

    func trainingStarted(epochs: ClosedRange<Int>, batchesPerEpoch: Int, trainImages: Int, testImages: Int) {
        if observer == nil, let model {
            do {
                observer = try TensorBoardObserver(runDirectory: runDirectory, model: model)
            } catch {
                FileHandle.standardError.write(Data("warning: no TensorBoard log: \(error)\n".utf8))
            }
        }
        observer?.trainingStarted(epochs: epochs, batchesPerEpoch: batchesPerEpoch, trainImages: trainImages, testImages: testImages)
    }

    func batchFinished(epoch: Int, batch: Int, batchCount: Int, loss: Double?, imagesPerSecond: Double) {
        observer?.batchFinished(epoch: epoch, batch: batch, batchCount: batchCount, loss: loss, imagesPerSecond: imagesPerSecond)
    }

    func epochFinished(_ metrics: EpochMetrics, samplePath: String?) {
        observer?.epochFinished(metrics, samplePath: samplePath)
    }

    func close() { observer?.close() }
}

/// A progress bar on a terminal (epoch, batch, loss, images/s, ETA), one plain line per
/// epoch otherwise; nothing with --quiet.
final class ProgressDisplay: TrainingObserver {
    let quiet: Bool
    let lossNames: [String]
    let interactive = isatty(STDERR_FILENO) == 1
    var epochs: ClosedRange<Int> = 1...1
    var lastLoss: Double?
    var lastDraw = ContinuousClock.now
    var epochStart = ContinuousClock.now

    init(quiet: Bool, lossNames: [String]) {
        self.quiet = quiet
        self.lossNames = lossNames
    }

    func note(_ line: String) {
        if !quiet { FileHandle.standardError.write(Data((line + "\n").utf8)) }
    }

    func trainingStarted(epochs: ClosedRange<Int>, batchesPerEpoch: Int, trainImages: Int, testImages: Int) {
        self.epochs = epochs
        note("\(trainImages) training and \(testImages) test images, \(batchesPerEpoch) batches per epoch, epochs \(epochs.lowerBound)-\(epochs.upperBound)")
    }

    func batchFinished(epoch: Int, batch: Int, batchCount: Int, loss: Double?, imagesPerSecond: Double) {
        if let loss { lastLoss = loss }
        let now = ContinuousClock.now
        if batch == 1 { epochStart = now }
        guard !quiet, interactive else { return }
        guard batch == batchCount || now - lastDraw > .milliseconds(100) else { return }
        lastDraw = now
        let width = 24
        let filled = width * batch / max(batchCount, 1)
        let bar = String(repeating: "#", count: filled) + String(repeating: ".", count: width - filled)
        let elapsed = Double((now - epochStart).components.seconds) + Double((now - epochStart).components.attoseconds) * 1e-18
        let secondsLeft = elapsed / Double(max(batch, 1)) * Double(batchCount - batch)
        let lossText = lastLoss.map { String(format: "%.4g", $0) } ?? "-"
        let line = "\r epoch \(epoch)/\(epochs.upperBound) [\(bar)] \(batch)/\(batchCount) loss \(lossText) "
            + String(format: "%.0f img/s", imagesPerSecond) + " ETA \(Self.clock(secondsLeft)) "
        FileHandle.standardError.write(Data(line.utf8))
    }

    func epochFinished(_ metrics: EpochMetrics, samplePath: String?) {
        guard !quiet else { return }
        if interactive { FileHandle.standardError.write(Data("\r\u{1B}[K".utf8)) }
        let train = metrics.train.map { "\($0.name) \(String(format: "%.4f", $0.value))" }.joined(separator: " ")
        let test = metrics.test.first.map { String(format: "%.4f", $0.value) } ?? "-"
        var line = "epoch \(metrics.epoch)/\(epochs.upperBound): train \(train) | test loss \(test) | \(String(format: "%.0f", metrics.imagesPerSecond)) img/s | \(String(format: "%.1f", metrics.seconds)) s"
        if let samplePath { line += " | \(samplePath)" }
        FileHandle.standardError.write(Data((line + "\n").utf8))
    }

    func finish() {}

    static func clock(_ seconds: Double) -> String {
        guard seconds.isFinite, seconds >= 0 else { return "-" }
        let total = Int(seconds.rounded())
        return String(format: "%d:%02d", total / 60, total % 60)
    }
}
