import Foundation
import XCTest
import LatentCore
import LatentCPU
import LatentNN
import LatentModels
@testable import LatentOpenCL

/// Device time per kernel for SGEMM and the conv VAE's layers, printed for tuning; runs
/// only with LATENT_OPENCL_TIMING=1 (e.g. `LATENT_OPENCL_TIMING=1 swift test -c release
/// --filter KernelTimingTests`).
final class KernelTimingTests: XCTestCase {
    func testPrintKernelTimes() throws {
        guard ProcessInfo.processInfo.environment["LATENT_OPENCL_TIMING"] == "1" else {
            throw XCTSkip("set LATENT_OPENCL_TIMING=1 to print kernel times")
        }
        let device = try OpenCLTestDevice.backend().device
        let variant = OpenCLKernelConfig.GemmVariant(rawValue: ProcessInfo.processInfo.environment["LATENT_OPENCL_GEMM"] ?? "")
        var config = try OpenCLKernelConfig.fromEnvironment(for: device)
        if let variant { config.gemm = variant }
        let cl = try OpenCLBackend(device: device, config: config, profiling: true)
        print("config: \(config)")
        let repeats = 5
        func report(_ title: String, flops: Double) throws {
            let rows = try cl.kernelProfile()
            let total = rows.reduce(0) { $0 + $1.milliseconds } / Double(repeats)
            print(String(format: "%@: %.3f ms/call device time, %.1f GFLOP/s", title, total, flops / total / 1e6))
            for row in rows {
                print(String(format: "    %-24@ %8.3f ms/call", row.kernel, row.milliseconds / Double(repeats)))
            }
        }
        for size in [512, 1024] {
            let a = try BufferView(try cl.makeBuffer(count: size * size))
            let b = try BufferView(try cl.makeBuffer(count: size * size))
            let c = try BufferView(try cl.makeBuffer(count: size * size))
            try cl.fillUniform(a, low: -1, high: 1, seed: 1, counter: 0)
            try cl.fillUniform(b, low: -1, high: 1, seed: 2, counter: 0)
            let gemm = { try cl.gemm(transA: .none, transB: .none, m: size, n: size, k: size, alpha: 1, a: a, lda: size, b: b, ldb: size, beta: 0, c: c, ldc: size) }
            try gemm()
            _ = try cl.kernelProfile()
            for _ in 0..<repeats { try gemm() }
            try report("sgemm \(size)^3", flops: 2 * Double(size * size * size))
        }
        let batch = 64
        let layers: [(String, ConvGeometry)] = [
            ("enc.conv1", try ConvGeometry(batch: batch, inChannels: 1, height: 28, width: 28, outChannels: 64, kernel: 4, stride: 2, padding: 1)),
            ("enc.conv2", try ConvGeometry(batch: batch, inChannels: 64, height: 14, width: 14, outChannels: 128, kernel: 4, stride: 2, padding: 1)),
            ("enc.conv3", try ConvGeometry(batch: batch, inChannels: 128, height: 7, width: 7, outChannels: 128, kernel: 3, stride: 1, padding: 1)),
        ]
        for (name, g) in layers {
            let x = try BufferView(try cl.makeBuffer(count: g.inputCount))
            let y = try BufferView(try cl.makeBuffer(count: g.outputCount))
            let w = try BufferView(try cl.makeBuffer(count: g.weightCount))
            try cl.fillUniform(x, low: -1, high: 1, seed: 3, counter: 0)
            try cl.fillUniform(w, low: -1, high: 1, seed: 4, counter: 0)
            let passes: [(String, () throws -> Void)] = [
                ("forward", { try cl.conv2dForward(g, input: x, weight: w, bias: nil, output: y) }),
                ("backward-data", { try cl.conv2dBackwardData(g, gradOutput: y, weight: w, bias: nil, gradInput: x, accumulate: false) }),
                ("backward-weights", { try cl.conv2dBackwardWeights(g, input: x, gradOutput: y, gradWeight: w, accumulate: false) }),
            ]
            for (pass, body) in passes {
                try body()
                _ = try cl.kernelProfile()
                for _ in 0..<repeats { try body() }
                try report("\(name) \(pass)", flops: 2 * Double(g.multiplyAdds))
            }
        }
    }
}

