import Foundation
import LatentCore
import LatentData
import LatentModels
import LatentNN

/// The pictures of the reports, one function each; the CLI commands and the recipes draw
/// with these. Each takes a loaded model (and data where it needs some) and returns an
/// `ImageTable` (or a rendered chart), so the geometry can be tested without files.
public enum Pictures {
    /// `count` samples, `columns` to a row; with `label`, samples of one class.
    public static func samples(_ model: any GenerativeModel, count: Int, columns: Int, seed: UInt64,
                               label: Int? = nil) throws -> ImageTable {
        let images = try LatentOps.samples(model, count: count, seed: seed, label: label)
        let across = max(1, min(columns, count))
        return try ImageTable(rows: (count + across - 1) / across, columns: across, images: images)
    }

    /// One row per class 0...9 of a conditional model (cvae, designed-latent), `perClass`
    /// samples each.
    public static func classRows(_ model: any GenerativeModel, perClass: Int, seed: UInt64) throws -> ImageTable {
        guard LatentOps.isConditional(model) else {
            throw ExploreError("class rows need a conditional model (cvae, designed-latent); this is a '\(model.options.model.rawValue)' model")
        }
        var images: [Float] = []
        for label in 0..<10 {
            images += try LatentOps.samples(model, count: perClass, seed: seed, label: label)
        }
        return try ImageTable(rows: 10, columns: perClass, images: images)
    }

    /// What `reconstruct` shows and dumps: the images, their reconstructions and labels.
    public struct Reconstruction {
        public var table: ImageTable
        public var inputs: [Float]
        public var outputs: [Float]
        public var labels: [UInt8]

        /// The tensors Benchmarks/pytorch/check_checkpoint.py reads from a dump: `input`
        /// (N, 1, 28, 28) as the model read it, `output` (N, 1, 28, 28) in [0, 1], `labels` (N)
        /// as floats; metadata `function=reconstruct` and the model's name.
        public func writeDump(to url: URL, model: ModelKind, checkpoint: String) throws {
            let count = labels.count
            let entries = [
                SafeTensors.Entry(name: "input", shape: [count, 1, 28, 28], values: inputs),
                SafeTensors.Entry(name: "output", shape: [count, 1, 28, 28], values: outputs),
                SafeTensors.Entry(name: "labels", shape: [count], values: labels.map(Float.init)),
            ]
            try SafeTensors.write(entries, metadata: ["function": "reconstruct", "model": model.rawValue, "checkpoint": checkpoint], to: url)
        }
    }

    /// Test images `indices` over their reconstructions, in pairs of rows of `columns`;
    /// with `noise` > 0 the inputs get salt-and-pepper noise on that fraction of pixels
    /// first (`denoise`).
    public static func reconstructions(_ model: any ReconstructingModel, dataset: Dataset, indices: [Int],
                                       columns: Int, noise: Double = 0, seed: UInt64 = 0) throws -> Reconstruction {
        guard !indices.isEmpty else { throw ExploreError("--count must be at least 1") }
        let (inputs, labels) = try LatentOps.images(dataset, indices: indices, range: model.pixelRange, noise: noise, seed: seed)
        let outputs = try LatentOps.reconstruct(model, images: inputs, labels: labels)
        let shown = model.pixelRange == .zeroToOne ? inputs : inputs.map { ($0 + 1) / 2 }
        return Reconstruction(table: try ImageTable.interleaved(top: shown, bottom: outputs, columns: columns),
                              inputs: inputs, outputs: outputs, labels: labels)
    }

    /// Pairs of test images for interpolation: from `start`, images 2i and the next one after
    /// it of another class.
    public static func interpolationPairs(_ dataset: Dataset, count: Int, start: Int = 0) throws -> [(Int, Int)] {
        var pairs: [(Int, Int)] = []
        var index = start
        while pairs.count < count {
            guard index + 1 < dataset.count else {
                throw ExploreError("the split has too few images for \(count) pairs from image \(start)")
            }
            var partner = index + 1
            while partner < dataset.count, dataset.labels[partner] == dataset.labels[index] { partner += 1 }
            guard partner < dataset.count else { throw ExploreError("no image after \(index) has another class") }
            pairs.append((index, partner))
            index = partner + 1
        }
        return pairs
    }

