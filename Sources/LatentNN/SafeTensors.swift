import Foundation
import LatentCore

/// The safetensors format (huggingface/safetensors): an 8-byte little-endian header
/// length, a JSON header mapping each name to `dtype`, `shape` and `data_offsets`
/// (relative to the byte after the header), an optional `__metadata__` object of strings,
/// then the raw little-endian data. PyTorch's `safetensors.torch.load_file` reads what
/// `write` produces. Latent stores F32 tensors only.
///
/// The reader trusts nothing: every length and offset is checked against the file before
/// anything is allocated or copied, and one clear error names the first fault.
public enum SafeTensors {
    public struct Entry: Sendable, Equatable {
        public var name: String
        public var shape: [Int]
        public var values: [Float]

        public init(name: String, shape: [Int], values: [Float]) {
            self.name = name
            self.shape = shape
            self.values = values
        }
    }

    /// Header bytes allowed before we refuse the file (the format's own limit is 100 MB).
    public static let maximumHeaderBytes = 100_000_000

    /// Serialises entries (in the given order) and metadata into safetensors bytes.
    public static func encode(_ entries: [Entry], metadata: [String: String] = [:]) throws -> Data {
        var header = "{"
        var offset = 0
        var names = Set<String>()
        for entry in entries {
            guard names.insert(entry.name).inserted else { throw LatentError.invalidArgument("tensor name '\(entry.name)' appears twice") }
            guard try Shape.elementCount(entry.shape) == entry.values.count else {
                throw LatentError.shape("tensor '\(entry.name)' has \(entry.values.count) values for shape \(Shape.describe(entry.shape))")
            }
            let bytes = entry.values.count * 4
            header += "\(jsonString(entry.name)):{\"dtype\":\"F32\",\"shape\":[\(entry.shape.map(String.init).joined(separator: ","))],\"data_offsets\":[\(offset),\(offset + bytes)]},"
            offset += bytes
        }
        let metadataText = metadata.keys.sorted().map { "\(jsonString($0)):\(jsonString(metadata[$0] ?? ""))" }.joined(separator: ",")
        header += "\"__metadata__\":{\(metadataText)}}"
        var headerBytes = Data(header.utf8)
        while headerBytes.count % 8 != 0 { headerBytes.append(0x20) }
        var data = Data(capacity: 8 + headerBytes.count + offset)
        var length = UInt64(headerBytes.count).littleEndian
        withUnsafeBytes(of: &length) { data.append(contentsOf: $0) }
        data.append(headerBytes)
        for entry in entries {
            entry.values.withUnsafeBufferPointer { values in
                #if _endian(big)
                for value in values { var bits = value.bitPattern.littleEndian; withUnsafeBytes(of: &bits) { data.append(contentsOf: $0) } }
                #else
                data.append(UnsafeBufferPointer(start: UnsafeRawPointer(values.baseAddress)?.assumingMemoryBound(to: UInt8.self), count: values.count * 4))
                #endif
            }
        }
        return data
    }

