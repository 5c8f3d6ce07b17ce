import Foundation
import LatentCore
import LatentCPU
import LatentData
@testable import LatentModels
import LatentNN
import XCTest

final class ClassifierTests: XCTestCase {
    /// The device-side softmax cross-entropy against a host log-sum-exp, its gradient
    /// against softmax - onehot, and the error count against a host argmax (ties to the
    /// lowest index).
    func testSoftmaxCrossEntropyMatchesHost() throws {
        let rows = 7, classes = 10
        var generator = SplitMix64(seed: 31)
        var logits = (0..<(rows * classes)).map { _ in Float(Int64(generator.next() % 2001) - 1000) / 100 }
        // A tie in row 0 (classes 2 and 5), and a confident row 1 (logit 40 above the rest).
        for c in 0..<classes { logits[c] = 0 }
        logits[2] = 3; logits[5] = 3
        logits[classes + 7] = 40
        let labels: [UInt8] = [5, 7, 0, 1, 2, 3, 9]
        var oneHot: Tensor?
        let targets = try ModelSupport.oneHot(labels, classes: classes, into: &oneHot, backend: Zoo.backend)
        let entropy = try SoftmaxCrossEntropy(classes: classes, backend: Zoo.backend)
        let input = try Tensor(logits, shape: [rows, classes], on: Zoo.backend)
        let (loss, errors) = try entropy.forward(input, targets: targets)
        let gradient = try entropy.backward(scale: 1 / Float(rows)).toArray()

        var expectedLoss = 0.0, expectedErrors = 0
        var expectedGradient = [Float](repeating: 0, count: rows * classes)
        for r in 0..<rows {
            let row = logits[(r * classes)..<((r + 1) * classes)].map(Double.init)
            let top = row.max() ?? 0
            let sum = row.reduce(0) { $0 + exp($1 - top) }
            expectedLoss += top + log(sum) - row[Int(labels[r])]
            let argmax = row.indices.first { row[$0] == top } ?? 0
            if argmax != Int(labels[r]) { expectedErrors += 1 }
            for c in 0..<classes {
                let p = exp(row[c] - top) / sum
                expectedGradient[r * classes + c] = Float((p - (c == Int(labels[r]) ? 1 : 0)) / Double(rows))
            }
        }
        XCTAssertEqual(Double(try loss.scalar()), expectedLoss, accuracy: 1e-4 * expectedLoss)
        XCTAssertEqual(try errors.scalar(), Float(expectedErrors))
        XCTAssertLessThan(maxDifference(gradient, expectedGradient), 1e-6)
        // Row 0's tie resolves to class 2, so label 5 counts as an error.
        XCTAssertGreaterThanOrEqual(expectedErrors, 1)
        let probabilities = try entropy.probabilities(input).toArray()
        for r in 0..<rows {
            XCTAssertEqual(probabilities[(r * classes)..<((r + 1) * classes)].reduce(0, +), 1, accuracy: 1e-5)
        }
    }

    /// A handful of steps on separable synthetic digits drive the training error down.
    func testLearnsSyntheticDigits() throws {
        var options = Zoo.options(.classifier)
        options.dropout = 0
        let model = try XCTUnwrap(try Zoo.make(options) as? Classifier)
        let (images, labels) = try Zoo.batch(for: model, count: 10, seed: 13)
        var errors: [Float] = []
        for _ in 0..<8 {
            errors.append(try model.trainStep(images: images, labels: labels)[1].scalar())
        }
        let final = try model.evaluate(images: images, labels: labels)
        XCTAssertLessThan(try final[1].scalar(), max(errors[0], 1), "errors \(errors)")
        let predictions = try model.predict(images)
        let correct = zip(predictions, labels).filter { row, label in
            row.indices.max { row[$0] < row[$1] } == Int(label)
        }.count
        XCTAssertEqual(Float(10 - correct), try final[1].scalar(), "error_rate counts the argmax mistakes")
    }
}
