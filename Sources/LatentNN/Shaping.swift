import LatentCore

/// `torch.nn.Flatten()`: (N, d1, d2, ...) -> (N, d1 * d2 * ...), sharing storage.
public final class Flatten: Layer {
    private var inputShape: [Int]?
    private var lastInput: Tensor?
    private var lastOutput: Tensor?
    private var lastGradOutput: Tensor?
    private var lastGradInput: Tensor?

    public init() {}

    // (N, ...) -> (N, prod(...))
    public func forward(_ input: Tensor, training: Bool) throws -> Tensor {
        guard let batch = input.shape.first else {
            throw LatentError.shape("Flatten expects an input with a batch dimension, got \(Shape.describe(input.shape))")
        }
        inputShape = input.shape
        if let lastInput, lastInput === input, let lastOutput { return lastOutput }
        let output = try input.reshaped([batch, try Shape.elementCount(Array(input.shape.dropFirst()))])
        lastInput = input
        lastOutput = output
        return output
    }

    // (N, prod(...)) -> (N, ...)
    public func backward(_ gradOutput: Tensor) throws -> Tensor {
        guard let inputShape else { throw missingForward("Flatten") }
        let flat = [inputShape[0], try Shape.elementCount(Array(inputShape.dropFirst()))]
        try Shape.expect(gradOutput.shape, equals: flat, "Flatten gradOutput")
        if let lastGradOutput, lastGradOutput === gradOutput, let lastGradInput, lastGradInput.shape == inputShape {
            return lastGradInput
        }
        let gradInput = try gradOutput.reshaped(inputShape)
        lastGradOutput = gradOutput
        lastGradInput = gradInput
        return gradInput
    }
}

/// Views each sample with another shape, e.g. a decoder's (N, 6272) as (N, 128, 7, 7)
/// (`x.view(-1, 128, 7, 7)`), sharing storage.
public final class Reshape: Layer {
    /// The per-sample shape, without the batch dimension.
    public let sampleShape: [Int]
    private var inputShape: [Int]?
    private var lastInput: Tensor?
    private var lastOutput: Tensor?
    private var lastGradOutput: Tensor?
    private var lastGradInput: Tensor?

    public init(_ sampleShape: [Int]) throws {
        _ = try Shape.elementCount(sampleShape)
        self.sampleShape = sampleShape
    }

    // (N, ...) -> (N, sampleShape...)
    public func forward(_ input: Tensor, training: Bool) throws -> Tensor {
        guard let batch = input.shape.first,
              try Shape.elementCount(Array(input.shape.dropFirst())) == Shape.elementCount(sampleShape) else {
            throw LatentError.shape("Reshape to (N, \(sampleShape.map(String.init).joined(separator: ", "))) cannot take input \(Shape.describe(input.shape))")
        }
        inputShape = input.shape
        if let lastInput, lastInput === input, let lastOutput { return lastOutput }
        let output = try input.reshaped([batch] + sampleShape)
        lastInput = input
        lastOutput = output
        return output
    }

    // (N, sampleShape...) -> (N, ...)
    public func backward(_ gradOutput: Tensor) throws -> Tensor {
        guard let inputShape else { throw missingForward("Reshape") }
        try Shape.expect(gradOutput.shape, equals: [inputShape[0]] + sampleShape, "Reshape gradOutput")
        if let lastGradOutput, lastGradOutput === gradOutput, let lastGradInput, lastGradInput.shape == inputShape {
            return lastGradInput
        }
        let gradInput = try gradOutput.reshaped(inputShape)
        lastGradOutput = gradOutput
        lastGradInput = gradInput
        return gradInput
    }
}

/// Sizes of (N, C, rest...) tensors joined or cut along dimension 1: each sample is a
/// contiguous run of `C * inner` floats, so concatenation is one strided block copy per part.
private func channelLayout(_ shape: [Int], _ what: String) throws -> (batch: Int, channels: Int, rest: [Int], inner: Int) {
    guard shape.count >= 2 else {
        throw LatentError.shape("\(what) needs tensors of shape (N, C, ...), got \(Shape.describe(shape))")
    }
    let rest = Array(shape.dropFirst(2))
    return (shape[0], shape[1], rest, try Shape.elementCount(rest))
}

/// `torch.cat(inputs, dim=1)`: a conditional VAE's image features and one-hot label.
public final class Concat: Module {
    private var inputShapes: [[Int]] = []
    private var output = TensorSlot()
    private var gradInputs: [TensorSlot] = []

    public init() {}

