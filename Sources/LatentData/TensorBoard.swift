import Foundation

// TensorBoard event files, written without TensorFlow or a protobuf code generator: the
// TFRecord framing (length, masked CRC-32C, data, masked CRC-32C) around `Event` protocol
// buffers encoded by hand. Only the fields Latent writes are here:
//
//   Event        wall_time double = 1, step int64 = 2, file_version string = 3,
//                summary Summary = 5
//   Summary      repeated Value value = 1
//   Value        tag string = 1, simple_value float = 2, image Image = 4
//   Image        height int32 = 1, width int32 = 2, colorspace int32 = 3,
//                encoded_image_string bytes = 4
//
// (tensorflow/core/util/event.proto and tensorflow/core/framework/summary.proto.)

/// CRC-32C (Castagnoli, reflected polynomial 0x82F63B78), the checksum of TFRecord files.
public enum CRC32C {
    static let table: [UInt32] = (0..<256).map { index in
        var crc = UInt32(index)
        for _ in 0..<8 { crc = crc & 1 == 1 ? (crc >> 1) ^ 0x82F6_3B78 : crc >> 1 }
        return crc
    }

    /// The CRC-32C of `bytes` ("123456789" gives 0xE3069283).
    public static func checksum<Bytes: Sequence>(_ bytes: Bytes) -> UInt32 where Bytes.Element == UInt8 {
        var crc: UInt32 = 0xFFFF_FFFF
        table.withUnsafeBufferPointer { table in
            for byte in bytes { crc = table[Int((crc ^ UInt32(byte)) & 0xff)] ^ (crc >> 8) }
        }
        return crc ^ 0xFFFF_FFFF
    }

    /// TFRecord's masked form: rotated right by 15 bits plus a constant, so that a CRC
    /// stored in data that is itself checksummed does not weaken the outer checksum.
    public static func masked(_ crc: UInt32) -> UInt32 {
        ((crc >> 15) | (crc << 17)) &+ 0xA282_EAD8
    }

    /// The inverse of `masked`.
    public static func unmasked(_ value: UInt32) -> UInt32 {
        let rotated = value &- 0xA282_EAD8
        return (rotated << 15) | (rotated >> 17)
    }
}

/// Protocol-buffer wire format, the little that event files need.
public struct ProtobufWriter: Sendable {
    public enum WireType: UInt8, Sendable {
        case varint = 0, fixed64 = 1, lengthDelimited = 2, fixed32 = 5
    }

    public private(set) var bytes: [UInt8] = []

    public init() {}

    /// Base-128 varint, least significant group first.
    public mutating func varint(_ value: UInt64) {
        var value = value
        while value >= 0x80 {
            bytes.append(UInt8(value & 0x7f) | 0x80)
            value >>= 7
        }
        bytes.append(UInt8(value))
    }

    public mutating func key(field: Int, _ type: WireType) {
        varint(UInt64(field) << 3 | UInt64(type.rawValue))
    }

    /// int32 and int64 fields: negative values are ten-byte two's-complement varints.
    public mutating func int64(field: Int, _ value: Int64) {
        key(field: field, .varint)
        varint(UInt64(bitPattern: value))
    }

    public mutating func double(field: Int, _ value: Double) {
        key(field: field, .fixed64)
        littleEndian(value.bitPattern)
    }

    public mutating func float(field: Int, _ value: Float) {
        key(field: field, .fixed32)
        littleEndian(value.bitPattern)
    }

    public mutating func bytes<Bytes: Collection>(field: Int, _ value: Bytes) where Bytes.Element == UInt8 {
        key(field: field, .lengthDelimited)
        varint(UInt64(value.count))
        bytes.append(contentsOf: value)
    }

    public mutating func string(field: Int, _ value: String) {
        bytes(field: field, Array(value.utf8))
    }

    /// An embedded message: its encoding as a length-delimited field.
    public mutating func message(field: Int, _ message: ProtobufWriter) {
        bytes(field: field, message.bytes)
    }

