import Foundation
import HDF5

/// Keras's legacy HDF5 format (`model.save("m.h5")`, `save_weights("w.h5")`), as written by
/// Keras 2.0 … 2.x (h5py 2 and 3), tf.keras 2 and Keras 3.
///
/// Full model: root attributes `model_config`, `keras_version`, `backend`, `training_config`;
/// weights under `/model_weights`; optimizer state under `/optimizer_weights`.
/// Weights only: `layer_names` and the layer groups at the root.
public enum KerasLegacyH5 {
    /// Attributes Pare regenerates from the model instead of copying.
    static let regeneratedNameList = "layer_names"
    /// Keras splits a fixed-length attribute whose data exceeds this into `name0`, `name1`, …
    static let attributeChunkLimit = 64_512

    public struct WriteOptions: Sendable {
        public var deflateLevel: Int?
        public var dropOptimizer: Bool
        /// Called after each layer is written with (layers done, total), for progress on a terminal.
        public var progress: (@Sendable (Int, Int) -> Void)?
        public init(
            deflateLevel: Int? = nil, dropOptimizer: Bool = false, progress: (@Sendable (Int, Int) -> Void)? = nil
        ) {
            self.deflateLevel = deflateLevel
            self.dropOptimizer = dropOptimizer
            self.progress = progress
        }
    }

    // MARK: Reading

    public static func read(path: String) throws -> Model {
        do {
            let file = try HDF5File.open(path)
            return try read(root: try file.root(), path: path)
        } catch {
            throw PareError.from(error, file: path)
        }
    }

    /// True when the root is a legacy Keras file: `layer_names` at the root or a `model_weights` group.
    static func isLegacy(_ root: HDF5Group) -> Bool {
        hasNameList(root, "layer_names") || root.contains("model_weights")
    }

    static func read(root: HDF5Group, path: String) throws -> Model {
        var config: JSON?
        var configText: String?
        if root.hasAttribute("model_config") {
            let value = try root.attribute("model_config")
            guard let text = value.singleString else {
                let what = value.stringValues.map { "an array of \($0.count) strings" } ?? "numbers"
                throw PareError(
                    file: path, object: "attribute model_config", "holds \(what), not the one JSON string Keras writes")
            }
            do {
                config = try JSON.parse(text)
            } catch {
                throw PareError(file: path, object: "attribute model_config", "does not parse: \(error)")
            }
            configText = text
        }
        let weightsGroup: HDF5Group
        if hasNameList(root, "layer_names") {
            weightsGroup = root
        } else if root.contains("model_weights") {
            weightsGroup = try root.group("model_weights")
        } else {
            throw PareError(file: path, "not a Keras model: no 'layer_names' attribute and no 'model_weights' group")
        }
        guard let (layerNames, encoding) = try nameList(weightsGroup, "layer_names") else {
            throw PareError(file: path, object: weightsGroup.path, "has no 'layer_names' attribute")
        }
        var layers: [LayerWeights] = []
        var notes: [String] = []
        for name in layerNames {
            if let problem = NameRules.problem(withName: name) {
                throw PareError(file: path, object: weightsGroup.path + " attribute layer_names", "lists \(problem)")
            }
            guard weightsGroup.contains(name) else {
                throw PareError(
                    file: path, object: weightsGroup.path, "layer '\(name)' is listed in layer_names but has no group")
            }
            let group = try weightsGroup.group(name)
            let weightNames = try nameList(group, "weight_names")?.values ?? []
            var weights: [Weight] = []
            for weightName in weightNames {
                if let problem = NameRules.problem(withPath: weightName) {
                    throw PareError(file: path, object: group.path + " attribute weight_names", "lists \(problem)")
                }
                guard group.contains(weightName) else {
                    throw PareError(
                        file: path, object: group.path, "weight '\(weightName)' is listed in weight_names but missing")
                }
                let dataset = try group.dataset(weightName)
                weights.append(
                    Weight(
                        name: weightName, tensor: try StoredNodeIO.tensor(of: dataset, legacyKeras: true),
                        attributes: try StoredNodeIO.attributes(of: dataset)))
            }
            // Keras loads only what weight_names lists; anything else in the group is left out, and said so.
            let unlisted = try StoredNodeIO.datasetPaths(in: group).filter { !weightNames.contains($0) }
            if !unlisted.isEmpty {
                let listed = unlisted.prefix(5).joined(separator: ", ") + (unlisted.count > 5 ? ", …" : "")
                notes.append(
                    "layer '\(name)' holds datasets weight_names does not list (\(listed)); "
                        + "Keras ignores them and so does Pare: they are not written")
            }
            let extras = try StoredNodeIO.attributes(of: group, except: chunkNames(group, "weight_names"))
            layers.append(LayerWeights(name: name, weights: weights, extraAttributes: extras))
        }

        var model = Model(
            format: .kerasLegacyH5, kind: config == nil ? .weightsOnly : .fullModel,
            sourcePath: path, layers: layers)
        model.config = config
        model.readNotes = notes
        model.source.originalConfigText = configText
        model.source.nameListEncoding = encoding
        let isRootWeights = weightsGroup.path == "/"
        let rootRegenerated: Set<String> = isRootWeights ? chunkNames(root, "layer_names") : []
        model.source.rootAttributes = try StoredNodeIO.attributes(of: root, except: rootRegenerated)
        if !isRootWeights {
            model.source.weightsGroupAttributes = try StoredNodeIO.attributes(
                of: weightsGroup, except: chunkNames(weightsGroup, "layer_names"))
        }
        model.kerasVersion = try root.hasAttribute("keras_version") ? root.attribute("keras_version").singleString : nil
        model.backend = try root.hasAttribute("backend") ? root.attribute("backend").singleString : nil
        if root.hasAttribute("training_config") {
            model.trainingConfig = try root.attribute("training_config").singleString
        }
        if root.contains("optimizer_weights") {
            model.optimizer = try StoredNodeIO.read(
                try root.group("optimizer_weights"), name: "optimizer_weights", legacyKeras: true)
        }
        let listed = Set(layerNames)
        if isRootWeights {
            for link in try root.children() where !listed.contains(link.name) && link.name != "optimizer_weights" {
                let (child, kind) = (link.name, link.kind)
                model.rootExtras.append(try readChild(root, child, kind))
            }
        } else {
            for link in try root.children() where link.name != "model_weights" && link.name != "optimizer_weights" {
                let (child, kind) = (link.name, link.kind)
                model.rootExtras.append(try readChild(root, child, kind))
            }
            for link in try weightsGroup.children() where !listed.contains(link.name) {
                let (child, kind) = (link.name, link.kind)
                model.weightsGroupExtras.append(try readChild(weightsGroup, child, kind))
            }
        }
        return Keras1File.isKeras1(model) ? try Keras1File.converted(model) : model
    }

