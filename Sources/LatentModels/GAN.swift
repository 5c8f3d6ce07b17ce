import LatentCore
import LatentData
import LatentNN

/// The two GANs of the zoo, one training scheme:
///
/// - `gan-mlp`, report 004 exactly. G: Linear(Z,128) LeakyReLU(0.2), Linear(128,256)
///   BatchNorm1d LeakyReLU(0.2), Linear(256,512) BN LeakyReLU(0.2), Linear(512,1024) BN
///   LeakyReLU(0.2), Linear(1024,784) Tanh, Unflatten(1,28,28). D: Flatten, Linear(784,512)
///   LeakyReLU(0.2), Linear(512,256) LeakyReLU(0.2), Linear(256,1) Sigmoid. PyTorch's
///   default initialisation (the report sets none).
/// - `dcgan`, the convolutional GAN the reports point towards, sized for 28x28.
///   G: Linear(Z,6272) BatchNorm1d(6272) ReLU, Unflatten(128,7,7),
///   ConvTranspose2d(128,64,4,2,1) BatchNorm2d(64) ReLU, ConvTranspose2d(64,1,4,2,1) Tanh.
///   D: Conv2d(1,64,4,2,1) LeakyReLU(0.2), Conv2d(64,128,4,2,1) BatchNorm2d(128)
///   LeakyReLU(0.2), Flatten, Linear(6272,1) Sigmoid. Initialised as the PyTorch DCGAN
///   tutorial's `weights_init` (Radford et al.): every Conv/ConvTranspose weight N(0, 0.02),
///   every BatchNorm weight N(1, 0.02) and bias 0; biases of convolutions and the Linear
///   layers keep PyTorch's defaults.
///
/// Images are in [-1, 1] (`pixelRange`). Loss: BCE with mean reduction, as report 004:
///   g_loss = BCE(D(G(z)), 1),  d_loss = (BCE(D(x), 1) + BCE(D(G(z).detach()), 0)) / 2.
/// Per batch, one G step then one D step; the D step sees the same fakes G produced before
/// its own update (`generated_imgs.detach()`, report 004 and the PyTorch-GAN style).
/// D judges those fakes twice with the same weights (in the G step and in the D step), so
/// the D step reuses the G step's pass (`reusesFakeJudgement`): one forward pass through D
/// fewer, and every tensor the same to the bit (D's batch norm moves its running statistics
/// on the fakes again after the real batch, as the second pass would have; D's gradient gets
/// the fake term before the real one, and both backends add a term to a gradient in one
/// addition, so the order does not show).
/// Zeroing of gradients:
/// - default (clean): G's gradients are zeroed before the G backward and D's before the D
///   backward, so each optimizer steps on its own loss only. (During the G backward D's
///   weight gradients are not computed at all, since they are zeroed before D's step.)
/// - `ganSharedZeroGrad` (report 004's code): both optimizers are zeroed once, at the start
///   of the batch; G's backward through D leaves d g_loss / d theta_D in D's gradients, and
///   D's step applies that sum (REPORTS.md, "Three places", 1).
///
/// Loss terms are sums over the batch (the trainer divides by N, giving the batch means the
/// report prints, averaged over an epoch): `g_loss` = N * g_loss, `d_loss` = N * d_loss,
/// `loss` = g_loss + d_loss (a number to watch, not an objective anything minimises).
/// Noise z ~ N(0, I) (N, latentDim) comes from the model's random stream.
/// State dict: `generator.*`, `discriminator.*`; optimizers `optimizer_g`, `optimizer_d`.
public final class GAN: GenerativeModel, LatentDecodingModel {
    public let options: TrainingOptions
    public let backend: any Backend
    public let random: RandomSource
    public let root: ModuleGroup
    public private(set) var optimizers: [(name: String, optimizer: Optimizer)] = []
    public let pixelRange = PixelRange.minusOneToOne
    public let lossTermNames = ["loss", "g_loss", "d_loss"]
    public var codeSize: Int { options.latentDim }

