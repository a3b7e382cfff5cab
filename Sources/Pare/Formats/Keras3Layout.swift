import Foundation

/// Where Keras 3's saving_lib keeps each layer's variables in `model.weights.h5`, derived from
/// the architecture alone (the file does not list it):
///
/// - the model's own variables at `vars`, each layer's at `layers/<snake_case class>[_k]/vars`,
///   `_k` counting earlier layers of the same class in the same model (`conv2d`, `conv2d_1`, …);
/// - a nested model's layers at `layers/<its group>/layers/…`;
/// - a Functional model's layer list includes its InputLayers, a Sequential's does not;
/// - variables are datasets `0`, `1`, … in the layer's creation order; the `vars` group's `name`
///   attribute holds the layer's real name.
enum Keras3Layout {
    struct Entry {
        /// The group holding `vars`, relative to the file root ("" for the model itself).
        var groupPath: String
        /// Layer names from the top-level model down (`["encoder", "enc_conv1"]`); empty for the model.
        var layerPath: [String]
        var className: String
        var config: JSON
        var isModel: Bool
        /// False when this layer or a model around it has `trainable: false`.
        var trainable: Bool

        var varsPath: String { groupPath.isEmpty ? "vars" : groupPath + "/vars" }
        var name: String { layerPath.last ?? "" }
    }

    /// Keras's `naming.to_snake_case`.
    static func snakeCase(_ name: String) -> String {
        var s = name.replacingOccurrences(of: "\\W+", with: "", options: .regularExpression)
        s = s.replacingOccurrences(of: "(.)([A-Z][a-z]+)", with: "$1_$2", options: .regularExpression)
        s = s.replacingOccurrences(of: "([a-z])([A-Z])", with: "$1_$2", options: .regularExpression)
        return s.lowercased()
    }

    /// Every entry of the model (the model itself first), in the order saving_lib visits them.
    /// `layersKey` is `layers`, or `_layer_checkpoint_dependencies` in files from Keras 2.13.
    static func entries(_ modelConfig: JSON, layersKey: String = "layers") throws -> [Entry] {
        guard let className = modelConfig["class_name"]?.stringValue, let inner = modelConfig["config"] else {
            throw ArchitectureError(object: "model config", problem: "has no class_name/config")
        }
        let name = inner["name"]?.stringValue ?? snakeCase(className)
        let root = Entry(
            groupPath: "", layerPath: [], className: className, config: inner, isModel: true,
            trainable: inner["trainable"]?.boolValue ?? true)
        return [root] + (try children(of: root, layersKey: layersKey, modelName: name))
    }

    private static func children(of model: Entry, layersKey: String, modelName: String) throws -> [Entry] {
        let list: [JSON]
        if let bare = model.config.arrayValue {
            list = bare
        } else if let l = model.config["layers"]?.arrayValue {
            list = l
        } else {
            throw ArchitectureError(
                object: model.layerPath.isEmpty ? modelName : model.layerPath.joined(separator: "/"),
                problem: "\(model.className) config has no layer list")
        }
        var used: [String: Int] = [:]
        var result: [Entry] = []
        for item in list {
            guard let cls = item["class_name"]?.stringValue else {
                throw ArchitectureError(object: modelName, problem: "layer without class_name")
            }
            // A Sequential tracks no input layer: it has no entry of its own.
            if model.className == LayerRegistry.sequential && LayerRegistry.isInput(cls) { continue }
            // Operations Keras 3 records in a functional graph (NotEqual for a mask) are not among the
            // model's layers: they have no group, and do not count in the layers' numbering.
            if LayerRegistry.isKeras3Operation(cls) { continue }
            let config = item["config"] ?? .object([])
            guard let name = config["name"]?.stringValue ?? item["name"]?.stringValue else {
                throw ArchitectureError(object: modelName, problem: "\(cls) layer without a name")
            }
            var key = snakeCase(cls)
            if let n = used[key] {
                used[key] = n + 1
                key += "_\(n + 1)"
            } else {
                used[key] = 0
            }
            let prefix = model.groupPath.isEmpty ? "" : model.groupPath + "/"
            let entry = Entry(
                groupPath: prefix + layersKey + "/" + key, layerPath: model.layerPath + [name], className: cls,
                config: config, isModel: LayerRegistry.isModel(cls),
                trainable: model.trainable && (config["trainable"]?.boolValue ?? true))
            result.append(entry)
            if entry.isModel { result += try children(of: entry, layersKey: layersKey, modelName: name) }
        }
        return result
    }

