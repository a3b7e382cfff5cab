/// Rewrites a Keras 2 / tf.keras 2 model config into the dialect Keras 3 rebuilds a `.keras`
/// archive from (`config.json`):
///
/// - every object serialized with its module (`keras.layers`, `keras.initializers`, …) and
///   registered name, `Model` → `Functional`, dtypes as `DTypePolicy` objects;
/// - a Sequential whose first layer carries `batch_input_shape` gets the InputLayer Keras 3 needs
///   (with `batch_shape`), so the batch axis is not doubled;
/// - calls (`inbound_nodes`) as `{"args", "kwargs"}` with `__keras_tensor__` entries, whose node
///   indices count the producer's calls from 0: tf.keras numbers a nested model's calls from 1
///   (its node 0 is its own construction), Keras 3 from 0;
/// - each layer's arguments in Keras 3's terms (`LayerUpgradeRules`).
///
/// The graph is taken from Pare's parse of the same config (`Architecture`), so that node indices
/// and shapes are the ones every other part of Pare uses.
struct ConfigUpgrade {
    let architecture: Architecture
    let analysis: GraphAnalysis
    /// Paths of `Activation('hard_sigmoid')` layers to give a `Rescaling(1.2)` in front (Keras 2's
    /// hard_sigmoid(x) is Keras 3's hard_sigmoid(1.2·x)); the new layer's name by path.
    var rescaledActivations: [String: String] = [:]
    /// What the rewrite changed beyond the dialect, for the user.
    private(set) var notes: [String] = []
    /// Each model level's layers by name (by the level's path prefix): a scan per tensor was quadratic.
    private var layersByPrefix: [String: [String: LayerNode]] = [:]

    init(architecture: Architecture, analysis: GraphAnalysis) {
        self.architecture = architecture
        self.analysis = analysis
    }

    /// The Keras 3 `config.json` of the model `config` describes.
    mutating func upgrade(_ config: JSON) throws -> JSON {
        guard let className = config["class_name"]?.stringValue, let inner = config["config"] else {
            throw ArchitectureError(object: "model_config", problem: "has no class_name/config")
        }
        var top = try modelObject(className: className, config: inner, architecture: architecture, prefix: "")
        if let pairs = top.objectValue {
            // Keras 3 writes the top model's build and compile configs beside it; an upgraded model
            // is not compiled (its training config is Keras 2's).
            let built: JSON =
                className == LayerRegistry.sequential
                ? architecture.inputShapes.values.first.map(Keras3Serialization.batchShape) ?? .null : .null
            top = .object(pairs + [("build_config", .object([("input_shape", built)])), ("compile_config", .null)])
        }
        return top
    }

    // MARK: Models

    private mutating func modelObject(className: String, config: JSON, architecture arch: Architecture, prefix: String)
        throws -> JSON
    {
        if className == LayerRegistry.sequential {
            return Keras3Serialization.object(
                module: "keras", className: className,
                config: try sequentialConfig(config, architecture: arch, prefix: prefix))
        }
        return Keras3Serialization.object(
            module: "keras.src.models.functional", className: "Functional",
            config: try functionalConfig(config, architecture: arch, prefix: prefix),
            registeredName: .string("Functional"))
    }

