/// An sRGB colour.
struct RGBColor: Sendable, Equatable {
    var red: UInt8
    var green: UInt8
    var blue: UInt8

    init(hex: UInt32) {
        red = UInt8((hex >> 16) & 0xff)
        green = UInt8((hex >> 8) & 0xff)
        blue = UInt8(hex & 0xff)
    }

    static let white = RGBColor(hex: 0xffffff)
    static let black = RGBColor(hex: 0x000000)

    /// Matplotlib's "tab10" palette: ten hues that stay distinct for most colour-blind readers
    /// and that people already associate with class scatter plots.
    static let categorical: [RGBColor] = [
        0x1f77b4, 0xff7f0e, 0x2ca02c, 0xd62728, 0x9467bd,
        0x8c564b, 0xe377c2, 0x7f7f7f, 0xbcbd22, 0x17becf,
    ].map(RGBColor.init(hex:))
}

/// Where a text's anchor point sits on the text.
enum TextAnchor {
    case topLeft, topCenter, topRight, middleLeft, middleRight, center
}

/// An RGB drawing surface with anti-aliased strokes and disks and bitmap text: just enough
/// to draw charts. Coordinates are pixels, y down; a pixel's centre is at (x + 0.5, y + 0.5).
struct Canvas {
    let width: Int
    let height: Int
    private(set) var pixels: [UInt8]

    init(width: Int, height: Int, background: RGBColor = .white) {
        precondition(width > 0 && height > 0, "empty canvas")
        self.width = width
        self.height = height
        pixels = [UInt8](repeating: 0, count: width * height * 3)
        fillRectangle(x: 0, y: 0, width: width, height: height, color: background)
    }

    var image: RasterImage { RasterImage(width: width, height: height, format: .rgb, pixels: pixels) }

    /// Mixes `color` into one pixel with opacity `alpha` (0...1); outside pixels are ignored.
    @inline(__always)
    mutating func blend(x: Int, y: Int, color: RGBColor, alpha: Double) {
        guard x >= 0, y >= 0, x < width, y < height, alpha > 0 else { return }
        let a = min(alpha, 1)
        let i = (y * width + x) * 3
        func mix(_ old: UInt8, _ new: UInt8) -> UInt8 {
            UInt8((Double(old) * (1 - a) + Double(new) * a).rounded())
        }
        pixels[i] = mix(pixels[i], color.red)
        pixels[i + 1] = mix(pixels[i + 1], color.green)
        pixels[i + 2] = mix(pixels[i + 2], color.blue)
    }

    mutating func fillRectangle(x: Int, y: Int, width w: Int, height h: Int, color: RGBColor, alpha: Double = 1) {
        let x0 = max(0, x), y0 = max(0, y), x1 = min(width, x + w), y1 = min(height, y + h)
        guard x0 < x1, y0 < y1 else { return }
        for py in y0..<y1 {
            for px in x0..<x1 { blend(x: px, y: py, color: color, alpha: alpha) }
        }
    }

    /// A one-pixel rectangle outline.
    mutating func strokeRectangle(x: Int, y: Int, width w: Int, height h: Int, color: RGBColor) {
        fillRectangle(x: x, y: y, width: w, height: 1, color: color)
        fillRectangle(x: x, y: y + h - 1, width: w, height: 1, color: color)
        fillRectangle(x: x, y: y, width: 1, height: h, color: color)
        fillRectangle(x: x + w - 1, y: y, width: 1, height: h, color: color)
    }

