/// The range network inputs are scaled to.
public enum PixelRange: Sendable, CaseIterable {
    /// 0 (background) to 1 (ink): `transforms.ToTensor()`, for sigmoid decoders and BCE.
    case zeroToOne
    /// -1 to 1: `Normalize((0.5,), (0.5,))`, for tanh generators (report 004's GAN).
    case minusOneToOne
}

/// Cuts a dataset into batches of floats in NCHW order (`N x 1 x rows x cols`), with a seeded
/// shuffle and optional per-pixel randomness.
///
/// Determinism: the order of epoch `e` depends only on (`seed`, `e`); the random draws for an
/// image depend only on (`seed`, `e`, its index in the dataset). So the same seed replays a run
/// exactly, and two loaders that differ only in their transforms (say one with noise, one
/// without, for a denoising target) deliver the same images in the same order.
public struct BatchLoader: Sendable {
    public let dataset: Dataset
    public let batchSize: Int
    /// Reshuffle every epoch; false keeps the file order (evaluation).
    public var shuffle: Bool
    public var seed: UInt64
    public var range: PixelRange = .zeroToOne
    /// Dynamic binarisation: each pixel becomes 1 with probability intensity/255, drawn afresh
    /// every epoch, so a Bernoulli likelihood in nats is well defined and the net never sees
    /// the same binary image twice.
    public var binarize = false
    /// Salt-and-pepper noise: each pixel, with this probability, becomes black or white
    /// (half each). Report 004 uses 0.01, 0.1, 0.2, 0.8.
    public var saltAndPepperFraction: Double = 0
    /// Noise is a fixed property of each image (a corrupted dataset) unless this is true,
    /// in which case it is drawn afresh every epoch (augmentation).
    public var resampleNoiseEachEpoch = false
    /// Skip a last batch smaller than `batchSize` (BatchNorm dislikes tiny batches).
    public var dropLast = false

    /// - Precondition: `batchSize > 0`.
    public init(dataset: Dataset, batchSize: Int, shuffle: Bool = true, seed: UInt64 = 0) {
        precondition(batchSize > 0, "batch size must be positive")
        self.dataset = dataset
        self.batchSize = batchSize
        self.shuffle = shuffle
        self.seed = seed
    }

    /// Floats in one full batch: `batchSize * rows * cols`.
    public var floatsPerBatch: Int { batchSize * dataset.pixelsPerImage }

    public var batchesPerEpoch: Int {
        dropLast ? dataset.count / batchSize : (dataset.count + batchSize - 1) / batchSize
    }

    /// The dataset indices of epoch `epoch`, in the order batches deliver them.
    public func order(epoch: Int) -> [Int] {
        var order = Array(0..<dataset.count)
        if shuffle {
            var generator = SplitMix64.stream(seed, Purpose.shuffle, UInt64(bitPattern: Int64(epoch)))
            order.shuffleDeterministically(using: &generator)
        }
        return order
    }

    /// The batches of one epoch (the shuffle is computed once, here).
    public func epoch(_ epoch: Int) -> Epoch {
        Epoch(loader: self, index: epoch, order: order(epoch: epoch))
    }

    /// One epoch's batches.
    public struct Epoch: Sendable {
        public let loader: BatchLoader
        public let index: Int
        /// Dataset indices in delivery order.
        public let order: [Int]

        public var batchCount: Int { loader.batchesPerEpoch }

        /// Images in batch `batch` (the last may be short unless `dropLast`).
        public func imageCount(inBatch batch: Int) -> Int {
            precondition(batch >= 0 && batch < batchCount, "batch \(batch) out of 0..<\(batchCount)")
            return min(loader.batchSize, order.count - batch * loader.batchSize)
        }

        /// Writes batch `batch` into `images` (at least count x rows x cols floats, NCHW) and
        /// its labels into `labels`; returns the number of images written.
        @discardableResult
        public func fill(batch: Int, images: UnsafeMutableBufferPointer<Float>,
                         labels: UnsafeMutableBufferPointer<UInt8>) -> Int {
            let count = imageCount(inBatch: batch)
            let start = batch * loader.batchSize
            loader.fill(indices: order[start..<(start + count)], epoch: index, images: images, labels: labels)
            return count
        }

