/// Rewrites a Keras 3 model config into tf.keras 2's dialect (the legacy `.h5` `model_config`
/// tf.keras's `load_model` rebuilds): the reverse of `ConfigUpgrade`.
struct LegacyConfigRewrite {
    let architecture: Architecture
    let analysis: GraphAnalysis
    /// Activation layers to give a `Rescaling(1/1.2)` in front (Keras 3's hard_sigmoid as Keras 2's).
    var rescaledActivations: [String: String] = [:]
    private(set) var notes: [String] = []

    init(architecture: Architecture, analysis: GraphAnalysis) {
        self.architecture = architecture
        self.analysis = analysis
    }

    mutating func rewrite(_ config: JSON) throws -> JSON {
        guard let className = config["class_name"]?.stringValue, let inner = config["config"] else {
            throw ArchitectureError(object: "model_config", problem: "has no class_name/config")
        }
        return try model(className: className, config: inner, architecture: architecture, prefix: "")
    }

    private mutating func model(className: String, config: JSON, architecture arch: Architecture, prefix: String)
        throws -> JSON
    {
        if className == LayerRegistry.sequential {
            var layers: [JSON] = []
            for entry in config.arrayValue ?? config["layers"]?.arrayValue ?? [] {
                let name = entry["config"]?["name"]?.stringValue ?? ""
                if let scale = rescaledActivations[prefix + name] { layers.append(rescaling(name: scale)) }
                layers.append(try layer(entry, path: prefix + name))
            }
            return .object([
                ("class_name", .string(className)),
                ("config", .object([("name", .string(arch.name)), ("layers", .array(layers))])),
            ])
        }
        var layers: [JSON] = []
        let entries = config["layers"]?.arrayValue ?? []
        let operations = Self.operations(entries)
        var converted: [String: [JSON]] = [:]
        var referenced = Set(arch.outputs.map(\.layer))
        for entry in entries {
            let name = entry["name"]?.stringValue ?? entry["config"]?["name"]?.stringValue ?? ""
            let className = entry["class_name"]?.stringValue ?? ""
            guard !operations.contains(name) else { continue }
            let nodes = try (entry["inbound_nodes"]?.arrayValue ?? []).map {
                try node($0, className: className, architecture: arch, operations: operations, object: prefix + name)
            }
            converted[name] = nodes
            Self.collectLayers(.array(nodes), into: &referenced)
        }
        for entry in entries {
            let name = entry["name"]?.stringValue ?? entry["config"]?["name"]?.stringValue ?? ""
            let className = entry["class_name"]?.stringValue ?? ""
            if operations.contains(name) {
                // Keras 3 records the operations that compute Keras masks; tf.keras computes them inside
                // its layers. One whose result a layer takes as an argument has no tf.keras form.
                guard !referenced.contains(name) else {
                    throw ArchitectureError(
                        object: prefix + name,
                        problem: "the Keras 3 operation \(className) feeds a layer; tf.keras has no such layer")
                }
                continue
            }
            var nodes = converted[name] ?? []
            if let scale = rescaledActivations[prefix + name] {
                var pairs = rescaling(name: scale).objectValue ?? []
                pairs += [("name", .string(scale)), ("inbound_nodes", .array(nodes))]
                layers.append(.object(pairs))
                nodes = nodes.indices.map { call in
                    .array([.array([.string(scale), .int(call), .int(0), .object([])])])
                }
            }
            var legacy = try layer(entry, path: prefix + name)
            if className == MultiHeadAttention.canonicalName { recordShapes(&legacy, path: prefix + name, arch) }
            var pairs = legacy.objectValue ?? []
            pairs += [("name", .string(name)), ("inbound_nodes", .array(nodes))]
            layers.append(.object(pairs))
        }
        func refs(_ list: [TensorRef]) -> JSON {
            .array(list.map { .array([.string($0.layer), .int($0.node + offset($0.layer, arch)), .int($0.tensor)]) })
        }
        var pairs: [(String, JSON)] = [("name", .string(arch.name))]
        if let trainable = config["trainable"] { pairs.append(("trainable", trainable)) }
        pairs += [
            ("layers", .array(layers)), ("input_layers", refs(arch.inputs)), ("output_layers", refs(arch.outputs)),
        ]
        return .object([("class_name", .string("Functional")), ("config", .object(pairs))])
    }

