import Foundation

/// How a removed channel's constant output was carried into a consumer's bias.
public struct FoldReport: Codable, Sendable {
    public var layer: String
    /// Removed input channels (positions) of this layer.
    public var removedInputs: Int
    /// Of those, how many emitted a non-zero constant that was folded into the bias.
    public var folded: Int
    public var exact: Bool
    public var note: String
}

/// The pruned model and how each consumer absorbed its removed inputs' constants.
public struct RewrittenModel {
    public var model: Model
    public var folds: [FoldReport]
}

/// Records, during a run of the reference model, the values that reach removed input positions.
public final class ConstantRecorder {
    let watched: [String: Set<Int>]
    public private(set) var constants = Rewriter.ObservedConstants()

    init(watched: [String: Set<Int>]) { self.watched = watched }

    /// The interpreter's observer: called with each layer's path, inputs and output.
    public func record(_ path: String, _ inputs: [FloatArray], _ output: FloatArray) {
        guard let positions = watched[path], let x = inputs.first else { return }
        let channels = x.shape.last ?? 1
        let pixels = x.count / max(1, channels)
        let centre = (x.exampleSize / channels) / 2
        var entry = constants.values[path] ?? [:]
        for p in positions {
            let v0 = x.data[centre * channels + p]
            var constant = entry[p]?.constant ?? true
            if constant {
                for q in 0..<pixels where x.data[q * channels + p].bitPattern != v0.bitPattern {
                    constant = false
                    break
                }
            }
            if let previous = entry[p], previous.value.bitPattern != v0.bitPattern { constant = false }
            entry[p] = (v0, constant)
        }
        constants.values[path] = entry
    }
}

/// Writes the masked and the pruned model for a plan. One function per layer kind and
/// direction (output channels, input channels); the plan decides which channels.
public struct Rewriter {
    let planner: Planner
    let plan: PrunePlan

    public init(planner: Planner, plan: PrunePlan) {
        self.planner = planner
        self.plan = plan
    }

    var graph: ChannelGraph { plan.graph }
    func roles(_ path: String) -> [String: Weight] { planner.checked.weightsByRole(path) }
    func kind(_ path: String) -> (any LayerKind)? { planner.checked.kind(path) }

    /// How channels flow through the layer at `path` (its first call's shapes).
    func flow(_ path: String) -> ChannelFlow? {
        guard let kind = kind(path), let shapes = planner.checked.shapes(path) else { return nil }
        return kind.channelFlow(input: shapes.input, output: shapes.output)
    }

    func removedChannels(_ space: ChannelGraph.Space) -> Set<Int> {
        Set(0..<space.count).subtracting(plan.keptChannels[space.path] ?? [])
    }

    /// Positions of a recorded input map that go.
    func removedPositions(_ path: String) -> Set<Int> {
        guard let map = graph.inputMaps[path] else { return [] }
        return Set(map.indices.filter { plan.isRemoved(map[$0]) })
    }

    // MARK: Mask

    /// The zero-masked model: removed channels' kernel slices, biases, BatchNormalization γ and β
    /// (and depthwise slices they pass through) set to zero; the architecture unchanged.
    public func mask() throws -> Model {
        var masked = planner.model
        for space in graph.spaces {
            let gone = removedChannels(space)
            guard !gone.isEmpty else { continue }
            var handled = false
            if let kind = kind(space.path) {
                try rewrite(&masked, space.path) { handled = try kind.maskingOutputChannels(gone, &$0) }
            }
            if handled { continue }
            let (kernel, axis) = try planner.outputKernel(space)
            masked.setWeight(path: space.path, name: kernel.name, try kernel.tensor.zeroed(axis: axis, indices: gone))
            if let bias = roles(space.path)["bias"] {
                masked.setWeight(path: space.path, name: bias.name, try bias.tensor.zeroed(axis: 0, indices: gone))
            }
        }
        for path in graph.inputMaps.keys {
            let gone = removedPositions(path)
            guard !gone.isEmpty, let kind = kind(path) else { continue }
            try rewrite(&masked, path) { try kind.maskingInputChannels(gone, &$0) }
        }
        for (path, gone) in removedHeads() {
            guard let attention = kind(path) as? MultiHeadAttention else { continue }
            try rewrite(&masked, path) { try attention.maskingHeads(gone, &$0) }
        }
        return masked
    }

