import Foundation
import XCTest
import LatentData

/// The charts are checked for what a reader needs: the right size, every series and class in
/// its own colour, text present, no crash on awkward data. The example pictures in
/// docs/images come from `testRenderExamples` (see its comment).
final class ChartTests: XCTestCase {
    /// Matplotlib's tab10, the palette the charts use for series and classes.
    static let palette: [[UInt8]] = [
        0x1f77b4, 0xff7f0e, 0x2ca02c, 0xd62728, 0x9467bd, 0x8c564b, 0xe377c2, 0x7f7f7f, 0xbcbd22, 0x17becf,
    ].map { [UInt8($0 >> 16), UInt8(($0 >> 8) & 0xff), UInt8($0 & 0xff)] }

    static func count(of color: [UInt8], in image: RasterImage) -> Int {
        stride(from: 0, to: image.pixels.count, by: 3).filter { Array(image.pixels[$0..<($0 + 3)]) == color }.count
    }

    /// Synthetic loss curves shaped like a VAE's (fast drop, slow tail, test above train).
    static func exampleLossChart() -> LineChart {
        let epochs = 30
        let train = (0..<epochs).map { e -> Double in 105 + 60 * exp(-Double(e) / 4) + 1.5 * sin(Double(e) * 1.7) }
        let test = (0..<epochs).map { e -> Double in 108 + 50 * exp(-Double(e) / 4.5) + Double(e) * 0.12 }
        let kl = (0..<epochs).map { e -> Double in 25 - 12 * exp(-Double(e) / 3) }
        return LineChart(title: "FC-VAE on MNIST: loss per image", xLabel: "epoch", yLabel: "loss (nats)",
                         series: [.init(name: "train loss", y: train), .init(name: "test loss", y: test),
                                  .init(name: "KL term", y: kl)])
    }

    /// Ten Gaussian clouds around a circle, one per class, like 2-D latent codes of MNIST.
    static func exampleScatterChart() -> ScatterChart {
        var generator = SplitMix64(seed: 7)
        func gaussian() -> Double {
            let u = (Double(generator.next() >> 11) + 0.5) / 9_007_199_254_740_992
            let v = Double(generator.next() >> 11) / 9_007_199_254_740_992
            return (-2 * log(u)).squareRoot() * cos(2 * .pi * v)
        }
        var xs: [Double] = [], ys: [Double] = [], labels: [Int] = []
        for index in 0..<5000 {
            let label = index % 10
            let angle = Double(label) / 10 * 2 * .pi
            xs.append(2.2 * cos(angle) + 0.55 * gaussian())
            ys.append(2.2 * sin(angle) + 0.55 * gaussian() * (1 + 0.3 * Double(label % 3)))
            labels.append(label)
        }
        return ScatterChart(title: "AE latent codes (synthetic)", xLabel: "z[0]", yLabel: "z[1]",
                            x: xs, y: ys, labels: labels)
    }

    /// Writes the two example charts. To refresh the committed pictures run
    /// `LATENT_WRITE_DOCS_IMAGES=docs/images swift test --filter ChartTests.testRenderExamples`
    /// from the repository root; otherwise they go to a temporary folder.
    func testRenderExamples() throws {
        let directory = try ProcessInfo.processInfo.environment["LATENT_WRITE_DOCS_IMAGES"] ?? makeTemporaryDirectory(self)
        for (name, image) in [("loss-curve-example.png", ChartTests.exampleLossChart().render()),
                              ("scatter-example.png", ChartTests.exampleScatterChart().render())] {
            let path = directory + "/" + name
            try image.writePNG(to: path)
            let decoded = try decodePNG([UInt8](try Data(contentsOf: URL(fileURLWithPath: path))))
            XCTAssertEqual(decoded.pixels, image.pixels)
        }
    }

    func testLineChartDrawsEverySeriesAndText() {
        let image = ChartTests.exampleLossChart().render()
        XCTAssertEqual([image.width, image.height], [800, 500])
        XCTAssertEqual(image.format, .rgb)
        for (index, color) in ChartTests.palette.prefix(3).enumerated() {
            XCTAssertGreaterThan(ChartTests.count(of: color, in: image), 300, "series \(index) barely visible")
        }
        XCTAssertEqual(ChartTests.count(of: ChartTests.palette[3], in: image), 0, "only three series")
        // Text is drawn in near-black; the title row alone holds a few hundred such pixels.
        let titleRows = image.pixels[(15 * 800 * 3)..<(45 * 800 * 3)]
        XCTAssertGreaterThan(stride(from: titleRows.startIndex, to: titleRows.endIndex, by: 3)
            .filter { titleRows[$0] == 0x22 }.count, 300)
    }

    func testLineChartSurvivesAwkwardData() {
        let awkward = LineChart(title: "", xLabel: "", yLabel: "", series: [
            .init(name: "flat", y: [3, 3, 3]),
            .init(name: "gaps", x: [1, 2, 3, 4], y: [1, .nan, .infinity, 2]),
            .init(name: "empty", y: []),
            .init(name: "one", x: [2], y: [5]),
        ])
        let image = awkward.render()
        XCTAssertEqual(image.pixels.count, 800 * 500 * 3)
        XCTAssertGreaterThan(ChartTests.count(of: ChartTests.palette[0], in: image), 100)
        let nothing = LineChart(title: "no data", xLabel: "x", yLabel: "y", series: []).render()
        XCTAssertEqual(nothing.width, 800)
    }

    func testScatterChartColoursEveryClass() {
        let chart = ChartTests.exampleScatterChart()
        let image = chart.render()
        XCTAssertEqual([image.width, image.height], [800, 640])
        for (label, color) in ChartTests.palette.enumerated() {
            // At least the legend's disk (about 100 pixels) is drawn in the exact class colour.
            XCTAssertGreaterThan(ChartTests.count(of: color, in: image), 60, "class \(label)")
        }
        var fashion = chart
        fashion.classNames = DatasetName.fashionMNIST.classNames
        fashion.width = 900
        XCTAssertEqual(fashion.render().width, 900)
    }
}
