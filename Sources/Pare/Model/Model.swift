import HDF5

/// Where a model came from and how it was stored.
public enum ModelFormat: String, Sendable, Codable {
    case kerasLegacyH5 = "keras-legacy-h5"
    /// Keras 3's zip archive: config.json, metadata.json, model.weights.h5.
    case kerasArchive = "keras-v3-archive"
    /// Keras 3's `.weights.h5` (`layers/<class>/vars/<i>`).
    case keras3WeightsH5 = "keras-v3-weights-h5"
    /// An HDF5 file that is not a Keras model: a flat set of named tensors.
    case hdf5Tensors = "hdf5-tensors"
    /// Pare's own container (spec/pare-format.md).
    case pare
}

/// How the model's state is laid out, whatever container holds it: this decides what a
/// writer of another layout can carry over (optimizer state is layout-specific).
public enum ModelLayout: String, Sendable, Codable {
    /// Keras legacy .h5: `layer_names`, `weight_names`, `optimizer_weights`.
    case kerasLegacy = "keras-legacy-h5"
    /// Keras 3 saving_lib: `layers/…/vars/<i>`, `optimizer/vars/<i>`.
    case keras3 = "keras-v3"
    /// Plain HDF5 datasets; everything lives in `rootExtras`.
    case tensors = "hdf5-tensors"
}

/// Full model (architecture + weights), weights only, or plain tensors with no model at all.
public enum ModelKind: String, Sendable, Codable {
    case fullModel = "full-model"
    case weightsOnly = "weights-only"
    case tensors = "tensors"
}

/// One stored weight of a layer: its name as the file lists it (`weight_names`) and its tensor.
public struct Weight: Sendable {
    public var name: String
    public var tensor: Tensor
    /// Attributes of the dataset, kept for the round trip.
    public var attributes: [(String, AttributeValue)]

    public init(name: String, tensor: Tensor, attributes: [(String, AttributeValue)] = []) {
        self.name = name
        self.tensor = tensor
        self.attributes = attributes
    }

    /// The weight's role: the last path component without the `:0` suffix (`kernel`, `bias`, `gamma`, ...).
    public var role: String {
        var last = name.split(separator: "/").last.map(String.init) ?? name
        if let colon = last.lastIndex(of: ":") { last = String(last[..<colon]) }
        return last
    }

    /// The layer that owns the weight inside a nested model (`encoder/enc_conv1/kernel` → `enc_conv1`).
    public var ownerName: String? {
        let parts = name.split(separator: "/")
        return parts.count >= 2 ? String(parts[parts.count - 2]) : nil
    }

    /// The layer among `layers` (a nested model's layer names) that owns the weight: the component
    /// before its own name (`conv/kernel`), or, for layers that keep weights in sub-objects
    /// (`mha/query/kernel`, `lstm/lstm_cell/kernel`), the first component naming one of `layers`.
    public func owner(among layers: Set<String>) -> String? {
        if let direct = ownerName, layers.contains(direct) { return direct }
        return name.split(separator: "/").dropLast().map(String.init).first { layers.contains($0) }
    }
}

/// A top-level layer's stored weights, in the order Keras loads them.
public struct LayerWeights: Sendable {
    public var name: String
    public var weights: [Weight]
    /// The layer group's attributes other than `weight_names`, kept for the round trip.
    public var extraAttributes: [(String, AttributeValue)]

    public init(name: String, weights: [Weight], extraAttributes: [(String, AttributeValue)] = []) {
        self.name = name
        self.weights = weights
        self.extraAttributes = extraAttributes
    }

    public var parameterCount: Int { weights.reduce(0) { $0 + $1.tensor.count } }
}

/// A dataset below a stored node, with its path relative to the node.
public struct StoredDataset: Sendable {
    public var path: String
    public var tensor: Tensor
}

/// A group or dataset kept as it was (optimizer state, and anything else a format carries opaquely).
public indirect enum StoredNode: Sendable {
    case group(name: String, attributes: [(String, AttributeValue)], children: [StoredNode])
    case dataset(name: String, attributes: [(String, AttributeValue)], tensor: Tensor)

    public var name: String {
        switch self {
        case .group(let name, _, _), .dataset(let name, _, _): return name
        }
    }

    /// All datasets below this node with their paths relative to it.
    public func datasets(prefix: String = "") -> [StoredDataset] {
        switch self {
        case .dataset(let name, _, let tensor): return [StoredDataset(path: prefix + name, tensor: tensor)]
        case .group(let name, _, let children):
            let p = prefix.isEmpty && name.isEmpty ? "" : prefix + name + "/"
            return children.flatMap { $0.datasets(prefix: p) }
        }
    }
}

