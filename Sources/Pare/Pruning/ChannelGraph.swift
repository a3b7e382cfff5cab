/// Which output channels of which layers must be removed together, found from the graph.
///
/// Every layer whose kind produces channels (`ChannelFlow.produces`: convolutions, Dense) owns a
/// *space* of channel ids. Each tensor carries a map from its last-axis positions to ids (nil for
/// channels no layer owns, such as the model's inputs); each layer's kind says how its channels
/// flow (`Layers/`): per-channel layers pass the map on, concatenation joins maps, flattening
/// repeats them per position, and merges and shared layers unite the ids they line up. Ids that
/// end in one set form a coupled group: removed together or not at all. Groups that reach a model
/// output, a layer that mixes channels, a block the kind names, or a layer Pare does not know are blocked.
public final class ChannelGraph {
    /// The ids of one producer's output channels: `first ..< first + count`.
    public struct Space: Sendable {
        public let path: String
        public let className: String
        public let first: Int
        public let count: Int
    }

    public private(set) var spaces: [Space] = []
    /// Last-axis id maps of the inputs of layers whose weights have an input-channel axis
    /// (Conv/Dense/Separable/Transpose consumers) or a per-channel axis (BN, PReLU, Depthwise, Rescaling).
    public private(set) var inputMaps: [String: [Int?]] = [:]
    private var parent: [Int] = []
    private var blockReasons: [Int: String] = [:]
    let architecture: Architecture
    let analysis: GraphAnalysis
    /// Whether channels may pass through LayerNormalization / RMSNormalization (`--approximate-norm`).
    let approximateNormalization: Bool

    /// Every layer by path, nested ones included (built once; list look-ups made big models slow).
    let layersByPath: [String: LayerNode]

    init(architecture: Architecture, analysis: GraphAnalysis, approximateNormalization: Bool = false) {
        self.architecture = architecture
        self.analysis = analysis
        self.approximateNormalization = approximateNormalization
        layersByPath = Dictionary(architecture.allLayers().map { ($0.path, $0.layer) }, uniquingKeysWith: { a, _ in a })
        let outputs = walk(
            architecture,
            inputs: architecture.inputs.map { ref in
                let shape = architecture.inputShapes[ref.layer] ?? []
                return [Int?](repeating: nil, count: shape.last.flatMap { $0 } ?? 0)
            }, prefix: "")
        for map in outputs { block(map, "feeds a model output") }
    }

    // MARK: Union-find

    public func group(_ id: Int) -> Int {
        var i = id
        while parent[i] != i {
            parent[i] = parent[parent[i]]
            i = parent[i]
        }
        return i
    }

    func unite(_ a: Int, _ b: Int) {
        reasonsByGroup = nil
        let (ra, rb) = (group(a), group(b))
        guard ra != rb else { return }
        parent[max(ra, rb)] = min(ra, rb)
    }

    func block(_ map: [Int?], _ reason: String) {
        reasonsByGroup = nil
        for id in map.compactMap({ $0 }) where blockReasons[id] == nil { blockReasons[id] = reason }
    }

    /// Why a group cannot be removed, or nil if it can. The reasons are gathered by group once,
    /// when first asked (the graph is complete by then): asking for every channel stays linear.
    public func blockedReason(group root: Int) -> String? {
        if reasonsByGroup == nil {
            var byGroup: [Int: String] = [:]
            for (id, reason) in blockReasons.sorted(by: { $0.key < $1.key }) where byGroup[group(id)] == nil {
                byGroup[group(id)] = reason
            }
            reasonsByGroup = byGroup
        }
        return reasonsByGroup?[root]
    }
    private var reasonsByGroup: [Int: String]?

    public func space(_ path: String) -> Space? { spaces.first { $0.path == path } }

    /// Ids of every channel in the same group as `id`.
    public func members(of id: Int) -> [Int] {
        let root = group(id)
        return (0..<parent.count).filter { group($0) == root }
    }

    /// A channel of one producer.
    public struct Channel: Sendable {
        public let space: Space
        public let index: Int
    }

