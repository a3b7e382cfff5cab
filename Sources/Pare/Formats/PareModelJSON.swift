import HDF5

/// The `model` section of a `.pare` header: everything a Keras legacy file needs besides tensor data.
enum PareModelJSON {
    static func attribute(_ value: AttributeValue) -> JSON {
        switch value {
        case .strings(let values, let shape, let e):
            return .object([
                ("strings", .array(values.map(JSON.string))), ("shape", .array(shape.map(JSON.int))),
                ("vlen", .bool(e.variableLength)), ("utf8", .bool(e.utf8)), ("size", .int(e.fixedSize)),
                (
                    "pad",
                    .string(e.padding == .nullPadded ? "nullpad" : e.padding == .spacePadded ? "spacepad" : "nullterm")
                ),
            ])
        case .numbers(let type, let shape, let bytes):
            return .object([
                ("numbers", .string(bytes.map { String(format: "%02x", $0) }.joined())),
                ("dtype", .string(DType(hdf5: type)?.rawValue ?? type.name)), ("shape", .array(shape.map(JSON.int))),
            ])
        }
    }

    static func attribute(_ json: JSON, fail: (String) -> Error) throws -> AttributeValue {
        guard let shape = json["shape"]?.arrayValue?.compactMap({ $0.intValue }) else {
            throw fail("attribute without shape")
        }
        if let strings = json["strings"]?.arrayValue {
            let e = StringEncoding(
                variableLength: json["vlen"]?.boolValue ?? true, utf8: json["utf8"]?.boolValue ?? true,
                fixedSize: json["size"]?.intValue ?? 0,
                padding: json["pad"]?.stringValue == "nullpad"
                    ? .nullPadded : json["pad"]?.stringValue == "spacepad" ? .spacePadded : .nullTerminated)
            let values = try strings.map { try $0.stringValue ?? { throw fail("attribute string is not a string") }() }
            // What unpack writes must read back the same: HDF5 strings end at a NUL, a fixed-length
            // string holds at most its size, and a variable-length one has no size.
            if values.contains(where: { $0.utf8.contains(0) }) { throw fail("an attribute string holds a NUL byte") }
            let size = json["size"]?.intValue ?? 0
            // Size 0 is "as long as the longest", which reads back as that length: only for an empty list.
            let fits = (1...(1 << 16)).contains(size) && values.allSatisfy { $0.utf8.count <= size }
            guard e.variableLength ? size == 0 : fits || (size == 0 && values.isEmpty) else {
                throw fail("a \(e.variableLength ? "variable" : "fixed")-length string attribute declares size \(size)")
            }
            // The writer hands libhdf5 as many strings as the shape says: the counts must agree.
            guard shape.count == json["shape"]?.arrayValue?.count, shape.allSatisfy({ $0 >= 0 }),
                ShapeMath.product(shape) == values.count
            else {
                throw fail(
                    "an attribute holds \(values.count) strings but its shape is \(json["shape"]?.serialized() ?? "?")")
            }
            return .strings(values, shape: shape, encoding: e)
        }
        guard let hex = json["numbers"]?.stringValue,
            let dtype = json["dtype"]?.stringValue.flatMap(DType.init(rawValue:)),
            hex.count % 2 == 0
        else { throw fail("malformed attribute \(json.serialized().prefix(80))") }
        var bytes = [UInt8]()
        var i = hex.startIndex
        while i < hex.endIndex {
            let j = hex.index(i, offsetBy: 2)
            guard let b = UInt8(hex[i..<j], radix: 16) else { throw fail("attribute bytes are not hex") }
            bytes.append(b)
            i = j
        }
        guard shape.count == json["shape"]?.arrayValue?.count, shape.allSatisfy({ $0 >= 0 }),
            let count = ShapeMath.product(shape + [dtype.byteCount]), bytes.count == count
        else {
            throw fail("attribute bytes do not match its shape")
        }
        return .numbers(dtype.hdf5, shape: shape, bytes: bytes)
    }

    static func attributes(_ list: [(String, AttributeValue)]) -> JSON {
        .array(list.map { .array([.string($0.0), attribute($0.1)]) })
    }

