import Foundation
import HDF5

/// Reads and writes models, choosing the format by content (reading) and by the destination's
/// name (writing): `.pare`, `.keras`, `.weights.h5`, anything else a Keras legacy .h5 (or plain
/// HDF5 for a tensor set).
public enum ModelFile {
    /// Reads a model and checks its weights against its architecture. `architecture` is a model
    /// config for files that hold weights only (see `readArchitecture`).
    /// With `onlyIfMissing`, a file with an architecture of its own keeps it and ignores `architecture`.
    public static func read(_ path: String, architecture: JSON? = nil, onlyIfMissing: Bool = false) throws -> Model {
        let model = try readUnchecked(path, architecture: architecture, onlyIfMissing: onlyIfMissing)
        try model.validate()
        return model
    }

    static func readUnchecked(_ path: String, architecture: JSON? = nil, onlyIfMissing: Bool = false) throws -> Model {
        try InputFile.requireRegular(path)
        guard FileManager.default.isReadableFile(atPath: path) else { throw PareError(file: path, "permission denied") }
        let head = (try? FileHandle(forReadingFrom: URL(fileURLWithPath: path)).read(upToCount: 8)) ?? Data()
        let model: Model
        if PareFile.looksLikePare(head) {
            model = try PareFile.read(path)
        } else if KerasArchive.looksLikeZip(head) {
            model = try KerasArchive.read(path: path)
        } else if head.starts(with: [0x89, 0x48, 0x44, 0x46, 0x0D, 0x0A, 0x1A, 0x0A]) {
            return try readHDF5(path, architecture: architecture, onlyIfMissing: onlyIfMissing)
        } else if head.count < 8 {
            throw PareError(file: path, "is empty or too short to be a model file (\(head.count) bytes)")
        } else {
            // HDF5 allows a user block before the signature (at 512, 1024, …); let libhdf5 look for it.
            do {
                return try readHDF5(path, architecture: architecture, onlyIfMissing: onlyIfMissing)
            } catch let error as PareError where error.problem.contains("not an HDF5 file") {
                throw PareError(file: path, "not a model file Pare reads (not HDF5, not a zip, not .pare)")
            }
        }
        return try attach(architecture, to: model, onlyIfMissing: onlyIfMissing)
    }

    /// HDF5: a Keras legacy file, a Keras 3 weights file (with an architecture), or plain tensors.
    static func readHDF5(_ path: String, architecture: JSON?, onlyIfMissing: Bool) throws -> Model {
        do {
            let file = try HDF5File.open(path)
            let root = try file.root()
            if KerasLegacyH5.isLegacy(root) {
                return try attach(
                    architecture, to: try KerasLegacyH5.read(root: root, path: path), onlyIfMissing: onlyIfMissing)
            }
            let keras3 = Keras3Weights.looksLikeKeras3(root)
            if keras3, let architecture {
                var model = Model(format: .keras3WeightsH5, kind: .weightsOnly, sourcePath: path, layers: [])
                model.config = architecture
                try Keras3Weights.read(root: root, config: architecture, label: path, into: &model)
                return model
            }
            if architecture != nil, !onlyIfMissing { throw PareError(file: path, .plainTensorsTakeNoArchitecture) }
            return try PlainTensors.read(root: root, path: path, format: keras3 ? .keras3WeightsH5 : .hdf5Tensors)
        } catch {
            throw PareError.from(error, file: path)
        }
    }

    /// Gives a weights-only model the architecture passed with `--config`.
    static func attach(_ architecture: JSON?, to model: Model, onlyIfMissing: Bool) throws -> Model {
        var model = model
        guard let architecture else { return model }
        if onlyIfMissing, model.config != nil || model.kind == .tensors { return model }
        guard model.config == nil else { throw PareError(file: model.sourcePath, .holdsOwnArchitecture) }
        guard model.kind != .tensors else { throw PareError(file: model.sourcePath, .plainTensorsTakeNoArchitecture) }
        // Keras's rule: a legacy weights file that records no keras_version is Keras 1's. With weights
        // named as Keras 1 named them (`dense_1_W`, no layer path), its layouts are Keras 1's too, which
        // Pare converts only with the file's own architecture.
        let weights = model.layers.flatMap(\.weights)
        if model.format == .kerasLegacyH5, model.kerasVersion == nil, !weights.isEmpty,
            weights.allSatisfy({ !$0.name.contains("/") })
        {
            throw PareError(
                file: model.sourcePath,
                "is a Keras 1 weights file (no keras_version, weights named as Keras 1 named them): its layouts are "
                    + "not converted apart from its model; give the full Keras 1 model file instead")
        }
        model.config = architecture
        return model
    }

