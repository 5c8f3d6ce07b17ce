/// A Float32 tensor in row-major NCHW order, stored on one backend. Tensors are
/// reference types so that layers can keep and reuse their buffers from step to step;
/// `reshaped` shares storage.
public final class Tensor: Sendable, CustomStringConvertible {
    public let backend: any Backend
    public let shape: [Int]
    public let view: BufferView

    public var count: Int { view.count }

    /// A tensor of zeros.
    public init(zeros shape: [Int], on backend: any Backend) throws {
        let count = try Shape.elementCount(shape)
        self.backend = backend
        self.shape = shape
        self.view = try BufferView(try backend.makeBuffer(count: count))
        try backend.fill(view, value: 0)
    }

    /// A tensor holding `values`, which must have exactly as many elements as `shape`.
    public convenience init(_ values: [Float], shape: [Int], on backend: any Backend) throws {
        let count = try Shape.elementCount(shape)
        guard values.count == count else {
            throw LatentError.shape("\(values.count) values do not fill shape \(Shape.describe(shape))")
        }
        try self.init(zeros: shape, on: backend)
        try copy(from: values)
    }

    /// A tensor over existing storage.
    public init(view: BufferView, shape: [Int], on backend: any Backend) throws {
        guard try Shape.elementCount(shape) == view.count else {
            throw LatentError.shape("shape \(Shape.describe(shape)) does not match a view of \(view.count) floats")
        }
        self.backend = backend
        self.shape = shape
        self.view = view
    }

    /// The same storage seen with another shape of the same element count.
    public func reshaped(_ newShape: [Int]) throws -> Tensor {
        guard try Shape.elementCount(newShape) == count else {
            throw LatentError.shape("cannot reshape \(Shape.describe(shape)) to \(Shape.describe(newShape))")
        }
        return try Tensor(view: view, shape: newShape, on: backend)
    }

    /// Copies the tensor to the host (waits for pending ops).
    public func toArray() throws -> [Float] {
        var values = [Float](repeating: 0, count: count)
        try values.withUnsafeMutableBufferPointer { try backend.read(view, into: $0) }
        return values
    }

    /// Overwrites the tensor with host values.
    public func copy(from values: [Float]) throws {
        guard values.count == count else {
            throw LatentError.shape("\(values.count) values do not fill tensor of shape \(Shape.describe(shape))")
        }
        try values.withUnsafeBufferPointer { try backend.write($0, to: view) }
    }

    /// The first element, for one-element results such as losses.
    public func scalar() throws -> Float {
        var value: Float = 0
        try withUnsafeMutablePointer(to: &value) { pointer in
            try backend.read(try view.slice(0, count: 1), into: UnsafeMutableBufferPointer(start: pointer, count: 1))
        }
        return value
    }

    public var description: String { "Tensor\(Shape.describe(shape)) on \(backend.name)" }
}
