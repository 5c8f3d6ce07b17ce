import Foundation
import XCTest
import LatentData

final class IDXTests: XCTestCase {
    func testRoundTripRawAndGzip() throws {
        let directory = try makeTemporaryDirectory(self)
        let (images, labels) = makeFixtureImages(count: 7, rows: 3, cols: 5)
        for gzip in [false, true] {
            let path = directory + "/images-\(gzip)"
            try IDXFile.write(images, to: path, gzip: gzip)
            XCTAssertEqual(try IDXFile.read(path), images)
            try IDXFile.write(labels, to: path + "-labels", gzip: gzip)
            XCTAssertEqual(try IDXFile.read(path + "-labels"), labels)
        }
        // Compression is recognised by content, not by name.
        let raw = try Data(contentsOf: URL(fileURLWithPath: directory + "/images-false"))
        XCTAssertEqual(Array(raw.prefix(4)), [0, 0, 8, 3])
        let gz = try Data(contentsOf: URL(fileURLWithPath: directory + "/images-true"))
        XCTAssertEqual(Array(gz.prefix(2)), [0x1f, 0x8b])
    }

    func testConcatenatedGzipMembersReadAsOneStream() throws {
        let directory = try makeTemporaryDirectory(self)
        let (images, _) = makeFixtureImages(count: 6)
        let encoded = IDXFile.encode(images)
        let half = encoded.count / 2
        let path = directory + "/two-members.gz"
        try writeBytes(Zlib.gzip(Array(encoded[..<half])) + Zlib.gzip(Array(encoded[half...])), to: path)
        XCTAssertEqual(try IDXFile.read(path), images)
    }

    func testBadMagic() throws {
        let path = try makeTemporaryDirectory(self) + "/bad-magic"
        try writeBytes([0x50, 0x4b, 0x03, 0x04] + [UInt8](repeating: 0, count: 64), to: path)
        assertDataError(try IDXFile.read(path), contains: [path, "bad magic number 0x504b0304", "not an IDX file"])
        try writeBytes(Zlib.gzip(Array("hello, this is text".utf8)), to: path + ".gz")
        assertDataError(try IDXFile.read(path + ".gz"), contains: [path + ".gz", "bad magic number"])
    }

    func testElementTypeOtherThanUnsignedByte() throws {
        let path = try makeTemporaryDirectory(self) + "/floats"
        try writeBytes(idxHeader(type: 0x0D, dimensions: [2, 2]) + [UInt8](repeating: 0, count: 16), to: path)
        assertDataError(try IDXFile.read(path), contains: [path, "float (0x0D)", "only unsigned byte"])
    }

    func testTruncatedData() throws {
        let directory = try makeTemporaryDirectory(self)
        let path = directory + "/truncated"
        try writeBytes(idxHeader(dimensions: [10, 4, 4]) + [UInt8](repeating: 7, count: 100), to: path)
        assertDataError(try IDXFile.read(path), contains: [path, "truncated", "160 bytes", "holds 100"])
        // Inside a gzip file the shortfall shows only while inflating.
        try writeBytes(Zlib.gzip(idxHeader(dimensions: [10, 4, 4]) + [UInt8](repeating: 7, count: 100)), to: path + ".gz")
        assertDataError(try IDXFile.read(path + ".gz"), contains: [path + ".gz", "truncated", "100 of the 160 bytes"])
        // A header cut short.
        try writeBytes([0, 0, 8, 3, 0, 0], to: path + "-header")
        assertDataError(try IDXFile.read(path + "-header"), contains: ["truncated", "header"])
        try writeBytes([], to: path + "-empty")
        assertDataError(try IDXFile.read(path + "-empty"), contains: [path + "-empty", "empty file"])
    }

    func testTrailingJunk() throws {
        let directory = try makeTemporaryDirectory(self)
        let contents = idxHeader(dimensions: [2, 2, 2]) + [UInt8](repeating: 1, count: 8) + [9, 9, 9]
        try writeBytes(contents, to: directory + "/junk")
        assertDataError(try IDXFile.read(directory + "/junk"), contains: ["junk", "trailing junk", "3 bytes"])
        try writeBytes(Zlib.gzip(contents), to: directory + "/junk.gz")
        assertDataError(try IDXFile.read(directory + "/junk.gz"), contains: ["junk.gz", "trailing junk", "3 bytes"])
        // Garbage after a complete gzip stream (not another member).
        let clean = Zlib.gzip(idxHeader(dimensions: [2, 2, 2]) + [UInt8](repeating: 1, count: 8))
        try writeBytes(clean + Array("GARBAGE".utf8), to: directory + "/after.gz")
        assertDataError(try IDXFile.read(directory + "/after.gz"),
                        contains: ["after.gz", "trailing junk", "after the end of the gzip stream"])
    }