    /// What the layer's kind says of its variables, in Keras's order; nil for classes Pare does not know.
    static func specs(_ entry: Entry) -> [WeightSpec]? {
        guard case .success(let kind) = LayerRegistry.parse(className: entry.className, config: entry.config) else {
            return nil
        }
        return kind.weights(input: [])
    }

    /// The objects Keras 3 saves inside the layer (cells, wrapped layers), each with its group below
    /// the layer's and its name; none for classes Pare does not know.
    static func subObjects(_ entry: Entry) -> [Keras3SubObject] {
        guard case .success(let kind) = LayerRegistry.parse(className: entry.className, config: entry.config) else {
            return []
        }
        return kind.keras3SubObjects
    }

    /// The groups, below the layer's, whose `vars` hold its variables, in the order of its specs.
    static func variableGroups(_ specs: [WeightSpec]?) -> [String] {
        var groups: [String] = []
        for spec in specs ?? [] where !groups.contains(spec.keras3Group) { groups.append(spec.keras3Group) }
        return groups.isEmpty ? [""] : groups
    }

    /// `base/group/vars`, or `base/vars` for the layer's own.
    static func varsPath(_ base: String, group: String) -> String {
        [base, group, "vars"].filter { !$0.isEmpty }.joined(separator: "/")
    }

    /// Roles of a layer's variables in Keras's order (`kernel`, `bias`, …), nil for classes Pare does not know.
    static func roles(_ entry: Entry) -> [String]? { specs(entry)?.map(\.role) }

    /// The names Keras 3 gives the variables where they differ from the roles (its DepthwiseConv2D
    /// calls its kernel `kernel`, where tf.keras and Pare's roles say `depthwise_kernel`).
    static func variableNames(_ entry: Entry) -> [String]? { specs(entry)?.map { $0.keras3Name ?? $0.role } }

    /// Variables Keras does not train (BatchNormalization's statistics); nor anything in a frozen layer.
    static func isTrainable(role: String, in entry: Entry) -> Bool {
        entry.trainable && (specs(entry)?.first { $0.role == role }?.trainable ?? true)
    }

    // MARK: Config dialects

    /// True for configs Keras 3 wrote (`.keras` config.json or a Keras 3 legacy .h5's model_config);
    /// false for Keras 2 / tf.keras configs, which Keras 3 cannot rebuild from a `.keras` archive.
    static func isKeras3Config(_ config: JSON) -> Bool {
        if config["module"] != nil { return true }
        var keras2 = false
        func visit(_ j: JSON) {
            guard !keras2 else { return }
            switch j {
            case .object(let pairs):
                for (k, v) in pairs {
                    if k == "batch_input_shape" {
                        keras2 = true
                        return
                    }
                    if k == "inbound_nodes", let nodes = v.arrayValue, let first = nodes.first, first.arrayValue != nil
                    {
                        keras2 = true
                        return
                    }
                    visit(v)
                }
            case .array(let items): items.forEach(visit)
            default: break
            }
        }
        if config["config"]?.arrayValue != nil { return false }  // Keras <= 2.2.2 bare-list Sequential
        visit(config)
        return !keras2
    }

    /// The `config.json` of a `.keras` archive: a Keras 3 legacy model_config gains the
    /// `module`/`registered_name` Keras 3's deserializer needs at the top.
    static func archiveConfig(_ config: JSON) -> JSON {
        guard config["module"] == nil, let cls = config["class_name"]?.stringValue, let inner = config["config"] else {
            return config
        }
        let functional = cls != LayerRegistry.sequential
        var body = inner
        // Keras 3's legacy .h5 names the operations of its graph (NotEqual …) without their module;
        // its archive loader finds them only with it.
        if var layers = inner["layers"]?.arrayValue {
            for i in layers.indices {
                guard let name = layers[i]["class_name"]?.stringValue, LayerRegistry.isKeras3Operation(name),
                    layers[i]["module"] == nil
                else { continue }
                var entry: [(String, JSON)] = [("module", .string("keras.src.ops.numpy"))]
                entry += (layers[i].objectValue ?? []).filter { $0.0 != "registered_name" }
                entry.append(("registered_name", .string(name)))
                layers[i] = .object(entry)
            }
            body.set("layers", .array(layers))
        }
        return .object([
            ("module", .string(functional ? "keras.src.models.functional" : "keras")),
            ("class_name", .string(cls)), ("config", body),
            ("registered_name", functional ? .string(cls) : .null),
        ])
    }

    // MARK: build_config

