import Foundation
import LatentCore
import LatentData
import LatentModels
import LatentNN

/// Runs a recipe: trains each of its runs in-process with `TrainingSession` into
/// `DIR/runs/NAME/` (ordinary run folders, so `latent compare` reads them too), then writes
/// the table (`DIR/README.md` with the Markdown table and the pictures, `DIR/table.csv`) and
/// the figures (`DIR/*.png`).
///
/// A run whose folder already holds a checkpoint of the same options is not trained again
/// (one of fewer epochs is resumed), so drawing the pictures again costs no training;
/// `retrain` starts every run afresh.
public final class RecipeRunner {
    public let recipe: Recipe
    public let output: URL
    public let backend: any Backend
    /// `--epochs`: replaces every run's epoch count.
    public var epochs: Int?
    /// `--limit`: the first N training images (and N / 6 test images) only.
    public var limit: Int?
    public var seed: UInt64?
    public var dataset = "mnist"
    public var classNames = (0...9).map(String.init)
    public var retrain = false
    /// Images encoded for centroids (the first N training images).
    public var centroidImages = 10_000
    /// At most this many images in each samples, reconstructions and class-row picture, and
    /// in the trainer's per-epoch sample grid (nil: the recipe's counts). For quick tests.
    public var imageCap: Int?
    /// Progress per run (nil: none).
    public var makeObserver: ((RecipeRun, any GenerativeModel) -> (any TrainingObserver)?)?
    /// One line per step.
    public var log: (String) -> Void = { _ in }
    /// A line for the README saying how the data was found.
    public var dataNote = ""

    public struct Result {
        public var readme: URL
        public var csv: URL
        /// Every figure written, in order.
        public var figures: [URL]
        public var runFolders: [URL]
        public var table: ComparisonTable
    }

    public init(recipe: Recipe, output: URL, backend: any Backend) {
        self.recipe = recipe
        self.output = output
        self.backend = backend
    }

    public func folder(of run: RecipeRun) -> URL {
        output.appendingPathComponent("runs").appendingPathComponent(run.name)
    }

    /// Trains every run, then draws the table and figures.
    @discardableResult
    public func run(trainSet: Dataset, testSet: Dataset) throws -> Result {
        try FileManager.default.createDirectory(at: output, withIntermediateDirectories: true)
        var models: [String: any GenerativeModel] = [:]
        for (index, run) in recipe.runs.enumerated() {
            log("[\(index + 1)/\(recipe.runs.count)] \(run.name): \(run.model.rawValue) \(Knobs.flags(options(for: run), ignoring: ["limit"]).joined(separator: " "))")
            models[run.name] = try train(run, trainSet: trainSet, testSet: testSet)
        }
        var figures: [URL] = []
        var extraColumns: [(title: String, values: [String: String])] = []
        var stemCounts: [String: Int] = [:]
        var sections: [String] = []
        for request in recipe.figures {
            let occurrence = stemCounts[request.figure.stem, default: 0]
            stemCounts[request.figure.stem] = occurrence + 1
            if request.figure == .lossCurves {
                let url = output.appendingPathComponent(fileName(request.figure.stem, run: nil, occurrence: occurrence))
                let records = try recipe.runs.map { try RunRecord.read(folder(of: $0).path) }
                try ComparisonTable(records: records).lossChart().render().writePNG(to: url.path)
                figures.append(url)
                sections.append(section("Training loss per epoch, every run", url))
                continue
            }
            let chosen = recipe.runs.filter { request.runs?.contains($0.name) ?? true }
            for run in chosen {
                guard let model = models[run.name] else { continue }
                let name = fileName(request.figure.stem, run: recipe.runs.count > 1 ? run.name : nil, occurrence: occurrence)
                let url = output.appendingPathComponent(name)
                guard let caption = try draw(request.figure, model: model, run: run, to: url, trainSet: trainSet,
                                             testSet: testSet, columns: &extraColumns) else {
                    log("  \(request.figure.stem) does not apply to \(run.name) (\(run.model.rawValue)); skipped")
                    continue
                }
                log("  wrote \(url.path)")
                figures.append(url)
                sections.append(section(caption, url))
            }
        }
        let records = try recipe.runs.map { try RunRecord.read(folder(of: $0).path) }
        let available = Set(ComparisonTable.commonTerms(records))
        var table = ComparisonTable(records: records, terms: recipe.terms.filter(available.contains))
        let reported = Dictionary(recipe.runs.compactMap { run in run.reported.map { (run.name, $0) } }, uniquingKeysWith: { a, _ in a })
        table.extraColumns = extraColumns
        if !reported.isEmpty { table.extraColumns.append((recipe.reportedColumn, reported)) }
        let csv = output.appendingPathComponent("table.csv")
        try AtomicFile.write(Data(table.csv.utf8), to: csv)
        let readme = output.appendingPathComponent("README.md")
        try AtomicFile.write(Data(readmeText(table: table, sections: sections, trainSet: trainSet, testSet: testSet).utf8), to: readme)
        return Result(readme: readme, csv: csv, figures: figures, runFolders: recipe.runs.map(folder), table: table)
    }

