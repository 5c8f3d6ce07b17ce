// Shared by every fuzz target (compiled into each one by scripts/fuzz).
import Foundation

/// The input as an array (libFuzzer passes a pointer and a length; the pointer may be
/// null for the empty input).
func fuzzBytes(_ data: UnsafePointer<UInt8>?, _ size: Int) -> [UInt8] {
    guard let data, size > 0 else { return [] }
    return Array(UnsafeBufferPointer(start: data, count: size))
}

/// A fuzz finding that is not a crash: the code broke one of its own promises (a round trip
/// that does not round-trip, an error of a type no caller expects). Abort so libFuzzer keeps
/// the input.
func violated(_ message: String) -> Never {
    FileHandle.standardError.write(Data("fuzz invariant violated: \(message)\n".utf8))
    abort()
}

/// A scratch file per process for readers that take a path (libFuzzer runs one input at a
/// time per process). /dev/shm when there is one: no disk traffic.
func scratchPath(_ name: String) -> String {
    let folder = FileManager.default.fileExists(atPath: "/dev/shm") ? "/dev/shm" : NSTemporaryDirectory()
    return "\(folder)/latent-fuzz-\(getpid())-\(name)"
}

func writeScratch(_ bytes: [UInt8], _ name: String) -> String {
    let path = scratchPath(name)
    guard FileManager.default.createFile(atPath: path, contents: Data(bytes)) else {
        violated("cannot write the scratch file \(path)")
    }
    return path
}