    func testAbsurdDimensionsAreRefusedWithoutAllocating() throws {
        let directory = try makeTemporaryDirectory(self)
        // A 4-billion-image header on a 20-byte file: must not try to allocate 3 TB.
        try writeBytes(idxHeader(dimensions: [0xFFFF_FFFF, 28, 28]) + [1, 2, 3, 4], to: directory + "/huge")
        assertDataError(try IDXFile.read(directory + "/huge"), contains: ["huge", "absurd dimensions 4294967295 x 28 x 28"])
        try writeBytes(idxHeader(dimensions: [3, 0, 28]), to: directory + "/zero")
        assertDataError(try IDXFile.read(directory + "/zero"), contains: ["zero", "absurd dimensions 3 x 0 x 28"])
        try writeBytes(idxHeader(dimensions: [1, 100_000, 1]) + [UInt8](repeating: 0, count: 100_000), to: directory + "/wide")
        assertDataError(try IDXFile.read(directory + "/wide"), contains: ["absurd dimensions", "100000 exceeds"])
        try writeBytes([0, 0, 8, 9] + [UInt8](repeating: 1, count: 36), to: directory + "/rank")
        assertDataError(try IDXFile.read(directory + "/rank"), contains: ["absurd number of dimensions 9"])
        // Plausible sizes that a small gzip file cannot possibly hold: refused before inflating.
        try writeBytes(Zlib.gzip(idxHeader(dimensions: [60000, 100, 100])), to: directory + "/lying.gz")
        assertDataError(try IDXFile.read(directory + "/lying.gz"), contains: ["lying.gz", "truncated", "more than a"])
    }

    func testCorruptGzipStream() throws {
        let directory = try makeTemporaryDirectory(self)
        let (images, _) = makeFixtureImages(count: 200, rows: 8, cols: 8)
        var compressed = Zlib.gzip(IDXFile.encode(images))
        // Damage the deflate data in the middle.
        for offset in stride(from: compressed.count / 3, to: compressed.count / 3 + 24, by: 1) { compressed[offset] ^= 0x5A }
        try writeBytes(compressed, to: directory + "/corrupt.gz")
        assertDataError(try IDXFile.read(directory + "/corrupt.gz"), contains: ["corrupt.gz", "corrupt gzip stream"])

        // Intact deflate data with a wrong CRC in the trailer.
        var badChecksum = Zlib.gzip(IDXFile.encode(images))
        badChecksum[badChecksum.count - 8] ^= 0xFF
        try writeBytes(badChecksum, to: directory + "/crc.gz")
        assertDataError(try IDXFile.read(directory + "/crc.gz"), contains: ["crc.gz", "corrupt gzip stream", "check"])

        // The compressed file cut short.
        let whole = Zlib.gzip(IDXFile.encode(images))
        try writeBytes(Array(whole[..<(whole.count / 2)]), to: directory + "/cut.gz")
        assertDataError(try IDXFile.read(directory + "/cut.gz"), contains: ["cut.gz", "truncated"])
    }

    func testMissingFileAndDirectory() throws {
        let directory = try makeTemporaryDirectory(self)
        assertDataError(try IDXFile.read(directory + "/nope"), contains: [directory + "/nope", "cannot open"])
        assertDataError(try IDXFile.read(directory), contains: [directory, "not a regular file"])
    }

    func testImageAndLabelCountMismatch() throws {
        let directory = try makeTemporaryDirectory(self)
        let (images, _) = makeFixtureImages(count: 5)
        let (_, labels) = makeFixtureImages(count: 4)
        try IDXFile.write(images, to: directory + "/images", gzip: true)
        try IDXFile.write(labels, to: directory + "/labels", gzip: false)
        assertDataError(try Dataset.load(images: directory + "/images", labels: directory + "/labels"),
                        contains: ["count mismatch", directory + "/images", "5 images", directory + "/labels", "4 labels"])
    }

    func testLabelsOutOfRangeAndSwappedFiles() throws {
        let directory = try makeTemporaryDirectory(self)
        let (images, _) = makeFixtureImages(count: 3)
        try IDXFile.write(images, to: directory + "/images")
        try IDXFile.write(IDXArray(dimensions: [3], bytes: [1, 12, 3]), to: directory + "/labels")
        assertDataError(try Dataset.load(images: directory + "/images", labels: directory + "/labels"),
                        contains: [directory + "/labels", "label 12 at index 1"])
        assertDataError(try Dataset.load(images: directory + "/labels", labels: directory + "/images"),
                        contains: [directory + "/labels", "expected 3 dimensions"])
    }

    func testLoadWithLimit() throws {
        let directory = try makeTemporaryDirectory(self)
        let fixture = try writeFixtureDataset(in: directory, trainCount: 10)
        let dataset = try Dataset.load(images: directory + "/train-images-idx3-ubyte.gz",
                                       labels: directory + "/train-labels-idx1-ubyte.gz", limit: 4)
        XCTAssertEqual(dataset.count, 4)
        XCTAssertEqual(dataset.rows, 4)
        XCTAssertEqual(dataset.cols, 4)
        XCTAssertEqual(dataset.images, Array(fixture.train.0.bytes.prefix(4 * 16)))
        XCTAssertEqual(dataset.labels, [0, 1, 2, 3])
        XCTAssertEqual(Array(dataset.image(2)), Array(fixture.train.0.bytes[32..<48]))
    }
}
