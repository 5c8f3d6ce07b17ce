import LatentData

/// A picture made of 28 x 28 images in `rows` x `columns` cells, row-major, values in
/// [0, 1]: what every explore command draws. Cells without an image stay black.
public struct ImageTable: Sendable, Equatable {
    public static let side = 28
    public static let pixels = side * side

    public let rows: Int
    public let columns: Int
    /// rows x columns x 784 floats.
    public private(set) var images: [Float]

    /// `images` fill the cells row by row; missing cells are black, extra images are refused.
    public init(rows: Int, columns: Int, images: [Float] = []) throws {
        guard rows >= 1, columns >= 1 else { throw ExploreError("a picture needs at least one row and one column, got \(rows) x \(columns)") }
        let cells = rows * columns * Self.pixels
        guard images.count <= cells, images.count % Self.pixels == 0 else {
            throw ExploreError("\(images.count / Self.pixels) images do not fit \(rows) x \(columns) cells")
        }
        self.rows = rows
        self.columns = columns
        self.images = images + [Float](repeating: 0, count: cells - images.count)
    }

    /// The image in cell (`row`, `column`).
    public func cell(row: Int, column: Int) -> ArraySlice<Float> {
        let start = (row * columns + column) * Self.pixels
        return images[start..<(start + Self.pixels)]
    }

    /// Puts `image` (784 floats) into cell (`row`, `column`).
    public mutating func set(row: Int, column: Int, _ image: ArraySlice<Float>) {
        precondition(row >= 0 && row < rows && column >= 0 && column < columns && image.count == Self.pixels,
                     "cell (\(row), \(column)) of \(rows) x \(columns), \(image.count) floats")
        let start = (row * columns + column) * Self.pixels
        images.replaceSubrange(start..<(start + Self.pixels), with: image)
    }

    /// Image `index` of a flat array of 784-float images.
    public static func image(_ images: [Float], _ index: Int) -> ArraySlice<Float> {
        images[(index * pixels)..<((index + 1) * pixels)]
    }

    /// Pairs of rows: `top` images in one row, `bottom` images in the row under it,
    /// `columns` to a row (originals over reconstructions, noisy over denoised).
    public static func interleaved(top: [Float], bottom: [Float], columns: Int) throws -> ImageTable {
        let count = top.count / pixels
        guard count >= 1, bottom.count == top.count else { throw ExploreError("two rows of images need the same, non-zero count") }
        let across = max(1, min(columns, count))
        let blocks = (count + across - 1) / across
        var table = try ImageTable(rows: 2 * blocks, columns: across)
        for index in 0..<count {
            let block = index / across, column = index % across
            table.set(row: 2 * block, column: column, image(top, index))
            table.set(row: 2 * block + 1, column: column, image(bottom, index))
        }
        return table
    }

    /// The PNG picture: `padding` pixels between cells, each pixel `scale` times.
    public func render(scale: Int = 2, padding: Int = 2, padValue: Float = 0.35) -> RasterImage {
        ImageGrid.make(images: images, height: Self.side, width: Self.side, columns: columns,
                       padding: padding, padValue: padValue, scale: max(1, scale))
    }

    /// The size `render` produces, for tests and messages.
    public func renderedSize(scale: Int = 2, padding: Int = 2) -> (width: Int, height: Int) {
        (max(1, scale) * (columns * (Self.side + padding) + padding), max(1, scale) * (rows * (Self.side + padding) + padding))
    }
}
