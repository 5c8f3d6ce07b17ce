import Foundation
import LatentCore
import LatentData
import LatentNN

/// `DIR/report.html`: one self-contained page per run, readable offline — loss curves as
/// inline SVG, every epoch's sample grid as a base64 PNG, the final metrics, a table of
/// all epochs and the configuration. Built from the run folder's own files (`config.json`,
/// `metrics.jsonl`, `samples-eNNN.png`), so it works on any run, old or running.
public struct RunReport {
    public struct Epoch {
        /// The line's fields in file order (numbers; strings such as `backend` aside).
        public var fields: [(key: String, value: Double?)]
        public var backend: String?

        public subscript(_ key: String) -> Double? {
            fields.first { $0.key == key }?.value ?? nil
        }
    }

    public var directory: URL
    /// `config.json`'s entries, sorted by key, values as JSON text.
    public var config: [(key: String, value: String)]
    public var epochs: [Epoch]
    /// (epoch, PNG bytes) of each `samples-eNNN.png`, by epoch.
    public var samples: [(epoch: Int, png: [UInt8])]

    /// At most this many sample grids go into the page (evenly spaced, the first and the
    /// last always among them), so a 500-epoch run still gives a page of a few MB.
    public static let maximumGrids = 40

    public static func url(in directory: URL) -> URL { directory.appendingPathComponent("report.html") }

    /// Reads a run folder; it must exist and hold a `config.json` (metrics and samples may
    /// not be there yet).
    public init(directory: URL) throws {
        self.directory = directory
        let manager = FileManager.default
        var isDirectory: ObjCBool = false
        guard manager.fileExists(atPath: directory.path, isDirectory: &isDirectory), isDirectory.boolValue else {
            throw LatentError.io("\(directory.path) is not a folder")
        }
        let configURL = directory.appendingPathComponent("config.json")
        guard let configData = manager.contents(atPath: configURL.path) else {
            throw LatentError.io("\(directory.path) is not a run folder: it has no readable config.json")
        }
        guard let object = try? JSONDecoder().decode([String: ConfigValue].self, from: configData) else {
            throw LatentError.io("\(configURL.path) is not a JSON object")
        }
        config = object.keys.sorted().map { key in (key, object[key]?.text ?? "") }
        epochs = []
        if let metrics = manager.contents(atPath: directory.appendingPathComponent("metrics.jsonl").path) {
            for line in String(decoding: metrics, as: UTF8.self).split(separator: "\n") {
                if let epoch = Self.parse(line: String(line)) { epochs.append(epoch) }
            }
        }
        samples = []
        let names = (try? manager.contentsOfDirectory(atPath: directory.path)) ?? []
        for name in names where name.hasPrefix("samples-e") && name.hasSuffix(".png") {
            guard let epoch = Int(name.dropFirst("samples-e".count).dropLast(".png".count)),
                  let data = manager.contents(atPath: directory.appendingPathComponent(name).path) else { continue }
            samples.append((epoch, Array(data)))
        }
        samples.sort { $0.epoch < $1.epoch }
    }

