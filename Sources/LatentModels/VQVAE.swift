import LatentCore
import LatentData
import LatentNN

/// A codebook of `entries` vectors of `width` floats, `nn.Embedding(entries, width)` in
/// PyTorch (state dict `codebook.weight`, (K, D)). Initialised uniform(-1/K, 1/K) as the
/// common PyTorch VQ-VAE implementation does (`embedding.weight.data.uniform_(-1/K, 1/K)`).
///
/// The buffer `codebook.usage` (positions, K) is an exponential moving average (decay
/// `usageDecay` per training step) of how many training images chose each entry at each
/// position of the code map: the prior `generate` samples from. A moving average rather
/// than a running count follows the codebook as it trains and cannot saturate a Float.
public final class Codebook: Module {
    public let entries: Int
    public let width: Int
    public let positions: Int
    public let weight: Parameter
    public let usage: Tensor
    public static let usageDecay: Float = 0.99

    public init(entries: Int, width: Int, positions: Int, on backend: any Backend, random: RandomSource) throws {
        guard entries >= 1, width >= 1, positions >= 1 else {
            throw LatentError.invalidArgument("a codebook needs at least one entry of width >= 1, got \(entries) x \(width)")
        }
        self.entries = entries
        self.width = width
        self.positions = positions
        weight = try Parameter(shape: [entries, width], on: backend)
        usage = try Tensor(zeros: [positions, entries], on: backend)
        let bound = 1 / Float(entries)
        try random.fillUniform(weight.value, low: -bound, high: bound)
    }

    public var ownParameters: [(name: String, parameter: Parameter)] { [("weight", weight)] }
    public var ownBuffers: [(name: String, tensor: Tensor)] { [("usage", usage)] }
}

/// How `VQVAE.generate` draws code maps: each position independently, from the entries'
/// usage at that position during training (`empirical`, the default; a uniform draw where
/// nothing was recorded yet) or uniformly over all K entries (`uniform`).
public enum CodePrior: Sendable {
    case empirical
    case uniform
}

/// Report 001's VQ-VAE (`vqvae`), after van den Oord et al. 2017.
///
/// - Encoder: Conv2d(1,32,4,2,1) ReLU Conv2d(32,64,4,2,1) ReLU Conv2d(64,D,1):
///   (N, 1, 28, 28) -> z_e (N, D, 7, 7), D = `codebookDim`.
/// - Quantiser: each of the 49 D-vectors of every image is replaced by the nearest of the
///   K = `codebookSize` codebook entries (squared Euclidean distance, ties to the lowest
///   index): z_q (N, D, 7, 7).
/// - Decoder: Conv2d(D,64,3,1,1) ReLU ConvTranspose2d(64,32,4,2,1) ReLU
///   ConvTranspose2d(32,1,4,2,1) Sigmoid: z_q -> (N, 1, 28, 28).
///
/// Loss, as sums over the batch (the trainer divides by N; gradients are those of the batch
/// mean of the per-image sums, as the VAEs'):
///   recon = `--loss` (BCE by default) summed over pixels,
///   vq    = ||sg[z_e] - z_q||^2 + commitment * ||z_e - sg[z_q]||^2, each summed over the
///           49 x D code elements. Both norms have the same value, so the reported term is
///           (1 + commitment) * SSE(z_e, z_q); their gradients differ: the codebook loss moves
///           only the chosen entries (2 (e - z_e), scattered to the entries), the commitment
///           loss only the encoder (2 commitment (z_e - e)).
///   loss  = recon + vq.
/// PyTorch implementations usually take means (`F.mse_loss`); sums per image keep the
/// codebook terms on the scale of the summed reconstruction loss, as the VAEs' KL is.
/// The straight-through estimator sends the decoder's input gradient to z_e unchanged.
///
/// Layout: the lookup needs rows of D floats, but z_e is NCHW. One GEMM transposition (see
/// `Transposer`) turns z_e viewed as (N*D, 49) into (49, N*D), i.e. rows (49*N, D) with row
/// `s*N + n` holding position s of image n; the quantised rows go back the same way. The
/// backward pass needs no transposition: the commitment gradient is computed in NCHW
/// against z_q, and the codebook gradient in row layout against the z_e rows.
///
/// `generate` needs a prior over code maps; without a PixelCNN it samples each position
/// independently from the codebook usage recorded during training (`Codebook.usage`,
/// `samplingPrior`). A uniform draw over all K entries (`.uniform`) mostly picks entries no
/// image uses (the common codebook collapse: after one MNIST epoch about 20 of 512 entries
/// are in use) and decodes to grey blobs; the per-position usage gives stroke-like digits.
///
/// State dict: `encoder.*`, `codebook.weight`, `codebook.usage` (buffer), `decoder.*`.
public final class VQVAE: GenerativeModel, ReconstructingModel {
    public let options: TrainingOptions
    public let backend: any Backend
    public let random: RandomSource
    public let root: ModuleGroup
    public private(set) var optimizers: [(name: String, optimizer: Optimizer)] = []
    public let pixelRange = PixelRange.zeroToOne
    public let lossTermNames = ["loss", "recon", "vq"]

