import LatentCore

/// A loss comparing a prediction with a target elementwise (`nn.BCELoss`,
/// `nn.BCEWithLogitsLoss`, `nn.MSELoss`, `nn.L1Loss`). The value stays on the device as a
/// one-element tensor so that a training step reads nothing back; read it with
/// `scalar()` when it is shown.
public final class ElementwiseLoss {
    public let kind: LossKind
    public let reduction: Reduction
    private var prediction: Tensor?
    private var target: Tensor?
    private var value = TensorSlot()
    private var gradPrediction = TensorSlot()

    public init(_ kind: LossKind, reduction: Reduction = .mean) {
        self.kind = kind
        self.reduction = reduction
    }

    public static func bce(_ reduction: Reduction = .mean) -> ElementwiseLoss { ElementwiseLoss(.bce, reduction: reduction) }
    public static func bceWithLogits(_ reduction: Reduction = .mean) -> ElementwiseLoss { ElementwiseLoss(.bceWithLogits, reduction: reduction) }
    public static func mse(_ reduction: Reduction = .mean) -> ElementwiseLoss { ElementwiseLoss(.mse, reduction: reduction) }
    public static func l1(_ reduction: Reduction = .mean) -> ElementwiseLoss { ElementwiseLoss(.l1, reduction: reduction) }

    private var name: String { "\(kind.rawValue) loss (\(reduction.rawValue))" }

    // prediction (N, ...), target (N, ...) -> (1)
    public func forward(_ prediction: Tensor, target: Tensor) throws -> Tensor {
        try Shape.expect(target.shape, equals: prediction.shape, "\(name) target")
        let backend = prediction.backend
        try checkSameBackend(target, backend, "\(name) target")
        guard prediction.count > 0 else { throw LatentError.shape("\(name) of an empty tensor") }
        let value = try value.tensor([1], on: backend)
        try backend.lossForward(kind, prediction: prediction.view, target: target.view, output: value.view,
                                reduction: reduction)
        self.prediction = prediction
        self.target = target
        return value
    }

    /// The gradient of `scale * loss` with respect to the prediction (its shape); a VAE
    /// averaging its summed loss over the batch passes `1 / N`.
    public func backward(scale: Float = 1) throws -> Tensor {
        guard let prediction, let target else { throw missingForward(name) }
        let backend = prediction.backend
        let gradPrediction = try gradPrediction.tensor(prediction.shape, on: backend)
        try backend.lossBackward(kind, prediction: prediction.view, target: target.view,
                                 gradPrediction: gradPrediction.view, reduction: reduction,
                                 scale: scale, accumulate: false)
        return gradPrediction
    }
}

/// `sum KL(N(mean, std^2) || N(0, I))` over every element, the VAE's prior term; the caller
/// divides by the batch (via `scale`) where the report averages.
public final class GaussianKL {
    public let parameterization: GaussianParameterization
    private var mean: Tensor?
    private var parameter: Tensor?
    private var value = TensorSlot()
    private var gradMean = TensorSlot()
    private var gradParameter = TensorSlot()

    public init(_ parameterization: GaussianParameterization) {
        self.parameterization = parameterization
    }

    // mean (N, Z), parameter (N, Z) -> (1)
    public func forward(mean: Tensor, parameter: Tensor) throws -> Tensor {
        try Shape.expect(parameter.shape, equals: mean.shape, "KL \(parameterization.rawValue) head")
        let backend = mean.backend
        try checkSameBackend(parameter, backend, "KL \(parameterization.rawValue) head")
        let value = try value.tensor([1], on: backend)
        try backend.klDivergence(mean: mean.view, parameter: parameter.view, parameterization: parameterization,
                                 output: value.view)
        self.mean = mean
        self.parameter = parameter
        return value
    }

