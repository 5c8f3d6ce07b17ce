import Foundation

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// An n-dimensional array of unsigned bytes as stored in an IDX file (the MNIST format):
/// `00 00 08 nd`, then `nd` big-endian 32-bit sizes, then the bytes in row-major order.
public struct IDXArray: Sendable, Equatable {
    /// Sizes, outermost first: `[count, rows, cols]` for images, `[count]` for labels.
    public let dimensions: [Int]
    /// The elements, row-major; `bytes.count` is the product of `dimensions`.
    public let bytes: [UInt8]

    /// - Precondition: `bytes.count` equals the product of `dimensions` (a programming error
    ///   otherwise: arrays read from files are validated before they are built).
    public init(dimensions: [Int], bytes: [UInt8]) {
        precondition(!dimensions.isEmpty && dimensions.count <= 255, "IDX needs 1...255 dimensions")
        precondition(dimensions.allSatisfy { $0 >= 0 && $0 <= Int(UInt32.max) }, "IDX sizes are 32-bit")
        precondition(dimensions.reduce(1, *) == bytes.count, "IDX size \(dimensions) does not match \(bytes.count) bytes")
        self.dimensions = dimensions
        self.bytes = bytes
    }
}

/// Reading and writing IDX files, raw or gzip-compressed.
///
/// Compression is recognised by content (the gzip signature `1f 8b`), not by the file name,
/// so a misnamed file still reads. Every malformed file gives one ``DataError`` naming the
/// file and the fault. A header is checked against the file before any memory is allocated
/// from it: sizes must be plausible, and a raw file must hold exactly the bytes the header
/// promises (a gzip file at least could, at deflate's maximum ratio of 1032:1); a gzip file
/// is then inflated straight into an array of exactly the promised size.
public enum IDXFile {
    /// The largest array accepted: far above MNIST's 47 MB, far below what a lying header
    /// (up to 2^32 per dimension) could ask for.
    public static let maximumDataBytes = 1 << 30
    /// The largest single dimension other than the first (an image side, say).
    public static let maximumInnerDimension = 1 << 16

    /// Reads an IDX file of unsigned bytes, raw or gzip.
    public static func read(_ path: String) throws -> IDXArray {
        let file = try readWholeFile(path, maximumBytes: maximumDataBytes + 1024)
        return try decode(file, name: path)
    }

    /// Writes `array` as an IDX file, gzip-compressed when `gzip` is true. The file is
    /// written to a temporary name and renamed into place, so readers never see half a file.
    public static func write(_ array: IDXArray, to path: String, gzip: Bool = false) throws {
        let encoded = encode(array)
        try writeAtomically(gzip ? Zlib.gzip(encoded) : encoded, to: path)
    }

    /// The raw IDX bytes of `array`: header then data.
    public static func encode(_ array: IDXArray) -> [UInt8] {
        var out: [UInt8] = [0, 0, 0x08, UInt8(array.dimensions.count)]
        out.reserveCapacity(4 + 4 * array.dimensions.count + array.bytes.count)
        for size in array.dimensions {
            let value = UInt32(size)
            out += [UInt8(value >> 24), UInt8((value >> 16) & 0xff), UInt8((value >> 8) & 0xff), UInt8(value & 0xff)]
        }
        out += array.bytes
        return out
    }

    // MARK: - Decoding

