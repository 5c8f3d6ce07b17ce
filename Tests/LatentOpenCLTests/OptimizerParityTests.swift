import XCTest
import LatentCore
@testable import LatentOpenCL

/// Every optimizer rule on OpenCL against the CPU backend over several steps: with
/// correctly rounded division and square root the results are bit-identical.
final class OptimizerParityTests: XCTestCase {
    static let rules: [OptimizerRule] = [
        .sgd(lr: 0.1, momentum: 0, dampening: 0, weightDecay: 0, nesterov: false),
        .sgd(lr: 0.05, momentum: 0.9, dampening: 0.1, weightDecay: 1e-4, nesterov: false),
        .sgd(lr: 0.05, momentum: 0.9, dampening: 0, weightDecay: 0, nesterov: true),
        .adam(lr: 1e-3, beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0, decoupled: false),
        .adam(lr: 2e-4, beta1: 0.5, beta2: 0.999, eps: 1e-8, weightDecay: 1e-2, decoupled: false),
        .adam(lr: 1e-3, beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 1e-2, decoupled: true),
        .adam(lr: 1e-3, beta1: 0.3, beta2: 0.9, eps: 1e-6, weightDecay: 0, decoupled: false),
        .rmsprop(lr: 1e-2, alpha: 0.99, eps: 1e-8, weightDecay: 0, momentum: 0),
        .rmsprop(lr: 1e-2, alpha: 0.9, eps: 1e-8, weightDecay: 1e-3, momentum: 0.9),
        .adagrad(lr: 1e-2, lrDecay: 0, eps: 1e-10, weightDecay: 0),
        .adagrad(lr: 1e-2, lrDecay: 1e-3, eps: 1e-10, weightDecay: 1e-4),
        .adadelta(lr: 1, rho: 0.9, eps: 1e-6, weightDecay: 0),
        .adadelta(lr: 0.5, rho: 0.95, eps: 1e-6, weightDecay: 1e-3),
    ]

    func testEveryRuleIsBitIdenticalOverSteps() throws {
        for backend in try OpenCLTestDevice.elementBackends() {
            let pair = Pair(backend)
            var random = TestRandom(seed: 1)
            let n = 1031
            for rule in Self.rules {
                let parameter = try pair.buffers(random.array(n), offset: 1)
                let state = try (0..<rule.stateCount).map { index in
                    try pair.buffers([Float](repeating: 0, count: n), offset: index + 2)
                }
                for step in 1...4 {
                    let gradient = try pair.buffers(random.array(n, -0.1, 0.1), offset: 3)
                    try pair.cpu.optimizerStep(rule, parameter: parameter.cpu, gradient: gradient.cpu, state: state.map(\.cpu), step: step)
                    try pair.cl.optimizerStep(rule, parameter: parameter.cl, gradient: gradient.cl, state: state.map(\.cl), step: step)
                    if pair.cl.device.correctlyRoundedDivideSqrt {
                        try pair.assertIdentical(parameter, "\(rule) step \(step) parameter")
                        for (index, buffer) in state.enumerated() { try pair.assertIdentical(buffer, "\(rule) step \(step) state \(index)") }
                    } else {
                        try pair.assertSame(parameter, tolerance: 1e-6, "\(rule) step \(step) parameter")
                    }
                }
            }
        }
    }

    /// Adam where eps matters: gradients from 1e-12 to 1e-1 in magnitude (and zeros), the
    /// regime of the training parity tests' tiny gradients, where the step is lr * g / (|g| + eps)
    /// rather than lr * sign(g). Still bit for bit, over five steps.
    func testAdamIsBitIdenticalForGradientsNearEps() throws {
        let pair = Pair(try OpenCLTestDevice.backend())
        try XCTSkipUnless(pair.cl.device.correctlyRoundedDivideSqrt, "the device rounds / and sqrt loosely")
        var random = TestRandom(seed: 7)
        let n = 4099
        for rule in Self.rules.prefix(4) {
            let parameter = try pair.buffers(random.array(n), offset: 1)
            let state = try (0..<rule.stateCount).map { index in try pair.buffers([Float](repeating: 0, count: n), offset: index) }
            for step in 1...5 {
                let gradients = (0..<n).map { i -> Float in
                    i % 97 == 0 ? 0 : Float(pow(10, Double(random.uniform(-12, -1)))) * (random.uniform() < 0 ? -1 : 1)
                }
                let gradient = try pair.buffers(gradients, offset: 2)
                try pair.cpu.optimizerStep(rule, parameter: parameter.cpu, gradient: gradient.cpu, state: state.map(\.cpu), step: step)
                try pair.cl.optimizerStep(rule, parameter: parameter.cl, gradient: gradient.cl, state: state.map(\.cl), step: step)
                try pair.assertIdentical(parameter, "\(rule) step \(step) parameter")
                for (index, buffer) in state.enumerated() { try pair.assertIdentical(buffer, "\(rule) step \(step) state \(index)") }
            }
        }
    }

    func testWrongStateCountThrows() throws {
        let pair = Pair(try OpenCLTestDevice.backend())
        let p = try pair.buffers([1, 2])
        XCTAssertThrowsError(try pair.cl.optimizerStep(.adam(lr: 1e-3, beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0, decoupled: false),
                                                       parameter: p.cl, gradient: p.cl, state: [p.cl], step: 1))
        XCTAssertThrowsError(try pair.cl.optimizerStep(.sgd(lr: 0.1, momentum: 0, dampening: 0, weightDecay: 0, nesterov: false),
                                                       parameter: p.cl, gradient: p.cl, state: [p.cl], step: 0))
    }
}
