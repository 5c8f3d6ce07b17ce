import XCTest
import LatentCore
import LatentCPU
@testable import LatentNN

/// Finite-difference checks of the losses, the KL term and the reparameterisation, plus
/// spot values against hand computation.
final class LossGradientTests: XCTestCase {
    private func checkLoss(_ loss: ElementwiseLoss, prediction: Tensor, target: Tensor, scale: Float,
                           tolerance: GradientCheck.Tolerance, file: StaticString = #filePath, line: UInt = #line) throws {
        let label = "\(loss.kind.rawValue) \(loss.reduction.rawValue)"
        let value = try loss.forward(prediction, target: target)
        XCTAssertEqual(value.shape, [1], file: file, line: line)
        let gradient = try loss.backward(scale: scale)
        XCTAssertEqual(gradient.shape, prediction.shape, file: file, line: line)
        try GradientCheck.check(label, [.init(name: "prediction", tensor: prediction, analytic: try gradient.toArray())],
                                tolerance: tolerance, file: file, line: line) {
            Double(scale) * Double(try loss.forward(prediction, target: target).scalar())
        }
    }

    func testBCE() throws {
        var random = TestRandom(seed: 20)
        for reduction in [Reduction.sum, .mean] {
            let prediction = try random.tensor([3, 1, 2, 3], 0.2, 0.8)
            let target = try random.tensor([3, 1, 2, 3], 0, 1)
            try checkLoss(.bce(reduction), prediction: prediction, target: target, scale: 0.5,
                          tolerance: .init(eps: 1e-3, relative: 1e-2, absolute: 2e-3))
        }
        let value = try ElementwiseLoss.bce(.sum).forward(try Tensor([0.25, 0.9], shape: [2], on: cpu),
                                                          target: try Tensor([1, 0], shape: [2], on: cpu)).scalar()
        XCTAssertEqual(Double(value), -log(0.25) - log(0.1), accuracy: 1e-5)
    }

    func testBCEWithLogits() throws {
        var random = TestRandom(seed: 21)
        for reduction in [Reduction.sum, .mean] {
            let logits = try random.tensor([4, 5], -3, 3)
            let target = try random.tensor([4, 5], 0, 1)
            try checkLoss(.bceWithLogits(reduction), prediction: logits, target: target, scale: 1,
                          tolerance: .init(eps: 1e-2, relative: 1e-2, absolute: 2e-3))
        }
        let value = try ElementwiseLoss.bceWithLogits(.mean).forward(try Tensor([2, -1], shape: [2], on: cpu),
                                                                     target: try Tensor([1, 0.5], shape: [2], on: cpu)).scalar()
        let s2 = 1 / (1 + exp(-2.0)), s1 = 1 / (1 + exp(1.0))
        XCTAssertEqual(Double(value), (-log(s2) - 0.5 * log(s1) - 0.5 * log(1 - s1)) / 2, accuracy: 1e-5)
    }

    func testMSE() throws {
        var random = TestRandom(seed: 22)
        for reduction in [Reduction.sum, .mean] {
            try checkLoss(.mse(reduction), prediction: try random.tensor([2, 3, 3]), target: try random.tensor([2, 3, 3]),
                          scale: 2, tolerance: .init())
        }
        let value = try ElementwiseLoss.mse(.mean).forward(try Tensor([1, 2], shape: [2], on: cpu),
                                                           target: try Tensor([0, 4], shape: [2], on: cpu)).scalar()
        XCTAssertEqual(value, 2.5, accuracy: 1e-6)
    }

    func testL1() throws {
        var random = TestRandom(seed: 23)
        for reduction in [Reduction.sum, .mean] {
            // Prediction - target at least 0.1 from zero: away from |.|'s kink.
            let target = random.values(12)
            let prediction = zip(target, random.awayFromZero(12, 0.1, 1)).map { $0 + $1 }
            try checkLoss(.l1(reduction), prediction: try Tensor(prediction, shape: [3, 4], on: cpu),
                          target: try Tensor(target, shape: [3, 4], on: cpu), scale: 1, tolerance: .init())
        }
        let value = try ElementwiseLoss.l1(.sum).forward(try Tensor([1, 2], shape: [2], on: cpu),
                                                         target: try Tensor([0, 4], shape: [2], on: cpu)).scalar()
        XCTAssertEqual(value, 3, accuracy: 1e-6)
    }

    func testLossShapeMismatchThrows() throws {
        let loss = ElementwiseLoss.mse()
        assertShapeError("MSE of (2, 3) against (3, 2)") {
            _ = try loss.forward(try Tensor(zeros: [2, 3], on: cpu), target: try Tensor(zeros: [3, 2], on: cpu))
        }
    }