/// One training step (forward, backward, optimizer; batch 64) of the conv VAE and of the zoo's
/// dcgan on the CPU backend and on OpenCL in the same run, median of 5 after a warm-up, and
/// the OpenCL step's device time per kernel; runs only with LATENT_OPENCL_TIMING=1.
final class StepTimingTests: XCTestCase {
    func testConvVAEStepTime() throws {
        try timeStep("conv VAE") { try Self.convVAEStep(on: $0, batch: 64) }
    }

    func testDCGANStepTime() throws {
        try timeStep("dcgan") { try Self.dcganStep(on: $0, batch: 64) }
    }

    func timeStep(_ name: String, _ makeStep: (any Backend) throws -> () throws -> Void) throws {
        guard ProcessInfo.processInfo.environment["LATENT_OPENCL_TIMING"] == "1" else {
            throw XCTSkip("set LATENT_OPENCL_TIMING=1 to time training steps")
        }
        var report: [String] = []
        for backend in [CPUBackend() as any Backend, try OpenCLTestDevice.backend()] {
            let step = try makeStep(backend)
            try step()
            var samples: [Double] = []
            let clock = ContinuousClock()
            for _ in 0..<5 {
                let start = clock.now
                try step()
                try backend.synchronize()
                let elapsed = clock.now - start
                samples.append(Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) * 1e-18)
            }
            samples.sort()
            report.append(String(format: "%@: %.1f ms/step", backend.name, samples[2] * 1e3))
        }
        print("\(name) step, batch 64: " + report.joined(separator: ", "))

        // Where the OpenCL step's device time goes, per kernel (a profiling queue, 3 steps);
        // per kernel and global size with LATENT_OPENCL_TIMING_SIZES=1.
        let device = try OpenCLTestDevice.backend().device
        let bySize = ProcessInfo.processInfo.environment["LATENT_OPENCL_TIMING_SIZES"] == "1"
        let cl = try OpenCLBackend(device: device, config: try OpenCLKernelConfig.fromEnvironment(for: device), profiling: true,
                                   bySize: bySize)
        let step = try makeStep(cl)
        try step()
        _ = try cl.kernelProfile()
        let steps = 3
        for _ in 0..<steps { try step() }
        let rows = try cl.kernelProfile()
        let total = rows.reduce(0) { $0 + $1.milliseconds } / Double(steps)
        print(String(format: "%@ OpenCL step device time: %.1f ms (%@)", name, total, "\(cl.config)"))
        for row in rows.prefix(bySize ? 60 : 24) {
            print(String(format: "    %-40@ %8.3f ms/step %5.1f%% %4d calls/step", row.kernel, row.milliseconds / Double(steps),
                         100 * row.milliseconds / Double(steps) / total, row.calls / steps))
        }
    }

    /// One step of the zoo's dcgan (a G and a D step, Adam) on `backend`, uniform images.
    static func dcganStep(on backend: any Backend, batch: Int) throws -> () throws -> Void {
        var options = ModelCatalog.descriptor(.dcgan).defaults
        options.batchSize = batch
        let model = try GAN(options: options, backend: backend, random: RandomSource(seed: 1))
        let images = try Tensor(zeros: [batch, 1, 28, 28], on: backend)
        try RandomSource(seed: 2).fillUniform(images, low: -1, high: 1)
        let labels = [UInt8](repeating: 0, count: batch)
        return { _ = try model.trainStep(images: images, labels: labels) }
    }

    /// One training step (forward, backward, Adam) of the conv VAE on `backend`, the same
    /// seed and uniform images every time it is built.
    static func convVAEStep(on backend: any Backend, batch: Int) throws -> () throws -> Void {
        let random = RandomSource(seed: 1)
        let model = try TrainingParityTests.ConvVAE(latent: 32, on: backend, random: random)
        let optimizer = try Optimizer(.adam, module: model)
        let bce = ElementwiseLoss.bce(.sum), kl = GaussianKL(.logVariance)
        let images = try Tensor(zeros: [batch, 1, 28, 28], on: backend)
        try random.fillUniform(images, low: 0, high: 1)
        return { _ = try model.step(images, optimizer: optimizer, bce: bce, kl: kl) }
    }
}
