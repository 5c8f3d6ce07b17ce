import LatentCore
import LatentData
import LatentNN

/// Report 001's "designed latent space" (new try 1, `designed-latent`): no encoder. An image
/// of class k is decoded from the code `classScale * [k, k, ..., k] + codeNoise * eps`
/// (latentDim copies, eps ~ N(0, I) from the model's stream, fresh every step) and the
/// decoder is trained to reconstruct the image. Defaults: `classScale` 1 (the report's
/// `[k, ..., k]`), `codeNoise` 1, so neighbouring class vectors are sqrt(latentDim) apart and
/// overlap at about one noise standard deviation; more noise at sampling time morphs a digit
/// into its neighbours, as the report observes.
///
/// Decoder: `depth` x (Linear [BN] ReLU [Dropout]) from latentDim to `hidden`,
/// Linear(hidden, 784), Sigmoid, Unflatten(1, 28, 28), as `ae`'s. Loss: `--loss` (BCE)
/// summed over pixels and images (the trainer divides by N). State dict: `decoder.*`.
///
/// `generate` decodes the class codes of 0, 1, ..., 9, 0, 1, ... plus `codeNoise` noise.
public final class DesignedLatent: GenerativeModel, LatentDecodingModel {
    public let options: TrainingOptions
    public let backend: any Backend
    public let random: RandomSource
    public let root: ModuleGroup
    public private(set) var optimizers: [(name: String, optimizer: Optimizer)] = []
    public let pixelRange = PixelRange.zeroToOne
    public let lossTermNames = ["loss"]
    public var codeSize: Int { options.latentDim }
    public let classes = 10
    /// The class vector of digit k is `classScale * k` in every coordinate.
    public var classScale: Float = 1
    /// Standard deviation of the Gaussian noise added to the class vector, in training,
    /// evaluation and `generate`.
    public var codeNoise: Float = 1

    /// (N, Z) -> (N, 1, 28, 28) in (0, 1)
    let decoder: Sequential
    let reconstruction: ElementwiseLoss
    var codes = Slot()
    var noise = Slot()
    var hostCodes: [Float] = []

    public init(options: TrainingOptions, backend: any Backend, random: RandomSource) throws {
        self.options = options
        self.backend = backend
        self.random = random
        decoder = try ModelSupport.fullyConnectedDecoder(inputs: options.latentDim, options: options, backend: backend, random: random)
        root = ModuleGroup([("decoder", decoder)])
        reconstruction = ElementwiseLoss(options.lossKind, reduction: .sum)
        optimizers = [("optimizer", try ModelSupport.makeOptimizer(options, parameters: root.namedParameters()))]
    }

    /// The noiseless code of class `label`: latentDim copies of `classScale * label`.
    public func classCode(_ label: Int) -> [Float] {
        [Float](repeating: classScale * Float(label), count: options.latentDim)
    }

    /// (N) labels -> codes (N, Z) = class vectors + codeNoise * eps, eps from `source`.
    func makeCodes(_ labels: [UInt8], source: RandomSource) throws -> Tensor {
        guard !labels.isEmpty else { throw LatentError.invalidArgument("designed-latent needs at least one label") }
        let width = options.latentDim
        hostCodes.removeAll(keepingCapacity: true)
        for label in labels {
            guard Int(label) < classes else { throw LatentError.invalidArgument("label \(label) is outside 0..<\(classes)") }
            hostCodes.append(contentsOf: repeatElement(classScale * Float(label), count: width))
        }
        let codes = try codes.tensor([labels.count, width], on: backend)
        try codes.copy(from: hostCodes)
        if codeNoise != 0 {
            let noise = try noise.tensor([labels.count, width], on: backend)
            try source.fillNormal(noise)
            try backend.axpby(alpha: codeNoise, x: noise.view, beta: 1, y: codes.view)
        }
        return codes
    }

    func checkBatch(_ images: Tensor, _ labels: [UInt8]) throws {
        try ModelSupport.checkImages(images, labels: labels, "designed-latent")
        guard labels.count == images.shape[0] else {
            throw LatentError.invalidArgument("designed-latent needs one label per image, got \(labels.count) for \(images.shape[0])")
        }
    }

    public func trainStep(images: Tensor, labels: [UInt8]) throws -> [Tensor] {
        try checkBatch(images, labels)
        for (_, optimizer) in optimizers { try optimizer.zeroGradients() }
        let codes = try makeCodes(labels, source: random)
        let output = try decoder.forward(codes, training: true)
        let loss = try reconstruction.forward(output, target: images)
        try decoder.backwardParameters(try reconstruction.backward(scale: 1 / Float(images.shape[0])))
        for (_, optimizer) in optimizers { try optimizer.step() }
        return [loss]
    }

    public func evaluate(images: Tensor, labels: [UInt8]) throws -> [Tensor] {
        try checkBatch(images, labels)
        let output = try decoder.forward(try makeCodes(labels, source: random), training: false)
        return [try reconstruction.forward(output, target: images)]
    }

    public func generate(count: Int, seed: UInt64) throws -> [Float] {
        guard count >= 1 else { throw LatentError.invalidArgument("designed-latent: generate needs count >= 1, got \(count)") }
        let labels = (0..<count).map { UInt8($0 % classes) }
        let codes = try makeCodes(labels, source: RandomSource(seed: seed))
        return try decoder.forward(codes, training: false).toArray()
    }

    /// Images (count x 28 x 28, in [0, 1]) decoded from codes (count, Z); labels are ignored
    /// (build the codes with `classCode`).
    public func decode(_ codes: Tensor, labels: [UInt8]? = nil) throws -> [Float] {
        try ModelSupport.checkCodes(codes, width: options.latentDim, "designed-latent")
        return try decoder.forward(codes, training: false).toArray()
    }
}