    /// (N, 1, 28, 28) -> (N, D, 7, 7)
    let encoder: Sequential
    public let codebook: Codebook
    /// (N, D, 7, 7) -> (N, 1, 28, 28) in (0, 1)
    let decoder: Sequential
    /// The code map's side (7) and positions per image (49).
    public let side = 7
    public var positions: Int { side * side }
    public var codebookDim: Int { codebook.width }
    public var codebookSize: Int { codebook.entries }
    /// The prior `generate` samples code maps from.
    public var samplingPrior = CodePrior.empirical

    let reconstruction: ElementwiseLoss
    var transposer = Transposer()
    var zRows = Slot()          // (49 * N, D)
    var qRows = Slot()          // (49 * N, D)
    var quantized = Slot()      // (N, D, 7, 7)
    var indices = Slot()        // (49 * N) codebook indices as floats
    var gradEncoderOutput = Slot() // (N, D, 7, 7)
    var gradCodeRows = Slot()   // (49 * N, D)
    var cellOffsets = Slot()    // (49 * N): s * K for row s * N + n
    var cellOffsetsBatch = 0
    var cells = Slot()          // (49 * N): s * K + index
    var batchUsage = Slot()     // (49, K)
    var onesColumn = ConstantSlot(1) // (49 * N, 1)
    let sse: Tensor
    let vqTotal: Tensor
    let total: Tensor

    struct Pass {
        var encoded: Tensor     // z_e (N, D, 7, 7)
        var zRows: Tensor       // (49N, D)
        var qRows: Tensor       // (49N, D)
        var quantized: Tensor   // z_q (N, D, 7, 7)
        var indices: Tensor     // (49N)
        var output: Tensor      // (N, 1, 28, 28)
    }

    public init(options: TrainingOptions, backend: any Backend, random: RandomSource) throws {
        self.options = options
        self.backend = backend
        self.random = random
        let width = options.codebookDim
        encoder = Sequential([
            try Conv2d(1, 32, kernel: 4, stride: 2, padding: 1, on: backend, random: random), ReLU(),
            try Conv2d(32, 64, kernel: 4, stride: 2, padding: 1, on: backend, random: random), ReLU(),
            try Conv2d(64, width, kernel: 1, on: backend, random: random),
        ])
        codebook = try Codebook(entries: options.codebookSize, width: width, positions: side * side, on: backend, random: random)
        decoder = Sequential([
            try Conv2d(width, 64, kernel: 3, stride: 1, padding: 1, on: backend, random: random), ReLU(),
            try ConvTranspose2d(64, 32, kernel: 4, stride: 2, padding: 1, on: backend, random: random), ReLU(),
            try ConvTranspose2d(32, 1, kernel: 4, stride: 2, padding: 1, on: backend, random: random), Sigmoid(),
        ])
        root = ModuleGroup([("encoder", encoder), ("codebook", codebook), ("decoder", decoder)])
        reconstruction = ElementwiseLoss(options.lossKind, reduction: .sum)
        sse = try Tensor(zeros: [1], on: backend)
        vqTotal = try Tensor(zeros: [1], on: backend)
        total = try Tensor(zeros: [1], on: backend)
        optimizers = [("optimizer", try ModelSupport.makeOptimizer(options, parameters: root.namedParameters()))]
    }

    /// z_e (N, D, 7, 7) -> rows, nearest indices, quantised rows and z_q (N, D, 7, 7).
    func quantize(_ encoded: Tensor) throws -> (zRows: Tensor, qRows: Tensor, quantized: Tensor, indices: Tensor) {
        let width = codebook.width
        guard encoded.shape.count == 4, encoded.shape[1] == width, encoded.shape[2] == side, encoded.shape[3] == side else {
            throw LatentError.shape("vqvae quantiser expects (N, \(width), \(side), \(side)), got \(Shape.describe(encoded.shape))")
        }
        let batch = encoded.shape[0]
        let rows = batch * positions
        let zRows = try zRows.tensor([rows, width], on: backend)
        // (N*D, 49) -> (49, N*D) = rows (49*N, D)
        try transposer.transpose(encoded.view, rows: batch * width, cols: positions, into: zRows.view, on: backend)
        let indices = try indices.tensor([rows], on: backend)
        try backend.nearestCodebookEntry(input: zRows.view, codebook: codebook.weight.value.view, indices: indices.view,
                                         rows: rows, entries: codebook.entries, width: width)
        let (qRows, quantized) = try lookUp(indices, batch: batch)
        return (zRows, qRows, quantized, indices)
    }

