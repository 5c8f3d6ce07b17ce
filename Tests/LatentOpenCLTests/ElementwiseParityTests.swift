import XCTest
import LatentCore
@testable import LatentOpenCL

/// Elementwise ops on OpenCL against the CPU backend: odd sizes, view offsets, in-place
/// use, every activation (forward and backward), accumulation, and the reparameterisation
/// for every parameterisation.
final class ElementwiseParityTests: XCTestCase {
    let sizes = [1, 5, 17, 1000, 4099]

    func testFillCopyAxpbyMultiply() throws {
        for backend in try OpenCLTestDevice.elementBackends() {
            let pair = Pair(backend)
            var random = TestRandom(seed: 1)
            for n in sizes {
                let x = try pair.buffers(random.array(n), offset: 3)
                let y = try pair.buffers(random.array(n), offset: 1)
                let o = try pair.buffers(random.array(n))
                try pair.cpu.fill(o.cpu, value: 2.5)
                try pair.cl.fill(o.cl, value: 2.5)
                try pair.assertIdentical(o, "fill \(n)")
                try pair.cpu.multiply(x.cpu, y.cpu, output: o.cpu)
                try pair.cl.multiply(x.cl, y.cl, output: o.cl)
                try pair.assertIdentical(o, "multiply \(n)")
                for (alpha, beta) in [(Float(2), Float(0)), (0.5, -1.5)] {
                    try pair.cpu.axpby(alpha: alpha, x: x.cpu, beta: beta, y: y.cpu)
                    try pair.cl.axpby(alpha: alpha, x: x.cl, beta: beta, y: y.cl)
                    try pair.assertSame(y, tolerance: 1e-6, "axpby \(n) \(alpha) \(beta)")
                }
                try pair.cpu.copy(x.cpu, to: o.cpu)
                try pair.cl.copy(x.cl, to: o.cl)
                try pair.assertIdentical(o, "copy \(n)")
            }
        }
    }

    /// Overlapping views of one buffer copy as memmove does.
    func testOverlappingCopy() throws {
        let pair = Pair(try OpenCLTestDevice.backend())
        var random = TestRandom(seed: 2)
        let all = try pair.buffers(random.array(100))
        for (from, to) in [(0, 10), (10, 0), (5, 6)] {
            try pair.cpu.copy(try all.cpu.slice(from, count: 80), to: try all.cpu.slice(to, count: 80))
            try pair.cl.copy(try all.cl.slice(from, count: 80), to: try all.cl.slice(to, count: 80))
            try pair.assertIdentical(all, "overlap \(from) -> \(to)")
        }
    }

    func testCopyBlocks() throws {
        let pair = Pair(try OpenCLTestDevice.backend())
        var random = TestRandom(seed: 3)
        let source = try pair.buffers(random.array(7 * 13), offset: 2)
        let destination = try pair.buffers(random.array(7 * 20), offset: 1)
        try pair.cpu.copyBlocks(source.cpu, sourceStride: 13, to: destination.cpu, destinationStride: 20, blockLength: 11, blockCount: 7)
        try pair.cl.copyBlocks(source.cl, sourceStride: 13, to: destination.cl, destinationStride: 20, blockLength: 11, blockCount: 7)
        try pair.assertIdentical(destination, "copyBlocks")
        XCTAssertThrowsError(try pair.cl.copyBlocks(source.cl, sourceStride: 13, to: destination.cl, destinationStride: 25,
                                                    blockLength: 11, blockCount: 7))
    }

    static let activations: [Activation] = [.identity, .relu, .leakyReLU(slope: 0.2), .sigmoid, .tanh, .softplus]

    func testBiasActivationForwardAndBackward() throws {
        for backend in try OpenCLTestDevice.elementBackends() {
            let pair = Pair(backend)
            var random = TestRandom(seed: 4)
            for (batch, channels, spatial) in [(3, 5, 1), (2, 7, 17), (4, 3, 49), (1, 1, 1)] {
                let n = batch * channels * spatial
                // Values across every branch: large positive and negative (softplus above 20, exp's
                // overflow and underflow), zeros, tanh's two pieces (|x| = 0.625), tiny values.
                var values = random.array(n, -30, 30)
                if n > 4 { values[1] = 0; values[2] = 21; values[3] = -0.1 }
                if n > 10 { values[4] = 100; values[5] = -120; values[6] = 0.625; values[7] = -0.6251; values[8] = 1e-30; values[9] = -3e-8 }
                let x = try pair.buffers(values, offset: 2)
                let bias = try pair.buffers(random.array(channels), offset: 1)
                for activation in Self.activations {
                    for useBias in [false, true] {
                        let y = try pair.buffers([Float](repeating: 0, count: n), offset: 3)
                        try pair.cpu.biasActivationForward(input: x.cpu, bias: useBias ? bias.cpu : nil, activation: activation,
                                                           output: y.cpu, channels: channels, spatial: spatial)
                        try pair.cl.biasActivationForward(input: x.cl, bias: useBias ? bias.cl : nil, activation: activation,
                                                          output: y.cl, channels: channels, spatial: spatial)
                        // The CPU backend's exp, log1p and tanh, operation for operation (common.clh): the same bits.
                        try pair.assertIdentical(y, "\(activation) bias \(useBias) \(batch)x\(channels)x\(spatial)")
                        let gradOutput = try pair.buffers(random.array(n))
                        for accumulate in [false, true] {
                            let gradInput = try pair.buffers(random.array(n), offset: 1)
                            // The backward pass reads the forward's output: give both backends the CPU's.
                            let (cpuOutput, _) = try pair.read(y)
                            let output = try pair.buffers(cpuOutput)
                            try pair.cpu.activationBackward(activation, input: x.cpu, output: output.cpu, gradOutput: gradOutput.cpu,
                                                            gradInput: gradInput.cpu, accumulate: accumulate)
                            try pair.cl.activationBackward(activation, input: x.cl, output: output.cl, gradOutput: gradOutput.cl,
                                                           gradInput: gradInput.cl, accumulate: accumulate)
                            try pair.assertIdentical(gradInput, "\(activation) backward accumulate \(accumulate)")
                        }
                    }
                }
            }
        }
    }

