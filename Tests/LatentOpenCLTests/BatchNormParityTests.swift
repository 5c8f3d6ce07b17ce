import XCTest
import LatentCore
@testable import LatentOpenCL

/// Batch normalisation on OpenCL against the CPU backend: training statistics, running
/// averages (several steps), inference, backward with accumulation; fully connected
/// (spatial 1) and convolutional shapes, batches that are not multiples of a work-group.
final class BatchNormParityTests: XCTestCase {
    /// The block variant's devices (CPU class) run a work-item per channel, the tiled
    /// variant's (GPUs) a work-group per channel: both kernels on PoCL.
    func testTrainingInferenceAndBackward() throws {
        try check(.block)
        try check(.tiled)
    }

    func check(_ variant: OpenCLKernelConfig.GemmVariant) throws {
        let pair = Pair(try OpenCLTestDevice.backend(variant))
        var random = TestRandom(seed: 1)
        for (batch, channels, spatial) in [(2, 3, 1), (64, 37, 1), (33, 1029, 1), (5, 4, 49), (3, 64, 196), (7, 2, 13)] {
            let n = batch * channels * spatial
            let shape = "\(variant) \(batch)x\(channels)x\(spatial)"
            let gamma = try pair.buffers(random.array(channels, 0.5, 1.5), offset: 1)
            let beta = try pair.buffers(random.array(channels))
            let runningMean = try pair.buffers([Float](repeating: 0, count: channels), offset: 2)
            let runningVariance = try pair.buffers([Float](repeating: 1, count: channels))
            let savedMean = try pair.buffers([Float](repeating: 0, count: channels), offset: 3)
            let savedInverseStd = try pair.buffers([Float](repeating: 0, count: channels))
            let y = try pair.buffers([Float](repeating: 0, count: n), offset: 1)
            var x = try pair.buffers(random.array(n, -2, 3))
            for step in 0..<3 {
                x = try pair.buffers(random.array(n, -2, 3).map { $0 * Float(step + 1) + 1 }, offset: step)
                try pair.cpu.batchNormForwardTraining(input: x.cpu, output: y.cpu, gamma: gamma.cpu, beta: beta.cpu,
                                                      runningMean: runningMean.cpu, runningVariance: runningVariance.cpu,
                                                      savedMean: savedMean.cpu, savedInverseStd: savedInverseStd.cpu,
                                                      batch: batch, channels: channels, spatial: spatial, momentum: 0.1, epsilon: 1e-5)
                try pair.cl.batchNormForwardTraining(input: x.cl, output: y.cl, gamma: gamma.cl, beta: beta.cl,
                                                     runningMean: runningMean.cl, runningVariance: runningVariance.cl,
                                                     savedMean: savedMean.cl, savedInverseStd: savedInverseStd.cl,
                                                     batch: batch, channels: channels, spatial: spatial, momentum: 0.1, epsilon: 1e-5)
                try pair.assertSame(y, tolerance: 1e-5, "train output \(shape) step \(step)")
                try pair.assertSame(savedMean, tolerance: 1e-6, "saved mean \(shape)")
                try pair.assertSame(savedInverseStd, tolerance: 1e-6, "saved inverse std \(shape)")
                try pair.assertSame(runningMean, tolerance: 1e-6, "running mean \(shape)")
                try pair.assertSame(runningVariance, tolerance: 1e-6, "running variance \(shape)")
            }
            let gradOutput = try pair.buffers(random.array(n), offset: 2)
            for accumulate in [false, true] {
                let gradInput = try pair.buffers(random.array(n))
                let gradGamma = try pair.buffers(random.array(channels), offset: 1)
                let gradBeta = try pair.buffers(random.array(channels), offset: 2)
                try pair.cpu.batchNormBackward(gradOutput: gradOutput.cpu, input: x.cpu, gamma: gamma.cpu, savedMean: savedMean.cpu,
                                               savedInverseStd: savedInverseStd.cpu, gradInput: gradInput.cpu, gradGamma: gradGamma.cpu,
                                               gradBeta: gradBeta.cpu, batch: batch, channels: channels, spatial: spatial,
                                               accumulate: accumulate)
                try pair.cl.batchNormBackward(gradOutput: gradOutput.cl, input: x.cl, gamma: gamma.cl, savedMean: savedMean.cl,
                                              savedInverseStd: savedInverseStd.cl, gradInput: gradInput.cl, gradGamma: gradGamma.cl,
                                              gradBeta: gradBeta.cl, batch: batch, channels: channels, spatial: spatial,
                                              accumulate: accumulate)
                try pair.assertSame(gradInput, tolerance: 2e-5, "backward input \(shape) \(accumulate)")
                try pair.assertSame(gradGamma, tolerance: 2e-6, "backward gamma \(shape) \(accumulate)")
                try pair.assertSame(gradBeta, tolerance: 2e-6, "backward beta \(shape) \(accumulate)")
            }
            try pair.cpu.batchNormForwardInference(input: x.cpu, output: y.cpu, gamma: gamma.cpu, beta: beta.cpu,
                                                   runningMean: runningMean.cpu, runningVariance: runningVariance.cpu,
                                                   batch: batch, channels: channels, spatial: spatial, epsilon: 1e-5)
            try pair.cl.batchNormForwardInference(input: x.cl, output: y.cl, gamma: gamma.cl, beta: beta.cl,
                                                  runningMean: runningMean.cl, runningVariance: runningVariance.cl,
                                                  batch: batch, channels: channels, spatial: spatial, epsilon: 1e-5)
            try pair.assertSame(y, tolerance: 1e-5, "inference \(shape)")
        }
    }

    func testSingleValuePerChannelIsRefused() throws {
        let pair = Pair(try OpenCLTestDevice.backend())
        let one = try pair.buffers([1])
        XCTAssertThrowsError(try pair.cl.batchNormForwardTraining(input: one.cl, output: one.cl, gamma: one.cl, beta: one.cl,
                                                                  runningMean: one.cl, runningVariance: one.cl, savedMean: one.cl,
                                                                  savedInverseStd: one.cl, batch: 1, channels: 1, spatial: 1,
                                                                  momentum: 0.1, epsilon: 1e-5))
    }
}
