import Foundation

/// The four files of one dataset, found on disk.
public struct DatasetFiles: Sendable, Equatable {
    public let dataset: DatasetName
    /// The folder holding the files.
    public let directory: String
    /// Where the folder came from, for messages: "--data", "LATENT_DATA", "user cache",
    /// "system", "download".
    public let origin: String
    public let trainImages: String
    public let trainLabels: String
    public let testImages: String
    public let testLabels: String

    /// The images and labels files of `split`.
    public func paths(_ split: DatasetSplit) -> (images: String, labels: String) {
        split == .train ? (trainImages, trainLabels) : (testImages, testLabels)
    }

    /// Loads one split. - Parameter limit: keep the first `limit` images (quick runs).
    public func load(_ split: DatasetSplit, limit: Int? = nil) throws -> Dataset {
        let (images, labels) = paths(split)
        return try Dataset.load(images: images, labels: labels, limit: limit)
    }
}

/// Where a dataset can be downloaded from and how each file is checked.
public struct DatasetMirrors: Sendable {
    /// Base URLs, tried in order; a file's URL is the base followed by `<stem>.gz`.
    public var baseURLs: [String]
    /// SHA-256 of each *uncompressed* IDX file, keyed by stem (`train-images-idx3-ubyte`).
    /// Checking the content rather than the archive accepts any mirror's gzip of the same data.
    public var contentSHA256: [String: String]
    /// Seconds without progress before a mirror is given up.
    public var idleTimeout: Double = 30

    public init(baseURLs: [String], contentSHA256: [String: String], idleTimeout: Double = 30) {
        self.baseURLs = baseURLs
        self.contentSHA256 = contentSHA256
        self.idleTimeout = idleTimeout
    }

    /// The public mirrors torchvision and the dataset authors use, with the published data's digests.
    public static func standard(for dataset: DatasetName) -> DatasetMirrors {
        switch dataset {
        case .mnist:
            DatasetMirrors(
                baseURLs: ["https://ossci-datasets.s3.amazonaws.com/mnist/",
                           "https://storage.googleapis.com/cvdf-datasets/mnist/"],
                contentSHA256: [
                    "train-images-idx3-ubyte": "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
                    "train-labels-idx1-ubyte": "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
                    "t10k-images-idx3-ubyte": "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
                    "t10k-labels-idx1-ubyte": "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
                ])
        case .fashionMNIST:
            DatasetMirrors(
                baseURLs: ["http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
                           "https://raw.githubusercontent.com/zalandoresearch/fashion-mnist/master/data/fashion/"],
                contentSHA256: [
                    "train-images-idx3-ubyte": "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
                    "train-labels-idx1-ubyte": "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
                    "t10k-images-idx3-ubyte": "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
                    "t10k-labels-idx1-ubyte": "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34",
                ])
        }
    }
}

/// Finds a dataset's files, in this order:
/// 1. `--data DIR` (``dataDirectory``): `DIR/<name>/`, or DIR itself holding the four files;
/// 2. the `LATENT_DATA` environment variable, read the same way;
/// 3. the user cache, `$XDG_CACHE_HOME/latent/<name>/` or `~/.cache/latent/<name>/`;
/// 4. `/usr/share/datasets/<name>/`, where Debian's `dataset-fashion-mnist` installs;
/// 5. a download from ``mirrors`` into the user cache, each file checked by SHA-256 and
///    renamed into place only when complete.
///
/// A folder counts when it holds all four standard files, each raw or `.gz`:
/// `train-images-idx3-ubyte`, `train-labels-idx1-ubyte`, `t10k-images-idx3-ubyte`,
/// `t10k-labels-idx1-ubyte` (the `train-images.idx3-ubyte` spelling is accepted too).
/// A folder with only some of them is passed over, and named in the final error.
public struct DatasetLocator: Sendable {
    public var dataset: DatasetName
    /// `--data DIR`, if given.
    public var dataDirectory: String?
    /// The environment to read `LATENT_DATA`, `XDG_CACHE_HOME` and `HOME` from.
    public var environment: [String: String]
    /// Where system packages put datasets.
    public var systemDirectory = "/usr/share/datasets"
    /// Where to download from; nil never downloads.
    public var mirrors: DatasetMirrors?
    /// Receives one line per download step (the command line prints them to stderr).
    public var progress: @Sendable (String) -> Void

