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
    func className(_ path: String) -> String { graph.layersByPath[path]?.className ?? "" }
    func config(_ path: String) -> JSON { graph.layersByPath[path]?.config ?? .object([]) }

    func removedChannels(_ space: ChannelGraph.Space) -> Set<Int> {
        Set(0..<space.count).subtracting(plan.keptChannels[space.path] ?? [])
    }

    /// Positions of a recorded input map that go.
    func removedPositions(_ path: String) -> Set<Int> {
        guard let map = graph.inputMaps[path] else { return [] }
        return Set(map.indices.filter { plan.isRemoved(map[$0]) })
    }

    /// Expands channel positions to the depth-multiplied positions `c * m + k`.
    static func expanded(_ positions: [Int], multiplier m: Int) -> [Int] {
        positions.flatMap { c in (0..<m).map { c * m + $0 } }
    }

    // MARK: Mask

    /// The zero-masked model: removed channels' kernel slices, biases, BatchNormalization γ and β
    /// (and depthwise slices they pass through) set to zero; the architecture unchanged.
    public func mask() throws -> Model {
        let masked = planner.model.copy()
        for space in graph.spaces {
            let gone = removedChannels(space)
            guard !gone.isEmpty else { continue }
            let (kernel, axis) = try planner.outputKernel(space)
            masked.setWeight(path: space.path, name: kernel.name, try kernel.tensor.zeroed(axis: axis, indices: gone))
            if let bias = roles(space.path)["bias"] {
                masked.setWeight(path: space.path, name: bias.name, try bias.tensor.zeroed(axis: 0, indices: gone))
            }
        }
        for path in graph.inputMaps.keys {
            let gone = removedPositions(path)
            guard !gone.isEmpty else { continue }
            let r = roles(path)
            switch className(path) {
            case "BatchNormalization":
                for role in ["gamma", "beta"] {
                    if let w = r[role] {
                        masked.setWeight(path: path, name: w.name, try w.tensor.zeroed(axis: 0, indices: gone))
                    }
                }
            case "DepthwiseConv2D":
                let k = r["depthwise_kernel"]!
                masked.setWeight(path: path, name: k.name, try k.tensor.zeroed(axis: 2, indices: gone))
                if let b = r["bias"] {
                    let m = k.tensor.shape[3]
                    masked.setWeight(
                        path: path, name: b.name,
                        try b.tensor.zeroed(axis: 0, indices: Set(Self.expanded(gone.sorted(), multiplier: m))))
                }
            default:
                break
            }
        }
        return masked
    }

    // MARK: Prune

    /// Constants observed at consumers' removed input positions, from a run of the reference model.
    public struct ObservedConstants {
        /// path → position → (value at the centre, whether every observed value was bit-identical).
        var values: [String: [Int: (value: Float, constant: Bool)]] = [:]
    }

    /// Layers that fold constants of removed inputs into their bias.
    static let folders: Set<String> = ["Conv2D", "Dense", "SeparableConv2D", "Conv2DTranspose"]

    /// An observer for the reference run that records, for every consumer with removed inputs, the
    /// value each removed position carries (and whether it is the same everywhere).
    public func constantObserver() -> (
        observer: (String, [FloatArray], FloatArray) -> Void, result: () -> ObservedConstants
    ) {
        var watched: [String: Set<Int>] = [:]
        for path in graph.inputMaps.keys where Self.folders.contains(className(path)) {
            let gone = removedPositions(path)
            if !gone.isEmpty { watched[path] = gone }
        }
        var observed = ObservedConstants()
        let observer: (String, [FloatArray], FloatArray) -> Void = { path, inputs, _ in
            guard let positions = watched[path], let x = inputs.first else { return }
            let channels = x.shape.last ?? 1
            let pixels = x.count / max(1, channels)
            let centre = (x.exampleSize / channels) / 2
            var entry = observed.values[path] ?? [:]
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
            observed.values[path] = entry
        }
        return (observer, { observed })
    }

    /// The physically smaller model: removed channels gone from every producer and consumer, and,
    /// when `constants` are given, their constant contribution folded into consumers' biases.
    public func prune(constants: ObservedConstants?) throws -> (Model, [FoldReport]) {
        let pruned = planner.model.copy()
        // Optimizer slots have the old shapes; Keras would refuse them. Training resumes fresh.
        pruned.optimizer = nil
        var reports: [FoldReport] = []
        // Consumers first (input side, and folding, computed on the original output indexing).
        for path in graph.inputMaps.keys.sorted() {
            guard let keep = plan.keptPositions(path), keep.count < graph.inputMaps[path]!.count else { continue }
            let r = roles(path)
            let cls = className(path)
            if Self.folders.contains(cls), let constants {
                if let report = try fold(
                    path: path, cls: cls, roles: r, observed: constants.values[path] ?? [:], into: pruned)
                {
                    reports.append(report)
                }
            }
            switch cls {
            case "Conv2D": try slice(pruned, path, r["kernel"]!, axis: 2, keep)
            case "Dense": try slice(pruned, path, r["kernel"]!, axis: 0, keep)
            case "Conv2DTranspose": try slice(pruned, path, r["kernel"]!, axis: 3, keep)
            case "SeparableConv2D":
                let dw = r["depthwise_kernel"]!
                try slice(pruned, path, dw, axis: 2, keep)
                try slice(
                    pruned, path, r["pointwise_kernel"]!, axis: 2, Self.expanded(keep, multiplier: dw.tensor.shape[3]))
            case "DepthwiseConv2D":
                let dw = r["depthwise_kernel"]!
                try slice(pruned, path, dw, axis: 2, keep)
                if let b = r["bias"] {
                    try slice(pruned, path, b, axis: 0, Self.expanded(keep, multiplier: dw.tensor.shape[3]))
                }
            case "BatchNormalization":
                for role in ["gamma", "beta", "moving_mean", "moving_variance"] {
                    if let w = r[role] { try slice(pruned, path, w, axis: 0, keep) }
                }
            case "PReLU":
                let a = r["alpha"]!
                if a.tensor.shape.last! > 1 { try slice(pruned, path, a, axis: a.tensor.shape.count - 1, keep) }
            case "InputLayer":
                // The input layer of a nested model: its declared width, and the Sequential's build shape.
                let setLast: (inout JSON) -> Void = { c in
                    for key in ["batch_shape", "batch_input_shape", "build_input_shape"] {
                        if var shape = c[key]?.arrayValue, !shape.isEmpty {
                            shape[shape.count - 1] = .int(keep.count)
                            c.set(key, .array(shape))
                        }
                    }
                }
                if !pruned.editLayerConfig(path: path, setLast), path.hasSuffix("_input") {
                    // Keras ≤ 2.2.2 Sequential: no InputLayer in the config; the first layer carries the shape.
                    pruned.editLayerConfig(path: String(path.dropLast("_input".count)), setLast)
                }
                let parent = path.split(separator: "/").dropLast().joined(separator: "/")
                pruned.editLayerConfig(path: parent) { c in
                    if var shape = c["build_input_shape"]?.arrayValue, !shape.isEmpty {
                        shape[shape.count - 1] = .int(keep.count)
                        c.set("build_input_shape", .array(shape))
                    }
                }
            case "Rescaling":
                pruned.editLayerConfig(path: path) { c in
                    for key in ["scale", "offset"] {
                        if let list = c[key]?.arrayValue, list.count > 1 { c.set(key, .array(keep.map { list[$0] })) }
                    }
                }
            default:
                break
            }
        }
        // Producers: output side, on top of what the consumer pass wrote.
        for space in graph.spaces {
            let keep = plan.keptChannels[space.path]!
            guard keep.count < space.count else { continue }
            let r = roles(space.path)
            let (kernel, axis) = try planner.outputKernel(space)
            let current = currentWeight(pruned, space.path, kernel.name)
            pruned.setWeight(path: space.path, name: kernel.name, try current.sliced(axis: axis, keep: keep))
            if let bias = currentBias(pruned, space.path, r) {
                pruned.setWeight(path: space.path, name: bias.name, try bias.tensor.sliced(axis: 0, keep: keep))
            }
            let key = space.className == "Dense" ? "units" : "filters"
            pruned.editLayerConfig(path: space.path) { $0.set(key, .int(keep.count)) }
        }
        // Keras 3 configs give each layer the input shape it is built with; narrower inputs need new ones.
        if var config = pruned.config, let arch = try? Architecture.parse(config) {
            Keras3Layout.refreshBuildShapes(&config, analysis: GraphAnalysis.run(arch))
            pruned.config = config
        }
        return (pruned, reports)
    }

    func currentWeight(_ model: Model, _ path: String, _ name: String) -> Tensor {
        let top = String(path.split(separator: "/").first!)
        return model.layer(named: top)!.weights.first { $0.name == name }!.tensor
    }

    /// The bias as it stands in `model` (it may have been added by folding).
    func currentBias(_ model: Model, _ path: String, _ roles: [String: Weight]) -> Weight? {
        let top = String(path.split(separator: "/").first!)
        let weights = model.layer(named: top)!.weights
        if let b = roles["bias"] { return weights.first { $0.name == b.name } }
        let kernelName = (roles["kernel"] ?? roles["pointwise_kernel"])?.name
        return kernelName.flatMap { k in weights.first { $0.name == Self.biasName(forKernel: k) } }
    }

    static func biasName(forKernel name: String) -> String {
        var parts = name.split(separator: "/").map(String.init)
        let last = parts.removeLast()
        let suffix = last.contains(":") ? ":" + last.split(separator: ":").last! : ""
        return (parts + ["bias" + suffix]).joined(separator: "/")
    }

    func slice(_ model: Model, _ path: String, _ weight: Weight, axis: Int, _ keep: [Int]) throws {
        let current = currentWeight(model, path, weight.name)
        model.setWeight(path: path, name: weight.name, try current.sliced(axis: axis, keep: keep))
    }

    /// Adds each removed input's constant contribution to the consumer's bias (in `model`, still at full width).
    func fold(
        path: String, cls: String, roles r: [String: Weight], observed: [Int: (value: Float, constant: Bool)],
        into model: Model
    ) throws -> FoldReport? {
        let gone = removedPositions(path).sorted()
        var contributions: [(position: Int, value: Float)] = []
        var notConstant: [Int] = []
        for p in gone {
            guard let o = observed[p] else {
                notConstant.append(p)
                continue
            }
            if !o.constant { notConstant.append(p) }
            if o.value != 0 { contributions.append((p, o.value)) }
        }
        let padding = config(path)["padding"]?.stringValue ?? "valid"
        var exact = notConstant.isEmpty
        var notes: [String] = []
        if !notConstant.isEmpty {
            notes.append(
                "\(notConstant.count) removed input(s) are not constant in the reference model (e.g. position \(notConstant[0])); folded at the centre value"
            )
        }
        guard !contributions.isEmpty else {
            return FoldReport(
                layer: path, removedInputs: gone.count, folded: 0, exact: exact,
                note: notes.first ?? "removed inputs are exactly zero: nothing to fold")
        }
        var delta: [Float]
        switch cls {
        case "Dense":
            let w = try r["kernel"]!.tensor.floats()
            let units = r["kernel"]!.tensor.shape[1]
            delta = [Float](repeating: 0, count: units)
            for (p, k) in contributions { for o in 0..<units { delta[o] += k * w[p * units + o] } }
        case "Conv2D", "Conv2DTranspose":
            let t = r["kernel"]!.tensor
            let w = try t.floats()
            let transposed = cls == "Conv2DTranspose"
            let taps = t.shape[0] * t.shape[1]
            let (cin, cout) = transposed ? (t.shape[3], t.shape[2]) : (t.shape[2], t.shape[3])
            delta = [Float](repeating: 0, count: cout)
            for (p, k) in contributions {
                for tap in 0..<taps {
                    for o in 0..<cout {
                        delta[o] += k * (transposed ? w[(tap * cout + o) * cin + p] : w[(tap * cin + p) * cout + o])
                    }
                }
            }
            if transposed {
                let strides = LayerKinds.ints(config(path)["strides"], count: 2) ?? [1, 1]
                let share = Float(strides[0] * strides[1])
                for o in 0..<cout { delta[o] /= share }
                exact = false
                notes.append("Conv2DTranspose spreads a constant unevenly over its output; folded the interior average")
            } else if padding == "same" {
                exact = false
                notes.append("same padding: the constant is folded exactly inside, the border pixels differ")
            }
        case "SeparableConv2D":
            let dwT = r["depthwise_kernel"]!.tensor
            let dw = try dwT.floats()
            let pwT = r["pointwise_kernel"]!.tensor
            let pw = try pwT.floats()
            let taps = dwT.shape[0] * dwT.shape[1]
            let cin = dwT.shape[2]
            let m = dwT.shape[3]
            let cout = pwT.shape[3]
            delta = [Float](repeating: 0, count: cout)
            for (p, k) in contributions {
                for j in 0..<m {
                    var tapSum: Float = 0
                    for tap in 0..<taps { tapSum += dw[(tap * cin + p) * m + j] }
                    for o in 0..<cout { delta[o] += k * tapSum * pw[(p * m + j) * cout + o] }
                }
            }
            if padding == "same" {
                exact = false
                notes.append("same padding: the constant is folded exactly inside, the border pixels differ")
            }
        default:
            return nil
        }
        if let bias = currentBias(model, path, r) {
            let values = try bias.tensor.floats()
            model.setWeight(
                path: path, name: bias.name, try bias.tensor.replacingValues(zip(values, delta).map { $0 + $1 }))
        } else {
            let kernel = (r["kernel"] ?? r["pointwise_kernel"])!
            let bias = try Tensor(
                dtype: kernel.tensor.dtype, shape: [delta.count],
                bytes: [UInt8](repeating: 0, count: delta.count * kernel.tensor.dtype.byteCount)
            )
            .replacingValues(delta)
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
