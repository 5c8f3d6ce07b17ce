import Foundation
import LatentCore
import LatentCPU
import LatentData
@testable import LatentModels
import LatentNN
import XCTest

final class PCATests: XCTestCase {
    /// Gaussian numbers from SplitMix64 (Box-Muller), for synthetic data.
    struct Normal {
        var generator: SplitMix64
        mutating func next() -> Double {
            let u1 = (Double(generator.next() >> 11) + 1) * 0x1p-53
            let u2 = Double(generator.next() >> 11) * 0x1p-53
            return (-2 * log(u1)).squareRoot() * cos(2 * .pi * u2)
        }
    }

    /// Data = mean + sum_j a_j sigma_j c_j + small noise with orthonormal c_j: the PCA finds
    /// the c_j (up to sign) and sigma_j, and the mean.
    func testRecoversKnownComponents() throws {
        let dimension = 64, rows = 4000
        let sigmas: [Double] = [3, 2, 1]
        var normal = Normal(generator: SplitMix64(seed: 21))
        // Orthonormal directions by Gram-Schmidt.
        var directions: [[Double]] = []
        for _ in sigmas {
            var v = (0..<dimension).map { _ in normal.next() }
            for u in directions {
                let d = zip(u, v).reduce(0) { $0 + $1.0 * $1.1 }
                v = zip(v, u).map { $0 - d * $1 }
            }
            let norm = v.reduce(0) { $0 + $1 * $1 }.squareRoot()
            directions.append(v.map { $0 / norm })
        }
        let mean = (0..<dimension).map { Double($0) / Double(dimension) }
        var data = [Float](repeating: 0, count: rows * dimension)
        for r in 0..<rows {
            var x = mean
            for (sigma, direction) in zip(sigmas, directions) {
                let a = sigma * normal.next()
                for j in 0..<dimension { x[j] += a * direction[j] }
            }
            for j in 0..<dimension { data[r * dimension + j] = Float(x[j] + 0.01 * normal.next()) }
        }
        let pca = try PrincipalComponents.compute(rowCount: rows, dimension: dimension, components: 3, backend: Zoo.backend,
                                                  chunkSize: 700) { start, count, buffer in
            for i in 0..<(count * dimension) { buffer[i] = data[start * dimension + i] }
        }
        XCTAssertEqual(pca.count, 3)
        for j in 0..<dimension {
            let sample = (0..<rows).reduce(0.0) { $0 + Double(data[$1 * dimension + j]) } / Double(rows)
            XCTAssertEqual(Double(pca.mean[j]), sample, accuracy: 1e-5)
        }
        for (c, (sigma, direction)) in zip(sigmas, directions).enumerated() {
            let component = Array(pca.components[(c * dimension)..<((c + 1) * dimension)])
            let norm = component.reduce(0.0) { $0 + Double($1) * Double($1) }
            XCTAssertEqual(norm, 1, accuracy: 1e-5, "component \(c) is a unit vector")
            let overlap = zip(component, direction).reduce(0.0) { $0 + Double($1.0) * $1.1 }
            XCTAssertGreaterThan(abs(overlap), 0.999, "component \(c)")
            XCTAssertEqual(Double(pca.standardDeviations[c]), sigma, accuracy: 0.05 * sigma, "std \(c)")
            // Sign convention: the largest-magnitude element is positive.
            let largest = component.indices.max { abs(component[$0]) < abs(component[$1]) } ?? 0
            XCTAssertGreaterThan(component[largest], 0)
        }
        for a in 0..<3 {
            for b in (a + 1)..<3 {
                let dot = (0..<dimension).reduce(0.0) { $0 + Double(pca.components[a * dimension + $1]) * Double(pca.components[b * dimension + $1]) }
                XCTAssertEqual(dot, 0, accuracy: 1e-5, "components \(a), \(b) orthogonal")
            }
        }
        // Deterministic: the same data gives the same bits.
        let again = try PrincipalComponents.compute(rowCount: rows, dimension: dimension, components: 3, backend: Zoo.backend,
                                                    chunkSize: 700) { start, count, buffer in
            for i in 0..<(count * dimension) { buffer[i] = data[start * dimension + i] }
        }
        XCTAssertEqual(again, pca)
    }