    /// Whether a file's first bytes (up to 64) start a JSON object: `readArchitecture` reads such a
    /// file as text, never with libhdf5 (the probe relies on the same rule).
    public static func looksLikeJSON(_ head: Data) -> Bool {
        head.first(where: { ![0x20, 0x09, 0x0A, 0x0D, 0xEF, 0xBB, 0xBF].contains($0) }) == UInt8(ascii: "{")
    }

    /// A model config from `path`: a JSON file (a `.keras` archive's config.json, or a legacy
    /// model_config), or any model file that holds one (`.keras`, full-model `.h5`, `.pare`).
    public static func readArchitecture(_ path: String) throws -> JSON {
        try InputFile.requireRegular(path)
        let head = (try? FileHandle(forReadingFrom: URL(fileURLWithPath: path)).read(upToCount: 64)) ?? Data()
        if looksLikeJSON(head) {
            let size = (try? FileManager.default.attributesOfItem(atPath: path)[.size] as? Int) ?? 0
            // The text, its parsed tree and the tree's strings: a few times the file's size.
            try MemoryBudget.require(
                size.multipliedReportingOverflow(by: 8).overflow ? nil : size * 8,
                for: "parsing this JSON config", file: path)
            guard let data = FileManager.default.contents(atPath: path), let text = String(data: data, encoding: .utf8)
            else {
                throw PareError(file: path, "cannot be read as UTF-8 text")
            }
            let json: JSON
            do { json = try JSON.parse(text) } catch { throw PareError(file: path, "does not parse as JSON: \(error)") }
            guard json["class_name"]?.stringValue != nil, json["config"] != nil else {
                throw PareError(file: path, "is JSON but not a Keras model config (no class_name and config)")
            }
            return json
        }
        let model = try readUnchecked(path)
        guard let config = model.config else {
            throw PareError(file: path, "holds no architecture to take the config from")
        }
        return config
    }

    /// Writes by the destination's name: `.pare` packs, `.keras` makes a Keras 3 archive,
    /// `.weights.h5` a Keras 3 weights file, anything else a Keras legacy .h5; a plain tensor set
    /// is written as plain HDF5 whatever the name. Returns notes on what the destination cannot hold.
    @discardableResult
    public static func write(_ model: Model, to path: String, options: KerasLegacyH5.WriteOptions = .init()) throws
        -> [String]
    {
        if path.hasSuffix(".pare") {
            var m = model
            if options.dropOptimizer { m.optimizer = nil }
            try PareFile.write(
                m, to: path, options: .init(deflate: options.deflateLevel != nil), progress: options.progress)
            return []
        }
        if model.kind == .tensors {
            if path.hasSuffix(".keras") {
                throw PareError(
                    file: model.sourcePath, "holds plain tensors with no architecture; a .keras archive needs a model")
            }
            try KerasLegacyH5.write(model, to: path, options: options)
            return []
        }
        if path.hasSuffix(".keras") {
            try KerasArchive.write(model, to: path, options: options)
            return Keras3Weights.notes(for: model, dropOptimizer: options.dropOptimizer)
        }
        if path.hasSuffix(".weights.h5") {
            try Keras3Weights.writeFile(model, to: path, options: options)
            return Keras3Weights.notes(for: model, dropOptimizer: options.dropOptimizer)
        }
        try KerasLegacyH5.write(model, to: path, options: options)
        return KerasLegacyH5.notes(for: model, dropOptimizer: options.dropOptimizer)
    }
}

