import Foundation
import LatentCore
import LatentCPU
import LatentData
@testable import LatentModels
import LatentNN
import XCTest

final class GANTests: XCTestCase {
    func makeGAN(_ kind: ModelKind, sharedZeroGrad: Bool) throws -> GAN {
        var options = Zoo.options(kind)
        options.ganSharedZeroGrad = sharedZeroGrad
        return try XCTUnwrap(try Zoo.make(options) as? GAN)
    }

    /// The discriminator gradients of g_loss or d_loss at the initial weights, computed
    /// step by step on a fresh twin (same seed, so the same weights and the same z).
    func referenceGradients(_ kind: ModelKind, images: Tensor, generatorLoss: Bool) throws -> [[Float]] {
        let twin = try makeGAN(kind, sharedZeroGrad: false)
        let batch = images.shape[0]
        let z = try Tensor(zeros: [batch, twin.options.latentDim], on: Zoo.backend)
        try twin.random.fillNormal(z)
        let generated = try twin.generator.forward(z, training: true)
        try twin.discriminator.zeroGradients()
        let ones = try Tensor([Float](repeating: 1, count: batch), shape: [batch, 1], on: Zoo.backend)
        let zeros = try Tensor(zeros: [batch, 1], on: Zoo.backend)
        let scale = 1 / Float(batch)
        if generatorLoss {
            let loss = ElementwiseLoss(.bce, reduction: .sum)
            _ = try loss.forward(try twin.discriminator.forward(generated, training: true), target: ones)
            _ = try twin.discriminator.backward(try loss.backward(scale: scale))
        } else {
            // The G step's pass through D comes first (it updates D's batch-norm statistics).
            _ = try twin.discriminator.forward(generated, training: true)
            let real = ElementwiseLoss(.bce, reduction: .sum), fake = ElementwiseLoss(.bce, reduction: .sum)
            _ = try real.forward(try twin.discriminator.forward(images, training: true), target: ones)
            _ = try twin.discriminator.backward(try real.backward(scale: 0.5 * scale))
            _ = try fake.forward(try twin.discriminator.forward(generated, training: true), target: zeros)
            _ = try twin.discriminator.backward(try fake.backward(scale: 0.5 * scale))
        }
        return try twin.discriminator.parameters().map { try $0.gradient.toArray() }
    }

    /// Clean update: D steps on d_loss's gradient alone. Report 004's quirk: on the sum of
    /// g_loss's and d_loss's gradients. G's step is the same in both.
    func testSharedZeroGradLeavesTheGeneratorLossGradientInTheDiscriminator() throws {
        for kind in [ModelKind.ganMLP, .dcgan] {
            let clean = try makeGAN(kind, sharedZeroGrad: false)
            let quirk = try makeGAN(kind, sharedZeroGrad: true)
            let (images, labels) = try Zoo.batch(for: clean, count: 4, seed: 4)
            let cleanTerms = try clean.trainStep(images: images, labels: labels).map { try $0.scalar() }
            let quirkTerms = try quirk.trainStep(images: images, labels: labels).map { try $0.scalar() }
            XCTAssertEqual(cleanTerms[1], quirkTerms[1], "\(kind): the same g_loss")

            for (a, b) in zip(clean.generator.parameters(), quirk.generator.parameters()) {
                XCTAssertEqual(try a.value.toArray(), try b.value.toArray(), "\(kind): the generator step does not depend on the mode")
            }
            var differs = false
            for (a, b) in zip(clean.discriminator.parameters(), quirk.discriminator.parameters()) {
                let valueA = try a.value.toArray(), valueB = try b.value.toArray()
                if valueA != valueB { differs = true }
            }
            XCTAssertTrue(differs, "\(kind): the quirk changes the discriminator's step")

            let gFromG = try referenceGradients(kind, images: images, generatorLoss: true)
            let gFromD = try referenceGradients(kind, images: images, generatorLoss: false)
            for (index, (cleanParameter, quirkParameter)) in zip(clean.discriminator.parameters(), quirk.discriminator.parameters()).enumerated() {
                let cleanGradient = try cleanParameter.gradient.toArray()
                let quirkGradient = try quirkParameter.gradient.toArray()
                let tolerance = 1e-5 + 1e-4 * (gFromD[index] + gFromG[index]).map(abs).reduce(0, max)
                XCTAssertLessThan(maxDifference(cleanGradient, gFromD[index]), tolerance, "\(kind) D parameter \(index): clean = d_loss gradient")
                let sum = zip(gFromG[index], gFromD[index]).map { $0 + $1 }
                XCTAssertLessThan(maxDifference(quirkGradient, sum), tolerance, "\(kind) D parameter \(index): quirk = g_loss + d_loss gradients")
            }
        }
    }

