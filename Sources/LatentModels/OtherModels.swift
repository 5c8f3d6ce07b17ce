import LatentCore
import LatentNN

extension ModelCatalog {
    /// Models beyond the VAE family: `ae` (Autoencoder), `vqvae` (VQVAE), `gan-mlp` and
    /// `dcgan` (GAN), `designed-latent` (DesignedLatent), `pca-decoder` (PCADecoder, which
    /// also conforms to `NeedsTrainingData`), `classifier` (Classifier).
    static func makeOtherModel(_ options: TrainingOptions, backend: any Backend, random: RandomSource) throws -> any GenerativeModel {
        switch options.model {
        case .ae:
            return try Autoencoder(options: options, backend: backend, random: random)
        case .vqvae:
            return try VQVAE(options: options, backend: backend, random: random)
        case .ganMLP, .dcgan:
            return try GAN(options: options, backend: backend, random: random)
        case .designedLatent:
            return try DesignedLatent(options: options, backend: backend, random: random)
        case .pcaDecoder:
            return try PCADecoder(options: options, backend: backend, random: random)
        case .classifier:
            return try Classifier(options: options, backend: backend, random: random)
        case .vaeFC, .cvae, .vaeConv, .betaVAE:
            throw LatentError.invalidArgument("model '\(options.model.rawValue)' is built by ModelCatalog.makeModel")
        }
    }
}