    /// `{"name", "trainable", "layers", "build_input_shape"}` with an InputLayer first.
    private mutating func sequentialConfig(_ config: JSON, architecture arch: Architecture, prefix: String) throws
        -> JSON
    {
        let entries = config.arrayValue ?? config["layers"]?.arrayValue ?? []
        guard let input = arch.layers.first, input.isInput, let shape = arch.inputShapes[input.name] else {
            throw ArchitectureError(object: prefix + arch.name, problem: "a Sequential model without an input shape")
        }
        var layers: [JSON] = []
        var addedInput = false
        for entry in entries {
            let className = entry["class_name"]?.stringValue ?? ""
            if LayerRegistry.isInput(className) {
                layers.append(try layerObject(entry, path: prefix + (entry["config"]?["name"]?.stringValue ?? "")))
                addedInput = true
                continue
            }
            if !addedInput {
                // Keras ≤ 2.2 and tf.keras without an explicit input: the first layer holds the shape
                // and the input's dtype; Keras 3 needs the InputLayer itself.
                let dtype = inputDtype(entry["config"]?["dtype"])
                layers.append(inputLayer(name: input.name, shape: shape, dtype: dtype))
                addedInput = true
                notes.append(
                    "\(prefix.isEmpty ? "the model" : "'\(prefix.dropLast())'") declared its input on its first "
                        + "layer (batch_input_shape); an InputLayer '\(input.name)' with batch_shape now does")
            }
            let name = entry["config"]?["name"]?.stringValue ?? ""
            if let scale = rescaledActivations[prefix + name] {
                layers.append(rescaling(name: scale))
            }
            layers.append(try layerObject(entry, path: prefix + name))
        }
        var pairs: [(String, JSON)] = [("name", .string(arch.name))]
        if let trainable = config["trainable"] { pairs.append(("trainable", trainable)) }
        pairs.append(("layers", .array(layers)))
        pairs.append(("build_input_shape", Keras3Serialization.batchShape(shape)))
        return .object(pairs)
    }

    /// `{"name", "trainable", "layers", "input_layers", "output_layers"}`, each layer with its calls.
    private mutating func functionalConfig(_ config: JSON, architecture arch: Architecture, prefix: String) throws
        -> JSON
    {
        var layers: [JSON] = []
        layersByPrefix[prefix] = Dictionary(arch.layers.map { ($0.name, $0) }, uniquingKeysWith: { a, _ in a })
        for entry in config["layers"]?.arrayValue ?? [] {
            let name = entry["name"]?.stringValue ?? entry["config"]?["name"]?.stringValue ?? ""
            let className = entry["class_name"]?.stringValue ?? ""
            var nodes = try (entry["inbound_nodes"]?.arrayValue ?? []).map {
                try node($0, className: className, architecture: arch, prefix: prefix, object: prefix + name)
            }
            if let scale = rescaledActivations[prefix + name] {
                // The Rescaling takes the Activation's calls; the Activation takes the Rescaling's outputs.
                var rescaling = rescaling(name: scale).objectValue ?? []
                rescaling += [("name", .string(scale)), ("inbound_nodes", .array(nodes))]
                layers.append(.object(rescaling))
                nodes = nodes.indices.map { call in
                    .object([
                        (
                            "args",
                            .array([
                                Keras3Serialization.kerasTensor(
                                    shape: outputShape(of: TensorRef(layer: name, node: call, tensor: 0), prefix),
                                    dtype: "float32", layer: scale, node: call, tensor: 0)
                            ])
                        ), ("kwargs", .object([])),
                    ])
                }
            }
            var object = try layerObject(entry, path: prefix + name).objectValue ?? []
            object += [("name", .string(name)), ("inbound_nodes", .array(nodes))]
            layers.append(.object(object))
        }
        var pairs: [(String, JSON)] = [("name", .string(arch.name))]
        if let trainable = config["trainable"] { pairs.append(("trainable", trainable)) }
        pairs.append(("layers", .array(Keras3LayerOrder.order(layers, architecture: arch))))
        pairs.append(("input_layers", references(arch.inputs, arch)))
        pairs.append(("output_layers", references(arch.outputs, arch)))
        return .object(pairs)
    }

    /// A model's inputs or outputs: one `[name, node, tensor]`, or a list of them (Keras 3 writes
    /// a single tensor bare).
    private func references(_ refs: [TensorRef], _ arch: Architecture) -> JSON {
        // Keras 3 names a nested Functional's calls from 1 here (and only here).
        let items = refs.map { ref -> JSON in
            let functional = arch.layer(ref.layer).map { $0.nested != nil && $0.className != LayerRegistry.sequential }
            return .array([.string(ref.layer), .int(ref.node + (functional == true ? 1 : 0)), .int(ref.tensor)])
        }
        return items.count == 1 ? items[0] : .array(items)
    }

