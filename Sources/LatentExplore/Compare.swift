import Foundation
import LatentCore
import LatentData
import LatentModels

/// One run folder as `latent compare` sees it: its `config.json` and `metrics.jsonl`.
public struct RunRecord: Sendable {
    public var directory: String
    /// The row name: the folder's last component (made unique by the table).
    public var name: String
    public var options: TrainingOptions
    /// Each epoch's numeric fields (`epoch`, `train_loss`, `test_loss`, the terms,
    /// `images_per_sec`, `seconds`), in file order.
    public var epochs: [[String: Double]]
    public var backend: String?

    public init(directory: String, name: String, options: TrainingOptions, epochs: [[String: Double]], backend: String?) {
        self.directory = directory
        self.name = name
        self.options = options
        self.epochs = epochs
        self.backend = backend
    }

    /// Reads `directory`'s config.json and metrics.jsonl (lines that do not parse are
    /// skipped; a folder without either file is an error naming it).
    public static func read(_ directory: String) throws -> RunRecord {
        let url = URL(fileURLWithPath: directory)
        let configURL = url.appendingPathComponent("config.json")
        guard let configData = try? Data(contentsOf: configURL) else {
            throw ExploreError("\(directory) is not a run folder: it has no readable config.json")
        }
        let options: TrainingOptions
        do {
            options = try JSONDecoder().decode(TrainingOptions.self, from: configData)
        } catch {
            throw ExploreError("\(configURL.path) does not hold a run's training options")
        }
        guard let metricsData = try? Data(contentsOf: url.appendingPathComponent("metrics.jsonl")) else {
            throw ExploreError("\(directory) has no metrics.jsonl (the run finished no epoch)")
        }
        var epochs: [[String: Double]] = []
        var backend: String?
        for line in String(decoding: metricsData, as: UTF8.self).split(separator: "\n") {
            guard let object = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any] else { continue }
            var numbers: [String: Double] = [:]
            for (key, value) in object where key != "reproducible" {  // a flag, not a figure
                if let number = value as? NSNumber { numbers[key] = number.doubleValue }
                if key == "backend", let text = value as? String { backend = text }
            }
            if (object["reproducible"] as? Bool) == true, let name = backend, !name.hasSuffix(", reproducible") {
                backend = name + ", reproducible"
            }
            guard numbers["epoch"] != nil else { continue }
            epochs.append(numbers)
        }
        let name = url.standardizedFileURL.lastPathComponent
        return RunRecord(directory: directory, name: name.isEmpty ? directory : name, options: options, epochs: epochs, backend: backend)
    }

    /// The last epoch's value of `field` (nil where it is missing or null).
    public func final(_ field: String) -> Double? { epochs.last?[field] }

    /// `field` per epoch (NaN where missing), for loss curves.
    public func series(_ field: String) -> (x: [Double], y: [Double]) {
        (epochs.map { $0["epoch"] ?? .nan }, epochs.map { $0[field] ?? .nan })
    }

    /// Mean training speed over the epochs.
    public var imagesPerSecond: Double? {
        let values = epochs.compactMap { $0["images_per_sec"] }.filter(\.isFinite)
        return values.isEmpty ? nil : values.reduce(0, +) / Double(values.count)
    }

    /// The options that differ from the model's defaults, as the `latent train` flags that set
    /// them (`--latent-dim 2`, `--batchnorm`, `--no-kl`); the epoch count is a column of its own.
    public var knobs: [String] { Knobs.flags(options, ignoring: ["epochs"]) }
}

/// `TrainingOptions` fields as `latent train` flags.
public enum Knobs {
    /// The flag of each option (JSON key -> flag); Bool options are flags without a value.
    static let flagNames: [String: String] = [
        "dataset": "--dataset", "epochs": "--epochs", "batchSize": "--batch-size", "optimizer": "--optimizer",
        "learningRate": "--lr", "weightDecay": "--weight-decay", "beta1": "--beta1", "beta2": "--beta2",
        "latentDim": "--latent-dim", "hidden": "--hidden", "depth": "--depth", "batchnorm": "--batchnorm",
        "dropout": "--dropout", "loss": "--loss", "beta": "--beta", "kl": "--no-kl",
        "parameterization": "--parameterization", "noise": "--noise", "binarize": "--binarize", "limit": "--limit",
        "seed": "--seed", "codebookSize": "--codebook-size", "codebookDim": "--codebook-dim",
        "commitment": "--commitment", "sharedBatchnorm": "--shared-batchnorm", "ganSharedZeroGrad": "--gan-shared-zero-grad",
    ]

