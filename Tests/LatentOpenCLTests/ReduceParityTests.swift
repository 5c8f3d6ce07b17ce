import XCTest
import LatentCore
@testable import LatentOpenCL

/// Reductions, losses, KL and the codebook ops on OpenCL against the CPU backend. Scalars
/// stay on the device: every result is read from its one-element buffer.
final class ReduceParityTests: XCTestCase {
    func testSumAndCountNonFinite() throws {
        let pair = Pair(try OpenCLTestDevice.backend())
        var random = TestRandom(seed: 1)
        for n in [0, 1, 7, 255, 4097, 100_003] {
            var values = random.array(n, -1, 3)
            if n > 10 { values[3] = .nan; values[7] = .infinity; values[9] = -.infinity }
            let x = try pair.buffers(values, offset: 2)
            let out = try pair.buffers([0], offset: 1)
            if n <= 10 {
                try pair.cpu.sum(x.cpu, output: out.cpu)
                try pair.cl.sum(x.cl, output: out.cl)
                try pair.assertSame(out, tolerance: 1e-6, "sum \(n)")
            }
            try pair.cpu.countNonFinite(x.cpu, output: out.cpu)
            try pair.cl.countNonFinite(x.cl, output: out.cl)
            try pair.assertIdentical(out, "countNonFinite \(n)")
            let finite = try pair.buffers(values.map { $0.isFinite ? $0 : 0.5 })
            try pair.cpu.sum(finite.cpu, output: out.cpu)
            try pair.cl.sum(finite.cl, output: out.cl)
            try pair.assertSame(out, tolerance: 1e-6, "sum \(n)")
        }
    }

    /// Both kernels: a work-item per channel (block, CPU-class devices) and a work-group per
    /// channel (tiled, GPUs); rows shorter than, equal to and past 16 floats.
    func testChannelSum() throws {
        for variant in [OpenCLKernelConfig.GemmVariant.block, .tiled] {
            try checkChannelSum(Pair(try OpenCLTestDevice.backend(variant)))
        }
    }

    func checkChannelSum(_ pair: Pair) throws {
        var random = TestRandom(seed: 2)
        for (batch, channels, spatial) in [(1, 1, 1), (64, 33, 1), (3, 5, 49), (17, 2, 196), (2, 3, 15), (4, 7, 32)] {
            let x = try pair.buffers(random.array(batch * channels * spatial), offset: 1)
            for accumulate in [false, true] {
                let out = try pair.buffers(random.array(channels), offset: 2)
                try pair.cpu.channelSum(input: x.cpu, output: out.cpu, batch: batch, channels: channels, spatial: spatial, accumulate: accumulate)
                try pair.cl.channelSum(input: x.cl, output: out.cl, batch: batch, channels: channels, spatial: spatial, accumulate: accumulate)
                try pair.assertSame(out, tolerance: 1e-6, "channelSum \(pair.cl.config) \(batch)x\(channels)x\(spatial) \(accumulate)")
            }
        }
    }

    func testLosses() throws {
        for backend in try OpenCLTestDevice.elementBackends() {
            let pair = Pair(backend)
            var random = TestRandom(seed: 3)
            for n in [1, 13, 784 * 3, 50_001] {
                let probabilities = random.array(n, 0.001, 0.999)
                var targets = random.array(n, 0, 1)
                if n > 2 { targets[0] = 0; targets[1] = 1 }
                for kind in LossKind.allCases {
                    let prediction = try pair.buffers(kind == .bce ? probabilities : random.array(n, -4, 4), offset: 1)
                    let target = try pair.buffers(targets, offset: 3)
                    for reduction in [Reduction.sum, .mean] {
                        let out = try pair.buffers([0])
                        try pair.cpu.lossForward(kind, prediction: prediction.cpu, target: target.cpu, output: out.cpu, reduction: reduction)
                        try pair.cl.lossForward(kind, prediction: prediction.cl, target: target.cl, output: out.cl, reduction: reduction)
                        try pair.assertSame(out, tolerance: 2e-6, "\(kind) \(reduction) forward \(n)")
                        for accumulate in [false, true] {
                            let grad = try pair.buffers(random.array(n), offset: 2)
                            try pair.cpu.lossBackward(kind, prediction: prediction.cpu, target: target.cpu, gradPrediction: grad.cpu,
                                                      reduction: reduction, scale: 0.7, accumulate: accumulate)
                            try pair.cl.lossBackward(kind, prediction: prediction.cl, target: target.cl, gradPrediction: grad.cl,
                                                     reduction: reduction, scale: 0.7, accumulate: accumulate)
                            try pair.assertSame(grad, tolerance: 3e-6, "\(kind) \(reduction) backward \(n) \(accumulate)")
                        }
                    }
                }
            }
        }
    }

