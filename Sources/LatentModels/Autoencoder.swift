import LatentCore
import LatentData
import LatentNN

/// Report 001's plain autoencoder (`ae`). Encoder: Flatten, `depth` x (Linear [BN] ReLU
/// [Dropout]) to `hidden`, Linear(hidden, latentDim) (the code, no activation). Decoder: the
/// mirror, `depth` x (Linear [BN] ReLU [Dropout]) from latentDim, Linear(hidden, 784), Sigmoid,
/// Unflatten(1, 28, 28). Loss: the reconstruction loss `--loss` (BCE by default) summed over
/// pixels and images; the trainer divides by N, and the gradient is that of the batch mean
/// of the per-image sums. State dict: `encoder.*`, `decoder.*`.
///
/// `generate` decodes codes drawn from N(0, I): the code space of an AE is not fitted to
/// any prior, so report 001 gets garbage from this, and so will we.
public final class Autoencoder: GenerativeModel, LatentEncodingModel, ReconstructingModel {
    public let options: TrainingOptions
    public let backend: any Backend
    public let random: RandomSource
    public let root: ModuleGroup
    public private(set) var optimizers: [(name: String, optimizer: Optimizer)] = []
    public let pixelRange = PixelRange.zeroToOne
    public let lossTermNames = ["loss"]
    public var codeSize: Int { options.latentDim }

    /// (N, 1, 28, 28) -> (N, Z)
    let encoder: Sequential
    /// (N, Z) -> (N, 1, 28, 28) in (0, 1)
    let decoder: Sequential
    let reconstruction: ElementwiseLoss

    public init(options: TrainingOptions, backend: any Backend, random: RandomSource) throws {
        self.options = options
        self.backend = backend
        self.random = random
        encoder = Sequential([Flatten()])
        try ModelSupport.appendHiddenLayers(to: encoder, from: ModelSupport.pixels, options: options, backend: backend, random: random)
        encoder.append(try Linear(options.hidden, options.latentDim, on: backend, random: random))
        decoder = try ModelSupport.fullyConnectedDecoder(inputs: options.latentDim, options: options, backend: backend, random: random)
        root = ModuleGroup([("encoder", encoder), ("decoder", decoder)])
        reconstruction = ElementwiseLoss(options.lossKind, reduction: .sum)
        optimizers = [("optimizer", try ModelSupport.makeOptimizer(options, parameters: root.namedParameters()))]
    }

    // images (N, 1, 28, 28) -> code (N, Z) -> reconstruction (N, 1, 28, 28)
    func forward(_ images: Tensor, training: Bool) throws -> Tensor {
        try ModelSupport.checkImages(images, labels: nil, "ae")
        let code = try encoder.forward(images, training: training)
        return try decoder.forward(code, training: training)
    }

    public func trainStep(images: Tensor, labels: [UInt8]) throws -> [Tensor] {
        for (_, optimizer) in optimizers { try optimizer.zeroGradients() }
        let output = try forward(images, training: true)
        let loss = try reconstruction.forward(output, target: images)
        // d(loss / N): the batch mean of the per-image sums.
        let gradOutput = try reconstruction.backward(scale: 1 / Float(images.shape[0]))
        try encoder.backwardParameters(try decoder.backward(gradOutput))
        for (_, optimizer) in optimizers { try optimizer.step() }
        return [loss]
    }

    public func evaluate(images: Tensor, labels: [UInt8]) throws -> [Tensor] {
        [try reconstruction.forward(try forward(images, training: false), target: images)]
    }

    public func generate(count: Int, seed: UInt64) throws -> [Float] {
        let codes = try Tensor(zeros: [count, options.latentDim], on: backend)
        try RandomSource(seed: seed).fillNormal(codes)
        return try decode(codes, labels: nil)
    }

    /// Codes (N, Z) of images, in eval mode (the name matches `GaussianVAE.encodeMeans`).
    public func encodeMeans(_ images: Tensor, labels: [UInt8]) throws -> [Float] {
        try ModelSupport.checkImages(images, labels: nil, "ae")
        return try encoder.forward(images, training: false).toArray()
    }

    /// Images (count x 28 x 28, in [0, 1]) decoded from codes (count, Z); labels are ignored.
    public func decode(_ codes: Tensor, labels: [UInt8]? = nil) throws -> [Float] {
        try ModelSupport.checkCodes(codes, width: options.latentDim, "ae")
        return try decoder.forward(codes, training: false).toArray()
    }

    public func reconstruct(_ images: Tensor, labels: [UInt8]) throws -> [Float] {
        try forward(images, training: false).toArray()
    }
}
