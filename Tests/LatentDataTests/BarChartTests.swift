import Foundation
import XCTest
import LatentData

/// The bar chart (docs/PERFORMANCE.md's picture): size, one colour per series with bar areas
/// in proportion to their values, reference lines, and no crash on awkward data.
final class BarChartTests: XCTestCase {
    static let blue: [UInt8] = [0x1f, 0x77, 0xb4]
    static let orange: [UInt8] = [0xff, 0x7f, 0x0e]

    static func count(of color: [UInt8], in image: RasterImage) -> Int {
        stride(from: 0, to: image.pixels.count, by: 3).filter { Array(image.pixels[$0..<($0 + 3)]) == color }.count
    }

    func testBarsAreProportionalToTheirValues() throws {
        // Bars of 1 and 3 with the same width: the first holds a quarter of the bar pixels.
        let image = BarChart(title: "t", yLabel: "y", categories: ["a", "b"],
                             series: [.init(name: "s", values: [1, 3])]).render()
        XCTAssertEqual(image.width, 900)
        XCTAssertEqual(image.height, 520)
        let total = Self.count(of: Self.blue, in: image)
        XCTAssertGreaterThan(total, 10_000)
        let firstHalf = (0..<image.height).reduce(0) { sum, y in
            sum + (0..<(image.width / 2)).filter { x in
                let i = (y * image.width + x) * 3
                return Array(image.pixels[i..<(i + 3)]) == Self.blue
            }.count
        }
        XCTAssertEqual(Double(firstHalf) / Double(total), 0.25, accuracy: 0.03)
    }

    func testSeriesColoursLegendAndReferenceLine() throws {
        let chart = BarChart(title: "Training speed", yLabel: "ratio", categories: ["vae-conv", "dcgan", "vae-fc"],
                             series: [.init(name: "cpu", values: [1.4, 1.3, 1.6]), .init(name: "opencl", values: [0.6, 0.5, 0.7])],
                             referenceLines: [.init(value: 1, label: "PyTorch = 1")], valueFormat: "%.2fx")
        let image = chart.render()
        XCTAssertGreaterThan(Self.count(of: Self.blue, in: image), 1000)
        XCTAssertGreaterThan(Self.count(of: Self.orange, in: image), 500)
        // The reference line: a row of the line colour across most of the plot.
        let line: [UInt8] = [0x55, 0x55, 0x55]
        let rows = (0..<image.height).map { y in
            (0..<image.width).filter { x in
                let i = (y * image.width + x) * 3
                return Array(image.pixels[i..<(i + 3)]) == line
            }.count
        }
        XCTAssertGreaterThan(rows.max() ?? 0, image.width / 2)
    }

    func testAwkwardDataDoesNotCrash() throws {
        for values in [[0.0, 0.0], [-1.0, 2.0], [Double.nan, Double.infinity], [1e9, 1e-9]] {
            let image = BarChart(title: "", yLabel: "", categories: ["a", "b"], series: [.init(name: "s", values: values)]).render()
            XCTAssertEqual(image.pixels.count, image.width * image.height * 3)
        }
        _ = BarChart(title: "no series", yLabel: "", categories: ["a"], series: []).render()
    }
}
