import LatentCore

/// PyTorch's default initialisation of linear and convolution layers:
/// `kaiming_uniform_(a = sqrt(5))` for the weight, which works out to
/// U(-1/sqrt(fan_in), 1/sqrt(fan_in)), and the same bound for the bias. Matching the
/// distribution (not the numbers: the generators differ) keeps the reports' training
/// curves comparable.
public enum Initialization {
    /// `fan_in` as `torch.nn.init._calculate_fan_in_and_fan_out` computes it:
    /// `weight.size(1)` times the receptive field (the product of the dimensions after
    /// the second). A transposed convolution's weight is (Cin, Cout, kH, kW), so its
    /// fan_in is `Cout * kH * kW`.
    public static func fanIn(weightShape shape: [Int]) throws -> Int {
        guard shape.count >= 2 else {
            throw LatentError.shape("fan_in needs a weight of at least 2 dimensions, got \(Shape.describe(shape))")
        }
        return try Shape.elementCount(Array(shape[1...]))
    }

    /// Fills `weight` and `bias` from `random`, weight first.
    public static func defaultLinear(weight: Tensor, bias: Tensor?, random: RandomSource) throws {
        let fanIn = try fanIn(weightShape: weight.shape)
        let bound: Float = fanIn > 0 ? 1 / Float(fanIn).squareRoot() : 0
        try random.fillUniform(weight, low: -bound, high: bound)
        if let bias {
            try random.fillUniform(bias, low: -bound, high: bound)
        }
    }
}
