import Foundation
import LatentCore

/// `torch.optim`'s single-tensor update rules, one tensor op after another in PyTorch's
/// order with the same roundings: scalars PyTorch computes in Python (bias corrections,
/// `1 - beta`, step sizes) are computed in Double from the hyperparameters' decimal values
/// and rounded to Float once. Checked against torch 2.13's AVX-512 CPU kernels: `add(alpha:)`
/// and `lerp` are fused multiply-adds, `addcmul` is `fma(value * a, b, self)`, `addcdiv` is
/// `self + (value * a) / b` unfused. (PyTorch's `sqrt` there is MKL's, not correctly rounded;
/// ours is, so Adam-family results can differ from PyTorch's in the last bit.)
extension CPUBackend {
    // parameter (n) updated in place from gradient (n) and state (stateCount x n)
    public func optimizerStep(_ rule: OptimizerRule, parameter: BufferView, gradient: BufferView,
                              state: [BufferView], step: Int) throws {
        let op = "optimizerStep"
        guard state.count == rule.stateCount else {
            throw LatentError.invalidArgument("\(op): \(rule) needs \(rule.stateCount) state buffers, got \(state.count)")
        }
        guard step >= 1 else { throw LatentError.invalidArgument("\(op): step counts from 1, got \(step)") }
        try CPUCheck.sameCount(op, ("parameter", parameter), ("gradient", gradient))
        for (index, view) in state.enumerated() { try CPUCheck.count(view, parameter.count, "state[\(index)]", op) }
        let p = try parameter.cpuPointer(), g = try gradient.cpuPointer()
        let s0 = try state.first?.cpuPointer() ?? p
        let s1 = try state.dropFirst().first?.cpuPointer() ?? p
        let count = parameter.count
        let t = Double(step)

        switch rule {
        case let .sgd(lr, momentum, dampening, weightDecay, nesterov):
            let wd = Float(decimalDouble(weightDecay))
            let m = Float(decimalDouble(momentum))
            let oneMinusDampening = Float(1 - decimalDouble(dampening))
            let negativeLR = Float(-decimalDouble(lr))
            let first = step == 1
            forEachRange(count: count, cost: 4) { range in
                vectorLoop(range) { i, lanes in
                    var grad = Vec.load(g + i, lanes)
                    let param = Vec.load(p + i, lanes)
                    if wd != 0 { grad = grad.addingProduct(param, wd) }
                    if m != 0 {
                        var buffer: Vec
                        if first {
                            buffer = grad // torch.clone(grad) on the first step
                        } else {
                            buffer = Vec.load(s0 + i, lanes) * m
                            buffer = buffer.addingProduct(grad, oneMinusDampening)
                        }
                        buffer.store(s0 + i, lanes)
                        grad = nesterov ? grad.addingProduct(buffer, m) : buffer
                    }
                    param.addingProduct(grad, negativeLR).store(p + i, lanes)
                }
            }

        case let .adam(lr, beta1, beta2, eps, weightDecay, decoupled):
            let lrD = decimalDouble(lr), b1 = decimalDouble(beta1), b2 = decimalDouble(beta2)
            let wdD = decimalDouble(weightDecay)
            let wd = Float(wdD)
            let decay = Float(1 - lrD * wdD)
            let lerpWeight = Float(1 - b1)
            let beta2F = Float(b2), oneMinusBeta2 = Float(1 - b2)
            // Python: 1 - beta1 ** step, lr / bias_correction1, bias_correction2 ** 0.5.
            let biasCorrection1 = 1 - pow(b1, t)
            let biasCorrection2 = 1 - pow(b2, t)
            let negativeStepSize = Float(-(lrD / biasCorrection1))
            let biasCorrection2Sqrt = Float(pow(biasCorrection2, 0.5))
            let epsF = Float(decimalDouble(eps))
            forEachRange(count: count, cost: 12) { range in
                @inline(__always) func update(_ i: Int, _ lanes: Int) {
                    var grad = Vec.load(g + i, lanes)
                    var param = Vec.load(p + i, lanes)
                    if wd != 0 {
                        if decoupled { param *= decay } else { grad = grad.addingProduct(param, wd) }
                    }
                    let expAvg = Self.lerp(Vec.load(s0 + i, lanes), grad, lerpWeight)
                    let expAvgSq = (Vec.load(s1 + i, lanes) * beta2F).addingProduct(oneMinusBeta2 * grad, grad)
                    let denominator = VMath.sqrt(expAvgSq) / biasCorrection2Sqrt + epsF
                    param += (negativeStepSize * expAvg) / denominator
                    expAvg.store(s0 + i, lanes)
                    expAvgSq.store(s1 + i, lanes)
                    param.store(p + i, lanes)
                }
                // Not `vectorLoop` (a tenth of a vae-fc step on the Xeon machine): see `sixteenLaneLoop`.
                Self.sixteenLaneLoop(range, update)
            }

        case let .rmsprop(lr, alpha, eps, weightDecay, momentum):
            let wd = Float(decimalDouble(weightDecay))
            let alphaF = Float(decimalDouble(alpha)), oneMinusAlpha = Float(1 - decimalDouble(alpha))
            let epsF = Float(decimalDouble(eps))
            let m = Float(decimalDouble(momentum))
            let negativeLR = Float(-decimalDouble(lr))
            forEachRange(count: count, cost: 12) { range in
                @inline(__always) func update(_ i: Int, _ lanes: Int) {
                    var grad = Vec.load(g + i, lanes)
                    let param = Vec.load(p + i, lanes)
                    if wd != 0 { grad = grad.addingProduct(param, wd) }
                    let squareAvg = (Vec.load(s0 + i, lanes) * alphaF).addingProduct(oneMinusAlpha * grad, grad)
                    squareAvg.store(s0 + i, lanes)
                    let avg = VMath.sqrt(squareAvg) + epsF
                    if m > 0 {
                        let buffer = Vec.load(s1 + i, lanes) * m + grad / avg
                        buffer.store(s1 + i, lanes)
                        param.addingProduct(buffer, negativeLR).store(p + i, lanes)
                    } else {
                        (param + (negativeLR * grad) / avg).store(p + i, lanes)
                    }
                }
                Self.sixteenLaneLoop(range, update)
            }

        case let .adagrad(lr, lrDecay, eps, weightDecay):
            let wd = Float(decimalDouble(weightDecay))
            let negativeCLR = Float(-(decimalDouble(lr) / (1 + (t - 1) * decimalDouble(lrDecay))))
            let epsF = Float(decimalDouble(eps))
            forEachRange(count: count, cost: 10) { range in
                @inline(__always) func update(_ i: Int, _ lanes: Int) {
                    var grad = Vec.load(g + i, lanes)
                    let param = Vec.load(p + i, lanes)
                    if wd != 0 { grad = grad.addingProduct(param, wd) }
                    let sum = Vec.load(s0 + i, lanes).addingProduct(grad, grad)
                    sum.store(s0 + i, lanes)
                    let std = VMath.sqrt(sum) + epsF
                    (param + (negativeCLR * grad) / std).store(p + i, lanes)
                }
                Self.sixteenLaneLoop(range, update)
            }

        case let .adadelta(lr, rho, eps, weightDecay):
            let wd = Float(decimalDouble(weightDecay))
            let rhoF = Float(decimalDouble(rho)), oneMinusRho = Float(1 - decimalDouble(rho))
            let epsF = Float(decimalDouble(eps))
            let negativeLR = Float(-decimalDouble(lr))
            forEachRange(count: count, cost: 14) { range in
                @inline(__always) func update(_ i: Int, _ lanes: Int) {
                    var grad = Vec.load(g + i, lanes)
                    let param = Vec.load(p + i, lanes)
                    if wd != 0 { grad = grad.addingProduct(param, wd) }
                    let squareAvg = (Vec.load(s0 + i, lanes) * rhoF).addingProduct(oneMinusRho * grad, grad)
                    let std = VMath.sqrt(squareAvg + epsF)
                    let accDelta = Vec.load(s1 + i, lanes)
                    let delta = VMath.sqrt(accDelta + epsF) / std * grad
                    let newAccDelta = (accDelta * rhoF).addingProduct(oneMinusRho * delta, delta)
                    squareAvg.store(s0 + i, lanes)
                    newAccDelta.store(s1 + i, lanes)
                    param.addingProduct(delta, negativeLR).store(p + i, lanes)
                }
                Self.sixteenLaneLoop(range, update)
            }
        }
    }

