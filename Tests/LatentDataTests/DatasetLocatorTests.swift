import Foundation
import XCTest
import LatentData

final class DatasetLocatorTests: XCTestCase {
    /// A locator that sees only `environment` and never touches the network or the real
    /// system folder.
    private func locator(_ dataset: DatasetName = .mnist, data: String? = nil,
                         environment: [String: String], system: String) -> DatasetLocator {
        var locator = DatasetLocator(dataset: dataset, dataDirectory: data, environment: environment)
        locator.systemDirectory = system
        locator.mirrors = nil
        return locator
    }

    func testDataOptionWithDatasetSubfolder() throws {
        let root = try makeTemporaryDirectory(self)
        try writeFixtureDataset(in: root + "/data/mnist")
        try writeFixtureDataset(in: root + "/data/fashion-mnist", trainCount: 3)
        let files = try locator(data: root + "/data", environment: ["HOME": root], system: root + "/none").locate()
        XCTAssertEqual(files.origin, "--data")
        XCTAssertEqual(files.directory, root + "/data/mnist")
        XCTAssertEqual(files.trainImages, root + "/data/mnist/train-images-idx3-ubyte.gz")
        XCTAssertEqual(try files.load(.train).count, 12)
        XCTAssertEqual(try files.load(.test).count, 5)
        let fashion = try locator(.fashionMNIST, data: root + "/data", environment: ["HOME": root],
                                  system: root + "/none").locate()
        XCTAssertEqual(try fashion.load(.train).count, 3)
    }

    func testDataOptionHoldingTheFilesItself() throws {
        let root = try makeTemporaryDirectory(self)
        try writeFixtureDataset(in: root + "/flat", gzip: false)
        let files = try locator(data: root + "/flat", environment: ["HOME": root], system: root + "/none").locate()
        XCTAssertEqual(files.directory, root + "/flat")
        XCTAssertEqual(files.testLabels, root + "/flat/t10k-labels-idx1-ubyte")
        // A folder named after the other dataset is not taken for this one.
        try writeFixtureDataset(in: root + "/fashion-mnist")
        assertDataError(try locator(data: root + "/fashion-mnist", environment: ["HOME": root], system: root + "/none")
                            .locate(), contains: ["MNIST not found"])
    }

    func testMistypedDataFolderIsAnError() throws {
        let root = try makeTemporaryDirectory(self)
        try writeFixtureDataset(in: root + "/home/.cache/latent/mnist")
        assertDataError(try locator(data: root + "/dataz", environment: ["HOME": root + "/home"], system: root).locate(),
                        contains: [root + "/dataz", "no such folder"])
    }

    func testSearchOrder() throws {
        let root = try makeTemporaryDirectory(self)
        for place in ["option", "env", "xdg/latent", "system"] {
            try writeFixtureDataset(in: root + "/\(place)/mnist")
        }
        let everything = ["LATENT_DATA": root + "/env", "XDG_CACHE_HOME": root + "/xdg", "HOME": root + "/home"]
        XCTAssertEqual(try locator(data: root + "/option", environment: everything, system: root + "/system")
                        .locate().origin, "--data")
        XCTAssertEqual(try locator(environment: everything, system: root + "/system").locate().origin, "LATENT_DATA")
        var noEnvironment = everything
        noEnvironment["LATENT_DATA"] = nil
        let cached = try locator(environment: noEnvironment, system: root + "/system").locate()
        XCTAssertEqual(cached.origin, "user cache")
        XCTAssertEqual(cached.directory, root + "/xdg/latent/mnist")
        let system = try locator(environment: ["HOME": root + "/home"], system: root + "/system").locate()
        XCTAssertEqual(system.origin, "system")
        XCTAssertEqual(system.directory, root + "/system/mnist")
        // Without XDG_CACHE_HOME the cache is ~/.cache/latent.
        try writeFixtureDataset(in: root + "/home/.cache/latent/mnist")
        XCTAssertEqual(try locator(environment: ["HOME": root + "/home"], system: root + "/system").locate().directory,
                       root + "/home/.cache/latent/mnist")
    }

