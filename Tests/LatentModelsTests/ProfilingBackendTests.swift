import LatentBench
import LatentCore
import LatentCPU
import LatentModels
import LatentNN
import XCTest

/// `latent bench train --profile` runs the model on `ProfilingBackend`, which forwards every
/// op to the real backend and times it: the training must be the same to the bit, and the
/// record must hold each op at its shape with its number of calls.
final class ProfilingBackendTests: XCTestCase {
    func testProfiledTrainingIsBitIdenticalAndRecordsEveryOpByShape() throws {
        let options = Zoo.options(.vaeConv)
        let plain = CPUBackend(threads: 2)
        let profiler = ProfilingBackend(CPUBackend(threads: 2), synchronizeEachOp: false)

        func train(on backend: any Backend, steps: Int, recording: Bool) throws -> (losses: [Float], state: [(String, [Float])]) {
            let model = try ModelCatalog.makeModel(options, backend: backend, random: RandomSource(seed: options.seed))
            let (values, labels) = Zoo.digits(count: options.batchSize, seed: 5)
            let images = try Tensor(values, shape: [options.batchSize, 1, 28, 28], on: backend)
            profiler.isRecording = recording
            defer { profiler.isRecording = false }
            var losses: [Float] = []
            for _ in 0..<steps { losses.append(try model.trainStep(images: images, labels: labels)[0].scalar()) }
            return (losses, try model.root.stateDict().map { ($0.name, try $0.tensor.toArray()) })
        }

        let expected = try train(on: plain, steps: 2, recording: false)
        let profiled = try train(on: profiler, steps: 2, recording: true)
        XCTAssertEqual(profiled.losses.map(\.bitPattern), expected.losses.map(\.bitPattern))
        XCTAssertEqual(profiled.state.map(\.0), expected.state.map(\.0))
        for (a, e) in zip(profiled.state, expected.state) {
            XCTAssertEqual(a.1.map(\.bitPattern), e.1.map(\.bitPattern), a.0)
        }

        let entries = profiler.recorded
        func calls(_ op: String, _ shape: String) -> Int? {
            entries.first { $0.op == op && $0.shape == shape }?.calls
        }
        // Report 004's first convolution and last transposed convolution share one geometry
        // (1 <-> 64 channels, k4 s2): per step, the convolution's forward and the transposed
        // one's input gradient (a convolution forward), and both layers' weight gradients.
        let batch = options.batchSize
        XCTAssertEqual(calls("conv2dForward", "\(batch)x1x28x28 -> 64x14x14, k4x4 s2"), 2 * 2)
        XCTAssertEqual(calls("conv2dBackwardWeights", "\(batch)x1x28x28 -> 64x14x14, k4x4 s2"), 2 * 2)
        // The transposed convolution's forward; the images need no gradient.
        XCTAssertEqual(calls("conv2dBackwardData", "\(batch)x1x28x28 -> 64x14x14, k4x4 s2"), 2)
        let parameters = try ModelCatalog.makeModel(options, backend: plain, random: RandomSource(seed: 1))
            .root.parameters().count
        XCTAssertEqual(calls("optimizerStep", "adam"), 2 * parameters)
        XCTAssertTrue(entries.allSatisfy { $0.seconds >= 0 && $0.calls > 0 })
        XCTAssertEqual(entries.map(\.seconds), entries.map(\.seconds).sorted(by: >), "costliest first")

        // Nothing is recorded while recording is off, and reset empties the record.
        profiler.reset()
        _ = try train(on: profiler, steps: 1, recording: false)
        XCTAssertTrue(profiler.recorded.isEmpty)
    }
}
