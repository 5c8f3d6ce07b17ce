import Foundation
import LatentCore
import LatentData
import LatentExplore
import LatentModels
import LatentNN
import XCTest

/// Each explore command's picture on a tiny checkpoint: rows, columns, pixel size, and the
/// one-line errors for models that cannot draw it.
final class PictureGeometryTests: XCTestCase {
    func load(_ kind: ModelKind, latent: Int? = nil) throws -> LoadedModel {
        try LoadedModel.load(try Explore.checkpoint(kind, latent: latent, test: self).path, backend: Explore.backend)
    }

    func testSamplesGridAndIDXBytesInBatches() throws {
        let loaded = try load(.vaeFC)
        let table = try Pictures.samples(loaded.model, count: 10, columns: 4, seed: 3)
        XCTAssertEqual([table.rows, table.columns], [3, 4])
        let image = table.render(scale: 2, padding: 2)
        XCTAssertEqual(image.width, 2 * (4 * 30 + 2))
        XCTAssertEqual(image.height, 2 * (3 * 30 + 2))
        XCTAssertEqual(table.renderedSize().width, image.width)
        // The last two cells are empty (black).
        XCTAssertTrue(table.cell(row: 2, column: 3).allSatisfy { $0 == 0 })

        // More than one batch of 500, written as IDX3 bytes.
        let images = try LatentOps.samples(loaded.model, count: 600, seed: 3)
        XCTAssertEqual(images.count, 600 * 784)
        XCTAssertTrue(images.allSatisfy { $0 >= 0 && $0 <= 1 })
        let url = try Explore.temporaryFolder(self).appendingPathComponent("samples.idx")
        try IDXFile.write(IDXArray(dimensions: [600, 28, 28], bytes: LatentOps.bytes(images)), to: url.path)
        let back = try IDXFile.read(url.path)
        XCTAssertEqual(back.dimensions, [600, 28, 28])
        XCTAssertEqual(try Data(contentsOf: url).count, 16 + 600 * 784)
        // The first batch is the same whichever count is asked for.
        let few = try LatentOps.samples(loaded.model, count: 5, seed: 3)
        XCTAssertEqual(Array(images.prefix(5 * 784)), few)
    }

    func testLabelledSamplesNeedAConditionalModel() throws {
        let cvae = try load(.cvae)
        XCTAssertEqual(try LatentOps.samples(cvae.model, count: 7, seed: 1, label: 3).count, 7 * 784)
        let rows = try Pictures.classRows(cvae.model, perClass: 6, seed: 1)
        XCTAssertEqual([rows.rows, rows.columns], [10, 6])
        let designed = try load(.designedLatent)
        XCTAssertEqual([try Pictures.classRows(designed.model, perClass: 4, seed: 1).rows], [10])
        let vae = try load(.vaeFC)
        XCTAssertThrowsError(try LatentOps.samples(vae.model, count: 3, seed: 1, label: 3)) { error in
            XCTAssertTrue("\(error)".contains("conditional"), "\(error)")
        }
    }

    func testReconstructionsInterleaveRowsAndDump() throws {
        let loaded = try load(.ae)
        let model = try loaded.reconstructor(for: "reconstruct")
        let data = try Explore.dataset(count: 20, seed: 4)
        let result = try Pictures.reconstructions(model, dataset: data, indices: Array(0..<5), columns: 4)
        XCTAssertEqual([result.table.rows, result.table.columns], [4, 4])
        // Row 0 holds the originals, row 1 their reconstructions, rows 2 and 3 the fifth image.
        XCTAssertEqual(Array(result.table.cell(row: 0, column: 1)), Array(ImageTable.image(result.inputs, 1)))
        XCTAssertEqual(Array(result.table.cell(row: 1, column: 1)), Array(ImageTable.image(result.outputs, 1)))
        XCTAssertEqual(Array(result.table.cell(row: 2, column: 0)), Array(ImageTable.image(result.inputs, 4)))
        XCTAssertEqual(Array(result.table.cell(row: 3, column: 0)), Array(ImageTable.image(result.outputs, 4)))

        let url = try Explore.temporaryFolder(self).appendingPathComponent("dump.safetensors")
        try result.writeDump(to: url, model: loaded.options.model, checkpoint: loaded.source)
        let (entries, metadata) = try SafeTensors.read(url)
        XCTAssertEqual(metadata["function"], "reconstruct")
        XCTAssertEqual(metadata["model"], "ae")
        XCTAssertEqual(entries.map(\.name).sorted(), ["input", "labels", "output"])
        XCTAssertEqual(entries.first { $0.name == "output" }?.shape, [5, 1, 28, 28])
        XCTAssertEqual(entries.first { $0.name == "labels" }?.values, data.labels.prefix(5).map(Float.init))
    }

