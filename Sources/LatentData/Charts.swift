import Foundation

/// A line chart for training curves: several named series, axes with round-number ticks,
/// axis titles, a legend and a title, drawn by Latent itself into an RGB image.
public struct LineChart: Sendable {
    public struct Series: Sendable {
        public var name: String
        public var x: [Double]
        public var y: [Double]

        /// Points (`x[i]`, `y[i]`); non-finite values leave a gap in the line.
        public init(name: String, x: [Double], y: [Double]) {
            precondition(x.count == y.count, "series \(name): x and y differ in length")
            self.name = name
            self.x = x
            self.y = y
        }

        /// `y` against 1, 2, 3, … (epochs).
        public init(name: String, y: [Double]) {
            self.init(name: name, x: y.indices.map { Double($0 + 1) }, y: y)
        }
    }

    public var title: String
    public var xLabel: String
    public var yLabel: String
    public var series: [Series]
    public var width = 800
    public var height = 500

    public init(title: String, xLabel: String, yLabel: String, series: [Series]) {
        self.title = title
        self.xLabel = xLabel
        self.yLabel = yLabel
        self.series = series
    }

    public func render() -> RasterImage {
        let finite = series.flatMap { s in zip(s.x, s.y).filter { $0.0.isFinite && $0.1.isFinite } }
        let xValues = finite.map(\.0), yValues = finite.map(\.1)
        let xRange = ChartLayout.range(of: xValues, margin: 0)
        let yRange = ChartLayout.range(of: yValues, margin: 0.05)
        let wholeX = !xValues.isEmpty && xValues.allSatisfy { $0 == $0.rounded() }
        let layout = ChartLayout(width: width, height: height, title: title, xLabel: xLabel, yLabel: yLabel,
                                 xRange: xRange, yRange: yRange, integerX: wholeX, legendOutsideWidth: 0)
        var canvas = Canvas(width: width, height: height)
        layout.drawFrame(on: &canvas)

        let plot = layout.plotRectangle
        let markers = series.allSatisfy { $0.x.count <= 40 }
        for (index, line) in series.enumerated() {
            let color = RGBColor.categorical[index % RGBColor.categorical.count]
            var run: [(x: Double, y: Double)] = []
            func flush() {
                canvas.strokePolyline(run, lineWidth: 2.5, color: color, clip: plot)
                run.removeAll()
            }
            for (x, y) in zip(line.x, line.y) {
                guard x.isFinite && y.isFinite else { flush(); continue }
                let point = layout.pixel(x: x, y: y)
                run.append(point)
                if markers {
                    canvas.fillDisk(centerX: point.x, centerY: point.y, radius: 3.5, color: color)
                }
            }
            flush()
        }

        let entries = series.enumerated().map { (index, line) in
            (line.name, RGBColor.categorical[index % RGBColor.categorical.count])
        }
        layout.drawLegendInside(entries: entries, avoiding: finite.map { layout.pixel(x: $0.0, y: $0.1) },
                                lineSwatch: true, on: &canvas)
        return canvas.image
    }
}

/// A scatter chart for latent codes: one dot per point, coloured by class, with a legend of
/// the class names to the right of the plot.
public struct ScatterChart: Sendable {
    public var title: String
    public var xLabel: String
    public var yLabel: String
    public var x: [Double]
    public var y: [Double]
    /// Class of each point, 0 ..< `classNames.count` (at most 10 colours; more repeat).
    public var labels: [Int]
    public var classNames: [String]
    public var width = 800
    public var height = 640

    public init(title: String, xLabel: String, yLabel: String, x: [Double], y: [Double], labels: [Int],
                classNames: [String] = (0...9).map(String.init)) {
        precondition(x.count == y.count && y.count == labels.count, "x, y and labels differ in length")
        self.title = title
        self.xLabel = xLabel
        self.yLabel = yLabel
        self.x = x
        self.y = y
        self.labels = labels
        self.classNames = classNames
    }

