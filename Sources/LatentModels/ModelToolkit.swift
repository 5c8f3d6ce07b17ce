import LatentCore
import LatentData
import LatentNN

// MARK: - Capabilities beyond `GenerativeModel`

/// A model that derives fixed state from the training set before it trains (the
/// `pca-decoder`'s principal components). The trainer calls `prepare` once, before the first
/// epoch of a fresh run. The derived state lives in the model's state dict (buffers), so a
/// checkpoint carries it: a resumed run, or a command that only loads a checkpoint, need not
/// call `prepare` again (calling it recomputes the same result from the same data).
public protocol NeedsTrainingData: AnyObject {
    func prepare(with dataset: Dataset) throws
}

/// A model that maps latent codes (count, `codeSize`) to images in [0, 1] (count x 28 x 28
/// floats): decoders, generators. `labels` are for conditional models and ignored by the rest
/// (nil: the conditional models cycle 0, 1, ..., 9).
public protocol LatentDecodingModel: GenerativeModel {
    var codeSize: Int { get }
    func decode(_ codes: Tensor, labels: [UInt8]?) throws -> [Float]
}

/// A decoder with a deterministic encoder (the VAEs' means, the AE's codes, the PCA
/// projection): `encodeMeans` gives (N, `codeSize`) floats. For centroids, scatter plots,
/// interpolation between real images.
public protocol LatentEncodingModel: LatentDecodingModel {
    func encodeMeans(_ images: Tensor, labels: [UInt8]) throws -> [Float]
}

/// A model that reconstructs images (N, 1, 28, 28) deterministically, in eval mode: the
/// decoder applied to the encoder's mean (VAEs), code (AE, PCA) or quantised code (VQ-VAE).
/// Returns N x 28 x 28 floats in [0, 1].
public protocol ReconstructingModel: GenerativeModel {
    func reconstruct(_ images: Tensor, labels: [UInt8]) throws -> [Float]
}

extension GaussianVAE: LatentEncodingModel, ReconstructingModel {
    public var codeSize: Int { options.latentDim }

    public func reconstruct(_ images: Tensor, labels: [UInt8]) throws -> [Float] {
        let means = try encodeMeans(images, labels: labels)
        let codes = try Tensor(means, shape: [images.shape[0], options.latentDim], on: backend)
        return try decode(codes, labels: labels)
    }
}

// MARK: - Reusable device tensors

/// LatentNN's reusable tensor (same object while the shape stays, same buffer while it fits).
typealias Slot = TensorSlot

/// A tensor filled with one value, refilled only when its shape changes (targets of ones
/// and zeros for a GAN's BCE).
struct ConstantSlot {
    let value: Float
    private var slot = Slot()
    private var filledShape: [Int]?

    init(_ value: Float) { self.value = value }

    mutating func tensor(_ shape: [Int], on backend: any Backend) throws -> Tensor {
        let tensor = try slot.tensor(shape, on: backend)
        if filledShape != shape {
            try backend.fill(tensor.view, value: value)
            filledShape = shape
        }
        return tensor
    }
}

/// Matrix transposition on the device with GEMM against a cached identity, since the backend
/// has no permute op: `Y (C x R) = I_C * X^T` when C <= R, else `X^T * I_R`. Multiplying by
/// one and adding zeros is exact in IEEE arithmetic, so the result is the bitwise transpose
/// for finite inputs (a NaN or infinity spreads along its row or column, which the trainer's
/// non-finite check reports anyway). Cost: min(R, C)^2 * max(R, C) multiply-adds; for the
/// VQ-VAE's (N * D, 49) code maps that is small beside the convolutions.
struct Transposer {
    private var identities: [Int: Tensor] = [:]

    private mutating func identity(_ size: Int, on backend: any Backend) throws -> Tensor {
        if let existing = identities[size], existing.backend === backend { return existing }
        var values = [Float](repeating: 0, count: size * size)
        for i in 0..<size { values[i * size + i] = 1 }
        let tensor = try Tensor(values, shape: [size, size], on: backend)
        identities[size] = tensor
        return tensor
    }