    mutating func littleEndian<Integer: FixedWidthInteger>(_ value: Integer) {
        withUnsafeBytes(of: value.littleEndian) { bytes.append(contentsOf: $0) }
    }
}

/// TFRecord files: each record is its length (uint64, little-endian), the masked CRC-32C of
/// those 8 bytes, the data, and the masked CRC-32C of the data.
public enum TFRecord {
    public static func frame(_ data: [UInt8]) -> [UInt8] {
        var record: [UInt8] = []
        record.reserveCapacity(data.count + 16)
        let length = UInt64(data.count).littleEndian
        let lengthBytes = withUnsafeBytes(of: length) { Array($0) }
        record += lengthBytes
        withUnsafeBytes(of: CRC32C.masked(CRC32C.checksum(lengthBytes)).littleEndian) { record += $0 }
        record += data
        withUnsafeBytes(of: CRC32C.masked(CRC32C.checksum(data)).littleEndian) { record += $0 }
        return record
    }

    /// The records of a TFRecord file, both checksums of each verified.
    public static func records(in bytes: [UInt8]) throws -> [[UInt8]] {
        var records: [[UInt8]] = []
        var offset = 0
        func uint32(at position: Int) -> UInt32 {
            (0..<4).reduce(UInt32(0)) { $0 | UInt32(bytes[position + $1]) << (8 * UInt32($1)) }
        }
        while offset < bytes.count {
            guard bytes.count - offset >= 12 else { throw DataError("TFRecord: truncated header at byte \(offset)") }
            let lengthBytes = bytes[offset..<(offset + 8)]
            let length = (0..<8).reduce(UInt64(0)) { $0 | UInt64(lengthBytes[offset + $1]) << (8 * UInt64($1)) }
            guard CRC32C.masked(CRC32C.checksum(lengthBytes)) == uint32(at: offset + 8) else {
                throw DataError("TFRecord: bad length checksum at byte \(offset)")
            }
            let start = offset + 12
            guard length <= UInt64(bytes.count - start), bytes.count - start - Int(length) >= 4 else {
                throw DataError("TFRecord: truncated record at byte \(offset)")
            }
            let data = Array(bytes[start..<(start + Int(length))])
            guard CRC32C.masked(CRC32C.checksum(data)) == uint32(at: start + Int(length)) else {
                throw DataError("TFRecord: bad data checksum at byte \(offset)")
            }
            records.append(data)
            offset = start + Int(length) + 4
        }
        return records
    }
}

/// The `Event` and `Summary` messages of TensorBoard's event files.
public enum TensorBoardEvent {
    /// An encoded image as TensorBoard's legacy image summary holds it.
    public struct Image: Sendable, Equatable {
        public var height: Int
        public var width: Int
        /// 1 grayscale, 2 grayscale + alpha, 3 RGB, 4 RGBA.
        public var colorspace: Int
        public var encoded: [UInt8]

        public init(height: Int, width: Int, colorspace: Int, encoded: [UInt8]) {
            self.height = height
            self.width = width
            self.colorspace = colorspace
            self.encoded = encoded
        }

        /// A PNG file's bytes with the size and colour space read from its IHDR chunk; nil
        /// when `png` is not a PNG file.
        public init?(png: [UInt8]) {
            let signature: [UInt8] = [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]
            guard png.count >= 33, Array(png[0..<8]) == signature, Array(png[12..<16]) == Array("IHDR".utf8) else { return nil }
            func bigEndian(_ at: Int) -> Int { (0..<4).reduce(0) { $0 << 8 | Int(png[at + $1]) } }
            let colorspace: Int
            switch png[25] {
            case 0: colorspace = 1
            case 4: colorspace = 2
            case 2, 3: colorspace = 3
            case 6: colorspace = 4
            default: return nil
            }
            self.init(height: bigEndian(20), width: bigEndian(16), colorspace: colorspace, encoded: png)
        }
    }

    public enum Value: Sendable, Equatable {
        case scalar(tag: String, value: Float)
        case image(tag: String, image: Image)
    }