    // MARK: Calls

    /// One Keras 2 call `[[layer, node, tensor, {kwargs}], …]` as Keras 3's `{"args", "kwargs"}`:
    /// one tensor, or the list of them, as the first argument; the keyword arguments with their
    /// tensors (`[layer, node, tensor]`) as Keras tensors.
    private func node(_ raw: JSON, className: String, architecture arch: Architecture, prefix: String, object: String)
        throws -> JSON
    {
        guard let entries = raw.arrayValue else {
            throw ArchitectureError(
                object: object, problem: "mixes Keras 3 calls into a Keras 2 config: not a file Keras wrote")
        }
        var tensors: [JSON] = []
        for entry in entries {
            guard let parts = entry.arrayValue, parts.count >= 3, let ref = reference(parts, arch) else {
                throw ArchitectureError(object: object, problem: "malformed inbound node entry \(entry.serialized())")
            }
            tensors.append(kerasTensor(ref, arch, prefix: prefix))
        }
        // tf.keras and Keras 3's legacy reader take the keyword arguments of the call's last entry.
        var kwargs = convertingTensors(
            entries.last?.arrayValue?.dropFirst(3).first ?? .object([]), arch, prefix: prefix)
        // training=True makes tf.keras drop out at inference; Keras 3's predict overrides it.
        if kwargs["training"]?.boolValue == true {
            throw ArchitectureError(
                object: object, problem: "is called with training=true, which Keras 3's inference overrides")
        }
        // Keras 3 binds every keyword but `training` to call()'s parameters and fails the load on any
        // other; tf.keras did the same, so such a file was not one Keras wrote.
        let keras3Class = LayerUpgradeRules.keras3ClassNames[className] ?? className
        if let known = KerasArguments.keras3CallKeywords[keras3Class],
            let unknown = kwargs.objectValue?.map(\.0).first(where: { !known.contains($0) })
        {
            throw ArchitectureError(
                object: object, problem: "is called with keyword '\(unknown)', which \(keras3Class).call does not take")
        }
        // tf.keras folds a recurrent layer's initial_state into its inputs (`[sequence, h, c]`);
        // Keras 3 takes them as the keyword they were given as.
        if tensors.count > 1, Self.recurrentClasses.contains(className), kwargs["initial_state"] == nil {
            kwargs.set("initial_state", .array(Array(tensors.dropFirst())))
            tensors = [tensors[0]]
        }
        let args: JSON = tensors.count == 1 ? tensors[0] : .array(tensors)
        return .object([("args", .array(tensors.isEmpty ? [] : [args])), ("kwargs", kwargs)])
    }

    static let recurrentClasses = Set(Recurrent.classNames + Bidirectional.classNames)

    /// `[layer, node, tensor]` with the node counted as Keras 3 counts it.
    private func reference(_ parts: [JSON], _ arch: Architecture) -> TensorRef? {
        guard parts.count >= 3, let layer = parts[0].stringValue, let node = parts[1].intValue,
            let tensor = parts[2].intValue
        else { return nil }
        return TensorRef(layer: layer, node: node - (arch.nodeIndexOffsets[layer] ?? 0), tensor: tensor)
    }

    /// Keyword arguments with every `[layer, node, tensor]` (tf.keras's form of a tensor) made a Keras tensor.
    private func convertingTensors(_ value: JSON, _ arch: Architecture, prefix: String) -> JSON {
        switch value {
        case .array(let items):
            if items.count == 3 || items.count == 4, items[0].stringValue.map({ arch.layer($0) != nil }) == true,
                let ref = reference(items, arch)
            {
                return kerasTensor(ref, arch, prefix: prefix)
            }
            return .array(items.map { convertingTensors($0, arch, prefix: prefix) })
        case .object(let pairs): return .object(pairs.map { ($0.0, convertingTensors($0.1, arch, prefix: prefix)) })
        default: return value
        }
    }

