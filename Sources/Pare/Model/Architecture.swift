/// A reference to one output tensor of one call of a layer, as Keras configs write it:
/// `[layer name, node index, tensor index]`.
public struct TensorRef: Hashable, Sendable, CustomStringConvertible {
    public var layer: String
    public var node: Int
    public var tensor: Int
    public var description: String { "\(layer)[\(node)][\(tensor)]" }
}

/// A layer as the architecture describes it: class, config, and the inputs of each call site.
public struct LayerNode: Sendable {
    public var name: String
    public var className: String
    /// The layer's `config` object (everything Keras needs to rebuild it).
    public var config: JSON
    /// The inputs of each call site (inbound node), in order; node indices already resolved to call sites.
    public var calls: [[TensorRef]]
    /// For a nested Sequential/Functional model: its own architecture.
    public var nested: Architecture?
    /// What Pare knows of the layer's class, its config parsed once (nested models have none).
    public private(set) var kind: Result<any LayerKind, LayerProblem>
    /// Per call, the tensor Keras 3 passed as `mask=` (it records a functional model's masks as
    /// operations feeding that argument); nil where the call has none.
    public var callMasks: [TensorRef?] = []
    /// Per call, the positional arguments that are not tensors (`NotEqual(ids, 0)`'s `0`), with nil
    /// where a tensor goes.
    public var callConstants: [[JSON?]] = []
    /// Per call, for kinds that name their tensor arguments (attention: `query`, `value`, `key`,
    /// `attention_mask`…), the parameter each input tensor is passed as, in `calls` order.
    public var callInputNames: [[String]] = []
    /// Per call, for those kinds, the keyword arguments that are not tensors (`use_causal_mask`…).
    public var callKeywords: [JSON] = []

    public init(name: String, className: String, config: JSON, calls: [[TensorRef]], nested: Architecture?) {
        self.name = name
        self.className = className
        self.config = config
        self.calls = calls
        self.nested = nested
        kind =
            nested == nil
            ? LayerRegistry.parse(className: className, config: config) : .failure(.invalidConfig("a nested model"))
    }

    /// The tensors a call needs before it runs: its inputs and its explicit mask.
    public func dependencies(ofCall call: Int) -> [TensorRef] {
        calls[call] + (call < callMasks.count ? callMasks[call].map { [$0] } ?? [] : [])
    }

    /// Parses the kind again with the constant arguments of the calls, for the kinds that take
    /// them (Keras 3 operations); every call must pass the same ones.
    mutating func bindCallConstants() {
        guard nested == nil, let type = LayerRegistry.kind(named: className) else { return }
        if !type.tensorParameters.isEmpty {
            // The kind reads which tensors its calls pass and how (one set of arguments per layer).
            guard let names = callInputNames.first, let keywords = callKeywords.first,
                callInputNames.allSatisfy({ $0 == names }), callKeywords.allSatisfy({ $0 == keywords })
            else {
                if !calls.isEmpty {
                    kind = .failure(.invalidConfig("called with different arguments at its call sites"))
                }
                return
            }
            kind = LayerRegistry.parse(
                className: className, config: config, call: CallSignature(inputNames: names, keywords: keywords))
            return
        }
        guard type.takesCallConstants else { return }
        guard let first = callConstants.first, callConstants.allSatisfy({ $0 == first }) else {
            kind = .failure(.invalidConfig("called with different constant arguments"))
            return
        }
        kind = LayerRegistry.parse(className: className, config: config, callArguments: first)
    }

    /// The parsed kind, nil for unknown classes, invalid configs and nested models.
    public var layerKind: (any LayerKind)? { try? kind.get() }

    /// An `InputLayer`: declares a model input and is never called.
    public var isInput: Bool { LayerRegistry.isInput(className) }
}

/// A layer with its path among nested models (`encoder/enc_conv1`).
public struct PathedLayer: Sendable {
    public var path: String
    public var layer: LayerNode
}

/// One call of a layer: the layer and the index of its call site (inbound node).
public struct CallSite: Sendable {
    public var layer: LayerNode
    public var call: Int
}

