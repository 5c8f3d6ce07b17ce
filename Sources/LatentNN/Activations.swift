import LatentCore

/// The caches of one pointwise nonlinearity; the public layers below are thin names for
/// it so that a model reads like its PyTorch original.
struct ActivationCore {
    let activation: Activation
    private var input: Tensor?
    private var output = TensorSlot()
    private var gradInput = TensorSlot()

    init(_ activation: Activation) {
        self.activation = activation
    }

    // (N, ...) -> (N, ...)
    mutating func forward(_ input: Tensor) throws -> Tensor {
        let backend = input.backend
        let output = try output.tensor(input.shape, on: backend)
        self.input = input
        guard input.count > 0 else { return output }
        try backend.biasActivationForward(input: input.view, bias: nil, activation: activation, output: output.view,
                                          channels: 1, spatial: input.count)
        return output
    }

    // (N, ...) -> (N, ...): gradInput = gradOutput * f'(input)
    mutating func backward(_ gradOutput: Tensor) throws -> Tensor {
        guard let input else { throw missingForward(activation.description) }
        try Shape.expect(gradOutput.shape, equals: input.shape, "\(activation) gradOutput")
        let backend = input.backend
        try checkSameBackend(gradOutput, backend, activation.description)
        let output = try output.tensor(input.shape, on: backend)
        let gradInput = try gradInput.tensor(input.shape, on: backend)
        try backend.activationBackward(activation, input: input.view, output: output.view,
                                       gradOutput: gradOutput.view, gradInput: gradInput.view, accumulate: false)
        return gradInput
    }
}

/// Any pointwise nonlinearity of `Activation`, for code that picks one at run time.
public final class ActivationLayer: Layer {
    private var core: ActivationCore
    public var activation: Activation { core.activation }
    public init(_ activation: Activation) { core = ActivationCore(activation) }
    public func forward(_ input: Tensor, training: Bool) throws -> Tensor { try core.forward(input) }
    public func backward(_ gradOutput: Tensor) throws -> Tensor { try core.backward(gradOutput) }
}

/// `max(x, 0)`.
public final class ReLU: Layer {
    private var core = ActivationCore(.relu)
    public init() {}
    public func forward(_ input: Tensor, training: Bool) throws -> Tensor { try core.forward(input) }
    public func backward(_ gradOutput: Tensor) throws -> Tensor { try core.backward(gradOutput) }
}

/// `x` for x > 0, `slope * x` otherwise (PyTorch's default slope is 0.01).
public final class LeakyReLU: Layer {
    private var core: ActivationCore
    public let slope: Float
    public init(_ slope: Float = 0.01) {
        self.slope = slope
        core = ActivationCore(.leakyReLU(slope: slope))
    }
    public func forward(_ input: Tensor, training: Bool) throws -> Tensor { try core.forward(input) }
    public func backward(_ gradOutput: Tensor) throws -> Tensor { try core.backward(gradOutput) }
}

/// `1 / (1 + exp(-x))`.
public final class Sigmoid: Layer {
    private var core = ActivationCore(.sigmoid)
    public init() {}
    public func forward(_ input: Tensor, training: Bool) throws -> Tensor { try core.forward(input) }
    public func backward(_ gradOutput: Tensor) throws -> Tensor { try core.backward(gradOutput) }
}

/// `tanh(x)`.
public final class Tanh: Layer {
    private var core = ActivationCore(.tanh)
    public init() {}
    public func forward(_ input: Tensor, training: Bool) throws -> Tensor { try core.forward(input) }
    public func backward(_ gradOutput: Tensor) throws -> Tensor { try core.backward(gradOutput) }
}

/// `log(1 + exp(x))` (PyTorch's beta 1, threshold 20).
public final class Softplus: Layer {
    private var core = ActivationCore(.softplus)
    public init() {}
    public func forward(_ input: Tensor, training: Bool) throws -> Tensor { try core.forward(input) }
    public func backward(_ gradOutput: Tensor) throws -> Tensor { try core.backward(gradOutput) }
}
