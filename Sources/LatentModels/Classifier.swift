import LatentCore
import LatentData
import LatentNN

/// A LeNet-style MNIST classifier (`classifier`), used to judge generated samples.
///
/// features:   Conv2d(1,32,3,1,1) ReLU Conv2d(32,32,3,2,1) ReLU Conv2d(32,64,3,1,1) ReLU
///             Conv2d(64,64,3,2,1) ReLU Flatten Linear(3136,128) ReLU   -> (N, 128)
/// classifier: Dropout(`--dropout`) Linear(128,10)                     -> logits (N, 10)
/// The stride-2 convolutions stand in for max-pooling (the backend has no pooling op). The
/// Dropout is always present (p = 0 makes it the identity) so the state-dict names do not
/// depend on the option. State dict: `features.*`, `classifier.1.*`.
///
/// Loss: softmax cross-entropy summed over the batch (the trainer divides by N), computed on
/// the device from existing ops, with no host read per step (`SoftmaxCrossEntropy`).
/// Terms: `loss` and `error_rate` (the number of misclassified images, a sum, so the
/// trainer's per-image average is the error rate). `generate` throws
/// `ModelError.doesNotGenerate`: a classifier has no images to show.
public final class Classifier: GenerativeModel {
    public let options: TrainingOptions
    public let backend: any Backend
    public let random: RandomSource
    public let root: ModuleGroup
    public private(set) var optimizers: [(name: String, optimizer: Optimizer)] = []
    public let pixelRange = PixelRange.zeroToOne
    public let lossTermNames = ["loss", "error_rate"]
    public let classes = 10
    public let featureSize = 128

    /// (N, 1, 28, 28) -> (N, 128)
    let featureLayers: Sequential
    /// (N, 128) -> (N, 10) logits
    let classifierLayers: Sequential
    let crossEntropy: SoftmaxCrossEntropy
    var oneHot: Tensor?

    public init(options: TrainingOptions, backend: any Backend, random: RandomSource) throws {
        self.options = options
        self.backend = backend
        self.random = random
        featureLayers = Sequential([
            try Conv2d(1, 32, kernel: 3, stride: 1, padding: 1, on: backend, random: random), ReLU(),
            try Conv2d(32, 32, kernel: 3, stride: 2, padding: 1, on: backend, random: random), ReLU(),
            try Conv2d(32, 64, kernel: 3, stride: 1, padding: 1, on: backend, random: random), ReLU(),
            try Conv2d(64, 64, kernel: 3, stride: 2, padding: 1, on: backend, random: random), ReLU(),
            Flatten(),
            try Linear(64 * 7 * 7, 128, on: backend, random: random), ReLU(),
        ])
        classifierLayers = Sequential([
            try Dropout(options.dropout, random: random),
            try Linear(128, classes, on: backend, random: random),
        ])
        root = ModuleGroup([("features", featureLayers), ("classifier", classifierLayers)])
        crossEntropy = try SoftmaxCrossEntropy(classes: classes, backend: backend)
        optimizers = [("optimizer", try ModelSupport.makeOptimizer(options, parameters: root.namedParameters()))]
    }

    func checkBatch(_ images: Tensor, _ labels: [UInt8]) throws {
        try ModelSupport.checkImages(images, labels: labels, "classifier")
        guard labels.count == images.shape[0] else {
            throw LatentError.invalidArgument("the classifier needs one label per image, got \(labels.count) for \(images.shape[0])")
        }
    }

    // images (N, 1, 28, 28) -> logits (N, 10)
    func logits(_ images: Tensor, training: Bool) throws -> Tensor {
        try classifierLayers.forward(try featureLayers.forward(images, training: training), training: training)
    }

    public func trainStep(images: Tensor, labels: [UInt8]) throws -> [Tensor] {
        try checkBatch(images, labels)
        for (_, optimizer) in optimizers { try optimizer.zeroGradients() }
        let targets = try ModelSupport.oneHot(labels, classes: classes, into: &oneHot, backend: backend)
        let terms = try crossEntropy.forward(try logits(images, training: true), targets: targets)
        // d(loss / N)
        let gradLogits = try crossEntropy.backward(scale: 1 / Float(images.shape[0]))
        try featureLayers.backwardParameters(try classifierLayers.backward(gradLogits))
        for (_, optimizer) in optimizers { try optimizer.step() }
        return [terms.loss, terms.errors]
    }

    public func evaluate(images: Tensor, labels: [UInt8]) throws -> [Tensor] {
        try checkBatch(images, labels)
        let targets = try ModelSupport.oneHot(labels, classes: classes, into: &oneHot, backend: backend)
        let terms = try crossEntropy.forward(try logits(images, training: false), targets: targets)
        return [terms.loss, terms.errors]
    }

    /// Not meaningful for a classifier: throws `ModelError.doesNotGenerate`, which the
    /// trainer takes as "no sample grid".
    public func generate(count: Int, seed: UInt64) throws -> [Float] {
        throw ModelError.doesNotGenerate
    }

