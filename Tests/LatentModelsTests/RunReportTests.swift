import Foundation
import LatentData
import LatentModels
import XCTest

final class RunReportTests: XCTestCase {
    /// The page a run's observer leaves: curves, every grid as the very PNG of the folder,
    /// the final metrics and the configuration, nothing fetched from elsewhere.
    func testTrainingLeavesSelfContainedReport() throws {
        let (folder, _) = try ObservedRun.train(self)
        let html = try String(contentsOf: folder.appendingPathComponent("report.html"), encoding: .utf8)
        XCTAssertTrue(html.hasPrefix("<!DOCTYPE html>"))
        XCTAssertTrue(html.hasSuffix("</html>\n"))
        // Curves: loss, recon, kl and the speed, each with a train and a test line.
        XCTAssertEqual(html.components(separatedBy: "<svg ").count - 1, 4)
        XCTAssertEqual(html.components(separatedBy: "class=\"series\" data-name=\"test\"").count - 1, 3)
        // Grids: the final one beside the metrics, then one per epoch.
        let images = Self.embeddedImages(html)
        XCTAssertEqual(images.count, 1 + ObservedRun.epochs)
        for epoch in 1...ObservedRun.epochs {
            let png = try Data(contentsOf: folder.appendingPathComponent(String(format: "samples-e%03d.png", epoch)))
            XCTAssertTrue(images.contains(png), "the grid of epoch \(epoch) is not embedded as it is")
        }
        XCTAssertTrue(html.contains("<table id=\"final-metrics\"><tr><th class=\"key\">epoch 2</th>"))
        XCTAssertTrue(html.contains("<td class=\"key\">kl</td>"))
        XCTAssertTrue(html.contains("<td class=\"key\">model</td><td class=\"key\">vae-fc</td>"))
        XCTAssertTrue(html.contains("tensorboard --logdir"))
        // Offline: no address outside the page (the SVG namespace is a name, not a fetch).
        let external = html.replacingOccurrences(of: "xmlns=\"http://www.w3.org/2000/svg\"", with: "")
        XCTAssertFalse(external.contains("http://") || external.contains("https://") || external.contains("src=\"/"))
        // No temporary file left behind by the atomic writes.
        let leftovers = try FileManager.default.contentsOfDirectory(atPath: folder.path).filter { $0.contains(".tmp-") }
        XCTAssertEqual(leftovers, [])
    }

    /// An older run (no report, no grids: the classifier) read from its files alone.
    func testReportOfRunWithoutGrids() throws {
        let folder = try temporaryDirectory(self)
        try Data("{\n  \"model\" : \"classifier\",\n  \"learningRate\" : 0.001,\n  \"kl\" : true,\n  \"limit\" : null\n}\n".utf8)
            .write(to: folder.appendingPathComponent("config.json"))
        let lines = [
            "{\"epoch\": 1, \"train_loss\": 0.5, \"test_loss\": 0.4, \"error_rate\": 0.1, \"test_error_rate\": 0.09, \"images_per_sec\": 1000, \"backend\": \"cpu\", \"seconds\": 2}",
            "not json",
            "{\"epoch\": 2, \"train_loss\": 0.3, \"test_loss\": null, \"error_rate\": 0.05, \"test_error_rate\": 0.06, \"images_per_sec\": 1100, \"backend\": \"cpu\", \"seconds\": 2}",
        ]
        try Data(lines.joined(separator: "\n").utf8).write(to: folder.appendingPathComponent("metrics.jsonl"))
        let report = try RunReport(directory: folder)
        XCTAssertEqual(report.epochs.count, 2)
        XCTAssertEqual(report.terms.map(\.name), ["loss", "error_rate"])
        XCTAssertEqual(report.config.map(\.key), ["kl", "learningRate", "limit", "model"])
        XCTAssertEqual(report.config.map(\.value), ["true", "0.001", "null", "classifier"])
        let url = try report.write()
        XCTAssertEqual(url.lastPathComponent, "report.html")
        let html = try String(contentsOf: url, encoding: .utf8)
        XCTAssertTrue(html.contains("this model does not generate images"))
        XCTAssertTrue(html.contains("<title>classifier — \(folder.lastPathComponent)</title>"))
        XCTAssertEqual(Self.embeddedImages(html).count, 0)
        XCTAssertEqual(html.components(separatedBy: "<svg ").count - 1, 3)
        // The missing test loss of epoch 2 shows as a dash, not "nan".
        XCTAssertFalse(html.lowercased().contains(">nan<"))
    }

    /// `reproducible: true` in metrics.jsonl is a mode of the backend, not a curve.
    func testReproducibleFlagNamesTheBackendAndIsNoTerm() throws {
        let folder = try temporaryDirectory(self)
        try Data("{\n  \"model\" : \"classifier\"\n}\n".utf8).write(to: folder.appendingPathComponent("config.json"))
        let line = "{\"epoch\": 1, \"train_loss\": 0.5, \"test_loss\": 0.4, \"error_rate\": 0.1, \"images_per_sec\": 1000, "
            + "\"backend\": \"opencl\", \"seconds\": 2, \"reproducible\": true}"
        try Data(line.utf8).write(to: folder.appendingPathComponent("metrics.jsonl"))
        let report = try RunReport(directory: folder)
        XCTAssertEqual(report.terms.map(\.name), ["loss", "error_rate"])
        XCTAssertEqual(report.epochs.first?.backend, "opencl, reproducible")
    }

    func testManyGridsAreThinnedKeepingFirstAndLast() throws {
        let folder = try temporaryDirectory(self)
        try Data("{\"model\": \"vae-fc\"}".utf8).write(to: folder.appendingPathComponent("config.json"))
        let png = RasterImage(width: 4, height: 4, format: .gray, fill: [9]).pngData()
        for epoch in 1...95 {
            try Data(png).write(to: folder.appendingPathComponent(String(format: "samples-e%03d.png", epoch)))
        }
        let html = try RunReport(directory: folder).html()
        XCTAssertEqual(Self.embeddedImages(html).count, 1 + RunReport.maximumGrids)
        XCTAssertTrue(html.contains("<figcaption>epoch 1</figcaption>"))
        XCTAssertTrue(html.contains("<figcaption>epoch 95</figcaption>"))
        XCTAssertTrue(html.contains("40 of 95 grids"))
    }

    func testFoldersThatAreNotRunsAreRefusedByName() throws {
        let folder = try temporaryDirectory(self)
        XCTAssertThrowsError(try RunReport(directory: folder)) { error in
            XCTAssertTrue("\(error)".contains("no readable config.json"), "\(error)")
        }
        let missing = folder.appendingPathComponent("nowhere")
        XCTAssertThrowsError(try RunReport(directory: missing)) { error in
            XCTAssertTrue("\(error)".contains("is not a folder"), "\(error)")
        }
        try Data("[1, 2]".utf8).write(to: folder.appendingPathComponent("config.json"))
        XCTAssertThrowsError(try RunReport(directory: folder)) { error in
            XCTAssertTrue("\(error)".contains("not a JSON object"), "\(error)")
        }
    }

    /// The PNG files embedded as data URIs, decoded.
    static func embeddedImages(_ html: String) -> [Data] {
        html.components(separatedBy: "src=\"data:image/png;base64,").dropFirst().compactMap { part in
            part.split(separator: "\"", maxSplits: 1).first.flatMap { Data(base64Encoded: String($0)) }
        }
    }
}
