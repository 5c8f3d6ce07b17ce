import Foundation
import XCTest
import LatentCore
@testable import LatentCPU

/// Optimizer steps against hand-written Double loops of the `torch.optim` update rules.
final class OptimizerTests: XCTestCase {
    /// One reference step on Double copies of the parameter and state.
    static func referenceStep(_ rule: OptimizerRule, _ param: inout [Double], _ grads: [Double],
                              _ state: inout [[Double]], step: Int) {
        // Hyperparameters as the decimals they were written as (0.999, not Float(0.999)),
        // which is what PyTorch's Python floats hold.
        func Double(_ value: Float) -> Swift.Double { Swift.Double(value.description) ?? Swift.Double(value) }
        func Double(_ value: Int) -> Swift.Double { Swift.Double(value) }
        let t = Double(step)
        for i in param.indices {
            var g = grads[i]
            switch rule {
            case let .sgd(lr, momentum, dampening, weightDecay, nesterov):
                g += Double(weightDecay) * param[i]
                if momentum != 0 {
                    state[0][i] = step == 1 ? g : Double(momentum) * state[0][i] + (1 - Double(dampening)) * g
                    g = nesterov ? g + Double(momentum) * state[0][i] : state[0][i]
                }
                param[i] -= Double(lr) * g
            case let .adam(lr, beta1, beta2, eps, weightDecay, decoupled):
                if decoupled { param[i] *= 1 - Double(lr) * Double(weightDecay) } else { g += Double(weightDecay) * param[i] }
                state[0][i] = Double(beta1) * state[0][i] + (1 - Double(beta1)) * g
                state[1][i] = Double(beta2) * state[1][i] + (1 - Double(beta2)) * g * g
                let bc1 = 1 - pow(Double(beta1), t), bc2 = 1 - pow(Double(beta2), t)
                param[i] -= Double(lr) / bc1 * state[0][i] / (state[1][i].squareRoot() / bc2.squareRoot() + Double(eps))
            case let .rmsprop(lr, alpha, eps, weightDecay, momentum):
                g += Double(weightDecay) * param[i]
                state[0][i] = Double(alpha) * state[0][i] + (1 - Double(alpha)) * g * g
                let avg = state[0][i].squareRoot() + Double(eps)
                if momentum > 0 {
                    state[1][i] = Double(momentum) * state[1][i] + g / avg
                    param[i] -= Double(lr) * state[1][i]
                } else {
                    param[i] -= Double(lr) * g / avg
                }
            case let .adagrad(lr, lrDecay, eps, weightDecay):
                g += Double(weightDecay) * param[i]
                let clr = Double(lr) / (1 + (t - 1) * Double(lrDecay))
                state[0][i] += g * g
                param[i] -= clr * g / (state[0][i].squareRoot() + Double(eps))
            case let .adadelta(lr, rho, eps, weightDecay):
                g += Double(weightDecay) * param[i]
                state[0][i] = Double(rho) * state[0][i] + (1 - Double(rho)) * g * g
                let std = (state[0][i] + Double(eps)).squareRoot()
                let delta = (state[1][i] + Double(eps)).squareRoot() / std * g
                state[1][i] = Double(rho) * state[1][i] + (1 - Double(rho)) * delta * delta
                param[i] -= Double(lr) * delta
            }
        }
    }

    static let rules: [OptimizerRule] = [
        .sgd(lr: 0.1, momentum: 0, dampening: 0, weightDecay: 0, nesterov: false),
        .sgd(lr: 0.05, momentum: 0.9, dampening: 0, weightDecay: 1e-2, nesterov: false),
        .sgd(lr: 0.05, momentum: 0.9, dampening: 0.3, weightDecay: 0, nesterov: false),
        .sgd(lr: 0.05, momentum: 0.8, dampening: 0, weightDecay: 1e-3, nesterov: true),
        .adam(lr: 1e-3, beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0, decoupled: false),
        .adam(lr: 2e-3, beta1: 0.5, beta2: 0.9, eps: 1e-6, weightDecay: 0.1, decoupled: false),
        .adam(lr: 1e-3, beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 1e-2, decoupled: true),
        .rmsprop(lr: 1e-2, alpha: 0.99, eps: 1e-8, weightDecay: 0, momentum: 0),
        .rmsprop(lr: 1e-2, alpha: 0.9, eps: 1e-6, weightDecay: 1e-3, momentum: 0.9),
        .adagrad(lr: 1e-2, lrDecay: 0, eps: 1e-10, weightDecay: 0),
        .adagrad(lr: 1e-1, lrDecay: 0.05, eps: 1e-10, weightDecay: 1e-2),
        .adadelta(lr: 1, rho: 0.9, eps: 1e-6, weightDecay: 0),
        .adadelta(lr: 0.5, rho: 0.95, eps: 1e-6, weightDecay: 1e-2),
    ]

