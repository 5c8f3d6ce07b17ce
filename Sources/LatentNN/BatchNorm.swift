import LatentCore

/// The state and maths both batch-norm layers share; they differ only in the input ranks
/// they accept. Parameters and buffers live in `BatchNormStorage` so that two layers can
/// hold the same one (shared statistics, as report 004's beta-VAE does).
public final class BatchNormStorage {
    public let channels: Int
    public let momentum: Float
    public let epsilon: Float
    public let weight: Parameter
    public let bias: Parameter
    public let runningMean: Tensor
    public let runningVariance: Tensor
    /// PyTorch keeps an int64; a float counts exactly up to 2^24 batches, and stays on the
    /// device so that training needs no host round trip.
    public let numBatchesTracked: Tensor
    let one: Tensor

    init(channels: Int, momentum: Float, epsilon: Float, on backend: any Backend) throws {
        guard channels > 0 else { throw LatentError.invalidArgument("BatchNorm needs a positive channel count, got \(channels)") }
        guard momentum >= 0, momentum <= 1, epsilon > 0 else {
            throw LatentError.invalidArgument("BatchNorm needs momentum in [0, 1] and eps > 0, got \(momentum), \(epsilon)")
        }
        self.channels = channels
        self.momentum = momentum
        self.epsilon = epsilon
        weight = try Parameter(shape: [channels], on: backend)
        bias = try Parameter(shape: [channels], on: backend)
        runningMean = try Tensor(zeros: [channels], on: backend)
        runningVariance = try Tensor(zeros: [channels], on: backend)
        numBatchesTracked = try Tensor(zeros: [], on: backend)
        one = try Tensor(zeros: [1], on: backend)
        try backend.fill(weight.value.view, value: 1)
        try backend.fill(runningVariance.view, value: 1)
        try backend.fill(one.view, value: 1)
    }
}

/// Per-call-site caches and the forward/backward maths.
struct BatchNormCore {
    let storage: BatchNormStorage
    let backend: any Backend
    private var input: Tensor?
    private var trainingPass = true
    private var output = TensorSlot()
    private var gradInput = TensorSlot()
    private var savedMean = TensorSlot()
    private var savedInverseStd = TensorSlot()
    // Eval-mode backward only: constant zeros / ones (C) and two scratch tensors.
    private var zeros = TensorSlot()
    private var ones = TensorSlot()
    private var scratchA = TensorSlot()
    private var scratchB = TensorSlot()

    init(storage: BatchNormStorage) {
        self.storage = storage
        backend = storage.weight.backend
    }

    var ownParameters: [(name: String, parameter: Parameter)] {
        [("weight", storage.weight), ("bias", storage.bias)]
    }

    var ownBuffers: [(name: String, tensor: Tensor)] {
        [("running_mean", storage.runningMean), ("running_var", storage.runningVariance),
         ("num_batches_tracked", storage.numBatchesTracked)]
    }

    /// `spatial` is H * W (or L, or 1).
    mutating func forward(_ input: Tensor, batch: Int, spatial: Int, training: Bool, name: String) throws -> Tensor {
        try checkSameBackend(input, backend, name)
        let output = try output.tensor(input.shape, on: backend)
        let channels = storage.channels
        if training {
            guard batch * spatial > 1 else {
                throw LatentError.shape("\(name) in training mode needs more than one value per channel, got input \(Shape.describe(input.shape))")
            }
            let mean = try savedMean.tensor([channels], on: backend)
            let inverseStd = try savedInverseStd.tensor([channels], on: backend)
            try backend.batchNormForwardTraining(input: input.view, output: output.view,
                                                 gamma: storage.weight.value.view, beta: storage.bias.value.view,
                                                 runningMean: storage.runningMean.view,
                                                 runningVariance: storage.runningVariance.view,
                                                 savedMean: mean.view, savedInverseStd: inverseStd.view,
                                                 batch: batch, channels: channels, spatial: spatial,
                                                 momentum: storage.momentum, epsilon: storage.epsilon)
            try backend.axpby(alpha: 1, x: storage.one.view, beta: 1, y: storage.numBatchesTracked.view)
        } else {
            try backend.batchNormForwardInference(input: input.view, output: output.view,
                                                  gamma: storage.weight.value.view, beta: storage.bias.value.view,
                                                  runningMean: storage.runningMean.view,
                                                  runningVariance: storage.runningVariance.view,
                                                  batch: batch, channels: channels, spatial: spatial,
                                                  epsilon: storage.epsilon)
        }
        self.input = input
        trainingPass = training
        return output
    }

