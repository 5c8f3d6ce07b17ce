import Foundation
import LatentCore
import LatentData
import LatentExplore
import LatentModels
import XCTest

final class CompareTests: XCTestCase {
    func train(_ options: TrainingOptions, into folder: URL) throws {
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        let session = try TrainingSession(options: options, directory: folder, resume: false, backend: Explore.backend)
        try session.train(trainSet: try Explore.dataset(count: 48, seed: 1), testSet: try Explore.dataset(count: 12, seed: 2), observer: nil)
    }

    func testTableOfTwoRunsWithTheirKnobsAndCurves() throws {
        let root = try Explore.temporaryFolder(self)
        var small = Explore.options(.vaeFC)
        small.epochs = 2
        var wide = small
        wide.latentDim = 2
        wide.noise = 0.1
        try train(small, into: root.appendingPathComponent("small"))
        try train(wide, into: root.appendingPathComponent("wide"))
        let records = try ["small", "wide"].map { try RunRecord.read(root.appendingPathComponent($0).path) }
        XCTAssertEqual(records.map(\.epochs.count), [2, 2])
        XCTAssertEqual(records[0].knobs, ["--batch-size 16", "--latent-dim 3", "--hidden 32", "--depth 2", "--seed 5"])
        XCTAssertEqual(records[1].knobs, ["--batch-size 16", "--latent-dim 2", "--hidden 32", "--depth 2", "--noise 0.1", "--seed 5"])
        XCTAssertNotNil(records[0].final("train_loss"))
        XCTAssertNotNil(records[0].imagesPerSecond)

        let table = ComparisonTable(records: records, terms: ComparisonTable.commonTerms(records))
        XCTAssertEqual(table.terms, ["kl", "recon", "test_kl", "test_recon"])
        let lines = table.markdown.split(separator: "\n")
        XCTAssertEqual(lines.count, 4)
        XCTAssertTrue(lines[0].hasPrefix("| run | model | knobs | epochs | train loss | test loss | kl |"), String(lines[0]))
        XCTAssertTrue(lines[2].hasPrefix("| small | vae-fc | --batch-size 16"), String(lines[2]))
        let csv = table.csv.split(separator: "\n")
        XCTAssertEqual(csv.count, 3)
        XCTAssertTrue(csv[0].hasPrefix("run,model,knobs,epochs,train_loss,test_loss"), String(csv[0]))
        let trainLoss = try XCTUnwrap(records[1].final("train_loss"))
        XCTAssertTrue(csv[2].contains(String(format: "%.6g", trainLoss)), String(csv[2]))

        let chart = table.lossChart()
        XCTAssertEqual(chart.series.map(\.name), ["small", "wide"])
        XCTAssertEqual(chart.series[0].y.count, 2)
        let image = chart.render()
        XCTAssertEqual([image.width, image.height], [800, 500])
    }

    func testSameFolderNamesGetTheirParents() throws {
        let root = try Explore.temporaryFolder(self)
        let options = Explore.options(.ae)
        try train(options, into: root.appendingPathComponent("a/run"))
        try train(options, into: root.appendingPathComponent("b/run"))
        let table = ComparisonTable(records: try ["a/run", "b/run"].map { try RunRecord.read(root.appendingPathComponent($0).path) })
        XCTAssertEqual(table.records.map(\.name), ["a/run", "b/run"])
    }

    func testAFolderThatIsNotARunIsOneLine() throws {
        let root = try Explore.temporaryFolder(self)
        XCTAssertThrowsError(try RunRecord.read(root.path)) { error in
            XCTAssertEqual("\(error)", "\(root.path) is not a run folder: it has no readable config.json")
        }
    }

    func testTrainingSessionWritesTheConfigLatentTrainWrote() throws {
        let folder = try Explore.temporaryFolder(self)
        let options = Explore.options(.vaeFC)
        try train(options, into: folder)
        let data = try Data(contentsOf: folder.appendingPathComponent("config.json"))
        XCTAssertEqual(try JSONDecoder().decode(TrainingOptions.self, from: data), options)
        XCTAssertEqual(data.last, UInt8(ascii: "\n"))
        // Resuming with more epochs keeps the run's options and appends one line.
        var more = options
        more.epochs = 2
        let session = try TrainingSession(options: more, directory: folder, resume: true, requestedEpochs: 2, backend: Explore.backend)
        XCTAssertEqual(session.firstEpoch, 2)
        try session.train(trainSet: try Explore.dataset(count: 48, seed: 1), testSet: try Explore.dataset(count: 12, seed: 2), observer: nil)
        XCTAssertEqual(try RunRecord.read(folder.path).epochs.count, 2)
        var other = options
        other.model = .ae
        XCTAssertThrowsError(try TrainingSession(options: other, directory: folder, resume: true, backend: Explore.backend))
    }
}
