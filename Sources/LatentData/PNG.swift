/// An 8-bit image in memory, grayscale or RGB, that can be saved as PNG.
public struct RasterImage: Sendable, Equatable {
    public enum Format: Sendable, Equatable {
        case gray
        case rgb

        public var channels: Int { self == .gray ? 1 : 3 }
    }

    public let width: Int
    public let height: Int
    public let format: Format
    /// Row-major samples, `channels` per pixel (RGB interleaved).
    public var pixels: [UInt8]

    /// - Precondition: `pixels.count == width * height * format.channels`.
    public init(width: Int, height: Int, format: Format, pixels: [UInt8]) {
        precondition(width > 0 && height > 0, "an image needs at least one pixel")
        precondition(pixels.count == width * height * format.channels, "pixel count does not match the size")
        self.width = width
        self.height = height
        self.format = format
        self.pixels = pixels
    }

    /// An image filled with one value per channel (`[v]` for gray, `[r, g, b]` for RGB).
    public init(width: Int, height: Int, format: Format, fill: [UInt8]) {
        precondition(fill.count == format.channels, "fill needs one value per channel")
        var pixels = [UInt8]()
        pixels.reserveCapacity(width * height * format.channels)
        for _ in 0..<(width * height) { pixels += fill }
        self.init(width: width, height: height, format: format, pixels: pixels)
    }

    /// Each pixel repeated `factor` times across and down (nearest neighbour), for small
    /// images that would otherwise be hard to see.
    public func upscaled(by factor: Int) -> RasterImage {
        precondition(factor >= 1, "scale factor must be at least 1")
        guard factor > 1 else { return self }
        let channels = format.channels
        let newWidth = width * factor
        var out = [UInt8](repeating: 0, count: newWidth * height * factor * channels)
        for y in 0..<height {
            let sourceRow = y * width * channels
            for x in 0..<width {
                for c in 0..<channels {
                    let value = pixels[sourceRow + x * channels + c]
                    for dx in 0..<factor { out[((y * factor) * newWidth + x * factor + dx) * channels + c] = value }
                }
            }
            let firstRow = (y * factor) * newWidth * channels
            for dy in 1..<factor {
                let target = (y * factor + dy) * newWidth * channels
                out.replaceSubrange(target..<(target + newWidth * channels),
                                    with: out[firstRow..<(firstRow + newWidth * channels)])
            }
        }
        return RasterImage(width: newWidth, height: height * factor, format: format, pixels: out)
    }

    /// The PNG file image: 8-bit grayscale (colour type 0) or RGB (colour type 2), each row
    /// filtered by libpng's heuristic (the filter with the smallest sum of absolute values),
    /// deflated by zlib.
    public func pngData(compressionLevel: Int = 6) -> [UInt8] {
        var header: [UInt8] = []
        header.appendBigEndian(UInt32(width))
        header.appendBigEndian(UInt32(height))
        header += [8, format == .gray ? 0 : 2, 0, 0, 0]

        var png: [UInt8] = [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]
        png.appendChunk("IHDR", header)
        png.appendChunk("IDAT", Zlib.compress(filteredRows(), level: compressionLevel))
        png.appendChunk("IEND", [])
        return png
    }

    /// Writes the PNG to `path` (temporary file, then rename).
    public func writePNG(to path: String) throws {
        try writeAtomically(pngData(), to: path)
    }

    private func filteredRows() -> [UInt8] {
        let channels = format.channels
        let stride = width * channels
        var out = [UInt8]()
        out.reserveCapacity((stride + 1) * height)
        var candidates = [[UInt8]](repeating: [UInt8](repeating: 0, count: stride), count: 5)
        // A row of zeros on top: the first row's "row above", as the specification defines it.
        let padded = [UInt8](repeating: 0, count: stride) + pixels
        padded.withUnsafeBufferPointer { all in
            for y in 0..<height {
                let row = UnsafeBufferPointer(rebasing: all[((y + 1) * stride)..<((y + 2) * stride)])
                let above = UnsafeBufferPointer(rebasing: all[(y * stride)..<((y + 1) * stride)])
                var bestFilter = 0
                var bestCost = Int.max
                for filter in 0..<5 {
                    var cost = 0
                    for i in 0..<stride {
                        let left = i >= channels ? row[i - channels] : 0
                        let up = above[i]
                        let upperLeft = i >= channels ? above[i - channels] : 0
                        let predicted: UInt8
                        switch filter {
                        case 0: predicted = 0
                        case 1: predicted = left
                        case 2: predicted = up
                        case 3: predicted = UInt8((Int(left) + Int(up)) / 2)
                        default: predicted = paeth(left, up, upperLeft)
                        }
                        let value = row[i] &- predicted
                        candidates[filter][i] = value
                        cost += Int(Int8(bitPattern: value).magnitude)
                    }
                    if cost < bestCost {
                        bestCost = cost
                        bestFilter = filter
                    }
                }
                out.append(UInt8(bestFilter))
                out += candidates[bestFilter]
            }
        }
        return out
    }
}