    private func kerasTensor(_ ref: TensorRef, _ arch: Architecture, prefix: String) -> JSON {
        var dtype = "float32"
        if let producer = layersByPrefix[prefix]?[ref.layer] ?? arch.layer(ref.layer) {
            if producer.isInput {
                dtype = inputDtype(producer.config["dtype"])
            } else if let policy = LayerConfig.policyName(producer.config["dtype"]) {
                dtype = Keras3Serialization.computeDtype(ofPolicy: policy)
            }
        }
        return Keras3Serialization.kerasTensor(
            shape: outputShape(of: ref, prefix, in: arch), dtype: dtype, layer: ref.layer, node: ref.node,
            tensor: ref.tensor)
    }

    /// The shape of a tensor of the model at `prefix`, as shape inference gives it.
    private func outputShape(of ref: TensorRef, _ prefix: String, in arch: Architecture? = nil) -> Shape? {
        if let arch, let shape = arch.inputShapes[ref.layer] { return shape }
        let call = analysis.calls(of: prefix + ref.layer).first { $0.node == ref.node }
        guard let outputs = call?.outputs, ref.tensor < outputs.count else { return nil }
        return outputs[ref.tensor]
    }

    // MARK: Layers

    /// The layer's `{"module", "class_name", "config", "registered_name"}` in Keras 3's terms; a
    /// nested model is rewritten whole.
    private mutating func layerObject(_ entry: JSON, path: String) throws -> JSON {
        guard let className = entry["class_name"]?.stringValue else {
            throw ArchitectureError(object: path, problem: "layer without class_name")
        }
        let config = entry["config"] ?? .object([])
        if LayerRegistry.isModel(className) {
            let nested = try nestedArchitecture(path)
            return try modelObject(
                className: className == "Model" ? "Functional" : className, config: config, architecture: nested,
                prefix: path + "/")
        }
        let upgraded = try LayerUpgradeRules.upgrade(className: className, config: config, path: path)
        notes += upgraded.notes
        return Keras3Serialization.object(
            module: Keras3Serialization.layersModule, className: upgraded.className, config: upgraded.config)
    }

    private func nestedArchitecture(_ path: String) throws -> Architecture {
        guard let nested = architecture.nested(at: path) else {
            throw ArchitectureError(object: path, problem: "nested model not found in the parsed graph")
        }
        return nested
    }

    /// An InputLayer as Keras 3 writes it.
    private func inputLayer(name: String, shape: Shape, dtype: String) -> JSON {
        Keras3Serialization.object(
            module: Keras3Serialization.layersModule, className: InputLayerKind.canonicalName,
            config: .object([
                ("batch_shape", Keras3Serialization.batchShape(shape)), ("dtype", .string(dtype)),
                ("sparse", .bool(false)), ("ragged", .bool(false)), ("name", .string(name)),
            ]))
    }

    /// `Rescaling(scale=1.2)`: what makes Keras 3's hard_sigmoid compute Keras 2's.
    private func rescaling(name: String) -> JSON {
        Keras3Serialization.object(
            module: Keras3Serialization.layersModule, className: "Rescaling",
            config: .object([
                ("name", .string(name)), ("trainable", .bool(true)),
                ("dtype", Keras3Serialization.dtypePolicy("float32")), ("scale", .number("1.2")),
                ("offset", .number("0.0")),
            ]))
    }

    /// The dtype an input gets from a Keras 2 dtype entry (a name or a policy), float32 by default.
    private func inputDtype(_ value: JSON?) -> String {
        LayerConfig.policyName(value).map(Keras3Serialization.computeDtype(ofPolicy:)) ?? "float32"
    }
}