/// The graph of a Keras model from its `model_config`.
public struct Architecture: Sendable {
    public var name: String
    public var className: String
    public var layers: [LayerNode] { didSet { layerIndex = Self.index(layers) } }
    public var inputs: [TensorRef]
    public var outputs: [TensorRef]
    /// Input shapes without the batch axis, for InputLayers.
    public var inputShapes: [String: [Int?]]
    /// How far the config's node indices of a layer lie above its call numbers (tf.keras numbers a
    /// nested model's calls from 1): config index = call + offset. Absent means 0.
    public var nodeIndexOffsets: [String: Int] = [:]
    /// Each layer's position, first of a name: lookups by name are constant time (models of thousands
    /// of layers look up every tensor's producer).
    private var layerIndex: [String: Int]

    public init(
        name: String, className: String, layers: [LayerNode], inputs: [TensorRef], outputs: [TensorRef],
        inputShapes: [String: [Int?]]
    ) {
        self.name = name
        self.className = className
        self.layers = layers
        self.inputs = inputs
        self.outputs = outputs
        self.inputShapes = inputShapes
        layerIndex = Self.index(layers)
    }

    private static func index(_ layers: [LayerNode]) -> [String: Int] {
        var index: [String: Int] = [:]
        for (i, layer) in layers.enumerated() where index[layer.name] == nil { index[layer.name] = i }
        return index
    }

    public func layer(_ name: String) -> LayerNode? { layerIndex[name].map { layers[$0] } }

    /// Every call of every layer (InputLayers excepted) in an order where each call's inputs come
    /// first. Calls that never get their inputs (disconnected layers) are left out.
    /// Calls are taken in rounds: every call whose inputs the earlier rounds produced, in layer
    /// order. Each call waits on a count of missing inputs (Kahn's algorithm), so a chain of n
    /// layers costs O(n), not O(n²) rescans.
    public var callOrder: [CallSite] {
        struct Key: Hashable {
            let layer: String
            let node: Int
        }
        var produced = Set(inputs.map { Key(layer: $0.layer, node: $0.node) })
        for layer in layers where layer.isInput { produced.insert(Key(layer: layer.name, node: 0)) }
        let pending = layers.filter { !$0.isInput }.flatMap { l in l.calls.indices.map { (l, $0) } }
        var missing = [Int](repeating: 0, count: pending.count)
        var waiting: [Key: [Int]] = [:]
        for (i, (layer, call)) in pending.enumerated() {
            for key in Set(layer.dependencies(ofCall: call).map { Key(layer: $0.layer, node: $0.node) })
            where !produced.contains(key) {
                missing[i] += 1
                waiting[key, default: []].append(i)
            }
        }
        var order: [CallSite] = []
        var round = pending.indices.filter { missing[$0] == 0 }
        while !round.isEmpty {
            var next: [Int] = []
            for i in round {
                let (layer, call) = pending[i]
                order.append(CallSite(layer: layer, call: call))
                let key = Key(layer: layer.name, node: call)
                guard produced.insert(key).inserted else { continue }
                for j in waiting[key] ?? [] {
                    missing[j] -= 1
                    if missing[j] == 0 { next.append(j) }
                }
            }
            round = next.sorted()
        }
        return order
    }