    /// One row per pair: image A, `steps` decodings of codes from A's to B's (both ends
    /// included), image B. Conditional models decode the first half with A's label, the rest
    /// with B's.
    public static func interpolation(_ model: any LatentEncodingModel, dataset: Dataset, pairs: [(Int, Int)],
                                     steps: Int) throws -> ImageTable {
        guard steps >= 2 else { throw ExploreError("--steps must be at least 2, got \(steps)") }
        guard !pairs.isEmpty else { throw ExploreError("interpolation needs at least one pair") }
        let indices = pairs.flatMap { [$0.0, $0.1] }
        let (images, labels) = try LatentOps.images(dataset, indices: indices, range: model.pixelRange)
        let codes = try LatentOps.encode(model, images: images, labels: labels)
        let width = model.codeSize
        var path: [Float] = []
        var pathLabels: [UInt8] = []
        for row in pairs.indices {
            let a = codes[(2 * row * width)..<((2 * row + 1) * width)]
            let b = codes[((2 * row + 1) * width)..<((2 * row + 2) * width)]
            for (step, t) in LatentOps.linspace(0, 1, steps).enumerated() {
                path += zip(a, b).map { Float((1 - t) * Double($0) + t * Double($1)) }
                pathLabels.append(step * 2 < steps ? labels[2 * row] : labels[2 * row + 1])
            }
        }
        let decoded = try LatentOps.decode(model, codes: path, labels: LatentOps.isConditional(model) ? pathLabels : nil)
        var table = try ImageTable(rows: pairs.count, columns: steps + 2)
        for row in pairs.indices {
            table.set(row: row, column: 0, ImageTable.image(images, 2 * row))
            for step in 0..<steps { table.set(row: row, column: step + 1, ImageTable.image(decoded, row * steps + step)) }
            table.set(row: row, column: steps + 1, ImageTable.image(images, 2 * row + 1))
        }
        return table
    }

    /// A 1-D latent space: `steps` codes evenly from `from` to `to` decoded into one strip,
    /// wrapped every `columns` images.
    public static func sweep(_ model: any LatentDecodingModel, from: Double, to: Double, steps: Int,
                             columns: Int, label: Int? = nil) throws -> ImageTable {
        guard model.codeSize == 1 else { throw ExploreError("a sweep needs a 1-D latent space, the model's code has \(model.codeSize) dimensions") }
        guard steps >= 1, from.isFinite, to.isFinite else { throw ExploreError("--from, --to must be numbers and --steps at least 1") }
        let codes = LatentOps.linspace(from, to, steps).map { Float($0) }
        let images = try LatentOps.decode(model, codes: codes, labels: try conditionLabels(model, steps, label))
        let across = max(1, min(columns, steps))
        return try ImageTable(rows: (steps + across - 1) / across, columns: across, images: images)
    }

    /// A 2-D latent space: a `steps` x `steps` grid over [-range, range]^2, z1 growing to the
    /// right, z2 growing upwards (the top row is z2 = +range).
    public static func manifold(_ model: any LatentDecodingModel, range: Double, steps: Int,
                                label: Int? = nil) throws -> ImageTable {
        guard model.codeSize == 2 else { throw ExploreError("a manifold needs a 2-D latent space, the model's code has \(model.codeSize) dimensions") }
        guard steps >= 1, range.isFinite, range > 0 else { throw ExploreError("--range must be a positive number and --steps at least 1") }
        let values = LatentOps.linspace(-range, range, steps)
        var codes: [Float] = []
        for row in 0..<steps {
            for column in 0..<steps { codes += [Float(values[column]), Float(values[steps - 1 - row])] }
        }
        let images = try LatentOps.decode(model, codes: codes, labels: try conditionLabels(model, steps * steps, label))
        return try ImageTable(rows: steps, columns: steps, images: images)
    }

    /// Labels for decoding `count` codes: the given class for a conditional model (0 when
    /// none is given), nil for the others (where a label is an error).
    static func conditionLabels(_ model: any GenerativeModel, _ count: Int, _ label: Int?) throws -> [UInt8]? {
        if let label, !(0..<10).contains(label) { throw ExploreError("--label must be a class 0...9, got \(label)") }
        guard LatentOps.isConditional(model) else {
            if label != nil { throw ExploreError("--label needs a conditional model (cvae, designed-latent); this is a '\(model.options.model.rawValue)' model") }
            return nil
        }
        return [UInt8](repeating: UInt8(label ?? 0), count: count)
    }

    /// Per-class centres of a latent space and the spread of its codes.
    public struct Centroids {
        /// 10 x codeSize.
        public var centers: [[Float]]
        /// Per-dimension standard deviation of all codes (the unit of relative noise).
        public var spread: [Float]
        /// Images behind each centre (0 for a designed latent space).
        public var counts: [Int]
    }

