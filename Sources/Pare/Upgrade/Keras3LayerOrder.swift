/// The order in which Keras 3 lists the layers of a Functional model it rebuilds from a config:
/// the order its config.json must give them, because `model.weights.h5` numbers each class's
/// groups by it (`layers/embedding`, `layers/embedding_1`, …).
///
/// Keras 3 orders operations as `ops/function.py` `map_graph` does: by decreasing depth from the
/// outputs, ties in the order a depth-first walk from the outputs first meets them; a call's
/// inputs are walked args first, then kwargs by sorted key. Its graph also holds the operations
/// that compute Keras masks (`not_equal` for an Embedding's mask, `logical_or` where masks merge),
/// with the mask passed to the layers whose `call` takes one: they change depths and the walk,
/// so they are modelled here, each as Keras 3.15's `compute_mask` builds it. tf.keras wrote its
/// configs in another order, so an upgraded config is reordered by this one.
struct Keras3LayerOrder {
    /// A node of Keras 3's graph: a layer's call, or an operation computing a mask.
    enum NodeID: Hashable {
        case call(String, Int)
        case maskOperation(Int)
    }

    /// Classes whose `call` takes `mask` (Keras fills it with the first argument's masks).
    static let takesMask: Set<String> = [
        "AdditiveAttention", "Attention", "BatchNormalization", "Bidirectional", "GRU", "GlobalAveragePooling1D",
        "LSTM", "SimpleRNN", "Softmax", "TimeDistributed",
    ]
    /// Classes whose call takes a mask per tensor argument (`query_mask`, `value_mask`, `key_mask`).
    static let takesMaskPerTensor: Set<String> = ["MultiHeadAttention"]

    private var parents: [NodeID: [NodeID]] = [:]
    private var operations = 0
    /// The node computing each tensor's mask (nil: no mask).
    private var masks: [TensorRef: NodeID] = [:]

    /// `layers` are the upgraded config's entries (`name`, `inbound_nodes` in Keras 3's form), `arch`
    /// Pare's parse of the same model (its kinds and call order).
    static func order(_ layers: [JSON], architecture arch: Architecture) -> [JSON] {
        var graph = Keras3LayerOrder()
        let entries = Dictionary(
            layers.compactMap { l in l["name"]?.stringValue.map { ($0, l) } }, uniquingKeysWith: { a, _ in a })
        for site in arch.callOrder {
            guard let entry = entries[site.layer.name] else { continue }
            graph.addCall(site, entry: entry)
        }
        // Layers the upgrade added (a Rescaling before a hard_sigmoid): their calls as recorded.
        let known = Set(arch.layers.map(\.name))
        for (name, entry) in entries where !known.contains(name) {
            for (call, node) in (entry["inbound_nodes"]?.arrayValue ?? []).enumerated() {
                var found: [NodeID] = []
                tensors(in: node["args"] ?? .array([]), into: &found)
                tensors(in: node["kwargs"] ?? .object([]), into: &found)
                graph.parents[.call(name, call)] = found
            }
        }
        let ranked = graph.layerOrder(outputs: arch.outputs.map { NodeID.call($0.layer, $0.node) })
        let rank = Dictionary(ranked.enumerated().map { ($1, $0) }, uniquingKeysWith: { a, _ in a })
        // Layers the outputs do not reach keep their place after the others.
        return layers.enumerated().sorted { a, b in
            let ra = a.element["name"]?.stringValue.flatMap { rank[$0] } ?? ranked.count + a.offset
            let rb = b.element["name"]?.stringValue.flatMap { rank[$0] } ?? ranked.count + b.offset
            return ra < rb
        }.map(\.element)
    }

    /// Layer names by decreasing depth, ties by the walk's first visit (map_graph's order).
    private func layerOrder(outputs: [NodeID]) -> [String] {
        let (depth, firstVisit) = mapGraph(outputs)
        var layerDepth: [String: Int] = [:]
        var layerVisit: [String: Int] = [:]
        for (node, d) in depth {
            guard case .call(let name, _) = node else { continue }
            layerDepth[name] = max(layerDepth[name] ?? 0, d)
            layerVisit[name] = min(layerVisit[name] ?? .max, firstVisit[node] ?? .max)
        }
        return layerDepth.keys.sorted { a, b in
            layerDepth[a]! != layerDepth[b]! ? layerDepth[a]! > layerDepth[b]! : layerVisit[a]! < layerVisit[b]!
        }
    }