    private static func readChild(_ parent: HDF5Group, _ name: String, _ kind: HDF5ChildKind) throws -> StoredNode {
        if kind == .dataset {
            let d = try parent.dataset(name)
            return .dataset(
                name: name, attributes: try StoredNodeIO.attributes(of: d), tensor: try StoredNodeIO.tensor(of: d))
        }
        return try StoredNodeIO.read(try parent.group(name), name: name)
    }

    static func hasNameList(_ object: HDF5Object, _ name: String) -> Bool {
        object.hasAttribute(name) || object.hasAttribute(name + "0")
    }

    /// The attribute itself, or its chunks `name0`, `name1`, … as Keras splits large ones.
    static func chunkNames(_ object: HDF5Object, _ name: String) -> Set<String> {
        var names: Set<String> = [name]
        var i = 0
        while object.hasAttribute("\(name)\(i)") {
            names.insert("\(name)\(i)")
            i += 1
        }
        return names
    }

    /// Reads a list of names (`layer_names`, `weight_names`): strings in any encoding, possibly
    /// chunked; an empty list may be stored as an empty float64 array.
    static func nameList(_ object: HDF5Object, _ name: String) throws -> (values: [String], encoding: StringEncoding)? {
        var parts: [AttributeValue] = []
        if object.hasAttribute(name) {
            parts = [try object.attribute(name)]
        } else {
            var i = 0
            while object.hasAttribute("\(name)\(i)") {
                parts.append(try object.attribute("\(name)\(i)"))
                i += 1
            }
        }
        guard !parts.isEmpty else { return nil }
        var values: [String] = []
        var encoding = StringEncoding.variableUTF8
        for part in parts {
            switch part {
            case .strings(let s, _, let e):
                values += s
                encoding = e
                encoding.fixedSize = 0  // numpy sizes each list to its longest name; so does the writer
            case .numbers(_, let shape, _):
                guard shape.reduce(1, *) == 0 else {
                    throw PareError(
                        file: object.file.path, object: "\(object.path) attribute '\(name)'",
                        "holds numbers, not names")
                }
            }
        }
        return (values, encoding)
    }

    // MARK: Writing

    /// Writes `model` as a legacy .h5 of the same kind (full model or weights only), atomically.
    public static func write(_ model: Model, to path: String, options: WriteOptions = WriteOptions()) throws {
        try AtomicFile.write(to: path) { temporary in
            let file = try HDF5File.create(temporary)
            do {
                try writeContents(model, file: file, options: options)
                try file.close()
            } catch {
                try? file.close()
                throw error
            }
        }
    }

    /// What the legacy writer leaves out of `model`, for the user to hear about.
    static func notes(for model: Model, dropOptimizer: Bool) -> [String] {
        var notes: [String] = []
        if let o = model.optimizer, !dropOptimizer, model.layout != .kerasLegacy {
            notes.append(
                "optimizer state (\(o.name)) is in Keras 3's layout, which legacy .h5 cannot hold: not written")
        }
        if model.layout == .keras3, model.config?["compile_config"].map({ !$0.isNull }) == true {
            notes.append(
                "the compile config of config.json has no legacy counterpart without the optimizer's: the .h5 "
                    + "loads uncompiled"
            )
        }
        return notes
    }

