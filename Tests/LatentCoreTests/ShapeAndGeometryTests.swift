@testable import LatentCore
import Foundation
import XCTest

final class ShapeAndGeometryTests: XCTestCase {
    func testElementCountRejectsNegativeAndOverflowingShapes() throws {
        XCTAssertEqual(try Shape.elementCount([64, 1, 28, 28]), 50_176)
        XCTAssertEqual(try Shape.elementCount([]), 1)
        XCTAssertThrowsError(try Shape.elementCount([3, -1]))
        XCTAssertThrowsError(try Shape.elementCount([Int.max / 2, 3]))
    }

    func testConvOutputSizesMatchPyTorch() throws {
        // Report 004's conv VAE encoder: 28 -> 14 -> 7 -> 7.
        let first = try ConvGeometry(batch: 64, inChannels: 1, height: 28, width: 28, outChannels: 64, kernel: 4, stride: 2, padding: 1)
        XCTAssertEqual([first.outHeight, first.outWidth], [14, 14])
        let third = try ConvGeometry(batch: 64, inChannels: 128, height: 7, width: 7, outChannels: 128, kernel: 3, stride: 1, padding: 1)
        XCTAssertEqual(third.outHeight, 7)
        // Report 004's beta-VAE: Conv2d(16, 32, 3, 2) on 7x7 gives 3x3 (288 = 32 * 9).
        let valid = try ConvGeometry(batch: 1, inChannels: 16, height: 7, width: 7, outChannels: 32, kernel: 3, stride: 2, padding: 0)
        XCTAssertEqual(valid.outChannels * valid.outHeight * valid.outWidth, 288)
        XCTAssertEqual(first.multiplyAdds, 64 * 64 * 14 * 14 * 16)
    }

    func testTransposedGeometryFollowsPyTorchSizes() throws {
        // ConvTranspose2d(32, 16, 3, 2): 3 -> 7; (16, 8, 3, 2, 1, 1): 7 -> 14; (8, 1, 3, 2, 1, 1): 14 -> 28.
        let a = try ConvGeometry.transposed(batch: 2, inChannels: 32, height: 3, width: 3, outChannels: 16, kernel: 3, stride: 2)
        XCTAssertEqual([a.inChannels, a.inHeight, a.outChannels, a.outHeight], [16, 7, 32, 3])
        let b = try ConvGeometry.transposed(batch: 2, inChannels: 16, height: 7, width: 7, outChannels: 8, kernel: 3, stride: 2, padding: 1, outputPadding: 1)
        XCTAssertEqual(b.inHeight, 14)
        let c = try ConvGeometry.transposed(batch: 2, inChannels: 128, height: 7, width: 7, outChannels: 64, kernel: 4, stride: 2, padding: 1)
        XCTAssertEqual(c.inHeight, 14)
        XCTAssertThrowsError(try ConvGeometry.transposed(batch: 1, inChannels: 1, height: 3, width: 3, outChannels: 1, kernel: 3, stride: 2, outputPadding: 2))
    }

    func testConvGeometryRejectsKernelsThatDoNotFit() {
        XCTAssertThrowsError(try ConvGeometry(batch: 1, inChannels: 1, height: 2, width: 2, outChannels: 1, kernel: 5))
        XCTAssertThrowsError(try ConvGeometry(batch: 0, inChannels: 1, height: 8, width: 8, outChannels: 1, kernel: 3))
        XCTAssertThrowsError(try ConvGeometry(batch: 1, inChannels: 1, height: 8, width: 8, outChannels: 1, kernel: 3, stride: 0))
    }

    func testGEMMArgumentChecksCatchShortViews() {
        XCTAssertNoThrow(try GEMMArguments.check(transA: .none, transB: .none, m: 2, n: 3, k: 4, a: 8, lda: 4, b: 12, ldb: 3, c: 6, ldc: 3))
        XCTAssertThrowsError(try GEMMArguments.check(transA: .none, transB: .none, m: 2, n: 3, k: 4, a: 7, lda: 4, b: 12, ldb: 3, c: 6, ldc: 3))
        XCTAssertThrowsError(try GEMMArguments.check(transA: .transposed, transB: .none, m: 2, n: 3, k: 4, a: 8, lda: 1, b: 12, ldb: 3, c: 6, ldc: 3))
    }

    func testRandomStreamAdvancesByWholeBlocks() {
        var stream = RandomStream(seed: 7)
        XCTAssertEqual(stream.advance(by: 5), 0)
        XCTAssertEqual(stream.advance(by: 4), 2)
        XCTAssertEqual(stream.counter, 3)
    }

    func testPhiloxLogAndSinCosAreAccurate() {
        var worstLog: Float = 0
        for i in 1...10_000 {
            let x = Float(i) / 10_000
            let exact = Float(Foundation.log(Double(x)))
            worstLog = max(worstLog, abs(Philox.log(x) - exact) / max(exact.ulp, Float.leastNormalMagnitude))
        }
        // Within two units in the last place of the correctly rounded result.
        XCTAssertLessThanOrEqual(worstLog, 2)
        var worstTrig: Float = 0
        for i in 0..<10_000 {
            let u = Float(i) / 10_000
            let (s, c) = Philox.sinCos2Pi(u)
            worstTrig = max(worstTrig, abs(s - Float(sin(2 * Double.pi * Double(u)))), abs(c - Float(cos(2 * Double.pi * Double(u)))))
        }
        XCTAssertLessThan(worstTrig, 1e-6)
    }
}