extension ModelFile {
    /// Reads every tensor of a file and checks the weights against the architecture; a `.pare`
    /// file also has its structure and every checksum verified. Returns a one-line summary.
    public static func check(_ path: String, architecture: JSON? = nil) throws -> String {
        try InputFile.requireRegular(path)
        let head = (try? FileHandle(forReadingFrom: URL(fileURLWithPath: path)).read(upToCount: 8)) ?? Data()
        if PareFile.looksLikePare(head) {
            let summary = try PareFile.check(path)
            _ = try read(path, architecture: architecture, onlyIfMissing: true)
            return summary
        }
        var model = try read(path, architecture: architecture, onlyIfMissing: true)
        var count = 0
        var bytes = 0
        func touch(_ t: Tensor) throws {
            bytes += try t.bytes().count
            count += 1
        }
        for layer in model.layers { for w in layer.weights { try touch(w.tensor) } }
        for node in [model.optimizer].compactMap({ $0 }) + model.rootExtras + model.weightsGroupExtras {
            for dataset in node.datasets() { try touch(dataset.tensor) }
        }
        let what =
            model.kind == .tensors
            ? "plain tensors"
            : "\(model.layers.count) layers" + (model.config == nil ? "" : ", weights match the architecture")
        return "\(path): ok: \(model.format.rawValue), \(count) tensors (\(bytes) bytes) all read, \(what)"
    }
}

/// HDF5 files that are not Keras models: every group, dataset and attribute kept as it is.
enum PlainTensors {
    static func read(root: HDF5Group, path: String, format: ModelFormat) throws -> Model {
        var model = Model(format: format, kind: .tensors, sourcePath: path, layers: [])
        model.layout = .tensors
        model.source.rootAttributes = try StoredNodeIO.attributes(of: root)
        for link in try root.children() {
            let (child, kind) = (link.name, link.kind)
            switch kind {
            case .group: model.rootExtras.append(try StoredNodeIO.read(try root.group(child), name: child))
            case .dataset:
                let d = try root.dataset(child)
                model.rootExtras.append(
                    .dataset(
                        name: child, attributes: try StoredNodeIO.attributes(of: d),
                        tensor: try StoredNodeIO.tensor(of: d)))
            case .other:
                throw PareError(file: path, object: "/" + child, "a link that is neither a group nor a dataset")
            }
        }
        guard model.rootExtras.contains(where: { !$0.datasets().isEmpty }) else {
            throw PareError(file: path, "an HDF5 file with no datasets: neither a Keras model nor a tensor file")
        }
        return model
    }
}

extension Model {
    /// Throws the message commands that need a graph give for a file without one.
    public func requireArchitecture(for command: String) throws {
        if kind == .tensors || config == nil {
            throw PareError(
                file: sourcePath,
                .needsArchitecture(
                    operation: command, plainTensors: kind == .tensors, keras3Weights: format == .keras3WeightsH5))
        }
    }
}

extension ModelFile {
    /// Walks every HDF5 object of a file without reading tensor data: groups, attributes (their
    /// values), dataset types, shapes and storage (which walks chunk indexes). libhdf5 1.10 can
    /// crash on corrupt metadata; the CLI runs this in a child process first, so such a file is an
    /// error rather than a crash. A `.keras` archive's weights are walked as `KerasArchive` opens them.
    public static func probeHDF5(_ path: String) throws {
        try InputFile.requireRegular(path)
        let head = (try? FileHandle(forReadingFrom: URL(fileURLWithPath: path)).read(upToCount: 8)) ?? Data()
        if PareFile.looksLikePare(head) { return }
        do {
            let file: HDF5File
            if KerasArchive.looksLikeZip(head) {
                file = try KerasArchive.weightsFile(path: path)
            } else {
                file = try HDF5File.open(path)
            }
            var guardian = WalkGuard()
            try walk(try file.root(), &guardian)
        } catch let error as HDF5Error {
            throw PareError.from(error, file: path)
        }
    }

    /// Visits each object once; a group reached again along another hard link is not walked twice.
    private static func walk(_ group: HDF5Group, _ guardian: inout WalkGuard) throws {
        guard case .first = try guardian.enter(group) else { return }
        defer { guardian.leave(group) }
        for name in try group.attributeNames() { _ = try? group.attribute(name) }
        for link in try group.children() {
            let (child, kind) = (link.name, link.kind)
            switch kind {
            case .group: try walk(try group.group(child), &guardian)
            case .dataset:
                let d = try group.dataset(child)
                _ = try? d.elementType()
                _ = try d.shape()
                _ = d.storageSize()
                for name in try d.attributeNames() { _ = try? d.attribute(name) }
            case .other: break
            }
        }
    }
}
