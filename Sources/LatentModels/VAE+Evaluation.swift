import Foundation
import LatentCore
import LatentNN

/// What likelihood evaluation (`latent eval`) needs from a VAE beyond training: the
/// encoder's Gaussian q(z|x) as means and standard deviations, and the decoder's Bernoulli
/// logits, so log p(x|z) = x . l - sum softplus(l) is exact, without the clamped log of BCE.
extension GaussianVAE {
    /// Whether the one-hot label is fed to the encoder and decoder (cvae): the bounds are then
    /// on log p(x | y).
    public var isConditional: Bool { conditional }

    /// q(z|x) in eval mode for images (N, 1, 28, 28): means and standard deviations, N x Z
    /// floats each, row-major.
    public func posterior(_ images: Tensor, labels: [UInt8]) throws -> (mean: [Float], std: [Float]) {
        let hidden = try encoderHidden(images, labels: labels)
        let mean = try meanHead.forward(hidden, training: false).toArray()
        let parameter = try parameterHead.forward(hidden, training: false).toArray()
        let std: [Float]
        switch options.gaussianParameterization {
        case .logVariance: std = parameter.map { Foundation.exp(0.5 * $0) }
        case .logStd: std = parameter.map { Foundation.exp($0) }
        case .std: std = parameter
        }
        return (mean, std)
    }

    /// Bernoulli logits (N, 784) of codes (N, Z): the decoder up to, not including, its last
    /// Sigmoid. `labels` (one per row) are for the conditional model.
    public func decodeLogits(_ codes: Tensor, labels: [UInt8]?) throws -> Tensor {
        try ModelSupport.checkCodes(codes, width: options.latentDim, options.model.rawValue)
        guard let sigmoid = decoder.layers.lastIndex(where: { $0 is Sigmoid }) else {
            throw LatentError.invalidArgument("\(options.model.rawValue): the decoder has no sigmoid output")
        }
        var x = codes
        if conditional {
            let rows = labels ?? (0..<codes.shape[0]).map { UInt8($0 % classes) }
            x = try Concat().forward([codes, try ModelSupport.oneHot(rows, classes: classes, into: &oneHot, backend: backend)])
        }
        for layer in decoder.layers[..<sigmoid] { x = try layer.forward(x, training: false) }
        return try x.reshaped([codes.shape[0], x.count / codes.shape[0]])
    }
}
