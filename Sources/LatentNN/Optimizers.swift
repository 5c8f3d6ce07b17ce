import LatentCore

/// The optimizers a run can name on the command line (`--optimizer adamw`).
public enum OptimizerName: String, CaseIterable, Sendable {
    case sgd, adam, adamw, rmsprop, adagrad, adadelta

    /// `torch.optim`'s defaults for this optimizer, with `learningRate` and `weightDecay`
    /// replacing the default where given. SGD has no default learning rate in PyTorch and
    /// needs one here too.
    public func defaultRule(learningRate: Float? = nil, weightDecay: Float? = nil) throws -> OptimizerRule {
        switch self {
        case .sgd:
            guard let learningRate else { throw LatentError.invalidArgument("SGD needs a learning rate (PyTorch has no default)") }
            return .sgd(lr: learningRate, momentum: 0, dampening: 0, weightDecay: weightDecay ?? 0, nesterov: false)
        case .adam:
            return .adam(lr: learningRate ?? 1e-3, beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: weightDecay ?? 0, decoupled: false)
        case .adamw:
            return .adam(lr: learningRate ?? 1e-3, beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: weightDecay ?? 1e-2, decoupled: true)
        case .rmsprop:
            return .rmsprop(lr: learningRate ?? 1e-2, alpha: 0.99, eps: 1e-8, weightDecay: weightDecay ?? 0, momentum: 0)
        case .adagrad:
            return .adagrad(lr: learningRate ?? 1e-2, lrDecay: 0, eps: 1e-10, weightDecay: weightDecay ?? 0)
        case .adadelta:
            return .adadelta(lr: learningRate ?? 1.0, rho: 0.9, eps: 1e-6, weightDecay: weightDecay ?? 0)
        }
    }
}

extension OptimizerRule {
    /// The rule's family; AdamW counts as Adam (same state buffers).
    public var kindName: String {
        switch self {
        case .sgd: return "sgd"
        case .adam: return "adam"
        case .rmsprop: return "rmsprop"
        case .adagrad: return "adagrad"
        case .adadelta: return "adadelta"
        }
    }

    public var learningRate: Float {
        switch self {
        case .sgd(let lr, _, _, _, _), .adam(let lr, _, _, _, _, _), .rmsprop(let lr, _, _, _, _),
             .adagrad(let lr, _, _, _), .adadelta(let lr, _, _, _):
            return lr
        }
    }

    /// The same rule with another learning rate (schedules).
    public func with(learningRate lr: Float) -> OptimizerRule {
        switch self {
        case let .sgd(_, momentum, dampening, weightDecay, nesterov):
            return .sgd(lr: lr, momentum: momentum, dampening: dampening, weightDecay: weightDecay, nesterov: nesterov)
        case let .adam(_, beta1, beta2, eps, weightDecay, decoupled):
            return .adam(lr: lr, beta1: beta1, beta2: beta2, eps: eps, weightDecay: weightDecay, decoupled: decoupled)
        case let .rmsprop(_, alpha, eps, weightDecay, momentum):
            return .rmsprop(lr: lr, alpha: alpha, eps: eps, weightDecay: weightDecay, momentum: momentum)
        case let .adagrad(_, lrDecay, eps, weightDecay):
            return .adagrad(lr: lr, lrDecay: lrDecay, eps: eps, weightDecay: weightDecay)
        case let .adadelta(_, rho, eps, weightDecay):
            return .adadelta(lr: lr, rho: rho, eps: eps, weightDecay: weightDecay)
        }
    }

