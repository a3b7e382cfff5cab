import HDF5

/// Where a model came from and how it was stored.
public enum ModelFormat: String, Sendable, Codable {
    case kerasLegacyH5 = "keras-legacy-h5"
    /// Pare's own container, holding a Keras legacy model's layout (spec/pare-format.md).
    case pare
}

/// Full model (architecture + weights) or weights only.
public enum ModelKind: String, Sendable, Codable {
    case fullModel = "full-model"
    case weightsOnly = "weights-only"
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

/// A group or dataset kept as it was (optimizer state, and anything else a format carries opaquely).
public indirect enum StoredNode: Sendable {
    case group(name: String, attributes: [(String, AttributeValue)], children: [StoredNode])
    case dataset(name: String, attributes: [(String, AttributeValue)], tensor: Tensor)

    public var name: String {
        switch self {
        case let .group(name, _, _), let .dataset(name, _, _): return name
        }
    }

    /// All datasets below this node with their paths relative to it.
    public func datasets(prefix: String = "") -> [(path: String, tensor: Tensor)] {
        switch self {
        case let .dataset(name, _, tensor): return [(prefix + name, tensor)]
        case let .group(name, _, children):
            let p = prefix.isEmpty && name.isEmpty ? "" : prefix + name + "/"
            return children.flatMap { $0.datasets(prefix: p) }
        }
    }
}

/// The in-memory model every format reads into and writes from.
public final class Model: @unchecked Sendable {
    public var format: ModelFormat
    public var kind: ModelKind
    /// The file it was read from, for messages.
    public var sourcePath: String
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
    /// Attributes on the root and on the weights group other than those Pare regenerates,
    /// with their original string encodings.
    public var rootAttributes: [(String, AttributeValue)]
    public var weightsGroupAttributes: [(String, AttributeValue)]
    /// How `layer_names` / `weight_names` strings were stored (h5py 2: fixed-length; h5py 3: variable).
    public var nameListEncoding: StringEncoding
    /// `model_config` text as read; written back unchanged while `config` is unchanged.
    public var originalConfigText: String?
    /// Groups and datasets Pare does not interpret, at the root and in the weights group; written back as they were.
    public var rootExtras: [StoredNode] = []
    public var weightsGroupExtras: [StoredNode] = []

    public init(format: ModelFormat, kind: ModelKind, sourcePath: String, layers: [LayerWeights]) {
        self.format = format
        self.kind = kind
        self.sourcePath = sourcePath
        self.layers = layers
        self.rootAttributes = []
        self.weightsGroupAttributes = []
        self.nameListEncoding = .variableUTF8
    }

    public var parameterCount: Int { layers.reduce(0) { $0 + $1.parameterCount } }

    public func layer(named name: String) -> LayerWeights? { layers.first { $0.name == name } }
}
