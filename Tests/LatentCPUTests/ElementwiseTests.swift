import Foundation
import XCTest
import LatentCore
@testable import LatentCPU

/// Elementwise ops and the vector math under them, against Double-precision references.
final class ElementwiseTests: XCTestCase {
    static let activations: [Activation] = [.identity, .relu, .leakyReLU(slope: 0.2), .sigmoid, .tanh, .softplus]

    static func activate(_ x: Double, _ activation: Activation) -> Double {
        switch activation {
        case .identity: return x
        case .relu: return Swift.max(x, 0)
        case .leakyReLU(let slope): return x > 0 ? x : Double(slope) * x
        case .sigmoid: return 1 / (1 + Foundation.exp(-x))
        case .tanh: return Foundation.tanh(x)
        case .softplus: return x > 20 ? x : Foundation.log1p(Foundation.exp(x))
        }
    }

    /// PyTorch's derivatives: relu from the output (0 at 0), leaky from the input (slope at 0).
    static func derivative(_ x: Double, _ activation: Activation) -> Double {
        switch activation {
        case .identity: return 1
        case .relu: return x > 0 ? 1 : 0
        case .leakyReLU(let slope): return x > 0 ? 1 : Double(slope)
        case .sigmoid:
            let s = 1 / (1 + Foundation.exp(-x))
            return s * (1 - s)
        case .tanh:
            let t = Foundation.tanh(x)
            return 1 - t * t
        case .softplus: return x > 20 ? 1 : 1 / (1 + Foundation.exp(-x))
        }
    }

    /// Random values plus the edges: zeros, tiny values, softplus's threshold, saturation.
    func inputs(_ count: Int, seed: UInt64) -> [Float] {
        var random = TestRandom(seed: seed)
        let specials: [Float] = [0, -0.0, 1e-7, -1e-7, 1e-3, -1e-3, 0.6, -0.6, 0.65, 19.99, 20, 20.01, 30, -30,
                                 -100, 100, 88, -88, 1e-30]
        return Array((specials + random.array(Swift.max(0, count - specials.count), -10, 10)).prefix(count))
    }

    func testBiasActivationForward() throws {
        for threads in [1, 2] {
            let f = Fixture(threads: threads)
            var random = TestRandom(seed: 20)
            for (batch, channels, spatial) in [(3, 5, 1), (2, 7, 3), (4, 3, 20), (2, 2, 20_000)] {
                let count = batch * channels * spatial
                let x = inputs(count, seed: UInt64(count)), bias = random.array(channels)
                for activation in Self.activations {
                    for useBias in [false, true] {
                        let output = try f.zeros(count)
                        try f.backend.biasActivationForward(input: try f.buffer(x), bias: useBias ? try f.buffer(bias) : nil,
                                                            activation: activation, output: output,
                                                            channels: channels, spatial: spatial)
                        let expected = x.indices.map { i in
                            let shifted = x[i] + (useBias ? bias[(i / spatial) % channels] : 0)
                            return Float(Self.activate(Double(shifted), activation))
                        }
                        assertClose(try f.read(output), expected, absolute: 1e-37, relative: 5e-7,
                                    "\(activation) bias \(useBias) \(batch)x\(channels)x\(spatial)")
                    }
                }
            }
        }
    }

    func testActivationInPlace() throws {
        let f = Fixture()
        let x = inputs(100, seed: 21)
        let view = try f.buffer(x)
        try f.backend.biasActivationForward(input: view, bias: nil, activation: .tanh, output: view, channels: 1, spatial: 100)
        assertClose(try f.read(view), x.map { Float(Foundation.tanh(Double($0))) }, absolute: 1e-37, relative: 5e-7)
    }