    /// The architecture text a Keras writer stores. Configs from tf.keras 2.13 on and Keras 3 give
    /// each layer the input shape it is built with (`build_config`), which Keras 3 builds it from
    /// before loading weights: after a rewrite (narrower inputs) they are brought up to date with
    /// the graph. Unchanged configs keep their text as read.
    static func configTextForWriting(_ model: Model) -> String? {
        guard var config = model.config else { return nil }
        if let arch = try? Architecture.parse(config) {
            let before = config
            refreshBuildShapes(&config, analysis: GraphAnalysis.run(arch), architecture: arch)
            if config != before { return config.serialized() }
        }
        return model.configText
    }

    /// Rewrites every layer's `build_config.input_shape` (Keras 3 builds each layer from it before
    /// loading weights) to the shapes the current architecture gives; entries already right are untouched.
    static func refreshBuildShapes(_ config: inout JSON, analysis: GraphAnalysis, architecture: Architecture? = nil) {
        let nodes = Dictionary(
            (architecture?.allLayers() ?? []).map { ($0.path, $0.layer) }, uniquingKeysWith: { a, _ in a })
        func shapeJSON(_ s: Shape) -> JSON { .array([.null] + s.map { $0.map(JSON.int) ?? .null }) }
        func refresh(_ modelEntry: inout JSON, prefix: String) {
            guard var inner = modelEntry["config"] else { return }
            let bare = inner.arrayValue != nil
            guard var layers = bare ? inner.arrayValue : inner["layers"]?.arrayValue else { return }
            for i in layers.indices {
                let name = layers[i]["config"]?["name"]?.stringValue ?? layers[i]["name"]?.stringValue ?? ""
                let path = prefix + name
                if let cls = layers[i]["class_name"]?.stringValue, LayerRegistry.isModel(cls) {
                    refresh(&layers[i], prefix: path + "/")
                }
                guard let call = analysis.calls(of: path).first, !call.inputs.isEmpty else { continue }
                refreshed(&layers[i], inputs: call.inputs)
                // Attention builds from `shapes_dict` (`query_shape`, `value_shape`, `key_shape`).
                if let names = nodes[path]?.callInputNames.first, names.count == call.inputs.count {
                    refreshedShapes(
                        &layers[i], inputs: Dictionary(zip(names, call.inputs), uniquingKeysWith: { a, _ in a }))
                }
                // The layers a wrapper holds (a Bidirectional's two, a TimeDistributed's one).
                guard let cls = layers[i]["class_name"]?.stringValue, var layerConfig = layers[i]["config"],
                    case .success(let kind) = LayerRegistry.parse(className: cls, config: layerConfig)
                else { continue }
                for (key, shape) in kind.wrappedInputs(call.inputs[0]) {
                    guard var wrapped = layerConfig[key], !wrapped.isNull else { continue }
                    refreshed(&wrapped, inputs: [shape])
                    layerConfig.set(key, wrapped)
                }
                if layerConfig != layers[i]["config"] { layers[i].set("config", layerConfig) }
            }
            if bare { inner = .array(layers) } else { inner.set("layers", .array(layers)) }
            modelEntry.set("config", inner)
        }
        /// `entry`'s build_config `shapes_dict` entries `<parameter>_shape` set to those inputs' shapes.
        func refreshedShapes(_ entry: inout JSON, inputs: [String: Shape]) {
            guard var build = entry["build_config"], var shapes = build["shapes_dict"], let pairs = shapes.objectValue
            else { return }
            for (key, old) in pairs where key.hasSuffix("_shape") {
                guard let shape = inputs[String(key.dropLast(6))] else { continue }
                let new = shapeJSON(shape)
                if new != old, (old.arrayValue?.count ?? -1) == (new.arrayValue?.count ?? -2) { shapes.set(key, new) }
            }
            build.set("shapes_dict", shapes)
            if build != entry["build_config"] { entry.set("build_config", build) }
        }
        /// `entry`'s build_config input shape set to `inputs`, if it has one of that form.
        func refreshed(_ entry: inout JSON, inputs: [Shape]) {
            guard var build = entry["build_config"], let old = build["input_shape"], !old.isNull else { return }
            let nested = old.arrayValue?.first?.arrayValue != nil
            let new: JSON = nested ? .array(inputs.map(shapeJSON)) : shapeJSON(inputs[0])
            if new != old, (old.arrayValue?.count ?? -1) == (new.arrayValue?.count ?? -2) {
                build.set("input_shape", new)
                entry.set("build_config", build)
            }
        }
        refresh(&config, prefix: "")
    }
}
