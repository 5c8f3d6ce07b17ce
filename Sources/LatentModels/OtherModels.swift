import LatentCore
import LatentNN

extension ModelCatalog {
    /// Models beyond the VAE family; each case is filled in as the model is written.
    static func makeOtherModel(_ options: TrainingOptions, backend: any Backend, random: RandomSource) throws -> any GenerativeModel {
        throw LatentError.invalidArgument("model '\(options.model.rawValue)' is not implemented yet")
    }
}