    public func render() -> RasterImage {
        let finite = x.indices.filter { x[$0].isFinite && y[$0].isFinite }
        let xRange = ChartLayout.range(of: finite.map { x[$0] }, margin: 0.04)
        let yRange = ChartLayout.range(of: finite.map { y[$0] }, margin: 0.04)
        let legendWidth = ChartLayout.legendWidth(names: classNames, lineSwatch: false)
        let layout = ChartLayout(width: width, height: height, title: title, xLabel: xLabel, yLabel: yLabel,
                                 xRange: xRange, yRange: yRange, integerX: false,
                                 legendOutsideWidth: legendWidth + 16)
        var canvas = Canvas(width: width, height: height)
        layout.drawFrame(on: &canvas)

        // Smaller, lighter dots as the cloud gets denser, so that structure stays visible.
        let radius = finite.count <= 1_000 ? 3.0 : finite.count <= 10_000 ? 2.0 : 1.4
        let alpha = finite.count <= 1_000 ? 0.85 : finite.count <= 10_000 ? 0.6 : 0.45
        // Draw in a fixed pseudo-random order: drawing class by class would bury the early
        // classes under the later ones.
        var order = finite
        var generator = SplitMix64(seed: 0x5CA7)
        order.shuffleDeterministically(using: &generator)
        let plot = layout.plotRectangle
        for index in order {
            let point = layout.pixel(x: x[index], y: y[index])
            guard point.x >= Double(plot.x), point.x <= Double(plot.x + plot.width),
                  point.y >= Double(plot.y), point.y <= Double(plot.y + plot.height) else { continue }
            let color = RGBColor.categorical[((labels[index] % 10) + 10) % 10]
            canvas.fillDisk(centerX: point.x, centerY: point.y, radius: radius, color: color, alpha: alpha)
        }

        let entries = classNames.enumerated().map { ($0.element, RGBColor.categorical[$0.offset % 10]) }
        layout.drawLegendOutside(entries: entries, on: &canvas)
        return canvas.image
    }
}

/// A grouped bar chart for benchmark tables: one group of bars per category (models), one
/// bar per series (backends) with its value printed above it, and optional horizontal
/// reference lines (a ratio of 1, a target), drawn by Latent itself into an RGB image.
public struct BarChart: Sendable {
    public struct Series: Sendable {
        public var name: String
        /// One value per category; a non-finite value leaves its bar out.
        public var values: [Double]

        public init(name: String, values: [Double]) {
            self.name = name
            self.values = values
        }
    }

    public struct ReferenceLine: Sendable {
        public var value: Double
        public var label: String

        public init(value: Double, label: String) {
            self.value = value
            self.label = label
        }
    }

    public var title: String
    public var yLabel: String
    public var categories: [String]
    public var series: [Series]
    public var referenceLines: [ReferenceLine]
    /// How a bar's value is printed above it.
    public var valueFormat: String
    public var width = 900
    public var height = 520

    public init(title: String, yLabel: String, categories: [String], series: [Series],
                referenceLines: [ReferenceLine] = [], valueFormat: String = "%.2f") {
        precondition(series.allSatisfy { $0.values.count == categories.count }, "every series needs one value per category")
        self.title = title
        self.yLabel = yLabel
        self.categories = categories
        self.series = series
        self.referenceLines = referenceLines
        self.valueFormat = valueFormat
    }

