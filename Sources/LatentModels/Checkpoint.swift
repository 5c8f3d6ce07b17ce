import Foundation
import LatentCore
import LatentNN

/// A run's checkpoint: the model's state_dict under PyTorch's names (so
/// `model.load_state_dict` takes the weight keys as they are), each optimizer's state under
/// its prefix ("optimizer.state.0.exp_avg", "optimizer.steps"), and metadata with the
/// training options, the completed epoch and the random stream. Written atomically.
public enum Checkpoint {
    public static let format = "latent-checkpoint-1"

    public struct Info: Sendable {
        public var options: TrainingOptions
        public var epoch: Int
        public var random: RandomStream
    }

    public static func save(_ model: any GenerativeModel, epoch: Int, to url: URL) throws {
        var entries: [SafeTensors.Entry] = []
        for (name, tensor) in model.root.stateDict() {
            entries.append(.init(name: name, shape: tensor.shape, values: try tensor.toArray()))
        }
        for (prefix, optimizer) in model.optimizers {
            for (name, tensor) in optimizer.namedState() {
                entries.append(.init(name: "\(prefix).\(name)", shape: tensor.shape, values: try tensor.toArray()))
            }
            entries.append(.init(name: "\(prefix).steps", shape: [optimizer.steps.count], values: optimizer.steps.map(Float.init)))
        }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        let config = String(decoding: try encoder.encode(model.options), as: UTF8.self)
        let metadata = [
            "format": format,
            "latent_version": LatentVersion.string,
            "model": model.options.model.rawValue,
            "latent_config": config,
            "epoch": String(epoch),
            "rng_seed": String(model.random.stream.seed),
            "rng_counter": String(model.random.stream.counter),
        ]
        try SafeTensors.write(entries, metadata: metadata, to: url)
    }

    /// Reads a checkpoint's metadata without touching a model (to rebuild the model first).
    public static func info(at url: URL) throws -> (info: Info, entries: [SafeTensors.Entry]) {
        let (entries, metadata) = try SafeTensors.read(url)
        return (try info(metadata: metadata, source: url.path), entries)
    }

    /// The largest epoch a checkpoint may name (`--epochs` accepts no more).
    static let maximumEpoch = 100_000

    /// Parses and checks a checkpoint's metadata; `source` names the file in errors. The
    /// training options must decode and pass `TrainingOptions.validate` (a checkpoint is
    /// user input like the command line), and the epoch and random state must be numbers.
    public static func info(metadata: [String: String], source: String) throws -> Info {
        func field(_ key: String) throws -> String {
            guard let value = metadata[key] else { throw LatentError.io("\(source): not a Latent checkpoint (no '\(key)' in its metadata)") }
            return value
        }
        let formatName = try field("format")
        guard formatName == format else {
            throw LatentError.io("\(source): unknown checkpoint format '\(SafeTensors.printable(formatName, limit: 64))' (this Latent reads \(format))")
        }
        let options: TrainingOptions
        do {
            options = try JSONDecoder().decode(TrainingOptions.self, from: Data(try field("latent_config").utf8))
        } catch let error as LatentError {
            throw error
        } catch {
            throw LatentError.io("\(source): its training options cannot be read: \(SafeTensors.printable(describe(decodingError: error)))")
        }
        do {
            try options.validate()
        } catch {
            throw LatentError.io("\(source): its training options are invalid: \(SafeTensors.printable("\(error)"))")
        }
        guard let epoch = Int(try field("epoch")), (0...maximumEpoch).contains(epoch),
              let seed = UInt64(try field("rng_seed")), let counter = UInt64(try field("rng_counter")) else {
            throw LatentError.io("\(source): epoch or random state in the metadata is not a number in range")
        }
        return Info(options: options, epoch: epoch, random: RandomStream(seed: seed, counter: counter))
    }

    /// One line for a JSON decoding failure: what is wrong and where (`DecodingError`'s own
    /// description is a multi-line dump of its context).
    static func describe(decodingError error: Error) -> String {
        func path(_ context: DecodingError.Context) -> String {
            let keys = context.codingPath.map { $0.intValue.map(String.init) ?? $0.stringValue }
            return keys.isEmpty ? "" : " at '\(keys.joined(separator: "."))'"
        }
        switch error as? DecodingError {
        case .keyNotFound(let key, let context)?: return "the field '\(key.stringValue)' is missing\(path(context))"
        case .typeMismatch(_, let context)?: return "a value has the wrong type\(path(context))"
        case .valueNotFound(_, let context)?: return "a value is null\(path(context))"
        case .dataCorrupted(let context)?:
            return context.codingPath.isEmpty ? "not valid JSON" : "a value is not valid\(path(context))"
        case nil: return "\(error)"
        @unknown default: return "\(error)"
        }
    }

    /// Loads weights, optimizer state and the random stream into `model`, after checking
    /// every tensor first: a checkpoint that does not fit is refused whole, nothing loaded.
    public static func load(_ entries: [SafeTensors.Entry], info: Info, into model: any GenerativeModel, source: String) throws {
        guard info.options.model == model.options.model else {
            throw LatentError.io("\(source) is a checkpoint of '\(info.options.model.rawValue)', not '\(model.options.model.rawValue)'")
        }
        let byName = Dictionary(entries.map { ($0.name, $0) }, uniquingKeysWith: { first, _ in first })
        var targets: [(Tensor, SafeTensors.Entry)] = []
        func expect(_ name: String, _ tensor: Tensor) throws {
            guard let entry = byName[name] else { throw LatentError.io("\(source): tensor '\(name)' is missing") }
            guard entry.shape == tensor.shape else {
                throw LatentError.io("\(source): tensor '\(name)' has shape \(Shape.describe(entry.shape)), the model needs \(Shape.describe(tensor.shape))")
            }
            targets.append((tensor, entry))
        }
        for (name, tensor) in model.root.stateDict() { try expect(name, tensor) }
        var stepCounts: [(Optimizer, [Int])] = []
        var expected: Set<String> = []
        for (prefix, optimizer) in model.optimizers {
            for (name, tensor) in optimizer.namedState() { try expect("\(prefix).\(name)", tensor) }
            guard let steps = byName["\(prefix).steps"], steps.shape == [optimizer.steps.count],
                  steps.values.allSatisfy({ $0 >= 0 && $0 == $0.rounded() && $0 < 16_777_216 }) else {
                throw LatentError.io("\(source): optimizer step counts '\(prefix).steps' are missing or invalid")
            }
            stepCounts.append((optimizer, steps.values.map { Int($0) }))
            expected.insert("\(prefix).steps")
        }
        expected.formUnion(targets.map(\.1.name))
        // A tensor the model does not have means the file was written for another model
        // (or tampered with): refuse rather than silently ignore it.
        if let stray = entries.first(where: { !expected.contains($0.name) }) {
            throw LatentError.io("\(source): tensor '\(SafeTensors.printable(stray.name, limit: 100))' belongs to no part of this \(model.options.model.rawValue) model")
        }
        // Weights that are already NaN or infinite would only train into NaN.
        for (_, entry) in targets {
            if let bad = entry.values.firstIndex(where: { !$0.isFinite }) {
                throw LatentError.io("\(source): tensor '\(entry.name)' holds a non-finite value (\(entry.values[bad]) at index \(bad))")
            }
        }
        for (tensor, entry) in targets { try tensor.copy(from: entry.values) }
        for (optimizer, steps) in stepCounts { optimizer.steps = steps }
        model.random.stream = info.random
    }
}
