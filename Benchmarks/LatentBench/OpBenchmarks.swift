import LatentCore
import LatentCPU

/// One measured op: its median time and throughput. Compute-bound ops (GEMM, convolution)
/// carry GFLOP/s and their share of the measured FP32 peak; memory-bound ops (batch norm,
/// the fused elementwise ops, optimizer updates) carry GB/s of the bytes they must move
/// and their share of the measured memory bandwidth (see `Peak`).
public struct OpResult: Codable, Sendable {
    public var group: String
    public var op: String
    public var shape: String
    public var milliseconds: Double
    public var gflops: Double?
    public var gbps: Double?
    /// Share of the measured peak that applies (FP32 for gflops rows, copy bandwidth for gbps rows).
    public var peakShare: Double

    enum CodingKeys: String, CodingKey {
        case group, op, shape, milliseconds, gflops, gbps
        case peakShare = "peak_share"
    }
}

/// `latent bench ops`: SGEMM cubes; the three passes of every convolution of the report
/// models at batch 64 (conv VAE, beta-VAE; DCGAN's four convolutions have exactly the conv
/// VAE's geometries); the Linear layers of the fully connected models as GEMMs; batch norm;
/// the fused elementwise ops and the optimizer updates.
public struct OpBenchmarks {
    public let backend: any Backend
    public let peakGFLOPS: Double
    public let peakGBPS: Double

    public init(backend: any Backend, peakGFLOPS: Double, peakGBPS: Double) {
        self.backend = backend
        self.peakGFLOPS = peakGFLOPS
        self.peakGBPS = peakGBPS
    }

    public static let gemmSizes = [256, 512, 1024, 2048]
    public static let groups = ["sgemm", "conv", "linear", "batchnorm", "elementwise"]

    func tensor(_ count: Int, seed: UInt64, scale: Float = 1) throws -> Tensor {
        let t = try Tensor(zeros: [count], on: backend)
        try backend.fillUniform(t.view, low: -scale, high: scale, seed: seed, counter: 0)
        return t
    }

    public func gemm(size: Int) throws -> OpResult {
        let a = try tensor(size * size, seed: 1), b = try tensor(size * size, seed: 2)
        let c = try Tensor(zeros: [size, size], on: backend)
        let seconds = try Timing.median {
            try backend.gemm(transA: .none, transB: .none, m: size, n: size, k: size, alpha: 1,
                             a: a.view, lda: size, b: b.view, ldb: size, beta: 0, c: c.view, ldc: size)
            try backend.synchronize()
        }
        return compute("sgemm", "sgemm", shape: "\(size)^3", seconds: seconds, flops: 2 * Double(size * size * size))
    }

    public typealias ConvLayer = (name: String, geometry: ConvGeometry, transposed: Bool)

    /// The conv VAE's convolutions (REPORTS.md, report 004) as forward-convolution geometries;
    /// the decoder's transposed convs are named as such and timed in their own direction.
    /// DCGAN's D convs are enc.conv1 and enc.conv2, its G's transposed convs dec.tconv1 and dec.tconv2.
    public static func convVAELayers(batch: Int) throws -> [ConvLayer] {
        [
            ("enc.conv1 1->64 k4 s2", try ConvGeometry(batch: batch, inChannels: 1, height: 28, width: 28, outChannels: 64, kernel: 4, stride: 2, padding: 1), false),
            ("enc.conv2 64->128 k4 s2", try ConvGeometry(batch: batch, inChannels: 64, height: 14, width: 14, outChannels: 128, kernel: 4, stride: 2, padding: 1), false),
            ("enc.conv3 128->128 k3 s1", try ConvGeometry(batch: batch, inChannels: 128, height: 7, width: 7, outChannels: 128, kernel: 3, stride: 1, padding: 1), false),
            ("dec.tconv1 128->64 k4 s2", try ConvGeometry.transposed(batch: batch, inChannels: 128, height: 7, width: 7, outChannels: 64, kernel: 4, stride: 2, padding: 1), true),
            ("dec.tconv2 64->1 k4 s2", try ConvGeometry.transposed(batch: batch, inChannels: 64, height: 14, width: 14, outChannels: 1, kernel: 4, stride: 2, padding: 1), true),
        ]
    }

