import Foundation
import XCTest
import LatentData

/// Downloads from a small HTTP server on 127.0.0.1 (Python's http.server, started per test),
/// which serves `<root>/<mode>/<file>`; mode `drop` sends the headers for the whole file,
/// half the body, then hangs up.
final class DownloadTests: XCTestCase {
    private static let serverScript = #"""
    import http.server, os, socket, sys
    root = sys.argv[1]
    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        def do_GET(self):
            mode, _, name = self.path.lstrip("/").partition("/")
            source = "good" if mode == "drop" else mode
            path = os.path.join(root, source, name)
            if not os.path.isfile(path):
                self.send_error(404)
                return
            body = open(path, "rb").read()
            self.send_response(200)
            self.send_header("Content-Type", "application/octet-stream")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if mode == "drop":
                self.wfile.write(body[: len(body) // 2])
                self.wfile.flush()
                self.connection.shutdown(socket.SHUT_RDWR)
                self.close_connection = True
                return
            self.wfile.write(body)
        def log_message(self, *args):
            pass
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    print(server.server_address[1], flush=True)
    server.serve_forever()
    """#

    private var root = ""
    private var baseURL = ""
    private var contentDigests: [String: String] = [:]

    override func setUpWithError() throws {
        root = try makeTemporaryDirectory(self)
        // "good": the fixture files; "wrong": different (valid) files under the same names.
        try writeFixtureDataset(in: root + "/good", trainCount: 12, testCount: 5, gzip: true)
        try writeFixtureDataset(in: root + "/wrong", trainCount: 13, testCount: 6, gzip: true)
        for stem in ["train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"] {
            contentDigests[stem] = SHA256.hexDigest(IDXFile.encode(try IDXFile.read(root + "/good/" + stem + ".gz")))
        }
        let script = root + "/server.py"
        try Data(DownloadTests.serverScript.utf8).write(to: URL(fileURLWithPath: script))
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["python3", script, root]
        let output = Pipe()
        process.standardOutput = output
        process.standardError = FileHandle.nullDevice
        do {
            try process.run()
        } catch {
            throw XCTSkip("python3 is needed for the local HTTP server: \(error)")
        }
        addTeardownBlock {
            process.terminate()
            process.waitUntilExit()
        }
        var portText = ""
        while !portText.hasSuffix("\n") {
            let byte = output.fileHandleForReading.readData(ofLength: 1)
            guard !byte.isEmpty else { throw XCTSkip("python3 could not start the HTTP server") }
            portText += String(decoding: byte, as: UTF8.self)
        }
        baseURL = "http://127.0.0.1:\(portText.trimmingCharacters(in: .whitespacesAndNewlines))/"
    }

    private func locator(mirrors: [String]) -> DatasetLocator {
        var locator = DatasetLocator(dataset: .mnist, environment: ["XDG_CACHE_HOME": root + "/cache"])
        locator.systemDirectory = root + "/no-system"
        locator.mirrors = DatasetMirrors(baseURLs: mirrors, contentSHA256: contentDigests, idleTimeout: 10)
        return locator
    }

    private func cacheContents() -> [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: root + "/cache/latent/mnist")) ?? []).sorted()
    }

    func testDownloadVerifiesAndInstallsIntoTheCache() throws {
        let messages = MessageLog()
        var search = locator(mirrors: [baseURL + "good/"])
        search.progress = { messages.append($0) }
        let files = try search.locate()
        XCTAssertEqual(files.origin, "download")
        XCTAssertEqual(files.directory, root + "/cache/latent/mnist")
        XCTAssertEqual(cacheContents(), ["t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz",
                                         "train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"])
        XCTAssertEqual(try files.load(.train).count, 12)
        XCTAssertTrue(messages.lines.contains { $0.contains("SHA-256 verified") }, "\(messages.lines)")
        // The second time the cache answers; no server needed.
        var offline = locator(mirrors: ["http://127.0.0.1:1/"])
        offline.progress = { _ in XCTFail("no download expected") }
        XCTAssertEqual(try offline.locate().origin, "user cache")
    }

    func testWrongChecksumFallsBackToTheNextMirror() throws {
        let files = try locator(mirrors: [baseURL + "wrong/", baseURL + "good/"]).locate()
        XCTAssertEqual(try files.load(.test).count, 5)
    }

    func testWrongChecksumEverywhereSavesNothing() throws {
        assertDataError(try locator(mirrors: [baseURL + "wrong/"]).locate(),
                        contains: ["MNIST not found", "download failed", baseURL + "wrong/train-images-idx3-ubyte.gz",
                                   "SHA-256 mismatch", "Put train-images-idx3-ubyte.gz"])
        XCTAssertEqual(cacheContents(), [])
    }

    func testDroppedConnectionSavesNothing() throws {
        assertDataError(try locator(mirrors: [baseURL + "drop/"]).locate(),
                        contains: ["download failed", baseURL + "drop/train-images-idx3-ubyte.gz"])
        XCTAssertEqual(cacheContents(), [], "no partial or temporary file may remain")
    }

    func testMissingFileOnMirror() throws {
        assertDataError(try locator(mirrors: [baseURL + "nothing-here/"]).locate(), contains: ["HTTP 404"])
    }

    func testUnreachableMirrorSaysOffline() throws {
        assertDataError(try locator(mirrors: ["http://127.0.0.1:1/"]).locate(),
                        contains: ["offline?", "cannot connect to 127.0.0.1", "Put train-images-idx3-ubyte.gz"])
    }
}

/// Progress lines collected from another thread.
private final class MessageLog: @unchecked Sendable {
    private let lock = NSLock()
    private var stored: [String] = []

    func append(_ line: String) { lock.lock(); stored.append(line); lock.unlock() }
    var lines: [String] { lock.lock(); defer { lock.unlock() }; return stored }
}
