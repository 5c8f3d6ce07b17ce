import Foundation
import LatentCore
import LatentCPU
import LatentData
@testable import LatentModels
import LatentNN
import XCTest

final class VQVAETests: XCTestCase {
    /// A small VQ-VAE whose codebook is spread like the encoder's outputs, so the lookup has
    /// real choices to make.
    func makeModel() throws -> (VQVAE, Tensor) {
        let model = try XCTUnwrap(try Zoo.make(.vqvae) as? VQVAE)
        let (images, _) = try Zoo.batch(for: model, count: 2, seed: 8)
        let encoded = try model.encoder.forward(images, training: false).toArray()
        let mean = encoded.reduce(0, +) / Float(encoded.count)
        let spread = (encoded.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / Float(encoded.count)).squareRoot()
        try RandomSource(seed: 77).fillNormal(model.codebook.weight.value, mean: mean, std: spread)
        return (model, images)
    }

    func testTransposeIsExactBothWays() throws {
        var transposer = Transposer()
        var random = SplitMix64(seed: 3)
        for (rows, cols) in [(6, 3), (3, 6), (8, 49), (49, 8), (1, 5), (5, 1)] {
            let values = (0..<(rows * cols)).map { _ in Float(Int64(random.next() % 2001) - 1000) / 7 }
            let source = try Tensor(values, shape: [rows, cols], on: Zoo.backend)
            let destination = try Tensor(zeros: [cols, rows], on: Zoo.backend)
            try transposer.transpose(source.view, rows: rows, cols: cols, into: destination.view, on: Zoo.backend)
            var expected = [Float](repeating: 0, count: rows * cols)
            for r in 0..<rows { for c in 0..<cols { expected[c * rows + r] = values[r * cols + c] } }
            XCTAssertEqual(try destination.toArray(), expected, "\(rows) x \(cols)")
        }
    }

    /// Each of the 49 D-vectors of each image is replaced by its nearest codebook entry.
    func testQuantizationPicksTheNearestEntryForEveryPosition() throws {
        let (model, images) = try makeModel()
        let pass = try model.forward(images, training: false)
        let batch = images.shape[0], width = model.codebookDim, positions = model.positions
        let encoded = try pass.encoded.toArray(), quantized = try pass.quantized.toArray()
        let codebook = try model.codebook.weight.value.toArray()
        let indices = try pass.indices.toArray(), rows = try pass.zRows.toArray()
        var used = Set<Int>()
        for n in 0..<batch {
            for s in 0..<positions {
                let vector = (0..<width).map { encoded[n * width * positions + $0 * positions + s] }
                XCTAssertEqual(Array(rows[((s * batch + n) * width)..<((s * batch + n + 1) * width)]), vector, "row layout")
                let distances = (0..<model.codebookSize).map { entry in
                    (0..<width).reduce(0.0) { $0 + pow(Double(vector[$1]) - Double(codebook[entry * width + $1]), 2) }
                }
                let best = distances.indices.min { distances[$0] < distances[$1] } ?? -1
                let chosen = Int(indices[s * batch + n])
                used.insert(chosen)
                XCTAssertLessThanOrEqual(distances[chosen], distances[best] * (1 + 1e-5) + 1e-9, "image \(n) position \(s)")
                for d in 0..<width {
                    XCTAssertEqual(quantized[n * width * positions + d * positions + s], codebook[chosen * width + d])
                }
            }
        }
        XCTAssertGreaterThan(used.count, 2, "the test codebook should offer real choices")
        XCTAssertEqual(try model.codeIndices(images), (0..<(batch * positions)).map { i in
            Int(indices[(i % positions) * batch + i / positions])
        })
    }