    /// Parses safetensors bytes; `source` names the file in errors.
    public static func decode(_ data: Data, source: String) throws -> (entries: [Entry], metadata: [String: String]) {
        func fault(_ message: String) -> LatentError { .io("\(source): not a valid safetensors file: \(printable(message))") }
        guard data.count >= 8 else { throw fault("\(data.count) bytes is shorter than the 8-byte header length") }
        let headerLength = data.prefix(8).enumerated().reduce(UInt64(0)) { $0 | UInt64($1.element) << (8 * UInt64($1.offset)) }
        guard headerLength >= 2, headerLength <= UInt64(min(maximumHeaderBytes, data.count - 8)) else {
            throw fault("header length \(headerLength) does not fit a file of \(data.count) bytes")
        }
        let headerEnd = 8 + Int(headerLength)
        let headerData = data.subdata(in: data.startIndex + 8 ..< data.startIndex + headerEnd)
        guard let object = try? JSONSerialization.jsonObject(with: headerData), let header = object as? [String: Any] else {
            throw fault("the header is not a JSON object")
        }
        let payloadCount = data.count - headerEnd
        var metadata: [String: String] = [:]
        var located: [(name: String, shape: [Int], begin: Int, end: Int)] = []
        for (name, value) in header {
            if name == "__metadata__" {
                guard let fields = value as? [String: Any] else { throw fault("__metadata__ is not an object") }
                for (key, field) in fields {
                    guard let text = field as? String else { throw fault("metadata '\(key)' is not a string") }
                    metadata[key] = text
                }
                continue
            }
            guard let description = value as? [String: Any] else { throw fault("entry '\(name)' is not an object") }
            guard let dtype = description["dtype"] as? String else { throw fault("entry '\(name)' has no dtype") }
            guard dtype == "F32" else { throw fault("tensor '\(name)' has dtype \(dtype); Latent reads F32 only") }
            guard let shapeValues = description["shape"] as? [Any], let offsets = description["data_offsets"] as? [Any], offsets.count == 2 else {
                throw fault("tensor '\(name)' lacks shape or data_offsets")
            }
            let shape = try shapeValues.map { element -> Int in
                guard let number = element as? NSNumber, let dimension = exactInt(number), dimension >= 0 else {
                    throw fault("tensor '\(name)' has a bad dimension")
                }
                return dimension
            }
            guard let begin = (offsets[0] as? NSNumber).flatMap(exactInt), let end = (offsets[1] as? NSNumber).flatMap(exactInt),
                  begin >= 0, end >= begin, end <= payloadCount else {
                throw fault("tensor '\(name)' has data offsets outside the \(payloadCount) data bytes")
            }
            let count: Int
            do { count = try Shape.elementCount(shape) } catch { throw fault("tensor '\(name)' has shape \(Shape.describe(shape)) that is too large") }
            let (bytes, overflow) = count.multipliedReportingOverflow(by: 4)
            guard !overflow, bytes == end - begin else {
                let needed = overflow ? "more than \(Int.max) bytes" : "\(bytes) bytes"
                throw fault("tensor '\(name)' of shape \(Shape.describe(shape)) needs \(needed) but its offsets span \(end - begin)")
            }
            located.append((name, shape, begin, end))
        }
        // The data must be tiled exactly: no overlaps and no holes, as the format requires.
        located.sort { ($0.begin, $0.end) < ($1.begin, $1.end) }
        var expectedBegin = 0
        for entry in located {
            guard entry.begin == expectedBegin else {
                throw fault(entry.begin < expectedBegin ? "tensor '\(entry.name)' overlaps another tensor's data" : "there is a hole in the data before tensor '\(entry.name)'")
            }
            expectedBegin = entry.end
        }
        guard expectedBegin == payloadCount else { throw fault("\(payloadCount - expectedBegin) bytes of trailing data belong to no tensor") }
        let entries = located.map { entry -> Entry in
            var values = [Float](repeating: 0, count: (entry.end - entry.begin) / 4)
            values.withUnsafeMutableBytes { destination in
                _ = data.copyBytes(to: destination, from: data.startIndex + headerEnd + entry.begin ..< data.startIndex + headerEnd + entry.end)
            }
            #if _endian(big)
            values = values.map { Float(bitPattern: UInt32(littleEndian: $0.bitPattern)) }
            #endif
            return Entry(name: entry.name, shape: entry.shape, values: values)
        }
        return (entries, metadata)
    }

    /// Writes atomically: a temporary file in the same folder, flushed, then renamed over
    /// the target, so a crash leaves either the old file or the new one, never half of one.
    public static func write(_ entries: [Entry], metadata: [String: String] = [:], to url: URL) throws {
        try AtomicFile.write(try encode(entries, metadata: metadata), to: url)
    }

    public static func read(_ url: URL) throws -> (entries: [Entry], metadata: [String: String]) {
        let data: Data
        do { data = try Data(contentsOf: url) } catch { throw LatentError.io("cannot read \(url.path): \(error.localizedDescription)") }
        return try decode(data, source: url.path)
    }