    public func render() -> RasterImage {
        // Bars start at zero; the top leaves room for the value labels.
        let values = series.flatMap(\.values).filter(\.isFinite) + referenceLines.map(\.value)
        let high = (values.max() ?? 1) * 1.12
        let low = Swift.min(0, values.min() ?? 0)
        // Room right of the plot for the legend (several series) and the reference lines' labels.
        let legendWidth = series.count > 1 ? ChartLayout.legendWidth(names: series.map(\.name), lineSwatch: false) + 16 : 0
        let labelWidth = (referenceLines.map { BitmapFont.width(of: $0.label, scale: ChartLayout.textScale) }.max() ?? -12) + 12
        let outsideWidth = Swift.max(legendWidth, labelWidth)
        let layout = ChartLayout(width: width, height: height, title: title, xLabel: "", yLabel: yLabel,
                                 xRange: (0, Double(categories.count)), yRange: (low, high > low ? high : low + 1),
                                 integerX: false, legendOutsideWidth: outsideWidth, xCategories: categories)
        var canvas = Canvas(width: width, height: height)
        layout.drawFrame(on: &canvas)
        let plot = layout.plotRectangle
        let zeroY = layout.pixel(x: 0, y: 0).y

        // Within a category: 70% of its width for the bars, side by side.
        let groupWidth = Double(plot.width) / Double(Swift.max(1, categories.count))
        let barWidth = groupWidth * 0.7 / Double(Swift.max(1, series.count))
        for (seriesIndex, bars) in series.enumerated() {
            let color = RGBColor.categorical[seriesIndex % RGBColor.categorical.count]
            for (category, value) in bars.values.enumerated() where value.isFinite {
                let left = Double(plot.x) + groupWidth * (Double(category) + 0.15) + barWidth * Double(seriesIndex)
                let top = layout.pixel(x: 0, y: value).y
                let x = Int(left.rounded()), w = Swift.max(1, Int((left + barWidth).rounded()) - x - 2)
                let y = Int(Swift.min(top, zeroY).rounded()), h = Swift.max(1, Int(abs(zeroY - top).rounded()))
                canvas.fillRectangle(x: x, y: y, width: w, height: h, color: color)
                let label = String(format: valueFormat, value)
                let scale = BitmapFont.width(of: label, scale: 2) <= w + 10 ? 2 : 1
                canvas.drawText(label, x: x + w / 2, y: y - 5 - BitmapFont.ascent * scale, scale: scale,
                                color: ChartLayout.textColor, anchor: .topCenter)
            }
        }
        // Reference lines over the bars, each labelled right of the plot at its height.
        for line in referenceLines {
            let y = Int(layout.pixel(x: 0, y: line.value).y.rounded())
            canvas.fillRectangle(x: plot.x + 1, y: y, width: plot.width - 1, height: 2, color: RGBColor(hex: 0x555555))
            canvas.drawText(line.label, x: plot.x + plot.width + 10, y: y + 1, scale: ChartLayout.textScale,
                            color: RGBColor(hex: 0x333333), anchor: .middleLeft)
        }
        if series.count > 1 {
            layout.drawLegendOutside(entries: series.enumerated().map {
                ($0.element.name, RGBColor.categorical[$0.offset % RGBColor.categorical.count])
            }, on: &canvas)
        }
        return canvas.image
    }
}

/// Axes, ticks, titles and legends shared by the charts.
struct ChartLayout {
    static let textScale = 2
    static let titleScale = 3
    static let axisColor = RGBColor(hex: 0x333333)
    static let gridColor = RGBColor(hex: 0xe5e5e5)
    static let textColor = RGBColor(hex: 0x222222)

    let width: Int
    let height: Int
    let title: String
    let xLabel: String
    let yLabel: String
    let xAxis: Axis
    let yAxis: Axis
    let plotRectangle: (x: Int, y: Int, width: Int, height: Int)

    struct Axis {
        var low: Double
        var high: Double
        var ticks: [Double]
        var labels: [String]
    }

    /// Category names along x (bar charts): category i is centred at x = i + 0.5, the x range
    /// is (0, count), and x has tick marks and labels but no grid lines. Empty for numeric x.
    let xCategories: [String]

    init(width: Int, height: Int, title: String, xLabel: String, yLabel: String,
         xRange: (Double, Double), yRange: (Double, Double), integerX: Bool, legendOutsideWidth: Int,
         xCategories: [String] = []) {
        self.xCategories = xCategories
        self.width = width
        self.height = height
        self.title = title
        self.xLabel = xLabel
        self.yLabel = yLabel
        let s = ChartLayout.textScale
        let lineHeight = BitmapFont.height(scale: s)
        let top = title.isEmpty ? 20 : 18 + BitmapFont.ascent * ChartLayout.titleScale + 22
        let bottom = 8 + 8 + lineHeight + (xLabel.isEmpty ? 8 : 10 + lineHeight + 8)
        // Tick count from the room available: about one label per 90 px across, 55 px down.
        let roughPlotHeight = height - top - bottom
        var y = Axis(low: yRange.0, high: yRange.1, ticks: [], labels: [])
        (y.ticks, y.labels) = ChartLayout.ticks(low: yRange.0, high: yRange.1,
                                                 targetCount: max(3, roughPlotHeight / 55), integerOnly: false)
        let tickLabelWidth = y.labels.map { BitmapFont.width(of: $0, scale: s) }.max() ?? 0
        let left = 14 + (yLabel.isEmpty ? 0 : BitmapFont.ascent * s + 14) + tickLabelWidth + 8 + 8
        let right = 24 + legendOutsideWidth
        let plotWidth = max(10, width - left - right)
        var x = Axis(low: xRange.0, high: xRange.1, ticks: [], labels: [])
        if xCategories.isEmpty {
            (x.ticks, x.labels) = ChartLayout.ticks(low: xRange.0, high: xRange.1,
                                                     targetCount: max(2, plotWidth / 90), integerOnly: integerX)
        } else {
            x = Axis(low: 0, high: Double(xCategories.count), ticks: xCategories.indices.map { Double($0) + 0.5 },
                     labels: xCategories)
        }
        xAxis = x
        yAxis = y
        plotRectangle = (left, top, plotWidth, max(10, roughPlotHeight))
    }