    static func attributes(_ json: JSON?, fail: (String) -> Error) throws -> [(String, AttributeValue)] {
        var seen = Set<String>()
        return try (json?.arrayValue ?? []).map { pair in
            guard let name = pair[0]?.stringValue, let value = pair[1] else { throw fail("malformed attribute list") }
            guard !name.isEmpty, !name.utf8.contains(0), seen.insert(name).inserted else {
                throw fail("an attribute name is empty, holds a NUL byte or is repeated: '\(name)'")
            }
            return (name, try attribute(value, fail: fail))
        }
    }

    /// Where a tensor sits: a layer's weight, or (both nil) optimizer state and other stored nodes.
    struct TensorPlace {
        var layer: String?
        var weight: String?
    }

    /// The model section, numbering tensors through `add` in the order they are met.
    static func model(_ model: Model, add: (Tensor, TensorPlace) throws -> Int) throws -> JSON {
        func node(_ n: StoredNode) throws -> JSON {
            switch n {
            case .group(let name, let attrs, let children):
                return .object([
                    ("group", .string(name)), ("attributes", attributes(attrs)),
                    ("children", .array(try children.map(node))),
                ])
            case .dataset(let name, let attrs, let tensor):
                return .object([
                    ("dataset", .string(name)), ("attributes", attributes(attrs)),
                    ("tensor", .int(try add(tensor, TensorPlace()))),
                ])
            }
        }
        let layers: [JSON] = try model.layers.map { layer in
            .object([
                ("name", .string(layer.name)), ("attributes", attributes(layer.extraAttributes)),
                (
                    "weights",
                    .array(
                        try layer.weights.map { w in
                            .object([
                                ("name", .string(w.name)),
                                ("tensor", .int(try add(w.tensor, TensorPlace(layer: layer.name, weight: w.name)))),
                                ("attributes", attributes(w.attributes)),
                            ])
                        })
                ),
            ])
        }
        let configText: JSON = model.configText.map(JSON.string) ?? .null
        return .object([
            ("source_format", .string(model.layout.rawValue)), ("kind", .string(model.kind.rawValue)),
            ("keras_metadata", model.source.kerasMetadataText.map(JSON.string) ?? .null),
            ("model_config", configText),
            ("name_list_encoding", attribute(.strings([], shape: [0], encoding: model.source.nameListEncoding))),
            ("root_attributes", attributes(model.source.rootAttributes)),
            ("weights_group_attributes", attributes(model.source.weightsGroupAttributes)),
            ("layers", .array(layers)),
            ("optimizer", try model.optimizer.map(node) ?? .null),
            ("root_extras", .array(try model.rootExtras.map(node))),
            ("weights_group_extras", .array(try model.weightsGroupExtras.map(node))),
        ])
    }