    func testDenoiseAddsNoiseToTheInputs() throws {
        let loaded = try load(.vaeFC)
        let model = try loaded.reconstructor(for: "denoise")
        let data = try Explore.dataset(count: 12, seed: 4)
        let clean = try Pictures.reconstructions(model, dataset: data, indices: Array(0..<6), columns: 3)
        let noisy = try Pictures.reconstructions(model, dataset: data, indices: Array(0..<6), columns: 3, noise: 0.3, seed: 2)
        XCTAssertEqual([noisy.table.rows, noisy.table.columns], [4, 3])
        let changed = zip(clean.inputs, noisy.inputs).filter { $0 != $1 }.count
        XCTAssertGreaterThan(changed, 6 * 784 / 10, "about 15 % of the pixels should change")
        XCTAssertLessThan(changed, 6 * 784 / 4)
    }

    func testInterpolationRowsStartAndEndWithTheImages() throws {
        let loaded = try load(.vaeFC)
        let model = try loaded.encoder(for: "interpolate")
        let data = try Explore.dataset(count: 30, seed: 5)
        let pairs = try Pictures.interpolationPairs(data, count: 3)
        XCTAssertEqual(pairs.count, 3)
        for (a, b) in pairs { XCTAssertNotEqual(data.labels[a], data.labels[b]) }
        let table = try Pictures.interpolation(model, dataset: data, pairs: pairs, steps: 5)
        XCTAssertEqual([table.rows, table.columns], [3, 7])
        let (images, _) = try LatentOps.images(data, indices: [pairs[1].0, pairs[1].1])
        XCTAssertEqual(Array(table.cell(row: 1, column: 0)), Array(ImageTable.image(images, 0)))
        XCTAssertEqual(Array(table.cell(row: 1, column: 6)), Array(ImageTable.image(images, 1)))
        // The first decoded step is the first image's own reconstruction.
        let reconstruction = try LatentOps.reconstruct(try loaded.reconstructor(for: "x"), images: Array(ImageTable.image(images, 0)), labels: [0])
        XCTAssertLessThan(maxDifference(Array(table.cell(row: 1, column: 1)), reconstruction), 1e-5)
    }

    func testSweepNeedsALatentOfOne() throws {
        let loaded = try load(.vaeFC, latent: 1)
        let model = try loaded.decoder(for: "sweep", dimensions: 1)
        let table = try Pictures.sweep(model, from: -20, to: 20, steps: 25, columns: 10)
        XCTAssertEqual([table.rows, table.columns], [3, 10])
        XCTAssertEqual(LatentOps.linspace(-1.5, 1.5, 101)[1], -1.47, accuracy: 1e-12)
        let two = try load(.vaeFC, latent: 2)
        XCTAssertThrowsError(try two.decoder(for: "sweep", dimensions: 1)) { error in
            XCTAssertTrue(error is ExploreError)
            XCTAssertTrue("\(error)".contains("1-D latent space") && "\(error)".contains("--latent-dim 1"), "\(error)")
            XCTAssertFalse("\(error)".contains("\n"))
        }
    }

    func testManifoldIsASquareWithZ2GrowingUpwards() throws {
        let loaded = try load(.vaeFC, latent: 2)
        let model = try loaded.decoder(for: "manifold", dimensions: 2)
        let table = try Pictures.manifold(model, range: 3, steps: 4)
        XCTAssertEqual([table.rows, table.columns], [4, 4])
        // The bottom-left cell is z = (-3, -3), the top-right (3, 3).
        let corners = try LatentOps.decode(model, codes: [-3, -3, 3, 3])
        XCTAssertEqual(Array(table.cell(row: 3, column: 0)), Array(ImageTable.image(corners, 0)))
        XCTAssertEqual(Array(table.cell(row: 0, column: 3)), Array(ImageTable.image(corners, 1)))
        let three = try load(.vaeFC, latent: 3)
        XCTAssertThrowsError(try three.decoder(for: "manifold", dimensions: 2))
    }

    func testCentroidRowsOnePerNoiseLevel() throws {
        let loaded = try load(.ae)
        let decoder = try loaded.decoder(for: "centroids")
        let data = try Explore.dataset(count: 60, seed: 6)
        let centroids = try Pictures.centroids(decoder, dataset: data)
        XCTAssertEqual(centroids.counts.reduce(0, +), 60)
        XCTAssertEqual(centroids.centers.count, 10)
        let table = try Pictures.centroidRows(decoder, centroids: centroids, noise: [0.5, 1, 2], relative: true, seed: 1)
        XCTAssertEqual([table.rows, table.columns], [4, 10])
        let clean = try LatentOps.decode(decoder, codes: centroids.centers.flatMap { $0 })
        for k in 0..<10 { XCTAssertEqual(Array(table.cell(row: 0, column: k)), Array(ImageTable.image(clean, k))) }
        XCTAssertNotEqual(Array(table.cell(row: 3, column: 2)), Array(ImageTable.image(clean, 2)))

        // The designed latent space has centroids without data; a GAN has none.
        let designed = try load(.designedLatent)
        let designedCentroids = try Pictures.centroids(try designed.decoder(for: "centroids"), dataset: nil)
        XCTAssertEqual(designedCentroids.centers[4], [Float](repeating: 4, count: 3))
        let gan = try load(.ganMLP)
        XCTAssertThrowsError(try Pictures.centroids(try gan.decoder(for: "centroids"), dataset: data))
    }

