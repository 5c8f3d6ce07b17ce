// Fuzz target: the gzip and zlib paths (LatentData's Inflater over the system zlib).
//
// Promises checked: any input inflates or throws DataError, within the output limit; a
// streaming read in small, odd-sized pieces gives the same bytes as a one-shot inflate
// (the IDX reader reads the header, then the data, then checks for trailing bytes); and
// compressing the input round-trips through both formats.
import Foundation
@testable import LatentData

let outputLimit = 1 << 22

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzGzip(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let input = fuzzBytes(data, size)
    for format in [Inflater.Format.gzip, .zlib] {
        var whole: [UInt8]?
        do {
            whole = try Zlib.inflateAll(input, format: format, maximumOutputBytes: outputLimit)
            if let whole, whole.count > outputLimit { violated("inflated past the limit") }
        } catch is DataError {
        } catch {
            violated("unexpected error type \(type(of: error)): \(error)")
        }
        // Streaming in pieces of 1...64 bytes (the piece size comes from the input).
        let piece = 1 + Int(input.first ?? 0) % 64
        var streamed: [UInt8] = []
        var failed = false
        do {
            let inflater = try Inflater(input: OwnedBytes(copying: input), format: format, name: "fuzz-input")
            var chunk = [UInt8](repeating: 0, count: piece)
            while streamed.count <= outputLimit {
                let got = try chunk.withUnsafeMutableBytes { try inflater.read(into: $0) }
                if got == 0 { break }
                streamed += chunk[0..<got]
            }
        } catch is DataError {
            failed = true
        } catch {
            violated("unexpected error type \(type(of: error)): \(error)")
        }
        if let whole, failed || streamed != whole {
            violated("streaming inflate disagrees with one-shot inflate (\(format))")
        }
    }
    // Round trips.
    do {
        if try Zlib.gunzip(Zlib.gzip(input, level: Int(input.last ?? 6) % 10), maximumOutputBytes: input.count) != input {
            violated("gzip does not round-trip")
        }
        if try Zlib.decompress(Zlib.compress(input), maximumOutputBytes: input.count) != input {
            violated("zlib does not round-trip")
        }
    } catch {
        violated("inflating our own output failed: \(error)")
    }
    return 0
}
