import LatentModels
import LatentNN

/// One change to a model's defaults, as `latent train` would make it.
public enum Knob: Sendable, Equatable {
    case epochs(Int)
    case batchSize(Int)
    case optimizer(OptimizerName)
    case learningRate(Float)
    case latentDim(Int)
    case hidden(Int)
    case depth(Int)
    case batchnorm
    case dropout(Float)
    case loss(String)
    case beta(Float)
    case noKL
    case noise(Double)
    case sharedBatchnorm
    case ganSharedZeroGrad

    public func apply(to options: inout TrainingOptions) {
        switch self {
        case .epochs(let value): options.epochs = value
        case .batchSize(let value): options.batchSize = value
        case .optimizer(let value): options.optimizer = value.rawValue
        case .learningRate(let value): options.learningRate = value
        case .latentDim(let value): options.latentDim = value
        case .hidden(let value): options.hidden = value
        case .depth(let value): options.depth = value
        case .batchnorm: options.batchnorm = true
        case .dropout(let value): options.dropout = value
        case .loss(let value): options.loss = value
        case .beta(let value): options.beta = value
        case .noKL: options.kl = false
        case .noise(let value): options.noise = value
        case .sharedBatchnorm: options.sharedBatchnorm = true
        case .ganSharedZeroGrad: options.ganSharedZeroGrad = true
        }
    }
}

/// One training of a recipe: a folder name (also the table's row), a model and its knobs,
/// and what the report printed for it, if anything.
public struct RecipeRun: Sendable {
    public var name: String
    public var model: ModelKind
    public var knobs: [Knob]
    public var reported: String?

    public init(_ name: String, _ model: ModelKind, _ knobs: [Knob] = [], reported: String? = nil) {
        self.name = name
        self.model = model
        self.knobs = knobs
        self.reported = reported
    }
}

/// A picture a recipe draws from its trained runs.
public enum Figure: Sendable, Equatable {
    /// All runs' training loss per epoch in one chart.
    case lossCurves
    /// A grid of samples.
    case samples(count: Int)
    /// Rows of classes 0...9 (conditional models).
    case classRows(perClass: Int)
    /// Test images over their reconstructions.
    case reconstructions(count: Int)
    /// A 1-D latent space decoded over [from, to].
    case sweep(from: Double, to: Double, steps: Int, columns: Int)
    /// A 1-D latent space decoded over the range its test codes span (1st to 99th percentile).
    case codeRangeSweep(steps: Int, columns: Int)
    /// A 2-D latent space decoded over a square grid.
    case manifold(range: Double, steps: Int)
    /// Class centroids decoded, then with growing noise (relative to the codes' spread).
    case centroids(noise: [Double])
    /// Test-set codes coloured by class.
    case scatter
    /// Rows between pairs of test images.
    case interpolation(pairs: Int, steps: Int)
    /// Test images with salt-and-pepper noise over their reconstructions (nil: the noise
    /// level the run trained with, else 10 %).
    case denoise(noise: Double?, count: Int)

    /// The file name stem ("samples", "sweep", ...).
    public var stem: String {
        switch self {
        case .lossCurves: return "loss"
        case .samples: return "samples"
        case .classRows: return "class-rows"
        case .reconstructions: return "reconstructions"
        case .sweep, .codeRangeSweep: return "sweep"
        case .manifold: return "manifold"
        case .centroids: return "centroids"
        case .scatter: return "scatter"
        case .interpolation: return "interpolation"
        case .denoise: return "denoise"
        }
    }
}

/// A figure and the runs it is drawn for (nil: every run that can).
public struct FigureRequest: Sendable {
    public var figure: Figure
    public var runs: [String]?

    public init(_ figure: Figure, runs: [String]? = nil) {
        self.figure = figure
        self.runs = runs
    }
}

/// An experiment of the reports: the trainings it runs and the table and pictures it writes.
/// Recipes are data: `Recipes.all` lists them; `RecipeRunner` runs any of them.
public struct Recipe: Sendable {
    public var name: String
    /// The report file it comes from (REPORTS.md).
    public var report: String
    public var title: String
    /// What the report found, for the README the recipe writes.
    public var summary: String
    /// Epochs of every run unless `--epochs` says otherwise (a run's own `.epochs` knob wins).
    public var epochs: Int
    public var runs: [RecipeRun]
    public var figures: [FigureRequest]
    /// Final-epoch fields shown beside train and test loss ("recon", "kl", "g_loss", ...).
    public var terms: [String]
    /// Heading of the column of `RecipeRun.reported`.
    public var reportedColumn: String

