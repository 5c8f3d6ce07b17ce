/// Sizes of one 2-D convolution, in the convolution's own direction: `input` is what
/// `conv2dForward` reads and `output` what it writes. A transposed convolution uses the
/// same geometry the other way round (its input is this `output`), which is why one
/// pair of kernels serves both.
public struct ConvGeometry: Sendable, Hashable, CustomStringConvertible {
    public var batch: Int
    public var inChannels: Int
    public var inHeight: Int
    public var inWidth: Int
    public var outChannels: Int
    public var kernelHeight: Int
    public var kernelWidth: Int
    public var strideHeight: Int
    public var strideWidth: Int
    public var padHeight: Int
    public var padWidth: Int
    public var outHeight: Int
    public var outWidth: Int

    /// Geometry of `Conv2d(inChannels, outChannels, kernel, stride, padding)` applied to
    /// an `(batch, inChannels, height, width)` input; output sizes as PyTorch computes them.
    public init(batch: Int, inChannels: Int, height: Int, width: Int, outChannels: Int,
                kernel: Int, stride: Int = 1, padding: Int = 0) throws {
        try self.init(batch: batch, inChannels: inChannels, height: height, width: width,
                      outChannels: outChannels, kernelHeight: kernel, kernelWidth: kernel,
                      strideHeight: stride, strideWidth: stride, padHeight: padding, padWidth: padding)
    }

    public init(batch: Int, inChannels: Int, height: Int, width: Int, outChannels: Int,
                kernelHeight: Int, kernelWidth: Int, strideHeight: Int, strideWidth: Int,
                padHeight: Int, padWidth: Int) throws {
        guard batch > 0, inChannels > 0, height > 0, width > 0, outChannels > 0 else {
            throw LatentError.shape("convolution needs positive sizes, got batch \(batch), channels \(inChannels)->\(outChannels), input \(height)x\(width)")
        }
        guard kernelHeight > 0, kernelWidth > 0, strideHeight > 0, strideWidth > 0, padHeight >= 0, padWidth >= 0 else {
            throw LatentError.invalidArgument("convolution needs kernel and stride >= 1 and padding >= 0")
        }
        let outHeight = (height + 2 * padHeight - kernelHeight) / strideHeight + 1
        let outWidth = (width + 2 * padWidth - kernelWidth) / strideWidth + 1
        guard height + 2 * padHeight >= kernelHeight, width + 2 * padWidth >= kernelWidth, outHeight > 0, outWidth > 0 else {
            throw LatentError.shape("kernel \(kernelHeight)x\(kernelWidth) does not fit input \(height)x\(width) with padding \(padHeight)")
        }
        self.batch = batch
        self.inChannels = inChannels
        self.inHeight = height
        self.inWidth = width
        self.outChannels = outChannels
        self.kernelHeight = kernelHeight
        self.kernelWidth = kernelWidth
        self.strideHeight = strideHeight
        self.strideWidth = strideWidth
        self.padHeight = padHeight
        self.padWidth = padWidth
        self.outHeight = outHeight
        self.outWidth = outWidth
    }

    /// Geometry for `ConvTranspose2d(inChannels, outChannels, kernel, stride, padding,
    /// outputPadding)` on an `(batch, inChannels, height, width)` input. The returned
    /// geometry describes the *forward convolution* whose backward-data is this
    /// transposed convolution: its `input` is the transposed output,
    /// `(H - 1) * stride - 2 * padding + kernel + outputPadding` on a side.
    public static func transposed(batch: Int, inChannels: Int, height: Int, width: Int, outChannels: Int,
                                  kernel: Int, stride: Int = 1, padding: Int = 0, outputPadding: Int = 0) throws -> ConvGeometry {
        guard outputPadding >= 0, outputPadding < max(stride, 1) else {
            throw LatentError.invalidArgument("output_padding \(outputPadding) must be smaller than stride \(stride)")
        }
        let outH = (height - 1) * stride - 2 * padding + kernel + outputPadding
        let outW = (width - 1) * stride - 2 * padding + kernel + outputPadding
        guard outH > 0, outW > 0 else {
            throw LatentError.shape("transposed convolution of \(height)x\(width) with kernel \(kernel), stride \(stride), padding \(padding) has no output")
        }
        let geometry = try ConvGeometry(batch: batch, inChannels: outChannels, height: outH, width: outW,
                                        outChannels: inChannels, kernel: kernel, stride: stride, padding: padding)
        guard geometry.outHeight == height, geometry.outWidth == width else {
            throw LatentError.shape("transposed convolution sizes do not round-trip: \(height)x\(width) -> \(outH)x\(outW)")
        }
        return geometry
    }

    public var inputCount: Int { batch * inChannels * inHeight * inWidth }
    public var outputCount: Int { batch * outChannels * outHeight * outWidth }
    public var weightCount: Int { outChannels * inChannels * kernelHeight * kernelWidth }
    /// Multiply-adds of the forward pass; each of the three passes costs the same.
    public var multiplyAdds: Int { batch * outChannels * outHeight * outWidth * inChannels * kernelHeight * kernelWidth }

    public var description: String {
        "conv \(batch)x\(inChannels)x\(inHeight)x\(inWidth) -> \(outChannels)x\(outHeight)x\(outWidth), k\(kernelHeight)x\(kernelWidth) s\(strideHeight) p\(padHeight)"
    }
}
