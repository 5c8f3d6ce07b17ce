import Foundation
import LatentCore
import LatentData
import LatentExplore
import LatentModels
import LatentNN
import XCTest

/// Every recipe of `latent reproduce` runs to the end with one epoch on a tiny subset and
/// writes its table and pictures.
final class RecipeTests: XCTestCase {
    static let pngSignature: [UInt8] = [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]

    func runRecipe(_ recipe: Recipe, train: Dataset, test: Dataset, limit: Int) throws -> RecipeRunner.Result {
        let folder = try Explore.temporaryFolder(self).appendingPathComponent(recipe.name)
        let runner = RecipeRunner(recipe: recipe, output: folder, backend: Explore.backend)
        runner.epochs = 1
        runner.limit = limit
        // Debug builds run the convolutions slowly: small pictures keep the test short.
        runner.imageCap = 8
        return try runner.run(trainSet: train, testSet: test)
    }

    func check(_ recipe: Recipe, _ result: RecipeRunner.Result) throws {
        let readme = try String(contentsOf: result.readme, encoding: .utf8)
        XCTAssertTrue(readme.contains("latent reproduce \(recipe.name) --epochs 1"), recipe.name)
        for run in recipe.runs {
            XCTAssertTrue(readme.contains("| \(run.name) | \(run.model.rawValue) |"), "\(recipe.name): no row for \(run.name)")
            let metrics = try String(contentsOf: result.runFolders[0].deletingLastPathComponent()
                .appendingPathComponent(run.name).appendingPathComponent("metrics.jsonl"), encoding: .utf8)
            XCTAssertEqual(metrics.split(separator: "\n").count, 1, "\(recipe.name)/\(run.name): one epoch")
        }
        let csv = try String(contentsOf: result.csv, encoding: .utf8)
        XCTAssertEqual(csv.split(separator: "\n").count, recipe.runs.count + 1, recipe.name)
        XCTAssertFalse(result.figures.isEmpty, "\(recipe.name) drew no figure")
        for figure in result.figures {
            let bytes = try [UInt8](Data(contentsOf: figure))
            XCTAssertEqual(Array(bytes.prefix(8)), Self.pngSignature, figure.path)
            XCTAssertTrue(readme.contains("(\(figure.lastPathComponent))"), "\(figure.lastPathComponent) is not in the README")
        }
        // Every figure request that applies to some run produced a file.
        for request in recipe.figures {
            XCTAssertTrue(result.figures.contains { $0.lastPathComponent.hasPrefix(request.figure.stem) },
                          "\(recipe.name): no \(request.figure.stem) figure")
        }
    }

    func testEveryRecipeRunsOneEpochOnATinySubset() throws {
        // Ten training images (one of each class: centroids need them all), four test images.
        let train = try Explore.dataset(count: 10, seed: 11)
        let test = try Explore.dataset(count: 4, seed: 12)
        XCTAssertEqual(Recipes.all.count, 17)
        XCTAssertEqual(Set(Recipes.all.map(\.name)).count, Recipes.all.count, "recipe names are unique")
        for recipe in Recipes.all {
            let start = Date()
            do {
                try check(recipe, try runRecipe(recipe, train: train, test: test, limit: 10))
                print("\(recipe.name): \(String(format: "%.1f", Date().timeIntervalSince(start))) s")
            } catch {
                XCTFail("\(recipe.name): \(error)")
            }
        }
    }

    func testIssueNamesEveryExperiment() {
        let named = ["report000-optimizers", "report000-tuning", "report000-latent1", "report000-latent2",
                     "report001-ae-vs-vae-centroids", "report001-vqvae", "report001-designed-latent", "report001-pca",
                     "report002-latent1", "report002-recon-only", "report003-cvae", "report003-ablations",
                     "report004-losses", "report004-beta", "report004-noise", "report004-gan"]
        for name in named { XCTAssertNotNil(Recipes.named(name), name) }
        for recipe in Recipes.all {
            for run in recipe.runs {
                XCTAssertNoThrow(try recipe.options(for: run, epochs: nil, limit: nil, seed: nil, dataset: "mnist").validate(),
                                 "\(recipe.name)/\(run.name)")
            }
        }
    }

    func testKnobsReachTheRunsOptions() throws {
        let recipe = try XCTUnwrap(Recipes.named("report000-tuning"))
        let dropout = try XCTUnwrap(recipe.runs.first { $0.name == "dropout" })
        let options = recipe.options(for: dropout, epochs: 2, limit: 100, seed: 7, dataset: "mnist")
        XCTAssertEqual(options.latentDim, 20)
        XCTAssertEqual(options.dropout, 0.2)
        XCTAssertEqual(options.batchSize, 64)
        XCTAssertEqual(options.optimizer, "adamw")
        XCTAssertTrue(options.batchnorm)
        XCTAssertEqual(options.depth, 3)
        XCTAssertEqual([options.epochs, options.limit, Int(options.seed)], [2, 100, 7])
        XCTAssertEqual(Knobs.flags(options, ignoring: ["epochs", "limit", "seed"]),
                       ["--batch-size 64", "--optimizer adamw", "--latent-dim 20", "--batchnorm", "--dropout 0.2"])
        // A value of 1 is a number, not a flag (JSON's 1 also reads as true).
        let latent1 = try XCTUnwrap(Recipes.named("report002-recon-only"))
        let recon = latent1.options(for: latent1.runs[0], epochs: nil, limit: nil, seed: nil, dataset: "mnist")
        XCTAssertEqual(Knobs.flags(recon), ["--latent-dim 1", "--depth 2", "--no-kl"])
    }

    func testAFinishedRunIsNotTrainedAgain() throws {
        let recipe = try XCTUnwrap(Recipes.named("report001-designed-latent"))
        let train = try Explore.dataset(count: 30, seed: 13)
        let test = try Explore.dataset(count: 6, seed: 14)
        let folder = try Explore.temporaryFolder(self)
        let runner = RecipeRunner(recipe: recipe, output: folder, backend: Explore.backend)
        runner.epochs = 1
        runner.limit = 30
        try runner.run(trainSet: train, testSet: test)
        let checkpoint = runner.folder(of: recipe.runs[0]).appendingPathComponent("checkpoint.safetensors")
        let first = try Data(contentsOf: checkpoint)
        var lines: [String] = []
        runner.log = { lines.append($0) }
        try runner.run(trainSet: train, testSet: test)
        XCTAssertEqual(try Data(contentsOf: checkpoint), first)
        XCTAssertTrue(lines.contains { $0.contains("not trained again") }, lines.joined(separator: "\n"))
        // Two epochs resume the one-epoch run.
        runner.epochs = 2
        try runner.run(trainSet: train, testSet: test)
        let metrics = try String(contentsOf: runner.folder(of: recipe.runs[0]).appendingPathComponent("metrics.jsonl"), encoding: .utf8)
        XCTAssertEqual(metrics.split(separator: "\n").count, 2)
    }

    func testARecipeOnRealMNISTWhenAvailable() throws {
        guard let (train, test) = Explore.realMNIST(limit: 600) else {
            throw XCTSkip("LATENT_TEST_MNIST is not set; the synthetic tests cover the recipes")
        }
        let recipe = try XCTUnwrap(Recipes.named("report002-latent1"))
        try check(recipe, try runRecipe(recipe, train: train, test: test, limit: 600))
    }
}