    static func model(_ json: JSON, path: String, tensor: (Int) throws -> Tensor, fail: (String) -> Error) throws
        -> Model
    {
        func node(_ j: JSON) throws -> StoredNode {
            if let name = j["group"]?.stringValue {
                if let problem = NameRules.problem(withName: name) { throw fail("a group has \(problem)") }
                return .group(
                    name: name, attributes: try attributes(j["attributes"], fail: fail),
                    children: try unique(
                        try (j["children"]?.arrayValue ?? []).map(node), in: "group '\(name)'", fail: fail))
            }
            guard let name = j["dataset"]?.stringValue, let i = j["tensor"]?.intValue else {
                throw fail("malformed node")
            }
            if let problem = NameRules.problem(withName: name) { throw fail("a dataset has \(problem)") }
            return .dataset(name: name, attributes: try attributes(j["attributes"], fail: fail), tensor: try tensor(i))
        }
        guard let layout = json["source_format"]?.stringValue.flatMap(ModelLayout.init(rawValue:)),
            let kind = json["kind"]?.stringValue.flatMap(ModelKind.init(rawValue:)),
            let layerList = json["layers"]?.arrayValue
        else { throw fail("the model section is missing or malformed") }
        let layers = try layerList.map { l -> LayerWeights in
            guard let name = l["name"]?.stringValue, let weights = l["weights"]?.arrayValue else {
                throw fail("malformed layer entry")
            }
            if let problem = NameRules.problem(withName: name) { throw fail("a layer has \(problem)") }
            return LayerWeights(
                name: name,
                weights: try weights.map { w in
                    guard let wn = w["name"]?.stringValue, let i = w["tensor"]?.intValue else {
                        throw fail("malformed weight entry in layer '\(name)'")
                    }
                    if let problem = NameRules.problem(withPath: wn) {
                        throw fail("a weight of layer '\(name)' has \(problem)")
                    }
                    return Weight(
                        name: wn, tensor: try tensor(i), attributes: try attributes(w["attributes"], fail: fail))
                }, extraAttributes: try attributes(l["attributes"], fail: fail))
        }
        _ = try unique(
            layers.map { .group(name: $0.name, attributes: [], children: []) }, in: "the layer list", fail: fail)
        var model = Model(format: .pare, kind: kind, sourcePath: path, layers: layers)
        model.layout = layout
        if let text = json["keras_metadata"]?.stringValue {
            model.source.kerasMetadataText = text
            model.kerasVersion = (try? JSON.parse(text))?["keras_version"]?.stringValue
        }
        if let text = json["model_config"]?.stringValue {
            do { model.config = try JSON.parse(text) } catch { throw fail("model_config does not parse: \(error)") }
            model.source.originalConfigText = text
        }
        if case .strings(_, _, let e)? = try json["name_list_encoding"].map({ try attribute($0, fail: fail) }) {
            model.source.nameListEncoding = e
        }
        model.source.rootAttributes = try attributes(json["root_attributes"], fail: fail)
        model.source.weightsGroupAttributes = try attributes(json["weights_group_attributes"], fail: fail)
        if let value = model.source.rootAttributes.first(where: { $0.0 == "model_config" })?.1,
            value.singleString == nil
        {
            throw fail("root attribute model_config does not hold exactly one string")
        }
        for (key, value) in model.source.rootAttributes {
            if key == "keras_version" { model.kerasVersion = value.singleString }
            if key == "backend" { model.backend = value.singleString }
            if key == "training_config" { model.trainingConfig = value.singleString }
        }
        if let o = json["optimizer"], !o.isNull { model.optimizer = try node(o) }
        model.rootExtras = try unique(
            try (json["root_extras"]?.arrayValue ?? []).map(node), in: "root_extras", fail: fail)
        model.weightsGroupExtras = try unique(
            try (json["weights_group_extras"]?.arrayValue ?? []).map(node), in: "weights_group_extras", fail: fail)
        try checkConsistency(model, fail: fail)
        return model
    }

    /// Names within one group must differ: unpack would fail on the second, or overwrite the first.
    static func unique(_ nodes: [StoredNode], in place: String, fail: (String) -> Error) throws -> [StoredNode] {
        var seen = Set<String>()
        for n in nodes where !seen.insert(n.name).inserted { throw fail("\(place) names '\(n.name)' twice") }
        return nodes
    }

    /// The kind, layout and lists must describe one file the writer can make: a full model has a
    /// config (a weights-only one may carry the one given with --config), plain tensors have no
    /// layers, and extras do not take the names the writer gives its
    /// own groups (`model_weights`, a layer's group, Keras 3's `layers`, `vars` and `optimizer`).
    static func checkConsistency(_ model: Model, fail: (String) -> Error) throws {
        switch model.kind {
        case .fullModel where model.config == nil: throw fail("a full model without model_config")
        case .tensors where !model.layers.isEmpty || model.config != nil:
            throw fail("plain tensors with layers or a model_config")
        default: break
        }
        guard model.kind != .tensors else { return }
        let layerNames = Set(model.layers.map(\.name))
        var reservedAtRoot: Set<String>
        switch model.layout {
        case .keras3: reservedAtRoot = ["layers", "_layer_checkpoint_dependencies", "vars", "optimizer"]
        case .kerasLegacy, .tensors:
            reservedAtRoot =
                model.kind == .fullModel
                ? ["model_weights", "optimizer_weights"] : layerNames.union(["optimizer_weights"])
        }
        if let clash = model.rootExtras.first(where: { reservedAtRoot.contains($0.name) }) {
            throw fail("root_extras names '\(clash.name)', which the writer uses for the model itself")
        }
        if let clash = model.weightsGroupExtras.first(where: { layerNames.contains($0.name) }) {
            throw fail("weights_group_extras names '\(clash.name)', which is a layer's group")
        }
    }
}
