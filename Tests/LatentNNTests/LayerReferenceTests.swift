import XCTest
import LatentCore
import LatentCPU
@testable import LatentNN

/// Forward and backward values against `torch.nn` (LayerReferenceData.swift): weight
/// layouts, padding and output_padding, batch-norm statistics.
final class LayerReferenceTests: XCTestCase {
    func testLayersMatchPyTorch() throws {
        for reference in LayerReference.cases {
            let layer = try reference.make(RandomSource(seed: 0))
            let parameters = Dictionary(uniqueKeysWithValues: layer.namedParameters().map { ($0.name, $0.parameter) })
            XCTAssertEqual(Set(parameters.keys), Set(reference.parameters.keys), reference.name)
            for (name, values) in reference.parameters {
                try XCTUnwrap(parameters[name], "\(reference.name) \(name)").value.copy(from: values)
            }
            let input = try Tensor(reference.input, shape: reference.inputShape, on: cpu)
            let output = try layer.forward(input, training: true)
            XCTAssertEqual(output.shape, reference.outputShape, reference.name)
            assertClose(try output.toArray(), reference.output, relative: 1e-5, absolute: 1e-5, "\(reference.name) output")
            let buffers = Dictionary(uniqueKeysWithValues: layer.namedBuffers().map { ($0.name, $0.tensor) })
            for (name, values) in reference.buffers {
                assertClose(try XCTUnwrap(buffers[name], "\(reference.name) \(name)").toArray(), values,
                            relative: 1e-5, absolute: 1e-6, "\(reference.name) \(name)")
            }

            try layer.zeroGradients()
            let gradInput = try layer.backward(try Tensor(reference.gradOutput, shape: reference.outputShape, on: cpu))
            assertClose(try gradInput.toArray(), reference.gradInput, relative: 1e-5, absolute: 1e-5, "\(reference.name) input gradient")
            for (name, values) in reference.parameterGradients {
                assertClose(try XCTUnwrap(parameters[name]).gradient.toArray(), values,
                            relative: 1e-5, absolute: 1e-5, "\(reference.name) \(name) gradient")
            }
        }
    }
}