    /// The options of `run` as this recipe trains it.
    public func options(for run: RecipeRun, epochs override: Int?, limit: Int?, seed: UInt64?, dataset: String) -> TrainingOptions {
        var options = ModelCatalog.descriptor(run.model).defaults
        options.dataset = dataset
        options.epochs = epochs
        for knob in run.knobs { knob.apply(to: &options) }
        if let override { options.epochs = override }
        if let limit { options.limit = limit }
        if let seed { options.seed = seed }
        return options
    }
}

/// Every experiment of REPORTS.md, by name.
public enum Recipes {
    static let r000 = "000_57eb1f18b3ad90de (VAE tuning study)"
    static let r001 = "001_9d525423f773af38 (AE vs VAE vs VQ-VAE vs GAN)"
    static let r002 = "002_d60c0fdd4d52f29a (VAE maths and latent dimension)"
    static let r003 = "003_7980850c73dc6e4f (FC-VAE and conditional VAE)"
    static let r004 = "004_058e5a772a8c0127 (VAE losses, GAN, beta-VAE, noisy data)"

    /// Report 000's FC VAE after its first two steps: latent 2, batch 100, BatchNorm, one
    /// layer deeper than report 002's two.
    static let base000: [Knob] = [.latentDim(2), .batchSize(100), .depth(3), .batchnorm]
    static let reported000 = "report: epoch average batch loss"

