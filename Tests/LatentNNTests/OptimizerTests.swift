import XCTest
import LatentCore
import LatentCPU
@testable import LatentNN

/// Optimizer steps against `torch.optim` (values in OptimizerReferenceData.swift).
final class OptimizerTests: XCTestCase {
    func testStepsMatchPyTorch() throws {
        for reference in OptimizerReference.cases {
            let parameter = try Parameter(shape: [OptimizerReference.initial.count], on: cpu)
            try parameter.value.copy(from: OptimizerReference.initial)
            let optimizer = try Optimizer(reference.rule, parameters: [("p", parameter)])
            for gradient in OptimizerReference.gradients.prefix(OptimizerReference.steps) {
                try parameter.gradient.copy(from: gradient)
                try optimizer.step()
            }
            XCTAssertEqual(optimizer.steps, [OptimizerReference.steps])
            assertClose(try parameter.value.toArray(), reference.parameter, relative: 1e-6, absolute: 1e-7, "\(reference.name) parameter")
            for (name, tensor) in zip(reference.rule.stateNames, optimizer.state[0]) {
                guard let expected = reference.state[name] else { continue }
                // Relative to the buffer's scale: an element near zero after cancellation
                // (a momentum buffer changing sign) keeps the rounding of its larger terms.
                let scale = expected.map(abs).max() ?? 0
                assertClose(try tensor.toArray(), expected, relative: 1e-6, absolute: 1e-6 * scale, "\(reference.name) \(name)")
            }
        }
    }

    func testDefaultsAreTorchDefaults() throws {
        XCTAssertEqual(OptimizerName.allCases.map(\.rawValue), ["sgd", "adam", "adamw", "rmsprop", "adagrad", "adadelta"])
        XCTAssertEqual(OptimizerName(rawValue: "adamw"), .adamw)
        XCTAssertThrowsError(try OptimizerName.sgd.defaultRule(), "SGD has no default learning rate")
        XCTAssertEqual(try OptimizerName.sgd.defaultRule(learningRate: 0.1),
                       .sgd(lr: 0.1, momentum: 0, dampening: 0, weightDecay: 0, nesterov: false))
        XCTAssertEqual(try OptimizerName.adam.defaultRule(),
                       .adam(lr: 1e-3, beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0, decoupled: false))
        XCTAssertEqual(try OptimizerName.adamw.defaultRule(),
                       .adam(lr: 1e-3, beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 1e-2, decoupled: true))
        XCTAssertEqual(try OptimizerName.rmsprop.defaultRule(), .rmsprop(lr: 1e-2, alpha: 0.99, eps: 1e-8, weightDecay: 0, momentum: 0))
        XCTAssertEqual(try OptimizerName.adagrad.defaultRule(), .adagrad(lr: 1e-2, lrDecay: 0, eps: 1e-10, weightDecay: 0))
        XCTAssertEqual(try OptimizerName.adadelta.defaultRule(), .adadelta(lr: 1.0, rho: 0.9, eps: 1e-6, weightDecay: 0))
        XCTAssertEqual(try OptimizerName.adam.defaultRule(learningRate: 0.5, weightDecay: 0.25).learningRate, 0.5)
    }

    func testValidationAndLearningRate() throws {
        let parameter = try Parameter(shape: [2], on: cpu)
        XCTAssertThrowsError(try Optimizer.sgd([("p", parameter)], lr: 0.1, nesterov: true), "nesterov needs momentum")
        XCTAssertThrowsError(try Optimizer.adam([("p", parameter)], betas: (1, 0.999)))
        XCTAssertThrowsError(try Optimizer.sgd([("p", parameter), ("q", parameter)], lr: 0.1), "a parameter twice")
        let optimizer = try Optimizer.adamW([("p", parameter)])
        optimizer.learningRate = 0.25
        XCTAssertEqual(optimizer.rule, .adam(lr: 0.25, beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 1e-2, decoupled: true))
        XCTAssertThrowsError(try optimizer.setRule(.sgd(lr: 1, momentum: 0, dampening: 0, weightDecay: 0, nesterov: false)))
        XCTAssertEqual(optimizer.namedState().map(\.name), ["state.0.exp_avg", "state.0.exp_avg_sq"])
    }

    func testFrozenParametersAreSkipped() throws {
        let trained = try Parameter(shape: [2], on: cpu)
        let frozen = try Parameter(shape: [2], on: cpu, requiresGradient: false)
        for parameter in [trained, frozen] {
            try parameter.value.copy(from: [1, 1])
            try parameter.gradient.copy(from: [1, -1])
        }
        let optimizer = try Optimizer.sgd([("a", trained), ("b", frozen)], lr: 0.5)
        try optimizer.step()
        XCTAssertEqual(try trained.value.toArray(), [0.5, 1.5])
        XCTAssertEqual(try frozen.value.toArray(), [1, 1])
        XCTAssertEqual(optimizer.steps, [1, 0])
        try optimizer.zeroGradients()
        XCTAssertEqual(try trained.gradient.toArray(), [0, 0])
    }
}
