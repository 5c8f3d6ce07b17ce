import XCTest
import LatentData

final class ChecksumTests: XCTestCase {
    func testSHA256KnownVectors() {
        // FIPS 180-4 / NIST examples.
        XCTAssertEqual(SHA256.hexDigest([]), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
        XCTAssertEqual(SHA256.hexDigest(Array("abc".utf8)),
                       "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        XCTAssertEqual(SHA256.hexDigest(Array("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq".utf8)),
                       "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1")
        XCTAssertEqual(SHA256.hexDigest([UInt8](repeating: UInt8(ascii: "a"), count: 1_000_000)),
                       "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0")
    }

    func testSHA256StreamingMatchesOneShot() {
        let message = (0..<1000).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ 7) }
        for chunk in [1, 3, 63, 64, 65, 200] {
            var hasher = SHA256()
            for start in stride(from: 0, to: message.count, by: chunk) {
                hasher.update(Array(message[start..<min(start + chunk, message.count)]))
            }
            let digest = hasher.finalize().map { String(format: "%02x", $0) }.joined()
            XCTAssertEqual(digest, SHA256.hexDigest(message), "chunk \(chunk)")
        }
    }

    func testZlibRoundTripAndLimits() throws {
        let data = (0..<100_000).map { UInt8(truncatingIfNeeded: ($0 / 7) &* 13) }
        let compressed = Zlib.compress(data)
        XCTAssertLessThan(compressed.count, data.count / 4)
        XCTAssertEqual(try Zlib.decompress(compressed, maximumOutputBytes: data.count), data)
        assertDataError(try Zlib.decompress(compressed, maximumOutputBytes: 1000), contains: ["more than 1000 bytes"])
        XCTAssertEqual(try Zlib.gunzip(Zlib.gzip(data), maximumOutputBytes: data.count), data)
        XCTAssertEqual(Array("123456789".utf8).withUnsafeBytes { Zlib.crc32($0) }, 0xCBF4_3926)
    }
}
