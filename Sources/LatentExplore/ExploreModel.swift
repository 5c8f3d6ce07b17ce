import Foundation
import LatentCore
import LatentData
import LatentModels
import LatentNN

/// A failure of an explore command the user can act on: one line, no prefix (the CLI prints
/// `error: <description>` and exits 1).
public struct ExploreError: Error, CustomStringConvertible, Sendable, Equatable {
    public let description: String

    public init(_ description: String) {
        self.description = description
    }
}

/// What a model of the zoo can do for the explore commands, by the protocols of
/// `ModelToolkit.swift`.
public enum Capability: String, CaseIterable, Sendable {
    /// `GenerativeModel.generate` makes images (all but the classifier).
    case generate
    /// `LatentDecodingModel`: decodes codes of `codeSize` floats.
    case decode
    /// `LatentEncodingModel`: a deterministic encoder to those codes.
    case encode
    /// `ReconstructingModel`: image in, image out.
    case reconstruct

    /// The models that have it, for error messages and `--help` (a test checks this
    /// table against the models' protocol conformances).
    public var models: [ModelKind] {
        switch self {
        case .generate: return ModelKind.allCases.filter { $0 != .classifier }
        case .decode: return [.ae, .vaeFC, .vaeConv, .betaVAE, .cvae, .ganMLP, .dcgan, .designedLatent, .pcaDecoder]
        case .encode: return [.ae, .vaeFC, .vaeConv, .betaVAE, .cvae, .pcaDecoder]
        case .reconstruct: return [.ae, .vaeFC, .vaeConv, .betaVAE, .cvae, .vqvae, .pcaDecoder]
        }
    }

    /// Whether `model` has this capability, by its conformances.
    public static func of(_ model: any GenerativeModel) -> Set<Capability> {
        var result: Set<Capability> = []
        if !(model is Classifier) { result.insert(.generate) }
        if model is any LatentDecodingModel { result.insert(.decode) }
        if model is any LatentEncodingModel { result.insert(.encode) }
        if model is any ReconstructingModel { result.insert(.reconstruct) }
        return result
    }

    var phrase: String {
        switch self {
        case .generate: return "a model that generates images"
        case .decode: return "a model that decodes latent codes"
        case .encode: return "a model with an encoder"
        case .reconstruct: return "a model that reconstructs images"
        }
    }
}

/// A model rebuilt from its checkpoint: `Checkpoint.info` gives the options,
/// `ModelCatalog.makeModel` builds the model on the chosen backend, `Checkpoint.load` fills it.
public struct LoadedModel {
    public let model: any GenerativeModel
    public let info: Checkpoint.Info
    /// The checkpoint's path, for messages.
    public let source: String

    public var options: TrainingOptions { info.options }

    public init(model: any GenerativeModel, info: Checkpoint.Info, source: String) {
        self.model = model
        self.info = info
        self.source = source
    }

    /// Loads `path`. A missing file is one clear line, not a stack of errors.
    public static func load(_ path: String, backend: any Backend) throws -> LoadedModel {
        let url = URL(fileURLWithPath: path)
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: url.path, isDirectory: &isDirectory) else {
            throw ExploreError("there is no checkpoint at \(path)")
        }
        // A run folder stands for its checkpoint.
        let file = isDirectory.boolValue ? url.appendingPathComponent("checkpoint.safetensors") : url
        guard FileManager.default.fileExists(atPath: file.path) else {
            throw ExploreError("the folder \(path) holds no checkpoint.safetensors")
        }
        let (info, entries) = try Checkpoint.info(at: file)
        let model = try ModelCatalog.makeModel(info.options, backend: backend, random: RandomSource(info.random))
        try Checkpoint.load(entries, info: info, into: model, source: file.path)
        return LoadedModel(model: model, info: info, source: file.path)
    }

    /// Throws unless the model has `capability`, naming the models that do.
    public func require(_ capability: Capability, for command: String) throws {
        guard Capability.of(model).contains(capability) else {
            throw ExploreError("latent \(command) needs \(capability.phrase) (\(capability.models.map(\.rawValue).joined(separator: ", "))); "
                               + "\(source) is a '\(options.model.rawValue)' checkpoint")
        }
    }

    public func decoder(for command: String) throws -> any LatentDecodingModel {
        try require(.decode, for: command)
        guard let decoder = model as? any LatentDecodingModel else { throw ExploreError("internal: no decoder") }
        return decoder
    }

    public func encoder(for command: String) throws -> any LatentEncodingModel {
        try require(.encode, for: command)
        guard let encoder = model as? any LatentEncodingModel else { throw ExploreError("internal: no encoder") }
        return encoder
    }

    public func reconstructor(for command: String) throws -> any ReconstructingModel {
        try require(.reconstruct, for: command)
        guard let model = model as? any ReconstructingModel else { throw ExploreError("internal: no reconstruction") }
        return model
    }

    /// A decoder whose code has exactly `dimensions` floats (sweep: 1, manifold: 2).
    public func decoder(for command: String, dimensions: Int) throws -> any LatentDecodingModel {
        let decoder = try decoder(for: command)
        guard decoder.codeSize == dimensions else {
            let what = dimensions == 1 ? "a 1-D latent space" : "a \(dimensions)-D latent space"
            throw ExploreError("latent \(command) draws \(what); \(source) is a '\(options.model.rawValue)' model with a "
                               + "\(decoder.codeSize)-dimensional code (train one with --latent-dim \(dimensions))")
        }
        return decoder
    }
}