    /// Indices (49N), row `s*N + n` -> quantised rows (49N, D) and z_q (N, D, 7, 7).
    func lookUp(_ indices: Tensor, batch: Int) throws -> (rows: Tensor, quantized: Tensor) {
        let width = codebook.width
        let rows = batch * positions
        let qRows = try qRows.tensor([rows, width], on: backend)
        try backend.gatherRows(table: codebook.weight.value.view, indices: indices.view, output: qRows.view,
                               rows: rows, width: width)
        let quantized = try quantized.tensor([batch, width, side, side], on: backend)
        // (49, N*D) -> (N*D, 49)
        try transposer.transpose(qRows.view, rows: positions, cols: batch * width, into: quantized.view, on: backend)
        return (qRows, quantized)
    }

    func forward(_ images: Tensor, training: Bool) throws -> Pass {
        try ModelSupport.checkImages(images, labels: nil, "vqvae")
        let encoded = try encoder.forward(images, training: training)
        let (zRows, qRows, quantized, indices) = try quantize(encoded)
        let output = try decoder.forward(quantized, training: training)
        return Pass(encoded: encoded, zRows: zRows, qRows: qRows, quantized: quantized, indices: indices, output: output)
    }

    /// [loss, recon, vq] as sums over the batch.
    func losses(_ pass: Pass, target: Tensor) throws -> [Tensor] {
        let recon = try reconstruction.forward(pass.output, target: target)
        try backend.lossForward(.mse, prediction: pass.zRows.view, target: pass.qRows.view, output: sse.view, reduction: .sum)
        try backend.axpby(alpha: 1 + options.commitment, x: sse.view, beta: 0, y: vqTotal.view)
        try ModelSupport.combine(1, recon, 1, vqTotal, into: total)
        return [total, recon, vqTotal]
    }

    public func trainStep(images: Tensor, labels: [UInt8]) throws -> [Tensor] {
        for (_, optimizer) in optimizers { try optimizer.zeroGradients() }
        let pass = try forward(images, training: true)
        let terms = try losses(pass, target: images)
        _ = try backpropagate(pass, scale: 1 / Float(images.shape[0]))
        for (_, optimizer) in optimizers { try optimizer.step() }
        try recordUsage(pass.indices, batch: images.shape[0])
        return terms
    }

    /// usage = decay * usage + (1 - decay) * (this batch's count of each entry at each
    /// position), on the device: one scatter-add of ones into cells s * K + index.
    func recordUsage(_ indices: Tensor, batch: Int) throws {
        let rows = batch * positions, entries = codebook.entries
        let offsets = try cellOffsets.tensor([rows], on: backend)
        if cellOffsetsBatch != batch {
            try offsets.copy(from: (0..<rows).map { Float(($0 / batch) * entries) })
            cellOffsetsBatch = batch
        }
        let cells = try cells.tensor([rows], on: backend)
        try backend.copy(offsets.view, to: cells.view)
        try backend.axpby(alpha: 1, x: indices.view, beta: 1, y: cells.view)
        let counts = try batchUsage.tensor([positions, entries], on: backend)
        try backend.fill(counts.view, value: 0)
        try backend.scatterAddRows(gradOutput: try onesColumn.tensor([rows, 1], on: backend).view, indices: cells.view,
                                   gradTable: counts.view, rows: rows, width: 1)
        let decay = Codebook.usageDecay
        try backend.axpby(alpha: 1 - decay, x: counts.view, beta: decay, y: codebook.usage.view)
    }

