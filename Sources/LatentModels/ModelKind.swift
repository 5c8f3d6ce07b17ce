import LatentCore

/// The model zoo. Names are CLI.md's; each model's report, architecture and defaults are
/// in `ModelCatalog`.
public enum ModelKind: String, CaseIterable, Sendable, Codable {
    case ae
    case vaeFC = "vae-fc"
    case vaeConv = "vae-conv"
    case betaVAE = "beta-vae"
    case cvae
    case vqvae
    case ganMLP = "gan-mlp"
    case dcgan
    case designedLatent = "designed-latent"
    case pcaDecoder = "pca-decoder"
    case classifier
}