    /// Per attention layer with heads removed: the removed heads.
    func removedHeads() -> [(String, Set<Int>)] {
        planner.heads.compactMap { space in
            let kept = plan.keptHeads[space.path] ?? Array(0..<space.count)
            let gone = Set(0..<space.count).subtracting(kept)
            return gone.isEmpty ? nil : (space.path, gone)
        }
    }

    // MARK: Prune

    /// Constants observed at consumers' removed input positions, from a run of the reference model.
    public struct ObservedConstants {
        /// path → position → (value at the centre, whether every observed value was bit-identical).
        var values: [String: [Int: (value: Float, constant: Bool)]] = [:]
    }

    /// A recorder for the reference run that keeps, for every consumer with removed inputs, the
    /// value each removed position carries (and whether it is the same everywhere).
    public func constantRecorder() -> ConstantRecorder {
        var watched: [String: Set<Int>] = [:]
        for path in graph.inputMaps.keys where flow(path)?.foldsConstants == true {
            let gone = removedPositions(path)
            if !gone.isEmpty { watched[path] = gone }
        }
        return ConstantRecorder(watched: watched)
    }

    /// The physically smaller model: removed channels gone from every producer and consumer, and,
    /// when `constants` are given, their constant contribution folded into consumers' biases.
    public func prune(constants: ObservedConstants?) throws -> RewrittenModel {
        var pruned = planner.model
        // Optimizer slots have the old shapes; Keras would refuse them. Training resumes fresh.
        pruned.optimizer = nil
        var reports: [FoldReport] = []
        // Consumers first (input side, and folding, computed on the original output indexing).
        for path in graph.inputMaps.keys.sorted() {
            guard let keep = plan.keptPositions(path), keep.count < graph.inputMaps[path]!.count else { continue }
            guard let kind = kind(path) else { continue }
            if flow(path)?.foldsConstants == true, let constants {
                if let report = try fold(path: path, kind: kind, observed: constants.values[path] ?? [:], into: &pruned)
                {
                    reports.append(report)
                }
            }
            if kind is InputLayerKind {
                try narrowNestedInput(&pruned, path: path, keep: keep)
            } else {
                try rewrite(&pruned, path) { try kind.keepingInputChannels(keep, &$0) }
            }
        }
        // Producers: output side, on top of what the consumer pass wrote.
        for space in graph.spaces {
            let keep = plan.keptChannels[space.path]!
            guard keep.count < space.count else { continue }
            guard let kind = kind(space.path) else { continue }
            try rewrite(&pruned, space.path) { try kind.keepingOutputChannels(keep, &$0) }
        }
        // Heads: each attention layer's own projections, touching no other layer.
        for (path, _) in removedHeads() {
            guard let attention = kind(path) as? MultiHeadAttention, let keep = plan.keptHeads[path] else { continue }
            try rewrite(&pruned, path) { try attention.keepingHeads(keep, &$0) }
        }
        return RewrittenModel(model: pruned, folds: reports)
    }

    func currentWeight(_ model: Model, _ path: String, _ name: String) -> Tensor? {
        let top = String(path.split(separator: "/").first!)
        return model.layer(named: top)?.weights.first { $0.name == name }?.tensor
    }

    /// The bias as it stands in `model` (it may have been added by folding).
    func currentBias(_ model: Model, _ path: String, _ roles: [String: Weight]) -> Weight? {
        let top = String(path.split(separator: "/").first!)
        guard let weights = model.layer(named: top)?.weights else { return nil }
        if let b = roles["bias"] { return weights.first { $0.name == b.name } }
        let kernelName = (roles["kernel"] ?? roles["pointwise_kernel"])?.name
        return kernelName.flatMap { k in weights.first { $0.name == Self.biasName(forKernel: k) } }
    }

    /// `conv/kernel:0` → `conv/bias:0`: the name Keras gives a layer's bias beside its kernel.
    static func biasName(forKernel name: String) -> String {
        var parts = name.split(separator: "/").map(String.init)
        let last = parts.popLast() ?? ""
        let suffix = last.split(separator: ":").last.map { last.contains(":") ? ":" + $0 : "" } ?? ""
        return (parts + ["bias" + suffix]).joined(separator: "/")
    }