    private static func writeContents(_ model: Model, file: HDF5File, options: WriteOptions) throws {
        let root = try file.root()
        let datasetOptions = DatasetOptions(deflateLevel: options.deflateLevel)
        if model.kind == .tensors {
            for (key, value) in model.source.rootAttributes { try root.setAttribute(key, value) }
            for (done, extra) in model.rootExtras.enumerated() {
                try StoredNodeIO.write(extra, into: root, options: datasetOptions)
                options.progress?(done + 1, model.rootExtras.count)
            }
            return
        }
        let fullModel = model.config != nil
        let configText = Keras3Layout.configTextForWriting(model)
        for (key, value) in model.source.rootAttributes {
            if key == "model_config", let text = configText, case .strings(_, let shape, let encoding) = value {
                try root.setAttribute(key, .strings([text], shape: shape, encoding: encoding))
            } else {
                try root.setAttribute(key, value)
            }
        }
        if fullModel, let text = configText, !model.source.rootAttributes.contains(where: { $0.0 == "model_config" }) {
            try root.setAttribute("model_config", .string(text))
            for (key, value) in [("keras_version", model.kerasVersion), ("backend", model.backend)]
            where !model.source.rootAttributes.contains(where: { $0.0 == key }) {
                if let value { try root.setAttribute(key, .string(value)) }
            }
        }
        let weightsGroup: HDF5Group
        if fullModel {
            weightsGroup = try root.createGroup("model_weights")
            for (key, value) in model.source.weightsGroupAttributes { try weightsGroup.setAttribute(key, value) }
            // tf.keras reads the weights' writer from this group, not the root: without `keras_version`
            // it takes them for Keras 1's and converts them (a weights-only file given `--config` had none).
            for (key, value) in [("keras_version", model.kerasVersion), ("backend", model.backend)]
            where !weightsGroup.hasAttribute(key) {
                if let stored = model.source.rootAttributes.first(where: { $0.0 == key })?.1 {
                    try weightsGroup.setAttribute(key, stored)
                } else if let value {
                    try weightsGroup.setAttribute(key, .string(value))
                }
            }
        } else {
            weightsGroup = root
        }
        try writeNameList(
            weightsGroup, "layer_names", model.layers.map(\.name), encoding: model.source.nameListEncoding)
        for (done, layer) in model.layers.enumerated() {
            defer { options.progress?(done + 1, model.layers.count) }
            let group = try weightsGroup.createGroup(layer.name)
            for (key, value) in layer.extraAttributes { try group.setAttribute(key, value) }
            try writeNameList(group, "weight_names", layer.weights.map(\.name), encoding: model.source.nameListEncoding)
            for weight in layer.weights {
                let dataset = try group.createDataset(
                    weight.name, type: weight.tensor.dtype.hdf5, shape: weight.tensor.shape,
                    bytes: try weight.tensor.bytes(), options: datasetOptions)
                for (key, value) in weight.attributes { try dataset.setAttribute(key, value) }
            }
        }
        for extra in model.weightsGroupExtras {
            try StoredNodeIO.write(extra, into: weightsGroup, options: datasetOptions)
        }
        for extra in model.rootExtras { try StoredNodeIO.write(extra, into: root, options: datasetOptions) }
        if let optimizer = model.optimizer, !options.dropOptimizer, model.layout == .kerasLegacy {
            try StoredNodeIO.write(optimizer, into: root, options: datasetOptions)
        }
    }

    /// Writes a list of names the way Keras does: an empty list as an empty float64 array; a
    /// list over 64,512 bytes (an object header message's limit) split into `name0`, `name1`, … of
    /// near-equal size.
    static func writeNameList(_ object: HDF5Object, _ name: String, _ values: [String], encoding: StringEncoding) throws
    {
        if values.isEmpty {
            try object.setAttribute(name, .numbers(.float(bits: 64), shape: [0], bytes: []))
            return
        }
        // A variable-length string costs a 16-byte heap reference in the attribute itself.
        let width = encoding.variableLength ? 16 : max(encoding.fixedSize, values.map { $0.utf8.count }.max() ?? 1)
        guard width * values.count > attributeChunkLimit else {
            try object.setAttribute(name, .stringArray(values, encoding: encoding))
            return
        }
        var chunks = 1
        while chunks < values.count, chunkSizes(values.count, chunks).max()! * width > attributeChunkLimit {
            chunks += 1
        }
        var start = 0
        for (i, size) in chunkSizes(values.count, chunks).enumerated() {
            try object.setAttribute(
                "\(name)\(i)", .stringArray(Array(values[start..<(start + size)]), encoding: encoding))
            start += size
        }
    }

    /// numpy.array_split sizes: the first `n % k` parts get one extra element.
    private static func chunkSizes(_ n: Int, _ k: Int) -> [Int] {
        (0..<k).map { n / k + ($0 < n % k ? 1 : 0) }
    }
}