    /// The argument checks `torch.optim` constructors make, so a bad value fails at
    /// start-up with PyTorch's reasons rather than producing NaNs later.
    public func validate() throws {
        func require(_ condition: Bool, _ message: String) throws {
            if !condition { throw LatentError.invalidArgument(message) }
        }
        try require(learningRate >= 0 && learningRate.isFinite, "invalid learning rate: \(learningRate)")
        switch self {
        case let .sgd(_, momentum, dampening, weightDecay, nesterov):
            try require(momentum >= 0, "invalid momentum value: \(momentum)")
            try require(weightDecay >= 0, "invalid weight_decay value: \(weightDecay)")
            if nesterov {
                try require(momentum > 0 && dampening == 0, "Nesterov momentum requires a momentum and zero dampening")
            }
        case let .adam(_, beta1, beta2, eps, weightDecay, _):
            try require(eps >= 0, "invalid epsilon value: \(eps)")
            try require(beta1 >= 0 && beta1 < 1, "invalid beta parameter at index 0: \(beta1)")
            try require(beta2 >= 0 && beta2 < 1, "invalid beta parameter at index 1: \(beta2)")
            try require(weightDecay >= 0, "invalid weight_decay value: \(weightDecay)")
        case let .rmsprop(_, alpha, eps, weightDecay, momentum):
            try require(eps >= 0, "invalid epsilon value: \(eps)")
            try require(alpha >= 0, "invalid alpha value: \(alpha)")
            try require(momentum >= 0, "invalid momentum value: \(momentum)")
            try require(weightDecay >= 0, "invalid weight_decay value: \(weightDecay)")
        case let .adagrad(_, lrDecay, eps, weightDecay):
            try require(lrDecay >= 0, "invalid lr_decay value: \(lrDecay)")
            try require(eps >= 0, "invalid epsilon value: \(eps)")
            try require(weightDecay >= 0, "invalid weight_decay value: \(weightDecay)")
        case let .adadelta(_, rho, eps, weightDecay):
            try require(rho >= 0 && rho <= 1, "invalid rho value: \(rho)")
            try require(eps >= 0, "invalid epsilon value: \(eps)")
            try require(weightDecay >= 0, "invalid weight_decay value: \(weightDecay)")
        }
    }
}

/// A `torch.optim` optimizer over a fixed list of parameters: per-parameter state tensors
/// (zero until the first step, as PyTorch's lazily created state) and per-parameter step
/// counts; the update itself is one backend op per parameter.
public final class Optimizer {
    /// Changed through `learningRate` or `setRule`, which keep its kind (the state
    /// buffers' meaning depends on it).
    public private(set) var rule: OptimizerRule
    public let parameters: [(name: String, parameter: Parameter)]
    /// `state[i][j]` is state buffer `rule.stateNames[j]` of parameter `i`.
    public let state: [[Tensor]]
    /// PyTorch's per-parameter `step`; a parameter that never trained stays at 0.
    public var steps: [Int]

    public init(_ rule: OptimizerRule, parameters: [(name: String, parameter: Parameter)]) throws {
        try rule.validate()
        var seen = Set<ObjectIdentifier>()
        for (name, parameter) in parameters where !seen.insert(ObjectIdentifier(parameter)).inserted {
            throw LatentError.invalidArgument("parameter '\(name)' appears twice in one optimizer")
        }
        self.rule = rule
        self.parameters = parameters
        state = try parameters.map { entry in
            try (0..<rule.stateCount).map { _ in try Tensor(zeros: entry.parameter.shape, on: entry.parameter.backend) }
        }
        steps = Array(repeating: 0, count: parameters.count)
    }

    /// Over every distinct parameter of `module`, named as in its state dict.
    public convenience init(_ rule: OptimizerRule, module: any Module) throws {
        try self.init(rule, parameters: module.namedParameters())
    }

    /// `name`'s PyTorch defaults (see `OptimizerName.defaultRule`).
    public convenience init(_ name: OptimizerName, module: any Module, learningRate: Float? = nil, weightDecay: Float? = nil) throws {
        try self.init(name.defaultRule(learningRate: learningRate, weightDecay: weightDecay), module: module)
    }

    // Convenience constructors with `torch.optim`'s argument names and defaults.

    public static func sgd(_ parameters: [(name: String, parameter: Parameter)], lr: Float, momentum: Float = 0,
                           dampening: Float = 0, weightDecay: Float = 0, nesterov: Bool = false) throws -> Optimizer {
        try Optimizer(.sgd(lr: lr, momentum: momentum, dampening: dampening, weightDecay: weightDecay, nesterov: nesterov),
                      parameters: parameters)
    }

