import Foundation
import LatentCore

/// `torch.optim` update rules (optim.cl). Every scalar is computed on the host exactly as
/// the CPU backend computes it, so with correctly rounded `/` and `sqrt` the kernels give
/// the CPU's results bit for bit.
extension OpenCLBackend {
    public func optimizerStep(_ rule: OptimizerRule, parameter: BufferView, gradient: BufferView,
                              state: [BufferView], step: Int) throws {
        let op = "optimizerStep"
        guard state.count == rule.stateCount else {
            throw LatentError.invalidArgument("\(op): \(rule) needs \(rule.stateCount) state buffers, got \(state.count)")
        }
        guard step >= 1 else { throw LatentError.invalidArgument("\(op): step counts from 1, got \(step)") }
        try Check.sameCount(op, ("parameter", parameter), ("gradient", gradient))
        for (index, view) in state.enumerated() { try Check.count(view, parameter.count, "state[\(index)]", op) }
        let count = parameter.count
        guard count > 0 else { return }
        let t = Double(step)
        let s0: Argument = .view(state[0])
        let s1: Argument = .view(state.count > 1 ? state[1] : state[0])

        try withLock {
            switch rule {
            case let .sgd(lr, momentum, dampening, weightDecay, nesterov):
                try enqueue(.optim, "sgd", global: elementItems(count), [
                    .view(parameter), .view(gradient), s0,
                    .float(Float(decimalDouble(weightDecay))), .float(Float(decimalDouble(momentum))),
                    .float(Float(1 - decimalDouble(dampening))), .float(Float(-decimalDouble(lr))),
                    .int(step == 1 ? 1 : 0), .int(nesterov ? 1 : 0), .int(count),
                ])

            case let .adam(lr, beta1, beta2, eps, weightDecay, decoupled):
                let lrD = decimalDouble(lr), b1 = decimalDouble(beta1), b2 = decimalDouble(beta2)
                let wdD = decimalDouble(weightDecay)
                let biasCorrection1 = 1 - pow(b1, t)
                let biasCorrection2 = 1 - pow(b2, t)
                let lerpWeight = Float(1 - b1)
                try enqueue(.optim, "adam", global: elementItems(count), [
                    .view(parameter), .view(gradient), s0, s1,
                    .float(Float(wdD)), .int(decoupled ? 1 : 0), .float(Float(1 - lrD * wdD)), .float(lerpWeight),
                    .float(Float(b2)), .float(Float(1 - b2)), .float(Float(-(lrD / biasCorrection1))),
                    .float(Float(pow(biasCorrection2, 0.5))), .float(Float(decimalDouble(eps))), .int(count),
                ])

            case let .rmsprop(lr, alpha, eps, weightDecay, momentum):
                try enqueue(.optim, "rmsprop", global: elementItems(count), [
                    .view(parameter), .view(gradient), s0, s1,
                    .float(Float(decimalDouble(weightDecay))), .float(Float(decimalDouble(alpha))),
                    .float(Float(1 - decimalDouble(alpha))), .float(Float(decimalDouble(eps))),
                    .float(Float(decimalDouble(momentum))), .float(Float(-decimalDouble(lr))), .int(count),
                ])

            case let .adagrad(lr, lrDecay, eps, weightDecay):
                try enqueue(.optim, "adagrad", global: elementItems(count), [
                    .view(parameter), .view(gradient), s0,
                    .float(Float(decimalDouble(weightDecay))),
                    .float(Float(-(decimalDouble(lr) / (1 + (t - 1) * decimalDouble(lrDecay))))),
                    .float(Float(decimalDouble(eps))), .int(count),
                ])

            case let .adadelta(lr, rho, eps, weightDecay):
                try enqueue(.optim, "adadelta", global: elementItems(count), [
                    .view(parameter), .view(gradient), s0, s1,
                    .float(Float(decimalDouble(weightDecay))), .float(Float(decimalDouble(rho))),
                    .float(Float(1 - decimalDouble(rho))), .float(Float(decimalDouble(eps))),
                    .float(Float(-decimalDouble(lr))), .int(count),
                ])
            }
        }
    }
}