    /// `text` made safe for a one-line error message: control characters (a tensor name
    /// from a hostile file may hold a newline) written as `\u{…}`, and at most `limit`
    /// characters.
    public static func printable(_ text: String, limit: Int = 300) -> String {
        var result = ""
        for scalar in text.unicodeScalars {
            if scalar.value < 0x20 || scalar.value == 0x7F || scalar == "\u{2028}" || scalar == "\u{2029}" || scalar == "\u{85}" {
                result += "\\u{\(String(scalar.value, radix: 16))}"
            } else {
                result.unicodeScalars.append(scalar)
            }
        }
        return result.count > limit ? String(result.prefix(limit)) + "…" : result
    }

    static func exactInt(_ number: NSNumber) -> Int? {
        let value = number.doubleValue
        guard value.rounded() == value, abs(value) < 9e15 else { return nil }
        return Int(value)
    }

    static func jsonString(_ text: String) -> String {
        var result = "\""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\"": result += "\\\""
            case "\\": result += "\\\\"
            default:
                if scalar.value < 0x20 { result += String(format: "\\u%04x", scalar.value) } else { result.unicodeScalars.append(scalar) }
            }
        }
        return result + "\""
    }
}

/// Crash-safe file replacement shared by checkpoints, configs and pictures.
///
/// The data goes to `.NAME.tmp-PID` in the same folder, is flushed, and is renamed over
/// `NAME`: a crash or a full disk leaves the old file or the new one, never half of one. A
/// failed write removes its temporary file; a killed process leaves it behind, and
/// `removeStale(in:)` clears such leftovers of processes that no longer run.
public enum AtomicFile {
    public static let temporaryMarker = ".tmp-"

    public static func write(_ data: Data, to url: URL) throws {
        let folder = url.deletingLastPathComponent()
        let temporary = folder.appendingPathComponent(".\(url.lastPathComponent)\(temporaryMarker)\(getpid())")
        guard FileManager.default.createFile(atPath: temporary.path, contents: nil) else {
            let reason = String(cString: strerror(errno))
            throw LatentError.io("cannot write \(url.path): cannot create a file in \(folder.path) (\(reason))")
        }
        do {
            let handle = try FileHandle(forWritingTo: temporary)
            do {
                try handle.write(contentsOf: data)
                try handle.synchronize()
                try handle.close()
            } catch {
                try? handle.close()
                throw error
            }
            guard rename(temporary.path, url.path) == 0 else {
                throw LatentError.io("cannot move \(temporary.lastPathComponent) to \(url.path): \(String(cString: strerror(errno)))")
            }
        } catch let error as LatentError {
            try? FileManager.default.removeItem(at: temporary)
            throw error
        } catch {
            try? FileManager.default.removeItem(at: temporary)
            throw LatentError.io("cannot write \(url.path): \(describe(error))")
        }
    }

    /// Removes `.NAME.tmp-PID` files in `folder` left by processes that no longer run (a
    /// run killed in the middle of a write). Returns the names removed.
    @discardableResult
    public static func removeStale(in folder: URL) -> [String] {
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: folder.path) else { return [] }
        var removed: [String] = []
        for name in names where name.hasPrefix(".") {
            guard let marker = name.range(of: temporaryMarker, options: .backwards),
                  let pid = Int32(name[marker.upperBound...]), pid > 0 else { continue }
            // kill(pid, 0) fails with ESRCH when no such process exists.
            if pid != getpid(), kill(pid, 0) != 0, errno == ESRCH {
                if (try? FileManager.default.removeItem(at: folder.appendingPathComponent(name))) != nil {
                    removed.append(name)
                }
            }
        }
        return removed
    }

    /// A short reason for a Foundation or POSIX error ("No space left on device").
    public static func describe(_ error: Error) -> String {
        if let latent = error as? LatentError { return latent.description }
        let nsError = error as NSError
        if let underlying = nsError.userInfo[NSUnderlyingErrorKey] as? NSError, underlying.domain == NSPOSIXErrorDomain {
            return String(cString: strerror(Int32(underlying.code)))
        }
        if nsError.domain == NSPOSIXErrorDomain { return String(cString: strerror(Int32(nsError.code))) }
        return nsError.localizedDescription
    }
}