    public init(dataset: DatasetName, dataDirectory: String? = nil,
                environment: [String: String] = ProcessInfo.processInfo.environment,
                progress: @escaping @Sendable (String) -> Void = { _ in }) {
        self.dataset = dataset
        self.dataDirectory = dataDirectory
        self.environment = environment
        self.mirrors = .standard(for: dataset)
        self.progress = progress
    }

    /// `$XDG_CACHE_HOME/latent` or `~/.cache/latent`: downloads go to `<this>/<name>/`.
    public var cacheDirectory: String {
        if let xdg = environment["XDG_CACHE_HOME"], xdg.hasPrefix("/") {
            return (xdg as NSString).appendingPathComponent("latent")
        }
        let home = environment["HOME"].flatMap { $0.isEmpty ? nil : $0 } ?? NSHomeDirectory()
        return (home as NSString).appendingPathComponent(".cache/latent")
    }

    /// The folder a download fills, and where files can be put by hand.
    public var downloadDirectory: String {
        (cacheDirectory as NSString).appendingPathComponent(dataset.rawValue)
    }

    /// Finds the files, downloading them as a last resort.
    public func locate() throws -> DatasetFiles {
        // A mistyped --data should not quietly fall back to some other copy of the data.
        if let dataDirectory, !dataDirectory.isEmpty {
            var isDirectory: ObjCBool = false
            guard FileManager.default.fileExists(atPath: dataDirectory, isDirectory: &isDirectory),
                  isDirectory.boolValue else {
                throw DataError.file(dataDirectory, "no such folder (given with --data)")
            }
        }
        var looked: [String] = []
        for (origin, directory, acceptsRoot) in searchRoots() {
            var folders = [(directory as NSString).appendingPathComponent(dataset.rawValue)]
            if acceptsRoot && !isNamedForAnotherDataset(directory) { folders.append(directory) }
            for folder in folders {
                switch DatasetLocator.scan(folder) {
                case .complete(let paths):
                    return files(in: folder, origin: origin, paths: paths)
                case .partial(let missing):
                    looked.append("\(folder) (\(origin); missing \(missing.joined(separator: ", ")))")
                case .absent:
                    if folder == folders[0] { looked.append("\(folder) (\(origin))") }
                }
            }
        }

        guard let mirrors else {
            throw notFound(looked: looked, downloadFailure: nil)
        }
        do {
            try download(from: mirrors)
        } catch {
            throw notFound(looked: looked, downloadFailure: error.description)
        }
        guard case .complete(let paths) = DatasetLocator.scan(downloadDirectory) else {
            throw notFound(looked: looked, downloadFailure: "files vanished after download")
        }
        return files(in: downloadDirectory, origin: "download", paths: paths)
    }

    // MARK: - Searching

    private func searchRoots() -> [(origin: String, directory: String, acceptsRoot: Bool)] {
        var roots: [(String, String, Bool)] = []
        if let dataDirectory, !dataDirectory.isEmpty { roots.append(("--data", dataDirectory, true)) }
        if let fromEnvironment = environment["LATENT_DATA"], !fromEnvironment.isEmpty {
            roots.append(("LATENT_DATA", fromEnvironment, true))
        }
        roots.append(("user cache", cacheDirectory, false))
        roots.append(("system", systemDirectory, false))
        return roots
    }

    /// True for a folder named after a different dataset (`--data x/fashion-mnist` while
    /// asking for mnist): its files must not be taken for this dataset's.
    private func isNamedForAnotherDataset(_ directory: String) -> Bool {
        let last = (directory as NSString).standardizingPath.split(separator: "/").last.map(String.init)
        return DatasetName.allCases.contains { $0 != dataset && $0.rawValue == last }
    }

    private func files(in folder: String, origin: String, paths: [String: String]) -> DatasetFiles {
        func path(_ split: DatasetSplit, _ labels: Bool) -> String { paths[split.fileStem(labels: labels)] ?? "" }
        return DatasetFiles(dataset: dataset, directory: folder, origin: origin,
                            trainImages: path(.train, false), trainLabels: path(.train, true),
                            testImages: path(.test, false), testLabels: path(.test, true))
    }

    enum ScanResult: Equatable {
        case complete([String: String])
        case partial(missing: [String])
        case absent
    }

    static let stems = DatasetSplit.allCases.flatMap { [$0.fileStem(labels: false), $0.fileStem(labels: true)] }

