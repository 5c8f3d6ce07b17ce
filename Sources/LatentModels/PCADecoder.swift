import LatentCore
import LatentData
import LatentNN

/// The fixed PCA encoder: `codes = (x - mean) C^T` for images x (N, 784), components C
/// (K, 784). Its state lives in buffers, `pca.mean` (784), `pca.components` (K, 784) and
/// `pca.std` (K, the standard deviation of the training projections along each component),
/// so a checkpoint carries it; PyTorch: `register_buffer`.
public final class PCAProjection: Module {
    public let dimension: Int
    public let count: Int
    public let mean: Tensor
    public let components: Tensor
    public let standardDeviations: Tensor
    var offset = Slot()
    var codes = Slot()

    public init(dimension: Int, count: Int, on backend: any Backend) throws {
        guard count >= 1, count <= dimension else {
            throw LatentError.invalidArgument("PCA to \(count) components of \(dimension)-pixel images needs 1 <= --latent-dim <= \(dimension)")
        }
        self.dimension = dimension
        self.count = count
        mean = try Tensor(zeros: [dimension], on: backend)
        components = try Tensor(zeros: [count, dimension], on: backend)
        standardDeviations = try Tensor(zeros: [count], on: backend)
    }

    public var ownBuffers: [(name: String, tensor: Tensor)] {
        [("mean", mean), ("components", components), ("std", standardDeviations)]
    }

    public func load(_ pca: PrincipalComponents) throws {
        guard pca.dimension == dimension, pca.count == count else {
            throw LatentError.shape("PCA of \(pca.count) x \(pca.dimension) does not fit a projection of \(count) x \(dimension)")
        }
        try mean.copy(from: pca.mean)
        try components.copy(from: pca.components)
        try standardDeviations.copy(from: pca.standardDeviations)
    }

    // images (N, ...) with `dimension` floats per sample -> codes (N, K)
    public func forward(_ images: Tensor) throws -> Tensor {
        let backend = images.backend
        guard let batch = images.shape.first, batch >= 1, images.count == batch * dimension else {
            throw LatentError.shape("PCA projection expects (N, \(dimension)) floats, got \(Shape.describe(images.shape))")
        }
        // offset (1, K) = -mean (1, 784) C^T
        let offset = try offset.tensor([count], on: backend)
        try backend.gemm(transA: .none, transB: .transposed, m: 1, n: count, k: dimension,
                         alpha: -1, a: mean.view, lda: dimension, b: components.view, ldb: dimension,
                         beta: 0, c: offset.view, ldc: count)
        // codes (N, K) = X (N, 784) C^T + offset
        let codes = try codes.tensor([batch, count], on: backend)
        try backend.gemm(transA: .none, transB: .transposed, m: batch, n: count, k: dimension,
                         alpha: 1, a: images.view, lda: dimension, b: components.view, ldb: dimension,
                         beta: 0, c: codes.view, ldc: count)
        try backend.biasActivationForward(input: codes.view, bias: offset.view, activation: .identity,
                                          output: codes.view, channels: count, spatial: 1)
        return codes
    }
}

/// Report 001's second try (`pca-decoder`): PCA of the training images, computed by Latent
/// (see `PrincipalComponents`: mean and covariance over the training set, top `latentDim`
/// eigenvectors), is the fixed encoder; a fully connected decoder (as `ae`'s: `depth` x
/// (Linear [BN] ReLU [Dropout]) from latentDim to `hidden`, Linear(hidden, 784), Sigmoid,
/// Unflatten) is trained to map the PCA coordinates back to the image. The coordinates are
/// the raw projections (not whitened). Loss: `--loss` (BCE) summed over pixels and images.
/// State dict: `pca.mean`, `pca.components`, `pca.std` (buffers), `decoder.*`.
///
/// The PCA needs the training set before the first step: the trainer calls
/// `prepare(with:)` (`NeedsTrainingData`), or a caller `fit(trainingImages:count:)`.
/// A model whose buffers came from a checkpoint is ready without either.
/// `generate` decodes coordinates drawn from N(0, diag(std^2)), the spread of the training
/// projections along each component.
public final class PCADecoder: GenerativeModel, LatentEncodingModel, ReconstructingModel, NeedsTrainingData {
    public let options: TrainingOptions
    public let backend: any Backend
    public let random: RandomSource
    public let root: ModuleGroup
    public private(set) var optimizers: [(name: String, optimizer: Optimizer)] = []
    public let pixelRange = PixelRange.zeroToOne
    public let lossTermNames = ["loss"]
    public var codeSize: Int { options.latentDim }

    /// (N, 1, 28, 28) -> (N, K), fixed
    public let pca: PCAProjection
    /// (N, K) -> (N, 1, 28, 28) in (0, 1)
    let decoder: Sequential
    let reconstruction: ElementwiseLoss
    /// Rows per GEMM chunk of the covariance.
    public var chunkSize = 2048
    private var prepared = false