    /// Runs `update` over `range` 16 lanes at a time, then once on the remainder. Unlike
    /// `vectorLoop` with a closure, a named `@inline(__always)` body is inlined at both calls,
    /// so the main loop's copy sees 16 lanes and keeps its divisions and square roots 512 bits
    /// wide (a closure this size was compiled once for any lane count and LLVM split that
    /// copy into 8-, 4- and 1-lane pieces on the Xeon machine).
    @inline(__always)
    static func sixteenLaneLoop(_ range: Range<Int>, _ update: (_ i: Int, _ lanes: Int) -> Void) {
        var i = range.lowerBound
        while i + 16 <= range.upperBound {
            update(i, 16)
            i += 16
        }
        if i < range.upperBound { update(i, range.upperBound - i) }
    }

    /// PyTorch's vectorised lerp: `weight < 0.5 ? start + weight * (end - start)
    /// : end - (end - start) * (1 - weight)`, each a fused multiply-add.
    @inline(__always)
    static func lerp(_ start: Vec, _ end: Vec, _ weight: Float) -> Vec {
        let difference = end - start
        if Swift.abs(weight) < 0.5 {
            return start.addingProduct(Vec(repeating: weight), difference)
        }
        return end.addingProduct(Vec(repeating: weight - 1), difference)
    }
}
