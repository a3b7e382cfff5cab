/// Layers that wrap another layer given in their config (`"layer": {"class_name", "config"}`):
/// `Bidirectional` (a recurrent layer run both ways in time) and `TimeDistributed` (any layer
/// applied to every step of a sequence).

/// The layer a wrapper's config holds under `key`, parsed as any layer is.
func wrappedLayer(_ config: LayerConfig, key: String = "layer") throws -> WrappedLayer {
    guard let inner = config[key], let className = inner["class_name"]?.stringValue else {
        throw LayerConfigError("\(key) missing: the wrapped layer's class_name and config")
    }
    let innerConfig = inner["config"] ?? .object([])
    switch LayerRegistry.parse(className: className, config: innerConfig) {
    case .success(let kind):
        return WrappedLayer(className: className, name: innerConfig["name"]?.stringValue ?? "", kind: kind)
    case .failure(.unknownClass): throw LayerConfigError("wraps \(className), a layer Pare does not know")
    case .failure(.invalidConfig(let reason)): throw LayerConfigError("its \(className): \(reason)")
    }
}

/// A layer inside a wrapper's config.
struct WrappedLayer {
    var className: String
    var name: String
    var kind: any LayerKind
}

/// The specs of a wrapped layer, saved by Keras 3 below `group` and with roles prefixed.
func wrappedSpecs(_ specs: [WeightSpec], group: String, rolePrefix: String = "") -> [WeightSpec] {
    specs.map { spec in
        var s = spec
        s.role = rolePrefix + spec.role
        s.keras3Name = spec.keras3Name ?? spec.role
        s.keras3Group = spec.keras3Group.isEmpty ? group : group + "/" + spec.keras3Group
        return s
    }
}

/// `Bidirectional(layer, merge_mode, backward_layer)`: the forward layer on the sequence and the
/// backward one (the same config with `go_backwards` flipped, unless the config gives its own) on
/// the reversed sequence; a backward sequence output is turned back to forward time before the two
/// are merged (concat, sum, mul, ave, or None for two outputs). With `return_state`, the forward
/// states then the backward ones follow. Weights: the forward layer's, then the backward one's.
struct Bidirectional: LayerKind {
    static let classNames = ["Bidirectional"]
    static let countsMACs = true
    let forward: Recurrent
    let backward: Recurrent
    let mergeMode: String?

    /// The names Keras 3 saves the two directions under.
    let forwardName: String
    let backwardName: String

    init(config: LayerConfig) throws {
        let wrapped = try wrappedLayer(config)
        guard let layer = wrapped.kind as? Recurrent else {
            throw LayerConfigError("wraps a layer that is not a recurrent layer")
        }
        let explicitBackward = config["backward_layer"].map { !$0.isNull } ?? false
        let back: Recurrent
        if explicitBackward {
            let b = try wrappedLayer(config, key: "backward_layer")
            guard let kind = b.kind as? Recurrent else {
                throw LayerConfigError("backward_layer is not a recurrent layer")
            }
            back = kind
            backwardName = b.name
        } else {
            back = layer.with(goBackwards: !layer.goBackwards)
            backwardName = "backward_" + Self.removingPrefix("backward_", wrapped.name)
        }
        // Keras 3's names for the two directions (`bidirectional.py`): a config it wrote already
        // says `forward_gru`, one tf.keras wrote says `gru`.
        forwardName = "forward_" + Self.removingPrefix("forward_", wrapped.name)
        guard back.units == layer.units, back.cell.stateCount == layer.cell.stateCount,
            back.returnSequences == layer.returnSequences, back.returnState == layer.returnState
        else {
            throw LayerConfigError("its forward and backward layers differ in units, states or outputs")
        }
        // Keras makes both directions write zeros at masked steps when the layer returns sequences.
        forward = layer.with(zeroOutputForMask: layer.returnSequences)
        backward = back.with(zeroOutputForMask: layer.returnSequences)
        let mode = config["merge_mode"]
        if mode == nil {
            mergeMode = "concat"
        } else if mode?.isNull == true {
            mergeMode = nil
        } else {
            guard let m = mode?.stringValue, ["concat", "sum", "mul", "ave"].contains(m) else {
                throw LayerConfigError("merge_mode must be concat, sum, mul, ave or None")
            }
            mergeMode = m
        }
    }