    /// Every call in the order Keras 3's Functional runs them (`ops/function.py` `map_graph`): a
    /// depth-first walk from the outputs lists calls inputs-first; walking that list backwards, a
    /// call's depth is the largest of its consumers' + 1 (and of its layer's other calls); calls
    /// then run by decreasing depth, in the order their depth was first recorded. Only the order of
    /// calls that do not depend on each other differs from `callOrder`, and it matters only where
    /// a call has side effects on its inputs (Keras 3's MultiHeadAttention clears their masks).
    public var kerasExecutionOrder: [CallSite] {
        struct Key: Hashable {
            let layer: String
            let node: Int
        }
        let byName = Dictionary(layers.map { ($0.name, $0) }, uniquingKeysWith: { a, _ in a })
        func parents(_ key: Key) -> [Key] {
            guard let layer = byName[key.layer], !layer.isInput, key.node < layer.calls.count else { return [] }
            return layer.dependencies(ofCall: key.node).map { Key(layer: $0.layer, node: $0.node) }
        }
        var finished = Set<Key>()
        var inProgress = Set<Key>()
        var postOrder: [Key] = []
        // Iterative post-order DFS (a deep model would overflow the stack recursively).
        for output in outputs {
            var stack: [(Key, Int)] = [(Key(layer: output.layer, node: output.node), 0)]
            while let (key, next) = stack.popLast() {
                if next == 0 {
                    if finished.contains(key) || byName[key.layer] == nil { continue }
                    if inProgress.contains(key) { continue }  // a cycle: callOrder reports it
                    inProgress.insert(key)
                }
                let deps = parents(key)
                if next < deps.count {
                    stack.append((key, next + 1))
                    if !finished.contains(deps[next]) && !inProgress.contains(deps[next]) {
                        stack.append((deps[next], 0))
                    }
                } else {
                    inProgress.remove(key)
                    finished.insert(key)
                    postOrder.append(key)
                }
            }
        }
        var depthOrder: [Key] = []
        var depth: [Key: Int] = [:]
        var layerDepth: [String: Int] = [:]
        func record(_ key: Key, _ value: Int) {
            if depth[key] == nil { depthOrder.append(key) }
            depth[key] = value
        }
        for key in postOrder.reversed() {
            var d = depth[key] ?? 0
            if depth[key] == nil { record(key, 0) }
            d = max(d, layerDepth[key.layer] ?? 0)
            layerDepth[key.layer] = d
            record(key, d)
            for parent in parents(key) where finished.contains(parent) {
                record(parent, max(d + 1, depth[parent] ?? 0))
            }
        }
        var order: [CallSite] = []
        let levels = Dictionary(grouping: depthOrder, by: { depth[$0]! })
        for level in levels.keys.sorted(by: >) {
            for key in levels[level]! {
                guard let layer = byName[key.layer], !layer.isInput else { continue }
                order.append(CallSite(layer: layer, call: key.node))
            }
        }
        return order
    }

    /// The nested model at `path` (`encoder`, `outer/inner`), nil if there is none.
    public func nested(at path: String) -> Architecture? {
        var arch: Architecture? = self
        for part in path.split(separator: "/") { arch = arch?.layer(String(part))?.nested }
        return arch
    }

    /// Every layer including those inside nested models, with its path (`encoder/enc_conv1`).
    public func allLayers(prefix: String = "") -> [PathedLayer] {
        layers.flatMap { layer -> [PathedLayer] in
            let path = prefix + layer.name
            return [PathedLayer(path: path, layer: layer)] + (layer.nested?.allLayers(prefix: path + "/") ?? [])
        }
    }
}

public struct ArchitectureError: Error, CustomStringConvertible {
    public let object: String
    public let problem: String
    public var description: String { "\(object): \(problem)" }
}

extension Architecture {
    /// Parses a `model_config` as Keras 2.x, tf.keras 2 and Keras 3 write it.
    public static func parse(_ json: JSON) throws -> Architecture {
        guard let className = json["class_name"]?.stringValue else {
            throw ArchitectureError(object: "model_config", problem: "has no class_name")
        }
        guard let config = json["config"] else {
            throw ArchitectureError(object: "model_config", problem: "has no config")
        }
        guard LayerRegistry.isModel(className) else {
            throw ArchitectureError(
                object: "model_config",
                problem:
                    "top-level class '\(className)' is not a model "
                    + "(\(LayerRegistry.modelClassNames.sorted().joined(separator: ", ")))"
            )
        }
        return className == LayerRegistry.sequential
            ? try parseSequential(config, path: "model_config")
            : try parseFunctional(config, className: className, path: "model_config")
    }