    /// The producer and channel index of an id.
    public func owner(of id: Int) -> Channel {
        let s = spaces.last { $0.first <= id }!
        return Channel(space: s, index: id - s.first)
    }

    private func newSpace(_ path: String, _ className: String, count: Int) -> [Int?] {
        if let existing = space(path) { return (0..<existing.count).map { existing.first + $0 } }
        let first = parent.count
        spaces.append(Space(path: path, className: className, first: first, count: count))
        parent += (first..<(first + count)).map { $0 }
        return (first..<(first + count)).map { $0 }
    }

    /// Records the input map of a layer; a shared layer's calls must line up channel by channel.
    private func recordInput(_ path: String, _ map: [Int?]) {
        guard let previous = inputMaps[path] else {
            inputMaps[path] = map
            return
        }
        lineUp(previous, map, at: "shared layer '\(path)'")
    }

    // MARK: Walking the graph

    private func walk(_ arch: Architecture, inputs: [[Int?]], prefix: String) -> [[Int?]] {
        var values: [TensorRef: [Int?]] = [:]
        for (ref, map) in zip(arch.inputs, inputs) {
            values[ref] = map
            // A nested model's input layer declares its width: it changes with what flows in.
            if !prefix.isEmpty { recordInput(prefix + ref.layer, map) }
        }
        for layer in arch.layers where layer.isInput {
            let ref = TensorRef(layer: layer.name, node: 0, tensor: 0)
            if values[ref] == nil {
                values[ref] = [Int?](repeating: nil, count: arch.inputShapes[layer.name]?.last.flatMap { $0 } ?? 0)
            }
        }
        for site in arch.callOrder {
            let (layer, call) = (site.layer, site.call)
            let maps = layer.calls[call].map { values[$0] ?? [] }
            let path = prefix + layer.name
            // A tensor used as a mask (Keras 3's `mask=`, an attention or Softmax mask passed by name)
            // keeps its shape: nothing in it can go.
            if call < layer.callMasks.count, let mask = layer.callMasks[call] {
                block(values[mask] ?? [], "is the mask of '\(path)'")
            }
            if call < layer.callInputNames.count {
                for (i, name) in layer.callInputNames[call].enumerated() where name.hasSuffix("mask") && i < maps.count
                {
                    block(maps[i], "is the \(name) of '\(path)'")
                    // A mask as wide as a per-channel layer's input masks it channel by channel.
                    if i > 0, maps[i].count == maps[0].count, maps[i].count > 1,
                        let kind = layer.layerKind, case .perChannel = kind.channelFlow(input: [], output: []).kind
                    {
                        block(maps[0], "is masked channel by channel at '\(path)'")
                    }
                }
            }
            let outputs =
                layer.nested.map { walk($0, inputs: maps, prefix: path + "/") }
                ?? propagate(layer, path: path, call: call, maps)
            for (t, map) in outputs.enumerated() { values[TensorRef(layer: layer.name, node: call, tensor: t)] = map }
        }
        return arch.outputs.map { values[$0] ?? [] }
    }

