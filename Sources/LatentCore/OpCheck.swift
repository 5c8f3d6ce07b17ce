/// The argument checks every backend's ops share, so that a wrong size is the same
/// `LatentError` on the CPU and on OpenCL and never an out-of-bounds access.
public enum OpCheck {
    public static func count(_ view: BufferView, _ expected: Int, _ name: String, _ op: String) throws {
        guard view.count == expected else {
            throw LatentError.shape("\(op): \(name) has \(view.count) floats, expected \(expected)")
        }
    }

    /// A one-float destination: every reduction's and loss's output.
    public static func scalarOutput(_ view: BufferView, _ op: String) throws {
        try count(view, 1, "output", op)
    }

    /// Every view holds as many floats as the first.
    public static func sameCount(_ op: String, _ views: (String, BufferView)...) throws {
        guard let first = views.first else { return }
        for (name, view) in views.dropFirst() where view.count != first.1.count {
            throw LatentError.shape("\(op): \(name) has \(view.count) floats but \(first.0) has \(first.1.count)")
        }
    }

    /// Sizes that must be positive, returning their product (overflow is an error).
    public static func product(_ op: String, _ sizes: (String, Int)...) throws -> Int {
        try product(op, sizes)
    }

    static func product(_ op: String, _ sizes: [(String, Int)]) throws -> Int {
        var total = 1
        for (name, size) in sizes {
            guard size > 0 else { throw LatentError.invalidArgument("\(op): \(name) must be positive, got \(size)") }
            let (next, overflow) = total.multipliedReportingOverflow(by: size)
            guard !overflow else { throw LatentError.invalidArgument("\(op): sizes overflow") }
            total = next
        }
        return total
    }

    /// A geometry whose fields were edited after `init` could describe an impossible
    /// convolution; recompute what `init` checks, and refuse sizes whose products overflow
    /// (including the im2col matrix, weight x output positions x batch).
    public static func geometry(_ g: ConvGeometry, _ op: String) throws {
        let checked = try ConvGeometry(batch: g.batch, inChannels: g.inChannels, height: g.inHeight, width: g.inWidth,
                                       outChannels: g.outChannels, kernelHeight: g.kernelHeight, kernelWidth: g.kernelWidth,
                                       strideHeight: g.strideHeight, strideWidth: g.strideWidth,
                                       padHeight: g.padHeight, padWidth: g.padWidth)
        guard checked == g else { throw LatentError.shape("\(op): inconsistent geometry \(g)") }
        _ = try product(op, [("input", g.batch), ("", g.inChannels), ("", g.inHeight), ("", g.inWidth)])
        _ = try product(op, [("output", g.batch), ("", g.outChannels), ("", g.outHeight), ("", g.outWidth)])
        _ = try product(op, [("weight", g.outChannels), ("", g.inChannels), ("", g.kernelHeight), ("", g.kernelWidth),
                             ("", g.outHeight), ("", g.outWidth), ("", g.batch)])
    }
}