    static func batchShape(_ config: JSON) -> [Int?]? {
        guard let shape = (config["batch_shape"] ?? config["batch_input_shape"])?.arrayValue, !shape.isEmpty else {
            return nil
        }
        let dims = shape.dropFirst().map { $0.intValue }
        // A dimension is a size or unknown (null); anything else makes the shape unusable.
        guard dims.allSatisfy({ $0 == nil || (0...LayerConfig.maxDimension).contains($0!) }) else { return nil }
        return dims
    }

    static func layerNode(_ entry: JSON, path: String) throws -> LayerNode {
        guard let className = entry["class_name"]?.stringValue else {
            throw ArchitectureError(object: path, problem: "layer without class_name")
        }
        let config = entry["config"] ?? .object([])
        guard let name = entry["name"]?.stringValue ?? config["name"]?.stringValue else {
            throw ArchitectureError(object: path, problem: "\(className) layer without a name")
        }
        try checkLayerName(name, object: path)
        var nested: Architecture?
        if className == LayerRegistry.sequential {
            nested = try parseSequential(config, path: path + "/" + name)
        } else if LayerRegistry.isModel(className) {
            nested = try parseFunctional(config, className: className, path: path + "/" + name)
        }
        return LayerNode(name: name, className: className, config: config, calls: [], nested: nested)
    }

    /// Pare names nested layers `outer/inner` and Keras refuses `/` in layer names, so a name with
    /// one (or an empty name) could only address the wrong layer: refused.
    static func checkLayerName(_ name: String, object: String) throws {
        guard !name.isEmpty else { throw ArchitectureError(object: object, problem: "a layer with an empty name") }
        guard !name.contains("/") else {
            throw ArchitectureError(
                object: object + "/" + name, problem: "a layer name containing '/', which Keras does not allow")
        }
    }

    /// Node and tensor indices count call sites and outputs: far below this.
    static let maxIndex = 1 << 20

    static func parseSequential(_ config: JSON, path: String) throws -> Architecture {
        // Keras <= 2.2.2 stored the layer list itself; later versions {"name": ..., "layers": [...]}.
        let entries: [JSON]
        if let list = config.arrayValue {
            entries = list
        } else if let list = config["layers"]?.arrayValue {
            entries = list
        } else {
            throw ArchitectureError(object: path, problem: "\(LayerRegistry.sequential) config has no layer list")
        }
        let name = config["name"]?.stringValue ?? "sequential"
        var layers: [LayerNode] = []
        var names = Set<String>()  // a list scan per layer made large models quadratic
        var inputShapes: [String: [Int?]] = [:]
        var previous: TensorRef?
        for (i, entry) in entries.enumerated() {
            var node = try layerNode(entry, path: path)
            guard names.insert(node.name).inserted else {
                throw ArchitectureError(object: path + "/" + node.name, problem: "layer name used twice")
            }
            if node.isInput {
                guard i == 0 else {
                    throw ArchitectureError(
                        object: path + "/" + node.name, problem: "\(InputLayerKind.canonicalName) after the first layer"
                    )
                }
                guard let shape = batchShape(node.config) else {
                    throw ArchitectureError(
                        object: path + "/" + node.name,
                        problem:
                            "\(InputLayerKind.canonicalName) without a valid batch_shape (sizes from 0 to 2^32, "
                            + "or null)"
                    )
                }
                inputShapes[node.name] = shape
                layers.append(node)
                previous = TensorRef(layer: node.name, node: 0, tensor: 0)
                continue
            }
            if previous == nil {
                // No InputLayer: the first layer carries batch_input_shape; Keras makes an input for it.
                guard let shape = batchShape(node.config) else {
                    throw ArchitectureError(
                        object: path + "/" + node.name,
                        problem: "first layer of a \(LayerRegistry.sequential) model has no input shape")
                }
                let inputName = node.name + "_input"
                // The input Keras makes takes a name: a layer called so too would be a second one.
                guard names.insert(inputName).inserted else {
                    throw ArchitectureError(
                        object: path + "/" + inputName,
                        problem: "layer name used twice (Keras names the model's input so)")
                }
                inputShapes[inputName] = shape
                layers.append(
                    LayerNode(
                        name: inputName, className: InputLayerKind.canonicalName,
                        config: .object([
                            ("batch_input_shape", .array([.null] + shape.map { $0.map(JSON.int) ?? .null })),
                            ("name", .string(inputName)),
                        ]),
                        calls: [], nested: nil))
                previous = TensorRef(layer: inputName, node: 0, tensor: 0)
            }
            node.calls = [[previous!]]
            layers.append(node)
            previous = TensorRef(layer: node.name, node: 0, tensor: 0)
        }
        guard let first = layers.first, let last = previous else {
            throw ArchitectureError(object: path, problem: "\(LayerRegistry.sequential) model without layers")
        }
        return Architecture(
            name: name, className: LayerRegistry.sequential, layers: layers,
            inputs: [TensorRef(layer: first.name, node: 0, tensor: 0)], outputs: [last], inputShapes: inputShapes)
    }