    mutating func backward(_ gradOutput: Tensor, batch: Int, spatial: Int, name: String) throws -> Tensor {
        guard let input else { throw missingForward(name) }
        try Shape.expect(gradOutput.shape, equals: input.shape, "\(name) gradOutput")
        try checkSameBackend(gradOutput, backend, name)
        let gradInput = try gradInput.tensor(input.shape, on: backend)
        let channels = storage.channels
        if trainingPass {
            let mean = try savedMean.tensor([channels], on: backend)
            let inverseStd = try savedInverseStd.tensor([channels], on: backend)
            try backend.batchNormBackward(gradOutput: gradOutput.view, input: input.view, gamma: storage.weight.value.view,
                                          savedMean: mean.view, savedInverseStd: inverseStd.view,
                                          gradInput: gradInput.view, gradGamma: storage.weight.gradient.view,
                                          gradBeta: storage.bias.gradient.view,
                                          batch: batch, channels: channels, spatial: spatial, accumulate: true)
            return gradInput
        }
        // Eval mode is a fixed affine map per channel, y = gamma * xhat + beta with
        // xhat = (x - running_mean) / sqrt(running_var + eps). Its pieces are inference
        // batch norms with chosen arguments:
        //   dx = gamma * g / sqrt(running_var + eps)     (mean 0, beta 0 applied to g)
        //   dgamma += sum(g * xhat), dbeta += sum(g)
        let zeros = try zeros.tensor([channels], on: backend)
        let ones = try ones.tensor([channels], on: backend)
        try backend.fill(zeros.view, value: 0)
        try backend.fill(ones.view, value: 1)
        try backend.batchNormForwardInference(input: gradOutput.view, output: gradInput.view,
                                              gamma: storage.weight.value.view, beta: zeros.view,
                                              runningMean: zeros.view, runningVariance: storage.runningVariance.view,
                                              batch: batch, channels: channels, spatial: spatial, epsilon: storage.epsilon)
        if storage.weight.requiresGradient {
            let normalized = try scratchA.tensor(input.shape, on: backend)
            let product = try scratchB.tensor(input.shape, on: backend)
            try backend.batchNormForwardInference(input: input.view, output: normalized.view,
                                                  gamma: ones.view, beta: zeros.view,
                                                  runningMean: storage.runningMean.view,
                                                  runningVariance: storage.runningVariance.view,
                                                  batch: batch, channels: channels, spatial: spatial,
                                                  epsilon: storage.epsilon)
            try backend.multiply(gradOutput.view, normalized.view, output: product.view)
            try backend.channelSum(input: product.view, output: storage.weight.gradient.view,
                                   batch: batch, channels: channels, spatial: spatial, accumulate: true)
        }
        if storage.bias.requiresGradient {
            try backend.channelSum(input: gradOutput.view, output: storage.bias.gradient.view,
                                   batch: batch, channels: channels, spatial: spatial, accumulate: true)
        }
        return gradInput
    }
}

/// `torch.nn.BatchNorm1d(channels)` on (N, C) or (N, C, L): statistics per channel over
/// the batch (and length). Training normalises with the batch's statistics and updates
/// the running ones (momentum 0.1, unbiased variance); evaluation uses the running ones.
public final class BatchNorm1d: Layer {
    public let storage: BatchNormStorage
    private var core: BatchNormCore