    func testActivationBackward() throws {
        let f = Fixture()
        var random = TestRandom(seed: 22)
        let count = 1001
        let x = inputs(count, seed: 23), grad = random.array(count), existing = random.array(count)
        for activation in Self.activations {
            let output = try f.zeros(count)
            try f.backend.biasActivationForward(input: try f.buffer(x), bias: nil, activation: activation, output: output,
                                                channels: 1, spatial: count)
            for accumulate in [false, true] {
                let gradInput = try f.buffer(existing)
                try f.backend.activationBackward(activation, input: try f.buffer(x), output: output,
                                                 gradOutput: try f.buffer(grad), gradInput: gradInput, accumulate: accumulate)
                let expected = x.indices.map { i in
                    Float(Double(grad[i]) * Self.derivative(Double(x[i]), activation) + (accumulate ? Double(existing[i]) : 0))
                }
                assertClose(try f.read(gradInput), expected, absolute: 1e-6, relative: 1e-5, "\(activation) accumulate \(accumulate)")
            }
        }
        // The edges PyTorch defines: relu'(0) = 0, leaky'(0) = slope.
        let zero = try f.buffer([0]), one = try f.buffer([1]), result = try f.zeros(1)
        try f.backend.activationBackward(.relu, input: zero, output: zero, gradOutput: one, gradInput: result, accumulate: false)
        XCTAssertEqual(try f.read(result), [0])
        try f.backend.activationBackward(.leakyReLU(slope: 0.25), input: zero, output: zero, gradOutput: one,
                                         gradInput: result, accumulate: false)
        XCTAssertEqual(try f.read(result), [0.25])
    }

    func testVectorMathAccuracy() {
        // Ulps computed in Double: the ulp of a float near FLT_MIN is subnormal, and the
        // backend's threads (this one included) run with denormals-are-zero.
        func ulp(_ value: Double) -> Double { Double(sign: .plus, exponent: Float(value).exponent - 23, significand: 1) }
        func ulps(_ actual: Float, _ expected: Double) -> Double {
            if actual == Float(expected) { return 0 }
            return abs(Double(actual) - expected) / ulp(expected)
        }
        var random = TestRandom(seed: 24)
        var worstExp = 0.0, worstLog = 0.0, worstTanh = 0.0
        for _ in 0..<4000 {
            var x = Vec(), y = Vec(), z = Vec()
            for lane in 0..<16 {
                x[lane] = random.uniform(-87, 88.5)
                y[lane] = Foundation.exp(random.uniform(-85, 85)) // log-uniform positives
                z[lane] = random.uniform(-6, 6) * (random.uniform(0, 1) < 0.5 ? 1e-3 : 1)
            }
            let e = VMath.exp(x), l = VMath.log(y), t = VMath.tanh(z)
            for lane in 0..<16 {
                worstExp = Swift.max(worstExp, ulps(e[lane], Foundation.exp(Double(x[lane]))))
                let logRef = Foundation.log(Double(y[lane]))
                // Near log(1) = 0 compare against the input's precision instead.
                worstLog = Swift.max(worstLog, abs(Double(l[lane]) - logRef) / ulp(Swift.max(abs(logRef), 1e-3)))
                worstTanh = Swift.max(worstTanh, ulps(t[lane], Foundation.tanh(Double(z[lane]))))
            }
        }
        XCTAssertLessThan(worstExp, 2.5, "exp")
        XCTAssertLessThan(worstLog, 2.5, "log")
        XCTAssertLessThan(worstTanh, 3, "tanh")
        // Special values.
        let special = Vec(0, -0.0, .infinity, -.infinity, .nan, -1, 1, 89, -110, 88.72, 1e-38, 2, 3, 4, 5, 6)
        let e = VMath.exp(special), l = VMath.log(special)
        XCTAssertEqual(e[0], 1)
        XCTAssertEqual(e[2], .infinity)
        XCTAssertEqual(e[3], 0)
        XCTAssertTrue(e[4].isNaN)
        XCTAssertEqual(e[7], .infinity)
        XCTAssertEqual(e[8], 0)
        XCTAssertTrue(e[9].isFinite)
        XCTAssertEqual(l[0], -.infinity)
        XCTAssertEqual(l[2], .infinity)
        XCTAssertTrue(l[4].isNaN && l[5].isNaN && l[3].isNaN)
        XCTAssertEqual(l[6], 0)
        let small = VMath.log1p(Vec(repeating: 1e-10))
        XCTAssertEqual(small[0], 1e-10, accuracy: 1e-16)
    }