    static let booleanKeys: Set<String> = ["batchnorm", "kl", "binarize", "sharedBatchnorm", "ganSharedZeroGrad"]

    /// Flags for the fields of `options` that differ from `ModelCatalog`'s defaults of its
    /// model (on the same dataset), in a fixed order.
    public static func flags(_ options: TrainingOptions, ignoring: Set<String> = []) -> [String] {
        var defaults = ModelCatalog.descriptor(options.model).defaults
        defaults.dataset = "mnist"
        let have = dictionary(options), base = dictionary(defaults)
        let order = ["dataset", "epochs", "batchSize", "optimizer", "learningRate", "weightDecay", "beta1", "beta2",
                     "latentDim", "hidden", "depth", "batchnorm", "dropout", "loss", "beta", "kl", "parameterization",
                     "noise", "binarize", "sharedBatchnorm", "ganSharedZeroGrad", "codebookSize", "codebookDim",
                     "commitment", "limit", "seed"]
        var result: [String] = []
        for key in order where !ignoring.contains(key) {
            let value = have[key], original = base[key]
            guard !same(value, original), let flag = flagNames[key] else { continue }
            // By key: a JSON number 1 also bridges to Bool.
            if booleanKeys.contains(key), let bool = value as? Bool {
                if key == "kl" { if !bool { result.append(flag) } } else if bool { result.append(flag) }
                continue
            }
            guard let value else { continue }
            result.append("\(flag) \(text(value))")
        }
        return result
    }

    static func dictionary(_ options: TrainingOptions) -> [String: Any] {
        guard let data = try? JSONEncoder().encode(options),
              let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any] else { return [:] }
        return object
    }

    static func same(_ a: Any?, _ b: Any?) -> Bool {
        switch (a, b) {
        case (nil, nil): return true
        case let (x as NSNumber, y as NSNumber): return x == y
        case let (x as String, y as String): return x == y
        default: return false
        }
    }

    static func text(_ value: Any) -> String {
        if let number = value as? NSNumber {
            let double = number.doubleValue
            if double == double.rounded(), abs(double) < 1e15 { return String(Int64(double)) }
            return String(format: "%g", double)
        }
        return "\(value)"
    }
}

/// The table `latent compare` and `latent reproduce` write: one row per run with its model,
/// knobs, epochs, final train and test loss (and further terms), speed.
public struct ComparisonTable {
    public var records: [RunRecord]
    /// Further final-epoch fields to show ("recon", "kl", "test_kl", "g_loss", ...).
    public var terms: [String]
    /// Extra columns by title: per row name, a value (the report's figure, say).
    public var extraColumns: [(title: String, values: [String: String])] = []

    public init(records: [RunRecord], terms: [String] = []) {
        self.records = Self.uniqueNames(records)
        self.terms = terms
    }

    /// Rows named after their folder; equal names get their parent folder's name too.
    static func uniqueNames(_ records: [RunRecord]) -> [RunRecord] {
        var counts: [String: Int] = [:]
        for record in records { counts[record.name, default: 0] += 1 }
        return records.map { record in
            guard (counts[record.name] ?? 0) > 1 else { return record }
            var renamed = record
            let parent = URL(fileURLWithPath: record.directory).standardizedFileURL.deletingLastPathComponent().lastPathComponent
            renamed.name = parent.isEmpty ? record.directory : "\(parent)/\(record.name)"
            return renamed
        }
    }