    /// `destination (cols x rows) = source (rows x cols)^T`, both row-major and contiguous.
    mutating func transpose(_ source: BufferView, rows: Int, cols: Int, into destination: BufferView,
                            on backend: any Backend) throws {
        let count = try Shape.elementCount([rows, cols])
        guard source.count >= count, destination.count >= count else {
            throw LatentError.shape("transpose of \(rows) x \(cols) needs \(count) floats, got \(source.count) and \(destination.count)")
        }
        guard rows > 0, cols > 0 else { return }
        if cols <= rows {
            let eye = try identity(cols, on: backend)
            // (cols x cols) * (rows x cols)^T -> (cols x rows)
            try backend.gemm(transA: .none, transB: .transposed, m: cols, n: rows, k: cols,
                             alpha: 1, a: eye.view, lda: cols, b: source, ldb: cols,
                             beta: 0, c: destination, ldc: rows)
        } else {
            let eye = try identity(rows, on: backend)
            // (rows x cols)^T * (rows x rows) -> (cols x rows)
            try backend.gemm(transA: .transposed, transB: .none, m: cols, n: rows, k: rows,
                             alpha: 1, a: source, lda: cols, b: eye.view, ldb: rows,
                             beta: 0, c: destination, ldc: rows)
        }
    }
}

// MARK: - Shared pieces

extension ModelSupport {
    static let pixels = 28 * 28

    /// `depth` x (Linear [BN] ReLU [Dropout]) from `width` to `options.hidden`, the report-003
    /// hidden block the VAEs use (`VAEArchitecture.appendHidden`).
    static func appendHiddenLayers(to sequential: Sequential, from width: Int, options: TrainingOptions,
                                   backend: any Backend, random: RandomSource) throws {
        var width = width
        for _ in 0..<options.depth {
            try VAEArchitecture.appendHidden(to: sequential, from: width, options: options, backend: backend, random: random)
            width = options.hidden
        }
    }

    /// The fully connected image decoder of `ae`, `designed-latent` and `pca-decoder`:
    /// `depth` x (Linear [BN] ReLU [Dropout]) from `inputs` to `hidden`, Linear(hidden, 784),
    /// Sigmoid, Unflatten(1, 28, 28). (N, inputs) -> (N, 1, 28, 28) in (0, 1).
    static func fullyConnectedDecoder(inputs: Int, options: TrainingOptions, backend: any Backend,
                                      random: RandomSource) throws -> Sequential {
        let decoder = Sequential([])
        try appendHiddenLayers(to: decoder, from: inputs, options: options, backend: backend, random: random)
        decoder.append(try Linear(options.hidden, pixels, on: backend, random: random))
        decoder.append(Sigmoid())
        decoder.append(try Reshape([1, 28, 28]))
        return decoder
    }

    /// Throws unless `images` is (N, 1, 28, 28) with N >= 1 and `labels` has N entries
    /// (or none, where the model ignores labels).
    static func checkImages(_ images: Tensor, labels: [UInt8]?, _ model: String) throws {
        guard images.shape.count == 4, images.shape[0] >= 1, Array(images.shape.dropFirst()) == [1, 28, 28] else {
            throw LatentError.shape("\(model) expects images (N, 1, 28, 28), got \(Shape.describe(images.shape))")
        }
        if let labels, !labels.isEmpty, labels.count != images.shape[0] {
            throw LatentError.shape("\(model): \(labels.count) labels for \(images.shape[0]) images")
        }
    }

    /// Throws unless `codes` is (N, width) with N >= 1.
    static func checkCodes(_ codes: Tensor, width: Int, _ model: String) throws {
        guard codes.shape.count == 2, codes.shape[0] >= 1, codes.shape[1] == width else {
            throw LatentError.shape("\(model) decodes codes (N, \(width)), got \(Shape.describe(codes.shape))")
        }
    }

    /// `output = a * x + b * y` for one-element tensors, on the device.
    static func combine(_ a: Float, _ x: Tensor, _ b: Float, _ y: Tensor, into output: Tensor) throws {
        try output.backend.axpby(alpha: a, x: x.view, beta: 0, y: output.view)
        try output.backend.axpby(alpha: b, x: y.view, beta: 1, y: output.view)
    }

    /// Runs `body` with `requiresGradient` off for `parameters`, restoring the previous flags.
    static func withoutGradients<T>(_ parameters: [Parameter], _ body: () throws -> T) rethrows -> T {
        let saved = parameters.map(\.requiresGradient)
        for parameter in parameters { parameter.requiresGradient = false }
        defer { for (parameter, flag) in zip(parameters, saved) { parameter.requiresGradient = flag } }
        return try body()
    }
}