    /// (N, Z) -> (N, 1, 28, 28) in (-1, 1)
    public let generator: Sequential
    /// (N, 1, 28, 28) -> (N, 1) in (0, 1)
    public let discriminator: Sequential
    let optimizerG: Optimizer
    let optimizerD: Optimizer
    let discriminatorParameters: [Parameter]

    let generatorLoss = ElementwiseLoss(.bce, reduction: .sum)
    let realLoss = ElementwiseLoss(.bce, reduction: .sum)
    let fakeLoss = ElementwiseLoss(.bce, reduction: .sum)
    var noise = Slot()
    var ones = ConstantSlot(1)
    var zeros = ConstantSlot(0)
    let discriminatorTotal: Tensor
    let total: Tensor
    /// Where D's batch-norm layers sit in `discriminator.layers`.
    let discriminatorNorms: [Int]
    /// Whether D's training-mode forward pass is a function of its input and parameters
    /// alone, apart from batch norm's running statistics (no dropout masks to draw).
    let discriminatorIsDeterministic: Bool
    /// The inputs of D's batch-norm layers in its last `judge`, and copies of them.
    var normInputs: [Tensor] = []
    var normStashes: [Slot] = []
    /// Off in tests only, to check the reuse against the three passes it stands for.
    var allowsFakeJudgementReuse = true

    /// Whether the D step takes its fake term from the G step's pass through D instead of
    /// running D on the same fakes again (one forward pass fewer). Report 004's shared
    /// zero_grad keeps the three passes: there D's gradients already hold g_loss's when the
    /// D step adds its two terms, and the quirk's experiment is about that sum.
    var reusesFakeJudgement: Bool {
        allowsFakeJudgementReuse && discriminatorIsDeterministic && !options.ganSharedZeroGrad
    }

    public init(options: TrainingOptions, backend: any Backend, random: RandomSource) throws {
        self.options = options
        self.backend = backend
        self.random = random
        let z = options.latentDim
        switch options.model {
        case .ganMLP:
            generator = Sequential([
                try Linear(z, 128, on: backend, random: random), LeakyReLU(0.2),
                try Linear(128, 256, on: backend, random: random), try BatchNorm1d(256, on: backend), LeakyReLU(0.2),
                try Linear(256, 512, on: backend, random: random), try BatchNorm1d(512, on: backend), LeakyReLU(0.2),
                try Linear(512, 1024, on: backend, random: random), try BatchNorm1d(1024, on: backend), LeakyReLU(0.2),
                try Linear(1024, ModelSupport.pixels, on: backend, random: random), Tanh(),
                try Reshape([1, 28, 28]),
            ])
            discriminator = Sequential([
                Flatten(),
                try Linear(ModelSupport.pixels, 512, on: backend, random: random), LeakyReLU(0.2),
                try Linear(512, 256, on: backend, random: random), LeakyReLU(0.2),
                try Linear(256, 1, on: backend, random: random), Sigmoid(),
            ])
        case .dcgan:
            let features = 128 * 7 * 7
            generator = Sequential([
                try Linear(z, features, on: backend, random: random), try BatchNorm1d(features, on: backend), ReLU(),
                try Reshape([128, 7, 7]),
                try ConvTranspose2d(128, 64, kernel: 4, stride: 2, padding: 1, on: backend, random: random),
                try BatchNorm2d(64, on: backend), ReLU(),
                try ConvTranspose2d(64, 1, kernel: 4, stride: 2, padding: 1, on: backend, random: random), Tanh(),
            ])
            discriminator = Sequential([
                try Conv2d(1, 64, kernel: 4, stride: 2, padding: 1, on: backend, random: random), LeakyReLU(0.2),
                try Conv2d(64, 128, kernel: 4, stride: 2, padding: 1, on: backend, random: random),
                try BatchNorm2d(128, on: backend), LeakyReLU(0.2),
                Flatten(),
                try Linear(features, 1, on: backend, random: random), Sigmoid(),
            ])
            try Self.dcganInitialization([generator, discriminator], random: random)
        default:
            throw LatentError.invalidArgument("GAN builds gan-mlp or dcgan, not \(options.model.rawValue)")
        }
        root = ModuleGroup([("generator", generator), ("discriminator", discriminator)])
        optimizerG = try ModelSupport.makeOptimizer(options, parameters: generator.namedParameters(prefix: "generator."))
        optimizerD = try ModelSupport.makeOptimizer(options, parameters: discriminator.namedParameters(prefix: "discriminator."))
        optimizers = [("optimizer_g", optimizerG), ("optimizer_d", optimizerD)]
        discriminatorParameters = discriminator.parameters()
        let layers = discriminator.layers
        discriminatorNorms = layers.indices.filter { layers[$0] is BatchNorm1d || layers[$0] is BatchNorm2d }
        discriminatorIsDeterministic = !layers.contains { $0 is Dropout }
        normStashes = Array(repeating: Slot(), count: discriminatorNorms.count)
        discriminatorTotal = try Tensor(zeros: [1], on: backend)
        total = try Tensor(zeros: [1], on: backend)
    }

