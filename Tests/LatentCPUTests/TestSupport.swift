import XCTest
import LatentCore
@testable import LatentCPU

/// Buffers from arrays and back, for tests that compare a backend op with a scalar reference.
struct Fixture {
    let backend: CPUBackend

    init(threads: Int = 2, convolution: ConvolutionPath = .automatic) {
        backend = CPUBackend(threads: threads, convolution: convolution)
    }

    func buffer(_ values: [Float]) throws -> BufferView {
        let view = try BufferView(try backend.makeBuffer(count: values.count))
        try values.withUnsafeBufferPointer { try backend.write($0, to: view) }
        return view
    }

    func zeros(_ count: Int) throws -> BufferView {
        try BufferView(try backend.makeBuffer(count: count))
    }

    func read(_ view: BufferView) throws -> [Float] {
        var values = [Float](repeating: 0, count: view.count)
        try values.withUnsafeMutableBufferPointer { try backend.read(view, into: $0) }
        return values
    }
}

/// A small deterministic generator (SplitMix64) so test data never depends on Philox,
/// which some tests check.
struct TestRandom {
    var state: UInt64

    init(seed: UInt64) { state = seed }

    mutating func nextBits() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// Uniform in [low, high).
    mutating func uniform(_ low: Float = -1, _ high: Float = 1) -> Float {
        low + (high - low) * Float(nextBits() >> 40) * 0x1p-24
    }

    mutating func array(_ count: Int, _ low: Float = -1, _ high: Float = 1) -> [Float] {
        (0..<count).map { _ in uniform(low, high) }
    }
}

/// `|a - b| <= absolute + relative * |b|` elementwise, reporting the worst element.
func assertClose(_ actual: [Float], _ expected: [Float], absolute: Float = 1e-5, relative: Float = 1e-5,
                 _ message: String = "", file: StaticString = #filePath, line: UInt = #line) {
    XCTAssertEqual(actual.count, expected.count, "count \(message)", file: file, line: line)
    var worst = 0, worstExcess: Float = 0
    for i in 0..<Swift.min(actual.count, expected.count) {
        let a = actual[i], b = expected[i]
        if a == b { continue }
        let excess = abs(a - b) - (absolute + relative * abs(b))
        if excess > worstExcess || excess.isNaN || a.isNaN != b.isNaN {
            worst = i
            worstExcess = excess.isNaN ? .infinity : excess
        }
    }
    if worstExcess > 0 {
        XCTFail("element \(worst): \(actual[worst]) vs expected \(expected[worst]) \(message)", file: file, line: line)
    }
}

func assertClose(_ actual: Float, _ expected: Double, relative: Double = 1e-6, absolute: Double = 0,
                 _ message: String = "", file: StaticString = #filePath, line: UInt = #line) {
    let error = abs(Double(actual) - expected)
    XCTAssertLessThanOrEqual(error, absolute + relative * abs(expected), "\(actual) vs \(expected) \(message)",
                             file: file, line: line)
}

/// Runs `body` and checks it throws a `LatentError`.
func assertThrowsLatentError(_ message: String = "", file: StaticString = #filePath, line: UInt = #line,
                             _ body: () throws -> Void) {
    do {
        try body()
        XCTFail("expected a LatentError \(message)", file: file, line: line)
    } catch is LatentError {
    } catch {
        XCTFail("expected a LatentError, got \(error) \(message)", file: file, line: line)
    }
}

func dot(_ a: [Float], _ b: [Float]) -> Double {
    zip(a, b).reduce(0) { $0 + Double($1.0) * Double($1.1) }
}