    /// An anti-aliased polyline of `lineWidth` pixels, drawn only inside `clip`. Coverage is
    /// gathered over the whole line first (the maximum per pixel) and blended once, so joints
    /// do not darken where segments overlap.
    mutating func strokePolyline(_ points: [(x: Double, y: Double)], lineWidth: Double, color: RGBColor,
                                 clip: (x: Int, y: Int, width: Int, height: Int)) {
        guard !points.isEmpty else { return }
        let reach = lineWidth / 2 + 1
        let clipX0 = max(0, clip.x), clipY0 = max(0, clip.y)
        let clipX1 = min(width, clip.x + clip.width), clipY1 = min(height, clip.y + clip.height)
        guard clipX0 < clipX1, clipY0 < clipY1 else { return }
        let maskWidth = clipX1 - clipX0
        var coverage = [Float](repeating: 0, count: maskWidth * (clipY1 - clipY0))
        let segments = points.count == 1 ? [(points[0], points[0])] : Array(zip(points, points.dropFirst()))
        for (start, end) in segments {
            let minX = max(clipX0, Int((min(start.x, end.x) - reach).rounded(.down)))
            let maxX = min(clipX1 - 1, Int((max(start.x, end.x) + reach).rounded(.up)))
            let minY = max(clipY0, Int((min(start.y, end.y) - reach).rounded(.down)))
            let maxY = min(clipY1 - 1, Int((max(start.y, end.y) + reach).rounded(.up)))
            guard minX <= maxX, minY <= maxY else { continue }
            let dx = end.x - start.x, dy = end.y - start.y
            let lengthSquared = dx * dx + dy * dy
            for py in minY...maxY {
                for px in minX...maxX {
                    let cx = Double(px) + 0.5, cy = Double(py) + 0.5
                    var t = lengthSquared > 0 ? ((cx - start.x) * dx + (cy - start.y) * dy) / lengthSquared : 0
                    t = min(1, max(0, t))
                    let ex = cx - (start.x + t * dx), ey = cy - (start.y + t * dy)
                    let distance = (ex * ex + ey * ey).squareRoot()
                    let value = Float(min(1, max(0, lineWidth / 2 + 0.5 - distance)))
                    let index = (py - clipY0) * maskWidth + (px - clipX0)
                    if value > coverage[index] { coverage[index] = value }
                }
            }
        }
        for py in clipY0..<clipY1 {
            for px in clipX0..<clipX1 {
                let value = coverage[(py - clipY0) * maskWidth + (px - clipX0)]
                if value > 0 { blend(x: px, y: py, color: color, alpha: Double(value)) }
            }
        }
    }

    /// An anti-aliased filled circle.
    mutating func fillDisk(centerX: Double, centerY: Double, radius: Double, color: RGBColor, alpha: Double = 1) {
        let minX = Int((centerX - radius - 1).rounded(.down)), maxX = Int((centerX + radius + 1).rounded(.up))
        let minY = Int((centerY - radius - 1).rounded(.down)), maxY = Int((centerY + radius + 1).rounded(.up))
        for py in minY...maxY {
            for px in minX...maxX {
                let ex = Double(px) + 0.5 - centerX, ey = Double(py) + 0.5 - centerY
                let coverage = min(1, max(0, radius + 0.5 - (ex * ex + ey * ey).squareRoot()))
                if coverage > 0 { blend(x: px, y: py, color: color, alpha: coverage * alpha) }
            }
        }
    }

    /// Draws `text` with the bitmap font at an integer `scale`; the anchor point refers to the
    /// text's box from the top of capitals to the baseline (descenders hang below it).
    mutating func drawText(_ text: String, x: Int, y: Int, scale: Int, color: RGBColor,
                           anchor: TextAnchor = .topLeft) {
        let textWidth = BitmapFont.width(of: text, scale: scale)
        let capHeight = BitmapFont.ascent * scale
        var left = x, top = y
        switch anchor {
        case .topLeft: break
        case .topCenter: left -= textWidth / 2
        case .topRight: left -= textWidth
        case .middleLeft: top -= capHeight / 2
        case .middleRight: left -= textWidth; top -= capHeight / 2
        case .center: left -= textWidth / 2; top -= capHeight / 2
        }
        for (index, character) in text.enumerated() {
            let originX = left + index * BitmapFont.advance * scale
            for row in 0..<BitmapFont.cellHeight {
                for column in 0..<BitmapFont.glyphWidth
                where BitmapFont.isInk(character, column: column, row: row) {
                    fillRectangle(x: originX + column * scale, y: top + row * scale,
                                  width: scale, height: scale, color: color)
                }
            }
        }
    }

    /// Draws `text` turned a quarter left (reading bottom to top), centred on (`centerX`,
    /// `centerY`): the usual y-axis title.
    mutating func drawVerticalText(_ text: String, centerX: Int, centerY: Int, scale: Int, color: RGBColor) {
        let textWidth = BitmapFont.width(of: text, scale: scale)
        let capHeight = BitmapFont.ascent * scale
        let left = centerX - capHeight / 2           // the glyph tops face left
        let bottom = centerY + textWidth / 2
        for (index, character) in text.enumerated() {
            for row in 0..<BitmapFont.cellHeight {
                for column in 0..<BitmapFont.glyphWidth
                where BitmapFont.isInk(character, column: column, row: row) {
                    let along = (index * BitmapFont.advance + column) * scale
                    fillRectangle(x: left + row * scale, y: bottom - along - scale,
                                  width: scale, height: scale, color: color)
                }
            }
        }
    }
}