    public init(_ channels: Int, momentum: Float = 0.1, epsilon: Float = 1e-5, on backend: any Backend) throws {
        storage = try BatchNormStorage(channels: channels, momentum: momentum, epsilon: epsilon, on: backend)
        core = BatchNormCore(storage: storage)
    }

    /// The same parameters and running statistics as `other`, with caches of its own.
    public init(sharing other: BatchNorm1d) {
        storage = other.storage
        core = BatchNormCore(storage: storage)
    }

    public var channels: Int { storage.channels }
    public var ownParameters: [(name: String, parameter: Parameter)] { core.ownParameters }
    public var ownBuffers: [(name: String, tensor: Tensor)] { core.ownBuffers }
    private var name: String { "BatchNorm1d(\(storage.channels))" }

    private func sizes(_ shape: [Int]) throws -> (batch: Int, spatial: Int) {
        guard shape.count == 2 || shape.count == 3, shape[1] == storage.channels else {
            throw LatentError.shape("\(name) expects input (N, \(storage.channels)) or (N, \(storage.channels), L), got \(Shape.describe(shape))")
        }
        return (shape[0], shape.count == 3 ? shape[2] : 1)
    }

    // (N, C) -> (N, C), or (N, C, L) -> (N, C, L)
    public func forward(_ input: Tensor, training: Bool) throws -> Tensor {
        let (batch, spatial) = try sizes(input.shape)
        return try core.forward(input, batch: batch, spatial: spatial, training: training, name: name)
    }

    // (N, C[, L]) -> (N, C[, L]); dgamma, dbeta (C)
    public func backward(_ gradOutput: Tensor) throws -> Tensor {
        let (batch, spatial) = try sizes(gradOutput.shape)
        return try core.backward(gradOutput, batch: batch, spatial: spatial, name: name)
    }
}

/// `torch.nn.BatchNorm2d(channels)` on (N, C, H, W): statistics per channel over N, H, W.
public final class BatchNorm2d: Layer {
    public let storage: BatchNormStorage
    private var core: BatchNormCore

    public init(_ channels: Int, momentum: Float = 0.1, epsilon: Float = 1e-5, on backend: any Backend) throws {
        storage = try BatchNormStorage(channels: channels, momentum: momentum, epsilon: epsilon, on: backend)
        core = BatchNormCore(storage: storage)
    }

    /// The same parameters and running statistics as `other`, with caches of its own.
    public init(sharing other: BatchNorm2d) {
        storage = other.storage
        core = BatchNormCore(storage: storage)
    }

    public var channels: Int { storage.channels }
    public var ownParameters: [(name: String, parameter: Parameter)] { core.ownParameters }
    public var ownBuffers: [(name: String, tensor: Tensor)] { core.ownBuffers }
    private var name: String { "BatchNorm2d(\(storage.channels))" }

    private func sizes(_ shape: [Int]) throws -> (batch: Int, spatial: Int) {
        guard shape.count == 4, shape[1] == storage.channels else {
            throw LatentError.shape("\(name) expects input (N, \(storage.channels), H, W), got \(Shape.describe(shape))")
        }
        return (shape[0], shape[2] * shape[3])
    }

    // (N, C, H, W) -> (N, C, H, W)
    public func forward(_ input: Tensor, training: Bool) throws -> Tensor {
        let (batch, spatial) = try sizes(input.shape)
        return try core.forward(input, batch: batch, spatial: spatial, training: training, name: name)
    }

    // (N, C, H, W) -> (N, C, H, W); dgamma, dbeta (C)
    public func backward(_ gradOutput: Tensor) throws -> Tensor {
        let (batch, spatial) = try sizes(gradOutput.shape)
        return try core.backward(gradOutput, batch: batch, spatial: spatial, name: name)
    }
}