    /// The terms are sums over the batch: g_loss = -sum log D(G(z)), d_loss the average of the
    /// real and fake BCE sums, loss their sum.
    func testLossTermsAreBatchSums() throws {
        let model = try makeGAN(.ganMLP, sharedZeroGrad: false)
        let (images, labels) = try Zoo.batch(for: model, count: 5, seed: 9)
        let terms = try model.evaluate(images: images, labels: labels).map { try $0.scalar() }
        XCTAssertEqual(terms[0], terms[1] + terms[2], accuracy: 1e-4 * abs(terms[0]))
        let real = try model.discriminate(images)
        XCTAssertEqual(real.count, 5)
        // At initialisation D is near 1/2: each BCE is about log 2 per image.
        XCTAssertEqual(Double(terms[1]) / 5, log(2), accuracy: 0.3)
        XCTAssertEqual(Double(terms[2]) / 5, log(2), accuracy: 0.3)
    }

    /// The D step's fake term from the G step's pass through D, against D run on the same
    /// fakes again: every loss term, parameter, gradient, running statistic and optimizer
    /// state bit for bit over three steps, for both GANs. (D's gradient gets its two terms in
    /// the other order; the backends add a term to a gradient in one addition, which makes the
    /// order invisible: before the CPU backend's weight gradients did so, dcgan's first
    /// convolution differed in the last bit and Adam's first step, lr * g / |g|, turned that
    /// into +-lr on the bias before batch norm, whose gradient is zero up to rounding.)
    func testDiscriminatorStepReusesTheGeneratorStepsPass() throws {
        for kind in [ModelKind.ganMLP, .dcgan] {
            let reusing = try makeGAN(kind, sharedZeroGrad: false)
            let threePasses = try makeGAN(kind, sharedZeroGrad: false)
            threePasses.allowsFakeJudgementReuse = false
            XCTAssertTrue(reusing.reusesFakeJudgement, "\(kind)")
            XCTAssertFalse(threePasses.reusesFakeJudgement, "\(kind)")
            XCTAssertEqual(reusing.discriminatorNorms.count, kind == .dcgan ? 1 : 0, "\(kind)")
            let steps = 3
            for step in 0..<steps {
                let (images, labels) = try Zoo.batch(for: reusing, count: 20, seed: UInt64(20 + step))
                let a = try reusing.trainStep(images: images, labels: labels).map { try $0.scalar() }
                let b = try threePasses.trainStep(images: images, labels: labels).map { try $0.scalar() }
                XCTAssertEqual(a, b, "\(kind) step \(step): loss terms")
            }
            let stateA = reusing.root.stateDict(), stateB = threePasses.root.stateDict()
            XCTAssertEqual(stateA.map(\.name), stateB.map(\.name))
            if kind == .dcgan { XCTAssertTrue(stateA.contains { $0.name == "discriminator.3.running_var" }) }
            for (a, b) in zip(stateA, stateB) {
                XCTAssertEqual(try a.tensor.toArray(), try b.tensor.toArray(), "\(kind) \(a.name)")
            }
            for (a, b) in zip(reusing.discriminator.parameters(), threePasses.discriminator.parameters()) {
                let x = try a.gradient.toArray(), y = try b.gradient.toArray()
                XCTAssertEqual(x, y, "\(kind) D gradient")
            }
            for (a, b) in zip(reusing.generator.parameters(), threePasses.generator.parameters()) {
                XCTAssertEqual(try a.gradient.toArray(), try b.gradient.toArray(), "\(kind) G gradient")
            }
            for ((_, a), (_, b)) in zip(reusing.optimizers, threePasses.optimizers) {
                for (x, y) in zip(a.namedState(), b.namedState()) {
                    XCTAssertEqual(try x.tensor.toArray(), try y.tensor.toArray(), "\(kind) optimizer \(x.name)")
                }
            }
        }
    }

    /// Report 004's shared zero_grad keeps D's three passes (the order of its gradient sums).
    func testSharedZeroGradKeepsThreePasses() throws {
        XCTAssertFalse(try makeGAN(.dcgan, sharedZeroGrad: true).reusesFakeJudgement)
    }
}
