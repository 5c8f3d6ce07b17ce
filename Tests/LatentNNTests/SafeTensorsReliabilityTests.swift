import Foundation
import LatentCore
import LatentNN
import XCTest

/// Hostile safetensors files (docs/RELIABILITY.md): every one is refused with one line that
/// names the file, and none crashes the reader. Also: AtomicFile leaves no partial file.
final class SafeTensorsReliabilityTests: XCTestCase {
    let entries: [SafeTensors.Entry] = [
        .init(name: "encoder.0.weight", shape: [3, 4], values: (0..<12).map { Float($0) * 0.25 }),
        .init(name: "encoder.0.bias", shape: [3], values: [1, -2, 3]),
        .init(name: "optimizer.steps", shape: [2], values: [7, 7]),
    ]

    func good() throws -> Data { try SafeTensors.encode(entries, metadata: ["format": "latent-checkpoint-1"]) }

    /// A file with `header` (a JSON text, padded) and `payload` after it.
    func file(header: String, payload: [UInt8], headerLength: UInt64? = nil) -> Data {
        var headerBytes = Array(header.utf8)
        while headerBytes.count % 8 != 0 { headerBytes.append(0x20) }
        var length = (headerLength ?? UInt64(headerBytes.count)).littleEndian
        var data = Data(bytes: &length, count: 8)
        data.append(contentsOf: headerBytes)
        data.append(contentsOf: payload)
        return data
    }

    func assertRefused(_ data: Data, _ fragments: [String], file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertThrowsError(try SafeTensors.decode(data, source: "ckpt.safetensors"), file: file, line: line) { error in
            let text = "\(error)"
            XCTAssertTrue(error is LatentError, "\(type(of: error))", file: file, line: line)
            XCTAssertFalse(text.contains("\n"), "one line: \(text)", file: file, line: line)
            XCTAssertTrue(text.contains("ckpt.safetensors"), text, file: file, line: line)
            for fragment in fragments {
                XCTAssertTrue(text.contains(fragment), "'\(fragment)' missing from: \(text)", file: file, line: line)
            }
        }
    }

    func testGoodFileRoundTrips() throws {
        let (decoded, metadata) = try SafeTensors.decode(try good(), source: "ckpt.safetensors")
        XCTAssertEqual(decoded.sorted { $0.name < $1.name }, entries.sorted { $0.name < $1.name })
        XCTAssertEqual(metadata["format"], "latent-checkpoint-1")
    }

    /// A file cut at any length is refused (the typical result of a full disk or a copy
    /// interrupted outside Latent; Latent's own writes are atomic).
    func testEveryTruncationIsRefused() throws {
        let data = try good()
        for length in 0..<data.count {
            XCTAssertThrowsError(try SafeTensors.decode(data.prefix(length), source: "ckpt.safetensors"), "length \(length)")
        }
        assertRefused(data.prefix(5), ["shorter than the 8-byte header length"])
        assertRefused(data.prefix(data.count - 4), ["data offsets outside"])
    }

    func testHeaderLengthThatLies() throws {
        let data = try good()
        var tooLong = data
        tooLong.replaceSubrange(0..<8, with: [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f])
        assertRefused(tooLong, ["header length", "does not fit"])
        var huge = data
        huge.replaceSubrange(0..<8, with: [0, 0, 0, 0, 0, 0, 0, 0x80])   // 2^63: no Int overflow
        assertRefused(huge, ["header length"])
        var short = data
        short.replaceSubrange(0..<8, with: [16, 0, 0, 0, 0, 0, 0, 0])   // cuts the JSON
        assertRefused(short, ["not a JSON object"])
        var zero = data
        zero.replaceSubrange(0..<8, with: [0, 0, 0, 0, 0, 0, 0, 0])
        assertRefused(zero, ["header length 0"])
    }