    /// Both directions' slices, each under its role prefix (the activations are the wrapped layer's).
    func preActivationWeights(_ key: String) -> [WeightSlice]? {
        guard let f = forward.preActivationWeights(key), let b = backward.preActivationWeights(key) else { return nil }
        return f.map { WeightSlice("forward_" + $0.role, columns: $0.columns) }
            + b.map { WeightSlice("backward_" + $0.role, columns: $0.columns) }
    }

    static func removingPrefix(_ prefix: String, _ name: String) -> String {
        name.hasPrefix(prefix) ? String(name.dropFirst(prefix.count)) : name
    }

    func outputShapes(_ inputs: [Shape]) throws -> [Shape] {
        guard inputs.count == 1 else { throw LayerConfigError("initial states for Bidirectional are not supported") }
        let f = try forward.outputShapes(inputs)
        let b = try backward.outputShapes(inputs)
        var merged = f[0]
        guard let mergeMode else { return [f[0], b[0]] + f.dropFirst() + b.dropFirst() }
        if mergeMode == "concat" { merged[merged.count - 1] = 2 * forward.units }
        return [merged] + f.dropFirst() + b.dropFirst()
    }

    func outputShape(_ inputs: [Shape]) throws -> Shape { try outputShapes(inputs)[0] }

    func weights(input: Shape) -> [WeightSpec] {
        wrappedSpecs(forward.weights(input: input), group: "forward_layer", rolePrefix: "forward_")
            + wrappedSpecs(backward.weights(input: input), group: "backward_layer", rolePrefix: "backward_")
    }

    func wrappedInputs(_ input: Shape) -> [String: Shape] { ["layer": input, "backward_layer": input] }

    var keras3SubObjects: [Keras3SubObject] {
        func within(_ group: String, _ name: String, _ layer: Recurrent) -> [Keras3SubObject] {
            [Keras3SubObject(group: group, name: name)]
                + layer.keras3SubObjects.map { Keras3SubObject(group: group + "/" + $0.group, name: $0.name) }
        }
        return within("forward_layer", forwardName, forward) + within("backward_layer", backwardName, backward)
    }

    func macs(input: [Int], output: [Int]) -> Int? {
        guard let one = forward.macs(input: input, output: output) else { return nil }
        return ShapeMath.product([one, 2])
    }

    func scratchElements(input: Shape, output: Shape, macs: Int?) -> Int {
        forward.scratchElements(input: input, output: output, macs: macs) * 2
    }

    /// Forward unit k and backward unit k are one channel: removed together (a concatenation
    /// carries them at k and units + k; the other merges add or multiply them at k).
    func channelFlow(input: Shape, output: Shape) -> ChannelFlow {
        var flow = forward.channelFlow(input: input, output: output)
        flow.foldsConstants = false
        let states = forward.returnState ? Array(repeating: 1, count: 2 * forward.cell.stateCount) : []
        switch mergeMode {
        case "concat": flow.outputCopies = [2] + states
        case nil: flow.outputCopies = [1, 1] + states
        default: flow.outputCopies = [1] + states
        }
        if flow.blocksOutputs == nil, let reason = backward.unitBlock { flow.blocksOutputs = reason }
        return flow
    }

    func keepingInputChannels(_ keep: [Int], _ edit: inout LayerEdit) throws {
        try edit.slice("forward_kernel", axis: 0, keep: keep)
        try edit.slice("backward_kernel", axis: 0, keep: keep)
    }

    /// Both directions keep the same units; the config's wrapped layers (and an explicit
    /// backward layer) get the new count.
    func keepingOutputChannels(_ keep: [Int], _ edit: inout LayerEdit) throws {
        try forward.keepUnits(keep, &edit, prefix: "forward_")
        try backward.keepUnits(keep, &edit, prefix: "backward_")
        for key in ["layer", "backward_layer"] {
            guard var layer = edit.config[key], var config = layer["config"] else { continue }
            config.set("units", .int(keep.count))
            layer.set("config", config)
            edit.config.set(key, layer)
        }
    }

