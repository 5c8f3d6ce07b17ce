import LatentCore
import LatentCPU

/// One measured op: its median time and throughput.
public struct OpResult: Codable, Sendable {
    public var op: String
    public var shape: String
    public var milliseconds: Double
    public var gflops: Double
    /// Share of the measured FP32 peak (see `Peak`).
    public var peakShare: Double

    enum CodingKeys: String, CodingKey {
        case op, shape, milliseconds, gflops
        case peakShare = "peak_share"
    }
}

/// `latent bench ops`: SGEMM cubes and the three passes of every convolution of the
/// report-004 conv VAE at batch 64.
public struct OpBenchmarks {
    public let backend: any Backend
    public let peakGFLOPS: Double

    public init(backend: any Backend, peakGFLOPS: Double) {
        self.backend = backend
        self.peakGFLOPS = peakGFLOPS
    }

    public static let gemmSizes = [256, 512, 1024, 2048]

    public func gemm(size: Int) throws -> OpResult {
        let a = try Tensor(zeros: [size, size], on: backend)
        let b = try Tensor(zeros: [size, size], on: backend)
        let c = try Tensor(zeros: [size, size], on: backend)
        try backend.fillUniform(a.view, low: -1, high: 1, seed: 1, counter: 0)
        try backend.fillUniform(b.view, low: -1, high: 1, seed: 2, counter: 0)
        let seconds = try Timing.median {
            try backend.gemm(transA: .none, transB: .none, m: size, n: size, k: size, alpha: 1,
                             a: a.view, lda: size, b: b.view, ldb: size, beta: 0, c: c.view, ldc: size)
            try backend.synchronize()
        }
        return result("sgemm", shape: "\(size)^3", seconds: seconds, flops: 2 * Double(size * size * size))
    }

    /// The conv VAE's convolutions (REPORTS.md, report 004) as forward-convolution geometries;
    /// the decoder's transposed convs are named as such and timed in their own direction.
    public static func convVAELayers(batch: Int) throws -> [(name: String, geometry: ConvGeometry, transposed: Bool)] {
        [
            ("enc.conv1 1->64 k4 s2", try ConvGeometry(batch: batch, inChannels: 1, height: 28, width: 28, outChannels: 64, kernel: 4, stride: 2, padding: 1), false),
            ("enc.conv2 64->128 k4 s2", try ConvGeometry(batch: batch, inChannels: 64, height: 14, width: 14, outChannels: 128, kernel: 4, stride: 2, padding: 1), false),
            ("enc.conv3 128->128 k3 s1", try ConvGeometry(batch: batch, inChannels: 128, height: 7, width: 7, outChannels: 128, kernel: 3, stride: 1, padding: 1), false),
            ("dec.tconv1 128->64 k4 s2", try ConvGeometry.transposed(batch: batch, inChannels: 128, height: 7, width: 7, outChannels: 64, kernel: 4, stride: 2, padding: 1), true),
            ("dec.tconv2 64->1 k4 s2", try ConvGeometry.transposed(batch: batch, inChannels: 64, height: 14, width: 14, outChannels: 1, kernel: 4, stride: 2, padding: 1), true),
        ]
    }

    /// Forward, backward-data and backward-weights of one layer. For a transposed conv its
    /// forward is the geometry's backward-data and the other way round.
    public func conv(name: String, geometry g: ConvGeometry, transposed: Bool) throws -> [OpResult] {
        let input = try Tensor(zeros: [g.inputCount], on: backend)
        let output = try Tensor(zeros: [g.outputCount], on: backend)
        let weight = try Tensor(zeros: [g.weightCount], on: backend)
        let gradWeight = try Tensor(zeros: [g.weightCount], on: backend)
        try backend.fillUniform(input.view, low: -1, high: 1, seed: 3, counter: 0)
        try backend.fillUniform(output.view, low: -1, high: 1, seed: 4, counter: 0)
        try backend.fillUniform(weight.view, low: -0.1, high: 0.1, seed: 5, counter: 0)
        let flops = 2 * Double(g.multiplyAdds)
        let shape = "\(g)"
        let convForward = try Timing.median {
            try backend.conv2dForward(g, input: input.view, weight: weight.view, bias: nil, output: output.view)
            try backend.synchronize()
        }
        let convBackwardData = try Timing.median {
            try backend.conv2dBackwardData(g, gradOutput: output.view, weight: weight.view, bias: nil, gradInput: input.view, accumulate: false)
            try backend.synchronize()
        }
        let convBackwardWeights = try Timing.median {
            try backend.conv2dBackwardWeights(g, input: input.view, gradOutput: output.view, gradWeight: gradWeight.view, accumulate: false)
            try backend.synchronize()
        }
        let (forward, backwardData) = transposed ? (convBackwardData, convForward) : (convForward, convBackwardData)
        return [
            result("\(name) forward", shape: shape, seconds: forward, flops: flops),
            result("\(name) backward-data", shape: shape, seconds: backwardData, flops: flops),
            result("\(name) backward-weights", shape: shape, seconds: convBackwardWeights, flops: flops),
        ]
    }

    func result(_ op: String, shape: String, seconds: Double, flops: Double) -> OpResult {
        let gflops = flops / seconds / 1e9
        return OpResult(op: op, shape: shape, milliseconds: seconds * 1e3, gflops: gflops, peakShare: gflops / peakGFLOPS)
    }
}
