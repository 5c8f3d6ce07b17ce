import CZlib

/// Deflate, zlib and gzip through the system zlib.
///
/// Why the system zlib rather than an inflater written here: it ships with every Swift
/// toolchain (zlib1g-dev is one of the toolchain's documented Linux dependencies and it is
/// part of the macOS SDK), it inflates the 9.7 MB MNIST training archive in about a tenth
/// of a second, it has decades of hardening against hostile streams, and the same library
/// gives real compression for the PNG writer. A private inflater would be slower, longer
/// and a new place for bugs, for no gain in portability.
public enum Zlib {
    /// Compresses `bytes` into a zlib stream (RFC 1950), as PNG's IDAT chunks need.
    /// - Parameter level: 0 (stored) to 9 (smallest); 6 is zlib's own default.
    public static func compress(_ bytes: [UInt8], level: Int = 6) -> [UInt8] {
        deflate(bytes, level: level, windowBits: MAX_WBITS)
    }

    /// Compresses `bytes` into a single-member gzip file image (RFC 1952).
    public static func gzip(_ bytes: [UInt8], level: Int = 6) -> [UInt8] {
        deflate(bytes, level: level, windowBits: MAX_WBITS + 16)
    }

    /// Inflates a zlib stream (RFC 1950). The output may not grow past `maximumOutputBytes`,
    /// so a hostile stream cannot make this allocate without bound.
    public static func decompress(_ bytes: [UInt8], maximumOutputBytes: Int) throws -> [UInt8] {
        try inflateAll(bytes, format: .zlib, maximumOutputBytes: maximumOutputBytes)
    }

    static func inflateAll(_ bytes: [UInt8], format: Inflater.Format, maximumOutputBytes: Int) throws -> [UInt8] {
        let input = OwnedBytes(copying: bytes)
        let name = format == .gzip ? "gzip stream" : "zlib stream"
        let inflater = try Inflater(input: input, format: format, name: name)
        var output: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 1 << 16)
        while true {
            let produced = try chunk.withUnsafeMutableBytes { try inflater.read(into: $0) }
            if produced == 0 { break }
            guard output.count + produced <= maximumOutputBytes else {
                throw DataError("\(name): inflates to more than \(maximumOutputBytes) bytes")
            }
            output.append(contentsOf: chunk[0..<produced])
        }
        return output
    }

    /// The CRC-32 used by PNG and gzip, continued from `crc` (start with 0).
    public static func crc32(_ bytes: UnsafeRawBufferPointer, continuing crc: UInt32 = 0) -> UInt32 {
        var crc = uLong(crc)
        guard let base = bytes.baseAddress else { return UInt32(truncatingIfNeeded: crc) }
        // zlib's length parameter is 32-bit: feed very large buffers in pieces.
        var offset = 0
        while offset < bytes.count {
            let piece = min(bytes.count - offset, 1 << 30)
            crc = CZlib.crc32(crc, (base + offset).assumingMemoryBound(to: Bytef.self), uInt(piece))
            offset += piece
        }
        return UInt32(truncatingIfNeeded: crc)
    }

    private static func deflate(_ bytes: [UInt8], level: Int, windowBits: Int32) -> [UInt8] {
        let stream = UnsafeMutablePointer<z_stream>.allocate(capacity: 1)
        stream.initialize(to: z_stream())
        defer {
            deflateEnd(stream)
            stream.deinitialize(count: 1)
            stream.deallocate()
        }
        let clampedLevel = Int32(max(0, min(9, level)))
        let status = deflateInit2_(stream, clampedLevel, Z_DEFLATED, windowBits, 8, Z_DEFAULT_STRATEGY,
                                   ZLIB_VERSION, Int32(MemoryLayout<z_stream>.size))
        // deflateInit2 fails only for invalid parameters (fixed here) or out of memory.
        precondition(status == Z_OK, "deflateInit2 failed (\(status))")
        let bound = Int(deflateBound(stream, uLong(bytes.count)))
        var output = [UInt8](repeating: 0, count: bound)
        var produced = 0
        bytes.withUnsafeBufferPointer { input in
            output.withUnsafeMutableBufferPointer { out in
                stream.pointee.next_in = UnsafeMutablePointer(mutating: input.baseAddress)
                stream.pointee.avail_in = uInt(input.count)
                stream.pointee.next_out = out.baseAddress
                stream.pointee.avail_out = uInt(out.count)
                // deflateBound guarantees a single Z_FINISH call completes.
                let result = CZlib.deflate(stream, Z_FINISH)
                precondition(result == Z_STREAM_END, "deflate did not finish (\(result))")
                produced = out.count - Int(stream.pointee.avail_out)
            }
        }
        output.removeSubrange(produced...)
        return output
    }
}

/// A heap buffer with a stable address, so that zlib may keep pointers into it between calls
/// (an Array's storage may not be relied on outside `withUnsafe…`).
final class OwnedBytes: @unchecked Sendable {
    let pointer: UnsafeMutableRawBufferPointer

