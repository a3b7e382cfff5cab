import Foundation

/// The channels chosen for removal, as coupled groups of the channel graph.
public struct PrunePlan {
    public let graph: ChannelGraph
    /// Roots of the removed groups.
    public let removed: Set<Int>
    /// Per producer path: kept channel indices, in order.
    public let keptChannels: [String: [Int]]
    /// Per-channel scores used for ranking (by id), for the report.
    public let scores: [Int: Double]
    /// Per MultiHeadAttention layer: kept heads, in order (every attention layer is listed).
    public var keptHeads: [String: [Int]] = [:]
    /// Per attention layer, the score of each head, where the criterion gives one.
    public var headScores: [String: [Double]] = [:]
    /// Layers a global `--ratio` would have narrowed that `--round-to` left whole (their share rounds
    /// to no step, or to all of them).
    public var leftWholeByRounding: [String] = []

    public func isRemoved(_ id: Int?) -> Bool { id.map { removed.contains(graph.group($0)) } ?? false }

    /// Positions of a recorded input map that stay.
    public func keptPositions(_ path: String) -> [Int]? {
        graph.inputMaps[path].map { map in map.indices.filter { !isRemoved(map[$0]) } }
    }
}

/// The part of a selection a message is about: the option (`keep`) and the entry (`conv2d=3`).
struct SelectionPart {
    let name: String
    let entry: String?
    init(_ name: String, _ entry: String? = nil) {
        self.name = name
        self.entry = entry
    }
    /// What follows the option's name in a message: `conv2d=3` or nothing (the message then starts with ':').
    var detail: String { entry ?? "" }
}

/// Turns a selection and a criterion into the channel groups to remove.
public struct Planner {
    /// Largest tensor (values per example) the channel analysis maps position by position.
    static let maxMapSize = 1 << 26
    let model: Model
    let checked: CheckedModel
    public let graph: ChannelGraph
    /// The MultiHeadAttention layers, whose heads are pruned beside the channel graph.
    public let heads: [HeadSpace]

    /// `approximateNormalization`: channels may be removed through LayerNormalization and
    /// RMSNormalization over the channel axis (their statistics then change: verify against the original).
    public init(_ model: Model, approximateNormalization: Bool = false) throws {
        self.model = model
        checked = try CheckedModel(model)
        guard let arch = checked.architecture, let analysis = checked.analysis else {
            throw PareError(
                file: model.sourcePath, "a weights-only file has no architecture; pruning needs the layer graph")
        }
        if let error = analysis.unsupportedError(file: model.sourcePath, consequence: nil) { throw error }
        if let uneven = analysis.unevenlySharedLayers.sorted(by: { $0.key < $1.key }).first {
            throw PareError(
                file: model.sourcePath, object: "layer '\(uneven.key)'",
                uneven.value + "; Pare prunes a shared layer only when its calls have the same shapes")
        }
        // The channel graph holds an id per value of every channel map (a Flatten's map has one per
        // pixel and channel): refuse architectures whose maps would not fit in memory.
        for call in analysis.calls {
            for shape in call.inputs + [call.output].compactMap({ $0 }) {
                let values = ShapeMath.product(shape.map { $0 ?? 1 }) ?? Int.max
                guard values <= Planner.maxMapSize else {
                    throw PareError(
                        file: model.sourcePath, object: "layer '\(call.path)' (\(call.className))",
                        "carries \(values) values per example, more than the channel analysis handles "
                            + "(\(Planner.maxMapSize))"
                    )
                }
            }
        }
        graph = ChannelGraph(
            architecture: arch, analysis: analysis, approximateNormalization: approximateNormalization)
        heads = Self.headSpaces(arch)
    }

    /// Resolves a layer name: a full path (`encoder/enc_conv3`), or a name that is unique among all layers.
    public func producerPath(_ name: String) throws -> String {
        let all = graph.architecture.allLayers()
        let matches = all.filter { $0.path == name || $0.path.hasSuffix("/" + name) || $0.path == name }
        let exact = matches.filter { $0.path == name }
        guard let found = exact.first ?? (matches.count == 1 ? matches.first : nil) else {
            if matches.count > 1 {
                throw SelectionError(
                    "layer '\(name)' is ambiguous: \(matches.map(\.path).joined(separator: ", ")); use OUTER/INNER")
            }
            throw SelectionError(
                "no layer named '\(name)' (layers with channels to remove: "
                    + "\(graph.spaces.map(\.path).joined(separator: ", ")))"
            )
        }
        guard graph.space(found.path) != nil else {
            throw SelectionError(
                "layer '\(found.path)' (\(found.layer.className)) has no output channels of its own to remove; "
                    + "name the layer that produces them"
            )
        }
        return found.path
    }

    func weight(_ path: String, _ role: String) -> Weight? { checked.weightsByRole(path)[role] }