    func options(for run: RecipeRun) -> TrainingOptions {
        recipe.options(for: run, epochs: epochs, limit: limit, seed: seed, dataset: dataset)
    }

    func fileName(_ stem: String, run: String?, occurrence: Int) -> String {
        stem + (run.map { "-\($0)" } ?? "") + (occurrence > 0 ? "-\(occurrence + 1)" : "") + ".png"
    }

    func section(_ caption: String, _ url: URL) -> String {
        "### \(caption)\n\n![\(caption)](\(url.lastPathComponent))\n"
    }

    /// Trains `run` (or finds it trained) and returns its model.
    func train(_ run: RecipeRun, trainSet: Dataset, testSet: Dataset) throws -> any GenerativeModel {
        let options = options(for: run)
        try options.validate()
        let directory = folder(of: run)
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let checkpoint = directory.appendingPathComponent("checkpoint.safetensors")
        var resume = false
        if !retrain, FileManager.default.fileExists(atPath: checkpoint.path),
           let info = try? Checkpoint.info(at: checkpoint).info {
            var theirs = info.options, ours = options
            theirs.epochs = 0
            ours.epochs = 0
            if theirs == ours {
                if info.epoch >= options.epochs, info.options.epochs == options.epochs {
                    log("  \(directory.path) already holds \(info.epoch) epochs of this run; not trained again")
                    return try LoadedModel.load(checkpoint.path, backend: backend).model
                }
                resume = info.epoch < options.epochs
            }
        }
        let session = try TrainingSession(options: options, directory: directory, resume: resume,
                                          requestedEpochs: options.epochs, backend: backend)
        let observer = makeObserver?(run, session.model)
        if let cap = imageCap {
            session.configureTrainer = { trainer in trainer.sampleCount = max(1, min(trainer.sampleCount, cap)) }
        }
        try session.train(trainSet: trainSet, testSet: testSet, observer: observer)
        return session.model
    }