    /// The vector square root (one instruction through `latent_sqrt16`) is IEEE's: bit for bit
    /// `Float.squareRoot()` on every lane, NaN below zero, the sign of -0 kept.
    func testVectorSquareRootIsCorrectlyRounded() {
        var random = TestRandom(seed: 7)
        for _ in 0..<2000 {
            var x = Vec()
            for lane in 0..<16 { x[lane] = Float(Foundation.exp(Double(random.uniform(-80, 80)))) }
            let root = VMath.sqrt(x)
            for lane in 0..<16 { XCTAssertEqual(root[lane].bitPattern, x[lane].squareRoot().bitPattern) }
        }
        let special = VMath.sqrt(Vec(0, -0.0, .infinity, -.infinity, .nan, -1, 1, 4, 2, 1e-30, 0.25, 9, 16, 1e30, -1e-30, 100))
        XCTAssertEqual(special[0].bitPattern, Float(0).bitPattern)
        XCTAssertEqual(special[1].bitPattern, Float(-0.0).bitPattern)
        XCTAssertEqual(special[2], .infinity)
        XCTAssertTrue(special[3].isNaN && special[4].isNaN && special[5].isNaN && special[14].isNaN)
        XCTAssertEqual(special[6], 1)
        XCTAssertEqual(special[7], 2)
        XCTAssertEqual(special[15], 10)
    }

    func testFillCopyAndBlocks() throws {
        let f = Fixture()
        var random = TestRandom(seed: 25)
        let count = 100_003
        let view = try f.zeros(count)
        try f.backend.fill(view, value: 2.5)
        XCTAssertEqual(Set(try f.read(view)), [2.5])

        let values = random.array(count)
        let source = try f.buffer(values), destination = try f.zeros(count)
        try f.backend.copy(source, to: destination)
        XCTAssertEqual(try f.read(destination), values)

        // Overlapping views of one buffer behave like memmove.
        let shared = try f.buffer(Array(values[0..<40]))
        try f.backend.copy(try shared.slice(0, count: 30), to: try shared.slice(5, count: 30))
        XCTAssertEqual(Array(try f.read(shared)[5..<35]), Array(values[0..<30]))
        assertThrowsLatentError { try f.backend.copy(source, to: try f.zeros(3)) }

        // Concatenate (2, 3) and (2, 2) along the second axis into (2, 5), then split back.
        let a = try f.buffer([1, 2, 3, 4, 5, 6]), b = try f.buffer([7, 8, 9, 10])
        let joined = try f.zeros(10)
        try f.backend.copyBlocks(a, sourceStride: 3, to: joined, destinationStride: 5, blockLength: 3, blockCount: 2)
        try f.backend.copyBlocks(b, sourceStride: 2, to: try joined.slice(3, count: 7), destinationStride: 5,
                                 blockLength: 2, blockCount: 2)
        XCTAssertEqual(try f.read(joined), [1, 2, 3, 7, 8, 4, 5, 6, 9, 10])
        let back = try f.zeros(4)
        try f.backend.copyBlocks(try joined.slice(3, count: 7), sourceStride: 5, to: back, destinationStride: 2,
                                 blockLength: 2, blockCount: 2)
        XCTAssertEqual(try f.read(back), [7, 8, 9, 10])
        assertThrowsLatentError("past the end") {
            try f.backend.copyBlocks(a, sourceStride: 3, to: joined, destinationStride: 5, blockLength: 3, blockCount: 3)
        }
        assertThrowsLatentError("overlapping spans") {
            try f.backend.copyBlocks(joined, sourceStride: 5, to: try joined.slice(2, count: 8), destinationStride: 5,
                                     blockLength: 2, blockCount: 2)
        }
        assertThrowsLatentError("negative stride") {
            try f.backend.copyBlocks(a, sourceStride: -1, to: joined, destinationStride: 5, blockLength: 1, blockCount: 2)
        }
    }