/// How the source file stored what the model itself does not need: the state a writer of the
/// same layout needs to give back the file as it was (attributes with their string encodings,
/// texts as read). Formats fill it in and read it back; nothing else looks inside.
public struct SourceDetails: Sendable {
    /// The file it was read from, for messages.
    public var path: String
    /// The kind of file read (its container and naming).
    public var format: ModelFormat
    /// How the file named the model's state: decides what a writer of another layout carries over.
    public var layout: ModelLayout = .kerasLegacy
    /// A `.keras` archive's `metadata.json`, as read (nil for other sources).
    public var kerasMetadataText: String?
    /// Attributes on the root and on the weights group other than those Pare regenerates,
    /// with their original string encodings.
    public var rootAttributes: [(String, AttributeValue)] = []
    public var weightsGroupAttributes: [(String, AttributeValue)] = []
    /// How `layer_names` / `weight_names` strings were stored (h5py 2: fixed-length; h5py 3: variable).
    public var nameListEncoding: StringEncoding = .variableUTF8
    /// `model_config` text as read; written back unchanged while the config is unchanged.
    public var originalConfigText: String?
    /// The Keras 1 version that wrote the file, when Pare read it in Keras 2's terms (`Keras1File`).
    public var keras1Version: String?
    /// What that conversion did, for `inspect`'s description of the writer.
    public var keras1Conversion: String?
    /// A Keras 3 weights file's `name` attributes of the `vars` groups of objects inside layers
    /// (`layers/multi_head_attention/_softmax/vars` → `softmax_6`), by group path: Keras numbers
    /// some from global counters, which a writer cannot know, so they are given back as read.
    public var keras3ObjectNames: [String: String] = [:]

    public init(path: String, format: ModelFormat) {
        self.path = path
        self.format = format
    }
}

/// The in-memory model every format reads into and writes from: a value, so that a rewrite is a
/// copy that cannot change the model it started from (tensors are immutable and shared).
///
/// The model is its architecture (`config`), its weights layer by layer, optimizer state and the
/// stored nodes Pare does not interpret; how the file it came from stored them is `source`.
/// Three descriptions do not overlap: `source.format` is the kind of file read, `source.layout`
/// how that file named the state, `kind` what the model holds (a full model, weights only, or
/// tensors with no model at all).
public struct Model: Sendable {
    public var kind: ModelKind
    public var source: SourceDetails
    public var kerasVersion: String?
    public var backend: String?
    /// `model_config`: the architecture, nil for weights-only files.
    public var config: JSON?
    /// `training_config` as stored (JSON text), when the model was compiled.
    public var trainingConfig: String?
    /// Every layer with a group in the file, in `layer_names` order (layers without weights included).
    public var layers: [LayerWeights]
    /// Optimizer state (`optimizer_weights`), kept unless dropped.
    public var optimizer: StoredNode?
    /// What reading left out or could not carry, for the user (printed as `note:` lines).
    public var readNotes: [String] = []
    /// Groups and datasets Pare does not interpret, at the root and in the weights group; written
    /// back as they were (a plain tensor file's tensors are all here).
    public var rootExtras: [StoredNode] = []
    public var weightsGroupExtras: [StoredNode] = []

    public init(format: ModelFormat, kind: ModelKind, sourcePath: String, layers: [LayerWeights]) {
        self.kind = kind
        self.source = SourceDetails(path: sourcePath, format: format)
        self.layers = layers
    }

    /// The file it was read from, for messages.
    public var sourcePath: String {
        get { source.path }
        set { source.path = newValue }
    }
    public var format: ModelFormat { source.format }
    public var layout: ModelLayout {
        get { source.layout }
        set { source.layout = newValue }
    }

    /// Bytes of the layers' weights at their stored dtypes (what a size budget counts).
    public var weightBytes: Int { layers.reduce(0) { $0 + $1.weights.reduce(0) { $0 + $1.tensor.byteCount } } }

    public var parameterCount: Int {
        kind == .tensors
            ? rootExtras.reduce(0) { $0 + $1.datasets().reduce(0) { $0 + $1.tensor.count } }
            : layers.reduce(0) { $0 + $1.parameterCount }
    }

    /// The architecture's text as stored when it is unchanged, else the current config serialized.
    public var configText: String? {
        guard let config else { return nil }
        if let text = source.originalConfigText, (try? JSON.parse(text)) == config { return text }
        return config.serialized()
    }

    public func layer(named name: String) -> LayerWeights? { layers.first { $0.name == name } }
}
