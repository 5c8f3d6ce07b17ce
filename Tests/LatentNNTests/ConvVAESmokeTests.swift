import XCTest
import LatentCore
import LatentCPU
@testable import LatentNN

/// Report 004's convolutional VAE, built from the layer library, one training step on
/// the CPU backend with every intermediate shape checked.
final class ConvVAESmokeTests: XCTestCase {
    final class ConvVAE: Module {
        let encoder: Sequential
        let fcMu: Linear
        let fcLogVariance: Linear
        let decoderInput: Linear
        let decoder: Sequential
        let sample: Reparameterize

        init(latent: Int, random: RandomSource) throws {
            encoder = Sequential(
                try Conv2d(1, 64, kernel: 4, stride: 2, padding: 1, on: cpu, random: random),
                try BatchNorm2d(64, on: cpu), LeakyReLU(0.2),
                try Conv2d(64, 128, kernel: 4, stride: 2, padding: 1, on: cpu, random: random),
                try BatchNorm2d(128, on: cpu), LeakyReLU(0.2),
                try Conv2d(128, 128, kernel: 3, stride: 1, padding: 1, on: cpu, random: random),
                try BatchNorm2d(128, on: cpu), LeakyReLU(0.2),
                Flatten())
            fcMu = try Linear(128 * 7 * 7, latent, on: cpu, random: random)
            fcLogVariance = try Linear(128 * 7 * 7, latent, on: cpu, random: random)
            decoderInput = try Linear(latent, 128 * 7 * 7, on: cpu, random: random)
            decoder = Sequential(
                try Reshape([128, 7, 7]),
                try ConvTranspose2d(128, 64, kernel: 4, stride: 2, padding: 1, on: cpu, random: random), ReLU(),
                try ConvTranspose2d(64, 1, kernel: 4, stride: 2, padding: 1, on: cpu, random: random), Sigmoid())
            sample = Reparameterize(.logVariance, random: random)
        }

        var children: [(name: String, module: any Module)] {
            [("encoder", encoder), ("fc_mu", fcMu), ("fc_logvar", fcLogVariance), ("decoder_input", decoderInput), ("decoder", decoder)]
        }
    }