        /// Array form of ``fill(batch:images:labels:)``: the arrays are resized to the batch
        /// (reusing their storage), so `images.count == n * rows * cols` afterwards.
        @discardableResult
        public func fill(batch: Int, images: inout [Float], labels: inout [UInt8]) -> Int {
            let count = imageCount(inBatch: batch)
            resize(&images, to: count * loader.dataset.pixelsPerImage, with: 0)
            resize(&labels, to: count, with: 0)
            images.withUnsafeMutableBufferPointer { imageBuffer in
                labels.withUnsafeMutableBufferPointer { labelBuffer in
                    _ = fill(batch: batch, images: imageBuffer, labels: labelBuffer)
                }
            }
            return count
        }
    }

    /// Writes the images at `indices` (dataset positions, any order) as floats with this
    /// loader's transforms, as drawn in epoch `epoch`, and their labels. For evaluation sets
    /// and for picking particular images (reconstructions, class rows).
    public func fill<Indices: Collection<Int>>(indices: Indices, epoch: Int,
                                               images: UnsafeMutableBufferPointer<Float>,
                                               labels: UnsafeMutableBufferPointer<UInt8>) {
        let pixels = dataset.pixelsPerImage
        precondition(images.count >= indices.count * pixels, "image buffer too small for \(indices.count) images")
        precondition(labels.count >= indices.count, "label buffer too small for \(indices.count) labels")
        let scale: Float = range == .zeroToOne ? 1 : 2
        let offset: Float = range == .zeroToOne ? 0 : -1
        let noiseThreshold = UInt64((min(max(saltAndPepperFraction, 0), 1) * 9_007_199_254_740_992).rounded())
        let noiseEpoch = resampleNoiseEachEpoch ? UInt64(bitPattern: Int64(epoch)) : 0
        let epochKey = UInt64(bitPattern: Int64(epoch))

        dataset.images.withUnsafeBufferPointer { source in
            for (slot, index) in indices.enumerated() {
                precondition(index >= 0 && index < dataset.count, "image index \(index) out of range")
                labels[slot] = dataset.labels[index]
                let input = UnsafeBufferPointer(rebasing: source[(index * pixels)..<((index + 1) * pixels)])
                let output = UnsafeMutableBufferPointer(rebasing: images[(slot * pixels)..<((slot + 1) * pixels)])
                if !binarize && noiseThreshold == 0 {
                    let table = range == .zeroToOne ? BatchLoader.unitTable : BatchLoader.symmetricTable
                    for p in 0..<pixels { output[p] = table[Int(input[p])] }
                    continue
                }
                if binarize {
                    var generator = SplitMix64.stream(seed, Purpose.binarize, epochKey, UInt64(index))
                    for p in 0..<pixels {
                        // 24 random bits against intensity * 2^24: P(1) = intensity / 255 exactly
                        // for black (never) and white (always), within 2^-24 elsewhere.
                        let draw = UInt32(truncatingIfNeeded: generator.next() >> 40)
                        output[p] = draw < BatchLoader.bernoulliThresholds[Int(input[p])] ? 1 : 0
                    }
                } else {
                    for p in 0..<pixels { output[p] = BatchLoader.unitTable[Int(input[p])] }
                }
                if noiseThreshold > 0 {
                    var generator = SplitMix64.stream(seed, Purpose.noise, noiseEpoch, UInt64(index))
                    for p in 0..<pixels {
                        let draw = generator.next()
                        if draw >> 11 < noiseThreshold { output[p] = Float(draw & 1) }
                    }
                }
                if range == .minusOneToOne {
                    for p in 0..<pixels { output[p] = output[p] * scale + offset }
                }
            }
        }
    }

    /// Stream keys, so that shuffling, binarisation and noise never share random numbers.
    private enum Purpose {
        static let shuffle: UInt64 = 1
        static let binarize: UInt64 = 2
        static let noise: UInt64 = 3
    }

    private static let unitTable: [Float] = (0...255).map { Float($0) / 255 }
    private static let symmetricTable: [Float] = (0...255).map { Float($0) / 255 * 2 - 1 }
    private static let bernoulliThresholds: [UInt32] = (0...255).map {
        UInt32((Double($0) / 255 * 16_777_216).rounded())
    }
}

private func resize<Element>(_ array: inout [Element], to count: Int, with filler: Element) {
    if array.count > count {
        array.removeLast(array.count - count)
    } else if array.count < count {
        array.append(contentsOf: repeatElement(filler, count: count - array.count))
    }
}