    func maskingOutputChannels(_ removed: Set<Int>, _ edit: inout LayerEdit) throws -> Bool {
        try forward.zeroUnits(removed, &edit, prefix: "forward_")
        try backward.zeroUnits(removed, &edit, prefix: "backward_")
        return true
    }

    var appliesOwnBias: Bool { true }

    var interpreterLimitation: String? { forward.interpreterLimitation ?? backward.interpreterLimitation }

    func checkRunnable(_ context: RunContext) throws {
        try forward.checkRunnable(context)
        try backward.checkRunnable(context)
    }

    func computeOutputs(_ inputs: inout [FloatArray], masks: [StepMask?], _ context: RunContext) throws
        -> LayerResult
    {
        let mask = masks.first ?? nil
        let f = try RecurrentRun(
            forward, weights: context, prefix: "forward_", kerasMajor: context.kerasMajor, path: context.path
        ).run(inputs[0], mask: mask, initialStates: [])
        var b = try RecurrentRun(
            backward, weights: context, prefix: "backward_", kerasMajor: context.kerasMajor, path: context.path
        ).run(inputs[0], mask: mask, initialStates: [])
        if forward.returnSequences { b[0] = Self.reversedInTime(b[0]) }
        let states = Array(f.dropFirst() + b.dropFirst())
        let sequenceMask = forward.returnSequences ? mask : nil
        guard let mergeMode else {
            return LayerResult(
                values: [f[0], b[0]] + states, masks: [sequenceMask, sequenceMask] + states.map { _ in nil })
        }
        let merged: FloatArray
        switch mergeMode {
        case "concat": merged = ShapeKernels.concatenate([f[0], b[0]], axis: f[0].shape.count - 1)
        default:
            var y = f[0]
            for i in y.data.indices {
                let (p, q) = (y.data[i], b[0].data[i])
                y.data[i] = mergeMode == "sum" ? p + q : mergeMode == "mul" ? p * q : (p + q) / 2
            }
            merged = y
        }
        return LayerResult(values: [merged] + states, masks: [sequenceMask] + states.map { _ in nil })
    }

    /// A (batch, steps, units) sequence with its steps in reverse order.
    static func reversedInTime(_ x: FloatArray) -> FloatArray {
        let (n, steps, u) = (x.shape[0], x.shape[1], x.shape[2])
        var out = x.data
        for b in 0..<n {
            for t in 0..<steps {
                let src = (b * steps + t) * u
                let dst = (b * steps + steps - 1 - t) * u
                for k in 0..<u { out[dst + k] = x.data[src + k] }
            }
        }
        return FloatArray(shape: x.shape, data: out)
    }
}

/// `TimeDistributed(layer)`: the wrapped layer applied to each step of a (batch, steps, …) input,
/// as Keras does, by folding the steps into the batch. Its weights are the wrapped layer's.
struct TimeDistributed: LayerKind {
    static let classNames = ["TimeDistributed"]
    static let countsMACs = true
    let inner: any LayerKind
    let innerClass: String
    let innerName: String

    init(config: LayerConfig) throws {
        let wrapped = try wrappedLayer(config)
        (innerClass, innerName, inner) = (wrapped.className, wrapped.name, wrapped.kind)
        if inner is Recurrent || inner is Bidirectional {
            throw LayerConfigError("TimeDistributed around a recurrent layer is not supported")
        }
    }

    func outputShape(_ inputs: [Shape]) throws -> Shape {
        let x = try singleInput(inputs)
        guard x.count >= 2 else {
            throw LayerConfigError("expects an input of rank ≥ 3 (batch, steps, …), got \(describe(x))")
        }
        let shapes = try inner.outputShapes([Array(x.dropFirst())])
        guard shapes.count == 1 else { throw LayerConfigError("wraps a layer with several outputs") }
        return [x[0]] + shapes[0]
    }

    func weights(input: Shape) -> [WeightSpec] {
        wrappedSpecs(inner.weights(input: Array(input.dropFirst())), group: "layer")
    }

