/// The batch-inner ("CHWN") layout both backends' batch-inner convolutions use: images
/// transposed so that the images at one position are consecutive floats, zero-padded, the
/// batch rounded up to 16 lanes:
///
///     element (c, h, w, n) at ((c * Hp + h + padTop) * Wp + w + padLeft) * lanes + n
///
/// One description of it, so that the CPU loops and the OpenCL kernels (`bi_*` in conv.cl)
/// agree on every offset and padding.
public struct BatchInnerLayout: Sendable, Equatable {
    public let channels: Int
    public let height: Int
    public let width: Int
    public let padTop: Int
    public let padLeft: Int
    public let padBottom: Int
    public let padRight: Int
    public let batch: Int
    /// The batch rounded up to a multiple of 16; lanes past `batch` hold zeros.
    public let lanes: Int
    public let paddedHeight: Int
    public let paddedWidth: Int
    public let rowStride: Int
    public let channelStride: Int
    public let count: Int

    public init(channels: Int, height: Int, width: Int, batch: Int,
                padTop: Int = 0, padLeft: Int = 0, padBottom: Int = 0, padRight: Int = 0) {
        self.channels = channels
        self.height = height
        self.width = width
        self.padTop = padTop
        self.padLeft = padLeft
        self.padBottom = padBottom
        self.padRight = padRight
        self.batch = batch
        lanes = (batch + 15) / 16 * 16
        paddedHeight = height + padTop + padBottom
        paddedWidth = width + padLeft + padRight
        rowStride = paddedWidth * lanes
        channelStride = paddedHeight * rowStride
        count = channels * channelStride
    }

    /// Offset of (c, h, w, image 0); h and w are unpadded coordinates and may reach into the padding.
    @inlinable @inline(__always)
    public func offset(_ c: Int, _ h: Int, _ w: Int) -> Int {
        c * channelStride + (h + padTop) * rowStride + (w + padLeft) * lanes
    }

    /// The input of a forward convolution (and of backward-weights), padded so that every
    /// tap of every output position lands inside it.
    public static func forwardInput(_ g: ConvGeometry) -> BatchInnerLayout {
        let lastRow = (g.outHeight - 1) * g.strideHeight - g.padHeight + g.kernelHeight - 1
        let lastColumn = (g.outWidth - 1) * g.strideWidth - g.padWidth + g.kernelWidth - 1
        return BatchInnerLayout(channels: g.inChannels, height: g.inHeight, width: g.inWidth, batch: g.batch,
                                padTop: g.padHeight, padLeft: g.padWidth,
                                padBottom: Swift.max(0, lastRow - (g.inHeight - 1)),
                                padRight: Swift.max(0, lastColumn - (g.inWidth - 1)))
    }

    /// The output of a forward convolution (the gradient of backward-weights), unpadded.
    public static func output(_ g: ConvGeometry) -> BatchInnerLayout {
        BatchInnerLayout(channels: g.outChannels, height: g.outHeight, width: g.outWidth, batch: g.batch)
    }

    /// The input gradient of backward-data, unpadded.
    public static func input(_ g: ConvGeometry) -> BatchInnerLayout {
        BatchInnerLayout(channels: g.inChannels, height: g.inHeight, width: g.inWidth, batch: g.batch)
    }

    /// Taps per stride phase of backward-data: an input row (ih + pad) % stride == a receives
    /// kernel rows ki = a + stride * t, t < taps.
    public static func phaseTaps(_ g: ConvGeometry) -> (high: Int, wide: Int) {
        ((g.kernelHeight + g.strideHeight - 1) / g.strideHeight, (g.kernelWidth + g.strideWidth - 1) / g.strideWidth)
    }

    /// The output gradient of backward-data, padded so that each stride phase is a stride-1
    /// convolution reading output row (ih + pad) / stride - t for every tap t.
    public static func backwardDataGradient(_ g: ConvGeometry) -> BatchInnerLayout {
        let taps = phaseTaps(g)
        let lastRow = (g.inHeight - 1 + g.padHeight) / g.strideHeight
        let lastColumn = (g.inWidth - 1 + g.padWidth) / g.strideWidth
        return BatchInnerLayout(channels: g.outChannels, height: g.outHeight, width: g.outWidth, batch: g.batch,
                                padTop: taps.high - 1, padLeft: taps.wide - 1,
                                padBottom: Swift.max(0, lastRow - (g.outHeight - 1)),
                                padRight: Swift.max(0, lastColumn - (g.outWidth - 1)))
    }
}
