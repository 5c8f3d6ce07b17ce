import LatentCore

/// Inverted dropout (`torch.nn.Dropout(p)`): in training each element is zeroed with
/// probability `p` and the survivors scaled by 1/(1 - p); in evaluation it is the
/// identity. The mask comes from the model's Philox stream, so a seed fixes it on every
/// backend.
public final class Dropout: Layer {
    public let probability: Float
    public let random: RandomSource

    private var passedThrough = true
    private var inputShape: [Int]?
    private var output = TensorSlot()
    private var mask = TensorSlot()
    private var gradInput = TensorSlot()

    /// `p` must lie in [0, 1): p = 1 would scale by 1/0.
    public init(_ probability: Float = 0.5, random: RandomSource) throws {
        guard probability >= 0, probability < 1 else {
            throw LatentError.invalidArgument("dropout probability must be in [0, 1), got \(probability)")
        }
        self.probability = probability
        self.random = random
    }

    // (N, ...) -> (N, ...)
    public func forward(_ input: Tensor, training: Bool) throws -> Tensor {
        inputShape = input.shape
        guard training, probability > 0 else {
            passedThrough = true
            return input
        }
        passedThrough = false
        let backend = input.backend
        let output = try output.tensor(input.shape, on: backend)
        let mask = try mask.tensor(input.shape, on: backend)
        let (seed, counter) = random.reserve(input.count)
        try backend.dropoutForward(input: input.view, output: output.view, mask: mask.view,
                                   probability: probability, seed: seed, counter: counter)
        return output
    }

    // (N, ...) -> (N, ...): gradInput = gradOutput * mask
    public func backward(_ gradOutput: Tensor) throws -> Tensor {
        guard let inputShape else { throw missingForward("Dropout") }
        try Shape.expect(gradOutput.shape, equals: inputShape, "Dropout gradOutput")
        if passedThrough { return gradOutput }
        let backend = gradOutput.backend
        let mask = try mask.tensor(inputShape, on: backend)
        let gradInput = try gradInput.tensor(inputShape, on: backend)
        try backend.multiply(gradOutput.view, mask.view, output: gradInput.view)
        return gradInput
    }
}
