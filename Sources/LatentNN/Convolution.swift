import LatentCore

/// `torch.nn.Conv2d(inChannels, outChannels, kernel, stride, padding)` with square
/// kernels, weight (Cout, Cin, k, k).
public final class Conv2d: Layer {
    public let inChannels: Int
    public let outChannels: Int
    public let kernel: Int
    public let stride: Int
    public let padding: Int
    public let weight: Parameter
    public let bias: Parameter?
    public let backend: any Backend

    private var input: Tensor?
    private var geometry: ConvGeometry?
    private var output = TensorSlot()
    private var gradInput = TensorSlot()

    public init(_ inChannels: Int, _ outChannels: Int, kernel: Int, stride: Int = 1, padding: Int = 0,
                bias: Bool = true, on backend: any Backend, random: RandomSource) throws {
        guard inChannels > 0, outChannels > 0, kernel > 0, stride > 0, padding >= 0 else {
            throw LatentError.invalidArgument("Conv2d(\(inChannels), \(outChannels), \(kernel), \(stride), \(padding)) needs positive channels, kernel and stride and padding >= 0")
        }
        self.inChannels = inChannels
        self.outChannels = outChannels
        self.kernel = kernel
        self.stride = stride
        self.padding = padding
        self.backend = backend
        weight = try Parameter(shape: [outChannels, inChannels, kernel, kernel], on: backend)
        self.bias = bias ? try Parameter(shape: [outChannels], on: backend) : nil
        try Initialization.defaultLinear(weight: weight.value, bias: self.bias?.value, random: random)
    }

    /// The same parameters as `other`, with caches of its own (see `Layer`).
    public init(sharing other: Conv2d) {
        inChannels = other.inChannels
        outChannels = other.outChannels
        kernel = other.kernel
        stride = other.stride
        padding = other.padding
        weight = other.weight
        bias = other.bias
        backend = other.backend
    }

    public var ownParameters: [(name: String, parameter: Parameter)] {
        [("weight", weight)] + (bias.map { [("bias", $0)] } ?? [])
    }

    private var name: String { "Conv2d(\(inChannels), \(outChannels), \(kernel), \(stride), \(padding))" }

    /// Output shape for an input shape, or a thrown shape error.
    public func outputShape(for inputShape: [Int]) throws -> [Int] {
        let geometry = try makeGeometry(inputShape)
        return [geometry.batch, outChannels, geometry.outHeight, geometry.outWidth]
    }

    private func makeGeometry(_ shape: [Int]) throws -> ConvGeometry {
        guard shape.count == 4, shape[1] == inChannels else {
            throw LatentError.shape("\(name) expects input (N, \(inChannels), H, W), got \(Shape.describe(shape))")
        }
        if let geometry, geometry.batch == shape[0], geometry.inHeight == shape[2], geometry.inWidth == shape[3] {
            return geometry
        }
        do {
            return try ConvGeometry(batch: shape[0], inChannels: inChannels, height: shape[2], width: shape[3],
                                    outChannels: outChannels, kernel: kernel, stride: stride, padding: padding)
        } catch let error as LatentError {
            throw LatentError.shape("\(name) on input \(Shape.describe(shape)): \(error.description)")
        }
    }

    // (N, Cin, H, W) -> (N, Cout, Ho, Wo)
    public func forward(_ input: Tensor, training: Bool) throws -> Tensor {
        try checkSameBackend(input, backend, name)
        let geometry = try makeGeometry(input.shape)
        let output = try output.tensor([geometry.batch, outChannels, geometry.outHeight, geometry.outWidth], on: backend)
        try backend.conv2dForward(geometry, input: input.view, weight: weight.value.view,
                                  bias: bias?.value.view, output: output.view)
        self.geometry = geometry
        self.input = input
        return output
    }

    // (N, Cout, Ho, Wo) -> (N, Cin, H, W); dW (Cout, Cin, k, k), db (Cout)
    public func backward(_ gradOutput: Tensor) throws -> Tensor {
        let (input, geometry) = try forwardState(checking: gradOutput)
        let gradInput = try gradInput.tensor(input.shape, on: backend)
        try backend.conv2dBackwardData(geometry, gradOutput: gradOutput.view, weight: weight.value.view,
                                       bias: nil, gradInput: gradInput.view, accumulate: false)
        try accumulateParameterGradients(gradOutput, input: input, geometry: geometry)
        return gradInput
    }