    /// The layer's weights by role and its config as they stand in `model`, changed by `body`, written back.
    func rewrite(_ model: inout Model, _ path: String, _ body: (inout LayerEdit) throws -> Void) throws {
        let r = roles(path)
        var names: [String: String] = [:]
        var weights: [String: Tensor] = [:]
        for (role, weight) in r {
            names[role] = weight.name
            weights[role] = currentWeight(model, path, weight.name)
        }
        if weights["bias"] == nil, let added = currentBias(model, path, r) {
            names["bias"] = added.name
            weights["bias"] = added.tensor
        }
        var config = JSON.object([])
        model.editLayerConfig(path: path) { config = $0 }
        var edit = LayerEdit(weights: weights, config: config)
        do {
            try body(&edit)
        } catch let error as LayerConfigError {
            throw PareError(file: model.sourcePath, object: "layer '\(path)'", error.reason)
        }
        for (role, tensor) in edit.weights {
            if let name = names[role] { model.setWeight(path: path, name: name, tensor) }
        }
        if edit.config != config { model.editLayerConfig(path: path) { $0 = edit.config } }
    }

    /// The input layer of a nested model: its declared width, and the Sequential's build shape.
    func narrowNestedInput(_ model: inout Model, path: String, keep: [Int]) throws {
        let input = InputLayerKind()
        var edited = false
        model.editLayerConfig(path: path) { config in
            var edit = LayerEdit(weights: [:], config: config)
            try? input.keepingInputChannels(keep, &edit)
            config = edit.config
            edited = true
        }
        if !edited, path.hasSuffix("_input") {
            // Keras ≤ 2.2.2 Sequential: no InputLayer in the config; the first layer carries the shape.
            model.editLayerConfig(path: String(path.dropLast("_input".count))) { config in
                var edit = LayerEdit(weights: [:], config: config)
                try? input.keepingInputChannels(keep, &edit)
                config = edit.config
            }
        }
        let parent = path.split(separator: "/").dropLast().joined(separator: "/")
        model.editLayerConfig(path: parent) { c in
            if var shape = c["build_input_shape"]?.arrayValue, !shape.isEmpty {
                shape[shape.count - 1] = .int(keep.count)
                c.set("build_input_shape", .array(shape))
            }
        }
    }

    /// Adds each removed input's constant contribution to the consumer's bias (in `model`, still at full width).
    func fold(
        path: String, kind: any LayerKind, observed: [Int: (value: Float, constant: Bool)], into model: inout Model
    ) throws -> FoldReport? {
        let gone = removedPositions(path).sorted()
        var contributions: [ConstantInput] = []
        var notConstant: [Int] = []
        for p in gone {
            guard let o = observed[p] else {
                notConstant.append(p)
                continue
            }
            if !o.constant { notConstant.append(p) }
            if o.value != 0 { contributions.append(ConstantInput(position: p, value: o.value)) }
        }
        var exact = notConstant.isEmpty
        var notes: [String] = []
        if !notConstant.isEmpty {
            notes.append(
                "\(notConstant.count) removed input(s) are not constant in the reference model (e.g. position "
                    + "\(notConstant[0])); folded at the centre value"
            )
        }
        guard !contributions.isEmpty else {
            return FoldReport(
                layer: path, removedInputs: gone.count, folded: 0, exact: exact,
                note: notes.first ?? "removed inputs are exactly zero: nothing to fold")
        }
        let r = roles(path)
        var weights: [String: Tensor] = [:]
        for (role, weight) in r { weights[role] = currentWeight(model, path, weight.name) }
        guard let folded = try kind.foldedConstants(contributions, weights) else { return nil }
        if let approximation = folded.approximation {
            exact = false
            notes.append(approximation)
        }
        if let bias = currentBias(model, path, r) {
            let values = try bias.tensor.floats()
            model.setWeight(
                path: path, name: bias.name,
                try bias.tensor.replacingValues(zip(values, folded.delta).map { $0 + $1 }))
        } else {
            guard let kernel = r[folded.kernelRole] else { return nil }
            let bias = try Tensor(
                dtype: kernel.tensor.dtype, shape: [folded.delta.count],
                bytes: [UInt8](repeating: 0, count: folded.delta.count * kernel.tensor.dtype.byteCount)
            )
            .replacingValues(folded.delta)
            model.insertWeight(
                path: path, after: kernel.name, Weight(name: Self.biasName(forKernel: kernel.name), tensor: bias))
            model.editLayerConfig(path: path) { $0.set("use_bias", .bool(true)) }
            notes.append("the layer had no bias; one was added to hold the folded constants")
        }
        return FoldReport(
            layer: path, removedInputs: gone.count, folded: contributions.count, exact: exact,
            note: notes.isEmpty ? "folded exactly" : notes.joined(separator: "; "))
    }
}