    // [(N, C_i, ...)] -> (N, sum C_i, ...)
    public func forward(_ inputs: [Tensor]) throws -> Tensor {
        guard let first = inputs.first else { throw LatentError.invalidArgument("Concat needs at least one input") }
        let backend = first.backend
        let (batch, _, rest, inner) = try channelLayout(first.shape, "Concat")
        var total = 0
        for input in inputs {
            let layout = try channelLayout(input.shape, "Concat")
            guard layout.batch == batch, layout.rest == rest else {
                throw LatentError.shape("Concat along dim 1 needs equal other dimensions, got \(inputs.map { Shape.describe($0.shape) }.joined(separator: " and "))")
            }
            try checkSameBackend(input, backend, "Concat input")
            total += layout.channels
        }
        let output = try output.tensor([batch, total] + rest, on: backend)
        let rowLength = total * inner
        var offset = 0
        for input in inputs where input.count > 0 {
            let blockLength = input.shape[1] * inner
            try backend.copyBlocks(input.view, sourceStride: blockLength,
                                   to: try output.view.slice(offset, count: output.count - offset),
                                   destinationStride: rowLength, blockLength: blockLength, blockCount: batch)
            offset += blockLength
        }
        inputShapes = inputs.map(\.shape)
        return output
    }

    // (N, sum C_i, ...) -> [(N, C_i, ...)]
    public func backward(_ gradOutput: Tensor) throws -> [Tensor] {
        guard !inputShapes.isEmpty else { throw missingForward("Concat") }
        let (batch, _, rest, inner) = try channelLayout(inputShapes[0], "Concat")
        let total = inputShapes.reduce(0) { $0 + $1[1] }
        try Shape.expect(gradOutput.shape, equals: [batch, total] + rest, "Concat gradOutput")
        let backend = gradOutput.backend
        if gradInputs.count != inputShapes.count {
            gradInputs = Array(repeating: TensorSlot(), count: inputShapes.count)
        }
        var results: [Tensor] = []
        var offset = 0
        for index in inputShapes.indices {
            let gradInput = try gradInputs[index].tensor(inputShapes[index], on: backend)
            let blockLength = inputShapes[index][1] * inner
            if gradInput.count > 0 {
                try backend.copyBlocks(try gradOutput.view.slice(offset, count: gradOutput.count - offset),
                                       sourceStride: total * inner, to: gradInput.view, destinationStride: blockLength,
                                       blockLength: blockLength, blockCount: batch)
            }
            offset += blockLength
            results.append(gradInput)
        }
        return results
    }
}

/// `torch.split(input, sizes, dim=1)`, with copies so that each part is contiguous.
public final class Split: Module {
    public let sizes: [Int]
    private var inputShape: [Int]?
    private var outputs: [TensorSlot]
    private var gradInput = TensorSlot()

    public init(_ sizes: [Int]) throws {
        guard !sizes.isEmpty, sizes.allSatisfy({ $0 >= 0 }) else {
            throw LatentError.invalidArgument("Split needs one or more sizes >= 0, got \(sizes)")
        }
        self.sizes = sizes
        outputs = Array(repeating: TensorSlot(), count: sizes.count)
    }

    // (N, sum sizes, ...) -> [(N, sizes[i], ...)]
    public func forward(_ input: Tensor) throws -> [Tensor] {
        let (batch, channels, rest, inner) = try channelLayout(input.shape, "Split")
        let total = sizes.reduce(0, +)
        guard channels == total else {
            throw LatentError.shape("Split into \(sizes) along dim 1 needs \(total) channels, got \(Shape.describe(input.shape))")
        }
        let backend = input.backend
        var results: [Tensor] = []
        var offset = 0
        for (index, size) in sizes.enumerated() {
            let part = try outputs[index].tensor([batch, size] + rest, on: backend)
            let blockLength = size * inner
            if part.count > 0 {
                try backend.copyBlocks(try input.view.slice(offset, count: input.count - offset), sourceStride: total * inner,
                                       to: part.view, destinationStride: blockLength,
                                       blockLength: blockLength, blockCount: batch)
            }
            offset += blockLength
            results.append(part)
        }
        inputShape = input.shape
        return results
    }

    // [(N, sizes[i], ...)] -> (N, sum sizes, ...); a nil part contributes zeros
    public func backward(_ gradOutputs: [Tensor?]) throws -> Tensor {
        guard let inputShape else { throw missingForward("Split") }
        guard gradOutputs.count == sizes.count else {
            throw LatentError.invalidArgument("Split backward needs \(sizes.count) gradients, got \(gradOutputs.count)")
        }
        guard let backend = gradOutputs.lazy.compactMap({ $0 }).first?.backend else {
            throw LatentError.invalidArgument("Split backward needs at least one gradient")
        }
        let (batch, total, rest, inner) = try channelLayout(inputShape, "Split")
        let gradInput = try gradInput.tensor(inputShape, on: backend)
        if gradOutputs.contains(where: { $0 == nil }) {
            try backend.fill(gradInput.view, value: 0)
        }
        var offset = 0
        for (index, size) in sizes.enumerated() {
            let blockLength = size * inner
            if let gradOutput = gradOutputs[index] {
                try Shape.expect(gradOutput.shape, equals: [batch, size] + rest, "Split gradOutput \(index)")
                try checkSameBackend(gradOutput, backend, "Split gradOutput")
                if gradOutput.count > 0 {
                    try backend.copyBlocks(gradOutput.view, sourceStride: blockLength,
                                           to: try gradInput.view.slice(offset, count: gradInput.count - offset),
                                           destinationStride: total * inner, blockLength: blockLength, blockCount: batch)
                }
            }
            offset += blockLength
        }
        return gradInput
    }
}
