/// Option types shared by every backend's ops. Each case names the maths exactly, so a
/// CPU reference and an OpenCL kernel can be checked against each other.

/// Whether GEMM reads a matrix as stored (row-major) or transposed.
public enum Transpose: Sendable, Equatable {
    case none
    case transposed
}

/// Pointwise nonlinearities, fused with a per-channel bias in `biasActivationForward`.
public enum Activation: Sendable, Equatable, CustomStringConvertible {
    case identity
    case relu
    /// `x` for `x > 0`, `slope * x` otherwise (PyTorch's LeakyReLU).
    case leakyReLU(slope: Float)
    case sigmoid
    case tanh
    /// `log(1 + exp(x))`, computed as PyTorch does: `x` itself above 20.
    case softplus

    public var description: String {
        switch self {
        case .identity: return "identity"
        case .relu: return "relu"
        case .leakyReLU(let slope): return "leaky_relu(\(slope))"
        case .sigmoid: return "sigmoid"
        case .tanh: return "tanh"
        case .softplus: return "softplus"
        }
    }
}

/// Elementwise losses of a prediction against a target of the same shape.
public enum LossKind: String, Sendable, Equatable, CaseIterable {
    /// `-(t log p + (1 - t) log(1 - p))`, each log clamped at -100 as PyTorch does.
    case bce
    /// BCE of `sigmoid(x)` computed stably from the logit `x`.
    case bceWithLogits = "bce-with-logits"
    /// `(p - t)^2`
    case mse
    /// `|p - t|`, with gradient 0 at `p == t` as PyTorch's sign().
    case l1
}

/// How a loss reduces over elements.
public enum Reduction: String, Sendable, Equatable {
    case sum
    case mean
}

/// What the second head of a Gaussian encoder predicts, which fixes
/// `std` for the reparameterisation and the KL term.
public enum GaussianParameterization: String, Sendable, Equatable {
    /// `std = exp(p / 2)` (report 003, PyTorch's VAE example).
    case logVariance = "logvar"
    /// `std = exp(p)` (report 000: `c = exp(sigma) * e + m`).
    case logStd = "logstd"
    /// `std = p`, already positive (report 004's beta-VAE: softplus head).
    case std
}

/// An optimizer's update rule with its hyperparameters, following `torch.optim`
/// exactly (same defaults, same order of operations).
public enum OptimizerRule: Sendable, Equatable {
    case sgd(lr: Float, momentum: Float, dampening: Float, weightDecay: Float, nesterov: Bool)
    /// `decoupled: true` is AdamW (weight decay applied to the parameter, not the gradient).
    case adam(lr: Float, beta1: Float, beta2: Float, eps: Float, weightDecay: Float, decoupled: Bool)
    case rmsprop(lr: Float, alpha: Float, eps: Float, weightDecay: Float, momentum: Float)
    case adagrad(lr: Float, lrDecay: Float, eps: Float, weightDecay: Float)
    case adadelta(lr: Float, rho: Float, eps: Float, weightDecay: Float)

    /// State buffers per parameter, each the parameter's size, in the order the op reads them.
    /// SGD: momentum. Adam: exp_avg, exp_avg_sq. RMSprop: square_avg, momentum_buffer.
    /// Adagrad: sum. Adadelta: square_avg, acc_delta.
    public var stateCount: Int {
        switch self {
        case .sgd: return 1
        case .adam: return 2
        case .rmsprop: return 2
        case .adagrad: return 1
        case .adadelta: return 2
        }
    }

    /// Names of the state buffers as `torch.optim` calls them in `state_dict()`.
    public var stateNames: [String] {
        switch self {
        case .sgd: return ["momentum_buffer"]
        case .adam: return ["exp_avg", "exp_avg_sq"]
        case .rmsprop: return ["square_avg", "momentum_buffer"]
        case .adagrad: return ["sum"]
        case .adadelta: return ["square_avg", "acc_delta"]
        }
    }
}