    func testOffsetsOutOfRangeOverlappingOrWithHoles() {
        let payload = [UInt8](repeating: 0, count: 16)
        assertRefused(file(header: #"{"a":{"dtype":"F32","shape":[4],"data_offsets":[0,32]}}"#, payload: payload),
                      ["'a'", "outside the 16 data bytes"])
        assertRefused(file(header: #"{"a":{"dtype":"F32","shape":[2],"data_offsets":[8,0]}}"#, payload: payload),
                      ["'a'", "outside"])
        assertRefused(file(header: #"{"a":{"dtype":"F32","shape":[2],"data_offsets":[-8,0]}}"#, payload: payload),
                      ["'a'", "outside"])
        assertRefused(file(header: #"{"a":{"dtype":"F32","shape":[4],"data_offsets":[0,16]},"b":{"dtype":"F32","shape":[2],"data_offsets":[8,16]}}"#,
                           payload: payload), ["overlaps"])
        assertRefused(file(header: #"{"a":{"dtype":"F32","shape":[2],"data_offsets":[8,16]}}"#, payload: payload), ["hole"])
        assertRefused(file(header: #"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}"#, payload: payload),
                      ["8 bytes of trailing data"])
        assertRefused(file(header: #"{"a":{"dtype":"F32","shape":[3],"data_offsets":[0,16]}}"#, payload: payload),
                      ["shape (3)", "needs 12 bytes", "span 16"])
        assertRefused(file(header: #"{"a":{"dtype":"F32","shape":[4],"data_offsets":[0.5,16]}}"#, payload: payload), ["outside"])
        assertRefused(file(header: #"{"a":{"dtype":"F32","shape":[4],"data_offsets":[0,1e300]}}"#, payload: payload), ["outside"])
    }

    func testWrongDtypeAndBadShapes() {
        let payload = [UInt8](repeating: 0, count: 16)
        assertRefused(file(header: #"{"a":{"dtype":"F16","shape":[8],"data_offsets":[0,16]}}"#, payload: payload),
                      ["dtype F16", "F32 only"])
        assertRefused(file(header: #"{"a":{"dtype":"I64","shape":[2],"data_offsets":[0,16]}}"#, payload: payload), ["dtype I64"])
        assertRefused(file(header: #"{"a":{"shape":[4],"data_offsets":[0,16]}}"#, payload: payload), ["no dtype"])
        assertRefused(file(header: #"{"a":{"dtype":"F32","shape":[-4],"data_offsets":[0,16]}}"#, payload: payload), ["bad dimension"])
        assertRefused(file(header: #"{"a":{"dtype":"F32","shape":[2.5],"data_offsets":[0,16]}}"#, payload: payload), ["bad dimension"])
        assertRefused(file(header: #"{"a":{"dtype":"F32","shape":["4"],"data_offsets":[0,16]}}"#, payload: payload), ["bad dimension"])
        // Dimensions whose product overflows Int, or is far larger than the file.
        assertRefused(file(header: #"{"a":{"dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[0,16]}}"#, payload: payload),
                      ["too large"])
        assertRefused(file(header: #"{"a":{"dtype":"F32","shape":[4611686018427387904],"data_offsets":[0,16]}}"#, payload: payload),
                      ["bad dimension"])
        // 2^62 elements: the byte count (2^64) overflows; it used to trap while writing this message.
        assertRefused(file(header: #"{"a":{"dtype":"F32","shape":[2147483648,2147483648],"data_offsets":[0,0]}}"#, payload: []),
                      ["needs more than", "span 0"])
        assertRefused(file(header: #"{"a":{"dtype":"F32","shape":[4],"data_offsets":[0]}}"#, payload: payload), ["lacks shape or data_offsets"])
        assertRefused(file(header: #"{"a":7}"#, payload: payload), ["not an object"])
        assertRefused(file(header: #"[1,2]"#, payload: payload), ["not a JSON object"])
        assertRefused(file(header: #"{"__metadata__":{"k":1}}"#, payload: []), ["metadata 'k' is not a string"])
        assertRefused(file(header: #"{"__metadata__":[]}"#, payload: []), ["__metadata__ is not an object"])
        assertRefused(file(header: "{\u{1}}", payload: []), ["not a JSON object"])
        // A name with a newline must not break the one-line message.
        assertRefused(file(header: #"{"evil\nname":{"dtype":"F16","shape":[8],"data_offsets":[0,16]}}"#, payload: payload),
                      [#"'evil\u{a}name'"#])
    }

    // MARK: - AtomicFile

    func temporaryFolder() throws -> URL {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("latent-atomic-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        addTeardownBlock { try? FileManager.default.removeItem(at: url) }
        return url
    }

    /// A 64 KiB tmpfs (needs root and mount(8); skipped otherwise): the disk-full case.
    func tinyFilesystem() throws -> URL {
        let folder = try temporaryFolder()
        guard getuid() == 0, FileManager.default.isExecutableFile(atPath: "/bin/mount") else {
            throw XCTSkip("a tmpfs needs root and /bin/mount")
        }
        guard run("/bin/mount", ["-t", "tmpfs", "-o", "size=64k", "tmpfs", folder.path]) == 0 else {
            throw XCTSkip("mount -t tmpfs failed (no CAP_SYS_ADMIN in this container?)")
        }
        addTeardownBlock { _ = self.run("/bin/umount", [folder.path]) }
        return folder
    }

    func run(_ tool: String, _ arguments: [String]) -> Int32 {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: tool)
        process.arguments = arguments
        process.standardError = FileHandle.nullDevice
        guard (try? process.run()) != nil else { return -1 }
        process.waitUntilExit()
        return process.terminationStatus
    }

    func testAtomicWriteOnFullDiskKeepsOldFileAndLeavesNoTemporary() throws {
        let folder = try tinyFilesystem()
        let target = folder.appendingPathComponent("checkpoint.safetensors")
        let old = Data(repeating: 1, count: 8 * 1024)
        try AtomicFile.write(old, to: target)
        XCTAssertThrowsError(try AtomicFile.write(Data(repeating: 2, count: 200 * 1024), to: target)) { error in
            let text = "\(error)"
            XCTAssertTrue(text.contains("No space left on device"), text)
            XCTAssertTrue(text.contains(target.path), text)
            XCTAssertFalse(text.contains("\n"), text)
        }
        XCTAssertEqual(try Data(contentsOf: target), old, "the old file survives a failed replacement")
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: folder.path), ["checkpoint.safetensors"],
                       "no temporary file is left behind")
    }

    func testAtomicWriteIntoReadOnlyFolder() throws {
        let folder = try tinyFilesystem()
        XCTAssertEqual(run("/bin/mount", ["-o", "remount,ro", folder.path]), 0)
        XCTAssertThrowsError(try AtomicFile.write(Data([1, 2, 3]), to: folder.appendingPathComponent("a.png"))) { error in
            let text = "\(error)"
            XCTAssertTrue(text.contains("Read-only file system"), text)
            XCTAssertTrue(text.contains("a.png"), text)
        }
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: folder.path), [])
    }

    func testAtomicWriteIntoMissingFolder() throws {
        let target = try temporaryFolder().appendingPathComponent("no/such/folder/file.png")
        XCTAssertThrowsError(try AtomicFile.write(Data([1]), to: target)) { error in
            XCTAssertTrue("\(error)".contains("No such file or directory"), "\(error)")
        }
    }

    /// A process killed in the middle of a write leaves `.NAME.tmp-PID`; the next run removes
    /// it, but never a temporary file of a process that still runs.
    func testStaleTemporaryFilesOfDeadProcessesAreRemoved() throws {
        let folder = try temporaryFolder()
        // A pid that is not running: a child that has exited and been reaped.
        let child = Process()
        child.executableURL = URL(fileURLWithPath: "/bin/true")
        try child.run()
        child.waitUntilExit()
        let dead = child.processIdentifier
        let live = getpid()
        for name in [".checkpoint.safetensors.tmp-\(dead)", ".metrics.jsonl.tmp-\(live)", "checkpoint.safetensors", ".x.tmp-abc"] {
            XCTAssertTrue(FileManager.default.createFile(atPath: folder.appendingPathComponent(name).path, contents: Data([0])))
        }
        XCTAssertEqual(AtomicFile.removeStale(in: folder), [".checkpoint.safetensors.tmp-\(dead)"])
        XCTAssertEqual(Set(try FileManager.default.contentsOfDirectory(atPath: folder.path)),
                       [".metrics.jsonl.tmp-\(live)", "checkpoint.safetensors", ".x.tmp-abc"])
    }
}