    /// Report 004's beta-VAE convolutions.
    public static func betaVAELayers(batch: Int) throws -> [ConvLayer] {
        [
            ("beta.conv1 1->8 k3 s2", try ConvGeometry(batch: batch, inChannels: 1, height: 28, width: 28, outChannels: 8, kernel: 3, stride: 2, padding: 1), false),
            ("beta.conv2 8->16 k3 s2", try ConvGeometry(batch: batch, inChannels: 8, height: 14, width: 14, outChannels: 16, kernel: 3, stride: 2, padding: 1), false),
            ("beta.conv3 16->32 k3 s2 p0", try ConvGeometry(batch: batch, inChannels: 16, height: 7, width: 7, outChannels: 32, kernel: 3, stride: 2, padding: 0), false),
            ("beta.tconv1 32->16 k3 s2 p0", try ConvGeometry.transposed(batch: batch, inChannels: 32, height: 3, width: 3, outChannels: 16, kernel: 3, stride: 2, padding: 0), true),
            ("beta.tconv2 16->8 k3 s2 op1", try ConvGeometry.transposed(batch: batch, inChannels: 16, height: 7, width: 7, outChannels: 8, kernel: 3, stride: 2, padding: 1, outputPadding: 1), true),
            ("beta.tconv3 8->1 k3 s2 op1", try ConvGeometry.transposed(batch: batch, inChannels: 8, height: 14, width: 14, outChannels: 1, kernel: 3, stride: 2, padding: 1, outputPadding: 1), true),
        ]
    }

    /// Forward, backward-data and backward-weights of one layer. For a transposed conv its
    /// forward is the geometry's backward-data and the other way round.
    public func conv(name: String, geometry g: ConvGeometry, transposed: Bool) throws -> [OpResult] {
        let input = try tensor(g.inputCount, seed: 3)
        let output = try tensor(g.outputCount, seed: 4)
        let weight = try tensor(g.weightCount, seed: 5, scale: 0.1)
        let gradWeight = try Tensor(zeros: [g.weightCount], on: backend)
        let forwardBias = try tensor(g.outChannels, seed: 6)
        let transposedBias = try tensor(g.inChannels, seed: 7)
        let flops = 2 * Double(g.multiplyAdds)
        let shape = "\(g)"
        // Each layer's own bias goes with its forward pass, as the layers call the ops.
        let convForward = try Timing.median {
            try backend.conv2dForward(g, input: input.view, weight: weight.view, bias: transposed ? nil : forwardBias.view,
                                      output: output.view)
            try backend.synchronize()
        }
        let convBackwardData = try Timing.median {
            try backend.conv2dBackwardData(g, gradOutput: output.view, weight: weight.view,
                                           bias: transposed ? transposedBias.view : nil, gradInput: input.view, accumulate: false)
            try backend.synchronize()
        }
        let convBackwardWeights = try Timing.median {
            try backend.conv2dBackwardWeights(g, input: input.view, gradOutput: output.view, gradWeight: gradWeight.view, accumulate: true)
            try backend.synchronize()
        }
        let (forward, backwardData) = transposed ? (convBackwardData, convForward) : (convForward, convBackwardData)
        return [
            compute("conv", "\(name) forward", shape: shape, seconds: forward, flops: flops),
            compute("conv", "\(name) backward-data", shape: shape, seconds: backwardData, flops: flops),
            compute("conv", "\(name) backward-weights", shape: shape, seconds: convBackwardWeights, flops: flops),
        ]
    }

    /// Linear layers of the fully connected models (batch, in, out).
    public static let linearLayers: [(name: String, batch: Int, inFeatures: Int, outFeatures: Int)] = [
        ("vae-fc Linear(784,400)", 128, 784, 400),
        ("vae-fc Linear(400,400)", 128, 400, 400),
        ("vae-fc Linear(400,784)", 128, 400, 784),
        ("gan-mlp Linear(512,1024)", 64, 512, 1024),
        ("gan-mlp Linear(1024,784)", 64, 1024, 784),
        ("dcgan Linear(100,6272)", 64, 100, 6272),
    ]

    /// The three GEMMs of a Linear layer as LatentNN issues them: y = x W^T, dx = dy W, dW += dy^T x.
    public func linear(name: String, batch: Int, inFeatures: Int, outFeatures: Int) throws -> [OpResult] {
        let x = try tensor(batch * inFeatures, seed: 8), w = try tensor(outFeatures * inFeatures, seed: 9, scale: 0.05)
        let y = try tensor(batch * outFeatures, seed: 10), dx = try Tensor(zeros: [batch * inFeatures], on: backend)
        let dw = try Tensor(zeros: [outFeatures * inFeatures], on: backend)
        let flops = 2 * Double(batch * inFeatures * outFeatures)
        let shape = "batch \(batch), \(inFeatures) -> \(outFeatures)"
        let forward = try Timing.median {
            try backend.gemm(transA: .none, transB: .transposed, m: batch, n: outFeatures, k: inFeatures, alpha: 1,
                             a: x.view, lda: inFeatures, b: w.view, ldb: inFeatures, beta: 0, c: y.view, ldc: outFeatures)
            try backend.synchronize()
        }
        let backwardData = try Timing.median {
            try backend.gemm(transA: .none, transB: .none, m: batch, n: inFeatures, k: outFeatures, alpha: 1,
                             a: y.view, lda: outFeatures, b: w.view, ldb: inFeatures, beta: 0, c: dx.view, ldc: inFeatures)
            try backend.synchronize()
        }
        let backwardWeights = try Timing.median {
            try backend.gemm(transA: .transposed, transB: .none, m: outFeatures, n: inFeatures, k: batch, alpha: 1,
                             a: y.view, lda: outFeatures, b: x.view, ldb: inFeatures, beta: 1, c: dw.view, ldc: inFeatures)
            try backend.synchronize()
        }
        return [
            compute("linear", "\(name) forward", shape: shape, seconds: forward, flops: flops),
            compute("linear", "\(name) backward-data", shape: shape, seconds: backwardData, flops: flops),
            compute("linear", "\(name) backward-weights", shape: shape, seconds: backwardWeights, flops: flops),
        ]
    }