    /// Per-channel score of each producer channel by a weight criterion (L1, L2 of its kernel slice;
    /// |γ| of the BNs it meets).
    func weightScores(_ criterion: PruneCriterion) throws -> [Int: Double] {
        var scores: [Int: Double] = [:]
        switch criterion {
        case .l1, .l2:
            scores.reserveCapacity(graph.spaces.reduce(0) { $0 + $1.count })
            for space in graph.spaces {
                let (kernel, axis) = try outputKernel(space)
                let sums = try channelNorms(kernel, axis: axis, squared: criterion == .l2)
                // A recurrent kernel holds every gate block's columns; the first block is scored.
                guard sums.count >= space.count else {
                    throw PareError(
                        file: model.sourcePath, object: "layer '\(space.path)' (\(space.className))",
                        "its kernel has \(sums.count) output channels where its output has \(space.count)")
                }
                for c in 0..<space.count { scores[space.first + c] = criterion == .l2 ? sums[c].squareRoot() : sums[c] }
            }
        case .bnGamma:
            for (path, map) in graph.inputMaps {
                guard graph.layersByPath[path]?.layerKind is BatchNormalization else { continue }
                guard let gamma = weight(path, "gamma") else { continue }
                let values = try gamma.tensor.floats()
                for (i, id) in map.enumerated() { if let id { scores[id, default: 0] += Double(abs(values[i])) } }
            }
        case .meanActivation, .apoz:
            break
        }
        return scores
    }

    /// The kernel whose given axis indexes a producer's output channels.
    func outputKernel(_ space: ChannelGraph.Space) throws -> (Weight, Int) {
        guard let input = checked.shapes(space.path)?.input,
            let spec = checked.kind(space.path)?.outputKernel(input: input), let axes = spec.outputAxes,
            let weight = checked.weightsByRole(space.path)[spec.role]
        else {
            throw PareError(
                file: model.sourcePath, object: "layer '\(space.path)' (\(space.className))",
                "has no kernel whose output channels Pare can find")
        }
        return (weight, axes.lowerBound)
    }

    func channelNorms(_ weight: Weight, axis: Int, squared: Bool) throws -> [Double] {
        let shape = weight.tensor.shape
        let channels = shape[axis]
        let inner = shape[(axis + 1)...].reduce(1, *)
        var sums = [Double](repeating: 0, count: channels)
        guard channels > 0, inner > 0 else { return sums }
        // Element by element in storage order (the sums' rounding does not change), without a
        // division per value: a large kernel's norms took most of a prune's planning. The values are
        // read where they lie in the page cache when they can be (no copy).
        try weight.tensor.withFloats { v in
            sums.withUnsafeMutableBufferPointer { s in
                let outer = v.count / (channels * inner)
                if inner == 1 {
                    // Channels last (Dense, convolutions): a row adds one value to every channel, a loop
                    // without a data-dependent branch that vectorizes. Same additions, same order.
                    for row in 0..<outer {
                        let base = v.baseAddress! + row * channels
                        if squared {
                            for c in 0..<channels { s[c] += Double(base[c]) * Double(base[c]) }
                        } else {
                            for c in 0..<channels { s[c] += abs(Double(base[c])) }
                        }
                    }
                    return
                }
                var i = 0
                for _ in 0..<outer {
                    for c in 0..<channels {
                        for _ in 0..<inner {
                            let x = Double(v[i])
                            s[c] += squared ? x * x : abs(x)
                            i += 1
                        }
                    }
                }
            }
        }
        return sums
    }

    /// Channels whose kernel slice and bias are exactly zero.
    func deadChannels(_ space: ChannelGraph.Space) throws -> Set<Int> {
        let (kernel, axis) = try outputKernel(space)
        let zero = TensorStats.zeroChannels(kernel.tensor, bytes: try kernel.tensor.bytes(), axis: axis)
        var dead = Set(zero.indices.filter { zero[$0] && $0 < space.count })
        if let bias = weight(space.path, "bias") {
            let b = try bias.tensor.floats()
            dead = dead.filter { $0 < b.count && b[$0] == 0 }
        }
        return dead
    }