    /// Adds the gradients of `scale * loss` for the pass whose `losses` ran last into every
    /// parameter; returns the gradient that reached z_e (N, D, 7, 7).
    func backpropagate(_ pass: Pass, scale: Float) throws -> Tensor {
        // Decoder, then straight through: d loss / d z_e starts as d loss / d z_q.
        let gradQuantized = try decoder.backward(try reconstruction.backward(scale: scale))
        let gradEncoded = try gradEncoderOutput.tensor(pass.encoded.shape, on: backend)
        try backend.copy(gradQuantized.view, to: gradEncoded.view)
        // + commitment * 2 (z_e - z_q) / N, in NCHW.
        try backend.lossBackward(.mse, prediction: pass.encoded.view, target: pass.quantized.view,
                                 gradPrediction: gradEncoded.view, reduction: .sum,
                                 scale: options.commitment * scale, accumulate: true)
        try encoder.backwardParameters(gradEncoded)
        // Codebook: 2 (e - z_e) / N for each row, added into the entry it chose.
        let gradRows = try gradCodeRows.tensor(pass.qRows.shape, on: backend)
        try backend.lossBackward(.mse, prediction: pass.qRows.view, target: pass.zRows.view, gradPrediction: gradRows.view,
                                 reduction: .sum, scale: scale, accumulate: false)
        if codebook.weight.requiresGradient {
            try backend.scatterAddRows(gradOutput: gradRows.view, indices: pass.indices.view,
                                       gradTable: codebook.weight.gradient.view, rows: pass.qRows.shape[0], width: codebook.width)
        }
        return gradEncoded
    }

    public func evaluate(images: Tensor, labels: [UInt8]) throws -> [Tensor] {
        try losses(try forward(images, training: false), target: images)
    }

    /// Decodes code maps drawn from `samplingPrior`, each position independently, with
    /// uniform numbers from `seed` (inverse CDF of the position's usage, or u * K).
    public func generate(count: Int, seed: UInt64) throws -> [Float] {
        try decode(indices: try sampleIndices(count: count, seed: seed), count: count)
    }

    /// The code maps `generate` decodes: `count * 49` indices, position-major.
    func sampleIndices(count: Int, seed: UInt64) throws -> [Float] {
        guard count >= 1, count <= 1 << 24 else { throw LatentError.invalidArgument("vqvae: generate needs 1 <= count <= 2^24, got \(count)") }
        let uniform = try Tensor(zeros: [count * positions], on: backend)
        try RandomSource(seed: seed).fillUniform(uniform, low: 0, high: 1)
        let draws = try uniform.toArray()
        let entries = codebook.entries
        let usage = samplingPrior == .empirical ? try codebook.usage.toArray() : []
        var chosen = [Float](repeating: 0, count: count * positions)
        for s in 0..<positions {
            var cumulative: [Double] = []
            if !usage.isEmpty {
                var total = 0.0
                cumulative = usage[(s * entries)..<((s + 1) * entries)].map { total += Double(max($0, 0)); return total }
                if !(total > 0) || !total.isFinite { cumulative = [] }
            }
            for n in 0..<count {
                let u = draws[s * count + n]
                let index: Int
                if let total = cumulative.last {
                    let target = Double(u) * total
                    var low = 0, high = entries - 1
                    while low < high {  // the first entry whose cumulative usage exceeds the target
                        let middle = (low + high) / 2
                        if cumulative[middle] > target { high = middle } else { low = middle + 1 }
                    }
                    index = low
                } else {
                    index = min(Int(u * Float(entries)), entries - 1)
                }
                chosen[s * count + n] = Float(index)
            }
        }
        return chosen
    }

    /// Decodes code maps given as codebook indices, `count * 49` of them, position-major as
    /// the lookup lays them out (entry `s * count + n` is position s of image n).
    public func decode(indices chosen: [Float], count: Int) throws -> [Float] {
        guard count >= 1, count <= 1 << 24, chosen.count == count * positions else {
            throw LatentError.shape("vqvae: \(chosen.count) indices for \(count) code maps of \(positions)")
        }
        guard chosen.allSatisfy({ $0 >= 0 && $0 < Float(codebook.entries) && $0.rounded() == $0 }) else {
            throw LatentError.invalidArgument("vqvae: code indices must be whole numbers in 0..<\(codebook.entries)")
        }
        let indexTensor = try Tensor(chosen, shape: [chosen.count], on: backend)
        let (_, quantized) = try lookUp(indexTensor, batch: count)
        return try decoder.forward(quantized, training: false).toArray()
    }

    /// The codebook index of each position of each image, (N, 7, 7) in image-major order.
    public func codeIndices(_ images: Tensor) throws -> [Int] {
        let pass = try forward(images, training: false)
        let rowMajor = try pass.indices.toArray()
        let batch = images.shape[0]
        var result = [Int](repeating: 0, count: rowMajor.count)
        for s in 0..<positions {
            for n in 0..<batch { result[n * positions + s] = Int(rowMajor[s * batch + n]) }
        }
        return result
    }

    public func reconstruct(_ images: Tensor, labels: [UInt8]) throws -> [Float] {
        try forward(images, training: false).output.toArray()
    }
}
