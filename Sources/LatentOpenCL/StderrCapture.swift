import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Holds back what a driver prints on file descriptor 2 while `body` runs (PoCL's compiler
/// prints its diagnostics there besides the build log), so the CLI's error stays one line.
/// The text goes to a temporary file, not a pipe, so a talkative driver cannot block.
enum StderrCapture {
    private static let lock = NSLock()

    static func run<T>(_ body: () -> T) -> (T, String) {
        lock.lock()
        defer { lock.unlock() }
        fflush(nil)   // every C stream, stderr among them
        let saved = dup(2)
        guard saved >= 0, let file = tmpfile() else {
            if saved >= 0 { close(saved) }
            return (body(), "")
        }
        defer { fclose(file) }
        guard dup2(fileno(file), 2) >= 0 else {
            close(saved)
            return (body(), "")
        }
        let result = body()
        fflush(nil)   // every C stream, stderr among them
        dup2(saved, 2)
        close(saved)
        var bytes: [UInt8] = []
        rewind(file)
        var chunk = [UInt8](repeating: 0, count: 4096)
        while true {
            let count = fread(&chunk, 1, chunk.count, file)
            if count <= 0 { break }
            bytes.append(contentsOf: chunk[0..<count])
        }
        return (result, String(decoding: bytes, as: UTF8.self))
    }

    /// Writes text held back by `run` to stderr after all (nothing when it is blank).
    static func pass(_ text: String) {
        guard !text.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty else { return }
        FileHandle.standardError.write(Data((text.hasSuffix("\n") ? text : text + "\n").utf8))
    }
}
