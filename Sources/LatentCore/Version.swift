/// Latent's version, printed by `latent --version` and recorded in every run's config.
public enum LatentVersion {
    public static let string = "0.1.0"
}
