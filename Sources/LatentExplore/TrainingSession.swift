import Foundation
import LatentCore
import LatentData
import LatentModels
import LatentNN

/// What `latent train` does, without the command line, so that `latent reproduce` (and the
/// tests) run the same trainings in-process: build a fresh model or resume one from its
/// checkpoint, then train it into a run folder with the files of DESIGN.md.
///
///     let session = try TrainingSession(options: options, directory: folder, resume: false, backend: backend)
///     let (trainSet, testSet) = try TrainingSession.loadData(files, limit: session.options.limit)
///     try session.train(trainSet: trainSet, testSet: testSet, observer: progress)
///
/// The folder itself (creating it, locking it) is the caller's: `latent train` has its own
/// checks for that.
public final class TrainingSession {
    /// The options the run trains with: the caller's, or the checkpoint's when resuming
    /// (with a longer `--epochs` when one was asked for).
    public let options: TrainingOptions
    public let model: any GenerativeModel
    public let directory: URL
    /// The first epoch still to train (1 for a fresh run).
    public let firstEpoch: Int
    public let resuming: Bool
    /// Called with the trainer before the first epoch (to change its sample grid, say).
    public var configureTrainer: ((Trainer) -> Void)?

    public var checkpointURL: URL { directory.appendingPathComponent("checkpoint.safetensors") }
    public var configURL: URL { directory.appendingPathComponent("config.json") }

    /// A fresh model from `options`, or with `resume` the model of `directory`'s checkpoint,
    /// which must be a run of `options.model`; `requestedEpochs` then replaces the
    /// checkpoint's epoch count (the rest of the run's options are kept).
    public init(options: TrainingOptions, directory: URL, resume: Bool, requestedEpochs: Int? = nil,
                backend: any Backend) throws {
        self.directory = directory
        resuming = resume
        let checkpointURL = directory.appendingPathComponent("checkpoint.safetensors")
        if resume {
            guard FileManager.default.fileExists(atPath: checkpointURL.path) else {
                throw LatentError.io("--resume: there is no checkpoint at \(checkpointURL.path)")
            }
            let (info, entries) = try Checkpoint.info(at: checkpointURL)
            guard info.options.model == options.model else {
                throw LatentError.io("--resume: \(checkpointURL.path) is a '\(info.options.model.rawValue)' run, not '\(options.model.rawValue)'")
            }
            var resumed = info.options
            if let requestedEpochs { resumed.epochs = requestedEpochs }
            let random = RandomSource(info.random)
            model = try ModelCatalog.makeModel(resumed, backend: backend, random: random)
            try Checkpoint.load(entries, info: info, into: model, source: checkpointURL.path)
            self.options = resumed
            firstEpoch = info.epoch + 1
        } else {
            model = try ModelCatalog.makeModel(options, backend: backend, random: RandomSource(seed: options.seed))
            self.options = options
            firstEpoch = 1
        }
    }

    /// The training and test sets a run reads: the first `limit` training images and
    /// `limit / 6` (at least 1) test images, or all of them.
    public static func loadData(_ files: DatasetFiles, limit: Int?) throws -> (train: Dataset, test: Dataset) {
        let trainSet = try files.load(.train, limit: limit)
        let testSet = try files.load(.test, limit: limit.map { max(1, $0 / 6) })
        return (trainSet, testSet)
    }

    /// Trains the remaining epochs into `directory`, which must exist: checks first that the
    /// folder takes an epoch's files, writes `config.json` on a fresh run and drops metrics
    /// lines of epochs after the checkpoint; `configureTrainer` may adjust the trainer first
    /// (its sample grid, say) and `starting` runs just before the first epoch.
    /// Returns the trainer (its model holds the trained weights).
    @discardableResult
    public func train(trainSet: Dataset, testSet: Dataset, observer: (any TrainingObserver)?,
                      starting: () -> Void = {}) throws -> Trainer {
        let trainer = Trainer(model: model, trainSet: trainSet, testSet: testSet, directory: directory)
        configureTrainer?(trainer)
        // A full or read-only folder fails here, in a second, rather than after an epoch.
        try trainer.checkOutputFolder()
        if !resuming {
            try Self.writeConfig(options, to: configURL)
        }
        // Lines of epochs after the checkpoint (a run killed between its metrics line and its
        // checkpoint, or an older run in the same folder) would be written twice.
        try trainer.truncateMetrics(after: firstEpoch - 1)
        trainer.observer = observer
        starting()
        try trainer.run(firstEpoch: firstEpoch)
        return trainer
    }

    /// `config.json`: the run's options, pretty-printed with sorted keys.
    public static func writeConfig(_ options: TrainingOptions, to url: URL) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        var data = try encoder.encode(options)
        data.append(contentsOf: Array("\n".utf8))
        try AtomicFile.write(data, to: url)
    }
}
