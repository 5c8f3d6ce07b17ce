import LatentCore

/// A trainable tensor and the gradient that backward passes add into. Gradients
/// accumulate (PyTorch's `.grad`) so that a parameter reached from two places, or over
/// several backward passes, sums its contributions; `zeroGradient` starts a new sum.
public final class Parameter {
    public let value: Tensor
    public let gradient: Tensor
    /// When `false`, optimizers leave the parameter alone (a frozen part of a model) and
    /// layers skip its gradient work where that is a separate op (batch norm's fused
    /// backward still writes gamma and beta gradients).
    public var requiresGradient: Bool

    public init(shape: [Int], on backend: any Backend, requiresGradient: Bool = true) throws {
        value = try Tensor(zeros: shape, on: backend)
        gradient = try Tensor(zeros: shape, on: backend)
        self.requiresGradient = requiresGradient
    }

    public var shape: [Int] { value.shape }
    public var backend: any Backend { value.backend }

    public func zeroGradient() throws {
        try value.backend.fill(gradient.view, value: 0)
    }
}

/// A node of a model's tree. Names follow PyTorch's `state_dict`: a module's own tensors
/// by their local name ("weight", "running_mean"), children prefixed with their name and
/// a dot, `Sequential` children named "0", "1", ... So a checkpoint written from these
/// names loads into the PyTorch original and the other way round.
public protocol Module: AnyObject {
    /// This module's own parameters, without its children's, in PyTorch's order.
    var ownParameters: [(name: String, parameter: Parameter)] { get }
    /// This module's own buffers (non-trained state such as running statistics).
    var ownBuffers: [(name: String, tensor: Tensor)] { get }
    /// Direct submodules, in registration order.
    var children: [(name: String, module: any Module)] { get }
}

extension Module {
    public var ownParameters: [(name: String, parameter: Parameter)] { [] }
    public var ownBuffers: [(name: String, tensor: Tensor)] { [] }
    public var children: [(name: String, module: any Module)] { [] }

    /// Every parameter under this module with its dotted name. With `removeDuplicates`
    /// (PyTorch's default) a parameter shared by two layers appears once, under the first
    /// name reached, which is what an optimizer needs; without it every name appears, as
    /// in a `state_dict`.
    public func namedParameters(prefix: String = "", removeDuplicates: Bool = true) -> [(name: String, parameter: Parameter)] {
        var seen = Set<ObjectIdentifier>()
        var result: [(name: String, parameter: Parameter)] = []
        walk(prefix: prefix) { name, module in
            for (local, parameter) in module.ownParameters {
                if removeDuplicates, !seen.insert(ObjectIdentifier(parameter)).inserted { continue }
                result.append((name + local, parameter))
            }
        }
        return result
    }

    /// Every buffer under this module with its dotted name; duplicates as in `namedParameters`.
    public func namedBuffers(prefix: String = "", removeDuplicates: Bool = true) -> [(name: String, tensor: Tensor)] {
        var seen = Set<ObjectIdentifier>()
        var result: [(name: String, tensor: Tensor)] = []
        walk(prefix: prefix) { name, module in
            for (local, tensor) in module.ownBuffers {
                if removeDuplicates, !seen.insert(ObjectIdentifier(tensor)).inserted { continue }
                result.append((name + local, tensor))
            }
        }
        return result
    }

    /// Parameters and buffers under every name, in `torch.nn.Module.state_dict()` order
    /// (each module's parameters, then its buffers, then its children).
    public func stateDict(prefix: String = "") -> [(name: String, tensor: Tensor)] {
        var result: [(name: String, tensor: Tensor)] = []
        walk(prefix: prefix) { name, module in
            for (local, parameter) in module.ownParameters { result.append((name + local, parameter.value)) }
            for (local, tensor) in module.ownBuffers { result.append((name + local, tensor)) }
        }
        return result
    }

    /// The distinct parameters, in `namedParameters` order.
    public func parameters() -> [Parameter] {
        namedParameters().map(\.parameter)
    }

    /// Zeroes every parameter's gradient (`optimizer.zero_grad(set_to_none=False)`).
    public func zeroGradients() throws {
        for parameter in parameters() { try parameter.zeroGradient() }
    }

    /// Total number of trainable scalars, shared parameters counted once.
    public var parameterCount: Int {
        parameters().reduce(0) { $0 + $1.value.count }
    }

    /// Pre-order walk with each module's dotted prefix ("encoder.0.").
    func walk(prefix: String, _ visit: (String, any Module) -> Void) {
        visit(prefix, self)
        for (name, child) in children {
            child.walk(prefix: prefix + name + ".", visit)
        }
    }
}