    /// tf.keras's MultiHeadAttention rebuilds itself from the shapes its config records (its
    /// `from_config` requires them): the query's, the value's, and the key's (the value's when absent).
    private func recordShapes(_ entry: inout JSON, path: String, _ arch: Architecture) {
        guard var config = entry["config"], let layer = arch.layer(String(path.split(separator: "/").last!)),
            let call = analysis.calls(of: path).first
        else { return }
        let names = layer.callInputNames.first ?? []
        func shape(_ name: String) -> JSON? {
            names.firstIndex(of: name).flatMap {
                $0 < call.inputs.count ? Keras3Serialization.batchShape(call.inputs[$0]) : nil
            }
        }
        let value = shape("value") ?? .null
        config.set("query_shape", shape("query") ?? .null)
        config.set("key_shape", shape("key") ?? value)
        config.set("value_shape", value)
        entry.set("config", config)
    }

    private static func collectLayers(_ value: JSON, into names: inout Set<String>) {
        switch value {
        case .array(let items):
            if items.count >= 3, let name = items[0].stringValue, items[1].intValue != nil, items[2].intValue != nil {
                names.insert(name)
            }
            for item in items { collectLayers(item, into: &names) }
        case .object(let pairs): for (_, v) in pairs { collectLayers(v, into: &names) }
        default: break
        }
    }

    /// tf.keras numbers a nested model's calls from 1 (its node 0 is its own construction).
    private func offset(_ layer: String, _ arch: Architecture) -> Int {
        guard let node = arch.layer(layer), let nested = node.nested else { return 0 }
        // tf.keras's `_should_skip_first_node`: a Functional always, a Sequential built on an InputLayer.
        return node.className != LayerRegistry.sequential || nested.layers.first?.isInput == true ? 1 : 0
    }

    /// A Keras 3 call `{"args", "kwargs"}` as tf.keras's `[[layer, node, tensor, {kwargs}], …]`.
    private func node(
        _ raw: JSON, className: String, architecture arch: Architecture, operations: Set<String>, object: String
    ) throws -> JSON {
        guard let args = raw["args"]?.arrayValue else {
            throw ArchitectureError(
                object: object, problem: "a call not in Keras 3's form: \(raw.serialized().prefix(120))")
        }
        var kwargs: [(String, JSON)] = []
        let parameters = LayerRegistry.kind(named: className)?.tensorParameters ?? []
        for (i, arg) in args.enumerated().dropFirst() {
            guard i < parameters.count else {
                throw ArchitectureError(
                    object: object, problem: "passes a positional argument tf.keras's form cannot carry")
            }
            kwargs.append((parameters[i], try converted(arg, arch, object: object)))
        }
        for (key, value) in raw["kwargs"]?.objectValue ?? [] where !value.isNull {
            // Masks Keras 3 passed by itself (computed by its recorded operations): tf.keras passes
            // the same masks by itself. The verification checks that they agree.
            if Self.implicitMasks.contains(key), Self.onlyFrom(operations, value) { continue }
            kwargs.append((key, try converted(value, arch, object: object)))
        }
        var first: [JSON] = []
        var tensors = args.first.map { $0.arrayValue ?? [$0] } ?? []
        // tf.keras writes a recurrent layer's initial_state as further inputs after the sequence.
        if ConfigUpgrade.recurrentClasses.contains(className), let states = raw["kwargs"]?["initial_state"],
            !states.isNull
        {
            tensors += states.arrayValue ?? [states]
            kwargs.removeAll { $0.0 == "initial_state" }
        }
        if !tensors.isEmpty {
            for item in tensors {
                guard let ref = Self.reference(item) else {
                    throw ArchitectureError(object: object, problem: "its first argument is not a tensor")
                }
                first.append(
                    .array([
                        .string(ref.layer), .int(ref.node + offset(ref.layer, arch)), .int(ref.tensor), .object(kwargs),
                    ]))
            }
        }
        return .array(first)
    }