    /// Gradients of `scale * KL` for both heads, each (N, Z), in buffers of this object.
    public func backward(scale: Float = 1) throws -> (mean: Tensor, parameter: Tensor) {
        guard let mean else { throw missingForward("KL") }
        let gradMean = try gradMean.tensor(mean.shape, on: mean.backend)
        let gradParameter = try gradParameter.tensor(mean.shape, on: mean.backend)
        try backward(scale: scale, gradMean: gradMean, gradParameter: gradParameter, accumulate: false)
        return (gradMean, gradParameter)
    }

    /// Adds the gradients of `scale * KL` into existing tensors, typically the ones the
    /// reparameterisation's backward returned, so the heads receive one summed gradient.
    public func backward(scale: Float = 1, accumulatingInto gradMean: Tensor, _ gradParameter: Tensor) throws {
        try backward(scale: scale, gradMean: gradMean, gradParameter: gradParameter, accumulate: true)
    }

    private func backward(scale: Float, gradMean: Tensor, gradParameter: Tensor, accumulate: Bool) throws {
        guard let mean, let parameter else { throw missingForward("KL") }
        try Shape.expect(gradMean.shape, equals: mean.shape, "KL mean gradient")
        try Shape.expect(gradParameter.shape, equals: mean.shape, "KL parameter gradient")
        try mean.backend.klDivergenceBackward(mean: mean.view, parameter: parameter.view,
                                              parameterization: parameterization, scale: scale,
                                              gradMean: gradMean.view, gradParameter: gradParameter.view,
                                              accumulate: accumulate)
    }
}

/// The reparameterisation trick `z = mean + std(parameter) * eps`, eps ~ N(0, I) drawn
/// from the model's Philox stream; backward sends the gradient of z to both heads.
public final class Reparameterize {
    public let parameterization: GaussianParameterization
    public let random: RandomSource
    private var parameter: Tensor?
    private var noise = TensorSlot()
    private var output = TensorSlot()
    private var gradMean = TensorSlot()
    private var gradParameter = TensorSlot()

    public init(_ parameterization: GaussianParameterization, random: RandomSource) {
        self.parameterization = parameterization
        self.random = random
    }

    /// The noise of the last forward pass, (N, Z).
    public var lastNoise: Tensor? {
        guard let parameter else { return nil }
        return try? noise.tensor(parameter.shape, on: parameter.backend)
    }

    // mean (N, Z), parameter (N, Z) -> z (N, Z)
    public func forward(mean: Tensor, parameter: Tensor) throws -> Tensor {
        try Shape.expect(parameter.shape, equals: mean.shape, "reparameterisation \(parameterization.rawValue) head")
        let backend = mean.backend
        try checkSameBackend(parameter, backend, "reparameterisation \(parameterization.rawValue) head")
        let noise = try noise.tensor(mean.shape, on: backend)
        let output = try output.tensor(mean.shape, on: backend)
        try random.fillNormal(noise)
        try backend.reparameterize(mean: mean.view, parameter: parameter.view, noise: noise.view, output: output.view,
                                   parameterization: parameterization)
        self.parameter = parameter
        return output
    }

    // gradOutput (N, Z) -> (gradMean (N, Z), gradParameter (N, Z))
    public func backward(_ gradOutput: Tensor) throws -> (mean: Tensor, parameter: Tensor) {
        guard let parameter else { throw missingForward("reparameterisation") }
        try Shape.expect(gradOutput.shape, equals: parameter.shape, "reparameterisation gradOutput")
        let backend = parameter.backend
        try checkSameBackend(gradOutput, backend, "reparameterisation gradOutput")
        let noise = try noise.tensor(parameter.shape, on: backend)
        let gradMean = try gradMean.tensor(parameter.shape, on: backend)
        let gradParameter = try gradParameter.tensor(parameter.shape, on: backend)
        try backend.reparameterizeBackward(parameter: parameter.view, noise: noise.view, gradOutput: gradOutput.view,
                                           gradMean: gradMean.view, gradParameter: gradParameter.view,
                                           parameterization: parameterization, accumulate: false)
        return (gradMean, gradParameter)
    }
}