    func testAlternativeSpellingAndRawPreferred() throws {
        let root = try makeTemporaryDirectory(self)
        let folder = root + "/mnist"
        try writeFixtureDataset(in: folder, gzip: true)
        let fixture = makeFixtureImages(count: 12)
        try IDXFile.write(fixture.images, to: folder + "/train-images-idx3-ubyte")
        try FileManager.default.moveItem(atPath: folder + "/t10k-labels-idx1-ubyte.gz",
                                         toPath: folder + "/t10k-labels.idx1-ubyte.gz")
        let files = try locator(data: root, environment: [:], system: root + "/none").locate()
        XCTAssertEqual(files.trainImages, folder + "/train-images-idx3-ubyte")
        XCTAssertEqual(files.testLabels, folder + "/t10k-labels.idx1-ubyte.gz")
        XCTAssertEqual(try files.load(.test).count, 5)
    }

    func testNothingFoundSaysWhereToPutFiles() throws {
        let root = try makeTemporaryDirectory(self)
        try FileManager.default.createDirectory(atPath: root + "/data/mnist", withIntermediateDirectories: true)
        try IDXFile.write(makeFixtureImages(count: 2).labels, to: root + "/data/mnist/train-labels-idx1-ubyte")
        let search = locator(data: root + "/data", environment: ["HOME": root + "/home"], system: root + "/sys")
        assertDataError(try search.locate(), contains: [
            "MNIST not found",
            root + "/data/mnist (--data; missing train-images-idx3-ubyte, t10k-images-idx3-ubyte, t10k-labels-idx1-ubyte)",
            root + "/home/.cache/latent/mnist (user cache)", root + "/sys/mnist (system)",
            "Put train-images-idx3-ubyte.gz", "in " + root + "/home/.cache/latent/mnist/", "--data DIR", "LATENT_DATA",
            "scripts/fetch-mnist",
        ])
    }

    // MARK: - Real data (skipped where it is absent)

    func testDebianFashionMNISTFromSystemFolder() throws {
        let system = "/usr/share/datasets"
        guard FileManager.default.fileExists(atPath: system + "/fashion-mnist/t10k-labels-idx1-ubyte.gz") else {
            throw XCTSkip("Debian's dataset-fashion-mnist is not installed")
        }
        let root = try makeTemporaryDirectory(self)
        let files = try locator(.fashionMNIST, environment: ["HOME": root], system: system).locate()
        XCTAssertEqual(files.origin, "system")
        let test = try files.load(.test)
        XCTAssertEqual(test.count, 10_000)
        XCTAssertEqual(test.rows, 28)
        XCTAssertEqual(test.cols, 28)
        XCTAssertEqual(test.classCounts(), [Int](repeating: 1000, count: 10))
        XCTAssertEqual(Array(test.labels.prefix(5)), [9, 2, 1, 1, 6])
    }

    func testRealMNISTFromEnvironmentFolder() throws {
        guard let folder = ProcessInfo.processInfo.environment["LATENT_TEST_MNIST"],
              FileManager.default.fileExists(atPath: folder) else {
            throw XCTSkip("set LATENT_TEST_MNIST to a folder with the four MNIST files")
        }
        let root = try makeTemporaryDirectory(self)
        let files = try locator(environment: ["LATENT_DATA": folder, "HOME": root], system: root).locate()
        XCTAssertEqual(files.origin, "LATENT_DATA")
        let train = try files.load(.train)
        let test = try files.load(.test)
        XCTAssertEqual(train.count, 60_000)
        XCTAssertEqual(test.count, 10_000)
        XCTAssertEqual(Array(train.labels.prefix(5)), [5, 0, 4, 1, 9])
        XCTAssertEqual(Array(test.labels.prefix(5)), [7, 2, 1, 0, 4])
        let statistics = train.pixelStatistics()
        XCTAssertEqual(statistics.mean, 0.1307, accuracy: 0.0001)
        XCTAssertEqual(statistics.standardDeviation, 0.3081, accuracy: 0.0001)
        // The label files' content matches the published digests the downloader checks.
        let digests = DatasetMirrors.standard(for: .mnist).contentSHA256
        for split in DatasetSplit.allCases {
            let labels = try IDXFile.read(files.paths(split).labels)
            XCTAssertEqual(SHA256.hexDigest(IDXFile.encode(labels)), digests[split.fileStem(labels: true)])
        }
    }
}