    public func plan(
        _ selection: PruneSelection, criterion: PruneCriterion, activationScores: [Int: Double]? = nil,
        headActivationScores: [String: [Double]]? = nil
    ) throws -> PrunePlan {
        guard !selection.isEmpty else {
            throw SelectionError(
                "nothing selected: name channels to keep or drop, a ratio, a threshold, or dead channels")
        }
        if criterion.needsCalibration, selection.usesCriterion, activationScores == nil {
            throw SelectionError(
                "criterion \(criterion.rawValue) needs calibration inputs")
        }
        let perChannel = criterion.needsCalibration ? (activationScores ?? [:]) : try weightScores(criterion)
        if criterion == .bnGamma, selection.usesCriterion, perChannel.isEmpty {
            throw SelectionError(
                "criterion bn-gamma needs \(BatchNormalization.canonicalName) layers after the pruned layers; "
                    + "this model has none"
            )
        }
        // A group's score sums its members': every coupled channel's evidence counts.
        var groupScore: [Int: Double] = [:]
        groupScore.reserveCapacity(perChannel.count)
        for (id, s) in perChannel { groupScore[graph.group(id), default: 0] += s }
        func score(_ id: Int) -> Double { groupScore[graph.group(id)] ?? 0 }

        var removed = Set<Int>()
        func remove(_ path: String, channels: [Int], option: SelectionPart) throws {
            let space = graph.space(path)!
            for c in channels {
                guard c < space.count else {
                    throw SelectionError(
                        option: option.name,
                        "\(option.detail): channel \(c) of '\(path)', which has \(space.count) (0…\(space.count - 1))"
                    )
                }
                let root = graph.group(space.first + c)
                if let reason = graph.blockedReason(group: root) {
                    throw SelectionError(
                        option: option.name,
                        "\(option.detail): channel \(c) of '\(path)' cannot be removed: it \(reason)")
                }
                removed.insert(root)
            }
        }
        func removable(_ space: ChannelGraph.Space) -> [Int] {
            (0..<space.count).filter { graph.blockedReason(group: graph.group(space.first + $0)) == nil }
        }
        func lowest(_ space: ChannelGraph.Space, _ count: Int, option: SelectionPart) throws -> [Int] {
            let candidates = removable(space)
            guard count <= candidates.count else {
                let reason =
                    (0..<space.count).lazy.compactMap {
                        self.graph.blockedReason(group: self.graph.group(space.first + $0))
                    }.first ?? ""
                throw SelectionError(
                    option: option.name,
                    "\(option.detail): '\(space.path)' has \(space.count) channels but only \(candidates.count) "
                        + "can be removed\(reason.isEmpty ? "" : " (the others: it \(reason))")"
                )
            }
            // Scores looked up once per channel, not twice per comparison (a wide layer's sort spent most
            // of its time hashing); the order, by score and then index, is the same.
            let keys = candidates.map { score(space.first + $0) }
            let order = candidates.indices.sorted { (keys[$0], candidates[$0]) < (keys[$1], candidates[$1]) }
            return order.prefix(count).map { candidates[$0] }
        }

        var heads = HeadSelection(
            spaces: self.heads,
            scores: criterion.needsCalibration
                ? (headActivationScores ?? [:]) : (try headWeightScores(criterion) ?? [:]),
            criterion: criterion)
        for (name, n) in selection.keep.sorted(by: { $0.key < $1.key }) {
            if let space = headSpace(named: name) {
                try heads.keep(space, n, entry: "\(name)=\(n)")
                continue
            }
            let path = try producerPath(name)
            let space = graph.space(path)!
            guard n >= 1 else {
                throw SelectionError(option: "keep", "\(name)=\(n): a layer keeps at least one channel")
            }
            guard n <= space.count else {
                throw SelectionError(option: "keep", "\(name)=\(n): '\(path)' has only \(space.count) channels")
            }
            try remove(
                path, channels: try lowest(space, space.count - n, option: SelectionPart("keep", "\(name)=\(n)")),
                option: SelectionPart("keep"))
        }
        for (name, r) in selection.ratio.sorted(by: { $0.key < $1.key }) {
            if let space = headSpace(named: name) {
                guard r >= 0, r < 1 else {
                    throw SelectionError(option: "ratio", "\(name)=\(r): the fraction removed must be in [0, 1)")
                }
                try heads.keep(
                    space, space.count - Int((r * Double(space.count)).rounded()), entry: "\(name)=\(r)",
                    option: "ratio")
                continue
            }
            let path = try producerPath(name)
            let space = graph.space(path)!
            guard r >= 0, r < 1 else {
                throw SelectionError(option: "ratio", "\(name)=\(r): the fraction removed must be in [0, 1)")
            }
            try remove(
                path,
                channels: try lowest(
                    space, Int((r * Double(space.count)).rounded()), option: SelectionPart("ratio", name)),
                option: SelectionPart("ratio"))
        }
        var leftWholeByRounding: [String] = []
        if let r = selection.globalRatio {
            guard r >= 0, r < 1 else {
                throw SelectionError(option: "ratio", "\(r): the fraction removed must be in [0, 1)")
            }
            for space in graph.spaces where !removable(space).isEmpty {
                var n = min(Int((r * Double(space.count)).rounded()), removable(space).count)
                if let step = selection.roundTo, step > 1 {
                    // Kept rounded to the nearest multiple (at least one step), never more than removable.
                    let kept = max(step, Int((Double(space.count - n) / Double(step)).rounded()) * step)
                    if n > 0, kept >= space.count { leftWholeByRounding.append(space.path) }
                    n = kept >= space.count ? 0 : min(space.count - kept, removable(space).count)
                }
                try remove(
                    space.path, channels: try lowest(space, n, option: SelectionPart("ratio")),
                    option: SelectionPart("ratio"))
            }
            // Like channels, every attention layer keeps at least one head under a global ratio.
            for space in self.heads where heads.kept[space.path]?.count == space.count && space.blockedReason == nil {
                let n = max(1, space.count - Int((r * Double(space.count)).rounded()))
                try heads.keep(space, n, entry: "\(r)", option: "ratio")
            }
        }
        for (name, channels) in selection.drop.sorted(by: { $0.key < $1.key }) {
            if let space = headSpace(named: name) {
                try heads.drop(space, channels, entry: name)
                continue
            }
            try remove(try producerPath(name), channels: channels, option: SelectionPart("drop"))
        }
        if let t = selection.threshold {
            for space in graph.spaces {
                for c in removable(space) where score(space.first + c) < t {
                    removed.insert(graph.group(space.first + c))
                }
            }
        }
        if selection.dropDead {
            for space in self.heads where space.blockedReason == nil {
                let dead = try deadHeads(space)
                if !dead.isEmpty, dead.count < space.count {
                    heads.kept[space.path] = heads.kept[space.path]!.filter { !dead.contains($0) }
                }
            }
            var deadIDs = Set<Int>()
            for space in graph.spaces { for c in try deadChannels(space) { deadIDs.insert(space.first + c) } }
            for id in deadIDs {
                let root = graph.group(id)
                // A group is dead only if every producer channel in it is dead.
                if graph.blockedReason(group: root) == nil, graph.members(of: id).allSatisfy({ deadIDs.contains($0) }) {
                    removed.insert(root)
                }
            }
        }
        var kept: [String: [Int]] = [:]
        for space in graph.spaces {
            let k = (0..<space.count).filter { !removed.contains(graph.group(space.first + $0)) }
            guard !k.isEmpty else {
                throw SelectionError(
                    "the selection would remove every channel of '\(space.path)' (a layer keeps at least one)")
            }
            kept[space.path] = k
        }
        var plan = PrunePlan(graph: graph, removed: removed, keptChannels: kept, scores: perChannel)
        plan.keptHeads = heads.kept
        plan.headScores = heads.scores
        plan.leftWholeByRounding = leftWholeByRounding
        return plan
    }
}