    /// Straight-through: the gradient reaching z_e is the decoder's input gradient at z_q
    /// (checked by finite differences through the decoder) plus the commitment term; the
    /// codebook gradient is 2 (e - z_e) / N summed over the rows that chose each entry.
    func testStraightThroughAndCodebookGradients() throws {
        let (model, images) = try makeModel()
        let batch = images.shape[0]
        let scale = 1 / Float(batch)
        let beta = model.options.commitment
        try model.root.zeroGradients()
        let pass = try model.forward(images, training: true)
        _ = try model.losses(pass, target: images)
        let gradEncoded = try model.backpropagate(pass, scale: scale).toArray()
        let encoded = try pass.encoded.toArray()
        let quantizedValues = try pass.quantized.toArray()
        let codebookGradient = try model.codebook.weight.gradient.toArray()
        let indices = try pass.indices.toArray(), rows = try pass.zRows.toArray()
        let codebook = try model.codebook.weight.value.toArray()

        // The reconstruction part: d(recon / N) / d z_q by central differences.
        let straightThrough = zip(gradEncoded, zip(encoded, quantizedValues)).map { g, pair in
            g - 2 * beta * scale * (pair.0 - pair.1)
        }
        let probe = try Tensor(quantizedValues, shape: pass.quantized.shape, on: Zoo.backend)
        let targets = try images.toArray()
        // BCE summed in Double on the host: pixels the perturbation does not reach cancel exactly.
        func reconstructionLoss() throws -> Double {
            let output = try model.decoder.forward(probe, training: true).toArray()
            var total = 0.0
            for (p, t) in zip(output, targets) {
                let logP = max(log(Double(p)), -100), log1MinusP = max(log1p(-Double(p)), -100)
                total -= Double(t) * logP + (1 - Double(t)) * log1MinusP
            }
            return total * Double(scale)
        }
        var values = quantizedValues
        var random = SplitMix64(seed: 12)
        var checked = 0, failures: [String] = []
        let eps: Float = 1e-3
        for _ in 0..<40 {
            let index = Int(random.next() % UInt64(values.count))
            let original = values[index]
            values[index] = original + eps
            try probe.copy(from: values)
            let plus = try reconstructionLoss()
            values[index] = original - eps
            try probe.copy(from: values)
            let minus = try reconstructionLoss()
            values[index] = original
            let numeric = (plus - minus) / Double(2 * eps)
            let analytic = Double(straightThrough[index])
            checked += 1
            if abs(numeric - analytic) > 3e-3 + 3e-2 * max(abs(numeric), abs(analytic)) {
                failures.append("[\(index)] numeric \(numeric) analytic \(analytic)")
            }
        }
        XCTAssertEqual(checked, 40)
        XCTAssertLessThanOrEqual(failures.count, 1, failures.joined(separator: "; "))
        XCTAssertTrue(straightThrough.contains { $0 != 0 })

        // The codebook part.
        let width = model.codebookDim
        var expected = [Float](repeating: 0, count: codebook.count)
        for row in 0..<(rows.count / width) {
            let entry = Int(indices[row])
            for d in 0..<width {
                expected[entry * width + d] += 2 * scale * (codebook[entry * width + d] - rows[row * width + d])
            }
        }
        XCTAssertLessThan(maxDifference(codebookGradient, expected), 1e-5)
        // Entries nobody chose get nothing.
        let chosen = Set(indices.map(Int.init))
        for entry in 0..<model.codebookSize where !chosen.contains(entry) {
            XCTAssertTrue(codebookGradient[(entry * width)..<((entry + 1) * width)].allSatisfy { $0 == 0 })
        }
    }

    /// The reported vq term is (1 + commitment) * SSE(z_e, z_q), the loss their sum.
    func testLossTerms() throws {
        let (model, images) = try makeModel()
        let pass = try model.forward(images, training: false)
        let terms = try model.losses(pass, target: images).map { try $0.scalar() }
        let sse = zip(try pass.encoded.toArray(), try pass.quantized.toArray()).reduce(0.0) { $0 + pow(Double($1.0 - $1.1), 2) }
        XCTAssertEqual(Double(terms[2]), (1 + Double(model.options.commitment)) * sse, accuracy: 1e-4 * sse)
        XCTAssertEqual(terms[0], terms[1] + terms[2], accuracy: 1e-3 * terms[0])
    }

    /// Training records, per position, which entries the images chose (a moving average);
    /// `generate` samples each position from that record, or uniformly before any training.
    func testUsagePriorRecordsChoicesAndDrivesSampling() throws {
        let (model, images) = try makeModel()
        let untrained = try model.sampleIndices(count: 200, seed: 1)
        XCTAssertGreaterThan(Set(untrained).count, model.codebookSize / 2, "no usage yet: uniform over all entries")
        let pass = try model.forward(images, training: false)
        let chosen = try pass.indices.toArray()
        let batch = images.shape[0], entries = model.codebookSize
        try model.recordUsage(pass.indices, batch: batch)
        let usage = try model.codebook.usage.toArray()
        let weight = 1 - Codebook.usageDecay
        var expected = [Float](repeating: 0, count: usage.count)
        for s in 0..<model.positions {
            for n in 0..<batch { expected[s * entries + Int(chosen[s * batch + n])] += weight }
        }
        XCTAssertLessThan(maxDifference(usage, expected), 1e-6)
        let sampled = try model.sampleIndices(count: 50, seed: 2)
        for s in 0..<model.positions {
            for n in 0..<50 {
                let index = Int(sampled[s * 50 + n])
                XCTAssertGreaterThan(usage[s * entries + index], 0, "position \(s) drew an entry no image chose there")
            }
        }
        XCTAssertEqual(try model.sampleIndices(count: 50, seed: 2), sampled)
        model.samplingPrior = .uniform
        XCTAssertGreaterThan(Set(try model.sampleIndices(count: 200, seed: 1)).count, entries / 2)
        // A training step decays the record and adds the batch.
        _ = try model.trainStep(images: images, labels: [])
        let after = try model.codebook.usage.toArray()
        for s in 0..<model.positions {
            let total = after[(s * entries)..<((s + 1) * entries)].reduce(0, +)
            XCTAssertEqual(total, Float(batch) * (weight + Codebook.usageDecay * weight), accuracy: 1e-5)
        }
    }

    func testGenerateDecodesUniformCodes() throws {
        let (model, _) = try makeModel()
        XCTAssertThrowsError(try model.decode(indices: [0, 1], count: 1))
        XCTAssertThrowsError(try model.decode(indices: [Float](repeating: 99, count: 49), count: 1))
        let images = try model.decode(indices: [Float](repeating: 3, count: 2 * 49), count: 2)
        XCTAssertEqual(images.count, 2 * 784)
        XCTAssertEqual(Array(images[0..<784]), Array(images[784...]), "the same code map decodes to the same image")
    }
}
