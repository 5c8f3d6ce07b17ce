import LatentCore
import LatentData
import LatentNN

/// What the trainer needs from every model of the zoo. A model owns its layers, its
/// optimizers and its random stream; the trainer owns data, epochs and files.
///
/// Loss terms come back as one-element tensors holding *sums over the batch*; the trainer
/// adds them into device accumulators (no host read per step) and divides by the number
/// of images, so every figure it prints is per image.
public protocol GenerativeModel: AnyObject {
    var options: TrainingOptions { get }
    var backend: any Backend { get }
    /// The module tree whose state_dict names the checkpoint's weights ("encoder.0.weight").
    var root: ModuleGroup { get }
    /// Optimizers by checkpoint prefix: "optimizer", or "optimizer_g" and "optimizer_d".
    var optimizers: [(name: String, optimizer: Optimizer)] { get }
    var random: RandomSource { get }
    /// The pixel range the model reads ([-1, 1] for tanh generators).
    var pixelRange: PixelRange { get }
    /// Names of the loss terms `trainStep` returns; the first is the objective.
    var lossTermNames: [String] { get }
    /// One optimisation step on a batch (N, 1, 28, 28) with its labels.
    func trainStep(images: Tensor, labels: [UInt8]) throws -> [Tensor]
    /// The same terms without updating anything (eval mode).
    func evaluate(images: Tensor, labels: [UInt8]) throws -> [Tensor]
    /// `count` images in [0, 1] (count x 28 x 28 floats) from noise drawn with `seed`, so the
    /// same seed gives comparable grids from epoch to epoch.
    func generate(count: Int, seed: UInt64) throws -> [Float]
}

/// A module made of named parts, the root of a model's state_dict.
public final class ModuleGroup: Module {
    public private(set) var children: [(name: String, module: any Module)]

    public init(_ children: [(name: String, module: any Module)]) {
        self.children = children
    }
}

/// Helpers shared by the models.
enum ModelSupport {
    /// (N) labels -> (N, classes) one-hot rows on the backend.
    static func oneHot(_ labels: [UInt8], classes: Int, into slot: inout Tensor?, backend: any Backend) throws -> Tensor {
        var values = [Float](repeating: 0, count: labels.count * classes)
        for (row, label) in labels.enumerated() {
            guard Int(label) < classes else { throw LatentError.invalidArgument("label \(label) is outside 0..<\(classes)") }
            values[row * classes + Int(label)] = 1
        }
        if let existing = slot, existing.shape == [labels.count, classes] {
            try existing.copy(from: values)
            return existing
        }
        let tensor = try Tensor(values, shape: [labels.count, classes], on: backend)
        slot = tensor
        return tensor
    }

    /// `output = a + weight * b` for one-element loss tensors, on the device.
    static func combine(_ a: Tensor, plus weight: Float, times b: Tensor, into output: Tensor) throws {
        try output.backend.copy(a.view, to: output.view)
        try output.backend.axpby(alpha: weight, x: b.view, beta: 1, y: output.view)
    }

    /// Builds the optimizer the options name over `parameters`.
    static func makeOptimizer(_ options: TrainingOptions, parameters: [(name: String, parameter: Parameter)]) throws -> Optimizer {
        var rule = try options.optimizerName.defaultRule(learningRate: options.learningRate, weightDecay: options.weightDecay)
        if case .adam(let lr, _, _, let eps, let weightDecay, let decoupled) = rule {
            rule = .adam(lr: lr, beta1: options.beta1, beta2: options.beta2, eps: eps, weightDecay: weightDecay, decoupled: decoupled)
        }
        return try Optimizer(rule, parameters: parameters)
    }
}
