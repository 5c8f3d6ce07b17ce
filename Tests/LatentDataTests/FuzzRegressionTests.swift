import Foundation
@testable import LatentData
import XCTest

/// The fuzz targets' inputs, replayed in the ordinary test suite (docs/RELIABILITY.md):
/// every seed in Fuzz/corpus/{idx,gzip} and every input a fuzzer ever flagged, kept in
/// Fuzz/regressions/{idx,gzip}, goes through the same calls as the fuzz target and must
/// either decode or throw DataError.
final class FuzzRegressionTests: XCTestCase {
    static let fuzzFolder = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent("Fuzz")

    func inputs(_ target: String) throws -> [(name: String, bytes: [UInt8])] {
        var result: [(String, [UInt8])] = []
        for folder in ["corpus", "regressions"] {
            let url = Self.fuzzFolder.appendingPathComponent(folder).appendingPathComponent(target)
            guard let names = try? FileManager.default.contentsOfDirectory(atPath: url.path) else { continue }
            for name in names.sorted() where !name.hasPrefix(".") {
                result.append(("\(folder)/\(target)/\(name)", [UInt8](try Data(contentsOf: url.appendingPathComponent(name)))))
            }
        }
        return result
    }

    func decodeIDX(_ bytes: [UInt8]) -> Result<IDXArray, DataError>? {
        do {
            return .success(try IDXFile.decode(OwnedBytes(copying: bytes), name: "input"))
        } catch let error as DataError {
            return .failure(error)
        } catch {
            XCTFail("unexpected error type \(type(of: error)): \(error)")
            return nil
        }
    }

    func testIDXCorpusAndRegressions() throws {
        let all = try inputs("idx")
        XCTAssertFalse(all.isEmpty, "the seed corpus is in the repository")
        for (name, bytes) in all {
            if case .success(let array)? = decodeIDX(bytes), bytes.first != 0x1f {
                XCTAssertEqual(IDXFile.encode(array), bytes, name)
            }
        }
    }

    func testGzipCorpusAndRegressions() throws {
        let all = try inputs("gzip")
        XCTAssertFalse(all.isEmpty)
        for (name, bytes) in all {
            for format in [Inflater.Format.gzip, .zlib] {
                do {
                    _ = try Zlib.inflateAll(bytes, format: format, maximumOutputBytes: 1 << 22)
                } catch is DataError {
                } catch {
                    XCTFail("\(name): unexpected error type \(type(of: error))")
                }
            }
            XCTAssertEqual(try Zlib.gunzip(Zlib.gzip(bytes), maximumOutputBytes: bytes.count), bytes, name)
        }
    }

    // MARK: - Hostile inputs written by hand, in the spirit of the fuzzers

    func testGzipBombIsBoundedByTheHeader() throws {
        // 64 MiB of zeros compresses to ~64 KB; the IDX header claims a 2 x 2 image.
        let bomb = Zlib.gzip(idxHeader(dimensions: [1, 2, 2]) + [UInt8](repeating: 0, count: 64 << 20))
        guard case .failure(let error)? = decodeIDX(bomb) else { return XCTFail("a bomb decoded") }
        XCTAssertTrue(error.description.contains("trailing junk"), error.description)
        XCTAssertThrowsError(try Zlib.gunzip(bomb, maximumOutputBytes: 1 << 20))
    }

    func testHeaderPromisingMoreThanTheGzipCanHoldIsRefusedBeforeAllocating() throws {
        let lie = Zlib.gzip(idxHeader(dimensions: [60000, 28, 28]))
        guard case .failure(let error)? = decodeIDX(lie) else { return XCTFail("decoded") }
        XCTAssertTrue(error.description.contains("more than a \(lie.count)-byte gzip file can hold"), error.description)
    }

    func testEveryPrefixOfAGzipFileIsRefused() throws {
        let (images, _) = makeFixtureImages(count: 3)
        let file = Zlib.gzip(IDXFile.encode(images))
        for length in 0..<file.count {
            guard case .failure? = decodeIDX(Array(file.prefix(length))) else {
                return XCTFail("prefix of \(length) bytes decoded")
            }
        }
    }

    func testCorruptByteAnywhereInAGzipFileNeverCrashes() throws {
        let (images, _) = makeFixtureImages(count: 3)
        let file = Zlib.gzip(IDXFile.encode(images))
        for index in file.indices {
            for flip: UInt8 in [0x01, 0x80, 0xff] {
                var bad = file
                bad[index] ^= flip
                _ = decodeIDX(bad)
            }
        }
    }
}