    /// PyTorch's clamp of BCE's logs at -100 (predictions of exactly 0 and 1).
    func testBCEClamp() throws {
        let pair = Pair(try OpenCLTestDevice.backend())
        let prediction = try pair.buffers([0, 1, 0, 1, 0.5])
        let target = try pair.buffers([1, 0, 0, 1, 1])
        let out = try pair.buffers([0])
        try pair.cpu.lossForward(.bce, prediction: prediction.cpu, target: target.cpu, output: out.cpu, reduction: .sum)
        try pair.cl.lossForward(.bce, prediction: prediction.cl, target: target.cl, output: out.cl, reduction: .sum)
        try pair.assertSame(out, tolerance: 1e-6, "bce clamp")
    }

    func testKLDivergence() throws {
        for backend in try OpenCLTestDevice.elementBackends() {
            let pair = Pair(backend)
            var random = TestRandom(seed: 4)
            for parameterization in [GaussianParameterization.logVariance, .logStd, .std] {
                for n in [1, 20, 64 * 32, 10_007] {
                    let mean = try pair.buffers(random.array(n, -2, 2), offset: 1)
                    let parameter = try pair.buffers(parameterization == .std ? random.array(n, 0.2, 2) : random.array(n, -2, 2))
                    let out = try pair.buffers([0], offset: 2)
                    try pair.cpu.klDivergence(mean: mean.cpu, parameter: parameter.cpu, parameterization: parameterization, output: out.cpu)
                    try pair.cl.klDivergence(mean: mean.cl, parameter: parameter.cl, parameterization: parameterization, output: out.cl)
                    try pair.assertSame(out, tolerance: 2e-6, "kl \(parameterization) \(n)")
                    for accumulate in [false, true] {
                        let gradMean = try pair.buffers(random.array(n))
                        let gradParameter = try pair.buffers(random.array(n), offset: 1)
                        try pair.cpu.klDivergenceBackward(mean: mean.cpu, parameter: parameter.cpu, parameterization: parameterization,
                                                          scale: 0.3, gradMean: gradMean.cpu, gradParameter: gradParameter.cpu, accumulate: accumulate)
                        try pair.cl.klDivergenceBackward(mean: mean.cl, parameter: parameter.cl, parameterization: parameterization,
                                                         scale: 0.3, gradMean: gradMean.cl, gradParameter: gradParameter.cl, accumulate: accumulate)
                        try pair.assertIdentical(gradMean, "kl gradMean \(parameterization) \(accumulate)")
                        try pair.assertIdentical(gradParameter, "kl gradParameter \(parameterization) \(accumulate)")
                    }
                }
            }
        }
    }

    func testCodebookOps() throws {
        let pair = Pair(try OpenCLTestDevice.backend())
        var random = TestRandom(seed: 5)
        let rows = 37, entries = 19, width = 7
        let input = try pair.buffers(random.array(rows * width), offset: 1)
        var table = random.array(entries * width)
        table.replaceSubrange(5 * width ..< 6 * width, with: table[2 * width ..< 3 * width]) // a tie: lowest index wins
        let codebook = try pair.buffers(table, offset: 2)
        let indices = try pair.buffers([Float](repeating: 0, count: rows))
        try pair.cpu.nearestCodebookEntry(input: input.cpu, codebook: codebook.cpu, indices: indices.cpu, rows: rows, entries: entries, width: width)
        try pair.cl.nearestCodebookEntry(input: input.cl, codebook: codebook.cl, indices: indices.cl, rows: rows, entries: entries, width: width)
        try pair.assertIdentical(indices, "nearest entries")
        let gathered = try pair.buffers([Float](repeating: 0, count: rows * width), offset: 3)
        try pair.cpu.gatherRows(table: codebook.cpu, indices: indices.cpu, output: gathered.cpu, rows: rows, width: width)
        try pair.cl.gatherRows(table: codebook.cl, indices: indices.cl, output: gathered.cl, rows: rows, width: width)
        try pair.assertIdentical(gathered, "gather")
        // Repeated indices add up in row order.
        let repeated = try pair.buffers((0..<rows).map { Float($0 % 4) })
        let gradTable = try pair.buffers(random.array(entries * width), offset: 1)
        let gradOutput = try pair.buffers(random.array(rows * width))
        try pair.cpu.scatterAddRows(gradOutput: gradOutput.cpu, indices: repeated.cpu, gradTable: gradTable.cpu, rows: rows, width: width)
        try pair.cl.scatterAddRows(gradOutput: gradOutput.cl, indices: repeated.cl, gradTable: gradTable.cl, rows: rows, width: width)
        try pair.assertIdentical(gradTable, "scatter-add")
    }
}