    /// Class probabilities (softmax of the logits) of each image, eval mode: N rows of 10.
    public func predict(_ images: Tensor) throws -> [[Float]] {
        try ModelSupport.checkImages(images, labels: nil, "classifier")
        let probabilities = try crossEntropy.probabilities(try logits(images, training: false)).toArray()
        return (0..<images.shape[0]).map { Array(probabilities[($0 * classes)..<(($0 + 1) * classes)]) }
    }

    /// The penultimate activations (N, 128), eval mode: features for Frechet-style distances.
    public func features(_ images: Tensor) throws -> [Float] {
        try ModelSupport.checkImages(images, labels: nil, "classifier")
        return try featureLayers.forward(images, training: false).toArray()
    }
}

/// Softmax cross-entropy over rows of `classes` logits, on the device, from ops the backend
/// has (it has no softmax, exp or log op of its own):
///
///   shift   z' = z - rowmax(z)            the row maximum as sum(z * onehot(argmax z)) (argmax
///                                         below), then biasActivationForward with rows as
///                                         "channels" (batch 1, spatial C)
///   exp     e = exp(z') <= 1              reparameterize(mean 0, parameter z', noise 1, logstd)
///   sums    S = rowsum(e), 1 <= S <= C    channelSum
///   1/2S    r = 1 / (2 sqrt(S^2)) <= 1/2  batchNormForwardInference on ones with variance S^2;
///                                         halved so that BCE's log(1 - r) never sees r = 1
///   loss    sum_n (log S_n - z'_{n,y_n}) = BCE_sum(r, 1) - N ln 2 - sum(z' * onehot)
///   softmax p = e / S                     batchNormForwardInference (variance S^2)
///   grad    (p - onehot) * scale
///   errors  N - sum(onehot(argmax z) * onehot): argmax as the nearest row of the identity
///           (||z - e_j||^2 = ||z||^2 - 2 z_j + 1, ties to the lowest index as torch.argmax),
///           via nearestCodebookEntry and gatherRows.
///
/// Shifting by the row maximum keeps exp from overflowing however confident the classifier
/// grows (a shift by the row mean overflowed at 88 above the mean: NaN in the fourth epoch
/// on MNIST). The argmax comes from squared distances (||z||^2 - 2 z_j + 1), so near-ties
/// of huge logits may pick a runner-up a rounding error below the maximum, which is harmless.
final class SoftmaxCrossEntropy {
    let classes: Int
    let backend: any Backend
    let identity: Tensor
    var shifted = Slot()       // (N, C)
    var exponentials = Slot()  // (N, C)
    var probabilities = Slot() // (N, C)
    var gradient = Slot()      // (N, C)
    var predicted = Slot()     // (N, C) one-hot of the argmax
    var products = Slot()      // (N, C)
    var argmax = Slot()        // (N)
    var rowOffsets = Slot()    // (N): -rowmean, then reused as sums S
    var rowSums = Slot()       // (N)
    var squares = Slot()       // (N)
    var inverse = Slot()       // (N)
    var rowZeros = ConstantSlot(0)   // (N)
    var rowOnes = ConstantSlot(1)    // (N)
    var zeros = ConstantSlot(0)      // (N, C)
    var ones = ConstantSlot(1)       // (N, C)
    let logSums: Tensor
    /// -N ln 2 for the halved 1/S.
    let halving: Tensor
    let picked: Tensor
    let loss: Tensor
    let correct: Tensor
    let errors: Tensor
    var targets: Tensor?

    init(classes: Int, backend: any Backend) throws {
        self.classes = classes
        self.backend = backend
        var values = [Float](repeating: 0, count: classes * classes)
        for i in 0..<classes { values[i * classes + i] = 1 }
        identity = try Tensor(values, shape: [classes, classes], on: backend)
        logSums = try Tensor(zeros: [1], on: backend)
        halving = try Tensor(zeros: [1], on: backend)
        picked = try Tensor(zeros: [1], on: backend)
        loss = try Tensor(zeros: [1], on: backend)
        correct = try Tensor(zeros: [1], on: backend)
        errors = try Tensor(zeros: [1], on: backend)
    }

