import LatentCore
import LatentData
import LatentNN

/// The VAE family of the reports: one Gaussian encoder (a body and two heads), one
/// decoder with a sigmoid output, the reparameterisation, a summed reconstruction loss
/// and `beta * KL`, averaged over the batch as PyTorch's examples do. `vae-fc`, `cvae`,
/// `vae-conv` and `beta-vae` differ only in the layers `VAEArchitecture` builds.
public final class GaussianVAE: GenerativeModel {
    public let options: TrainingOptions
    public let backend: any Backend
    public let random: RandomSource
    public let root: ModuleGroup
    public private(set) var optimizers: [(name: String, optimizer: Optimizer)] = []
    public let pixelRange = PixelRange.zeroToOne
    public let lossTermNames = ["loss", "recon", "kl"]

    /// (N, 1, 28, 28) or, when conditional, (N, 784 + 10) -> (N, H)
    let encoder: Sequential
    /// (N, H) -> (N, Z)
    let meanHead: any Layer
    /// (N, H) -> (N, Z), the log-variance, log-std or std per `options.parameterization`
    let parameterHead: any Layer
    /// (N, Z) or, when conditional, (N, Z + 10) -> (N, 1, 28, 28) in (0, 1)
    let decoder: Sequential
    let conditional: Bool
    let classes = 10

    let reparameterize: Reparameterize
    let kl: GaussianKL
    let reconstruction: ElementwiseLoss
    let encoderConcat = Concat()
    let decoderConcat = Concat()
    var oneHot: Tensor?
    let total: Tensor
    /// The decoder's own output shape (flat for FC decoders), which its backward expects.
    var decoderOutputShape: [Int] = []

    public init(options: TrainingOptions, architecture: VAEArchitecture, backend: any Backend, random: RandomSource) throws {
        self.options = options
        self.backend = backend
        self.random = random
        encoder = architecture.encoder
        meanHead = architecture.meanHead.layer
        parameterHead = architecture.parameterHead.layer
        decoder = architecture.decoder
        conditional = architecture.conditional
        root = ModuleGroup([("encoder", encoder), (architecture.meanHead.name, meanHead),
                            (architecture.parameterHead.name, parameterHead), ("decoder", decoder)])
        reparameterize = Reparameterize(options.gaussianParameterization, random: random)
        kl = GaussianKL(options.gaussianParameterization)
        reconstruction = ElementwiseLoss(options.lossKind, reduction: .sum)
        total = try Tensor(zeros: [1], on: backend)
        optimizers = [("optimizer", try ModelSupport.makeOptimizer(options, parameters: root.namedParameters()))]
    }

    struct Pass {
        var mean: Tensor
        var parameter: Tensor
        var reconstruction: Tensor
    }

    // images (N, 1, 28, 28) -> mean, parameter (N, Z), reconstruction (N, 1, 28, 28)
    func forward(_ images: Tensor, labels: [UInt8], training: Bool) throws -> Pass {
        let batch = images.shape[0]
        var encoderInput = images
        var labelRows: Tensor?
        if conditional {
            let rows = try ModelSupport.oneHot(labels, classes: classes, into: &oneHot, backend: backend)
            labelRows = rows
            encoderInput = try encoderConcat.forward([try images.reshaped([batch, images.count / batch]), rows])
        }
        let hidden = try encoder.forward(encoderInput, training: training)
        let mean = try meanHead.forward(hidden, training: training)
        let parameter = try parameterHead.forward(hidden, training: training)
        let z = try reparameterize.forward(mean: mean, parameter: parameter)
        let decoderInput = try labelRows.map { try decoderConcat.forward([z, $0]) } ?? z
        let output = try decoder.forward(decoderInput, training: training)
        decoderOutputShape = output.shape
        return Pass(mean: mean, parameter: parameter, reconstruction: try output.reshaped(images.shape))
    }