/// The Paeth predictor of the PNG specification: whichever neighbour is closest to
/// left + up - upperLeft.
@inline(__always)
func paeth(_ left: UInt8, _ up: UInt8, _ upperLeft: UInt8) -> UInt8 {
    let estimate = Int(left) + Int(up) - Int(upperLeft)
    let distanceLeft = abs(estimate - Int(left))
    let distanceUp = abs(estimate - Int(up))
    let distanceUpperLeft = abs(estimate - Int(upperLeft))
    if distanceLeft <= distanceUp && distanceLeft <= distanceUpperLeft { return left }
    return distanceUp <= distanceUpperLeft ? up : upperLeft
}

extension Array where Element == UInt8 {
    mutating func appendBigEndian(_ value: UInt32) {
        append(contentsOf: [UInt8(value >> 24), UInt8((value >> 16) & 0xff), UInt8((value >> 8) & 0xff), UInt8(value & 0xff)])
    }

    /// A PNG chunk: length, type, data, CRC-32 over type and data.
    mutating func appendChunk(_ type: String, _ data: [UInt8]) {
        appendBigEndian(UInt32(data.count))
        let typeAndData = Array(type.utf8) + data
        append(contentsOf: typeAndData)
        appendBigEndian(typeAndData.withUnsafeBytes { Zlib.crc32($0) })
    }
}

/// Sample grids like `torchvision.utils.save_image`: images side by side, `columns` per row,
/// `padding` pixels of `padValue` around and between them.
public enum ImageGrid {
    /// Lays out `count` images of `channels x height x width` floats (NCHW, values in [0, 1],
    /// clamped; NaN shows as 0) into one picture, then enlarges it `scale` times.
    /// One channel gives a grayscale image, three give RGB.
    public static func make(images: UnsafeBufferPointer<Float>, count: Int, channels: Int = 1,
                            height: Int, width: Int, columns: Int = 8, padding: Int = 2,
                            padValue: Float = 0, scale: Int = 1) -> RasterImage {
        precondition(count > 0, "a grid needs at least one image")
        precondition(channels == 1 || channels == 3, "1 or 3 channels")
        precondition(images.count >= count * channels * height * width, "not enough floats for \(count) images")
        precondition(columns > 0 && padding >= 0 && scale >= 1, "columns > 0, padding >= 0, scale >= 1")
        let across = min(columns, count)
        let down = (count + across - 1) / across
        let cellWidth = width + padding, cellHeight = height + padding
        let gridWidth = across * cellWidth + padding, gridHeight = down * cellHeight + padding
        let format: RasterImage.Format = channels == 1 ? .gray : .rgb
        var grid = RasterImage(width: gridWidth, height: gridHeight, format: format,
                               fill: [UInt8](repeating: byte(padValue), count: channels))
        let plane = height * width
        for index in 0..<count {
            let top = (index / across) * cellHeight + padding
            let left = (index % across) * cellWidth + padding
            let base = index * channels * plane
            for y in 0..<height {
                for x in 0..<width {
                    let target = ((top + y) * gridWidth + left + x) * channels
                    for c in 0..<channels {
                        grid.pixels[target + c] = byte(images[base + c * plane + y * width + x])
                    }
                }
            }
        }
        return grid.upscaled(by: scale)
    }

    /// Array form of ``make(images:count:channels:height:width:columns:padding:padValue:scale:)``;
    /// the count is `images.count / (channels * height * width)`.
    public static func make(images: [Float], channels: Int = 1, height: Int, width: Int,
                            columns: Int = 8, padding: Int = 2, padValue: Float = 0, scale: Int = 1) -> RasterImage {
        images.withUnsafeBufferPointer {
            make(images: $0, count: images.count / (channels * height * width), channels: channels,
                 height: height, width: width, columns: columns, padding: padding, padValue: padValue, scale: scale)
        }
    }

    /// torchvision's conversion: clamp to [0, 1], times 255, round half up.
    @inline(__always)
    static func byte(_ value: Float) -> UInt8 {
        guard value > 0 else { return 0 }   // also NaN
        return value >= 1 ? 255 : UInt8(value * 255 + 0.5)
    }
}
