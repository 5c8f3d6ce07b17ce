import XCTest
import LatentData

/// A PNG reader just large enough to check the writer: 8-bit gray or RGB, no interlace,
/// all five filter types, every chunk CRC verified. Inflation goes through the same zlib.
struct DecodedPNG: Equatable {
    var width: Int
    var height: Int
    var channels: Int
    var pixels: [UInt8]
}

enum PNGDecodeError: Error { case malformed(String) }

func decodePNG(_ bytes: [UInt8]) throws -> DecodedPNG {
    func fail(_ why: String) -> PNGDecodeError { .malformed(why) }
    func bigEndian(_ offset: Int) -> Int { bytes[offset..<(offset + 4)].reduce(0) { $0 << 8 | Int($1) } }
    guard bytes.starts(with: [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]) else { throw fail("signature") }
    var offset = 8
    var header: [UInt8] = [], compressed: [UInt8] = [], sawEnd = false
    while offset + 12 <= bytes.count {
        let length = bigEndian(offset)
        let type = String(decoding: bytes[(offset + 4)..<(offset + 8)], as: UTF8.self)
        guard offset + 12 + length <= bytes.count else { throw fail("chunk \(type) runs past the end") }
        let typeAndData = Array(bytes[(offset + 4)..<(offset + 8 + length)])
        let storedCRC = UInt32(bigEndian(offset + 8 + length))
        guard typeAndData.withUnsafeBytes({ Zlib.crc32($0) }) == storedCRC else { throw fail("CRC of \(type)") }
        let data = Array(typeAndData.dropFirst(4))
        switch type {
        case "IHDR": header = data
        case "IDAT": compressed += data
        case "IEND": sawEnd = true
        default: break
        }
        offset += 12 + length
    }
    guard sawEnd, offset == bytes.count, header.count == 13 else { throw fail("structure") }
    let width = header[0..<4].reduce(0) { $0 << 8 | Int($1) }
    let height = header[4..<8].reduce(0) { $0 << 8 | Int($1) }
    guard header[8] == 8, header[10] == 0, header[11] == 0, header[12] == 0 else { throw fail("unsupported header") }
    let channels: Int
    switch header[9] {
    case 0: channels = 1
    case 2: channels = 3
    default: throw fail("colour type \(header[9])")
    }
    let stride = width * channels
    let raw = try Zlib.decompress(compressed, maximumOutputBytes: (stride + 1) * height)
    guard raw.count == (stride + 1) * height else { throw fail("image data size") }
    var pixels = [UInt8](repeating: 0, count: stride * height)
    for y in 0..<height {
        let filter = raw[y * (stride + 1)]
        for i in 0..<stride {
            let value = raw[y * (stride + 1) + 1 + i]
            let left = i >= channels ? pixels[y * stride + i - channels] : 0
            let up = y > 0 ? pixels[(y - 1) * stride + i] : 0
            let upperLeft = (i >= channels && y > 0) ? pixels[(y - 1) * stride + i - channels] : 0
            let predicted: UInt8
            switch filter {
            case 0: predicted = 0
            case 1: predicted = left
            case 2: predicted = up
            case 3: predicted = UInt8((Int(left) + Int(up)) / 2)
            case 4:
                let estimate = Int(left) + Int(up) - Int(upperLeft)
                let (a, b, c) = (abs(estimate - Int(left)), abs(estimate - Int(up)), abs(estimate - Int(upperLeft)))
                predicted = (a <= b && a <= c) ? left : (b <= c ? up : upperLeft)
            default: throw fail("filter \(filter)")
            }
            pixels[y * stride + i] = value &+ predicted
        }
    }
    return DecodedPNG(width: width, height: height, channels: channels, pixels: pixels)
}

