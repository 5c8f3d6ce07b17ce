import LatentCore
import LatentData
import LatentModels
import LatentNN

/// Encoding, decoding, reconstructing and sampling in batches (10,000 images never make one
/// tensor), on the host side of the models' protocols.
public enum LatentOps {
    /// Images per forward pass.
    public static let batchSize = 500

    /// Images `indices` of `dataset` as floats in `range` (784 per image), with labels; with
    /// `noise` > 0 salt-and-pepper noise on that fraction of pixels (seeded, as training's).
    public static func images(_ dataset: Dataset, indices: [Int], range: PixelRange = .zeroToOne,
                              noise: Double = 0, seed: UInt64 = 0) throws -> (images: [Float], labels: [UInt8]) {
        guard dataset.rows == ImageTable.side, dataset.cols == ImageTable.side else {
            throw ExploreError("the explore commands need 28 x 28 images, the dataset has \(dataset.rows) x \(dataset.cols)")
        }
        if let bad = indices.first(where: { $0 < 0 || $0 >= dataset.count }) {
            throw ExploreError("image \(bad) is outside the \(dataset.count) images of the split")
        }
        var loader = BatchLoader(dataset: dataset, batchSize: max(1, indices.count), shuffle: false, seed: seed)
        loader.range = range
        loader.saltAndPepperFraction = noise
        var images = [Float](repeating: 0, count: indices.count * ImageTable.pixels)
        var labels = [UInt8](repeating: 0, count: indices.count)
        guard !indices.isEmpty else { return (images, labels) }
        images.withUnsafeMutableBufferPointer { imageBuffer in
            labels.withUnsafeMutableBufferPointer { labelBuffer in
                loader.fill(indices: indices, epoch: 0, images: imageBuffer, labels: labelBuffer)
            }
        }
        return (images, labels)
    }

    /// The chunks `0..<count` is cut into.
    static func chunks(_ count: Int) -> [Range<Int>] {
        stride(from: 0, to: count, by: batchSize).map { $0..<min(count, $0 + batchSize) }
    }

    /// Encoder codes (count x codeSize) of images in [0, 1] (count x 784).
    public static func encode(_ model: any LatentEncodingModel, images: [Float], labels: [UInt8]) throws -> [Float] {
        let count = images.count / ImageTable.pixels
        var codes: [Float] = []
        codes.reserveCapacity(count * model.codeSize)
        for chunk in chunks(count) {
            let batch = try Tensor(Array(images[(chunk.lowerBound * ImageTable.pixels)..<(chunk.upperBound * ImageTable.pixels)]),
                                   shape: [chunk.count, 1, ImageTable.side, ImageTable.side], on: model.backend)
            codes += try model.encodeMeans(batch, labels: Array(labels[chunk]))
        }
        return codes
    }

    /// Codes of every image of `dataset` (or its first `limit`), with their labels.
    public static func encode(_ model: any LatentEncodingModel, dataset: Dataset, limit: Int? = nil) throws -> (codes: [Float], labels: [UInt8]) {
        let count = min(limit ?? dataset.count, dataset.count)
        var codes: [Float] = []
        var labels: [UInt8] = []
        codes.reserveCapacity(count * model.codeSize)
        for chunk in chunks(count) {
            let (images, chunkLabels) = try self.images(dataset, indices: Array(chunk), range: model.pixelRange)
            codes += try encode(model, images: images, labels: chunkLabels)
            labels += chunkLabels
        }
        return (codes, labels)
    }

    /// Images (count x 784 in [0, 1]) decoded from codes (count x codeSize); `labels` for the
    /// conditional model (one per code), nil otherwise.
    public static func decode(_ model: any LatentDecodingModel, codes: [Float], labels: [UInt8]? = nil) throws -> [Float] {
        let width = model.codeSize
        guard width >= 1, codes.count % width == 0 else { throw ExploreError("\(codes.count) floats are not codes of \(width)") }
        let count = codes.count / width
        if let labels, labels.count != count { throw ExploreError("\(labels.count) labels for \(count) codes") }
        var images: [Float] = []
        images.reserveCapacity(count * ImageTable.pixels)
        for chunk in chunks(count) {
            let tensor = try Tensor(Array(codes[(chunk.lowerBound * width)..<(chunk.upperBound * width)]),
                                    shape: [chunk.count, width], on: model.backend)
            images += try model.decode(tensor, labels: labels.map { Array($0[chunk]) })
        }
        return images
    }