    /// The order tf.keras gives a Functional model's layers (`functional.py` `_map_graph_network`,
    /// the same walk with no mask operations in the graph), from a config in tf.keras's form: its
    /// legacy loader reads the weight groups in this order, whatever `layer_names` says.
    /// `nodeOffsets`: how far the config numbers a layer's calls from 0 (1 for nested models).
    static func tfKerasOrder(_ layers: [JSON], outputs: [TensorRef], nodeOffsets: [String: Int]) -> [String] {
        var graph = Keras3LayerOrder()
        for layer in layers {
            guard let name = layer["name"]?.stringValue else { continue }
            for (index, node) in (layer["inbound_nodes"]?.arrayValue ?? []).enumerated() {
                let call = index + (nodeOffsets[name] ?? 0)
                var found: [NodeID] = []
                let entries = node.arrayValue ?? []
                for entry in entries {
                    if let parts = entry.arrayValue, parts.count >= 3, let producer = parts[0].stringValue,
                        let index = parts[1].intValue
                    {
                        found.append(.call(producer, index))
                    }
                }
                if let kwargs = entries.first?.arrayValue?.dropFirst(3).first?.objectValue {
                    for (_, value) in kwargs.sorted(by: { $0.0 < $1.0 }) { legacyTensors(in: value, into: &found) }
                }
                graph.parents[.call(name, call)] = found
            }
        }
        return graph.layerOrder(outputs: outputs.map { .call($0.layer, $0.node) })
    }

    /// tf.keras's `[layer, node, tensor]` tensors inside a keyword argument.
    private static func legacyTensors(in value: JSON, into found: inout [NodeID]) {
        guard let items = value.arrayValue else {
            for (_, v) in (value.objectValue ?? []).sorted(by: { $0.0 < $1.0 }) { legacyTensors(in: v, into: &found) }
            return
        }
        if items.count == 3, let name = items[0].stringValue, let node = items[1].intValue, items[2].intValue != nil {
            found.append(.call(name, node))
        } else {
            for item in items { legacyTensors(in: item, into: &found) }
        }
    }

    // MARK: Building the graph

    private mutating func operation(_ inputs: [NodeID]) -> NodeID {
        operations += 1
        let id = NodeID.maskOperation(operations)
        parents[id] = inputs
        return id
    }

    private func producer(_ ref: TensorRef) -> NodeID { .call(ref.layer, ref.node) }

    private mutating func addCall(_ site: CallSite, entry: JSON) {
        let layer = site.layer
        let refs = layer.calls[site.call]
        let node = entry["inbound_nodes"]?[site.call] ?? .object([])
        var keyed: [(String, [NodeID])] = []
        // Explicit arguments, as the config records them.
        var args: [NodeID] = []
        Self.tensors(in: node["args"] ?? .array([]), into: &args)
        for (key, value) in node["kwargs"]?.objectValue ?? [] {
            var found: [NodeID] = []
            Self.tensors(in: value, into: &found)
            keyed.append((key, found))
        }
        // Masks Keras passes by itself.
        let given = Set(keyed.map(\.0))
        // The first argument: one tensor, or the list of them (a merge's inputs).
        let firstArgument = Array(refs.prefix(node["args"]?[0]?.arrayValue?.count ?? 1))
        if Self.takesMask.contains(layer.className), !given.contains("mask") {
            let found = firstArgument.compactMap { masks[$0] }
            if !found.isEmpty { keyed.append(("mask", found)) }
        }
        if Self.takesMaskPerTensor.contains(layer.className), let names = layer.callInputNames.first {
            for (name, ref) in zip(names, refs) where !given.contains(name + "_mask") {
                if let mask = masks[ref] { keyed.append((name + "_mask", [mask])) }
            }
        }
        let own = NodeID.call(layer.name, site.call)
        parents[own] = args + keyed.sorted { $0.0 < $1.0 }.flatMap(\.1)
        // The masks of its outputs.
        let previous = firstArgument.map { masks[$0] }
        for (t, mask) in outputMasks(layer, refs: refs, firstArgument: firstArgument, previous: previous).enumerated() {
            if let mask { masks[TensorRef(layer: layer.name, node: site.call, tensor: t)] = mask }
        }
    }

