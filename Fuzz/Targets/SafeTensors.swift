// Fuzz target: the safetensors reader (checkpoints) and the checkpoint metadata on top.
//
// Raw inputs are files as they are; inputs starting with 0xA5 describe a file (see
// `structured`), so that numeric edge cases in shapes and offsets are reached quickly.
// Promises checked: any input decodes or throws LatentError; what decodes re-encodes and
// decodes to the same tensors (bit for bit) and metadata; a decoded file's metadata goes
// through Checkpoint.info without a crash.
import Foundation
import LatentCore
import LatentModels
import LatentNN

func sameBits(_ a: [SafeTensors.Entry], _ b: [SafeTensors.Entry]) -> Bool {
    guard a.count == b.count else { return false }
    for (x, y) in zip(a, b) {
        guard x.name == y.name, x.shape == y.shape, x.values.map(\.bitPattern) == y.values.map(\.bitPattern) else { return false }
    }
    return true
}

/// Numbers where integer arithmetic breaks: 32-bit, 53-bit (JSON doubles) and 64-bit edges.
let edges: [String] = ["0", "1", "2", "3", "4", "7", "8", "16", "255", "-1", "-4", "0.5", "1e300",
                       "65535", "65536", "2147483647", "2147483648", "4294967295", "4294967296",
                       "1073741824", "4611686018427387904", "9007199254740992", "9007199254740993",
                       "9223372036854775807", "9223372036854775808", "18446744073709551616"]

/// Structured mode (first byte 0xA5): the rest of the input picks, byte by byte, a file of a
/// few tensors whose dtype, shape and offsets come from `edges`, with a payload of the
/// length the last byte says. Random bytes rarely spell two 2^31 dimensions in a JSON array;
/// this mode reaches such combinations in seconds.
func structured(_ bytes: ArraySlice<UInt8>) -> Data {
    var cursor = bytes.makeIterator()
    func next() -> Int { Int(cursor.next() ?? 0) }
    func edge() -> String { edges[next() % edges.count] }
    var fields: [String] = []
    for index in 0..<(1 + next() % 3) {
        let dtype = ["F32", "F32", "F32", "F16", "I64", ""][next() % 6]
        let shape = (0..<(next() % 4)).map { _ in edge() }.joined(separator: ",")
        let offsets = next() % 4 == 0 ? edge() : "\(edge()),\(edge())"
        fields.append("\"t\(index)\":{\"dtype\":\"\(dtype)\",\"shape\":[\(shape)],\"data_offsets\":[\(offsets)]}")
    }
    var header = Array(("{" + fields.joined(separator: ",") + "}").utf8)
    while header.count % 8 != 0 { header.append(0x20) }
    var file = Data()
    withUnsafeBytes(of: UInt64(header.count).littleEndian) { file.append(contentsOf: $0) }
    file.append(contentsOf: header)
    file.append(Data(repeating: 0, count: 4 * next()))
    return file
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzSafeTensors(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let raw = fuzzBytes(data, size)
    let input = raw.first == 0xA5 ? structured(raw.dropFirst()) : Data(raw)
    // To keep a structured finding as a regression file: the file it describes.
    if let path = ProcessInfo.processInfo.environment["LATENT_FUZZ_WRITE_FILE"] {
        _ = FileManager.default.createFile(atPath: path, contents: input)
    }
    let decoded: (entries: [SafeTensors.Entry], metadata: [String: String])
    do {
        decoded = try SafeTensors.decode(input, source: "fuzz-input")
    } catch is LatentError {
        return 0
    } catch {
        violated("unexpected error type \(type(of: error)): \(error)")
    }
    do {
        let again = try SafeTensors.decode(try SafeTensors.encode(decoded.entries, metadata: decoded.metadata), source: "re-encoded")
        let order: (SafeTensors.Entry, SafeTensors.Entry) -> Bool = { $0.name < $1.name }
        guard sameBits(again.entries.sorted(by: order), decoded.entries.sorted(by: order)), again.metadata == decoded.metadata else {
            violated("a decoded file does not survive encode and decode")
        }
    } catch {
        violated("re-encoding a decoded file failed: \(error)")
    }
    do {
        _ = try Checkpoint.info(metadata: decoded.metadata, source: "fuzz-input")
    } catch is LatentError {
    } catch {
        violated("unexpected error type \(type(of: error)): \(error)")
    }
    return 0
}