    static func decode(_ file: OwnedBytes, name: String) throws -> IDXArray {
        var source = try ByteSource(file: file, name: name)
        let compressed = source.isCompressed

        var header = [UInt8](repeating: 0, count: 4)
        let headerRead = try header.withUnsafeMutableBytes { try source.read(into: $0) }
        guard headerRead == 4 else {
            throw DataError.file(name, headerRead == 0 && !compressed && file.count == 0
                ? "empty file (expected an IDX header)"
                : "truncated: \(headerRead) bytes, too short for an IDX header")
        }
        let magic = header.reduce(UInt32(0)) { $0 << 8 | UInt32($1) }
        let magicText = "0x" + String(magic, radix: 16).leftPadded(to: 8)
        guard header[0] == 0, header[1] == 0, let elementType = elementTypeNames[header[2]] else {
            throw DataError.file(name, "bad magic number \(magicText): not an IDX file")
        }
        guard header[2] == 0x08 else {
            throw DataError.file(name, "element type \(elementType) (magic \(magicText)) is not supported; "
                                 + "only unsigned byte (0x08) images and labels are")
        }
        let rank = Int(header[3])
        guard (1...4).contains(rank) else {
            throw DataError.file(name, "absurd number of dimensions \(rank) (magic \(magicText)); expected 1 to 4")
        }

        var sizeBytes = [UInt8](repeating: 0, count: 4 * rank)
        let sizesRead = try sizeBytes.withUnsafeMutableBytes { try source.read(into: $0) }
        guard sizesRead == sizeBytes.count else {
            throw DataError.file(name, "truncated: the header ends after \(4 + sizesRead) of \(4 + 4 * rank) bytes")
        }
        let dimensions = (0..<rank).map { index in
            sizeBytes[(4 * index)..<(4 * index + 4)].reduce(0) { $0 << 8 | Int($1) }
        }
        let shapeText = dimensions.map(String.init).joined(separator: " x ")

        if dimensions.contains(0) {
            throw DataError.file(name, "absurd dimensions \(shapeText): a size of zero")
        }
        if let inner = dimensions.dropFirst().first(where: { $0 > maximumInnerDimension }) {
            throw DataError.file(name, "absurd dimensions \(shapeText): \(inner) exceeds \(maximumInnerDimension)")
        }
        var dataBytes = 1
        for size in dimensions {
            let (product, overflow) = dataBytes.multipliedReportingOverflow(by: size)
            guard !overflow, product <= maximumDataBytes else {
                throw DataError.file(name, "absurd dimensions \(shapeText): more than \(maximumDataBytes >> 30) GiB of data")
            }
            dataBytes = product
        }

        let headerBytes = 4 + 4 * rank
        if compressed {
            // Deflate cannot expand data by more than 1032:1; a header promising more than the
            // compressed file could hold is a truncated (or lying) file: refuse before allocating.
            let (ceiling, overflow) = file.count.multipliedReportingOverflow(by: 1032)
            if !overflow && ceiling + 1024 < headerBytes + dataBytes {
                throw DataError.file(name, "truncated: the header promises \(shapeText) = \(dataBytes) bytes, "
                                     + "more than a \(file.count)-byte gzip file can hold")
            }
        } else {
            let available = file.count - headerBytes
            if available < dataBytes {
                throw DataError.file(name, "truncated: the header promises \(shapeText) = \(dataBytes) bytes of data, "
                                     + "the file holds \(available)")
            }
            if available > dataBytes {
                throw DataError.file(name, "trailing junk: \(available - dataBytes) bytes after the \(dataBytes) bytes "
                                     + "of data the header describes (\(shapeText))")
            }
        }

        var delivered = 0
        let data = try [UInt8](unsafeUninitializedCapacity: dataBytes) { buffer, initialized in
            delivered = try source.read(into: UnsafeMutableRawBufferPointer(buffer))
            initialized = delivered
        }
        guard delivered == dataBytes else {
            throw DataError.file(name, "truncated: the data ends after \(delivered) of the \(dataBytes) bytes "
                                 + "the header promises (\(shapeText))")
        }
        // Anything left is junk; count it in bounded chunks (a gzip bomb costs time, not memory).
        var extra = 0
        var scratch = [UInt8](repeating: 0, count: 1 << 16)
        while true {
            let got = try scratch.withUnsafeMutableBytes { try source.read(into: $0) }
            if got == 0 { break }
            extra += got
        }
        if extra > 0 {
            throw DataError.file(name, "trailing junk: \(extra) bytes after the \(dataBytes) bytes of data "
                                 + "the header describes (\(shapeText))")
        }
        return IDXArray(dimensions: dimensions, bytes: data)
    }