    static func parseFunctional(_ config: JSON, className: String, path: String) throws -> Architecture {
        guard let entries = config["layers"]?.arrayValue else {
            throw ArchitectureError(object: path, problem: "\(className) config has no layer list")
        }
        var layers: [LayerNode] = []
        var names = Set<String>()  // a list scan per layer made large models quadratic
        var rawCalls: [[TensorRef]] = []
        var inputShapes: [String: [Int?]] = [:]
        for entry in entries {
            var node = try layerNode(entry, path: path)
            let object = path + "/" + node.name
            guard names.insert(node.name).inserted else {
                throw ArchitectureError(object: object, problem: "layer name used twice")
            }
            if node.isInput {
                guard let shape = batchShape(node.config) else {
                    throw ArchitectureError(
                        object: object,
                        problem:
                            "\(InputLayerKind.canonicalName) without a valid batch_shape (sizes from 0 to 2^32, "
                            + "or null)"
                    )
                }
                inputShapes[node.name] = shape
            }
            let parameters = LayerRegistry.kind(named: node.className).map(CallParameters.init)
            for inbound in entry["inbound_nodes"]?.arrayValue ?? [] {
                let parsed =
                    try parameters.flatMap { $0.tensors.isEmpty ? nil : $0 }.map {
                        try parseNamedInboundNode(inbound, parameters: $0, object: object)
                    } ?? parseInboundNode(inbound, object: object)
                rawCalls.append(parsed.refs)
                node.calls.append(parsed.refs)
                node.callMasks.append(parsed.mask)
                node.callConstants.append(parsed.constants)
                node.callInputNames.append(parsed.names)
                node.callKeywords.append(parsed.keywords)
            }
            node.bindCallConstants()
            layers.append(node)
        }
        var inputs = try parseRefList(config["input_layers"], object: path + " input_layers")
        var outputs = try parseRefList(config["output_layers"], object: path + " output_layers")
        guard !inputs.isEmpty, !outputs.isEmpty else {
            throw ArchitectureError(object: path, problem: "a model needs at least one input and one output")
        }
        let byName = Dictionary(layers.map { ($0.name, $0) }, uniquingKeysWith: { a, _ in a })
        var offset: [String: Int] = [:]
        let keras3Calls = entries.contains { $0["inbound_nodes"]?.arrayValue?.first?.objectValue != nil }
        if keras3Calls {
            // Keras 3 numbers calls from 0, but its model inputs and outputs name a nested Functional's
            // calls from 1 (`functional_from_config` subtracts 1 for a Functional, not a Sequential).
            func shifted(_ ref: TensorRef) -> TensorRef {
                guard let producer = byName[ref.layer], producer.nested != nil,
                    producer.className != LayerRegistry.sequential
                else { return ref }
                return TensorRef(layer: ref.layer, node: ref.node - 1, tensor: ref.tensor)
            }
            inputs = inputs.map(shifted)
            outputs = outputs.map(shifted)
        } else {
            // Node indices count a layer's call sites as tf.keras and Keras 2 do: a plain layer's from 0;
            // a nested Functional's from 1, node 0 being the model's own construction on its Input (so
            // `[encoder, 0]` is that construction, which the outer graph cannot reach). A nested
            // Sequential has that node only when it declared its input; its indices show which.
            var maxNode: [String: Int] = [:]
            for ref in layers.flatMap({ $0.calls.flatMap { $0 } }) + outputs {
                maxNode[ref.layer] = max(maxNode[ref.layer] ?? 0, ref.node)
            }
            for layer in layers where layer.nested != nil {
                offset[layer.name] =
                    layer.className == LayerRegistry.sequential
                    ? min(1, max(0, (maxNode[layer.name] ?? 0) + 1 - layer.calls.count)) : 1
            }
        }
        func resolve(_ ref: TensorRef, object: String) throws -> TensorRef {
            guard let producer = byName[ref.layer] else {
                throw ArchitectureError(object: object, problem: "refers to unknown layer '\(ref.layer)'")
            }
            var r = ref
            if producer.isInput {
                guard ref.node == 0 else {
                    throw ArchitectureError(
                        object: object, problem: "refers to node \(ref.node) of input '\(ref.layer)'")
                }
                return r
            }
            r.node -= offset[ref.layer] ?? 0
            guard r.node >= 0, r.node < producer.calls.count else {
                throw ArchitectureError(
                    object: object,
                    problem: "refers to call \(ref.node) of '\(ref.layer)', which has \(producer.calls.count)")
            }
            return r
        }
        for i in layers.indices {
            let object = path + "/" + layers[i].name
            layers[i].calls = try layers[i].calls.map { try $0.map { try resolve($0, object: object) } }
            layers[i].callMasks = try layers[i].callMasks.map { try $0.map { try resolve($0, object: object) } }
        }
        var architecture = Architecture(
            name: config["name"]?.stringValue ?? "model", className: className, layers: layers,
            inputs: try inputs.map { try resolve($0, object: path + " input_layers") },
            outputs: try outputs.map { try resolve($0, object: path + " output_layers") },
            inputShapes: inputShapes)
        architecture.nodeIndexOffsets = offset.filter { $0.value > 0 }
        return architecture
    }