    init(byteCount: Int) {
        pointer = UnsafeMutableRawBufferPointer.allocate(byteCount: max(byteCount, 1), alignment: 16)
        count = byteCount
    }

    convenience init(copying bytes: [UInt8]) {
        self.init(byteCount: bytes.count)
        bytes.withUnsafeBytes { source in
            if let base = source.baseAddress, !source.isEmpty {
                pointer.baseAddress?.copyMemory(from: base, byteCount: source.count)
            }
        }
    }

    /// The number of meaningful bytes (the allocation is at least one byte).
    let count: Int

    var bytes: UnsafeRawBufferPointer { UnsafeRawBufferPointer(rebasing: pointer[0..<count]) }

    deinit { pointer.deallocate() }
}

/// Streaming inflate over an in-memory compressed file, into caller buffers.
///
/// Reading into a buffer the caller sized from a validated header (instead of inflating
/// everything first) is what keeps a lying header or a decompression bomb from allocating
/// memory: the reader asks for exactly the bytes it expects, then checks that nothing is left.
/// Concatenated gzip members (`cat a.gz b.gz`) are one stream, as gzip(1) reads them.
final class Inflater {
    enum Format { case gzip, zlib }

    private let input: OwnedBytes
    private let format: Format
    private let name: String
    private let stream: UnsafeMutablePointer<z_stream>
    private var finished = false

    /// - Parameter name: how errors name the source (a path).
    init(input: OwnedBytes, format: Format, name: String) throws {
        self.input = input
        self.format = format
        self.name = name
        stream = UnsafeMutablePointer<z_stream>.allocate(capacity: 1)
        stream.initialize(to: z_stream())
        stream.pointee.next_in = input.pointer.baseAddress?.assumingMemoryBound(to: Bytef.self)
        stream.pointee.avail_in = uInt(input.count)
        let windowBits = format == .gzip ? MAX_WBITS + 16 : MAX_WBITS
        let status = inflateInit2_(stream, windowBits, ZLIB_VERSION, Int32(MemoryLayout<z_stream>.size))
        guard status == Z_OK else {
            stream.deinitialize(count: 1)
            stream.deallocate()
            throw DataError.file(name, "cannot start zlib (error \(status))")
        }
    }

    deinit {
        inflateEnd(stream)
        stream.deinitialize(count: 1)
        stream.deallocate()
    }

    private var kind: String { format == .gzip ? "gzip" : "zlib" }

    /// Fills `destination` as far as the stream goes; returns the bytes written, which is
    /// less than the buffer only at the end of the stream. Throws on a corrupt or truncated
    /// stream and on bytes after the last member that are not another gzip member.
    func read(into destination: UnsafeMutableRawBufferPointer) throws -> Int {
        var written = 0
        guard let base = destination.baseAddress else { return 0 }
        while written < destination.count && !finished {
            let want = min(destination.count - written, Int(UInt32.max))
            stream.pointee.next_out = (base + written).assumingMemoryBound(to: Bytef.self)
            stream.pointee.avail_out = uInt(want)
            let status = inflate(stream, Z_NO_FLUSH)
            written += want - Int(stream.pointee.avail_out)
            switch status {
            case Z_OK:
                continue
            case Z_STREAM_END:
                try endOfMember()
            case Z_BUF_ERROR where stream.pointee.avail_in == 0:
                throw DataError.file(name, "truncated \(kind) stream (the file ends in the middle of compressed data)")
            case Z_DATA_ERROR, Z_NEED_DICT:
                let detail = stream.pointee.msg.map { String(cString: $0) } ?? "invalid data"
                throw DataError.file(name, "corrupt \(kind) stream: \(detail)")
            case Z_MEM_ERROR:
                throw DataError.file(name, "out of memory while inflating")
            default:
                throw DataError.file(name, "corrupt \(kind) stream (zlib error \(status))")
            }
        }
        return written
    }

    private func endOfMember() throws {
        let remaining = Int(stream.pointee.avail_in)
        guard remaining > 0, let nextIn = stream.pointee.next_in else {
            finished = true
            return
        }
        let next = UnsafeRawPointer(nextIn)
        if format == .gzip, remaining >= 2, next.load(as: UInt8.self) == 0x1f,
           next.load(fromByteOffset: 1, as: UInt8.self) == 0x8b {
            inflateReset(stream)   // keeps next_in/avail_in: the next member follows
        } else {
            throw DataError.file(name, "trailing junk: \(remaining) bytes after the end of the \(kind) stream")
        }
    }
}

extension Zlib {
    /// Inflates a gzip file image (all members), refusing to grow past `maximumOutputBytes`.
    public static func gunzip(_ bytes: [UInt8], maximumOutputBytes: Int) throws -> [UInt8] {
        try inflateAll(bytes, format: .gzip, maximumOutputBytes: maximumOutputBytes)
    }
}