    // (N, Cout, Ho, Wo) -> dW (Cout, Cin, k, k), db (Cout); no input gradient
    public func backwardParameters(_ gradOutput: Tensor) throws {
        let (input, geometry) = try forwardState(checking: gradOutput)
        try accumulateParameterGradients(gradOutput, input: input, geometry: geometry)
    }

    /// The forward pass's input and geometry, after checking `gradOutput` against them.
    private func forwardState(checking gradOutput: Tensor) throws -> (input: Tensor, geometry: ConvGeometry) {
        guard let input, let geometry else { throw missingForward(name) }
        try Shape.expect(gradOutput.shape, equals: [geometry.batch, outChannels, geometry.outHeight, geometry.outWidth],
                         "\(name) gradOutput")
        try checkSameBackend(gradOutput, backend, name)
        return (input, geometry)
    }

    private func accumulateParameterGradients(_ gradOutput: Tensor, input: Tensor, geometry: ConvGeometry) throws {
        if weight.requiresGradient {
            try backend.conv2dBackwardWeights(geometry, input: input.view, gradOutput: gradOutput.view,
                                              gradWeight: weight.gradient.view, accumulate: true)
        }
        if let bias, bias.requiresGradient {
            try backend.channelSum(input: gradOutput.view, output: bias.gradient.view, batch: geometry.batch,
                                   channels: outChannels, spatial: geometry.outHeight * geometry.outWidth, accumulate: true)
        }
    }
}

/// `torch.nn.ConvTranspose2d(inChannels, outChannels, kernel, stride, padding,
/// outputPadding)`, weight (Cin, Cout, k, k) as PyTorch stores it. It is the backward-data
/// pass of the convolution from its output back to its input, so it runs on the same
/// kernels with the roles of input and output swapped (`ConvGeometry.transposed`).
public final class ConvTranspose2d: Layer {
    public let inChannels: Int
    public let outChannels: Int
    public let kernel: Int
    public let stride: Int
    public let padding: Int
    public let outputPadding: Int
    public let weight: Parameter
    public let bias: Parameter?
    public let backend: any Backend

    private var input: Tensor?
    private var geometry: ConvGeometry?
    private var output = TensorSlot()
    private var gradInput = TensorSlot()

    public init(_ inChannels: Int, _ outChannels: Int, kernel: Int, stride: Int = 1, padding: Int = 0,
                outputPadding: Int = 0, bias: Bool = true, on backend: any Backend, random: RandomSource) throws {
        guard inChannels > 0, outChannels > 0, kernel > 0, stride > 0, padding >= 0 else {
            throw LatentError.invalidArgument("ConvTranspose2d(\(inChannels), \(outChannels), \(kernel), \(stride), \(padding)) needs positive channels, kernel and stride and padding >= 0")
        }
        guard outputPadding >= 0, outputPadding < stride else {
            throw LatentError.invalidArgument("ConvTranspose2d output_padding \(outputPadding) must be in [0, stride \(stride))")
        }
        self.inChannels = inChannels
        self.outChannels = outChannels
        self.kernel = kernel
        self.stride = stride
        self.padding = padding
        self.outputPadding = outputPadding
        self.backend = backend
        weight = try Parameter(shape: [inChannels, outChannels, kernel, kernel], on: backend)
        self.bias = bias ? try Parameter(shape: [outChannels], on: backend) : nil
        // fan_in = weight.size(1) * k * k = outChannels * k * k, as PyTorch computes it.
        try Initialization.defaultLinear(weight: weight.value, bias: self.bias?.value, random: random)
    }

    /// The same parameters as `other`, with caches of its own (see `Layer`).
    public init(sharing other: ConvTranspose2d) {
        inChannels = other.inChannels
        outChannels = other.outChannels
        kernel = other.kernel
        stride = other.stride
        padding = other.padding
        outputPadding = other.outputPadding
        weight = other.weight
        bias = other.bias
        backend = other.backend
    }

    public var ownParameters: [(name: String, parameter: Parameter)] {
        [("weight", weight)] + (bias.map { [("bias", $0)] } ?? [])
    }