    func testAxpbyAndMultiply() throws {
        let f = Fixture()
        var random = TestRandom(seed: 26)
        let count = 70_001
        let x = random.array(count), y = random.array(count)
        let yView = try f.buffer(y)
        try f.backend.axpby(alpha: 2, x: try f.buffer(x), beta: -0.5, y: yView)
        assertClose(try f.read(yView), zip(x, y).map { 2 * $0 - 0.5 * $1 }, absolute: 1e-6, relative: 1e-6)
        // beta == 0 ignores y, even NaN.
        let nanY = try f.buffer([Float](repeating: .nan, count: 5))
        try f.backend.axpby(alpha: 3, x: try f.buffer([1, 2, 3, 4, 5]), beta: 0, y: nanY)
        XCTAssertEqual(try f.read(nanY), [3, 6, 9, 12, 15])

        let output = try f.zeros(count)
        try f.backend.multiply(try f.buffer(x), try f.buffer(y), output: output)
        XCTAssertEqual(try f.read(output), zip(x, y).map { $0 * $1 })
        assertThrowsLatentError { try f.backend.multiply(try f.buffer(x), try f.zeros(3), output: output) }
        assertThrowsLatentError { try f.backend.axpby(alpha: 1, x: try f.zeros(2), beta: 1, y: try f.zeros(3)) }
    }

    func testReparameterizeAndBackward() throws {
        let f = Fixture()
        var random = TestRandom(seed: 27)
        let count = 333
        let mean = random.array(count), noise = random.array(count, -2, 2), grad = random.array(count)
        let existing = random.array(count)
        for parameterization in [GaussianParameterization.logVariance, .logStd, .std] {
            let parameter = parameterization == .std ? random.array(count, 0.1, 2) : random.array(count, -3, 3)
            func std(_ p: Double) -> Double {
                switch parameterization {
                case .logVariance: return Foundation.exp(p / 2)
                case .logStd: return Foundation.exp(p)
                case .std: return p
                }
            }
            let output = try f.zeros(count)
            try f.backend.reparameterize(mean: try f.buffer(mean), parameter: try f.buffer(parameter), noise: try f.buffer(noise),
                                         output: output, parameterization: parameterization)
            let expected = (0..<count).map { Float(Double(mean[$0]) + std(Double(parameter[$0])) * Double(noise[$0])) }
            assertClose(try f.read(output), expected, absolute: 1e-6, relative: 1e-6, "\(parameterization)")

            for accumulate in [false, true] {
                let gradMean = try f.buffer(existing), gradParameter = try f.buffer(existing)
                try f.backend.reparameterizeBackward(parameter: try f.buffer(parameter), noise: try f.buffer(noise),
                                                     gradOutput: try f.buffer(grad), gradMean: gradMean,
                                                     gradParameter: gradParameter, parameterization: parameterization,
                                                     accumulate: accumulate)
                let base = accumulate ? existing : [Float](repeating: 0, count: count)
                XCTAssertEqual(try f.read(gradMean), zip(base, grad).map { $0 + $1 })
                // Central differences of output = mean + std(p) * noise.
                let h = 1e-4
                let expectedParameter = (0..<count).map { i -> Float in
                    let p = Double(parameter[i])
                    let derivative = (std(p + h) - std(p - h)) / (2 * h)
                    return Float(Double(base[i]) + Double(grad[i]) * Double(noise[i]) * derivative)
                }
                assertClose(try f.read(gradParameter), expectedParameter, absolute: 1e-5, relative: 1e-4,
                            "\(parameterization) accumulate \(accumulate)")
            }
        }
    }
}