    /// Batch norm layers of the report models: (name, batch, channels, spatial).
    public static let batchNormLayers: [(name: String, batch: Int, channels: Int, spatial: Int)] = [
        ("vae-conv BatchNorm2d(64)", 64, 64, 196),
        ("vae-conv BatchNorm2d(128)", 64, 128, 49),
        ("gan-mlp BatchNorm1d(1024)", 64, 1024, 1),
        ("dcgan BatchNorm1d(6272)", 64, 6272, 1),
    ]

    /// Training forward (statistics, running averages, normalisation) and backward. Bytes:
    /// forward reads the input twice (statistics, then normalise) and writes the output;
    /// backward reads input and gradient twice (sums, then the gradient) and writes one.
    public func batchNorm(name: String, batch: Int, channels: Int, spatial: Int) throws -> [OpResult] {
        let count = batch * channels * spatial
        let x = try tensor(count, seed: 11), y = try Tensor(zeros: [count], on: backend), dy = try tensor(count, seed: 12)
        let dx = try Tensor(zeros: [count], on: backend)
        let perChannel = try (0..<8).map { _ in try Tensor(zeros: [channels], on: backend) }
        try backend.fill(perChannel[0].view, value: 1)
        try backend.fill(perChannel[3].view, value: 1)
        let shape = "\(batch)x\(channels)x\(spatial)"
        let forward = try Timing.median {
            try backend.batchNormForwardTraining(input: x.view, output: y.view, gamma: perChannel[0].view, beta: perChannel[1].view,
                                                 runningMean: perChannel[2].view, runningVariance: perChannel[3].view,
                                                 savedMean: perChannel[4].view, savedInverseStd: perChannel[5].view,
                                                 batch: batch, channels: channels, spatial: spatial, momentum: 0.1, epsilon: 1e-5)
            try backend.synchronize()
        }
        let backward = try Timing.median {
            try backend.batchNormBackward(gradOutput: dy.view, input: x.view, gamma: perChannel[0].view,
                                          savedMean: perChannel[4].view, savedInverseStd: perChannel[5].view,
                                          gradInput: dx.view, gradGamma: perChannel[6].view, gradBeta: perChannel[7].view,
                                          batch: batch, channels: channels, spatial: spatial, accumulate: true)
            try backend.synchronize()
        }
        let bytes = Double(count * 4)
        return [
            memory("batchnorm", "\(name) forward (train)", shape: shape, seconds: forward, bytes: 3 * bytes),
            memory("batchnorm", "\(name) backward", shape: shape, seconds: backward, bytes: 5 * bytes),
        ]
    }