    /// Subspace iteration agrees with a full Jacobi decomposition on a random symmetric matrix.
    func testTopEigenpairsMatchJacobi() throws {
        let n = 24
        var normal = Normal(generator: SplitMix64(seed: 5))
        var a = [Double](repeating: 0, count: n * n)
        for i in 0..<n { for j in i..<n { let v = normal.next(); a[i * n + j] = v; a[j * n + i] = v } }
        // Make it positive definite with distinct top eigenvalues (a covariance).
        var c = [Double](repeating: 0, count: n * n)
        for i in 0..<n { for j in 0..<n { for k in 0..<n { c[i * n + j] += a[i * n + k] * a[j * n + k] } } }
        let (values, vectors) = PrincipalComponents.topEigenpairs(symmetric: c, dimension: n, count: 4)
        let (allValues, allVectors) = SymmetricEigen.rotations(c, size: n)
        let order = allValues.indices.sorted { allValues[$0] > allValues[$1] }
        for k in 0..<4 {
            XCTAssertEqual(values[k], allValues[order[k]], accuracy: 1e-8 * allValues[order[0]])
            let overlap = (0..<n).reduce(0.0) { $0 + vectors[k * n + $1] * allVectors[$1 * n + order[k]] }
            XCTAssertEqual(abs(overlap), 1, accuracy: 1e-6)
        }
    }

    func testPCADecoderProjectsWithItsBuffersAndNeedsTheData() throws {
        var options = Zoo.options(.pcaDecoder)
        options.latentDim = 3
        let model = try XCTUnwrap(try ModelCatalog.makeModel(options, backend: Zoo.backend, random: RandomSource(seed: 4)) as? PCADecoder)
        let (values, labels) = Zoo.digits(count: 40, seed: 3)
        let images = try Tensor(values, shape: [40, 1, 28, 28], on: Zoo.backend)
        XCTAssertThrowsError(try model.trainStep(images: images, labels: labels)) { error in
            XCTAssertTrue("\(error)".contains("prepare"), "\(error)")
        }
        XCTAssertNotNil(model as NeedsTrainingData?)
        try model.fit(trainingImages: values, count: 40)
        let mean = try model.pca.mean.toArray(), components = try model.pca.components.toArray()
        let codes = try model.encodeMeans(images, labels: labels)
        for n in 0..<40 {
            for k in 0..<3 {
                var expected = 0.0
                for p in 0..<784 { expected += Double(values[n * 784 + p] - mean[p]) * Double(components[k * 784 + p]) }
                XCTAssertEqual(Double(codes[n * 3 + k]), expected, accuracy: 1e-3)
            }
        }
        // The spread of the training projections along each component is pca.std.
        let spreads = try model.pca.standardDeviations.toArray()
        for k in 0..<3 {
            let column = (0..<40).map { Double(codes[$0 * 3 + k]) }
            let average = column.reduce(0, +) / 40
            let std = (column.map { ($0 - average) * ($0 - average) }.reduce(0, +) / 39).squareRoot()
            XCTAssertEqual(Double(spreads[k]), std, accuracy: 1e-3 * std + 1e-5)
        }
        XCTAssertGreaterThanOrEqual(spreads[0], spreads[1])
        XCTAssertGreaterThanOrEqual(spreads[1], spreads[2])
        XCTAssertTrue(try model.trainStep(images: images, labels: labels)[0].scalar().isFinite)

        // A twin whose buffers come from a checkpoint (state dict copy) trains without fitting.
        let twin = try XCTUnwrap(try ModelCatalog.makeModel(options, backend: Zoo.backend, random: RandomSource(seed: 4)) as? PCADecoder)
        for ((name, source), (_, target)) in zip(model.root.stateDict(), twin.root.stateDict()) where name.hasPrefix("pca.") {
            try target.copy(from: try source.toArray())
        }
        XCTAssertTrue(try twin.trainStep(images: images, labels: labels)[0].scalar().isFinite)
    }

    /// `prepare(with:)` on a Dataset (bytes) gives the same PCA as `fit` on the same pixels.
    func testPrepareWithDatasetEqualsFit() throws {
        let options = Zoo.options(.pcaDecoder)
        let dataset = try Zoo.dataset(count: 30, seed: 2)
        let a = try XCTUnwrap(try ModelCatalog.makeModel(options, backend: Zoo.backend, random: RandomSource(seed: 1)) as? PCADecoder)
        let b = try XCTUnwrap(try ModelCatalog.makeModel(options, backend: Zoo.backend, random: RandomSource(seed: 1)) as? PCADecoder)
        try a.prepare(with: dataset)
        try b.fit(trainingImages: dataset.images.map { Float($0) / 255 }, count: dataset.count)
        XCTAssertEqual(try a.pca.components.toArray(), try b.pca.components.toArray())
        XCTAssertEqual(try a.pca.mean.toArray(), try b.pca.mean.toArray())
        var tooWide = options
        tooWide.latentDim = 785
        XCTAssertThrowsError(try ModelCatalog.makeModel(tooWide, backend: Zoo.backend, random: RandomSource(seed: 1)))
    }
}
