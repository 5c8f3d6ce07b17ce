import LatentCore
import LatentNN

/// Every knob of REPORTS.md's closing list, as one value that is written to a run's
/// `config.json` and read back on `--resume`. Defaults come from `ModelCatalog` (the
/// reports' values); the CLI overrides what the user passes.
public struct TrainingOptions: Codable, Sendable, Equatable {
    public var model: ModelKind
    public var dataset: String = "mnist"
    public var epochs: Int = 10
    public var batchSize: Int = 128
    public var optimizer: String = OptimizerName.adam.rawValue
    public var learningRate: Float = 1e-3
    /// nil keeps the optimizer's PyTorch default (AdamW: 1e-2, others 0).
    public var weightDecay: Float?
    /// Adam's betas; report 004's GAN uses (0.5, 0.999).
    public var beta1: Float = 0.9
    public var beta2: Float = 0.999
    public var latentDim: Int = 15
    /// Width of the fully connected hidden layers.
    public var hidden: Int = 400
    /// Number of hidden Linear + ReLU layers in a fully connected encoder (and decoder).
    public var depth: Int = 3
    public var batchnorm: Bool = false
    public var dropout: Float = 0
    /// Reconstruction loss: bce, mse or l1 (sum over pixels).
    public var loss: String = LossKind.bce.rawValue
    /// Weight of the KL term (beta-VAE); 1 is a plain VAE.
    public var beta: Float = 1
    /// false trains on reconstruction alone (report 002 and 004 "without KL").
    public var kl: Bool = true
    /// KL warm-up (Sønderby et al. 2016): the KL term's weight in the gradient rises linearly
    /// from 0 to `beta` over this many optimizer steps, so that latent units become active
    /// before the KL term can switch them off. nil or 0: no warm-up. Reported losses always
    /// carry the full weight. Optional so that configurations written before it still load.
    public var klWarmupSteps: Int?
    /// What a VAE's second head predicts: logvar, logstd or std.
    public var parameterization: String = GaussianParameterization.logVariance.rawValue
    /// Salt-and-pepper noise on this fraction of training pixels (report 004).
    public var noise: Double = 0
    /// Dynamic binarisation of the inputs (likelihoods in nats).
    public var binarize: Bool = false
    /// Use only the first N training images (and N / 6 test images) for quick runs.
    public var limit: Int?
    public var seed: UInt64 = 0
    /// VQ-VAE codebook.
    public var codebookSize: Int = 512
    public var codebookDim: Int = 16
    public var commitment: Float = 0.25
    /// Report 004's beta-VAE quirk: one BatchNorm2d object used in encoder and decoder.
    public var sharedBatchnorm: Bool = false
    /// Report 004's GAN quirk: both optimizers zeroed once per batch, so the generator's
    /// loss leaves gradients in the discriminator before the discriminator's step.
    public var ganSharedZeroGrad: Bool = false

    public init(model: ModelKind) {
        self.model = model
    }

    public var lossKind: LossKind { LossKind(rawValue: loss) ?? .bce }
    public var gaussianParameterization: GaussianParameterization {
        GaussianParameterization(rawValue: parameterization) ?? .logVariance
    }
    public var optimizerName: OptimizerName { OptimizerName(rawValue: optimizer) ?? .adam }

    /// Refuses values that cannot train, with the option's name in the message.
    public func validate() throws {
        func check(_ condition: Bool, _ message: String) throws {
            if !condition { throw LatentError.invalidArgument(message) }
        }
        try check(epochs >= 1 && epochs <= 100_000, "--epochs must be between 1 and 100000, got \(epochs)")
        try check(batchSize >= 1 && batchSize <= 65_536, "--batch-size must be between 1 and 65536, got \(batchSize)")
        try check(learningRate.isFinite && learningRate > 0, "--lr must be a positive number, got \(learningRate)")
        try check(latentDim >= 1 && latentDim <= 4096, "--latent-dim must be between 1 and 4096, got \(latentDim)")
        try check(hidden >= 1 && hidden <= 65_536, "--hidden must be between 1 and 65536, got \(hidden)")
        try check(depth >= 1 && depth <= 64, "--depth must be between 1 and 64, got \(depth)")
        try check(dropout >= 0 && dropout < 1, "--dropout must be in [0, 1), got \(dropout)")
        try check(beta.isFinite && beta >= 0, "--beta must be >= 0, got \(beta)")
        try check((klWarmupSteps ?? 0) >= 0 && (klWarmupSteps ?? 0) <= 100_000_000, "--kl-warmup-steps must be 0...100000000, got \(klWarmupSteps ?? 0)")
        try check(noise >= 0 && noise <= 1, "--noise must be a fraction in [0, 1], got \(noise)")
        try check(LossKind(rawValue: loss).map { $0 != .bceWithLogits } ?? false, "--loss must be bce, mse or l1, got \(loss)")
        try check(GaussianParameterization(rawValue: parameterization) != nil, "--parameterization must be logvar, logstd or std, got \(parameterization)")
        try check(OptimizerName(rawValue: optimizer) != nil, "--optimizer must be one of \(OptimizerName.allCases.map(\.rawValue).joined(separator: ", ")), got \(optimizer)")
        try check(limit.map { $0 >= 1 } ?? true, "--limit must be at least 1")
        try check(codebookSize >= 1 && codebookSize <= 65_536 && codebookDim >= 1 && codebookDim <= 4096, "codebook size and dimension must be positive")
        try check(beta1 >= 0 && beta1 < 1 && beta2 >= 0 && beta2 < 1, "Adam betas must be in [0, 1)")
    }
}