    /// The fused elementwise ops at the sizes the conv VAE and the FC VAE use them, and Adam
    /// (and RMSprop, Adagrad, Adadelta) over a million parameters.
    public func elementwise() throws -> [OpResult] {
        var results: [OpResult] = []
        let big = 64 * 64 * 196 // vae-conv's first feature map
        let x = try tensor(big, seed: 13), y = try Tensor(zeros: [big], on: backend), dy = try tensor(big, seed: 14)
        let dx = try Tensor(zeros: [big], on: backend), bias = try tensor(64, seed: 15)
        let bytes = Double(big * 4)
        let mapShape = "64x64x196"
        for (label, activation) in [("bias + LeakyReLU(0.2)", Activation.leakyReLU(slope: 0.2)), ("bias + sigmoid", .sigmoid)] {
            let seconds = try Timing.median {
                try backend.biasActivationForward(input: x.view, bias: bias.view, activation: activation, output: y.view,
                                                  channels: 64, spatial: 196)
                try backend.synchronize()
            }
            results.append(memory("elementwise", "\(label) forward", shape: mapShape, seconds: seconds, bytes: 2 * bytes))
        }
        let leakyBackward = try Timing.median {
            try backend.activationBackward(.leakyReLU(slope: 0.2), input: x.view, output: y.view, gradOutput: dy.view,
                                           gradInput: dx.view, accumulate: false)
            try backend.synchronize()
        }
        results.append(memory("elementwise", "LeakyReLU(0.2) backward", shape: mapShape, seconds: leakyBackward, bytes: 3 * bytes))
        let axpby = try Timing.median {
            try backend.axpby(alpha: 1, x: x.view, beta: 1, y: dx.view)
            try backend.synchronize()
        }
        results.append(memory("elementwise", "axpby (gradient sum)", shape: mapShape, seconds: axpby, bytes: 3 * bytes))

        // Reconstruction loss of a batch of 128 images.
        let pixels = 128 * 784
        let p = try Tensor(zeros: [pixels], on: backend), t = try Tensor(zeros: [pixels], on: backend)
        let gp = try Tensor(zeros: [pixels], on: backend), loss = try Tensor(zeros: [1], on: backend)
        try backend.fillUniform(p.view, low: 0.01, high: 0.99, seed: 16, counter: 0)
        try backend.fillUniform(t.view, low: 0, high: 1, seed: 17, counter: 0)
        let bceForward = try Timing.median {
            try backend.lossForward(.bce, prediction: p.view, target: t.view, output: loss.view, reduction: .sum)
            try backend.synchronize()
        }
        results.append(memory("elementwise", "BCE(sum) forward", shape: "128x784", seconds: bceForward, bytes: Double(2 * pixels * 4)))
        let bceBackward = try Timing.median {
            try backend.lossBackward(.bce, prediction: p.view, target: t.view, gradPrediction: gp.view, reduction: .sum,
                                     scale: 1 / 128, accumulate: false)
            try backend.synchronize()
        }
        results.append(memory("elementwise", "BCE(sum) backward", shape: "128x784", seconds: bceBackward, bytes: Double(3 * pixels * 4)))

        // Adam over 1M parameters: reads parameter, gradient and both moments, writes three.
        let parameters = 1 << 20
        let parameter = try tensor(parameters, seed: 18), gradient = try tensor(parameters, seed: 19, scale: 0.01)
        let m = try Tensor(zeros: [parameters], on: backend), v = try Tensor(zeros: [parameters], on: backend)
        var step = 0
        let adam = try Timing.median {
            step += 1
            try backend.optimizerStep(.adam(lr: 1e-3, beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0, decoupled: false),
                                      parameter: parameter.view, gradient: gradient.view, state: [m.view, v.view], step: step)
            try backend.synchronize()
        }
        results.append(memory("elementwise", "Adam step", shape: "2^20 parameters", seconds: adam, bytes: Double(7 * parameters * 4)))
        // The other rules of report 000's optimizer comparison (torch.optim's defaults), the
        // same traffic count: parameter, gradient and each state read, parameter and state written.
        let others: [(String, OptimizerRule)] = [
            ("RMSprop step", .rmsprop(lr: 1e-2, alpha: 0.99, eps: 1e-8, weightDecay: 0, momentum: 0)),
            ("Adagrad step", .adagrad(lr: 1e-2, lrDecay: 0, eps: 1e-10, weightDecay: 0)),
            ("Adadelta step", .adadelta(lr: 1, rho: 0.9, eps: 1e-6, weightDecay: 0)),
        ]
        for (label, rule) in others {
            var ruleStep = 0
            let seconds = try Timing.median {
                ruleStep += 1
                try backend.optimizerStep(rule, parameter: parameter.view, gradient: gradient.view,
                                          state: Array([m.view, v.view].prefix(rule.stateCount)), step: ruleStep)
                try backend.synchronize()
            }
            let streams = 3 + 2 * rule.stateCount
            results.append(memory("elementwise", label, shape: "2^20 parameters", seconds: seconds, bytes: Double(streams * parameters * 4)))
        }
        return results
    }

    func compute(_ group: String, _ op: String, shape: String, seconds: Double, flops: Double) -> OpResult {
        let gflops = flops / seconds / 1e9
        return OpResult(group: group, op: op, shape: shape, milliseconds: seconds * 1e3, gflops: gflops, gbps: nil,
                        peakShare: gflops / peakGFLOPS)
    }

    func memory(_ group: String, _ op: String, shape: String, seconds: Double, bytes: Double) -> OpResult {
        let gbps = bytes / seconds / 1e9
        return OpResult(group: group, op: op, shape: shape, milliseconds: seconds * 1e3, gflops: nil, gbps: gbps,
                        peakShare: gbps / peakGBPS)
    }
}
