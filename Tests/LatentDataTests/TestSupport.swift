import Foundation
import XCTest
import LatentData

/// A fresh temporary folder per test, removed afterwards.
func makeTemporaryDirectory(_ testCase: XCTestCase) throws -> String {
    let path = NSTemporaryDirectory() + "latent-data-tests-" + UUID().uuidString
    try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    testCase.addTeardownBlock { try? FileManager.default.removeItem(atPath: path) }
    return path
}

func writeBytes(_ bytes: [UInt8], to path: String) throws {
    try Data(bytes).write(to: URL(fileURLWithPath: path))
}

/// Big-endian IDX header bytes, for hand-made (and deliberately broken) files.
func idxHeader(type: UInt8 = 0x08, dimensions: [UInt32]) -> [UInt8] {
    var bytes: [UInt8] = [0, 0, type, UInt8(dimensions.count)]
    for size in dimensions {
        bytes += [UInt8(size >> 24), UInt8((size >> 16) & 0xff), UInt8((size >> 8) & 0xff), UInt8(size & 0xff)]
    }
    return bytes
}

/// A small, recognisable dataset: image i has every pixel equal to (i * 37 + pixel) % 256,
/// label i % 10.
func makeFixtureImages(count: Int, rows: Int = 4, cols: Int = 4) -> (images: IDXArray, labels: IDXArray) {
    let pixels = rows * cols
    let imageBytes = (0..<(count * pixels)).map { UInt8((($0 / pixels) * 37 + $0 % pixels) % 256) }
    let labelBytes = (0..<count).map { UInt8($0 % 10) }
    return (IDXArray(dimensions: [count, rows, cols], bytes: imageBytes), IDXArray(dimensions: [count], bytes: labelBytes))
}

/// Writes the four standard files of a fixture dataset into `directory` (created if needed).
@discardableResult
func writeFixtureDataset(in directory: String, trainCount: Int = 12, testCount: Int = 5,
                         gzip: Bool = true) throws -> (train: (IDXArray, IDXArray), test: (IDXArray, IDXArray)) {
    try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
    let train = makeFixtureImages(count: trainCount)
    let test = makeFixtureImages(count: testCount)
    let suffix = gzip ? ".gz" : ""
    try IDXFile.write(train.images, to: directory + "/train-images-idx3-ubyte" + suffix, gzip: gzip)
    try IDXFile.write(train.labels, to: directory + "/train-labels-idx1-ubyte" + suffix, gzip: gzip)
    try IDXFile.write(test.images, to: directory + "/t10k-images-idx3-ubyte" + suffix, gzip: gzip)
    try IDXFile.write(test.labels, to: directory + "/t10k-labels-idx1-ubyte" + suffix, gzip: gzip)
    return ((train.images, train.labels), (test.images, test.labels))
}

/// Asserts that `body` throws a ``DataError`` whose message contains every one of `fragments`.
func assertDataError<T>(_ body: @autoclosure () throws -> T, contains fragments: [String],
                        file: StaticString = #filePath, line: UInt = #line) {
    do {
        _ = try body()
        XCTFail("expected an error containing \(fragments)", file: file, line: line)
    } catch let error as DataError {
        for fragment in fragments {
            XCTAssertTrue(error.description.contains(fragment),
                          "\"\(error.description)\" lacks \"\(fragment)\"", file: file, line: line)
        }
        XCTAssertFalse(error.description.contains("\n"), "error spans lines: \(error)", file: file, line: line)
    } catch {
        XCTFail("expected DataError, got \(error)", file: file, line: line)
    }
}