    private func parameterRange(_ parameterization: GaussianParameterization) -> (Float, Float) {
        parameterization == .std ? (0.4, 1.6) : (-1, 1)
    }

    func testKLDivergence() throws {
        var random = TestRandom(seed: 24)
        for parameterization in [GaussianParameterization.logVariance, .logStd, .std] {
            let (low, high) = parameterRange(parameterization)
            let mean = try random.tensor([3, 4])
            let parameter = try random.tensor([3, 4], low, high)
            let kl = GaussianKL(parameterization)
            let value = try kl.forward(mean: mean, parameter: parameter).scalar()
            // Closed form: 0.5 * sum(mu^2 + s^2 - 1 - log s^2).
            let expected = zip(try mean.toArray(), try parameter.toArray()).reduce(0.0) { total, pair in
                let mu = Double(pair.0), p = Double(pair.1)
                let variance: Double
                switch parameterization {
                case .logVariance: variance = exp(p)
                case .logStd: variance = exp(2 * p)
                case .std: variance = p * p
                }
                return total + 0.5 * (mu * mu + variance - 1 - log(variance))
            }
            XCTAssertEqual(Double(value), expected, accuracy: 1e-4 * max(1, abs(expected)), parameterization.rawValue)
            let scale: Float = 0.25
            let (gradMean, gradParameter) = try kl.backward(scale: scale)
            try GradientCheck.check("KL \(parameterization.rawValue)", [
                .init(name: "mean", tensor: mean, analytic: try gradMean.toArray()),
                .init(name: "parameter", tensor: parameter, analytic: try gradParameter.toArray()),
            ]) {
                Double(scale) * Double(try kl.forward(mean: mean, parameter: parameter).scalar())
            }
        }
    }

    func testReparameterize() throws {
        var random = TestRandom(seed: 25)
        for parameterization in [GaussianParameterization.logVariance, .logStd, .std] {
            let (low, high) = parameterRange(parameterization)
            let source = RandomSource(seed: 5)
            let start = source.stream
            let layer = Reparameterize(parameterization, random: source)
            let mean = try random.tensor([3, 4])
            let parameter = try random.tensor([3, 4], low, high)
            let z = try layer.forward(mean: mean, parameter: parameter)
            XCTAssertEqual(z.shape, [3, 4])
            // z = mean + std * noise, elementwise.
            let noise = try XCTUnwrap(layer.lastNoise).toArray()
            for (index, (m, p)) in zip(try mean.toArray(), try parameter.toArray()).enumerated() {
                let std: Float
                switch parameterization {
                case .logVariance: std = exp(p / 2)
                case .logStd: std = exp(p)
                case .std: std = p
                }
                XCTAssertEqual(try z.toArray()[index], m + std * noise[index], accuracy: 1e-5)
            }
            let projection = random.values(12)
            let grads = try layer.backward(try Tensor(projection, shape: [3, 4], on: cpu))
            try GradientCheck.check("reparameterize \(parameterization.rawValue)", [
                .init(name: "mean", tensor: mean, analytic: try grads.mean.toArray()),
                .init(name: "parameter", tensor: parameter, analytic: try grads.parameter.toArray()),
            ]) {
                source.stream = start
                return dot(try layer.forward(mean: mean, parameter: parameter).toArray(), projection)
            }
        }
    }

    /// The VAE's bottleneck: z through the reparameterisation plus KL on the same heads,
    /// with the KL gradient added into the reparameterisation's.
    func testReparameterizeWithKLAccumulated() throws {
        var random = TestRandom(seed: 26)
        let source = RandomSource(seed: 6)
        let start = source.stream
        let sample = Reparameterize(.logVariance, random: source)
        let kl = GaussianKL(.logVariance)
        let mean = try random.tensor([2, 5])
        let logVariance = try random.tensor([2, 5])
        let projection = random.values(10)
        _ = try sample.forward(mean: mean, parameter: logVariance)
        _ = try kl.forward(mean: mean, parameter: logVariance)
        let grads = try sample.backward(try Tensor(projection, shape: [2, 5], on: cpu))
        try kl.backward(scale: 0.5, accumulatingInto: grads.mean, grads.parameter)
        try GradientCheck.check("reparameterize + KL", [
            .init(name: "mean", tensor: mean, analytic: try grads.mean.toArray()),
            .init(name: "logvar", tensor: logVariance, analytic: try grads.parameter.toArray()),
        ]) {
            source.stream = start
            let z = try sample.forward(mean: mean, parameter: logVariance).toArray()
            return dot(z, projection) + 0.5 * Double(try kl.forward(mean: mean, parameter: logVariance).scalar())
        }
    }
}