    /// One call as a config records it.
    struct InboundNode {
        var refs: [TensorRef]
        var mask: TensorRef?
        var constants: [JSON?] = []
        /// For kinds that name their tensor arguments: each ref's parameter.
        var names: [String] = []
        var keywords: JSON = .object([])
    }

    /// The tensor parameters of a kind's call, for reading calls that pass several by name.
    struct CallParameters {
        var tensors: [String]
        var maskList: [String]
        init(_ kind: any LayerKind.Type) {
            tensors = kind.tensorParameters
            maskList = kind.maskListParameters
        }
    }

    /// A call of a kind that names its tensor arguments (`MultiHeadAttention(query, value,
    /// key=…, attention_mask=…)`, `Attention([q, v], mask=[qm, vm])`), in Keras 3's or Keras 2's
    /// form: positional tensors (a first-argument list counts one per element) take the parameter
    /// names in order, keyword tensors their own; the refs come out in parameter order. Keyword
    /// values that are not tensors are kept for the kind; a tensor under a name the kind does not
    /// take, or twice under one name, is refused rather than dropped.
    static func parseNamedInboundNode(_ node: JSON, parameters: CallParameters, object: String) throws -> InboundNode {
        var named: [(String, TensorRef)] = []
        var keywords: [(String, JSON)] = []
        func add(_ name: String, _ ref: TensorRef) throws {
            guard parameters.tensors.contains(name) else {
                throw ArchitectureError(
                    object: object, problem: "passes a tensor as '\(name)', which the layer does not take")
            }
            guard !named.contains(where: { $0.0 == name }) else {
                throw ArchitectureError(object: object, problem: "passes '\(name)' twice")
            }
            named.append((name, ref))
        }
        var positional: [TensorRef?] = []
        var keywordItems: [(String, JSON)] = []
        var keras2 = false
        if let entries = node.arrayValue {
            // Keras 2: one entry per tensor of the first argument, each `[name, node, tensor, kwargs]`.
            keras2 = true
            for entry in entries {
                guard let parts = entry.arrayValue, parts.count >= 3 else {
                    throw ArchitectureError(
                        object: object, problem: "malformed inbound node entry \(entry.serialized())")
                }
                positional.append(try parseKeras2Node([.array(Array(parts.prefix(3)))], object: object)[0])
            }
            keywordItems = entries.first?.arrayValue?.dropFirst(3).first?.objectValue ?? []
        } else {
            guard let args = node["args"]?.arrayValue else {
                throw ArchitectureError(
                    object: object, problem: "malformed inbound node \(node.serialized().prefix(200))")
            }
            for (i, arg) in args.enumerated() {
                if isKerasTensor(arg) {
                    var refs: [TensorRef] = []
                    try collectKerasTensors(arg, into: &refs, object: object)
                    positional += refs.map { Optional($0) }
                } else if i == 0, let list = arg.arrayValue {
                    for item in list {
                        guard isKerasTensor(item) else {
                            throw ArchitectureError(
                                object: object, problem: "a first-argument list holding a non-tensor")
                        }
                        var refs: [TensorRef] = []
                        try collectKerasTensors(item, into: &refs, object: object)
                        positional += refs.map { Optional($0) }
                    }
                } else if arg.isNull {
                    positional.append(nil)
                } else {
                    throw ArchitectureError(
                        object: object,
                        problem: "a positional argument \(arg.serialized().prefix(80)) that is not a tensor")
                }
            }
            keywordItems = node["kwargs"]?.objectValue ?? []
        }
        guard positional.count <= parameters.tensors.count else {
            throw ArchitectureError(
                object: object,
                problem: "passes \(positional.count) tensors; the layer takes at most \(parameters.tensors.count)")
        }
        for (i, ref) in positional.enumerated() { if let ref { try add(parameters.tensors[i], ref) } }
        for (key, value) in keywordItems {
            if key == "mask", !parameters.maskList.isEmpty, let list = value.arrayValue {
                guard list.count <= parameters.maskList.count else {
                    throw ArchitectureError(object: object, problem: "a mask= list of \(list.count) masks")
                }
                for (i, item) in list.enumerated() where !item.isNull {
                    guard let ref = try keywordTensor(item, keras2: keras2, object: object) else {
                        throw ArchitectureError(object: object, problem: "a mask= entry that is not a tensor")
                    }
                    try add(parameters.maskList[i], ref)
                }
            } else if let ref = try keywordTensor(value, keras2: keras2, object: object) {
                try add(key, ref)
            } else if value.arrayValue != nil || value.objectValue != nil {
                throw ArchitectureError(
                    object: object, problem: "keyword argument '\(key)' holds a structure Pare does not read")
            } else if !value.isNull {
                keywords.append((key, value))
            }
        }
        named.sort { a, b in parameters.tensors.firstIndex(of: a.0)! < parameters.tensors.firstIndex(of: b.0)! }
        return InboundNode(
            refs: named.map(\.1), mask: nil, constants: [], names: named.map(\.0), keywords: .object(keywords))
    }