    /// The DCGAN tutorial's `weights_init`: conv weights N(0, 0.02); batch-norm weight
    /// N(1, 0.02), bias 0.
    static func dcganInitialization(_ networks: [Sequential], random: RandomSource) throws {
        for network in networks {
            for layer in network.layers {
                if let conv = layer as? Conv2d {
                    try random.fillNormal(conv.weight.value, mean: 0, std: 0.02)
                } else if let conv = layer as? ConvTranspose2d {
                    try random.fillNormal(conv.weight.value, mean: 0, std: 0.02)
                } else if let norm = layer as? BatchNorm2d {
                    try random.fillNormal(norm.storage.weight.value, mean: 1, std: 0.02)
                    try norm.storage.bias.value.backend.fill(norm.storage.bias.value.view, value: 0)
                }
            }
        }
    }

    /// D(x) in training mode, as `discriminator.forward`; with `keepingNormInputs`, the
    /// inputs of D's batch-norm layers are kept in `normInputs`.
    func judge(_ x: Tensor, keepingNormInputs: Bool) throws -> Tensor {
        guard keepingNormInputs else { return try discriminator.forward(x, training: true) }
        normInputs.removeAll(keepingCapacity: true)
        var h = x
        for (index, layer) in discriminator.layers.enumerated() {
            if discriminatorNorms.contains(index) { normInputs.append(h) }
            h = try layer.forward(h, training: true)
        }
        return h
    }

    public func trainStep(images: Tensor, labels: [UInt8]) throws -> [Tensor] {
        try ModelSupport.checkImages(images, labels: nil, options.model.rawValue)
        let batch = images.shape[0]
        let scale = 1 / Float(batch)
        let real = try ones.tensor([batch, 1], on: backend)
        let fake = try zeros.tensor([batch, 1], on: backend)
        try optimizerG.zeroGradients()
        if options.ganSharedZeroGrad { try optimizerD.zeroGradients() }

        // Generator step: g_loss = BCE(D(G(z)), 1).
        let z = try noise.tensor([batch, options.latentDim], on: backend)
        try random.fillNormal(z)
        let generated = try generator.forward(z, training: true)          // (N, 1, 28, 28)
        let reuse = reusesFakeJudgement
        let judged = try judge(generated, keepingNormInputs: reuse)        // (N, 1)
        let gLoss = try generatorLoss.forward(judged, target: real)
        let gradJudged = try generatorLoss.backward(scale: scale)
        let gradGenerated: Tensor
        if options.ganSharedZeroGrad {
            gradGenerated = try discriminator.backward(gradJudged)            // leaves d g_loss / d D in D
        } else {
            gradGenerated = try ModelSupport.withoutGradients(discriminatorParameters) {
                try discriminator.backward(gradJudged)
            }
        }
        try generator.backwardParameters(gradGenerated)                  // z needs no gradient
        try optimizerG.step()

        // Discriminator step on the real batch and the same (detached) fakes:
        // d_loss = (BCE(D(x), 1) + BCE(D(fake), 0)) / 2.
        if !options.ganSharedZeroGrad { try optimizerD.zeroGradients() }
        let realTerm: Tensor, fakeTerm: Tensor
        if reuse {
            // D has not changed since it judged these fakes, so that pass (still held in D's
            // layers) is the one the fake term needs: its gradient first, then the real batch.
            fakeTerm = try fakeLoss.forward(judged, target: fake)
            try discriminator.backwardParameters(try fakeLoss.backward(scale: 0.5 * scale))
            // The real batch's pass overwrites D's buffers, the fakes' batch-norm inputs too.
            var stashes: [Tensor] = []
            for (index, input) in normInputs.enumerated() {
                let stash = try normStashes[index].tensor(input.shape, on: backend)
                try backend.copy(input.view, to: stash.view)
                stashes.append(stash)
            }
            let realJudged = try discriminator.forward(images, training: true)
            realTerm = try realLoss.forward(realJudged, target: real)
            try discriminator.backwardParameters(try realLoss.backward(scale: 0.5 * scale))
            // The pass that is skipped would have moved D's running statistics once more,
            // after the real batch's: the same forward on the same inputs does that.
            for (layer, stash) in zip(discriminatorNorms, stashes) {
                _ = try discriminator.layers[layer].forward(stash, training: true)
            }
        } else {
            let realJudged = try discriminator.forward(images, training: true)
            realTerm = try realLoss.forward(realJudged, target: real)
            try discriminator.backwardParameters(try realLoss.backward(scale: 0.5 * scale))
            let fakeJudged = try discriminator.forward(generated, training: true)
            fakeTerm = try fakeLoss.forward(fakeJudged, target: fake)
            try discriminator.backwardParameters(try fakeLoss.backward(scale: 0.5 * scale))  // the fakes are detached
        }
        try optimizerD.step()

        try ModelSupport.combine(0.5, realTerm, 0.5, fakeTerm, into: discriminatorTotal)
        try ModelSupport.combine(1, gLoss, 1, discriminatorTotal, into: total)
        return [total, gLoss, discriminatorTotal]
    }