    func testStepsMatchReferenceLoops() throws {
        let f = Fixture()
        var random = TestRandom(seed: 40)
        let count = 1037 // vector body plus a remainder
        for rule in Self.rules {
            let paramView = try f.buffer(random.array(count))
            let stateViews = try (0..<rule.stateCount).map { _ in try f.zeros(count) }
            for step in 1...6 {
                let grads = random.array(count)
                // The reference starts each step from the Float values the backend holds, so
                // rounding differences do not compound over steps. The absolute tolerance is
                // float rounding of terms of size ~1 that cancel (momentum buffers).
                var param = try f.read(paramView).map(Double.init)
                var state = try stateViews.map { try f.read($0).map(Double.init) }
                Self.referenceStep(rule, &param, grads.map(Double.init), &state, step: step)
                try f.backend.optimizerStep(rule, parameter: paramView, gradient: try f.buffer(grads), state: stateViews, step: step)
                assertClose(try f.read(paramView), param.map(Float.init), absolute: 3e-7, relative: 2e-6, "\(rule) step \(step)")
                for (index, view) in stateViews.enumerated() {
                    assertClose(try f.read(view), state[index].map(Float.init), absolute: 3e-7, relative: 2e-6,
                                "\(rule) state \(index) step \(step)")
                }
            }
        }
    }

    /// SGD's first momentum step copies the gradient (PyTorch's `buf = grad.clone()`), not
    /// `(1 - dampening) * grad`.
    func testFirstMomentumStepClonesGradient() throws {
        let f = Fixture()
        let param = try f.buffer([1, 2]), buffer = try f.buffer([5, 5])
        let rule = OptimizerRule.sgd(lr: 0.5, momentum: 0.9, dampening: 0.5, weightDecay: 0, nesterov: false)
        try f.backend.optimizerStep(rule, parameter: param, gradient: try f.buffer([2, 4]), state: [buffer], step: 1)
        XCTAssertEqual(try f.read(buffer), [2, 4])
        XCTAssertEqual(try f.read(param), [0, 0])
        try f.backend.optimizerStep(rule, parameter: param, gradient: try f.buffer([2, 4]), state: [buffer], step: 2)
        XCTAssertEqual(try f.read(buffer), [2.8, 5.6])
    }

    /// The first Adam step moves every weight by about lr against its gradient's sign.
    func testAdamFirstStepIsSignedLearningRate() throws {
        let f = Fixture()
        let param = try f.zeros(3)
        let state = [try f.zeros(3), try f.zeros(3)]
        try f.backend.optimizerStep(.adam(lr: 0.01, beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0, decoupled: false),
                                    parameter: param, gradient: try f.buffer([3, -0.5, 2e-3]), state: state, step: 1)
        assertClose(try f.read(param), [-0.01, 0.01, -0.01], absolute: 0, relative: 1e-5)
    }

    func testInvalidArgumentsThrow() throws {
        let f = Fixture()
        let p = try f.zeros(4), g = try f.zeros(4)
        let adam = OptimizerRule.adam(lr: 1e-3, beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0, decoupled: false)
        assertThrowsLatentError("state count") { try f.backend.optimizerStep(adam, parameter: p, gradient: g, state: [try f.zeros(4)], step: 1) }
        assertThrowsLatentError("state size") {
            try f.backend.optimizerStep(adam, parameter: p, gradient: g, state: [try f.zeros(4), try f.zeros(3)], step: 1)
        }
        assertThrowsLatentError("gradient size") {
            try f.backend.optimizerStep(adam, parameter: p, gradient: try f.zeros(5), state: [try f.zeros(4), try f.zeros(4)], step: 1)
        }
        assertThrowsLatentError("step 0") {
            try f.backend.optimizerStep(adam, parameter: p, gradient: g, state: [try f.zeros(4), try f.zeros(4)], step: 0)
        }
    }
}
