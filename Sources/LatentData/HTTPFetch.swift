import Dispatch
import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

/// One blocking HTTP(S) GET through URLSession (libcurl on Linux), for dataset downloads.
///
/// URLSession rather than a socket client of our own because the public mirrors are HTTPS;
/// blocking because the callers (command-line tools) have nothing else to do meanwhile.
enum HTTPFetch {
    /// Why a fetch failed; `isNetworkUnreachable` separates "offline?" from a bad mirror.
    struct Failure: Error, CustomStringConvertible {
        let description: String
        let isNetworkUnreachable: Bool
    }

    /// The body of a 200 response to a GET of `url`.
    /// - Parameters:
    ///   - idleTimeout: seconds without any progress before giving up.
    ///   - maximumBytes: a larger announced body is refused before it is received.
    static func get(_ url: URL, idleTimeout: Double, maximumBytes: Int) throws(Failure) -> [UInt8] {
        let configuration = URLSessionConfiguration.ephemeral
        configuration.timeoutIntervalForRequest = idleTimeout
        configuration.timeoutIntervalForResource = max(idleTimeout, 1800)
        configuration.requestCachePolicy = .reloadIgnoringLocalCacheData
        let session = URLSession(configuration: configuration)
        defer { session.finishTasksAndInvalidate() }

        let outcome = Outcome()
        let task = session.dataTask(with: url) { data, response, error in
            outcome.finish(data: data, response: response, error: error)
        }
        task.resume()
        outcome.wait()
        let (data, response, error) = outcome.result

        if let error {
            throw describe(error, url: url)
        }
        guard let http = response as? HTTPURLResponse else {
            throw Failure(description: "no HTTP response", isNetworkUnreachable: false)
        }
        guard http.statusCode == 200 else {
            throw Failure(description: "HTTP \(http.statusCode)", isNetworkUnreachable: false)
        }
        let body = data ?? Data()
        if http.expectedContentLength >= 0 && Int64(body.count) != http.expectedContentLength {
            throw Failure(description: "connection dropped: received \(body.count) of \(http.expectedContentLength) bytes",
                          isNetworkUnreachable: false)
        }
        guard body.count <= maximumBytes else {
            throw Failure(description: "response of \(body.count) bytes is larger than any dataset file",
                          isNetworkUnreachable: false)
        }
        return [UInt8](body)
    }

    private static func describe(_ error: Error, url: URL) -> Failure {
        let host = url.host ?? url.absoluteString
        guard let urlError = error as? URLError else {
            return Failure(description: "\(error.localizedDescription)", isNetworkUnreachable: false)
        }
        switch urlError.code {
        case .notConnectedToInternet:
            return Failure(description: "no network connection", isNetworkUnreachable: true)
        case .cannotFindHost, .dnsLookupFailed:
            return Failure(description: "cannot resolve host \(host)", isNetworkUnreachable: true)
        case .cannotConnectToHost:
            return Failure(description: "cannot connect to \(host)", isNetworkUnreachable: true)
        case .timedOut:
            return Failure(description: "timed out", isNetworkUnreachable: true)
        case .networkConnectionLost:
            return Failure(description: "connection dropped mid-transfer", isNetworkUnreachable: false)
        default:
            return Failure(description: urlError.localizedDescription, isNetworkUnreachable: false)
        }
    }

    /// The completion handler's results, handed from URLSession's queue to the waiting caller.
    /// The semaphore orders the single write before the single read.
    private final class Outcome: @unchecked Sendable {
        private let done = DispatchSemaphore(value: 0)
        private(set) var result: (Data?, URLResponse?, Error?) = (nil, nil, nil)

        func finish(data: Data?, response: URLResponse?, error: Error?) {
            result = (data, response, error)
            done.signal()
        }

        func wait() { done.wait() }
    }
}