    public static let all: [Recipe] = [
        Recipe(name: "report000-optimizers", report: r000, title: "Five optimizers on the FC VAE (latent 2, BatchNorm, batch 100)",
               summary: "Report 000 step 3: adam, adagrad, RMSprop, adamW and adadelta on the same VAE. adagrad and adadelta are clearly worse, the other three close; adamW was kept.",
               epochs: 10,
               runs: [
                   RecipeRun("adam", .vaeFC, base000 + [.optimizer(.adam)], reported: "3496.5"),
                   RecipeRun("adagrad", .vaeFC, base000 + [.optimizer(.adagrad)], reported: "3915.6"),
                   RecipeRun("rmsprop", .vaeFC, base000 + [.optimizer(.rmsprop)], reported: "3499.5"),
                   RecipeRun("adamw", .vaeFC, base000 + [.optimizer(.adamw)], reported: "3471.8"),
                   RecipeRun("adadelta", .vaeFC, base000 + [.optimizer(.adadelta)], reported: "4120.3"),
               ],
               figures: [FigureRequest(.lossCurves), FigureRequest(.samples(count: 64), runs: ["adamw", "adadelta"])],
               terms: ["recon", "kl"], reportedColumn: reported000),
        Recipe(name: "report000-tuning", report: r000, title: "Seven tuning steps of the FC VAE, then a convolutional one",
               summary: "Report 000: BatchNorm, one layer deeper, adamW, batch 64, latent 10 and 20, dropout 0.2 (rejected), then conv encoder/decoder at latent 10 and 2; conv samples are sharper.",
               epochs: 10,
               runs: [
                   RecipeRun("base", .vaeFC, [.latentDim(2), .batchSize(100), .depth(2)]),
                   RecipeRun("batchnorm", .vaeFC, [.latentDim(2), .batchSize(100), .depth(2), .batchnorm], reported: "3786.1"),
                   RecipeRun("deeper", .vaeFC, base000, reported: "3496.5"),
                   RecipeRun("adamw", .vaeFC, base000 + [.optimizer(.adamw)], reported: "3471.8"),
                   RecipeRun("batch64", .vaeFC, base000 + [.optimizer(.adamw), .batchSize(64)], reported: "2237.6"),
                   RecipeRun("latent10", .vaeFC, base000 + [.optimizer(.adamw), .batchSize(64), .latentDim(10)], reported: "1800.1"),
                   RecipeRun("latent20", .vaeFC, base000 + [.optimizer(.adamw), .batchSize(64), .latentDim(20)], reported: "1800.2"),
                   RecipeRun("dropout", .vaeFC, base000 + [.optimizer(.adamw), .batchSize(64), .latentDim(20), .dropout(0.2)], reported: "2171.5"),
                   RecipeRun("conv-latent10", .vaeConv, [.optimizer(.adamw), .batchSize(64), .latentDim(10)], reported: "1789.1"),
                   RecipeRun("conv-latent2", .vaeConv, [.optimizer(.adamw), .batchSize(64), .latentDim(2)], reported: "2434.5"),
               ],
               figures: [FigureRequest(.lossCurves),
                         FigureRequest(.samples(count: 64), runs: ["latent10", "conv-latent10", "conv-latent2"])],
               terms: ["recon", "kl"], reportedColumn: reported000),
        Recipe(name: "report000-latent1", report: r000, title: "Latent 1: 400 codes in [-20, 20] in one strip",
               summary: "Report 000 section 2.3: the tuned FC VAE with a 1-D code; decoding 400 evenly spaced z in [-20, 20] shows digits morphing (1 into 8 ...).",
               epochs: 10,
               runs: [RecipeRun("latent1", .vaeFC, base000 + [.optimizer(.adamw), .batchSize(64), .latentDim(1)])],
               figures: [FigureRequest(.sweep(from: -20, to: 20, steps: 400, columns: 20)),
                         FigureRequest(.sweep(from: -3, to: 3, steps: 100, columns: 20)), FigureRequest(.scatter)],
               terms: ["recon", "kl"], reportedColumn: reported000),
        Recipe(name: "report000-latent2", report: r000, title: "Latent 2: a 20 x 20 grid over [-5, 5]^2",
               summary: "Report 000 section 2.4: the tuned FC VAE with a 2-D code decoded on a 20 x 20 grid over [-5, 5]^2 (the 2-D manifold: 1 turns into 0 through 9 and 6).",
               epochs: 10,
               runs: [RecipeRun("latent2", .vaeFC, base000 + [.optimizer(.adamw), .batchSize(64), .latentDim(2)])],
               figures: [FigureRequest(.manifold(range: 5, steps: 20)), FigureRequest(.manifold(range: 2, steps: 20)), FigureRequest(.scatter)],
               terms: ["recon", "kl"], reportedColumn: reported000),
        Recipe(name: "report001-ae-vs-vae-centroids", report: r001, title: "AE vs VAE: class centroids with growing noise, codes by class",
               summary: "Report 001: both decode per-class centroids of their codes to clean digits; noise added to an AE centroid blurs it, while the VAE's continuous latent space keeps producing digits (the shape changes). Random codes give garbage from the AE.",
               epochs: 5,
               runs: [RecipeRun("ae", .ae), RecipeRun("vae", .vaeFC, [.latentDim(10), .depth(2)])],
               figures: [FigureRequest(.centroids(noise: [1, 2, 3, 4])), FigureRequest(.scatter),
                         FigureRequest(.samples(count: 64)), FigureRequest(.reconstructions(count: 16))],
               terms: [], reportedColumn: "report"),
        Recipe(name: "report001-vqvae", report: r001, title: "VQ-VAE: codebook samples beside VAE samples",
               summary: "Report 001: the encoder output snapped to the nearest codebook vector (codebook and commitment losses, straight-through gradient); random codebook samples look more regular than the VAE's.",
               epochs: 5,
               runs: [RecipeRun("vqvae", .vqvae), RecipeRun("vae", .vaeFC, [.latentDim(10), .depth(2)])],
               figures: [FigureRequest(.samples(count: 64)), FigureRequest(.reconstructions(count: 16), runs: ["vqvae"]),
                         FigureRequest(.lossCurves)],
               terms: [], reportedColumn: "report"),
        Recipe(name: "report001-designed-latent", report: r001, title: "Designed latent space: [k, ..., k] + noise decodes to digit k",
               summary: "Report 001 new try 1: no encoder; the decoder learns to draw class k from [k, ..., k] + noise. Sampling near the class vector gives that digit; more noise morphs it into neighbouring digits.",
               epochs: 5,
               runs: [RecipeRun("designed", .designedLatent)],
               figures: [FigureRequest(.classRows(perClass: 10)), FigureRequest(.centroids(noise: [0.5, 1, 2, 3]))],
               terms: [], reportedColumn: "report"),
        Recipe(name: "report001-pca", report: r001, title: "PCA to 3 dimensions as the encoder, a trained decoder",
               summary: "Report 001 new try 2: PCA of the training images to 3 dims feeds a trained decoder; random samples in the PCA space (scaled by each component's spread) give digit-like images.",
               epochs: 5,
               runs: [RecipeRun("pca", .pcaDecoder)],
               figures: [FigureRequest(.samples(count: 64)), FigureRequest(.reconstructions(count: 16)), FigureRequest(.scatter)],
               terms: [], reportedColumn: "report"),
        Recipe(name: "report002-latent1", report: r002, title: "Latent 1: z over (-1.5, 1.5) in steps of 0.03",
               summary: "Report 002 section 4.1: the two-layer FC VAE (BCE + KL, Adam) with a 1-D code; 100 codes over (-1.5, 1.5) go from flat to round digits, continuously.",
               epochs: 10,
               runs: [RecipeRun("latent1", .vaeFC, [.depth(2), .latentDim(1)])],
               figures: [FigureRequest(.sweep(from: -1.5, to: 1.5, steps: 100, columns: 20)), FigureRequest(.scatter)],
               terms: ["recon", "kl"], reportedColumn: "report"),
        Recipe(name: "report002-latent2", report: r002, title: "Latent 2: a grid over (-5, 5) in steps of 0.2",
               summary: "Report 002 section 4.2: the same VAE with a 2-D code on a grid over (-5, 5) with step 0.2; most digits sit near the origin, one axis follows slant and contrast.",
               epochs: 10,
               runs: [RecipeRun("latent2", .vaeFC, [.depth(2), .latentDim(2)])],
               figures: [FigureRequest(.manifold(range: 5, steps: 51)), FigureRequest(.scatter)],
               terms: ["recon", "kl"], reportedColumn: "report"),
        Recipe(name: "report002-recon-only", report: r002, title: "Reconstruction only (no KL), latent 1",
               summary: "Report 002 section 4.3: without the KL term the 1-D codes spread to about (-16, 5) and the decoded strip is lower in contrast and blurrier than with KL.",
               epochs: 10,
               runs: [RecipeRun("recon-only", .vaeFC, [.depth(2), .latentDim(1), .noKL], reported: "codes in about (-16, 5)"),
                      RecipeRun("with-kl", .vaeFC, [.depth(2), .latentDim(1)])],
               figures: [FigureRequest(.codeRangeSweep(steps: 100, columns: 20)), FigureRequest(.scatter)],
               terms: ["recon", "kl"], reportedColumn: "report"),
        Recipe(name: "report003-cvae", report: r003, title: "FC VAE and conditional VAE, 10 epochs",
               summary: "Report 003: the FC VAE (3 hidden layers of 400, z 15) goes 157.5 -> 108.9 per image in 10 epochs; samples from N(0, I) and interpolations morph digits. The CVAE (one-hot label on encoder input and z) goes 134.8 -> 105.7 and draws each digit 0...9 on request.",
               epochs: 10,
               runs: [RecipeRun("vae", .vaeFC, reported: "108.9"), RecipeRun("cvae", .cvae, reported: "105.7")],
               figures: [FigureRequest(.classRows(perClass: 10), runs: ["cvae"]), FigureRequest(.samples(count: 64), runs: ["vae"]),
                         FigureRequest(.interpolation(pairs: 8, steps: 10), runs: ["vae"]), FigureRequest(.lossCurves)],
               terms: ["recon", "kl"], reportedColumn: "report: final train loss"),
        Recipe(name: "report003-ablations", report: r003, title: "VAE and CVAE with 2 or 4 hidden layers, latent 30 or 10",
               summary: "Report 003: 10 epochs each. VAE: 2 layers 104.1, 4 layers 124.1 (but the clearest samples), latent 30 115.6 (worse samples), latent 10 107.1. CVAE: 104.7, 112.1, 108.7, 111.4; the CVAE is less sensitive to the latent size.",
               epochs: 10,
               runs: [
                   RecipeRun("vae", .vaeFC, reported: "108.9"), RecipeRun("vae-depth2", .vaeFC, [.depth(2)], reported: "104.1"),
                   RecipeRun("vae-depth4", .vaeFC, [.depth(4)], reported: "124.1"), RecipeRun("vae-latent30", .vaeFC, [.latentDim(30)], reported: "115.6"),
                   RecipeRun("vae-latent10", .vaeFC, [.latentDim(10)], reported: "107.1"),
                   RecipeRun("cvae", .cvae, reported: "105.7"), RecipeRun("cvae-depth2", .cvae, [.depth(2)], reported: "104.7"),
                   RecipeRun("cvae-depth4", .cvae, [.depth(4)], reported: "112.1"), RecipeRun("cvae-latent30", .cvae, [.latentDim(30)], reported: "108.7"),
                   RecipeRun("cvae-latent10", .cvae, [.latentDim(10)], reported: "111.4"),
               ],
               figures: [FigureRequest(.lossCurves), FigureRequest(.samples(count: 32))],
               terms: ["recon", "kl"], reportedColumn: "report: final train loss"),
        Recipe(name: "report004-losses", report: r004, title: "Conv VAE with BCE, MSE, L1 and without KL",
               summary: "Report 004: BCE + KL, MSE (L2) + KL and L1 + KL; L1 gives the sharpest samples, L2 dimmer ones; without the KL term samples are faint outlines. Losses are in each run's own units, so compare the pictures, not the numbers.",
               epochs: 10,
               runs: [RecipeRun("bce", .vaeConv), RecipeRun("mse", .vaeConv, [.loss("mse")]),
                      RecipeRun("l1", .vaeConv, [.loss("l1")]), RecipeRun("no-kl", .vaeConv, [.noKL])],
               figures: [FigureRequest(.samples(count: 64)), FigureRequest(.reconstructions(count: 16))],
               terms: ["recon", "kl"], reportedColumn: "report"),
        Recipe(name: "report004-beta", report: r004, title: "beta-VAE with beta 1, 2, 3, 4 (z = 10)",
               summary: "Report 004: the beta-VAE's lower bound, KL and reconstruction per epoch; its beta = 2 run went 198.5 -> 123.6 in 15 epochs (with one BatchNorm shared by encoder and decoder, which the run beta2-shared-bn reproduces). Larger beta: smaller KL, blurrier reconstructions.",
               epochs: 15,
               runs: [RecipeRun("beta1", .betaVAE, [.beta(1)]), RecipeRun("beta2", .betaVAE, [.beta(2)]),
                      RecipeRun("beta3", .betaVAE, [.beta(3)]), RecipeRun("beta4", .betaVAE, [.beta(4)]),
                      RecipeRun("beta2-shared-bn", .betaVAE, [.beta(2), .sharedBatchnorm], reported: "123.6 (KL 12.8, recon 99.9)")],
               figures: [FigureRequest(.lossCurves), FigureRequest(.samples(count: 64)), FigureRequest(.reconstructions(count: 16), runs: ["beta1", "beta4"])],
               terms: ["recon", "kl", "test_recon", "test_kl"], reportedColumn: "report: train lower bound at epoch 15"),
        Recipe(name: "report004-noise", report: r004, title: "Conv VAE trained on salt-and-pepper noise: 1, 10, 20, 80 % of pixels",
               summary: "Report 004: generation stays clean up to about 10 % noise, gets fainter at 20 % and fails at 80 %; the VAE also cleans noisy inputs.",
               epochs: 10,
               runs: [RecipeRun("noise1", .vaeConv, [.noise(0.01)]), RecipeRun("noise10", .vaeConv, [.noise(0.1)]),
                      RecipeRun("noise20", .vaeConv, [.noise(0.2)]), RecipeRun("noise80", .vaeConv, [.noise(0.8)])],
               figures: [FigureRequest(.samples(count: 64)), FigureRequest(.denoise(noise: nil, count: 16))],
               terms: ["recon", "kl"], reportedColumn: "report"),
        Recipe(name: "report004-gan", report: r004, title: "MLP GAN, clean update and the report's shared zero_grad",
               summary: "Report 004: the MLP GAN (BCE, Adam 1e-3, betas (0.5, 0.999), images in [-1, 1]). Its code zeroed both optimizers once per batch; reproducing that gives losses near the report's (G about 0.32, D about 0.75), the clean update about 1.1 and 0.57. Samples are barely recognisable after a few epochs (report 001 too).",
               epochs: 10,
               runs: [RecipeRun("gan", .ganMLP, reported: "G about 1.1, D about 0.57 (PyTorch re-run)"),
                      RecipeRun("gan-shared-zero-grad", .ganMLP, [.ganSharedZeroGrad], reported: "G about 0.32, D about 0.75")],
               figures: [FigureRequest(.samples(count: 64)), FigureRequest(.lossCurves)],
               terms: ["g_loss", "d_loss"], reportedColumn: "report: final losses"),
    ]

    public static func named(_ name: String) -> Recipe? {
        all.first { $0.name == name }
    }
}