    /// Class means of the encoder's codes of `dataset` (its first `limit` images); for the
    /// designed latent space, its class vectors and code noise.
    public static func centroids(_ model: any LatentDecodingModel, dataset: Dataset?, limit: Int? = nil) throws -> Centroids {
        let width = model.codeSize
        if let designed = model as? DesignedLatent {
            return Centroids(centers: (0..<10).map { designed.classCode($0) },
                             spread: [Float](repeating: designed.codeNoise, count: width), counts: [Int](repeating: 0, count: 10))
        }
        guard let encoder = model as? any LatentEncodingModel else {
            throw ExploreError("centroids need an encoder or a designed latent space; this is a '\(model.options.model.rawValue)' model")
        }
        guard let dataset else { throw ExploreError("centroids of an encoder need the training set") }
        let (codes, labels) = try LatentOps.encode(encoder, dataset: dataset, limit: limit)
        var sums = [[Double]](repeating: [Double](repeating: 0, count: width), count: 10)
        var counts = [Int](repeating: 0, count: 10)
        var mean = [Double](repeating: 0, count: width), square = mean
        for (row, label) in labels.enumerated() {
            let k = Int(label) % 10
            counts[k] += 1
            for j in 0..<width {
                let value = Double(codes[row * width + j])
                sums[k][j] += value
                mean[j] += value
                square[j] += value * value
            }
        }
        let n = Double(max(labels.count, 1))
        let spread = (0..<width).map { j in Float(max(0, square[j] / n - (mean[j] / n) * (mean[j] / n)).squareRoot()) }
        let centers = (0..<10).map { k in sums[k].map { Float($0 / Double(max(counts[k], 1))) } }
        if let missing = counts.firstIndex(of: 0) {
            throw ExploreError("class \(missing) has no image among the \(labels.count) encoded; use more images")
        }
        return Centroids(centers: centers, spread: spread, counts: counts)
    }

    /// Row 0: the ten class centroids decoded; then one row per noise level: each centroid
    /// plus `level` times standard normal noise (the same draw for every level, so a column
    /// shows one direction growing), in units of the codes' per-dimension spread when
    /// `relative`, else absolute. Conditional models decode with the column's class.
    public static func centroidRows(_ model: any LatentDecodingModel, centroids: Centroids, noise: [Double],
                                    relative: Bool, seed: UInt64) throws -> ImageTable {
        let width = model.codeSize
        let levels = [0.0] + noise
        guard levels.allSatisfy({ $0.isFinite && $0 >= 0 }) else { throw ExploreError("--noise levels must be numbers >= 0") }
        let eps = try LatentOps.normals(10 * width, seed: seed, backend: model.backend)
        var codes: [Float] = []
        for level in levels {
            for k in 0..<10 {
                for j in 0..<width {
                    let unit = relative ? Double(centroids.spread[j]) : 1
                    codes.append(centroids.centers[k][j] + Float(level * unit * Double(eps[k * width + j])))
                }
            }
        }
        let labels = LatentOps.isConditional(model) ? (0..<(levels.count * 10)).map { UInt8($0 % 10) } : nil
        let images = try LatentOps.decode(model, codes: codes, labels: model is DesignedLatent ? nil : labels)
        return try ImageTable(rows: levels.count, columns: 10, images: images)
    }

    /// Codes of a split coloured by class as a scatter chart: the codes themselves for a
    /// 2-D latent space, the principal plane for more dimensions, code against class (with
    /// jitter) for one. Returns the chart and the codes' 2-D coordinates.
    public static func scatter(_ model: any LatentEncodingModel, dataset: Dataset, limit: Int? = nil,
                               classNames: [String] = (0...9).map(String.init),
                               title: String? = nil) throws -> (chart: ScatterChart, x: [Double], y: [Double], explained: Double?) {
        let (codes, labels) = try LatentOps.encode(model, dataset: dataset, limit: limit)
        guard !labels.isEmpty else { throw ExploreError("no images to encode") }
        let width = model.codeSize
        let x: [Double], y: [Double]
        var xLabel = "z1", yLabel = "z2"
        var explained: Double?
        switch width {
        case 1:
            var generator = SplitMix64(seed: 0x5CA7_7E12)
            x = codes.map(Double.init)
            y = labels.map { Double($0) + (Double(generator.next() >> 11) / Double(1 << 53) - 0.5) * 0.6 }
            xLabel = "z"
            yLabel = "class (jittered)"
        case 2:
            x = stride(from: 0, to: codes.count, by: 2).map { Double(codes[$0]) }
            y = stride(from: 1, to: codes.count, by: 2).map { Double(codes[$0]) }
        default:
            let plane = try PrincipalPlane(points: codes, dimension: width)
            (x, y) = plane.project(codes)
            explained = plane.explainedFraction
            let share = plane.totalVariance > 0 ? plane.variances.map { $0 / plane.totalVariance * 100 } : [0, 0]
            xLabel = String(format: "PC1 (%.0f%%)", share[0])
            yLabel = String(format: "PC2 (%.0f%%)", share[1])
        }
        let name = model.options.model.rawValue
        let heading = title ?? (width > 2 ? "\(name) codes, \(width)-D, PCA to 2-D" : "\(name) codes, \(width)-D")
        let chart = ScatterChart(title: heading, xLabel: xLabel, yLabel: yLabel, x: x, y: y,
                                 labels: labels.map(Int.init), classNames: classNames)
        return (chart, x, y, explained)
    }
}