final class PNGTests: XCTestCase {
    func testGrayAndRGBRoundTrip() throws {
        var generator = SplitMix64(seed: 3)
        // Noise, gradients and flat areas, so that the writer picks different row filters.
        for format in [RasterImage.Format.gray, .rgb] {
            let width = 37, height = 23
            var pixels: [UInt8] = []
            for y in 0..<height {
                for x in 0..<width {
                    for channel in 0..<format.channels {
                        switch y % 3 {
                        case 0: pixels.append(UInt8(truncatingIfNeeded: generator.next()))
                        case 1: pixels.append(UInt8(truncatingIfNeeded: x * 7 + y * 3 + channel * 50))
                        default: pixels.append(200)
                        }
                    }
                }
            }
            let image = RasterImage(width: width, height: height, format: format, pixels: pixels)
            for level in [0, 6, 9] {
                let decoded = try decodePNG(image.pngData(compressionLevel: level))
                XCTAssertEqual(decoded, DecodedPNG(width: width, height: height, channels: format.channels, pixels: pixels))
            }
        }
    }

    func testWritePNGFile() throws {
        let path = try makeTemporaryDirectory(self) + "/gray.png"
        let image = RasterImage(width: 3, height: 2, format: .gray, pixels: [0, 128, 255, 10, 20, 30])
        try image.writePNG(to: path)
        let bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: path)))
        XCTAssertEqual(try decodePNG(bytes).pixels, image.pixels)
        assertDataError(try image.writePNG(to: path + "/no/such/folder.png"), contains: ["folder.png", "cannot write"])
    }

    func testGridLayoutMatchesTorchvision() throws {
        // 10 images of 2x3, 4 per row, padding 2: torchvision's make_grid gives
        // 3 rows: height 3 * (2 + 2) + 2 = 14, width 4 * (3 + 2) + 2 = 22.
        let images = (0..<10).flatMap { index in [Float](repeating: Float(index + 1) / 10, count: 6) }
        let grid = ImageGrid.make(images: images, height: 2, width: 3, columns: 4, padding: 2, padValue: 0.5)
        XCTAssertEqual(grid.width, 22)
        XCTAssertEqual(grid.height, 14)
        XCTAssertEqual(grid.format, .gray)
        XCTAssertEqual(grid.pixels[0], 128, "padding uses padValue")
        // Image 5 (value 0.6) is row 1, column 1: top-left pixel at (2 + 5, 2 + 4).
        XCTAssertEqual(grid.pixels[6 * 22 + 7], 153)
        // The unused cells of the last row stay padding.
        XCTAssertEqual(grid.pixels[10 * 22 + 19], 128)
        let decoded = try decodePNG(grid.pngData())
        XCTAssertEqual(decoded.pixels, grid.pixels)

        let single = ImageGrid.make(images: [Float](repeating: 1, count: 4), height: 2, width: 2, columns: 8, padding: 0)
        XCTAssertEqual([single.width, single.height], [2, 2], "fewer images than columns: one row, no empty cells")
    }

    func testGridClampsAndUpscales() {
        let values: [Float] = [-0.5, 0.5, 2, .nan]
        let grid = ImageGrid.make(images: values, height: 2, width: 2, columns: 1, padding: 1, scale: 3)
        XCTAssertEqual([grid.width, grid.height], [12, 12])
        let row = 3 * 1   // first image row after the (scaled) padding
        XCTAssertEqual(Array(grid.pixels[(row * 12)..<(row * 12 + 12)]), [0, 0, 0, 0, 0, 0, 128, 128, 128, 0, 0, 0])
        let secondRow = 3 * 2
        XCTAssertEqual(Array(grid.pixels[(secondRow * 12 + 3)..<(secondRow * 12 + 9)]), [255, 255, 255, 0, 0, 0])
    }

    func testRGBGrid() throws {
        // One 1x2 RGB image in NCHW: red plane, green plane, blue plane.
        let grid = ImageGrid.make(images: [1, 0, 0, 1, 0, 0], channels: 3, height: 1, width: 2, padding: 0)
        XCTAssertEqual(grid.format, .rgb)
        XCTAssertEqual(grid.pixels, [255, 0, 0, 0, 255, 0])
    }
}
