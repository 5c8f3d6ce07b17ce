import LatentCore

/// `y = x W^T + b` (`torch.nn.Linear`), weight (out, in) as PyTorch stores it.
public final class Linear: Layer {
    public let inFeatures: Int
    public let outFeatures: Int
    public let weight: Parameter
    public let bias: Parameter?
    public let backend: any Backend

    private var input: Tensor?
    private var output = TensorSlot()
    private var gradInput = TensorSlot()

    public init(_ inFeatures: Int, _ outFeatures: Int, bias: Bool = true,
                on backend: any Backend, random: RandomSource) throws {
        guard inFeatures > 0, outFeatures > 0 else {
            throw LatentError.invalidArgument("Linear(\(inFeatures), \(outFeatures)) needs positive sizes")
        }
        self.inFeatures = inFeatures
        self.outFeatures = outFeatures
        self.backend = backend
        weight = try Parameter(shape: [outFeatures, inFeatures], on: backend)
        self.bias = bias ? try Parameter(shape: [outFeatures], on: backend) : nil
        try Initialization.defaultLinear(weight: weight.value, bias: self.bias?.value, random: random)
    }

    /// The same parameters as `other`, with caches of its own (see `Layer`).
    public init(sharing other: Linear) {
        inFeatures = other.inFeatures
        outFeatures = other.outFeatures
        weight = other.weight
        bias = other.bias
        backend = other.backend
    }

    public var ownParameters: [(name: String, parameter: Parameter)] {
        [("weight", weight)] + (bias.map { [("bias", $0)] } ?? [])
    }

    private var name: String { "Linear(\(inFeatures), \(outFeatures))" }

    // (N, in) -> (N, out)
    public func forward(_ input: Tensor, training: Bool) throws -> Tensor {
        try checkSameBackend(input, backend, name)
        guard input.shape.count == 2, input.shape[1] == inFeatures else {
            throw LatentError.shape("\(name) expects input (N, \(inFeatures)), got \(Shape.describe(input.shape))")
        }
        let batch = input.shape[0]
        let output = try output.tensor([batch, outFeatures], on: backend)
        try backend.gemm(transA: .none, transB: .transposed, m: batch, n: outFeatures, k: inFeatures,
                         alpha: 1, a: input.view, lda: inFeatures, b: weight.value.view, ldb: inFeatures,
                         beta: 0, c: output.view, ldc: outFeatures)
        if let bias {
            try backend.biasActivationForward(input: output.view, bias: bias.value.view, activation: .identity,
                                              output: output.view, channels: outFeatures, spatial: 1)
        }
        self.input = input
        return output
    }

    // (N, out) -> (N, in); dW += dY^T X (out, in), db += sum_n dY (out)
    public func backward(_ gradOutput: Tensor) throws -> Tensor {
        let input = try forwardInput(checking: gradOutput)
        let batch = input.shape[0]
        let gradInput = try gradInput.tensor(input.shape, on: backend)
        try backend.gemm(transA: .none, transB: .none, m: batch, n: inFeatures, k: outFeatures,
                         alpha: 1, a: gradOutput.view, lda: outFeatures, b: weight.value.view, ldb: inFeatures,
                         beta: 0, c: gradInput.view, ldc: inFeatures)
        try accumulateParameterGradients(gradOutput, input: input)
        return gradInput
    }

    // (N, out) -> dW (out, in), db (out); no input gradient
    public func backwardParameters(_ gradOutput: Tensor) throws {
        try accumulateParameterGradients(gradOutput, input: try forwardInput(checking: gradOutput))
    }

    /// The forward pass's input, after checking `gradOutput` against it.
    private func forwardInput(checking gradOutput: Tensor) throws -> Tensor {
        guard let input else { throw missingForward(name) }
        try Shape.expect(gradOutput.shape, equals: [input.shape[0], outFeatures], "\(name) gradOutput")
        try checkSameBackend(gradOutput, backend, name)
        return input
    }

    private func accumulateParameterGradients(_ gradOutput: Tensor, input: Tensor) throws {
        let batch = input.shape[0]
        if weight.requiresGradient {
            try backend.gemm(transA: .transposed, transB: .none, m: outFeatures, n: inFeatures, k: batch,
                             alpha: 1, a: gradOutput.view, lda: outFeatures, b: input.view, ldb: inFeatures,
                             beta: 1, c: weight.gradient.view, ldc: inFeatures)
        }
        if let bias, bias.requiresGradient {
            try backend.channelSum(input: gradOutput.view, output: bias.gradient.view,
                                   batch: batch, channels: outFeatures, spatial: 1, accumulate: true)
        }
    }
}
