import Foundation
import LatentCore
import LatentCPU
import LatentData
@testable import LatentModels
import LatentNN
import XCTest

/// Corrupt and hostile checkpoints (docs/RELIABILITY.md): each is refused with one line that
/// names the file, and a refused checkpoint leaves the model exactly as it was.
final class ReliabilityCheckpointTests: XCTestCase {
    var folder: URL!

    override func setUpWithError() throws {
        folder = FileManager.default.temporaryDirectory.appendingPathComponent("latent-ckpt-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws {
        try? FileManager.default.removeItem(at: folder)
    }

    func options(_ kind: ModelKind = .vaeFC) -> TrainingOptions {
        var options = Zoo.options(kind)
        options.epochs = 3
        return options
    }

    /// A saved checkpoint of a model that has taken one step (so optimizer state is not zero).
    func savedCheckpoint(_ kind: ModelKind = .vaeFC) throws -> (url: URL, model: any GenerativeModel) {
        let model = try Zoo.make(options(kind))
        let (images, labels) = try Zoo.batch(for: model, count: 4, seed: 5)
        _ = try model.trainStep(images: images, labels: labels)
        let url = folder.appendingPathComponent("\(kind.rawValue).safetensors")
        try Checkpoint.save(model, epoch: 2, to: url)
        return (url, model)
    }

    func snapshot(_ model: any GenerativeModel) throws -> [[Float]] {
        var values = try model.root.stateDict().map { try $0.tensor.toArray() }
        for (_, optimizer) in model.optimizers {
            values += try optimizer.namedState().map { try $0.tensor.toArray() }
            values.append(optimizer.steps.map(Float.init))
        }
        return values
    }

    /// Reads `url` as --resume does (info, then load into a fresh model built from the
    /// checkpoint's options, or into `target`) and expects one clear line and no change.
    func assertRefused(_ url: URL, into target: (any GenerativeModel)? = nil, _ fragments: [String],
                       file: StaticString = #filePath, line: UInt = #line) throws {
        let model = try target ?? Zoo.make(options())
        let before = try snapshot(model)
        let streamBefore = model.random.stream
        XCTAssertThrowsError(try {
            let (info, entries) = try Checkpoint.info(at: url)
            try Checkpoint.load(entries, info: info, into: model, source: url.path)
        }(), file: file, line: line) { error in
            let text = "\(error)"
            XCTAssertTrue(error is LatentError, "\(type(of: error)): \(text)", file: file, line: line)
            XCTAssertFalse(text.contains("\n"), "one line: \(text)", file: file, line: line)
            XCTAssertTrue(text.contains(url.path), text, file: file, line: line)
            for fragment in fragments {
                XCTAssertTrue(text.contains(fragment), "'\(fragment)' missing from: \(text)", file: file, line: line)
            }
        }
        XCTAssertEqual(try snapshot(model), before, "nothing may be loaded half-way", file: file, line: line)
        XCTAssertEqual(model.random.stream, streamBefore, file: file, line: line)
    }

    func rewrite(_ url: URL, as name: String, _ change: (inout [SafeTensors.Entry], inout [String: String]) -> Void) throws -> URL {
        var (entries, metadata) = try SafeTensors.read(url)
        change(&entries, &metadata)
        let out = folder.appendingPathComponent(name)
        try SafeTensors.write(entries, metadata: metadata, to: out)
        return out
    }

    func testIntactCheckpointLoadsExactly() throws {
        let (url, source) = try savedCheckpoint()
        let target = try Zoo.make(options())
        let (info, entries) = try Checkpoint.info(at: url)
        XCTAssertEqual(info.epoch, 2)
        try Checkpoint.load(entries, info: info, into: target, source: url.path)
        XCTAssertEqual(try snapshot(target), try snapshot(source))
        XCTAssertEqual(target.random.stream, source.random.stream)
    }

    func testTruncatedCheckpointsAreRefused() throws {
        let (url, _) = try savedCheckpoint()
        let data = try Data(contentsOf: url)
        // Lengths across the header, the first tensors and the very end.
        var lengths = [0, 4, 8, 9, 100, data.count / 2, data.count - 1]
        lengths += stride(from: 0, to: data.count, by: max(1, data.count / 40)).map { $0 }
        for length in lengths {
            let cut = folder.appendingPathComponent("cut-\(length).safetensors")
            try data.prefix(length).write(to: cut)
            try assertRefused(cut, ["not a valid safetensors file"])
        }
    }

    func testLyingHeaderLengthIsRefused() throws {
        let (url, _) = try savedCheckpoint()
        var data = try Data(contentsOf: url)
        let length = data.prefix(8).enumerated().reduce(UInt64(0)) { $0 | UInt64($1.element) << (8 * UInt64($1.offset)) }
        for lie in [length + 8, length - 8, UInt64(data.count), UInt64.max] {
            withUnsafeBytes(of: lie.littleEndian) { data.replaceSubrange(0..<8, with: $0) }
            let bad = folder.appendingPathComponent("lie-\(lie).safetensors")
            try data.write(to: bad)
            try assertRefused(bad, ["not a valid safetensors file"])
        }
    }

    /// Offsets pointing past the data or into another tensor's bytes: a real checkpoint's
    /// header rewritten with one tensor's offsets changed (the header length is right, only
    /// the offsets lie).
    func testOffsetsOutOfRangeOrOverlappingAreRefused() throws {
        let (url, _) = try savedCheckpoint()
        let data = try Data(contentsOf: url)
        let headerLength = Int(data.prefix(8).enumerated().reduce(UInt64(0)) { $0 | UInt64($1.element) << (8 * UInt64($1.offset)) })
        let header = try XCTUnwrap(try JSONSerialization.jsonObject(with: data[8..<(8 + headerLength)]) as? [String: Any])
        let payload = data.suffix(from: 8 + headerLength)
        let name = try XCTUnwrap(header.keys.sorted().first { $0 != "__metadata__" })
        let entry = try XCTUnwrap(header[name] as? [String: Any])
        let offsets = try XCTUnwrap(entry["data_offsets"] as? [Int])
        let span = offsets[1] - offsets[0]
        func variant(_ begin: Int, _ end: Int, _ file: String) throws -> URL {
            var changed = header
            var tensor = entry
            tensor["data_offsets"] = [begin, end]
            changed[name] = tensor
            let json = try JSONSerialization.data(withJSONObject: changed)
            var bytes = Data()
            withUnsafeBytes(of: UInt64(json.count).littleEndian) { bytes.append(contentsOf: $0) }
            bytes.append(json)
            bytes.append(payload)
            let out = folder.appendingPathComponent(file)
            try bytes.write(to: out)
            return out
        }
        try assertRefused(try variant(payload.count, payload.count + span, "past-end.safetensors"), ["'\(name)'", "outside"])
        try assertRefused(try variant(offsets[0], offsets[1] + 4, "long.safetensors"), ["'\(name)'"])
        // Shifted by 4 bytes: it overlaps its neighbour (or leaves a hole where it was).
        let shift = offsets[0] >= 4 ? -4 : 4
        try assertRefused(try variant(offsets[0] + shift, offsets[1] + shift, "overlap.safetensors"), ["not a valid safetensors file"])
        try assertRefused(try variant(-span, 0, "negative.safetensors"), ["outside"])
    }

    func testWrongDtypeIsRefused() throws {
        let (url, _) = try savedCheckpoint()
        var data = try Data(contentsOf: url)
        let range = try XCTUnwrap(data.range(of: Data(#""dtype":"F32""#.utf8)))
        data.replaceSubrange(range, with: Data(#""dtype":"F16""#.utf8))
        let bad = folder.appendingPathComponent("f16.safetensors")
        try data.write(to: bad)
        try assertRefused(bad, ["dtype F16", "F32 only"])
    }

    func testWrongShapeForTheModelIsRefused() throws {
        let (url, _) = try savedCheckpoint()
        let bad = try rewrite(url, as: "shape.safetensors") { entries, _ in
            if let index = entries.firstIndex(where: { $0.name.hasSuffix("bias") }) {
                entries[index].shape = [1, entries[index].values.count]
            }
        }
        try assertRefused(bad, ["has shape (1, ", "the model needs"])
    }

    func testMissingExtraAndNonFiniteTensorsAreRefused() throws {
        let (url, _) = try savedCheckpoint()
        let missing = try rewrite(url, as: "missing.safetensors") { entries, _ in entries.removeFirst() }
        try assertRefused(missing, ["is missing"])
        let extra = try rewrite(url, as: "extra.safetensors") { entries, _ in
            entries.append(.init(name: "decoder.99.weight", shape: [2], values: [0, 0]))
        }
        try assertRefused(extra, ["'decoder.99.weight' belongs to no part of this vae-fc model"])
        let nan = try rewrite(url, as: "nan.safetensors") { entries, _ in entries[0].values[1] = .nan }
        try assertRefused(nan, ["non-finite value"])
        let steps = try rewrite(url, as: "steps.safetensors") { entries, _ in
            if let index = entries.firstIndex(where: { $0.name == "optimizer.steps" }) { entries[index].values[0] = -3 }
        }
        try assertRefused(steps, ["step counts"])
    }

    /// A checkpoint of another model: another kind, or the same kind with other sizes.
    func testCheckpointOfAnotherModelIsRefused() throws {
        let (conv, _) = try savedCheckpoint(.vaeConv)
        try assertRefused(conv, ["checkpoint of 'vae-conv', not 'vae-fc'"])
        var wider = options()
        wider.hidden = 48
        let other = try Zoo.make(wider)
        let url = folder.appendingPathComponent("wider.safetensors")
        try Checkpoint.save(other, epoch: 1, to: url)
        try assertRefused(url, ["the model needs"])
    }

    func testHostileMetadataIsRefused() throws {
        let (url, _) = try savedCheckpoint()
        func refuse(_ name: String, _ fragments: [String], _ change: @escaping (inout [String: String]) -> Void) throws {
            try assertRefused(try rewrite(url, as: name) { _, metadata in change(&metadata) }, fragments)
        }
        try refuse("no-format.safetensors", ["not a Latent checkpoint", "'format'"]) { $0["format"] = nil }
        try refuse("format.safetensors", ["unknown checkpoint format 'latent-checkpoint-9'"]) { $0["format"] = "latent-checkpoint-9" }
        try refuse("json.safetensors", ["training options cannot be read", "not valid JSON"]) { $0["latent_config"] = "{not json" }
        try refuse("missing-key.safetensors", ["training options cannot be read", "'hidden' is missing"]) { metadata in
            metadata["latent_config"] = metadata["latent_config"]?.replacingOccurrences(of: #""hidden":32,"#, with: "")
        }
        try refuse("type.safetensors", ["wrong type", "'batchSize'"]) { metadata in
            metadata["latent_config"] = metadata["latent_config"]?.replacingOccurrences(of: #""batchSize":8"#, with: #""batchSize":"8""#)
        }
        try refuse("invalid.safetensors", ["training options are invalid", "--batch-size"]) { metadata in
            metadata["latent_config"] = metadata["latent_config"]?.replacingOccurrences(of: #""batchSize":8"#, with: #""batchSize":0"#)
        }
        try refuse("newline.safetensors", ["training options are invalid", #"got x\u{a}y"#]) { metadata in
            metadata["latent_config"] = metadata["latent_config"]?.replacingOccurrences(of: #""loss":"bce""#, with: #""loss":"x\ny""#)
        }
        try refuse("format-newline.safetensors", [#"unknown checkpoint format 'a\u{a}b'"#]) { $0["format"] = "a\nb" }
        try refuse("model.safetensors", ["training options cannot be read"]) { metadata in
            metadata["latent_config"] = metadata["latent_config"]?.replacingOccurrences(of: #""model":"vae-fc""#, with: #""model":"vae-xl""#)
        }
        // Int.max would overflow `epoch + 1` when the run resumes.
        try refuse("epoch.safetensors", ["epoch or random state"]) { $0["epoch"] = String(Int.max) }
        try refuse("epoch-neg.safetensors", ["epoch or random state"]) { $0["epoch"] = "-1" }
        try refuse("seed.safetensors", ["epoch or random state"]) { $0["rng_seed"] = "0x10" }
        try refuse("counter.safetensors", ["epoch or random state"]) { $0["rng_counter"] = "18446744073709551616" }
    }

    func testGarbageAndEmptyFilesAreRefused() throws {
        let empty = folder.appendingPathComponent("empty.safetensors")
        try Data().write(to: empty)
        try assertRefused(empty, ["shorter than the 8-byte header length"])
        let png = folder.appendingPathComponent("picture.safetensors")
        try Data([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a] + [UInt8](repeating: 7, count: 100)).write(to: png)
        try assertRefused(png, ["header length"])
        let missing = folder.appendingPathComponent("absent.safetensors")
        try assertRefused(missing, ["cannot read"])
    }
}