    /// The same three terms in eval mode (batch norm on running statistics), z drawn from the
    /// model's stream, nothing updated.
    public func evaluate(images: Tensor, labels: [UInt8]) throws -> [Tensor] {
        try ModelSupport.checkImages(images, labels: nil, options.model.rawValue)
        let batch = images.shape[0]
        let real = try ones.tensor([batch, 1], on: backend)
        let fake = try zeros.tensor([batch, 1], on: backend)
        let z = try noise.tensor([batch, options.latentDim], on: backend)
        try random.fillNormal(z)
        let generated = try generator.forward(z, training: false)
        let gLoss = try generatorLoss.forward(try discriminator.forward(generated, training: false), target: real)
        let fakeTerm = try fakeLoss.forward(try discriminator.forward(generated, training: false), target: fake)
        let realTerm = try realLoss.forward(try discriminator.forward(images, training: false), target: real)
        try ModelSupport.combine(0.5, realTerm, 0.5, fakeTerm, into: discriminatorTotal)
        try ModelSupport.combine(1, gLoss, 1, discriminatorTotal, into: total)
        return [total, gLoss, discriminatorTotal]
    }

    /// G(z) for z ~ N(0, I) drawn with `seed`, in eval mode, mapped from [-1, 1] to [0, 1].
    public func generate(count: Int, seed: UInt64) throws -> [Float] {
        guard count >= 1 else { throw LatentError.invalidArgument("\(options.model.rawValue): generate needs count >= 1, got \(count)") }
        let z = try Tensor(zeros: [count, options.latentDim], on: backend)
        try RandomSource(seed: seed).fillNormal(z)
        return try decode(z, labels: nil)
    }

    /// G(codes) in eval mode, mapped to [0, 1] (count x 28 x 28).
    public func decode(_ codes: Tensor, labels: [UInt8]? = nil) throws -> [Float] {
        try ModelSupport.checkCodes(codes, width: options.latentDim, options.model.rawValue)
        return try generator.forward(codes, training: false).toArray().map { min(max(($0 + 1) / 2, 0), 1) }
    }

    /// D's probability that each image (N, 1, 28, 28) in [-1, 1] is real, in eval mode.
    public func discriminate(_ images: Tensor) throws -> [Float] {
        try ModelSupport.checkImages(images, labels: nil, options.model.rawValue)
        return try discriminator.forward(images, training: false).toArray()
    }
}