    /// Each output's mask node as the layer's Keras 3 `compute_mask` makes it.
    private mutating func outputMasks(
        _ layer: LayerNode, refs: [TensorRef], firstArgument: [TensorRef], previous: [NodeID?]
    ) -> [NodeID?] {
        guard let kind = layer.layerKind else { return [] }
        let first = previous.first ?? nil
        switch kind {
        case let embedding as Embedding:
            return [embedding.maskZero ? operation(firstArgument.map(producer)) : nil]  // not_equal(inputs, 0)
        case is Masking:
            return [operation([operation(firstArgument.map(producer))])]  // any(not_equal(inputs, value))
        case is Concatenate:
            guard previous.contains(where: { $0 != nil }) else { return [nil] }
            var parts: [NodeID] = []
            for (ref, mask) in zip(firstArgument, previous) {
                if let mask {
                    // logical_or(expand_dims(mask), zeros_like(input))
                    parts.append(operation([operation([mask]), operation([producer(ref)])]))
                } else {
                    parts.append(operation([producer(ref)]))  // ones_like(input)
                }
            }
            return [operation([operation(parts)])]  // any(concatenate(masks))
        case is Merge:
            guard !previous.isEmpty, previous.allSatisfy({ $0 != nil }) else { return [nil] }
            var merged = previous[0]!
            for mask in previous.dropFirst() { merged = operation([merged, mask!]) }  // logical_or
            return [merged]
        case let recurrent as Recurrent:
            return [recurrent.returnSequences ? first : nil]
        case let bidirectional as Bidirectional:
            return [bidirectional.forward.returnSequences ? first : nil]
        default:
            // Layers that support masking hand the first input's mask on unchanged.
            guard let first else { return [nil] }
            let probe = StepMask(shape: [1, 1], keep: [true])
            let shapes = refs.map { _ in [1, 1] }
            let handed = kind.outputMasks(
                [probe], inputShapes: shapes, outputs: [FloatArray(shape: [1, 1], data: [0])])
            return [handed.first.flatMap { $0 } == nil ? nil : first]
        }
    }

    private static func tensors(in value: JSON, into found: inout [NodeID]) {
        switch value {
        case .array(let items): for item in items { tensors(in: item, into: &found) }
        case .object(let pairs):
            if value["class_name"]?.stringValue == "__keras_tensor__" {
                if let history = value["config"]?["keras_history"]?.arrayValue, history.count == 3,
                    let name = history[0].stringValue, let node = history[1].intValue
                {
                    found.append(.call(name, node))
                }
            } else {
                for (_, v) in pairs.sorted(by: { $0.0 < $1.0 }) { tensors(in: v, into: &found) }
            }
        default: break
        }
    }

    // MARK: map_graph

    /// Each node's depth and the order of the depth-first walk's first visits, as Keras 3 computes them.
    private func mapGraph(_ outputs: [NodeID]) -> ([NodeID: Int], [NodeID: Int]) {
        var firstVisit: [NodeID: Int] = [:]
        var finished = Set<NodeID>()
        var postOrder: [NodeID] = []
        for output in outputs {
            var inProgress = Set<NodeID>()
            var stack: [(NodeID, Int)] = [(output, 0)]
            while let (node, next) = stack.popLast() {
                if next == 0 {
                    if finished.contains(node) || inProgress.contains(node) { continue }
                    inProgress.insert(node)
                    if firstVisit[node] == nil { firstVisit[node] = firstVisit.count }
                }
                let deps = parents[node] ?? []
                if next < deps.count {
                    stack.append((node, next + 1))
                    stack.append((deps[next], 0))
                } else {
                    inProgress.remove(node)
                    finished.insert(node)
                    postOrder.append(node)
                }
            }
        }
        var depth: [NodeID: Int] = [:]
        var layerDepth: [String: Int] = [:]
        for node in postOrder.reversed() {
            var d = depth[node] ?? 0
            if case .call(let name, _) = node {
                d = max(d, layerDepth[name] ?? 0)
                layerDepth[name] = d
            }
            depth[node] = d
            for parent in parents[node] ?? [] where finished.contains(parent) {
                depth[parent] = max(d + 1, depth[parent] ?? 0)
            }
        }
        return (depth, firstVisit)
    }
}