    /// Data coordinates to pixel coordinates.
    func pixel(x: Double, y: Double) -> (x: Double, y: Double) {
        let plot = plotRectangle
        let u = (x - xAxis.low) / (xAxis.high - xAxis.low)
        let v = (y - yAxis.low) / (yAxis.high - yAxis.low)
        return (Double(plot.x) + u * Double(plot.width), Double(plot.y + plot.height) - v * Double(plot.height))
    }

    /// Title, grid, frame, ticks, tick labels and axis titles.
    func drawFrame(on canvas: inout Canvas) {
        let s = ChartLayout.textScale
        let plot = plotRectangle
        if !title.isEmpty {
            canvas.drawText(title, x: plot.x + plot.width / 2, y: 18, scale: ChartLayout.titleScale,
                            color: ChartLayout.textColor, anchor: .topCenter)
        }
        for (tick, label) in zip(xAxis.ticks, xAxis.labels) {
            let px = Int(pixel(x: tick, y: yAxis.low).x.rounded())
            if xCategories.isEmpty {
                canvas.fillRectangle(x: px, y: plot.y, width: 1, height: plot.height, color: ChartLayout.gridColor)
            }
            canvas.fillRectangle(x: px, y: plot.y + plot.height, width: 1, height: 7, color: ChartLayout.axisColor)
            canvas.drawText(label, x: px, y: plot.y + plot.height + 14, scale: s,
                            color: ChartLayout.textColor, anchor: .topCenter)
        }
        for (tick, label) in zip(yAxis.ticks, yAxis.labels) {
            let py = Int(pixel(x: xAxis.low, y: tick).y.rounded())
            canvas.fillRectangle(x: plot.x, y: py, width: plot.width, height: 1, color: ChartLayout.gridColor)
            canvas.fillRectangle(x: plot.x - 7, y: py, width: 7, height: 1, color: ChartLayout.axisColor)
            canvas.drawText(label, x: plot.x - 12, y: py, scale: s, color: ChartLayout.textColor, anchor: .middleRight)
        }
        canvas.strokeRectangle(x: plot.x, y: plot.y, width: plot.width + 1, height: plot.height + 1,
                               color: ChartLayout.axisColor)
        if !xLabel.isEmpty {
            let y = plot.y + plot.height + 14 + BitmapFont.height(scale: s) + 10
            canvas.drawText(xLabel, x: plot.x + plot.width / 2, y: y, scale: s,
                            color: ChartLayout.textColor, anchor: .topCenter)
        }
        if !yLabel.isEmpty {
            canvas.drawVerticalText(yLabel, centerX: 14 + BitmapFont.ascent * s / 2, centerY: plot.y + plot.height / 2,
                                    scale: s, color: ChartLayout.textColor)
        }
    }

    static func legendWidth(names: [String], lineSwatch: Bool) -> Int {
        let textWidth = names.map { BitmapFont.width(of: $0, scale: textScale) }.max() ?? 0
        return 12 + (lineSwatch ? 30 : 14) + 10 + textWidth + 12
    }

    static let legendRowHeight = 24

    /// A boxed legend in the plot corner that covers the fewest data points.
    func drawLegendInside(entries: [(String, RGBColor)], avoiding points: [(x: Double, y: Double)],
                          lineSwatch: Bool, on canvas: inout Canvas) {
        guard !entries.isEmpty else { return }
        let plot = plotRectangle
        let boxWidth = ChartLayout.legendWidth(names: entries.map(\.0), lineSwatch: lineSwatch)
        let boxHeight = entries.count * ChartLayout.legendRowHeight + 12
        let inset = 12
        let corners = [
            (plot.x + plot.width - boxWidth - inset, plot.y + inset),                  // top right
            (plot.x + inset, plot.y + inset),                                          // top left
            (plot.x + plot.width - boxWidth - inset, plot.y + plot.height - boxHeight - inset),
            (plot.x + inset, plot.y + plot.height - boxHeight - inset),
        ]
        func covered(_ corner: (Int, Int)) -> Int {
            let margin = 6.0
            return points.filter { point in
                point.x >= Double(corner.0) - margin && point.x <= Double(corner.0 + boxWidth) + margin
                    && point.y >= Double(corner.1) - margin && point.y <= Double(corner.1 + boxHeight) + margin
            }.count
        }
        let best = corners.min { covered($0) < covered($1) } ?? corners[0]
        drawLegend(entries: entries, x: best.0, y: best.1, width: boxWidth, height: boxHeight,
                   lineSwatch: lineSwatch, on: &canvas)
    }