    /// Keras tensors inside an argument as tf.keras's `[layer, node, tensor]`.
    private func converted(_ value: JSON, _ arch: Architecture, object: String) throws -> JSON {
        if let ref = Self.reference(value) {
            return .array([.string(ref.layer), .int(ref.node + offset(ref.layer, arch)), .int(ref.tensor)])
        }
        switch value {
        case .array(let items): return .array(try items.map { try converted($0, arch, object: object) })
        case .object(let pairs): return .object(try pairs.map { ($0.0, try converted($0.1, arch, object: object)) })
        default: return value
        }
    }

    /// The entries that are Keras 3 operations, not layers: by class or module, and — because a
    /// Keras 3 legacy .h5 drops the module and `ops.concatenate` shares its class name with the
    /// layer — any Concatenate whose inputs all come from operations (masks being joined).
    static func operations(_ entries: [JSON]) -> Set<String> {
        func name(_ entry: JSON) -> String { entry["name"]?.stringValue ?? entry["config"]?["name"]?.stringValue ?? "" }
        var found = Set(
            entries.filter {
                LayerRegistry.isKeras3Operation($0["class_name"]?.stringValue ?? "")
                    || ($0["module"]?.stringValue?.hasPrefix("keras.src.ops") ?? false)
            }.map(name))
        var changed = true
        while changed {
            changed = false
            for entry in entries where entry["class_name"]?.stringValue == "Concatenate" && !found.contains(name(entry))
            {
                let nodes = entry["inbound_nodes"] ?? .array([])
                guard nodes.arrayValue?.isEmpty == false, onlyFrom(found, nodes["args"] ?? nodes[0]?["args"] ?? .null)
                else { continue }
                found.insert(name(entry))
                changed = true
            }
        }
        return found
    }

    /// The arguments Keras fills with its masks when a call does not give them.
    static let implicitMasks: Set<String> = ["mask", "query_mask", "value_mask", "key_mask"]

    /// Whether every tensor in `value` is an output of one of `operations`.
    static func onlyFrom(_ operations: Set<String>, _ value: JSON) -> Bool {
        if let ref = reference(value) { return operations.contains(ref.layer) }
        switch value {
        case .array(let items): return !items.isEmpty && items.allSatisfy { $0.isNull || onlyFrom(operations, $0) }
        default: return false
        }
    }

    static func reference(_ value: JSON) -> TensorRef? {
        guard value["class_name"]?.stringValue == "__keras_tensor__",
            let history = value["config"]?["keras_history"]?.arrayValue, history.count == 3,
            let layer = history[0].stringValue, let node = history[1].intValue, let tensor = history[2].intValue
        else { return nil }
        return TensorRef(layer: layer, node: node, tensor: tensor)
    }

    /// `{"class_name", "config"}` in tf.keras's terms; nested models rewritten whole.
    private mutating func layer(_ entry: JSON, path: String) throws -> JSON {
        guard let className = entry["class_name"]?.stringValue else {
            throw ArchitectureError(object: path, problem: "layer without class_name")
        }
        let config = entry["config"] ?? .object([])
        if LayerRegistry.isModel(className) {
            guard let nested = architecture.nested(at: path) else {
                throw ArchitectureError(object: path, problem: "nested model not found in the parsed graph")
            }
            return try model(className: className, config: config, architecture: nested, prefix: path + "/")
        }
        let legacy = try LegacyLayerRules.rewrite(className: className, config: config, path: path)
        notes += legacy.notes
        return .object([("class_name", .string(legacy.className)), ("config", legacy.config)])
    }

    private func rescaling(name: String) -> JSON {
        .object([
            ("class_name", .string("Rescaling")),
            (
                "config",
                .object([
                    ("name", .string(name)), ("trainable", .bool(true)), ("dtype", .string("float32")),
                    ("scale", .number("0.8333333333333334")), ("offset", .number("0.0")),
                ])
            ),
        ])
    }
}
