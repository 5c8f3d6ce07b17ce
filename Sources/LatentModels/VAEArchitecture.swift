import LatentCore
import LatentNN

/// The layers of one VAE, named as the PyTorch module they mirror would name them, so a
/// checkpoint loads into `Benchmarks/pytorch/models.py` with `load_state_dict`.
public struct VAEArchitecture {
    public var encoder: Sequential
    public var meanHead: (name: String, layer: any Layer)
    public var parameterHead: (name: String, layer: any Layer)
    public var decoder: Sequential
    public var conditional: Bool

    static let pixels = 28 * 28
    static let classes = 10

    /// Report 003 (and 000/002 through the knobs): `Flatten`, `depth` x (Linear [BN] ReLU
    /// [Dropout]) to `hidden`, heads `mu_layer` and `logvar_layer`; the decoder mirrors it
    /// and ends in Linear, Sigmoid, Unflatten. Conditional (CVAE): the one-hot label is
    /// concatenated to the flattened image and to z, so the encoder has no Flatten.
    public static func fullyConnected(_ options: TrainingOptions, conditional: Bool, backend: any Backend,
                                      random: RandomSource) throws -> VAEArchitecture {
        let encoder = Sequential([])
        if !conditional { encoder.append(Flatten()) }
        var width = pixels + (conditional ? classes : 0)
        for _ in 0..<options.depth {
            try appendHidden(to: encoder, from: width, options: options, backend: backend, random: random)
            width = options.hidden
        }
        let decoder = Sequential([])
        width = options.latentDim + (conditional ? classes : 0)
        for _ in 0..<options.depth {
            try appendHidden(to: decoder, from: width, options: options, backend: backend, random: random)
            width = options.hidden
        }
        decoder.append(try Linear(width, pixels, on: backend, random: random))
        decoder.append(Sigmoid())
        decoder.append(try Reshape([1, 28, 28]))
        return VAEArchitecture(
            encoder: encoder,
            meanHead: ("mu_layer", try Linear(options.hidden, options.latentDim, on: backend, random: random)),
            parameterHead: ("logvar_layer", try Linear(options.hidden, options.latentDim, on: backend, random: random)),
            decoder: decoder, conditional: conditional)
    }

    static func appendHidden(to sequential: Sequential, from width: Int, options: TrainingOptions,
                             backend: any Backend, random: RandomSource) throws {
        sequential.append(try Linear(width, options.hidden, on: backend, random: random))
        if options.batchnorm { sequential.append(try BatchNorm1d(options.hidden, on: backend)) }
        sequential.append(ReLU())
        if options.dropout > 0 { sequential.append(try Dropout(options.dropout, random: random)) }
    }

    /// Report 004's conv VAE exactly: encoder Conv2d(1,64,4,2,1) BN LeakyReLU(0.2),
    /// Conv2d(64,128,4,2,1) BN LeakyReLU(0.2), Conv2d(128,128,3,1,1) BN LeakyReLU(0.2),
    /// Flatten; heads `fc_mu`, `fc_logvar` Linear(6272, Z); decoder Linear(Z, 6272),
    /// Unflatten(128, 7, 7), ConvTranspose2d(128,64,4,2,1) ReLU, ConvTranspose2d(64,1,4,2,1) Sigmoid.
    public static func convolutional(_ options: TrainingOptions, backend: any Backend, random: RandomSource) throws -> VAEArchitecture {
        let features = 128 * 7 * 7
        let encoder = Sequential([
            try Conv2d(1, 64, kernel: 4, stride: 2, padding: 1, on: backend, random: random),
            try BatchNorm2d(64, on: backend), LeakyReLU(0.2),
            try Conv2d(64, 128, kernel: 4, stride: 2, padding: 1, on: backend, random: random),
            try BatchNorm2d(128, on: backend), LeakyReLU(0.2),
            try Conv2d(128, 128, kernel: 3, stride: 1, padding: 1, on: backend, random: random),
            try BatchNorm2d(128, on: backend), LeakyReLU(0.2),
            Flatten(),
        ])
        let meanHead = try Linear(features, options.latentDim, on: backend, random: random)
        let parameterHead = try Linear(features, options.latentDim, on: backend, random: random)
        let decoder = Sequential([
            try Linear(options.latentDim, features, on: backend, random: random),
            try Reshape([128, 7, 7]),
            try ConvTranspose2d(128, 64, kernel: 4, stride: 2, padding: 1, on: backend, random: random), ReLU(),
            try ConvTranspose2d(64, 1, kernel: 4, stride: 2, padding: 1, on: backend, random: random), Sigmoid(),
        ])
        return VAEArchitecture(encoder: encoder, meanHead: ("fc_mu", meanHead), parameterHead: ("fc_logvar", parameterHead),
                               decoder: decoder, conditional: false)
    }

    /// Report 004's beta-VAE exactly: encoder Conv2d(1,8,3,2,1) ReLU, Conv2d(8,16,3,2,1) ReLU,
    /// BatchNorm2d(16), Conv2d(16,32,3,2) ReLU, Flatten, Linear(288,128) ReLU; heads `fc_mean`
    /// Linear(128, Z) and `fc_std` Linear(128, Z) + Softplus (a standard deviation); decoder
    /// Linear(Z,128) ReLU, Linear(128,288) ReLU, Unflatten(32,3,3), ConvTranspose2d(32,16,3,2)
    /// ReLU, BatchNorm2d(16), ConvTranspose2d(16,8,3,2,1,1) ReLU, ConvTranspose2d(8,1,3,2,1,1),
    /// Sigmoid. With `sharedBatchnorm` the decoder's BatchNorm2d is the encoder's object, as
    /// in the report's code (shared parameters and running statistics).
    public static func betaVAE(_ options: TrainingOptions, backend: any Backend, random: RandomSource) throws -> VAEArchitecture {
        let encoderNorm = try BatchNorm2d(16, on: backend)
        let encoder = Sequential([
            try Conv2d(1, 8, kernel: 3, stride: 2, padding: 1, on: backend, random: random), ReLU(),
            try Conv2d(8, 16, kernel: 3, stride: 2, padding: 1, on: backend, random: random), ReLU(),
            encoderNorm,
            try Conv2d(16, 32, kernel: 3, stride: 2, padding: 0, on: backend, random: random), ReLU(),
            Flatten(),
            try Linear(288, 128, on: backend, random: random), ReLU(),
        ])
        let meanHead = try Linear(128, options.latentDim, on: backend, random: random)
        let stdHead = Sequential([try Linear(128, options.latentDim, on: backend, random: random), Softplus()])
        let decoderNorm: any Layer = options.sharedBatchnorm ? BatchNorm2d(sharing: encoderNorm) : try BatchNorm2d(16, on: backend)
        let decoder = Sequential([
            try Linear(options.latentDim, 128, on: backend, random: random), ReLU(),
            try Linear(128, 288, on: backend, random: random), ReLU(),
            try Reshape([32, 3, 3]),
            try ConvTranspose2d(32, 16, kernel: 3, stride: 2, padding: 0, on: backend, random: random), ReLU(),
            decoderNorm,
            try ConvTranspose2d(16, 8, kernel: 3, stride: 2, padding: 1, outputPadding: 1, on: backend, random: random), ReLU(),
            try ConvTranspose2d(8, 1, kernel: 3, stride: 2, padding: 1, outputPadding: 1, on: backend, random: random), Sigmoid(),
        ])
        return VAEArchitecture(encoder: encoder, meanHead: ("fc_mean", meanHead), parameterHead: ("fc_std", stdHead),
                               decoder: decoder, conditional: false)
    }
}