    /// A legend to the right of the plot, top-aligned with it.
    func drawLegendOutside(entries: [(String, RGBColor)], on canvas: inout Canvas) {
        guard !entries.isEmpty else { return }
        let plot = plotRectangle
        let boxWidth = ChartLayout.legendWidth(names: entries.map(\.0), lineSwatch: false)
        let boxHeight = entries.count * ChartLayout.legendRowHeight + 12
        drawLegend(entries: entries, x: plot.x + plot.width + 16, y: plot.y, width: boxWidth, height: boxHeight,
                   lineSwatch: false, on: &canvas)
    }

    private func drawLegend(entries: [(String, RGBColor)], x: Int, y: Int, width: Int, height: Int,
                            lineSwatch: Bool, on canvas: inout Canvas) {
        canvas.fillRectangle(x: x, y: y, width: width, height: height, color: .white, alpha: 0.92)
        canvas.strokeRectangle(x: x, y: y, width: width, height: height, color: RGBColor(hex: 0xbbbbbb))
        for (row, entry) in entries.enumerated() {
            let centerY = y + 6 + row * ChartLayout.legendRowHeight + ChartLayout.legendRowHeight / 2
            let swatchWidth = lineSwatch ? 30 : 14
            if lineSwatch {
                let points = [(x: Double(x + 12), y: Double(centerY) + 0.5),
                              (x: Double(x + 12 + swatchWidth), y: Double(centerY) + 0.5)]
                canvas.strokePolyline(points, lineWidth: 3, color: entry.1, clip: (x, y, width, height))
            } else {
                canvas.fillDisk(centerX: Double(x + 12 + swatchWidth / 2), centerY: Double(centerY) + 0.5,
                                radius: 6, color: entry.1)
            }
            canvas.drawText(entry.0, x: x + 12 + swatchWidth + 10, y: centerY, scale: ChartLayout.textScale,
                            color: ChartLayout.textColor, anchor: .middleLeft)
        }
    }

    /// The data range widened by `margin` (a fraction) on each side; a single value or no
    /// data still gets a visible range.
    static func range(of values: [Double], margin: Double) -> (Double, Double) {
        guard let low = values.min(), let high = values.max() else { return (0, 1) }
        if high - low <= abs(high) * 1e-12 {
            let pad = high == 0 ? 1 : abs(high) * 0.1
            return (low - pad, high + pad)
        }
        let pad = (high - low) * margin
        return (low - pad, high + pad)
    }

    /// Round-number ticks (1, 2 or 5 times a power of ten) inside [low, high], about
    /// `targetCount` of them, with labels showing just enough decimals to tell them apart.
    static func ticks(low: Double, high: Double, targetCount: Int, integerOnly: Bool) -> ([Double], [String]) {
        let rough = (high - low) / Double(max(1, targetCount))
        let power = pow(10, (log10(rough)).rounded(.down))
        let fraction = rough / power
        var step = (fraction < 1.5 ? 1 : fraction < 3.5 ? 2 : fraction < 7.5 ? 5 : 10) * power
        if integerOnly { step = max(1, step.rounded()) }
        let first = (low / step).rounded(.up)
        let last = (high / step).rounded(.down)
        guard first <= last, last - first < 1000 else { return ([], []) }
        let ticks = stride(from: first, through: last, by: 1).map { $0 * step }
        let decimals = max(0, Int(-(log10(step) + 1e-9).rounded(.down)))
        let largest = ticks.map(abs).max() ?? 0
        let labels = ticks.map { value -> String in
            if abs(value) < step * 1e-6 { return "0" }
            if largest >= 1e6 || decimals > 5 {
                // "2e+07" reads better as "2e7".
                return String(format: "%.3g", value).replacingOccurrences(of: "e+0", with: "e")
                    .replacingOccurrences(of: "e-0", with: "e-").replacingOccurrences(of: "e+", with: "e")
            }
            return String(format: "%.\(decimals)f", value)
        }
        return (ticks, labels)
    }
}