    /// Which of the four files `folder` holds; raw is preferred over `.gz` (it loads faster).
    static func scan(_ folder: String) -> ScanResult {
        let manager = FileManager.default
        var found: [String: String] = [:]
        var missing: [String] = []
        for stem in stems {
            // "train-images.idx3-ubyte" is how several copies (and the mnist-dir package) spell it.
            let dotted = stem.replacingOccurrences(of: "-idx", with: ".idx")
            let candidates = [stem, stem + ".gz", dotted, dotted + ".gz"]
                .map { (folder as NSString).appendingPathComponent($0) }
            var isDirectory: ObjCBool = false
            if let hit = candidates.first(where: { manager.fileExists(atPath: $0, isDirectory: &isDirectory) && !isDirectory.boolValue }) {
                found[stem] = hit
            } else {
                missing.append(stem)
            }
        }
        if missing.isEmpty { return .complete(found) }
        return found.isEmpty ? .absent : .partial(missing: missing)
    }

    private func notFound(looked: [String], downloadFailure: String?) -> DataError {
        let names = DatasetLocator.stems.map { $0 + ".gz" }.joined(separator: ", ")
        var message = "\(dataset.displayName) not found; looked in \(looked.joined(separator: ", "))"
        if let downloadFailure { message += "; download failed: \(downloadFailure)" }
        message += ". Put \(names) (raw or .gz) in \(downloadDirectory)/ or in DIR/\(dataset.rawValue)/ "
            + "and pass --data DIR (or set LATENT_DATA=DIR)"
        if dataset == .mnist { message += ", or run scripts/fetch-mnist" }
        if dataset == .fashionMNIST { message += ", or install Debian's dataset-fashion-mnist" }
        return DataError(message)
    }

    // MARK: - Downloading

    /// Fetches every file the download folder lacks. Each file is verified before it is
    /// written, written under a temporary name, and renamed into place: an interrupted run
    /// leaves no file that a later run would mistake for a good one.
    func download(from mirrors: DatasetMirrors) throws(DataError) {
        let folder = downloadDirectory
        guard !mirrors.baseURLs.isEmpty else { throw DataError("no mirrors configured") }
        let needed: [String]
        switch DatasetLocator.scan(folder) {
        case .complete: needed = []
        case .partial(let missing): needed = missing
        case .absent: needed = DatasetLocator.stems
        }
        var allUnreachable = true
        for stem in needed {
            guard let expected = mirrors.contentSHA256[stem]?.lowercased() else {
                throw DataError("no SHA-256 known for \(stem)")
            }
            var failures: [String] = []
            var fetched = false
            for base in mirrors.baseURLs {
                let address = base.hasSuffix("/") ? base + stem + ".gz" : base + "/" + stem + ".gz"
                guard let url = URL(string: address) else {
                    failures.append("\(address): not a URL")
                    continue
                }
                progress("downloading \(address)")
                do {
                    let body = try HTTPFetch.get(url, idleTimeout: mirrors.idleTimeout,
                                                 maximumBytes: IDXFile.maximumDataBytes)
                    allUnreachable = false
                    let isGzip = body.count >= 2 && body[0] == 0x1f && body[1] == 0x8b
                    let content: [UInt8]
                    do {
                        content = isGzip ? try Zlib.gunzip(body, maximumOutputBytes: IDXFile.maximumDataBytes) : body
                    } catch {
                        failures.append("\(address): \(error)")
                        continue
                    }
                    let digest = SHA256.hexDigest(content)
                    guard digest == expected else {
                        failures.append("\(address): SHA-256 mismatch (got \(digest.prefix(12))…, "
                                        + "expected \(expected.prefix(12))…)")
                        continue
                    }
                    let target = (folder as NSString).appendingPathComponent(isGzip ? stem + ".gz" : stem)
                    do {
                        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
                    } catch {
                        throw DataError.file(folder, "cannot create the download folder: \(describe(error))")
                    }
                    try writeAtomically(body, to: target)
                    progress("saved \(target) (\(body.count) bytes, SHA-256 verified)")
                    fetched = true
                    break
                } catch let failure as HTTPFetch.Failure {
                    if !failure.isNetworkUnreachable { allUnreachable = false }
                    failures.append("\(address): \(failure.description)")
                } catch {
                    throw DataError(describe(error))
                }
            }
            if !fetched {
                let hint = allUnreachable ? " (offline? no mirror could be reached)" : ""
                throw DataError("\(stem)\(hint): \(failures.joined(separator: "; "))")
            }
        }
    }
}