    /// A keyword value that is a tensor: Keras 3's `__keras_tensor__` object, Keras 2's `[name, node, tensor]`.
    static func keywordTensor(_ value: JSON, keras2: Bool, object: String) throws -> TensorRef? {
        if isKerasTensor(value) {
            var refs: [TensorRef] = []
            try collectKerasTensors(value, into: &refs, object: object)
            return refs.first
        }
        if keras2, let parts = value.arrayValue, parts.count == 3, parts[0].stringValue != nil,
            parts[1].intValue != nil, parts[2].intValue != nil
        {
            return try parseKeras2Node([value], object: object)[0]
        }
        return nil
    }

    /// `[["name", node, tensor, {}], ...]` (Keras 2) or `{"args": [...], "kwargs": {...}}` (Keras 3).
    static func parseInboundNode(_ node: JSON, object: String) throws -> InboundNode {
        if let list = node.arrayValue {
            return InboundNode(refs: try parseKeras2Node(list, object: object), mask: nil)
        }
        guard let args = node["args"] else {
            throw ArchitectureError(object: object, problem: "malformed inbound node \(node.serialized().prefix(200))")
        }
        var refs: [TensorRef] = []
        try collectKerasTensors(args, into: &refs, object: object)
        // Non-tensor positional arguments, for operations recorded as layers (`NotEqual(x, 0)`).
        let constants: [JSON?] = (args.arrayValue ?? []).map { isKerasTensor($0) || $0.arrayValue != nil ? nil : $0 }
        // `mask=` is the mask Keras 3 computed for the call; other tensors passed by keyword (a
        // recurrent layer's `initial_state`) follow the positional ones: a layer that takes one
        // input then sees too many and says so, rather than Pare silently computing without them.
        var mask: TensorRef?
        for (key, value) in node["kwargs"]?.objectValue ?? [] {
            if key == "mask" {
                if let list = value.arrayValue, list.count != 1 {
                    throw ArchitectureError(
                        object: object, problem: "a mask= list of \(list.count) masks, which Pare does not follow")
                }
                var maskRefs: [TensorRef] = []
                try collectKerasTensors(value, into: &maskRefs, object: object)
                guard maskRefs.count <= 1 else {
                    throw ArchitectureError(object: object, problem: "a call with \(maskRefs.count) mask tensors")
                }
                mask = maskRefs.first
            } else {
                try collectKerasTensors(value, into: &refs, object: object)
            }
        }
        return InboundNode(refs: refs, mask: mask, constants: constants)
    }