    /// One metrics line; nil for a line that is not a JSON object with an epoch.
    static func parse(line: String) -> Epoch? {
        guard let object = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any],
              object["epoch"] is NSNumber else { return nil }
        // JSON objects have no order; the file's order (loss first, then its terms) reads best.
        func position(_ key: String) -> Int {
            guard let range = line.range(of: "\"\(key)\"") else { return Int.max }
            return line.distance(from: line.startIndex, to: range.lowerBound)
        }
        var fields: [(key: String, value: Double?)] = []
        var backend: String?
        for key in object.keys.sorted(by: { (position($0), $0) < (position($1), $1) }) where key != "reproducible" {
            switch object[key] {
            case let text as String:
                if key == "backend" { backend = text }
            case let number as NSNumber:
                fields.append((key, number.doubleValue))
            case is NSNull:
                fields.append((key, nil))
            default:
                continue
            }
        }
        if (object["reproducible"] as? Bool) == true, let name = backend { backend = name + ", reproducible" }
        return Epoch(fields: fields, backend: backend)
    }

    /// A JSON value as text: strings bare, numbers and booleans as JSON writes them.
    enum ConfigValue: Decodable {
        case text(String)

        init(from decoder: any Decoder) throws {
            let container = try decoder.singleValueContainer()
            if container.decodeNil() {
                self = .text("null")
            } else if let bool = try? container.decode(Bool.self) {
                self = .text(bool ? "true" : "false")
            } else if let integer = try? container.decode(Int64.self) {
                self = .text(String(integer))
            } else if let integer = try? container.decode(UInt64.self) {
                self = .text(String(integer))
            } else if let number = try? container.decode(Double.self) {
                self = .text(String(format: "%.9g", number))
            } else if let string = try? container.decode(String.self) {
                self = .text(string)
            } else {
                self = .text("…")
            }
        }

        var text: String {
            switch self { case .text(let text): return text }
        }
    }

    // MARK: What the page shows

    static let bookkeeping: Set<String> = ["epoch", "images_per_sec", "seconds", "rss_mb"]

    /// The loss terms: `loss` (from `train_loss`/`test_loss`), then the others in file order.
    public var terms: [(name: String, train: String, test: String)] {
        var keys: [String] = []
        for epoch in epochs {
            for field in epoch.fields where !keys.contains(field.key) { keys.append(field.key) }
        }
        var result: [(name: String, train: String, test: String)] = []
        if keys.contains("train_loss") || keys.contains("test_loss") { result.append(("loss", "train_loss", "test_loss")) }
        for key in keys where !Self.bookkeeping.contains(key) && key != "train_loss" && key != "test_loss" && !key.hasPrefix("test_") {
            result.append((key, key, "test_" + key))
        }
        return result
    }

    func series(_ key: String) -> [Double] {
        epochs.map { $0[key] ?? .nan }
    }

    var epochNumbers: [Double] { epochs.map { $0["epoch"] ?? .nan } }

    /// The charts: one per loss term (train and test), and the training speed.
    public var charts: [LineChart] {
        guard !epochs.isEmpty else { return [] }
        var charts: [LineChart] = []
        for term in terms {
            var lines: [LineChart.Series] = []
            for (label, key) in [("train", term.train), ("test", term.test)] where epochs.contains(where: { $0[key] != nil }) {
                lines.append(LineChart.Series(name: label, x: epochNumbers, y: series(key)))
            }
            var chart = LineChart(title: term.name, xLabel: "epoch", yLabel: "per image", series: lines)
            chart.width = 560
            chart.height = 340
            charts.append(chart)
        }
        if epochs.contains(where: { $0["images_per_sec"] != nil }) {
            var chart = LineChart(title: "training speed", xLabel: "epoch", yLabel: "images/s",
                                  series: [LineChart.Series(name: "images/s", x: epochNumbers, y: series("images_per_sec"))])
            chart.width = 560
            chart.height = 340
            charts.append(chart)
        }
        return charts
    }

    /// The grids the page embeds (see `maximumGrids`).
    var shownSamples: [(epoch: Int, png: [UInt8])] {
        guard samples.count > Self.maximumGrids else { return samples }
        let last = samples.count - 1
        let picks = Set((0..<Self.maximumGrids).map { Int((Double($0) * Double(last) / Double(Self.maximumGrids - 1)).rounded()) })
        return picks.sorted().map { samples[$0] }
    }

    var title: String {
        let model = config.first { $0.key == "model" }?.value ?? "run"
        return "\(model) — \(directory.standardizedFileURL.lastPathComponent)"
    }

    // MARK: HTML

    /// The page.
    public func html(generated: Date = Date()) -> String {
        var page = """
        <!DOCTYPE html>
        <html lang="en">
        <head>
        <meta charset="utf-8">
        <meta name="viewport" content="width=device-width, initial-scale=1">
        <meta name="generator" content="latent \(LatentVersion.string)">
        <title>\(Self.escape(title))</title>
        <style>
        body { font-family: system-ui, sans-serif; margin: 24px auto; max-width: 1180px; padding: 0 16px; color: #222; background: #fafafa; }
        h1 { font-size: 24px; margin-bottom: 4px; } h2 { font-size: 19px; margin-top: 32px; border-bottom: 1px solid #ddd; padding-bottom: 4px; }
        .meta { color: #666; font-size: 14px; }
        .summary { display: flex; flex-wrap: wrap; gap: 24px; align-items: flex-start; }
        .charts { display: flex; flex-wrap: wrap; gap: 16px; }
        .charts > div { flex: 1 1 520px; max-width: 580px; background: #fff; border: 1px solid #e3e3e3; }
        table { border-collapse: collapse; font-size: 14px; background: #fff; }
        th, td { border: 1px solid #ddd; padding: 4px 10px; text-align: right; }
        th { background: #f0f0f0; } td.key, th.key { text-align: left; font-family: ui-monospace, monospace; }
        .grids { display: flex; flex-wrap: wrap; gap: 12px; }
        figure { margin: 0; background: #fff; border: 1px solid #e3e3e3; padding: 6px; }
        figure img { display: block; width: 220px; height: auto; image-rendering: pixelated; }
        figure.final img { width: 360px; }
        figcaption { font-size: 13px; text-align: center; color: #555; margin-top: 4px; }
        code { background: #eee; padding: 1px 4px; border-radius: 3px; }
        .scroll { overflow-x: auto; }
        </style>
        </head>
        <body>
        <h1>\(Self.escape(title))</h1>

        """
        let formatter = ISO8601DateFormatter()
        var meta = "\(Self.escape(directory.path)) · \(epochs.count) epoch\(epochs.count == 1 ? "" : "s")"
        if let backend = epochs.last?.backend { meta += " · backend \(Self.escape(backend))" }
        let totalSeconds = epochs.compactMap { $0["seconds"] }.reduce(0, +)
        if totalSeconds > 0 { meta += " · " + Self.duration(totalSeconds) }
        meta += " · generated \(formatter.string(from: generated)) by latent \(LatentVersion.string)"
        page += "<p class=\"meta\">\(meta)</p>\n"

        page += "<h2>Final metrics</h2>\n<div class=\"summary\">\n"
        if let last = epochs.last {
            page += "<table id=\"final-metrics\"><tr><th class=\"key\">epoch \(Int(last["epoch"] ?? 0))</th><th>train</th><th>test</th></tr>\n"
            for term in terms {
                page += "<tr><td class=\"key\">\(Self.escape(term.name))</td><td>\(Self.number(last[term.train]))</td><td>\(Self.number(last[term.test]))</td></tr>\n"
            }
            page += "<tr><td class=\"key\">images/s</td><td>\(Self.number(last["images_per_sec"], digits: 4))</td><td></td></tr>\n"
            page += "<tr><td class=\"key\">epoch time</td><td>\(last["seconds"].map(Self.duration) ?? "–")</td><td></td></tr>\n"
            page += "</table>\n"
        } else {
            page += "<p>No epoch has finished yet.</p>\n"
        }
        if let final = samples.last {
            page += "<figure class=\"final\">\(Self.image(final.png, alt: "samples after epoch \(final.epoch)"))<figcaption>samples after epoch \(final.epoch)</figcaption></figure>\n"
        }
        page += "</div>\n"

        let charts = self.charts
        if !charts.isEmpty {
            page += "<h2>Curves</h2>\n<div class=\"charts\">\n"
            for chart in charts { page += "<div>\(chart.svg())</div>\n" }
            page += "</div>\n"
        }

        page += "<h2>Samples per epoch</h2>\n"
        if samples.isEmpty {
            page += "<p>No sample grids: \(epochs.isEmpty ? "no epoch has finished yet" : "this model does not generate images").</p>\n"
        } else {
            let shown = shownSamples
            if shown.count < samples.count {
                page += "<p class=\"meta\">\(shown.count) of \(samples.count) grids, evenly spaced; every grid is in the folder as samples-eNNN.png.</p>\n"
            }
            page += "<div class=\"grids\">\n"
            for sample in shown {
                page += "<figure>\(Self.image(sample.png, alt: "samples after epoch \(sample.epoch)"))<figcaption>epoch \(sample.epoch)</figcaption></figure>\n"
            }
            page += "</div>\n"
        }

        if !epochs.isEmpty {
            var columns: [String] = []
            for epoch in epochs {
                for field in epoch.fields where !columns.contains(field.key) { columns.append(field.key) }
            }
            page += "<h2>All epochs</h2>\n<div class=\"scroll\"><table id=\"epochs\">\n<tr>"
            page += columns.map { "<th>\(Self.escape($0))</th>" }.joined() + "</tr>\n"
            for epoch in epochs {
                page += "<tr>" + columns.map { key in
                    "<td>\(key == "epoch" ? String(Int(epoch[key] ?? 0)) : Self.number(epoch[key]))</td>"
                }.joined() + "</tr>\n"
            }
            page += "</table></div>\n"
        }

        page += "<h2>Configuration</h2>\n<table id=\"config\">\n"
        for entry in config {
            page += "<tr><td class=\"key\">\(Self.escape(entry.key))</td><td class=\"key\">\(Self.escape(entry.value))</td></tr>\n"
        }
        page += "</table>\n"

        page += "<h2>More</h2>\n<p>Weights and optimizer state: <code>checkpoint.safetensors</code>. "
        page += "Every epoch's figures: <code>metrics.jsonl</code>. "
        if FileManager.default.fileExists(atPath: TensorBoardObserver.folder(of: directory).path) {
            page += "TensorBoard: <code>tensorboard --logdir \(Self.escape(TensorBoardObserver.folder(of: directory).path))</code>. "
        }
        page += "This page again: <code>latent report \(Self.escape(directory.path))</code>.</p>\n"
        page += "</body>\n</html>\n"
        return page
    }

    /// Writes the page to `url` (default `DIR/report.html`) through a temporary file and a
    /// rename, so a browser never sees half a page; returns where it went.
    @discardableResult
    public func write(to url: URL? = nil, generated: Date = Date()) throws -> URL {
        let target = url ?? Self.url(in: directory)
        try AtomicFile.write(Data(html(generated: generated).utf8), to: target)
        return target
    }

    static func image(_ png: [UInt8], alt: String) -> String {
        var size = ""
        if let header = TensorBoardEvent.Image(png: png) { size = " width=\"\(header.width)\" height=\"\(header.height)\"" }
        return "<img\(size) alt=\"\(escape(alt))\" src=\"data:image/png;base64,\(Data(png).base64EncodedString())\">"
    }

    static func number(_ value: Double?, digits: Int = 6) -> String {
        guard let value, value.isFinite else { return "–" }
        return String(format: "%.\(digits)g", value)
    }

    static func duration(_ seconds: Double) -> String {
        guard seconds.isFinite, seconds >= 0 else { return "–" }
        if seconds < 60 { return String(format: "%.1f s", seconds) }
        let total = Int(seconds.rounded())
        if total < 3600 { return String(format: "%d min %02d s", total / 60, total % 60) }
        return String(format: "%d h %02d min", total / 3600, (total % 3600) / 60)
    }

    static func escape(_ text: String) -> String { Markup.escape(text) }
}

/// Rewrites `DIR/report.html` after every epoch. A page that cannot be written never stops
/// the training: the first failure is reported once through `warn`, later epochs try again.
public final class RunReportObserver: TrainingObserver {
    public let directory: URL
    public private(set) var failure: String?
    public var warn: (String) -> Void = { message in
        FileHandle.standardError.write(Data("warning: \(message)\n".utf8))
    }

    public init(directory: URL) {
        self.directory = directory
    }

    public func trainingStarted(epochs: ClosedRange<Int>, batchesPerEpoch: Int, trainImages: Int, testImages: Int) {}

    public func batchFinished(epoch: Int, batch: Int, batchCount: Int, loss: Double?, imagesPerSecond: Double) {}

    public func epochFinished(_ metrics: EpochMetrics, samplePath: String?) {
        do {
            try RunReport(directory: directory).write()
        } catch {
            if failure == nil { warn("cannot write \(RunReport.url(in: directory).path): \(error)") }
            failure = "\(error)"
        }
    }
}