    func testScatterUsesThePrincipalPlaneAboveTwoDimensions() throws {
        let data = try Explore.dataset(count: 40, seed: 7)
        let pca = try load(.pcaDecoder)
        let (chart, x, y, explained) = try Pictures.scatter(try pca.encoder(for: "scatter"), dataset: data)
        XCTAssertEqual(x.count, 40)
        XCTAssertEqual(y.count, 40)
        XCTAssertNotNil(explained)
        XCTAssertGreaterThan(explained ?? 0, 0.5)
        XCTAssertLessThanOrEqual(explained ?? 2, 1 + 1e-9)
        XCTAssertTrue(chart.xLabel.hasPrefix("PC1"))
        let image = chart.render()
        XCTAssertEqual([image.width, image.height], [800, 640])

        let one = try load(.vaeFC, latent: 1)
        let (_, _, jittered, none) = try Pictures.scatter(try one.encoder(for: "scatter"), dataset: data)
        XCTAssertNil(none)
        for (value, label) in zip(jittered, data.labels) { XCTAssertEqual(value, Double(label), accuracy: 0.31) }

        let gan = try load(.ganMLP)
        XCTAssertThrowsError(try gan.encoder(for: "scatter")) { error in
            XCTAssertEqual("\(error)".components(separatedBy: "\n").count, 1)
            XCTAssertTrue("\(error)".contains("latent scatter needs a model with an encoder"), "\(error)")
            XCTAssertTrue("\(error)".contains("'gan-mlp'"), "\(error)")
        }
    }

    func testCapabilityTableMatchesTheModels() throws {
        for kind in ModelKind.allCases {
            var options = Explore.options(kind)
            options.epochs = 1
            let model = try ModelCatalog.makeModel(options, backend: Explore.backend, random: RandomSource(seed: 1))
            let have = Capability.of(model)
            for capability in Capability.allCases {
                XCTAssertEqual(have.contains(capability), capability.models.contains(kind), "\(kind.rawValue) \(capability.rawValue)")
            }
        }
    }

    func testMissingCheckpointIsOneLine() {
        XCTAssertThrowsError(try LoadedModel.load("/nonexistent/run/checkpoint.safetensors", backend: Explore.backend)) { error in
            XCTAssertEqual("\(error)", "there is no checkpoint at /nonexistent/run/checkpoint.safetensors")
        }
    }

    func testPrincipalPlaneFindsTheLargestDirections() throws {
        // Points mostly along (1, 1, 0, 0)/sqrt 2, then along (0, 0, 1, 0), little elsewhere.
        var generator = SplitMix64(seed: 9)
        func uniform() -> Double { Double(generator.next() >> 11) / Double(1 << 53) - 0.5 }
        var points: [Float] = []
        for _ in 0..<500 {
            let a = 10 * uniform(), b = 3 * uniform(), c = 0.1 * uniform(), d = 0.1 * uniform()
            points += [Float(a + c), Float(a - c), Float(b), Float(d)].map { $0 + 2 }
        }
        let plane = try PrincipalPlane(points: points, dimension: 4)
        XCTAssertEqual(abs(plane.axes[0][0]), 0.5.squareRoot(), accuracy: 1e-3)
        XCTAssertEqual(abs(plane.axes[0][1]), 0.5.squareRoot(), accuracy: 1e-3)
        XCTAssertEqual(abs(plane.axes[1][2]), 1, accuracy: 1e-3)
        XCTAssertGreaterThan(plane.explainedFraction, 0.99)
        XCTAssertEqual(plane.mean[0], 2, accuracy: 0.5)
        // Subspace iteration agrees with Jacobi.
        var covariance = [Double](repeating: 0, count: 16)
        for i in 0..<4 { covariance[i * 4 + i] = Double(4 - i) }
        covariance[1] = 0.5; covariance[4] = 0.5
        let exact = PrincipalPlane.topEigenvalues(covariance, dimension: 4, iterative: false)
        let iterated = PrincipalPlane.topEigenvalues(covariance, dimension: 4, iterative: true)
        XCTAssertEqual(exact[0], iterated[0], accuracy: 1e-9)
        XCTAssertEqual(exact[1], iterated[1], accuracy: 1e-9)
    }

    func testImageTableRefusesTooManyImages() {
        XCTAssertThrowsError(try ImageTable(rows: 1, columns: 2, images: [Float](repeating: 0, count: 3 * 784)))
        XCTAssertThrowsError(try ImageTable(rows: 0, columns: 2))
    }
}

func maxDifference(_ a: [Float], _ b: [Float]) -> Float {
    guard a.count == b.count else { return .infinity }
    return zip(a, b).reduce(0) { max($0, abs($1.0 - $1.1)) }
}
