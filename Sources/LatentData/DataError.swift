/// A failure the user can act on: a missing, malformed or unreadable data file, a failed
/// download, an image that cannot be written.
///
/// The description is one line that names the file (or URL) and the fault, so the command
/// line can print it as it is and exit with status 1. LatentData keeps its own error type
/// (rather than LatentCore's) so that it can be used and tested on its own.
public struct DataError: Error, CustomStringConvertible, Sendable, Equatable {
    public let description: String

    public init(_ description: String) {
        self.description = description
    }

    /// `<path>: <fault>` — the shape of every file-related message.
    static func file(_ path: String, _ fault: String) -> DataError {
        DataError("\(path): \(fault)")
    }
}