    private static let elementTypeNames: [UInt8: String] = [
        0x08: "unsigned byte (0x08)", 0x09: "signed byte (0x09)", 0x0B: "short (0x0B)",
        0x0C: "int (0x0C)", 0x0D: "float (0x0D)", 0x0E: "double (0x0E)",
    ]
}

/// Sequential bytes from a whole file in memory: copied as they are, or inflated.
private struct ByteSource {
    private let file: OwnedBytes
    private var offset = 0
    private let inflater: Inflater?

    init(file: OwnedBytes, name: String) throws {
        self.file = file
        let bytes = file.bytes
        let isGzip = bytes.count >= 2 && bytes[0] == 0x1f && bytes[1] == 0x8b
        inflater = isGzip ? try Inflater(input: file, format: .gzip, name: name) : nil
    }

    var isCompressed: Bool { inflater != nil }

    mutating func read(into destination: UnsafeMutableRawBufferPointer) throws -> Int {
        if let inflater { return try inflater.read(into: destination) }
        let count = min(destination.count, file.count - offset)
        if count > 0, let target = destination.baseAddress, let source = file.bytes.baseAddress {
            target.copyMemory(from: source + offset, byteCount: count)
        }
        offset += count
        return count
    }
}

// MARK: - Files

/// Reads a whole regular file into a stable heap buffer, refusing files over `maximumBytes`.
func readWholeFile(_ path: String, maximumBytes: Int) throws -> OwnedBytes {
    let descriptor = open(path, O_RDONLY)
    guard descriptor >= 0 else {
        throw DataError.file(path, "cannot open: \(String(cString: strerror(errno)))")
    }
    defer { close(descriptor) }
    var info = stat()
    guard fstat(descriptor, &info) == 0 else {
        throw DataError.file(path, "cannot stat: \(String(cString: strerror(errno)))")
    }
    guard Int(info.st_mode) & 0o170000 == 0o100000 else {
        throw DataError.file(path, "not a regular file")
    }
    let size = Int(info.st_size)
    guard size <= maximumBytes else {
        throw DataError.file(path, "file too large (\(size) bytes; at most \(maximumBytes) expected)")
    }
    let buffer = OwnedBytes(byteCount: size)
    var done = 0
    while done < size {
        guard let base = buffer.pointer.baseAddress else { break }
        let got = read(descriptor, base + done, size - done)
        if got < 0 {
            if errno == EINTR { continue }
            throw DataError.file(path, "read failed: \(String(cString: strerror(errno)))")
        }
        if got == 0 {
            throw DataError.file(path, "file shrank while being read")
        }
        done += got
    }
    return buffer
}

/// Writes `bytes` to a temporary file beside `path`, then renames it over `path`: a crash or a
/// full disk leaves either the old file or none, never a half-written one.
func writeAtomically(_ bytes: [UInt8], to path: String) throws {
    let url = URL(fileURLWithPath: path)
    let temporary = url.deletingLastPathComponent()
        .appendingPathComponent(".\(url.lastPathComponent).partial-\(getpid())")
    do {
        try Data(bytes).write(to: temporary)
    } catch {
        try? FileManager.default.removeItem(at: temporary)
        throw DataError.file(path, "cannot write: \(describe(error))")
    }
    guard rename(temporary.path, url.path) == 0 else {
        let reason = String(cString: strerror(errno))
        try? FileManager.default.removeItem(at: temporary)
        throw DataError.file(path, "cannot move the finished file into place: \(reason)")
    }
}

/// A short human description of a Foundation or POSIX error.
func describe(_ error: Error) -> String {
    if let dataError = error as? DataError { return dataError.description }
    let nsError = error as NSError
    if let underlying = nsError.userInfo[NSUnderlyingErrorKey] as? NSError,
       underlying.domain == NSPOSIXErrorDomain,
       let code = POSIXErrorCode(rawValue: Int32(underlying.code)) {
        return String(cString: strerror(code.rawValue))
    }
    return nsError.localizedDescription
}

extension String {
    func leftPadded(to width: Int, with pad: Character = "0") -> String {
        count >= width ? self : String(repeating: pad, count: width - count) + self
    }
}