/// The heads a selection keeps, per attention layer, ranked by their scores (lowest go first).
struct HeadSelection {
    var kept: [String: [Int]]
    let scores: [String: [Double]]
    let criterion: PruneCriterion

    init(spaces: [HeadSpace], scores: [String: [Double]], criterion: PruneCriterion) {
        kept = Dictionary(spaces.map { ($0.path, Array(0..<$0.count)) }, uniquingKeysWith: { a, _ in a })
        self.scores = scores
        self.criterion = criterion
    }

    /// Keeps the `n` best-scoring heads of `space`.
    mutating func keep(_ space: HeadSpace, _ n: Int, entry: String, option: String = "keep") throws {
        guard n >= 1 else {
            throw SelectionError(option: option, "\(entry): an attention layer keeps at least one head")
        }
        guard n <= space.count else {
            throw SelectionError(option: option, "\(entry): '\(space.path)' has only \(space.count) heads")
        }
        guard n < space.count else { return }
        if let reason = space.blockedReason {
            throw SelectionError(
                option: option, "\(entry): the heads of '\(space.path)' cannot be removed: it \(reason)")
        }
        guard let s = scores[space.path], s.count == space.count else {
            throw SelectionError(
                option: "criterion",
                "\(criterion.rawValue) gives attention heads no score (heads of '\(space.path)' are ranked by l1, l2, "
                    + "mean-activation or apoz)")
        }
        let ranked = (0..<space.count).sorted { (s[$0], $0) > (s[$1], $1) }
        kept[space.path] = Array(ranked.prefix(n)).sorted()
    }

    /// Removes heads `heads` of `space`.
    mutating func drop(_ space: HeadSpace, _ heads: [Int], entry: String) throws {
        for h in heads where !(0..<space.count).contains(h) {
            throw SelectionError(
                option: "drop",
                "\(entry): head \(h) of '\(space.path)', which has \(space.count) (0…\(space.count - 1))")
        }
        if let reason = space.blockedReason, !heads.isEmpty {
            throw SelectionError(
                option: "drop", "\(entry): the heads of '\(space.path)' cannot be removed: it \(reason)")
        }
        let remaining = kept[space.path]!.filter { !heads.contains($0) }
        guard !remaining.isEmpty else {
            throw SelectionError(option: "drop", "\(entry): an attention layer keeps at least one head")
        }
        kept[space.path] = remaining
    }
}
