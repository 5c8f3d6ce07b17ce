import ArgumentParser
import Foundation
import LatentData
import LatentExplore
import LatentModels

/// `latent reproduce`: an experiment of the reports from one command.
struct Reproduce: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run an experiment of the reports: its trainings, then the table and pictures the report shows.",
        discussion: """
        Each run trains in-process into DIR/runs/NAME/ (config.json, metrics.jsonl, checkpoint, \
        sample grids, as `latent train` writes them); then DIR/README.md holds the table (with \
        the report's own figures beside ours) and the pictures, DIR/table.csv the table and \
        DIR/*.png the figures. --epochs shortens every run (--epochs 1 for a quick look), --limit \
        trains on the first N images. A run already trained with the same options is not trained \
        again (fewer epochs are resumed) unless --retrain. `all` runs every experiment into \
        DIR/EXPERIMENT/. `latent reproduce --list` names the experiments and their reports.

        Examples:
          latent reproduce --list
          latent reproduce report000-optimizers --epochs 1
          latent reproduce report003-cvae --out runs/cvae-study
          latent reproduce report001-ae-vs-vae-centroids --epochs 3 --limit 20000
          latent reproduce all --epochs 1 --out runs/all
        """
    )

    @Argument(help: ArgumentHelp("The experiment (see --list), or all.", valueName: "EXPERIMENT"))
    var experiment: String?

    @Flag(help: "List the experiments with the report each comes from.")
    var list = false

    @Option(help: ArgumentHelp("Epochs of every run (default: the recipe's).", valueName: "N"))
    var epochs: Int?

    @Option(help: ArgumentHelp("Output folder (default runs/reproduce/EXPERIMENT).", valueName: "DIR"))
    var out: String?

    @Option(help: ArgumentHelp("Train on the first N training images (and N/6 test images).", valueName: "N"))
    var limit: Int?

    @Option(help: ArgumentHelp("Seed of every run (default: each model's).", valueName: "N"))
    var seed: UInt64?

    @Flag(help: "Train every run again even where its folder holds a finished run.")
    var retrain = false

    @Flag(help: "Print nothing but errors.")
    var quiet = false

    @Flag(help: "With --list: a JSON array; otherwise a JSON object per experiment (files written).")
    var json = false

    @OptionGroup var backendOptions: BackendOptions
    @OptionGroup var datasetOptions: DatasetOptions

    func validate() throws {
        if list { return }
        guard let experiment else { throw ValidationError("name an experiment (latent reproduce --list shows them) or all") }
        if experiment != "all", Recipes.named(experiment) == nil {
            throw ValidationError("no experiment '\(experiment)'; latent reproduce --list shows them")
        }
        if let epochs, !(1...100_000).contains(epochs) { throw ValidationError("--epochs must be 1...100000, got \(epochs)") }
        if let limit, limit < 1 { throw ValidationError("--limit must be at least 1, got \(limit)") }
    }

    func run() throws {
        if list {
            if json {
                let rows = Recipes.all.map { ["name": $0.name, "report": $0.report, "title": $0.title, "runs": $0.runs.count] as [String: Any] }
                let data = try JSONSerialization.data(withJSONObject: rows, options: [.sortedKeys])
                print(String(decoding: data, as: UTF8.self))
                return
            }
            let width = Recipes.all.map(\.name.count).max() ?? 0
            for recipe in Recipes.all {
                let padded = recipe.name.padding(toLength: width, withPad: " ", startingAt: 0)
                print("\(padded)  report \(recipe.report): \(recipe.title) (\(recipe.runs.count) run\(recipe.runs.count == 1 ? "" : "s"))")
            }
            return
        }
        guard let experiment else { return }
        let recipes = experiment == "all" ? Recipes.all : Recipes.named(experiment).map { [$0] } ?? []
        let (backend, reason) = try backendOptions.makeBackend()
        let files = try datasetOptions.locate()
        let (trainSet, testSet) = try TrainingSession.loadData(files, limit: limit)
        let note: (String) -> Void = { line in if !quiet { FileHandle.standardError.write(Data((line + "\n").utf8)) } }
        note("latent reproduce: \(reason); data \(files.dataset.displayName) from \(files.directory), \(trainSet.count) training and \(testSet.count) test images")
        for recipe in recipes {
            let base = out.map { URL(fileURLWithPath: $0) } ?? URL(fileURLWithPath: "runs/reproduce")
            let folder = experiment == "all" || out == nil ? base.appendingPathComponent(recipe.name) : base
            note("== \(recipe.name): \(recipe.title) -> \(folder.path)")
            let runner = RecipeRunner(recipe: recipe, output: folder, backend: backend)
            runner.epochs = epochs
            runner.limit = limit
            runner.seed = seed
            runner.retrain = retrain
            runner.dataset = files.dataset.rawValue
            runner.classNames = files.dataset.classNames
            runner.log = note
            let quiet = self.quiet
            runner.makeObserver = { _, model in ProgressDisplay(quiet: quiet, lossNames: model.lossTermNames) }
            // One reproduce per experiment folder at a time, as `latent train` does per run.
            try RunFolder.prepare(folder, resuming: true)
            let lock = try RunFolder.lock(folder)
            defer { close(lock) }
            let result = try runner.run(trainSet: trainSet, testSet: testSet)
            if json {
                let object: [String: Any] = ["experiment": recipe.name, "readme": result.readme.path, "csv": result.csv.path,
                                             "figures": result.figures.map(\.path), "runs": result.runFolders.map(\.path)]
                let data = try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .withoutEscapingSlashes])
                print(String(decoding: data, as: UTF8.self))
            } else {
                print("wrote \(result.readme.path): the table of \(recipe.runs.count) run\(recipe.runs.count == 1 ? "" : "s") and \(result.figures.count) figure\(result.figures.count == 1 ? "" : "s")")
                if !quiet { print(result.table.markdown, terminator: "") }
            }
        }
    }
}