    /// An `Event` with a `Summary` of `values`.
    public static func summary(_ values: [Value], step: Int64, wallTime: Double) -> [UInt8] {
        var summary = ProtobufWriter()
        for value in values {
            var entry = ProtobufWriter()
            switch value {
            case .scalar(let tag, let number):
                entry.string(field: 1, tag)
                entry.float(field: 2, number)
            case .image(let tag, let image):
                entry.string(field: 1, tag)
                var message = ProtobufWriter()
                message.int64(field: 1, Int64(image.height))
                message.int64(field: 2, Int64(image.width))
                message.int64(field: 3, Int64(image.colorspace))
                message.bytes(field: 4, image.encoded)
                entry.message(field: 4, message)
            }
            summary.message(field: 1, entry)
        }
        // Zeros are left out, as proto3 encoders do (a reader takes a missing field as zero).
        var event = ProtobufWriter()
        if wallTime != 0 { event.double(field: 1, wallTime) }
        if step != 0 { event.int64(field: 2, step) }
        event.message(field: 5, summary)
        return event.bytes
    }

    /// The first event of every file: `file_version` "brain.Event:2", which tells readers
    /// how to interpret the steps that follow.
    public static func fileVersion(wallTime: Double) -> [UInt8] {
        var event = ProtobufWriter()
        if wallTime != 0 { event.double(field: 1, wallTime) }
        event.string(field: 3, "brain.Event:2")
        return event.bytes
    }
}

/// Appends events to `events.out.tfevents.<unix seconds>.<hostname>` in a folder, one
/// flushed record at a time, so TensorBoard shows each epoch as soon as it ends.
public final class TensorBoardWriter {
    public let url: URL
    private let handle: FileHandle

    /// Creates `directory` if needed and a new event file in it, starting with the
    /// file-version event.
    public init(directory: URL, wallTime: Double = Date().timeIntervalSince1970) throws {
        do {
            try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        } catch {
            throw DataError("cannot create the TensorBoard folder \(directory.path): \(error.localizedDescription)")
        }
        let stem = "events.out.tfevents.\(Int64(wallTime)).\(Self.hostname())"
        var candidate = directory.appendingPathComponent(stem)
        var suffix = 1
        // Two writers started in the same second (a quick resume) each get a file of their own.
        while FileManager.default.fileExists(atPath: candidate.path) {
            suffix += 1
            candidate = directory.appendingPathComponent("\(stem).\(suffix)")
        }
        url = candidate
        guard FileManager.default.createFile(atPath: url.path, contents: nil),
              let handle = try? FileHandle(forWritingTo: url) else {
            throw DataError("cannot create \(url.path): \(String(cString: strerror(errno)))")
        }
        self.handle = handle
        try write(event: TensorBoardEvent.fileVersion(wallTime: wallTime))
    }

    deinit {
        try? handle.close()
    }

    public func add(_ values: [TensorBoardEvent.Value], step: Int, wallTime: Double = Date().timeIntervalSince1970) throws {
        try write(event: TensorBoardEvent.summary(values, step: Int64(step), wallTime: wallTime))
    }

    public func addScalar(_ tag: String, _ value: Double, step: Int, wallTime: Double = Date().timeIntervalSince1970) throws {
        try add([.scalar(tag: tag, value: Float(value))], step: step, wallTime: wallTime)
    }

    func write(event: [UInt8]) throws {
        do {
            try handle.write(contentsOf: Data(TFRecord.frame(event)))
        } catch {
            throw DataError("cannot write \(url.path): \(error.localizedDescription)")
        }
    }

    public func close() {
        try? handle.synchronize()
        try? handle.close()
    }

    /// The machine's name (as TensorFlow's writers put it in the file name), "localhost"
    /// if it has none.
    static func hostname() -> String {
        var buffer = [CChar](repeating: 0, count: 256)
        guard gethostname(&buffer, buffer.count - 1) == 0 else { return "localhost" }
        let name = String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        let safe = name.filter { $0.isLetter || $0.isNumber || $0 == "-" || $0 == "." || $0 == "_" }
        return safe.isEmpty ? "localhost" : safe
    }
}
