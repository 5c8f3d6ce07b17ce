import XCTest
import LatentCore
import LatentCPU
@testable import LatentNN

/// One CPU backend for every test (two threads exercise the parallel paths).
let cpu = CPUBackend(threads: 2)

/// A tiny seeded generator (SplitMix64) for test data, independent of the backend's Philox.
struct TestRandom {
    private var state: UInt64

    init(seed: UInt64) { state = seed }

    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    mutating func uniform(_ low: Float, _ high: Float) -> Float {
        low + (high - low) * Float(next() >> 40) * 0x1p-24
    }

    mutating func values(_ count: Int, _ low: Float = -1, _ high: Float = 1) -> [Float] {
        (0..<count).map { _ in uniform(low, high) }
    }

    /// Values with magnitude in [low, high] and random sign: away from the kinks of ReLU and L1.
    mutating func awayFromZero(_ count: Int, _ low: Float = 0.1, _ high: Float = 1) -> [Float] {
        (0..<count).map { _ in uniform(low, high) * (next() & 1 == 0 ? 1 : -1) }
    }

    mutating func tensor(_ shape: [Int], _ low: Float = -1, _ high: Float = 1) throws -> Tensor {
        try Tensor(values(shape.reduce(1, *), low, high), shape: shape, on: cpu)
    }

    mutating func index(below bound: Int) -> Int { Int(next() % UInt64(bound)) }
}

func dot(_ a: [Float], _ b: [Float]) -> Double {
    zip(a, b).reduce(0) { $0 + Double($1.0) * Double($1.1) }
}

/// Central-difference gradient checks: `(L(x + eps) - L(x - eps)) / 2 eps` for each
/// (sampled) element of each variable, against the analytic gradient.
enum GradientCheck {
    struct Variable {
        let name: String
        let tensor: Tensor
        let analytic: [Float]
    }

    struct Tolerance {
        var eps: Float = 1e-2
        /// Relative to the larger of the two gradients.
        var relative: Double = 1e-2
        /// Absolute floor, for gradients near zero (float rounding of the loss / 2 eps).
        var absolute: Double = 2e-3
    }

    /// Perturbs each variable in place (restoring it) and compares. `loss` recomputes the
    /// scalar from scratch.
    static func check(_ label: String, _ variables: [Variable], tolerance: Tolerance = Tolerance(),
                      maxSamples: Int = 40, seed: UInt64 = 99,
                      file: StaticString = #filePath, line: UInt = #line,
                      loss: () throws -> Double) throws {
        let results = try mismatches(variables, tolerance: tolerance, maxSamples: maxSamples, seed: seed, loss: loss)
        for (variable, (checked, failures)) in zip(variables, results) {
            XCTAssertGreaterThan(checked, 0, "\(label) \(variable.name): nothing checked", file: file, line: line)
            XCTAssertTrue(failures.isEmpty,
                          "\(label) \(variable.name): \(failures.count)/\(checked) mismatches: \(failures.prefix(6).joined(separator: "; "))",
                          file: file, line: line)
        }
    }

    /// For each variable: how many elements were checked and a line per mismatch.
    static func mismatches(_ variables: [Variable], tolerance: Tolerance = Tolerance(), maxSamples: Int = 40,
                           seed: UInt64 = 99, loss: () throws -> Double) throws -> [(checked: Int, failures: [String])] {
        var random = TestRandom(seed: seed)
        var results: [(checked: Int, failures: [String])] = []
        for variable in variables {
            var values = try variable.tensor.toArray()
            guard values.count == variable.analytic.count else {
                results.append((0, ["gradient has \(variable.analytic.count) elements, variable \(values.count)"]))
                continue
            }
            var indices = Array(values.indices)
            if indices.count > maxSamples {
                var picked = Set<Int>()
                while picked.count < maxSamples { picked.insert(random.index(below: values.count)) }
                indices = picked.sorted()
            }
            var failures: [String] = []
            for index in indices {
                let original = values[index]
                let plus = original + tolerance.eps
                let minus = original - tolerance.eps
                values[index] = plus
                try variable.tensor.copy(from: values)
                let lossPlus = try loss()
                values[index] = minus
                try variable.tensor.copy(from: values)
                let lossMinus = try loss()
                values[index] = original
                try variable.tensor.copy(from: values)
                let numeric = (lossPlus - lossMinus) / (Double(plus) - Double(minus))
                let analytic = Double(variable.analytic[index])
                let allowed = tolerance.absolute + tolerance.relative * max(abs(numeric), abs(analytic))
                if !(abs(numeric - analytic) <= allowed) {
                    failures.append("[\(index)] numeric \(numeric) analytic \(analytic)")
                }
            }
            results.append((indices.count, failures))
        }
        _ = try loss() // leave the caches at the unperturbed point
        return results
    }

    /// Checks a layer's input gradient and every parameter gradient with the scalar
    /// `L = sum(projection * forward(input))`, `projection` random and fixed.
    /// `prepare` runs before every forward (e.g. to replay a dropout mask).
    static func checkLayer(_ label: String, _ layer: any Layer, input: Tensor, training: Bool = true,
                           tolerance: Tolerance = Tolerance(), maxSamples: Int = 40,
                           file: StaticString = #filePath, line: UInt = #line,
                           prepare: () -> Void = {}) throws {
        prepare()
        let output = try layer.forward(input, training: training)
        var random = TestRandom(seed: 7)
        let projection = random.values(output.count)
        let gradOutput = try Tensor(projection, shape: output.shape, on: cpu)
        try layer.zeroGradients()
        let gradInput = try layer.backward(gradOutput)
        XCTAssertEqual(gradInput.shape, input.shape, "\(label): input gradient shape", file: file, line: line)
        var variables = [Variable(name: "input", tensor: input, analytic: try gradInput.toArray())]
        for (name, parameter) in layer.namedParameters() {
            variables.append(Variable(name: name, tensor: parameter.value, analytic: try parameter.gradient.toArray()))
        }
        try check(label, variables, tolerance: tolerance, maxSamples: maxSamples, file: file, line: line) {
            prepare()
            return dot(try layer.forward(input, training: training).toArray(), projection)
        }
    }
}

func assertClose(_ actual: [Float], _ expected: [Float], relative: Float = 1e-5, absolute: Float = 1e-6,
                 _ message: String = "", file: StaticString = #filePath, line: UInt = #line) {
    XCTAssertEqual(actual.count, expected.count, "\(message): count", file: file, line: line)
    for (index, (a, e)) in zip(actual, expected).enumerated() {
        if abs(a - e) > absolute + relative * abs(e) || !a.isFinite {
            XCTFail("\(message): [\(index)] \(a) != \(e)", file: file, line: line)
            return
        }
    }
}

/// Runs `body` and checks that it throws a `LatentError.shape`.
func assertShapeError(_ message: String, file: StaticString = #filePath, line: UInt = #line, _ body: () throws -> Void) {
    do {
        try body()
        XCTFail("\(message): no error thrown", file: file, line: line)
    } catch let error as LatentError {
        if case .shape = error { return }
        XCTFail("\(message): expected a shape error, got \(error)", file: file, line: line)
    } catch {
        XCTFail("\(message): unexpected error \(error)", file: file, line: line)
    }
}
