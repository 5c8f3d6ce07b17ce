/// The datasets Latent knows by name. Raw values are what `--dataset` accepts.
public enum DatasetName: String, CaseIterable, Sendable, CustomStringConvertible {
    case mnist
    case fashionMNIST = "fashion-mnist"

    public var description: String { rawValue }

    /// The name people write: "MNIST", "Fashion-MNIST".
    public var displayName: String {
        switch self {
        case .mnist: "MNIST"
        case .fashionMNIST: "Fashion-MNIST"
        }
    }

    /// Names of the ten classes, indexed by label.
    public var classNames: [String] {
        switch self {
        case .mnist: (0...9).map(String.init)
        case .fashionMNIST:
            ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
             "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]
        }
    }
}

/// The training set (60,000 images for both datasets) or the test set (10,000).
public enum DatasetSplit: String, CaseIterable, Sendable, CustomStringConvertible {
    case train
    case test

    public var description: String { rawValue }

    /// The standard file name, without `.gz`, of this split's images or labels
    /// (`train-images-idx3-ubyte`, `t10k-labels-idx1-ubyte`, …).
    public func fileStem(labels: Bool) -> String {
        let prefix = self == .train ? "train" : "t10k"
        return labels ? "\(prefix)-labels-idx1-ubyte" : "\(prefix)-images-idx3-ubyte"
    }
}

/// A labelled set of single-channel images, kept as bytes (0 = background, 255 = ink) the way
/// the files store them: a quarter of the memory of floats, and conversion to the network's
/// range happens per batch (see ``BatchLoader``).
public struct Dataset: Sendable {
    /// `count * rows * cols` bytes, image after image, each row-major.
    public let images: [UInt8]
    /// One class index per image, each below ``classCount``.
    public let labels: [UInt8]
    public let rows: Int
    public let cols: Int
    /// Number of classes the labels index (10 for MNIST and Fashion-MNIST).
    public let classCount: Int

    public var count: Int { labels.count }
    public var pixelsPerImage: Int { rows * cols }

    /// Builds a dataset from memory, checking that the sizes agree and every label is a class.
    public init(images: [UInt8], labels: [UInt8], rows: Int, cols: Int, classCount: Int = 10) throws {
        guard rows > 0, cols > 0 else { throw DataError("image size \(rows) x \(cols) is empty") }
        guard images.count == labels.count * rows * cols else {
            throw DataError("\(images.count) pixel bytes do not make \(labels.count) images of \(rows) x \(cols)")
        }
        if let index = labels.firstIndex(where: { Int($0) >= classCount }) {
            throw DataError("label \(labels[index]) of image \(index) is not a class (0...\(classCount - 1))")
        }
        self.images = images
        self.labels = labels
        self.rows = rows
        self.cols = cols
        self.classCount = classCount
    }

    /// Loads an images file (IDX, N x rows x cols) and its labels file (IDX, N), raw or gzip.
    /// - Parameter limit: keep only the first `limit` images (quick runs); nil keeps all.
    public static func load(images imagesPath: String, labels labelsPath: String,
                            limit: Int? = nil, classCount: Int = 10) throws -> Dataset {
        let imageArray = try IDXFile.read(imagesPath)
        guard imageArray.dimensions.count == 3 else {
            throw DataError.file(imagesPath, "expected 3 dimensions (count x rows x cols) for images, found "
                                 + "\(imageArray.dimensions.count); is this a labels file?")
        }
        let labelArray = try IDXFile.read(labelsPath)
        guard labelArray.dimensions.count == 1 else {
            throw DataError.file(labelsPath, "expected 1 dimension (count) for labels, found "
                                 + "\(labelArray.dimensions.count); is this an images file?")
        }
        let imageCount = imageArray.dimensions[0]
        let labelCount = labelArray.dimensions[0]
        guard imageCount == labelCount else {
            throw DataError("count mismatch: \(imagesPath) holds \(imageCount) images but \(labelsPath) "
                            + "holds \(labelCount) labels")
        }
        if let index = labelArray.bytes.firstIndex(where: { Int($0) >= classCount }) {
            throw DataError.file(labelsPath, "label \(labelArray.bytes[index]) at index \(index) is not a class "
                                 + "(0...\(classCount - 1))")
        }
        let rows = imageArray.dimensions[1], cols = imageArray.dimensions[2]
        let full = try Dataset(images: imageArray.bytes, labels: labelArray.bytes,
                               rows: rows, cols: cols, classCount: classCount)
        return limit.map { full.prefix($0) } ?? full
    }

    /// The first `count` images (all of them if there are fewer).
    public func prefix(_ count: Int) -> Dataset {
        let kept = max(0, min(count, self.count))
        if kept == self.count { return self }
        return Dataset(unchecked: Array(images[0..<(kept * pixelsPerImage)]), labels: Array(labels[0..<kept]),
                       rows: rows, cols: cols, classCount: classCount)
    }

    /// The pixels of image `index`.
    public func image(_ index: Int) -> ArraySlice<UInt8> {
        images[(index * pixelsPerImage)..<((index + 1) * pixelsPerImage)]
    }

    /// How many images each class has.
    public func classCounts() -> [Int] {
        var counts = [Int](repeating: 0, count: classCount)
        for label in labels { counts[Int(label)] += 1 }
        return counts
    }

    /// Mean and standard deviation of all pixels on the [0, 1] scale (MNIST: 0.1307, 0.3081),
    /// the numbers `transforms.Normalize` is usually given.
    public func pixelStatistics() -> (mean: Double, standardDeviation: Double) {
        guard !images.isEmpty else { return (0, 0) }
        // Exact integer sums over a histogram: no rounding drift over 47 million pixels.
        var histogram = [Int](repeating: 0, count: 256)
        images.withUnsafeBufferPointer { pixels in
            for value in pixels { histogram[Int(value)] += 1 }
        }
        var sum = 0.0, sumOfSquares = 0.0
        for (value, frequency) in histogram.enumerated() where frequency > 0 {
            let x = Double(value) / 255
            sum += Double(frequency) * x
            sumOfSquares += Double(frequency) * x * x
        }
        let n = Double(images.count)
        let mean = sum / n
        return (mean, max(0, sumOfSquares / n - mean * mean).squareRoot())
    }

    init(unchecked images: [UInt8], labels: [UInt8], rows: Int, cols: Int, classCount: Int) {
        self.images = images
        self.labels = labels
        self.rows = rows
        self.cols = cols
        self.classCount = classCount
    }
}