    /// Reconstructions (count x 784 in [0, 1]) of images in the model's pixel range.
    public static func reconstruct(_ model: any ReconstructingModel, images: [Float], labels: [UInt8]) throws -> [Float] {
        let count = images.count / ImageTable.pixels
        var output: [Float] = []
        output.reserveCapacity(images.count)
        for chunk in chunks(count) {
            let batch = try Tensor(Array(images[(chunk.lowerBound * ImageTable.pixels)..<(chunk.upperBound * ImageTable.pixels)]),
                                   shape: [chunk.count, 1, ImageTable.side, ImageTable.side], on: model.backend)
            output += try model.reconstruct(batch, labels: Array(labels[chunk]))
        }
        return output
    }

    /// `count` standard normal floats from `seed` (the backend's Philox stream).
    public static func normals(_ count: Int, seed: UInt64, backend: any Backend) throws -> [Float] {
        guard count > 0 else { return [] }
        let tensor = try Tensor(zeros: [count], on: backend)
        try RandomSource(seed: seed).fillNormal(tensor)
        return try tensor.toArray()
    }

    /// Whether the model decodes per class: the conditional VAE and the designed latent space.
    public static func isConditional(_ model: any GenerativeModel) -> Bool {
        model.options.model == .cvae || model.options.model == .designedLatent
    }

    /// `count` samples (count x 784 in [0, 1]) in batches, batch b drawn with seed `seed + b`;
    /// with `label`, samples of that class (cvae: z ~ N(0, I) decoded with the label;
    /// designed-latent: the class vector plus the model's code noise).
    public static func samples(_ model: any GenerativeModel, count: Int, seed: UInt64, label: Int? = nil) throws -> [Float] {
        guard count >= 1 else { throw ExploreError("--count must be at least 1") }
        guard Capability.of(model).contains(.generate) else {
            throw ExploreError("a '\(model.options.model.rawValue)' model does not generate images")
        }
        var images: [Float] = []
        images.reserveCapacity(count * ImageTable.pixels)
        for (index, chunk) in chunks(count).enumerated() {
            let chunkSeed = seed &+ UInt64(index)
            guard let label else {
                images += try model.generate(count: chunk.count, seed: chunkSeed)
                continue
            }
            guard (0..<10).contains(label) else { throw ExploreError("--label must be a class 0...9, got \(label)") }
            let labels = [UInt8](repeating: UInt8(label), count: chunk.count)
            if let designed = model as? DesignedLatent {
                let noise = try normals(chunk.count * designed.codeSize, seed: chunkSeed, backend: model.backend)
                let center = designed.classCode(label)
                let codes = noise.indices.map { center[$0 % designed.codeSize] + designed.codeNoise * noise[$0] }
                images += try decode(designed, codes: codes, labels: labels)
            } else if model.options.model == .cvae, let decoder = model as? any LatentDecodingModel {
                let codes = try normals(chunk.count * decoder.codeSize, seed: chunkSeed, backend: model.backend)
                images += try decode(decoder, codes: codes, labels: labels)
            } else {
                throw ExploreError("--label needs a conditional model (cvae, designed-latent); this is a '\(model.options.model.rawValue)' model")
            }
        }
        return images
    }

    /// Images as IDX bytes: clamp to [0, 1], times 255, round half up (torchvision's save_image).
    public static func bytes(_ images: [Float]) -> [UInt8] {
        images.map { value in
            guard value > 0 else { return 0 }   // also NaN
            return value >= 1 ? 255 : UInt8(value * 255 + 0.5)
        }
    }

    /// `steps` evenly spaced values from `from` to `to`, both included (numpy's linspace).
    public static func linspace(_ from: Double, _ to: Double, _ steps: Int) -> [Double] {
        guard steps > 1 else { return [from] }
        return (0..<steps).map { from + (to - from) * Double($0) / Double(steps - 1) }
    }
}