    func wrappedInputs(_ input: Shape) -> [String: Shape] { ["layer": Array(input.dropFirst())] }

    func preActivationWeights(_ key: String) -> [WeightSlice]? { inner.preActivationWeights(key) }

    var keras3SubObjects: [Keras3SubObject] {
        [Keras3SubObject(group: "layer", name: innerName)]
            + inner.keras3SubObjects.map { Keras3SubObject(group: "layer/" + $0.group, name: $0.name) }
    }

    func macs(input: [Int], output: [Int]) -> Int? {
        guard input.count >= 2, output.count >= 2,
            let one = inner.macs(input: Array(input.dropFirst()), output: Array(output.dropFirst()))
        else { return nil }
        return ShapeMath.product([one, input[0]])
    }

    func scratchElements(input: Shape, output: Shape, macs: Int?) -> Int {
        guard let steps = input.first ?? nil else { return 0 }
        let one = inner.scratchElements(
            input: Array(input.dropFirst()), output: Array(output.dropFirst()), macs: macs.map { $0 / max(steps, 1) })
        return ShapeMath.product([one, steps]) ?? Int.max
    }

    func channelFlow(input: Shape, output: Shape) -> ChannelFlow {
        inner.channelFlow(input: Array(input.dropFirst()), output: Array(output.dropFirst()))
    }

    var macsCounted: Bool { inner.macsCounted }
    var activation: JSON? { inner.activation }
    var appliesOwnBias: Bool { inner.appliesOwnBias }
    var appliesEpilogue: Bool { inner.appliesEpilogue }
    var interpreterLimitation: String? { inner.interpreterLimitation }
    var maskLimitation: String? { inner.maskLimitation }

    func checkRunnable(_ context: RunContext) throws { try inner.checkRunnable(innerContext(context)) }

    private func innerContext(_ context: RunContext) -> RunContext {
        var c = context
        c.outputShape = Array(context.outputShape.dropFirst())
        return c
    }

    func computeOutputs(_ inputs: inout [FloatArray], masks: [StepMask?], _ context: RunContext) throws
        -> LayerResult
    {
        let x = inputs[0]
        let (n, steps) = (x.shape[0], x.shape[1])
        var folded = [FloatArray(shape: [n * steps] + x.shape.dropFirst(2), data: x.data)]
        let result = try inner.computeOutputs(&folded, masks: [], innerContext(context))
        guard let y = result.values.first else {
            throw InterpreterError.badInput("layer '\(context.path)': the wrapped layer computed nothing")
        }
        let output = FloatArray(shape: [n, steps] + y.shape.dropFirst(), data: y.data)
        // The steps' mask carries over to the output's steps.
        return LayerResult(values: [output], masks: [masks.first ?? nil])
    }

    func keepingInputChannels(_ keep: [Int], _ edit: inout LayerEdit) throws {
        try innerEdit(&edit) { try inner.keepingInputChannels(keep, &$0) }
    }

    func keepingOutputChannels(_ keep: [Int], _ edit: inout LayerEdit) throws {
        try innerEdit(&edit) { try inner.keepingOutputChannels(keep, &$0) }
    }

    func maskingInputChannels(_ removed: Set<Int>, _ edit: inout LayerEdit) throws {
        try innerEdit(&edit) { try inner.maskingInputChannels(removed, &$0) }
    }

    func foldedConstants(_ constants: [ConstantInput], _ weights: [String: Tensor]) throws -> FoldedBias? {
        try inner.foldedConstants(constants, weights)
    }

    /// Runs an edit of the wrapped layer on its weights and its own config (`layer.config`).
    private func innerEdit(_ edit: inout LayerEdit, _ body: (inout LayerEdit) throws -> Void) throws {
        guard var layer = edit.config["layer"], let innerConfig = layer["config"] else {
            throw LayerConfigError("its wrapped layer's config is missing")
        }
        var innerEdit = LayerEdit(weights: edit.weights, config: innerConfig)
        try body(&innerEdit)
        layer.set("config", innerEdit.config)
        edit.config.set("layer", layer)
        edit.weights = innerEdit.weights
    }
}