    static func isKerasTensor(_ value: JSON) -> Bool { value["class_name"]?.stringValue == "__keras_tensor__" }

    static func parseKeras2Node(_ list: [JSON], object: String) throws -> [TensorRef] {
        do {
            return try list.map { item in
                guard let parts = item.arrayValue, parts.count >= 3, let name = parts[0].stringValue,
                    let n = parts[1].intValue, let t = parts[2].intValue
                else {
                    throw ArchitectureError(
                        object: object, problem: "malformed inbound node entry \(item.serialized())")
                }
                return try checkedRef(name, n, t, object: object)
            }
        }
    }

    static func collectKerasTensors(_ value: JSON, into refs: inout [TensorRef], object: String) throws {
        switch value {
        case .array(let items):
            for item in items { try collectKerasTensors(item, into: &refs, object: object) }
        case .object:
            if value["class_name"]?.stringValue == "__keras_tensor__" {
                guard let history = value["config"]?["keras_history"]?.arrayValue, history.count == 3,
                    let name = history[0].stringValue, let n = history[1].intValue, let t = history[2].intValue
                else {
                    throw ArchitectureError(object: object, problem: "keras tensor without a valid keras_history")
                }
                refs.append(try checkedRef(name, n, t, object: object))
            }
        default:
            break
        }
    }

    /// `[["a", 0, 0], ["b", 0, 0]]`, or a single `["a", 0, 0]` (Keras 3 with one input or output).
    static func parseRefList(_ value: JSON?, object: String) throws -> [TensorRef] {
        guard let list = value?.arrayValue else { throw ArchitectureError(object: object, problem: "missing") }
        let items = list.first?.stringValue != nil ? [JSON.array(list)] : list
        return try items.map { item in
            guard let parts = item.arrayValue, parts.count >= 3, let name = parts[0].stringValue,
                let n = parts[1].intValue, let t = parts[2].intValue
            else {
                throw ArchitectureError(object: object, problem: "malformed entry \(item.serialized())")
            }
            return try checkedRef(name, n, t, object: object)
        }
    }

    static func checkedRef(_ name: String, _ node: Int, _ tensor: Int, object: String) throws -> TensorRef {
        guard (0...maxIndex).contains(node), (0...maxIndex).contains(tensor) else {
            throw ArchitectureError(
                object: object, problem: "refers to node \(node), tensor \(tensor) of '\(name)': out of range")
        }
        return TensorRef(layer: name, node: node, tensor: tensor)
    }
}
