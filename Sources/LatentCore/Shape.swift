/// Helpers for NCHW shapes. Shapes come from users (options, checkpoints), so every
/// check throws instead of trapping.
public enum Shape {
    /// Number of elements, refusing negative dimensions and products that overflow `Int`.
    public static func elementCount(_ shape: [Int]) throws -> Int {
        var count = 1
        for dimension in shape {
            guard dimension >= 0 else { throw LatentError.shape("negative dimension in \(describe(shape))") }
            let (product, overflow) = count.multipliedReportingOverflow(by: dimension)
            guard !overflow else { throw LatentError.shape("shape \(describe(shape)) has too many elements") }
            count = product
        }
        return count
    }

    /// `[64, 1, 28, 28]` reads as `(64, 1, 28, 28)`, PyTorch's way of printing sizes.
    public static func describe(_ shape: [Int]) -> String {
        "(" + shape.map(String.init).joined(separator: ", ") + ")"
    }

    /// Throws unless `actual` equals `expected`; `what` names the tensor in the message.
    public static func expect(_ actual: [Int], equals expected: [Int], _ what: String) throws {
        guard actual == expected else {
            throw LatentError.shape("\(what) has shape \(describe(actual)), expected \(describe(expected))")
        }
    }
}
