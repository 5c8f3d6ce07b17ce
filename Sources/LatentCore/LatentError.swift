/// Every failure Latent reports to a user: one line that says what went wrong and,
/// where it can, what to do about it. The CLI prints `description` and exits 1.
public enum LatentError: Error, CustomStringConvertible, Equatable, Sendable {
    /// Tensor shapes that do not fit the operation.
    case shape(String)
    /// An argument outside the range the operation accepts.
    case invalidArgument(String)
    /// A backend that cannot start or run (no device, a failed kernel build, out of memory).
    case backend(String)
    /// A file that cannot be read or written.
    case io(String)
    /// A loss or gradient that stopped being finite.
    case nonFinite(String)

    public var description: String {
        switch self {
        case .shape(let message): return "shape error: \(message)"
        case .invalidArgument(let message): return "invalid argument: \(message)"
        case .backend(let message): return "backend error: \(message)"
        case .io(let message): return "I/O error: \(message)"
        case .nonFinite(let message): return "non-finite value: \(message)"
        }
    }
}