    /// The terms every run's last line has beyond the standard fields, in a fixed order.
    public static func commonTerms(_ records: [RunRecord]) -> [String] {
        let standard: Set<String> = ["epoch", "train_loss", "test_loss", "images_per_sec", "seconds", "rss_mb"]
        guard let first = records.first?.epochs.last else { return [] }
        let shared = records.dropFirst().reduce(Set(first.keys)) { $0.intersection($1.epochs.last.map { Array($0.keys) } ?? []) }
        return shared.subtracting(standard).sorted { a, b in
            // Train terms first, then test terms, each alphabetical.
            (a.hasPrefix("test_") ? 1 : 0, a) < (b.hasPrefix("test_") ? 1 : 0, b)
        }
    }

    public var header: [String] {
        ["run", "model", "knobs", "epochs", "train loss", "test loss"] + terms + ["images/s"] + extraColumns.map(\.title)
    }

    /// The cells of each row as text (numbers with 4 significant figures for Markdown).
    public func rows(precise: Bool = false) -> [[String]] {
        func number(_ value: Double?) -> String {
            guard let value, value.isFinite else { return "" }
            return precise ? String(format: "%.6g", value) : Self.format(value)
        }
        return records.map { record in
            var row = [record.name, record.options.model.rawValue, record.knobs.joined(separator: " "),
                       String(record.epochs.count), number(record.final("train_loss")), number(record.final("test_loss"))]
            row += terms.map { number(record.final($0)) }
            row.append(record.imagesPerSecond.map { String(format: "%.0f", $0) } ?? "")
            row += extraColumns.map { $0.values[record.name] ?? "" }
            return row
        }
    }

    static func format(_ value: Double) -> String {
        let magnitude = abs(value)
        if magnitude >= 1000 { return String(format: "%.1f", value) }
        if magnitude >= 1 { return String(format: "%.4g", value) }
        return String(format: "%.4g", value)
    }

    public var markdown: String {
        func line(_ cells: [String]) -> String {
            "| " + cells.map { $0.replacingOccurrences(of: "|", with: "\\|") }.joined(separator: " | ") + " |"
        }
        let numeric = Set(header.indices.filter { $0 >= 3 && $0 < header.count - extraColumns.count })
        var lines = [line(header), "|" + header.indices.map { numeric.contains($0) ? "---:" : "---" }.joined(separator: "|") + "|"]
        lines += rows().map(line)
        return lines.joined(separator: "\n") + "\n"
    }

    public var csv: String {
        func field(_ text: String) -> String {
            text.contains(where: { $0 == "," || $0 == "\"" || $0 == "\n" })
                ? "\"" + text.replacingOccurrences(of: "\"", with: "\"\"") + "\"" : text
        }
        let header = self.header.map { $0.replacingOccurrences(of: " ", with: "_").replacingOccurrences(of: "/", with: "_per_") }
        return ([header] + rows(precise: true)).map { $0.map(field).joined(separator: ",") }.joined(separator: "\n") + "\n"
    }

    /// Rows as JSON objects (numbers as numbers), for `--json`.
    public func jsonObjects() -> [[String: Any]] {
        records.map { record in
            var object: [String: Any] = ["run": record.name, "directory": record.directory, "model": record.options.model.rawValue,
                                         "knobs": record.knobs, "epochs": record.epochs.count]
            for (key, field) in [("train_loss", "train_loss"), ("test_loss", "test_loss")] + terms.map({ ($0, $0) }) {
                if let value = record.final(field), value.isFinite { object[key] = value }
            }
            if let speed = record.imagesPerSecond { object["images_per_sec"] = speed }
            for column in extraColumns { if let value = column.values[record.name] { object[column.title] = value } }
            return object
        }
    }

    /// One line per run of `field` against epoch (training loss by default).
    public func lossChart(field: String = "train_loss", title: String? = nil) -> LineChart {
        let series = records.map { record -> LineChart.Series in
            let (x, y) = record.series(field)
            return LineChart.Series(name: record.name, x: x, y: y)
        }
        let what = field == "test_loss" ? "test loss" : field == "train_loss" ? "training loss" : field
        return LineChart(title: title ?? "\(what) per image", xLabel: "epoch", yLabel: what, series: series)
    }
}