    func testForwardBackwardAndAdamStep() throws {
        let batch = 8, latent = 32
        let random = RandomSource(seed: 2024)
        let model = try ConvVAE(latent: latent, random: random)
        XCTAssertEqual(model.namedParameters().map(\.name), [
            "encoder.0.weight", "encoder.0.bias", "encoder.1.weight", "encoder.1.bias",
            "encoder.3.weight", "encoder.3.bias", "encoder.4.weight", "encoder.4.bias",
            "encoder.6.weight", "encoder.6.bias", "encoder.7.weight", "encoder.7.bias",
            "fc_mu.weight", "fc_mu.bias", "fc_logvar.weight", "fc_logvar.bias",
            "decoder_input.weight", "decoder_input.bias",
            "decoder.1.weight", "decoder.1.bias", "decoder.3.weight", "decoder.3.bias",
        ])
        let images = try Tensor(zeros: [batch, 1, 28, 28], on: cpu)
        try random.fillUniform(images, low: 0, high: 1)

        // Forward, checking each layer's output shape.
        var x = images
        let encoderShapes: [[Int]] = [
            [batch, 64, 14, 14], [batch, 64, 14, 14], [batch, 64, 14, 14],
            [batch, 128, 7, 7], [batch, 128, 7, 7], [batch, 128, 7, 7],
            [batch, 128, 7, 7], [batch, 128, 7, 7], [batch, 128, 7, 7],
            [batch, 128 * 7 * 7],
        ]
        for (layer, shape) in zip(model.encoder.layers, encoderShapes) {
            x = try layer.forward(x, training: true)
            XCTAssertEqual(x.shape, shape, "encoder \(layer)")
        }
        let hidden = x
        let mu = try model.fcMu.forward(hidden, training: true)
        let logVariance = try model.fcLogVariance.forward(hidden, training: true)
        XCTAssertEqual(mu.shape, [batch, latent])
        XCTAssertEqual(logVariance.shape, [batch, latent])
        let z = try model.sample.forward(mean: mu, parameter: logVariance)
        XCTAssertEqual(z.shape, [batch, latent])
        var y = try model.decoderInput.forward(z, training: true)
        XCTAssertEqual(y.shape, [batch, 128 * 7 * 7])
        let decoderShapes: [[Int]] = [[batch, 128, 7, 7], [batch, 64, 14, 14], [batch, 64, 14, 14], [batch, 1, 28, 28], [batch, 1, 28, 28]]
        for (layer, shape) in zip(model.decoder.layers, decoderShapes) {
            y = try layer.forward(y, training: true)
            XCTAssertEqual(y.shape, shape, "decoder \(layer)")
        }
        let reconstruction = y

        // Loss = (BCE(sum) + KL) / batch, kept on the device until read here.
        let bce = ElementwiseLoss.bce(.sum)
        let kl = GaussianKL(.logVariance)
        let reconstructionLoss = try bce.forward(reconstruction, target: images)
        let klLoss = try kl.forward(mean: mu, parameter: logVariance)
        XCTAssertEqual(reconstructionLoss.shape, [1])
        let loss = (try reconstructionLoss.scalar() + (try klLoss.scalar())) / Float(batch)
        XCTAssertTrue(loss.isFinite, "loss \(loss)")
        XCTAssertGreaterThan(loss, 0)

        // Backward, checking every gradient's shape.
        try model.zeroGradients()
        let scale = 1 / Float(batch)
        var g = try bce.backward(scale: scale)
        XCTAssertEqual(g.shape, [batch, 1, 28, 28])
        g = try model.decoder.backward(g)
        XCTAssertEqual(g.shape, [batch, 128 * 7 * 7])
        g = try model.decoderInput.backward(g)
        XCTAssertEqual(g.shape, [batch, latent])
        let heads = try model.sample.backward(g)
        try kl.backward(scale: scale, accumulatingInto: heads.mean, heads.parameter)
        XCTAssertEqual(heads.mean.shape, [batch, latent])
        XCTAssertEqual(heads.parameter.shape, [batch, latent])
        let gradHidden = try model.fcMu.backward(heads.mean)
        try accumulate(try model.fcLogVariance.backward(heads.parameter), into: gradHidden)
        XCTAssertEqual(gradHidden.shape, [batch, 128 * 7 * 7])
        var e = gradHidden
        // Each layer's input gradient has the shape of its input: the previous layer's output.
        let encoderInputShapes: [[Int]] = Array(encoderShapes.reversed().dropFirst()) + [[batch, 1, 28, 28]]
        for (layer, shape) in zip(model.encoder.layers.reversed(), encoderInputShapes) {
            e = try layer.backward(e)
            XCTAssertEqual(e.shape, shape, "encoder backward \(layer)")
        }
        XCTAssertEqual(e.shape, images.shape)
        for (name, parameter) in model.namedParameters() {
            XCTAssertEqual(parameter.gradient.shape, parameter.value.shape, name)
            let gradient = try parameter.gradient.toArray()
            XCTAssertTrue(gradient.allSatisfy(\.isFinite), "\(name) gradient is finite")
            XCTAssertTrue(gradient.contains { $0 != 0 }, "\(name) received a gradient")
        }

        // One Adam step moves every weight.
        let before = try model.namedParameters().map { try $0.parameter.value.toArray() }
        let optimizer = try Optimizer(.adam, module: model)
        try optimizer.step()
        for ((name, parameter), old) in zip(model.namedParameters(), before) {
            let new = try parameter.value.toArray()
            XCTAssertTrue(zip(new, old).contains { $0 != $1 }, "\(name) changed")
            XCTAssertTrue(new.allSatisfy(\.isFinite), "\(name) is finite")
        }
        XCTAssertEqual(try model.namedBuffers()[2].tensor.scalar(), 1, "num_batches_tracked")
    }
}