    /// In place: output == input.
    func testInPlaceActivation() throws {
        let pair = Pair(try OpenCLTestDevice.backend())
        var random = TestRandom(seed: 5)
        let x = try pair.buffers(random.array(300, -3, 3))
        let bias = try pair.buffers(random.array(3))
        try pair.cpu.biasActivationForward(input: x.cpu, bias: bias.cpu, activation: .leakyReLU(slope: 0.2), output: x.cpu, channels: 3, spatial: 100)
        try pair.cl.biasActivationForward(input: x.cl, bias: bias.cl, activation: .leakyReLU(slope: 0.2), output: x.cl, channels: 3, spatial: 100)
        try pair.assertSame(x, tolerance: 1e-6, "in place")
    }

    func testReparameterizeForwardAndBackward() throws {
        for backend in try OpenCLTestDevice.elementBackends() {
            let pair = Pair(backend)
            var random = TestRandom(seed: 6)
            for parameterization in [GaussianParameterization.logVariance, .logStd, .std] {
                let n = 37
                let mean = try pair.buffers(random.array(n))
                let parameter = try pair.buffers(parameterization == .std ? random.array(n, 0.1, 2) : random.array(n, -3, 3), offset: 2)
                let noise = try pair.buffers(random.array(n, -2, 2), offset: 1)
                let output = try pair.buffers(random.array(n))
                try pair.cpu.reparameterize(mean: mean.cpu, parameter: parameter.cpu, noise: noise.cpu, output: output.cpu,
                                            parameterization: parameterization)
                try pair.cl.reparameterize(mean: mean.cl, parameter: parameter.cl, noise: noise.cl, output: output.cl,
                                           parameterization: parameterization)
                try pair.assertIdentical(output, "reparameterize \(parameterization)")
                let gradOutput = try pair.buffers(random.array(n))
                for accumulate in [false, true] {
                    let gradMean = try pair.buffers(random.array(n), offset: 1)
                    let gradParameter = try pair.buffers(random.array(n), offset: 4)
                    try pair.cpu.reparameterizeBackward(parameter: parameter.cpu, noise: noise.cpu, gradOutput: gradOutput.cpu,
                                                        gradMean: gradMean.cpu, gradParameter: gradParameter.cpu,
                                                        parameterization: parameterization, accumulate: accumulate)
                    try pair.cl.reparameterizeBackward(parameter: parameter.cl, noise: noise.cl, gradOutput: gradOutput.cl,
                                                       gradMean: gradMean.cl, gradParameter: gradParameter.cl,
                                                       parameterization: parameterization, accumulate: accumulate)
                    try pair.assertIdentical(gradMean, "gradMean \(parameterization) \(accumulate)")
                    try pair.assertIdentical(gradParameter, "gradParameter \(parameterization) \(accumulate)")
                }
            }
        }
    }

    /// Dropout draws the same uniforms as the CPU: masks and outputs are identical.
    func testDropout() throws {
        let pair = Pair(try OpenCLTestDevice.backend())
        var random = TestRandom(seed: 7)
        for (n, probability) in [(1, Float(0.5)), (63, 0.3), (1001, 0.5), (100, 0), (100, 1)] {
            let x = try pair.buffers(random.array(n), offset: 1)
            let y = try pair.buffers([Float](repeating: 0, count: n))
            let mask = try pair.buffers([Float](repeating: 0, count: n), offset: 2)
            try pair.cpu.dropoutForward(input: x.cpu, output: y.cpu, mask: mask.cpu, probability: probability, seed: 99, counter: 12)
            try pair.cl.dropoutForward(input: x.cl, output: y.cl, mask: mask.cl, probability: probability, seed: 99, counter: 12)
            try pair.assertIdentical(mask, "dropout mask \(n) \(probability)")
            try pair.assertIdentical(y, "dropout output \(n) \(probability)")
        }
    }
}
