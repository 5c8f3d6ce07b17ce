import LatentCore
import LatentModels
import LatentNN
import XCTest

/// `--kl-warmup-steps`: the KL term's weight in the gradient ramps from 0 to beta.
final class KLWarmupTests: XCTestCase {
    /// Parameters after `steps` training steps on one fixed batch.
    func parameters(after steps: Int, _ options: TrainingOptions) throws -> [[Float]] {
        let model = try Zoo.make(options)
        let (images, labels) = try Zoo.batch(for: model, count: 6, seed: 5)
        for _ in 0..<steps { _ = try model.trainStep(images: images, labels: labels) }
        return try model.root.namedParameters().map { try $0.parameter.value.toArray() }
    }

    func testWarmupScalesOnlyTheKLGradient() throws {
        var plain = Zoo.options(.vaeFC)
        plain.optimizer = "sgd"
        plain.learningRate = 1e-3
        var noKL = plain
        noKL.kl = false
        var endless = plain
        endless.klWarmupSteps = 100_000_000   // weight 1e-8 on the first step: KL's share vanishes
        var oneStep = plain
        oneStep.klWarmupSteps = 1             // full weight from the first step
        var half = plain
        half.klWarmupSteps = 2                // weight 1/2 on the first step, 1 on the second

        let reference = try parameters(after: 1, plain)
        XCTAssertEqual(try parameters(after: 1, oneStep), reference, "a one-step warm-up is no warm-up")
        let withoutKL = try parameters(after: 1, noKL)
        XCTAssertNotEqual(withoutKL, reference, "the KL gradient must matter for this test")
        for (a, b) in zip(try parameters(after: 1, endless), withoutKL) {
            for (x, y) in zip(a, b) { XCTAssertEqual(x, y, accuracy: 1e-6) }
        }
        // SGD without momentum: the first step's update is linear in the KL weight, so half
        // a weight lands halfway between no KL and the full KL.
        for ((h, r), n) in zip(zip(try parameters(after: 1, half), reference), withoutKL) {
            for i in h.indices {
                XCTAssertEqual(h[i], (r[i] + n[i]) / 2, accuracy: 1e-6 + 1e-4 * abs(r[i] - n[i]))
            }
        }
    }

    func testWarmupIsValidatedAndOptionalInOldConfigs() throws {
        var options = Zoo.options(.vaeFC)
        options.klWarmupSteps = -1
        XCTAssertThrowsError(try options.validate())
        // A config.json written before the option existed still decodes.
        options.klWarmupSteps = nil
        let data = try JSONEncoder().encode(options)
        var object = try XCTUnwrap(JSONSerialization.jsonObject(with: data) as? [String: Any])
        object.removeValue(forKey: "klWarmupSteps")
        let old = try JSONSerialization.data(withJSONObject: object)
        XCTAssertNil(try JSONDecoder().decode(TrainingOptions.self, from: old).klWarmupSteps)
    }
}
