import ArgumentParser
import Foundation
import LatentData
import LatentExplore
import LatentModels

/// `--checkpoint FILE`, `--seed N`, `--scale N`, `--json`: every picture command's options.
struct CheckpointOptions: ParsableArguments {
    @Option(help: ArgumentHelp("A checkpoint written by `latent train` (or its run folder).", valueName: "FILE"))
    var checkpoint: String

    @Option(help: ArgumentHelp("Seed of the noise the picture draws.", valueName: "N"))
    var seed: UInt64 = 1

    @Option(help: ArgumentHelp("Enlarge the picture this many times (nearest neighbour).", valueName: "N"))
    var scale = 2

    @Flag(help: "Print one JSON object (file, size, model) instead of a line of text.")
    var json = false

    func validate() throws {
        guard (1...16).contains(scale) else { throw ValidationError("--scale must be 1...16, got \(scale)") }
    }

    /// Starts the backend and loads the checkpoint's model on it.
    func load(_ backendOptions: BackendOptions) throws -> LoadedModel {
        let (backend, _) = try backendOptions.makeBackend()
        return try LoadedModel.load(checkpoint, backend: backend)
    }
}

/// The split explore commands take their images from, and which dataset: the checkpoint's
/// unless `--dataset` names another.
enum ExploreData {
    /// The checkpoint's dataset unless `--dataset` asks for a non-default one.
    static func files(_ options: DatasetOptions, for loaded: LoadedModel) throws -> DatasetFiles {
        var chosen = options.dataset
        if chosen == .mnist, let trained = DatasetName(rawValue: loaded.options.dataset) { chosen = trained }
        let locator = DatasetLocator(dataset: chosen, dataDirectory: options.data) { line in
            FileHandle.standardError.write(Data("latent: \(line)\n".utf8))
        }
        return try locator.locate()
    }

    static func load(_ options: DatasetOptions, for loaded: LoadedModel, split: DatasetSplit) throws -> (Dataset, DatasetFiles) {
        let files = try files(options, for: loaded)
        return (try files.load(split), files)
    }
}

/// Writing a picture and saying so, the same way in every command.
enum PictureOutput {
    /// Creates the folder `path` goes into when it is missing.
    static func prepare(_ path: String) throws {
        let folder = URL(fileURLWithPath: path).deletingLastPathComponent()
        guard !FileManager.default.fileExists(atPath: folder.path) else { return }
        do {
            try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        } catch {
            throw ExploreError("cannot create the folder of \(path): \(error.localizedDescription)")
        }
    }

    /// Checks the extension of an output file name (validate()).
    static func check(_ path: String, extensions: [String]) throws {
        let lower = path.lowercased()
        guard extensions.contains(where: { lower.hasSuffix("." + $0) }) else {
            throw ValidationError("--output must end in \(extensions.map { "." + $0 }.joined(separator: " or ")), got \(path)")
        }
    }

    static func write(_ image: RasterImage, to path: String) throws {
        try prepare(path)
        try image.writePNG(to: path)
    }

    static func write(_ table: ImageTable, to path: String, scale: Int) throws -> RasterImage {
        let image = table.render(scale: scale)
        try write(image, to: path)
        return image
    }

    /// `wrote FILE: WHAT, W x H pixels`, or the JSON object with `--json`.
    static func report(_ path: String, what: String, image: RasterImage?, loaded: LoadedModel, json: Bool,
                       extra: [String: Any] = [:]) throws {
        if json {
            var object: [String: Any] = ["output": path, "model": loaded.options.model.rawValue, "checkpoint": loaded.source,
                                         "description": what]
            if let image { object["width"] = image.width; object["height"] = image.height }
            for (key, value) in extra { object[key] = value }
            let data = try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .withoutEscapingSlashes])
            print(String(decoding: data, as: UTF8.self))
            return
        }
        let size = image.map { ", \($0.width)x\($0.height) pixels" } ?? ""
        print("wrote \(path): \(what)\(size)")
    }
}

/// `--noise 0.5,1,2`: comma-separated non-negative numbers.
struct NumberList: ExpressibleByArgument {
    var values: [Double]

    init?(argument: String) {
        let parts = argument.split(separator: ",", omittingEmptySubsequences: false).map { $0.trimmingCharacters(in: .whitespaces) }
        var values: [Double] = []
        for part in parts {
            guard let value = Double(part), value.isFinite, value >= 0 else { return nil }
            values.append(value)
        }
        guard !values.isEmpty else { return nil }
        self.values = values
    }

    init(_ values: [Double]) { self.values = values }

    var defaultValueDescription: String { values.map { String(format: "%g", $0) }.joined(separator: ",") }
}

/// A label option shared by sample, sweep and manifold.
struct LabelOption: ParsableArguments {
    @Option(help: ArgumentHelp("Class 0...9 to draw (cvae, designed-latent).", valueName: "K"))
    var label: Int?

    func validate() throws {
        if let label, !(0...9).contains(label) { throw ValidationError("--label must be a class 0...9, got \(label)") }
    }
}