    private var name: String {
        "ConvTranspose2d(\(inChannels), \(outChannels), \(kernel), \(stride), \(padding), \(outputPadding))"
    }

    /// Output shape for an input shape, or a thrown shape error.
    public func outputShape(for inputShape: [Int]) throws -> [Int] {
        let geometry = try makeGeometry(inputShape)
        return [geometry.batch, outChannels, geometry.inHeight, geometry.inWidth]
    }

    /// The geometry of the forward convolution this layer transposes: its `input` is this
    /// layer's output (N, Cout, Ho, Wo) and its `output` this layer's input (N, Cin, H, W).
    private func makeGeometry(_ shape: [Int]) throws -> ConvGeometry {
        guard shape.count == 4, shape[1] == inChannels else {
            throw LatentError.shape("\(name) expects input (N, \(inChannels), H, W), got \(Shape.describe(shape))")
        }
        if let geometry, geometry.batch == shape[0], geometry.outHeight == shape[2], geometry.outWidth == shape[3] {
            return geometry
        }
        do {
            return try ConvGeometry.transposed(batch: shape[0], inChannels: inChannels, height: shape[2], width: shape[3],
                                               outChannels: outChannels, kernel: kernel, stride: stride,
                                               padding: padding, outputPadding: outputPadding)
        } catch let error as LatentError {
            throw LatentError.shape("\(name) on input \(Shape.describe(shape)): \(error.description)")
        }
    }

    // (N, Cin, H, W) -> (N, Cout, Ho, Wo), Ho = (H - 1) * stride - 2 * padding + k + outputPadding
    public func forward(_ input: Tensor, training: Bool) throws -> Tensor {
        try checkSameBackend(input, backend, name)
        let geometry = try makeGeometry(input.shape)
        let output = try output.tensor([geometry.batch, outChannels, geometry.inHeight, geometry.inWidth], on: backend)
        try backend.conv2dBackwardData(geometry, gradOutput: input.view, weight: weight.value.view,
                                       bias: bias?.value.view, gradInput: output.view, accumulate: false)
        self.geometry = geometry
        self.input = input
        return output
    }

    // (N, Cout, Ho, Wo) -> (N, Cin, H, W); dW (Cin, Cout, k, k), db (Cout)
    public func backward(_ gradOutput: Tensor) throws -> Tensor {
        let (input, geometry) = try forwardState(checking: gradOutput)
        let gradInput = try gradInput.tensor(input.shape, on: backend)
        try backend.conv2dForward(geometry, input: gradOutput.view, weight: weight.value.view,
                                  bias: nil, output: gradInput.view)
        try accumulateParameterGradients(gradOutput, input: input, geometry: geometry)
        return gradInput
    }

    // (N, Cout, Ho, Wo) -> dW (Cin, Cout, k, k), db (Cout); no input gradient
    public func backwardParameters(_ gradOutput: Tensor) throws {
        let (input, geometry) = try forwardState(checking: gradOutput)
        try accumulateParameterGradients(gradOutput, input: input, geometry: geometry)
    }

    /// The forward pass's input and geometry, after checking `gradOutput` against them.
    private func forwardState(checking gradOutput: Tensor) throws -> (input: Tensor, geometry: ConvGeometry) {
        guard let input, let geometry else { throw missingForward(name) }
        try Shape.expect(gradOutput.shape, equals: [geometry.batch, outChannels, geometry.inHeight, geometry.inWidth],
                         "\(name) gradOutput")
        try checkSameBackend(gradOutput, backend, name)
        return (input, geometry)
    }

    private func accumulateParameterGradients(_ gradOutput: Tensor, input: Tensor, geometry: ConvGeometry) throws {
        if weight.requiresGradient {
            try backend.conv2dBackwardWeights(geometry, input: gradOutput.view, gradOutput: input.view,
                                              gradWeight: weight.gradient.view, accumulate: true)
        }
        if let bias, bias.requiresGradient {
            try backend.channelSum(input: gradOutput.view, output: bias.gradient.view, batch: geometry.batch,
                                   channels: outChannels, spatial: geometry.inHeight * geometry.inWidth, accumulate: true)
        }
    }
}