    /// Draws one figure of one run; nil when the figure does not apply to the model.
    func draw(_ figure: Figure, model: any GenerativeModel, run: RecipeRun, to url: URL, trainSet: Dataset,
              testSet: Dataset, columns: inout [(title: String, values: [String: String])]) throws -> String? {
        let capabilities = Capability.of(model)
        let seed: UInt64 = 1
        func capped(_ count: Int) -> Int { max(1, min(count, imageCap ?? count)) }
        let label = run.name == model.options.model.rawValue ? run.name : "\(run.name) (\(model.options.model.rawValue))"
        func write(_ table: ImageTable) throws {
            let (width, height) = table.renderedSize()
            try table.render(scale: max(width, height) > 2400 ? 1 : 2).writePNG(to: url.path)
        }
        switch figure {
        case .lossCurves:
            return nil
        case .samples(let count):
            guard capabilities.contains(.generate) else { return nil }
            try write(try Pictures.samples(model, count: capped(count), columns: 8, seed: seed))
            return "Samples of \(label)"
        case .classRows(let perClass):
            guard LatentOps.isConditional(model) else { return nil }
            try write(try Pictures.classRows(model, perClass: capped(perClass), seed: seed))
            return "Classes 0 to 9, one per row, from \(label)"
        case .reconstructions(let count):
            guard let model = model as? any ReconstructingModel else { return nil }
            let shown = min(capped(count), testSet.count)
            try write(try Pictures.reconstructions(model, dataset: testSet, indices: Array(0..<shown), columns: 8).table)
            return "Test images over their reconstructions, \(label)"
        case .denoise(let noise, let count):
            guard let model = model as? any ReconstructingModel else { return nil }
            let level = noise ?? (model.options.noise > 0 ? model.options.noise : 0.1)
            let shown = min(capped(count), testSet.count)
            try write(try Pictures.reconstructions(model, dataset: testSet, indices: Array(0..<shown), columns: 8,
                                                   noise: level, seed: seed).table)
            return String(format: "Test images with %g %% salt-and-pepper noise over their reconstructions, %@", level * 100, label)
        case .sweep(let from, let to, let steps, let perRow):
            guard let decoder = model as? any LatentDecodingModel, decoder.codeSize == 1 else { return nil }
            try write(try Pictures.sweep(decoder, from: from, to: to, steps: steps, columns: perRow))
            return "\(steps) codes from \(Knobs.text(NSNumber(value: from))) to \(Knobs.text(NSNumber(value: to))), left to right and top to bottom, \(label)"
        case .codeRangeSweep(let steps, let perRow):
            guard let encoder = model as? any LatentEncodingModel, encoder.codeSize == 1 else { return nil }
            let (codes, _) = try LatentOps.encode(encoder, dataset: testSet)
            let sorted = codes.map(Double.init).sorted()
            guard let first = sorted.first, let last = sorted.last else { return nil }
            let low = sorted[Int(Double(sorted.count - 1) * 0.01)], high = sorted[Int(Double(sorted.count - 1) * 0.99)]
            let title = "test codes: min, 1 %, 99 %, max"
            if let index = columns.firstIndex(where: { $0.title == title }) {
                columns[index].values[run.name] = String(format: "%.2f, %.2f, %.2f, %.2f", first, low, high, last)
            } else {
                columns.append((title, [run.name: String(format: "%.2f, %.2f, %.2f, %.2f", first, low, high, last)]))
            }
            try write(try Pictures.sweep(encoder, from: low, to: high, steps: steps, columns: perRow))
            return String(format: "%d codes over the 1st to 99th percentile of the test codes (%.2f to %.2f), %@", steps, low, high, label)
        case .manifold(let range, let steps):
            guard let decoder = model as? any LatentDecodingModel, decoder.codeSize == 2 else { return nil }
            try write(try Pictures.manifold(decoder, range: range, steps: steps))
            return "A \(steps) x \(steps) grid over [\(Knobs.text(NSNumber(value: -range))), \(Knobs.text(NSNumber(value: range)))]^2 (z1 to the right, z2 up), \(label)"
        case .centroids(let noise):
            guard let decoder = model as? any LatentDecodingModel,
                  decoder is any LatentEncodingModel || decoder is DesignedLatent else { return nil }
            let centroids = try Pictures.centroids(decoder, dataset: trainSet, limit: centroidImages)
            try write(try Pictures.centroidRows(decoder, centroids: centroids, noise: noise, relative: true, seed: seed))
            let levels = ([0] + noise).map { Knobs.text(NSNumber(value: $0)) }.joined(separator: ", ")
            return "Class centroids 0 to 9 (top row), then with noise of \(levels) times the codes' spread, one row per level, \(label)"
        case .scatter:
            guard let encoder = model as? any LatentEncodingModel else { return nil }
            let (chart, _, _, _) = try Pictures.scatter(encoder, dataset: testSet, classNames: classNames)
            try chart.render().writePNG(to: url.path)
            return "Test-set codes coloured by class, \(label)"
        case .interpolation(let pairs, let steps):
            guard let encoder = model as? any LatentEncodingModel else { return nil }
            let chosen = try Pictures.interpolationPairs(testSet, count: min(pairs, max(1, testSet.count / 3)))
            try write(try Pictures.interpolation(encoder, dataset: testSet, pairs: chosen, steps: steps))
            return "Interpolation between pairs of test images (the real images at both ends), \(label)"
        }
    }

    func readmeText(table: ComparisonTable, sections: [String], trainSet: Dataset, testSet: Dataset) -> String {
        var flags = "latent reproduce \(recipe.name)"
        if let epochs { flags += " --epochs \(epochs)" }
        if let limit { flags += " --limit \(limit)" }
        if let seed { flags += " --seed \(seed)" }
        let epochText = epochs.map { "\($0) epoch\($0 == 1 ? "" : "s") per run" } ?? "the recipe's \(recipe.epochs) epochs per run (the report's where it names them)"
        var text = "# \(recipe.title)\n\n"
        text += "Recipe `\(recipe.name)`, from report \(recipe.report).\n\n"
        text += "\(recipe.summary)\n\n"
        text += "Made with `\(flags)`: \(epochText), \(trainSet.count) training and \(testSet.count) test images of \(dataset) on the \(backend.name) backend."
        if !dataNote.isEmpty { text += " \(dataNote)" }
        text += " Losses are per image (the model's own objective); each run's folder is `runs/NAME/`.\n\n"
        text += "## Table\n\n" + table.markdown + "\n"
        if !sections.isEmpty { text += "## Figures\n\n" + sections.joined(separator: "\n") }
        return text
    }
}
