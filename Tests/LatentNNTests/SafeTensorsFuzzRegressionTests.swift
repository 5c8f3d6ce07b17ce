import Foundation
import LatentCore
import LatentNN
import XCTest

/// The safetensors fuzz target's seeds (Fuzz/corpus/safetensors) and every input a fuzzer
/// flagged (Fuzz/regressions/safetensors), replayed as the target runs them: each decodes or
/// throws LatentError, and what decodes survives encode + decode bit for bit.
final class SafeTensorsFuzzRegressionTests: XCTestCase {
    static let fuzzFolder = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent("Fuzz")

    func testCorpusAndRegressions() throws {
        var count = 0
        for folder in ["corpus", "regressions"] {
            let url = Self.fuzzFolder.appendingPathComponent(folder).appendingPathComponent("safetensors")
            guard let names = try? FileManager.default.contentsOfDirectory(atPath: url.path) else { continue }
            for name in names.sorted() where !name.hasPrefix(".") {
                count += 1
                let data = try Data(contentsOf: url.appendingPathComponent(name))
                let decoded: (entries: [SafeTensors.Entry], metadata: [String: String])
                do {
                    decoded = try SafeTensors.decode(data, source: name)
                } catch is LatentError {
                    continue
                } catch {
                    XCTFail("\(folder)/\(name): unexpected error type \(type(of: error))")
                    continue
                }
                let again = try SafeTensors.decode(try SafeTensors.encode(decoded.entries, metadata: decoded.metadata), source: name)
                let order: (SafeTensors.Entry, SafeTensors.Entry) -> Bool = { $0.name < $1.name }
                XCTAssertEqual(again.entries.sorted(by: order).map { $0.values.map(\.bitPattern) },
                               decoded.entries.sorted(by: order).map { $0.values.map(\.bitPattern) }, name)
                XCTAssertEqual(again.metadata, decoded.metadata, name)
            }
        }
        XCTAssertGreaterThan(count, 0, "the seed corpus is in the repository")
    }
}
