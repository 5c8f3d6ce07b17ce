import Foundation

extension LineChart {
    /// The chart as an SVG element to put inline in an HTML page (or save as a .svg file):
    /// the same round-number ticks, colours and gaps at non-finite values as `render()`,
    /// drawn as vectors with the page's font. `width` and `height` are the viewBox; the
    /// element scales to its container's width.
    public func svg() -> String {
        let finite = series.flatMap { s in zip(s.x, s.y).filter { $0.0.isFinite && $0.1.isFinite } }
        let xValues = finite.map(\.0), yValues = finite.map(\.1)
        let xRange = ChartLayout.range(of: xValues, margin: 0)
        let yRange = ChartLayout.range(of: yValues, margin: 0.05)
        let wholeX = !xValues.isEmpty && xValues.allSatisfy { $0 == $0.rounded() }

        let fontSize = 13.0
        let characterWidth = fontSize * 0.6
        let top = title.isEmpty ? 16.0 : 40.0
        let bottom = 30.0 + (xLabel.isEmpty ? 0 : 20)
        let roughHeight = Double(height) - top - bottom
        let (yTicks, yLabels) = ChartLayout.ticks(low: yRange.0, high: yRange.1,
                                                   targetCount: max(3, Int(roughHeight / 45)), integerOnly: false)
        let labelWidth = Double(yLabels.map(\.count).max() ?? 1) * characterWidth
        let left = 12 + (yLabel.isEmpty ? 0 : 22) + labelWidth + 10
        let right = 16.0
        let plotWidth = max(10, Double(width) - left - right)
        let plotHeight = max(10, roughHeight)
        let (xTicks, xLabels) = ChartLayout.ticks(low: xRange.0, high: xRange.1,
                                                   targetCount: max(2, Int(plotWidth / 80)), integerOnly: wholeX)
        func px(_ x: Double) -> Double { left + (x - xRange.0) / (xRange.1 - xRange.0) * plotWidth }
        func py(_ y: Double) -> Double { top + plotHeight - (y - yRange.0) / (yRange.1 - yRange.0) * plotHeight }
        func f(_ value: Double) -> String { String(format: "%.1f", value) }

        var svg = "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 \(width) \(height)\" "
            + "width=\"100%\" style=\"max-width:\(width)px\" role=\"img\" aria-label=\"\(Self.escape(title))\" "
            + "font-family=\"system-ui, sans-serif\" font-size=\"\(f(fontSize))\">\n"
        svg += "<rect width=\"\(width)\" height=\"\(height)\" fill=\"#fff\"/>\n"
        if !title.isEmpty {
            svg += "<text x=\"\(f(left + plotWidth / 2))\" y=\"26\" text-anchor=\"middle\" font-size=\"16\" font-weight=\"600\">\(Self.escape(title))</text>\n"
        }
        // Grid, ticks and tick labels.
        svg += "<g stroke=\"#e5e5e5\" stroke-width=\"1\">"
        for tick in xTicks { svg += "<line x1=\"\(f(px(tick)))\" y1=\"\(f(top))\" x2=\"\(f(px(tick)))\" y2=\"\(f(top + plotHeight))\"/>" }
        for tick in yTicks { svg += "<line x1=\"\(f(left))\" y1=\"\(f(py(tick)))\" x2=\"\(f(left + plotWidth))\" y2=\"\(f(py(tick)))\"/>" }
        svg += "</g>\n<g fill=\"#222\">"
        for (tick, label) in zip(xTicks, xLabels) {
            svg += "<text x=\"\(f(px(tick)))\" y=\"\(f(top + plotHeight + 18))\" text-anchor=\"middle\">\(Self.escape(label))</text>"
        }
        for (tick, label) in zip(yTicks, yLabels) {
            svg += "<text x=\"\(f(left - 8))\" y=\"\(f(py(tick) + 4))\" text-anchor=\"end\">\(Self.escape(label))</text>"
        }
        if !xLabel.isEmpty {
            svg += "<text x=\"\(f(left + plotWidth / 2))\" y=\"\(f(top + plotHeight + 40))\" text-anchor=\"middle\">\(Self.escape(xLabel))</text>"
        }
        if !yLabel.isEmpty {
            let cy = top + plotHeight / 2
            svg += "<text x=\"16\" y=\"\(f(cy))\" text-anchor=\"middle\" transform=\"rotate(-90 16 \(f(cy)))\">\(Self.escape(yLabel))</text>"
        }
        svg += "</g>\n"
        svg += "<rect x=\"\(f(left))\" y=\"\(f(top))\" width=\"\(f(plotWidth))\" height=\"\(f(plotHeight))\" fill=\"none\" stroke=\"#333\"/>\n"

        // The lines: one polyline per finite run, markers when there are few points.
        let markers = series.allSatisfy { $0.x.count <= 40 }
        for (index, line) in series.enumerated() {
            let color = Self.hex(RGBColor.categorical[index % RGBColor.categorical.count])
            svg += "<g class=\"series\" data-name=\"\(Self.escape(line.name))\" stroke=\"\(color)\" fill=\"\(color)\">"
            var run: [String] = []
            func flush() {
                if run.count > 1 {
                    svg += "<polyline fill=\"none\" stroke-width=\"2.5\" stroke-linejoin=\"round\" points=\"\(run.joined(separator: " "))\"/>"
                }
                run.removeAll()
            }
            for (x, y) in zip(line.x, line.y) {
                guard x.isFinite && y.isFinite else { flush(); continue }
                run.append("\(f(px(x))),\(f(py(y)))")
                if markers { svg += "<circle cx=\"\(f(px(x)))\" cy=\"\(f(py(y)))\" r=\"3.5\" stroke=\"none\"/>" }
            }
            flush()
            svg += "</g>\n"
        }

        // Legend, top right.
        if !series.isEmpty {
            let rowHeight = 20.0
            let boxWidth = 12 + 28 + 8 + Double(series.map(\.name.count).max() ?? 0) * characterWidth + 12
            let boxHeight = Double(series.count) * rowHeight + 10
            // The plot corner whose box covers the fewest points of the lines (sampled
            // along each segment, so a line crossing the corner counts too).
            var points: [(x: Double, y: Double)] = []
            for line in series {
                var previous: (x: Double, y: Double)?
                for (x, y) in zip(line.x, line.y) {
                    guard x.isFinite && y.isFinite else { previous = nil; continue }
                    let point = (x: px(x), y: py(y))
                    if let previous {
                        for step in 1...16 {
                            let t = Double(step) / 16
                            points.append((previous.x + (point.x - previous.x) * t, previous.y + (point.y - previous.y) * t))
                        }
                    } else {
                        points.append(point)
                    }
                    previous = point
                }
            }
            let corners = [(left + plotWidth - boxWidth - 10, top + 10), (left + 10, top + 10),
                           (left + plotWidth - boxWidth - 10, top + plotHeight - boxHeight - 10),
                           (left + 10, top + plotHeight - boxHeight - 10)]
            func covered(_ corner: (Double, Double)) -> Int {
                points.filter { point in
                    point.x >= corner.0 - 6 && point.x <= corner.0 + boxWidth + 6
                        && point.y >= corner.1 - 6 && point.y <= corner.1 + boxHeight + 6
                }.count
            }
            let best = corners.min { covered($0) < covered($1) } ?? corners[0]
            let x = best.0, y = best.1
            svg += "<g class=\"legend\"><rect x=\"\(f(x))\" y=\"\(f(y))\" width=\"\(f(boxWidth))\" height=\"\(f(boxHeight))\" fill=\"#fff\" fill-opacity=\"0.92\" stroke=\"#bbb\"/>"
            for (index, line) in series.enumerated() {
                let color = Self.hex(RGBColor.categorical[index % RGBColor.categorical.count])
                let cy = y + 5 + Double(index) * rowHeight + rowHeight / 2
                svg += "<line x1=\"\(f(x + 12))\" y1=\"\(f(cy))\" x2=\"\(f(x + 40))\" y2=\"\(f(cy))\" stroke=\"\(color)\" stroke-width=\"3\"/>"
                svg += "<text x=\"\(f(x + 48))\" y=\"\(f(cy + 4))\" fill=\"#222\">\(Self.escape(line.name))</text>"
            }
            svg += "</g>\n"
        }
        svg += "</svg>"
        return svg
    }

    static func hex(_ color: RGBColor) -> String {
        String(format: "#%02x%02x%02x", color.red, color.green, color.blue)
    }

    static func escape(_ text: String) -> String { Markup.escape(text) }
}

/// Escaping for the SVG charts and the HTML run report, which share one rule.
public enum Markup {
    /// Text for XML/HTML content and attribute values.
    public static func escape(_ text: String) -> String {
        var out = ""
        for character in text {
            switch character {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "\"": out += "&quot;"
            case "'": out += "&#39;"
            default: out.append(character)
            }
        }
        return out
    }
}