/// A module with one input and one output. `forward` caches what `backward` needs, and
/// `backward` returns the gradient with respect to the input while *adding* parameter
/// gradients into `Parameter.gradient`.
///
/// Buffer reuse: the tensors a layer returns are its own and are overwritten by the next
/// call with the same shape (no device allocation per step after the first). Keep a
/// result past the next call by copying it. Likewise `forward` keeps a reference to its
/// input, not a copy: leave the input unchanged until `backward` has run.
///
/// One object, one call site: a layer caches one forward pass at a time, so calling the
/// same object twice before the two backward passes loses the first cache. To apply the
/// same parameters at two places (report 004's beta-VAE shares one BatchNorm2d between
/// its encoder and decoder), build a second layer with `init(sharing:)`: it holds the
/// same `Parameter` objects and buffers, its own caches, and the gradients of both
/// places add up in the shared parameters.
public protocol Layer: Module {
    func forward(_ input: Tensor, training: Bool) throws -> Tensor
    func backward(_ gradOutput: Tensor) throws -> Tensor
    /// The parameter gradients that `backward` accumulates, without the input's gradient:
    /// for a layer whose input is data (a model's first layer on images), where that gradient
    /// would be thrown away. PyTorch's autograd skips it likewise (the images do not require
    /// gradients); for a first convolution or Linear it is a third of the layer's backward work.
    func backwardParameters(_ gradOutput: Tensor) throws
}

extension Layer {
    public func backwardParameters(_ gradOutput: Tensor) throws {
        _ = try backward(gradOutput)
    }
}

/// The model's random numbers: one Philox stream that initialisers, dropout and the
/// reparameterisation draw from in turn, so one seed reproduces a whole run on any backend.
public final class RandomSource {
    public var stream: RandomStream

    public init(seed: UInt64) {
        stream = RandomStream(seed: seed)
    }

    public init(_ stream: RandomStream) {
        self.stream = stream
    }

    /// Reserves the stream for a fill of `count` values: `(seed, counter)` to pass to a fill op.
    public func reserve(_ count: Int) -> (seed: UInt64, counter: UInt64) {
        (stream.seed, stream.advance(by: count))
    }

    public func fillUniform(_ tensor: Tensor, low: Float, high: Float) throws {
        let (seed, counter) = reserve(tensor.count)
        try tensor.backend.fillUniform(tensor.view, low: low, high: high, seed: seed, counter: counter)
    }

    public func fillNormal(_ tensor: Tensor, mean: Float = 0, std: Float = 1) throws {
        let (seed, counter) = reserve(tensor.count)
        try tensor.backend.fillNormal(tensor.view, mean: mean, std: std, seed: seed, counter: counter)
    }
}

/// `destination += source`, for a tensor that feeds two consumers (a VAE's hidden layer
/// feeding the mean and variance heads): their input gradients must be summed.
public func accumulate(_ source: Tensor, into destination: Tensor) throws {
    try Shape.expect(source.shape, equals: destination.shape, "accumulated gradient")
    try checkSameBackend(source, destination.backend, "accumulated gradient")
    try destination.backend.axpby(alpha: 1, x: source.view, beta: 1, y: destination.view)
}

/// A reusable tensor: the same object while the requested shape stays the same, and the
/// same device buffer while the element count fits what was allocated. A last batch of
/// another size therefore costs no allocation when the full size comes back.
public struct TensorSlot {
    private var storage: (any DeviceBuffer)?
    private var current: Tensor?

    public init() {}

    public mutating func tensor(_ shape: [Int], on backend: any Backend) throws -> Tensor {
        if let current, current.shape == shape, current.backend === backend { return current }
        let count = try Shape.elementCount(shape)
        let buffer: any DeviceBuffer
        if let storage, storage.count >= count, current?.backend === backend {
            buffer = storage
        } else {
            buffer = try backend.makeBuffer(count: count)
            storage = buffer
        }
        let tensor = try Tensor(view: try BufferView(buffer, offset: 0, count: count), shape: shape, on: backend)
        current = tensor
        return tensor
    }
}

func checkSameBackend(_ tensor: Tensor, _ backend: any Backend, _ what: String) throws {
    guard tensor.backend === backend else {
        throw LatentError.invalidArgument("\(what) lives on backend '\(tensor.backend.name)' but the layer's parameters live on '\(backend.name)'")
    }
}

func missingForward(_ layer: String) -> LatentError {
    LatentError.invalidArgument("\(layer): backward called before forward")
}

/// Throws unless `shape` has `rank` dimensions; `expected` describes them for the message.
func expectRank(_ shape: [Int], _ rank: Int, _ layer: String, _ expected: String) throws {
    guard shape.count == rank else {
        throw LatentError.shape("\(layer) expects input \(expected), got \(Shape.describe(shape))")
    }
}