    /// Shifted logits, exponentials and row sums of logits (N, C).
    private func exponentiate(_ logits: Tensor) throws -> (shifted: Tensor, exponentials: Tensor, sums: Tensor, rows: Int) {
        guard logits.shape.count == 2, logits.shape[1] == classes, logits.shape[0] >= 1 else {
            throw LatentError.shape("softmax cross-entropy expects logits (N, \(classes)), got \(Shape.describe(logits.shape))")
        }
        let rows = logits.shape[0]
        // -rowmax(z) = -sum(z * onehot(argmax z)).
        let argmax = try argmax.tensor([rows], on: backend)
        try backend.nearestCodebookEntry(input: logits.view, codebook: identity.view, indices: argmax.view,
                                         rows: rows, entries: classes, width: classes)
        let predicted = try predicted.tensor(logits.shape, on: backend)
        try backend.gatherRows(table: identity.view, indices: argmax.view, output: predicted.view, rows: rows, width: classes)
        let products = try products.tensor(logits.shape, on: backend)
        try backend.multiply(logits.view, predicted.view, output: products.view)
        let offsets = try rowOffsets.tensor([rows], on: backend)
        try backend.channelSum(input: products.view, output: offsets.view, batch: 1, channels: rows, spatial: classes, accumulate: false)
        try backend.axpby(alpha: -1, x: offsets.view, beta: 0, y: offsets.view)
        let shifted = try shifted.tensor(logits.shape, on: backend)
        try backend.biasActivationForward(input: logits.view, bias: offsets.view, activation: .identity, output: shifted.view,
                                          channels: rows, spatial: classes)
        let exponentials = try exponentials.tensor(logits.shape, on: backend)
        try backend.reparameterize(mean: try zeros.tensor(logits.shape, on: backend).view, parameter: shifted.view,
                                   noise: try ones.tensor(logits.shape, on: backend).view, output: exponentials.view,
                                   parameterization: .logStd)
        let sums = try rowSums.tensor([rows], on: backend)
        try backend.channelSum(input: exponentials.view, output: sums.view, batch: 1, channels: rows, spatial: classes, accumulate: false)
        return (shifted, exponentials, sums, rows)
    }

    /// `output (rows, width) = input / S` per row, S (rows) the row sums.
    private func divide(_ input: Tensor, bySums sums: Tensor, rows: Int, width: Int, into output: Tensor) throws {
        let squares = try squares.tensor([rows], on: backend)
        try backend.multiply(sums.view, sums.view, output: squares.view)
        let zeros = try rowZeros.tensor([rows], on: backend)
        let ones = try rowOnes.tensor([rows], on: backend)
        try backend.batchNormForwardInference(input: input.view, output: output.view, gamma: ones.view, beta: zeros.view,
                                              runningMean: zeros.view, runningVariance: squares.view,
                                              batch: 1, channels: rows, spatial: width, epsilon: 1e-30)
    }

    /// Softmax of logits (N, C).
    func probabilities(_ logits: Tensor) throws -> Tensor {
        let (_, exponentials, sums, rows) = try exponentiate(logits)
        let probabilities = try probabilities.tensor(logits.shape, on: backend)
        try divide(exponentials, bySums: sums, rows: rows, width: classes, into: probabilities)
        return probabilities
    }

    /// Summed cross-entropy and number of misclassified rows, one-element tensors.
    func forward(_ logits: Tensor, targets: Tensor) throws -> (loss: Tensor, errors: Tensor) {
        try Shape.expect(targets.shape, equals: logits.shape, "cross-entropy targets")
        let (shifted, exponentials, sums, rows) = try exponentiate(logits)
        // sum log S = BCE_sum(1/S, 1)
        let inverse = try inverse.tensor([rows], on: backend)
        let rowOnes = try rowOnes.tensor([rows], on: backend)
        try divide(rowOnes, bySums: sums, rows: rows, width: 1, into: inverse)
        try backend.axpby(alpha: 0.5, x: inverse.view, beta: 0, y: inverse.view)
        try backend.lossForward(.bce, prediction: inverse.view, target: rowOnes.view, output: logSums.view, reduction: .sum)
        try backend.fill(halving.view, value: -Float(rows) * 0.693_147_18)
        try backend.axpby(alpha: 1, x: halving.view, beta: 1, y: logSums.view)
        // sum z'_{n, y_n}
        let products = try products.tensor(logits.shape, on: backend)
        try backend.multiply(shifted.view, targets.view, output: products.view)
        try backend.sum(products.view, output: picked.view)
        try ModelSupport.combine(1, logSums, -1, picked, into: loss)
        // Softmax for the backward pass.
        let probabilities = try probabilities.tensor(logits.shape, on: backend)
        try divide(exponentials, bySums: sums, rows: rows, width: classes, into: probabilities)
        // Errors: N - sum(onehot(argmax) * targets).
        let argmax = try argmax.tensor([rows], on: backend)
        try backend.nearestCodebookEntry(input: logits.view, codebook: identity.view, indices: argmax.view,
                                         rows: rows, entries: classes, width: classes)
        let predicted = try predicted.tensor(logits.shape, on: backend)
        try backend.gatherRows(table: identity.view, indices: argmax.view, output: predicted.view, rows: rows, width: classes)
        try backend.multiply(predicted.view, targets.view, output: products.view)
        try backend.sum(products.view, output: correct.view)
        try backend.fill(errors.view, value: Float(rows))
        try backend.axpby(alpha: -1, x: correct.view, beta: 1, y: errors.view)
        self.targets = targets
        return (loss, errors)
    }

    /// `scale * (softmax - onehot)` (N, C), for the last `forward`.
    func backward(scale: Float) throws -> Tensor {
        guard let targets else { throw LatentError.invalidArgument("softmax cross-entropy: backward called before forward") }
        let probabilities = try probabilities.tensor(targets.shape, on: backend)
        let gradient = try gradient.tensor(targets.shape, on: backend)
        try backend.copy(probabilities.view, to: gradient.view)
        try backend.axpby(alpha: -scale, x: targets.view, beta: scale, y: gradient.view)
        return gradient
    }
}
