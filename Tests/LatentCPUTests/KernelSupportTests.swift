import XCTest
@testable import LatentCPU

/// The vector building blocks under the kernels: partial loads and the 8 x 8 transpose.
final class KernelSupportTests: XCTestCase {
    /// `Vec.load(p, lanes, padding:)` for every lane count reads exactly `lanes` floats and
    /// fills the rest with the padding (the register-assembled path below 16 lanes).
    func testPartialLoadsEveryLaneCount() {
        for lanes in 0...16 {
            let storage = UnsafeMutablePointer<Float>.allocate(capacity: Swift.max(1, lanes))
            defer { storage.deallocate() }
            for i in 0..<lanes { storage[i] = Float(i + 1) * 1.5 }
            for padding: Float in [0, -7.25, .infinity] {
                let value = Vec.load(UnsafePointer(storage), lanes, padding: padding)
                let expected = (0..<16).map { $0 < lanes ? Float($0 + 1) * 1.5 : padding }
                XCTAssertEqual((0..<16).map { value[$0] }, expected, "lanes \(lanes), padding \(padding)")
            }
        }
    }

    /// `Tile8.transposed` against index arithmetic, and twice is the identity.
    func testTile8Transpose() {
        let tile = Tile8 { row in Tile8.Row((0..<8).map { Float(row * 8 + $0) }) }
        var rows = [[Float]]()
        tile.transposed().forEachRow { _, row in rows.append((0..<8).map { row[$0] }) }
        XCTAssertEqual(rows, (0..<8).map { column in (0..<8).map { Float($0 * 8 + column) } })
        var again = [[Float]]()
        tile.transposed().transposed().forEachRow { _, row in again.append((0..<8).map { row[$0] }) }
        XCTAssertEqual(again, (0..<8).map { row in (0..<8).map { Float(row * 8 + $0) } })
    }
}