    /// Loss terms (sums over the batch) of a forward pass: `recon + beta * KL`, recon, KL.
    func losses(_ pass: Pass, target: Tensor) throws -> [Tensor] {
        let recon = try reconstruction.forward(pass.reconstruction, target: target)
        let divergence = try kl.forward(mean: pass.mean, parameter: pass.parameter)
        try ModelSupport.combine(recon, plus: options.kl ? options.beta : 0, times: divergence, into: total)
        return [total, recon, divergence]
    }

    public func trainStep(images: Tensor, labels: [UInt8]) throws -> [Tensor] {
        let batch = images.shape[0]
        for (_, optimizer) in optimizers { try optimizer.zeroGradients() }
        let pass = try forward(images, labels: labels, training: true)
        let terms = try losses(pass, target: images)
        // Everything is averaged over the batch: d(loss / N).
        let scale = 1 / Float(batch)
        let gradReconstruction = try reconstruction.backward(scale: scale)
        let gradDecoderInput = try decoder.backward(try gradReconstruction.reshaped(decoderOutputShape))
        let gradZ = conditional ? try decoderConcat.backward(gradDecoderInput)[0] : gradDecoderInput
        let (gradMean, gradParameter) = try reparameterize.backward(gradZ)
        let klWeight = klGradientWeight
        if options.kl && klWeight != 0 {
            try kl.backward(scale: klWeight * scale, accumulatingInto: gradMean, gradParameter)
        }
        let gradHidden = try meanHead.backward(gradMean)
        try accumulate(try parameterHead.backward(gradParameter), into: gradHidden)
        try encoder.backwardParameters(gradHidden)           // the images need no gradient
        for (_, optimizer) in optimizers { try optimizer.step() }
        return terms
    }

    /// The KL term's weight in this step's gradient: `beta`, or during `--kl-warmup-steps`
    /// beta x (steps taken + 1) / warm-up. The step count is the optimizer's, which the
    /// checkpoint keeps, so a resumed run continues the same ramp.
    var klGradientWeight: Float {
        guard let warmup = options.klWarmupSteps, warmup > 0 else { return options.beta }
        let taken = optimizers.first?.optimizer.steps.max() ?? 0
        return options.beta * min(1, Float(taken + 1) / Float(warmup))
    }

    public func evaluate(images: Tensor, labels: [UInt8]) throws -> [Tensor] {
        try losses(try forward(images, labels: labels, training: false), target: images)
    }

    public func generate(count: Int, seed: UInt64) throws -> [Float] {
        let noise = try Tensor(zeros: [count, options.latentDim], on: backend)
        try RandomSource(seed: seed).fillNormal(noise)
        var input = noise
        if conditional {
            let labels = (0..<count).map { UInt8($0 % classes) }
            input = try Concat().forward([noise, try ModelSupport.oneHot(labels, classes: classes, into: &oneHot, backend: backend)])
        }
        return try decoder.forward(input, training: false).toArray()
    }

    /// Decodes latent codes (count, Z) (with labels for a conditional model) to images in [0, 1].
    public func decode(_ codes: Tensor, labels: [UInt8]? = nil) throws -> [Float] {
        var input = codes
        if conditional {
            let rows = labels ?? (0..<codes.shape[0]).map { UInt8($0 % classes) }
            input = try Concat().forward([codes, try ModelSupport.oneHot(rows, classes: classes, into: &oneHot, backend: backend)])
        }
        return try decoder.forward(input, training: false).toArray()
    }

    /// Encoder means (N, Z) of images, in eval mode.
    public func encodeMeans(_ images: Tensor, labels: [UInt8]) throws -> [Float] {
        try meanHead.forward(try encoderHidden(images, labels: labels), training: false).toArray()
    }

    /// The encoder's last hidden layer in eval mode (the cvae's one-hot label appended to
    /// the flattened image first), which both Gaussian heads read.
    func encoderHidden(_ images: Tensor, labels: [UInt8]) throws -> Tensor {
        let batch = images.shape[0]
        var encoderInput = images
        if conditional {
            let rows = try ModelSupport.oneHot(labels, classes: classes, into: &oneHot, backend: backend)
            encoderInput = try Concat().forward([try images.reshaped([batch, images.count / batch]), rows])
        }
        return try encoder.forward(encoderInput, training: false)
    }
}