    /// The channel maps of every output of one call.
    private func propagate(_ layer: LayerNode, path: String, call: Int, _ maps: [[Int?]]) -> [[Int?]] {
        let shapes = analysis.calls(of: path).first
        let outputs = shapes?.outputs ?? []
        let outChannels = outputs.map { $0?.last.flatMap { $0 } ?? 0 }
        guard let kind = layer.layerKind else {
            for map in maps { block(map, "passes through '\(path)' (\(layer.className)), which Pare does not know") }
            return outChannels.map { [Int?](repeating: nil, count: $0) }
        }
        var flow = kind.channelFlow(input: shapes?.inputs.first ?? [], output: shapes?.output ?? [])
        // Asked for: a normalization over the channels lets channels through, its parameters sliced
        // (the statistics then cover fewer channels: the result is approximate, and measured).
        if approximateNormalization, let norm = kind as? ChannelNormalization,
            norm.normalizesOnlyChannels(rank: shapes?.inputs.first?.count ?? 0)
        {
            flow = ChannelFlow.perChannel(indexed: true)
        }
        if case .produces = flow.kind {
            if let reason = flow.blocksInputs { for map in maps { block(map, "\(reason) at '\(path)'") } }
            if flow.indexedByInputChannel { recordInput(path, maps.first ?? []) }
            // The layer's channels, repeated as each output carries them (states, both directions).
            let copies = flow.outputCopies
            let count = (outChannels.first ?? 0) / max(1, copies.first ?? 1)
            let space = newSpace(path, layer.className, count: count)
            if let reason = flow.blocksOutputs { block(space, "'\(path)' \(reason)") }
            if maps.count > 1, !flow.alignedInputs.isEmpty {
                // Inputs read through the same rows as the first (attention's value and key).
                for (i, map) in maps.enumerated().dropFirst() {
                    if flow.alignedInputs.contains(i), map.count == maps[0].count {
                        lineUp(maps[0], map, at: "'\(path)'")
                    } else if flow.alignedInputs.contains(i) {
                        // The first input's rows are cut with one list: both must keep them all.
                        block(map, "enters '\(path)' with another width than its first input")
                        block(maps[0], "enters '\(path)' beside an input of another width")
                    } else {
                        block(map, "enters '\(path)' as a mask")
                    }
                }
            } else if maps.count > 1 {
                // Initial states: their channels would have to line up with this layer's units.
                for map in maps.dropFirst() { block(map, "enters '\(path)' as an initial state") }
                block(space, "'\(path)' starts from initial states given as inputs")
            }
            return outChannels.indices.map { t in
                let tiled = (0..<(t < copies.count ? copies[t] : 0)).flatMap { _ in space }
                guard tiled.count == outChannels[t] else {
                    // An output that does not carry the layer's channels: nothing there can be removed.
                    block(space, "'\(path)' has an output whose channels are not its units")
                    return [Int?](repeating: nil, count: outChannels[t])
                }
                return tiled
            }
        }
        let single = propagate(
            kind: kind, flow: flow, path: path, maps, input: shapes?.inputs.first ?? [],
            outChannels: outChannels.first ?? 0)
        return [single] + outChannels.dropFirst().map { [Int?](repeating: nil, count: $0) }
    }

    private func propagate(
        kind: any LayerKind, flow: ChannelFlow, path: String, _ maps: [[Int?]], input: Shape, outChannels: Int
    ) -> [Int?] {
        let x = maps.first ?? []
        if let reason = flow.blocksInputs { for map in maps { block(map, "\(reason) at '\(path)'") } }
        if flow.indexedByInputChannel { recordInput(path, x) }
        switch flow.kind {
        case .produces:
            return [Int?](repeating: nil, count: outChannels)  // handled by the caller
        case .perChannel(let multiplier):
            return multiplier == 1 ? x : x.flatMap { id in [Int?](repeating: id, count: multiplier) }
        case .flattens:
            let pixels = input.dropLast().reduce(1) { $0 * ($1 ?? 1) }
            return (0..<pixels).flatMap { _ in x }
        case .merges:
            for other in maps.dropFirst() { lineUp(x, other, at: "'\(path)'") }
            return x
        case .concatenates(let onChannels):
            if onChannels { return maps.flatMap { $0 } }
            for other in maps.dropFirst() { lineUp(x, other, at: "'\(path)'") }
            return x
        case .mixes:
            let className = type(of: kind).canonicalName
            for map in maps { block(map, "passes through '\(path)' (\(className)), which mixes channels") }
            return [Int?](repeating: nil, count: outChannels)
        }
    }

    /// Channels that meet position by position (a merge, or the calls of a shared layer) are coupled;
    /// meeting a channel no layer owns (a model input) blocks them.
    private func lineUp(_ a: [Int?], _ b: [Int?], at place: String) {
        for (x, y) in zip(a, b) {
            switch (x, y) {
            case (let p?, let q?): unite(p, q)
            case (nil, let q?):
                reasonsByGroup = nil
                blockReasons[q] = blockReasons[q] ?? "meets channels no layer owns at \(place)"
            case (let p?, nil):
                reasonsByGroup = nil
                blockReasons[p] = blockReasons[p] ?? "meets channels no layer owns at \(place)"
            default: break
            }
        }
    }
}
