import LatentCore
import LatentNN

/// What `latent models` prints and where `latent train` gets its defaults: each model's
/// report, architecture in one line and the report's hyperparameters.
public struct ModelDescriptor: Sendable {
    public var kind: ModelKind
    public var report: String
    public var summary: String
    public var defaults: TrainingOptions
}

public enum ModelCatalog {
    public static func descriptor(_ kind: ModelKind) -> ModelDescriptor {
        var options = TrainingOptions(model: kind)
        switch kind {
        case .vaeFC:
            options.epochs = 10; options.batchSize = 128; options.latentDim = 15; options.hidden = 400; options.depth = 3
            return ModelDescriptor(kind: kind, report: "003 (000, 002 through --hidden --depth --latent-dim --batchnorm --dropout)",
                                   summary: "FC VAE: Flatten, 3 x (Linear ReLU) to 400, mu/logvar heads to 15; mirrored decoder, sigmoid; BCE(sum) + KL, Adam 1e-3",
                                   defaults: options)
        case .cvae:
            options.epochs = 10; options.batchSize = 128; options.latentDim = 15; options.hidden = 400; options.depth = 3
            return ModelDescriptor(kind: kind, report: "003",
                                   summary: "conditional FC VAE: one-hot label concatenated to the image and to z",
                                   defaults: options)
        case .vaeConv:
            options.epochs = 250; options.batchSize = 64; options.latentDim = 32
            return ModelDescriptor(kind: kind, report: "004",
                                   summary: "conv VAE: 3 conv+BN+LeakyReLU(0.2) to 128x7x7, Linear heads to 32; Linear + 2 transposed convs, sigmoid; BCE(sum) + KL",
                                   defaults: options)
        case .betaVAE:
            // The report's code: batch 64, beta 2, 15 epochs (its "lower bound" is recon + 2 KL).
            options.epochs = 15; options.batchSize = 64; options.latentDim = 10; options.beta = 2
            options.parameterization = GaussianParameterization.std.rawValue
            return ModelDescriptor(kind: kind, report: "004",
                                   summary: "beta-VAE: 3 small convs + Linear(288,128), softplus std head, z 10, beta 2 as the report's code (--beta 1..4; --shared-batchnorm for the report's quirk)",
                                   defaults: options)
        case .ae:
            options.epochs = 5; options.batchSize = 128; options.latentDim = 10; options.hidden = 400; options.depth = 2
            return ModelDescriptor(kind: kind, report: "001",
                                   summary: "FC autoencoder: Flatten, 2 x (Linear ReLU) to 400, Linear to code 10; mirrored decoder, sigmoid; BCE(sum), Adam 1e-3",
                                   defaults: options)
        case .vqvae:
            options.epochs = 5; options.batchSize = 128; options.latentDim = 16; options.codebookSize = 512; options.codebookDim = 16; options.commitment = 0.25
            return ModelDescriptor(kind: kind, report: "001",
                                   summary: "VQ-VAE: conv encoder to 16x7x7, each 16-vector snapped to the nearest of 512 codebook entries, straight-through; decoder conv + 2 transposed convs, sigmoid; BCE(sum) + codebook + 0.25 commitment (sums); samples from the per-position code usage",
                                   defaults: options)
        case .ganMLP:
            options.epochs = 200; options.batchSize = 64; options.latentDim = 100; options.beta1 = 0.5
            return ModelDescriptor(kind: kind, report: "004",
                                   summary: "MLP GAN: G 100-128-256-512-1024-784 (BN, LeakyReLU, tanh), D 784-512-256-1 (LeakyReLU, sigmoid); BCE, Adam 1e-3 (0.5, 0.999), [-1, 1]",
                                   defaults: options)
        case .dcgan:
            options.epochs = 20; options.batchSize = 64; options.latentDim = 100; options.learningRate = 2e-4; options.beta1 = 0.5
            return ModelDescriptor(kind: kind, report: "004 (the convolutional GAN the reports point towards)",
                                   summary: "DCGAN for 28x28: G Linear(100,6272) BN ReLU, 2 transposed convs (BN ReLU, tanh); D 2 convs (LeakyReLU 0.2, BN), Linear(6272,1) sigmoid; DCGAN init; BCE, Adam 2e-4 (0.5, 0.999), [-1, 1]",
                                   defaults: options)
        case .designedLatent:
            options.epochs = 5; options.batchSize = 128; options.latentDim = 10; options.hidden = 400; options.depth = 2
            return ModelDescriptor(kind: kind, report: "001 (new try 1)",
                                   summary: "decoder only: a digit of class k is decoded from [k, ..., k] (10 copies) + N(0, 1) noise, 2 x (Linear ReLU) to 400, sigmoid; BCE(sum)",
                                   defaults: options)
        case .pcaDecoder:
            options.epochs = 5; options.batchSize = 128; options.latentDim = 3; options.hidden = 400; options.depth = 2
            return ModelDescriptor(kind: kind, report: "001 (new try 2)",
                                   summary: "PCA of the training images (computed by Latent) as the fixed encoder to 3 dims; FC decoder 2 x (Linear ReLU) to 400, sigmoid; BCE(sum)",
                                   defaults: options)
        case .classifier:
            options.epochs = 10; options.batchSize = 64; options.dropout = 0.25
            return ModelDescriptor(kind: kind, report: "evaluation (issue: classifier-based sample quality)",
                                   summary: "LeNet-style MNIST classifier used to judge samples: 4 convs (3x3, two with stride 2) + ReLU, Linear(3136,128) ReLU, Dropout 0.25, Linear(128,10); softmax cross-entropy",
                                   defaults: options)
        }
    }

    /// Builds a model with fresh weights drawn from `random`.
    public static func makeModel(_ options: TrainingOptions, backend: any Backend, random: RandomSource) throws -> any GenerativeModel {
        try options.validate()
        switch options.model {
        case .vaeFC:
            return try GaussianVAE(options: options, architecture: try .fullyConnected(options, conditional: false, backend: backend, random: random),
                                   backend: backend, random: random)
        case .cvae:
            return try GaussianVAE(options: options, architecture: try .fullyConnected(options, conditional: true, backend: backend, random: random),
                                   backend: backend, random: random)
        case .vaeConv:
            return try GaussianVAE(options: options, architecture: try .convolutional(options, backend: backend, random: random),
                                   backend: backend, random: random)
        case .betaVAE:
            return try GaussianVAE(options: options, architecture: try .betaVAE(options, backend: backend, random: random),
                                   backend: backend, random: random)
        case .ae, .vqvae, .ganMLP, .dcgan, .designedLatent, .pcaDecoder, .classifier:
            return try makeOtherModel(options, backend: backend, random: random)
        }
    }
}