    public static func adam(_ parameters: [(name: String, parameter: Parameter)], lr: Float = 1e-3,
                            betas: (Float, Float) = (0.9, 0.999), eps: Float = 1e-8, weightDecay: Float = 0) throws -> Optimizer {
        try Optimizer(.adam(lr: lr, beta1: betas.0, beta2: betas.1, eps: eps, weightDecay: weightDecay, decoupled: false),
                      parameters: parameters)
    }

    public static func adamW(_ parameters: [(name: String, parameter: Parameter)], lr: Float = 1e-3,
                             betas: (Float, Float) = (0.9, 0.999), eps: Float = 1e-8, weightDecay: Float = 1e-2) throws -> Optimizer {
        try Optimizer(.adam(lr: lr, beta1: betas.0, beta2: betas.1, eps: eps, weightDecay: weightDecay, decoupled: true),
                      parameters: parameters)
    }

    public static func rmsprop(_ parameters: [(name: String, parameter: Parameter)], lr: Float = 1e-2, alpha: Float = 0.99,
                               eps: Float = 1e-8, weightDecay: Float = 0, momentum: Float = 0) throws -> Optimizer {
        try Optimizer(.rmsprop(lr: lr, alpha: alpha, eps: eps, weightDecay: weightDecay, momentum: momentum),
                      parameters: parameters)
    }

    public static func adagrad(_ parameters: [(name: String, parameter: Parameter)], lr: Float = 1e-2, lrDecay: Float = 0,
                               weightDecay: Float = 0, eps: Float = 1e-10) throws -> Optimizer {
        try Optimizer(.adagrad(lr: lr, lrDecay: lrDecay, eps: eps, weightDecay: weightDecay), parameters: parameters)
    }

    public static func adadelta(_ parameters: [(name: String, parameter: Parameter)], lr: Float = 1.0, rho: Float = 0.9,
                                eps: Float = 1e-6, weightDecay: Float = 0) throws -> Optimizer {
        try Optimizer(.adadelta(lr: lr, rho: rho, eps: eps, weightDecay: weightDecay), parameters: parameters)
    }

    public var learningRate: Float {
        get { rule.learningRate }
        set { rule = rule.with(learningRate: newValue) }
    }

    /// Replaces the hyperparameters. Changing the kind (Adam to SGD) would leave state
    /// buffers of the wrong meaning, so it is refused.
    public func setRule(_ newRule: OptimizerRule) throws {
        guard newRule.kindName == rule.kindName else {
            throw LatentError.invalidArgument("an optimizer's rule may change its hyperparameters, not its kind (\(rule.kindName) -> \(newRule.kindName))")
        }
        try newRule.validate()
        rule = newRule
    }

    /// One update of every parameter that requires a gradient.
    public func step() throws {
        guard steps.count == parameters.count else {
            throw LatentError.invalidArgument("optimizer has \(steps.count) step counts for \(parameters.count) parameters")
        }
        for index in parameters.indices {
            let parameter = parameters[index].parameter
            guard parameter.requiresGradient else { continue }
            steps[index] += 1
            try parameter.backend.optimizerStep(rule, parameter: parameter.value.view, gradient: parameter.gradient.view,
                                                state: state[index].map(\.view), step: steps[index])
        }
    }

    /// Zeroes the gradients of this optimizer's parameters.
    public func zeroGradients() throws {
        for (_, parameter) in parameters { try parameter.zeroGradient() }
    }

    /// State tensors named as in a flattened `optimizer.state_dict()["state"]`:
    /// "state.<parameter index>.<exp_avg | exp_avg_sq | ...>".
    public func namedState() -> [(name: String, tensor: Tensor)] {
        var result: [(name: String, tensor: Tensor)] = []
        for (index, tensors) in state.enumerated() {
            for (name, tensor) in zip(rule.stateNames, tensors) {
                result.append(("state.\(index).\(name)", tensor))
            }
        }
        return result
    }
}