    public init(options: TrainingOptions, backend: any Backend, random: RandomSource) throws {
        self.options = options
        self.backend = backend
        self.random = random
        pca = try PCAProjection(dimension: ModelSupport.pixels, count: options.latentDim, on: backend)
        decoder = try ModelSupport.fullyConnectedDecoder(inputs: options.latentDim, options: options, backend: backend, random: random)
        root = ModuleGroup([("pca", pca), ("decoder", decoder)])
        reconstruction = ElementwiseLoss(options.lossKind, reduction: .sum)
        optimizers = [("optimizer", try ModelSupport.makeOptimizer(options, parameters: root.namedParameters()))]
    }

    /// Computes the PCA of the dataset's images, scaled to [0, 1].
    public func prepare(with dataset: Dataset) throws {
        guard dataset.pixelsPerImage == ModelSupport.pixels else {
            throw LatentError.shape("pca-decoder needs 28 x 28 images, the dataset has \(dataset.rows) x \(dataset.cols)")
        }
        let pixels = ModelSupport.pixels
        let images = dataset.images
        let result = try PrincipalComponents.compute(rowCount: dataset.count, dimension: pixels, components: options.latentDim,
                                                     backend: backend, chunkSize: chunkSize) { start, count, buffer in
            let base = start * pixels
            for i in 0..<(count * pixels) { buffer[i] = Float(images[base + i]) / 255 }
        }
        try pca.load(result)
        prepared = true
    }

    /// Computes the PCA of `count` images given as floats in [0, 1] (count x 784).
    public func fit(trainingImages: [Float], count: Int) throws {
        let pixels = ModelSupport.pixels
        guard count >= 2, trainingImages.count == count * pixels else {
            throw LatentError.shape("pca-decoder: fit needs at least 2 images of \(pixels) floats, got \(trainingImages.count) floats for \(count)")
        }
        let result = try PrincipalComponents.compute(rowCount: count, dimension: pixels, components: options.latentDim,
                                                     backend: backend, chunkSize: chunkSize) { start, rows, buffer in
            for i in 0..<(rows * pixels) { buffer[i] = trainingImages[start * pixels + i] }
        }
        try pca.load(result)
        prepared = true
    }

    /// Ready when fitted here or when the buffers hold a PCA (a loaded checkpoint): one host
    /// read of `pca.std`, once.
    func requirePrepared() throws {
        if prepared { return }
        if try pca.standardDeviations.toArray().contains(where: { $0 > 0 }) {
            prepared = true
            return
        }
        throw LatentError.invalidArgument("pca-decoder: the PCA has not been computed; call prepare(with:) with the training set before training")
    }

    // images (N, 1, 28, 28) -> codes (N, K) -> reconstruction (N, 1, 28, 28)
    func forward(_ images: Tensor, training: Bool) throws -> Tensor {
        try ModelSupport.checkImages(images, labels: nil, "pca-decoder")
        return try decoder.forward(try pca.forward(images), training: training)
    }

    public func trainStep(images: Tensor, labels: [UInt8]) throws -> [Tensor] {
        try requirePrepared()
        for (_, optimizer) in optimizers { try optimizer.zeroGradients() }
        let output = try forward(images, training: true)
        let loss = try reconstruction.forward(output, target: images)
        // The PCA is fixed: the decoder's input needs no gradient.
        try decoder.backwardParameters(try reconstruction.backward(scale: 1 / Float(images.shape[0])))
        for (_, optimizer) in optimizers { try optimizer.step() }
        return [loss]
    }

    public func evaluate(images: Tensor, labels: [UInt8]) throws -> [Tensor] {
        [try reconstruction.forward(try forward(images, training: false), target: images)]
    }

    public func generate(count: Int, seed: UInt64) throws -> [Float] {
        guard count >= 1 else { throw LatentError.invalidArgument("pca-decoder: generate needs count >= 1, got \(count)") }
        let k = options.latentDim
        let codes = try Tensor(zeros: [count, k], on: backend)
        try RandomSource(seed: seed).fillNormal(codes)
        let spread = try pca.standardDeviations.toArray()
        var values = try codes.toArray()
        for i in values.indices { values[i] *= spread[i % k] }
        try codes.copy(from: values)
        return try decode(codes, labels: nil)
    }

    /// PCA coordinates (N, K) of images.
    public func encodeMeans(_ images: Tensor, labels: [UInt8]) throws -> [Float] {
        try ModelSupport.checkImages(images, labels: nil, "pca-decoder")
        return try pca.forward(images).toArray()
    }

    public func decode(_ codes: Tensor, labels: [UInt8]? = nil) throws -> [Float] {
        try ModelSupport.checkCodes(codes, width: options.latentDim, "pca-decoder")
        return try decoder.forward(codes, training: false).toArray()
    }

    public func reconstruct(_ images: Tensor, labels: [UInt8]) throws -> [Float] {
        try forward(images, training: false).toArray()
    }
}
