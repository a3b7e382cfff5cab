import Foundation

/// Attention layers: MultiHeadAttention, and the parameter-light Attention / AdditiveAttention.

/// `MultiHeadAttention(num_heads, key_dim, value_dim, output_shape, use_bias, attention_axes)`
/// called as `(query, value, key=…, attention_mask=…, use_causal_mask=…, return_attention_scores=…)`.
///
/// Each input is projected over its last axis (query and key to `num_heads × key_dim`, value to
/// `num_heads × value_dim`; kernels `(in, heads, dim)`, biases `(heads, dim)`); per head, query
/// positions attend to key positions over `attention_axes` (every position axis by default) with
/// scores `q·k / sqrt(key_dim)` and a masked softmax; the heads' outputs are projected by an
/// output kernel `(heads, value_dim, out…)` to `output_shape` (the query's width by default).
/// Keras 3.15's `use_gate` multiplies each head's output by `sigmoid(query · gate_kernel + gate_bias)`.
///
/// Masks: the query's, value's and key's Keras masks, `use_causal_mask` (position i sees j ≤ i),
/// Keras 3's `sliding_window` (|i − j| < w) and the `attention_mask` input (nonzero keeps) all
/// combine by AND. Rows every position of which is masked follow each line's softmax (see
/// `MaskedSoftmaxRule`). The output carries the query's mask; the scores carry none.
///
/// Head pruning (`keepingHeads`) slices every projection on its heads axis and sets `num_heads`;
/// the masked baseline (`maskingHeads`) zeroes a head's value kernel and bias, so that head's
/// output, and what it adds through the output kernel, is exactly zero.
struct MultiHeadAttention: LayerKind {
    static let classNames = ["MultiHeadAttention"]
    static let countsMACs = true
    static let tensorParameters = ["query", "value", "key", "query_mask", "value_mask", "key_mask", "attention_mask"]

    let numHeads: Int
    let keyDim: Int
    let valueDim: Int
    let useBias: Bool
    let useGate: Bool
    let dropout: Double
    let slidingWindow: Int?
    /// `output_shape`: nil for the query's last dimension.
    let outputDims: [Int]?
    /// As the config gives them (axes of the projected tensor), nil for every position axis.
    let attentionAxes: [Int]?
    let call: CallSignature
    let useCausalMask: Bool
    let returnScores: Bool
    /// tf.keras 2's `softmax_robust_masking`: masked logits replaced by −1e9 rather than shifted.
    let robustMasking: Bool

    init(config: LayerConfig) throws {
        robustMasking = config.bool("softmax_robust_masking", fallback: false)
        numHeads = try config.positive("num_heads")
        keyDim = try config.positive("key_dim")
        let v = config["value_dim"]
        valueDim = v == nil || v?.isNull == true ? keyDim : try config.positive("value_dim")
        useBias = config.bool("use_bias", fallback: true)
        useGate = config.bool("use_gate", fallback: false)
        dropout = try config.number("dropout", fallback: 0)
        if let w = config["sliding_window"], !w.isNull {
            slidingWindow = try config.positive("sliding_window")
        } else {
            slidingWindow = nil
        }
        if let shape = config["output_shape"], !shape.isNull {
            let list = shape.arrayValue ?? [shape]
            let dims = list.compactMap { $0.intValue }.filter { (1...LayerConfig.maxParameter).contains($0) }
            guard !dims.isEmpty, dims.count == list.count, dims.count <= 8 else {
                throw LayerConfigError("output_shape must list positive sizes")
            }
            outputDims = dims
        } else {
            outputDims = nil
        }
        if let axes = config["attention_axes"], !axes.isNull {
            let list = axes.arrayValue ?? [axes]
            let ints = list.compactMap { $0.intValue }.filter { (-16...16).contains($0) }
            guard !ints.isEmpty, ints.count == list.count, Set(ints).count == ints.count else {
                throw LayerConfigError("attention_axes must be distinct axes")
            }
            attentionAxes = ints
        } else {
            attentionAxes = nil
        }
        if let quantized = config["quantization_config"], !quantized.isNull {
            throw LayerConfigError("quantization_config is set (Pare reads float weights only)")
        }
        call = config.call ?? CallSignature(inputNames: ["query", "value"], keywords: .object([]))
        guard call.index(of: "query") != nil, call.index(of: "value") != nil else {
            throw LayerConfigError("is called without a query and a value")
        }
        useCausalMask = try call.flag("use_causal_mask")
        returnScores = try call.flag("return_attention_scores")
    }

    // MARK: Shapes

    /// The call's inputs by parameter name.
    func input<T>(_ name: String, _ inputs: [T]) -> T? {
        call.index(of: name).flatMap { $0 < inputs.count ? inputs[$0] : nil }
    }

    /// The key input: `key` if passed, else `value`.
    func keyInput<T>(_ inputs: [T]) -> T? { input("key", inputs) ?? input("value", inputs) }

    /// The attention axes as indices into the per-example position axes (0-based), sorted.
    func attentionPositions(positionAxes: Int) throws -> [Int] {
        guard positionAxes >= 1 else { throw LayerConfigError("expects inputs of rank ≥ 3 (batch included)") }
        guard let attentionAxes else { return Array(0..<positionAxes) }
        // Keras counts them in the projected tensor (batch, positions…, heads, dim): rank + 1.
        let projectedRank = positionAxes + 3
        let resolved = attentionAxes.map { $0 >= 0 ? $0 : projectedRank - 1 + $0 }
        guard resolved.allSatisfy({ $0 >= 1 && $0 <= positionAxes }) else {
            throw LayerConfigError("attention_axes \(attentionAxes) are not position axes of the query")
        }
        guard Set(resolved).count == resolved.count else {
            throw LayerConfigError("attention_axes \(attentionAxes) name one axis twice")
        }
        return resolved.map { $0 - 1 }.sorted()
    }

    func checkShapes(_ inputs: [Shape]) throws -> (query: Shape, value: Shape, key: Shape) {
        guard let query = input("query", inputs), let value = input("value", inputs), let key = keyInput(inputs)
        else { throw LayerConfigError("expects a query and a value") }
        guard query.count >= 2 else { throw LayerConfigError("expects a query of rank ≥ 3 (batch included)") }
        guard value.count == query.count, key.count == query.count else {
            throw LayerConfigError("query, value and key must have one rank")
        }
        for (a, b) in zip(value.dropLast(), key.dropLast()) where a != nil && b != nil && a != b {
            throw LayerConfigError("value \(describe(value)) and key \(describe(key)) differ before their last axis")
        }
        let attention = try attentionPositions(positionAxes: query.count - 1)
        for axis in 0..<(query.count - 1) where !attention.contains(axis) {
            if let q = query[axis], let v = value[axis], q != v {
                throw LayerConfigError("query and value differ on axis \(axis + 1), which attention does not span")
            }
        }
        if let mask = input("attention_mask", inputs) {
            guard query.count == 2, mask.count == 2 else {
                throw LayerConfigError("an attention_mask of shape \(describe(mask)); Pare takes (batch, T, S)")
            }
            let fits = zip(mask, [query[0], value[0]]).allSatisfy { m, want in
                m == nil || m == 1 || want == nil || m == want
            }
            guard fits else {
                throw LayerConfigError(
                    "an attention_mask of shape \(describe(mask)) for a query \(describe(query)) and value "
                        + describe(value))
            }
        }
        for name in ["query_mask", "value_mask", "key_mask"] {
            if let mask = input(name, inputs) {
                let of = name == "query_mask" ? query : (name == "value_mask" ? value : key)
                guard mask.count == of.count - 1, zip(mask, of).allSatisfy({ $0 == nil || $1 == nil || $0 == $1 })
                else {
                    throw LayerConfigError("its \(name) has shape \(describe(mask)), its input \(describe(of))")
                }
            }
        }
        return (query, value, key)
    }

    func outputShape(_ inputs: [Shape]) throws -> Shape { try outputShapes(inputs)[0] }

    func outputShapes(_ inputs: [Shape]) throws -> [Shape] {
        let (query, value, _) = try checkShapes(inputs)
        let output: Shape = Array(query.dropLast()) + (outputDims.map { $0.map { Optional($0) } } ?? [query.last!])
        guard returnScores else { return [output] }
        let positions = query.count - 1
        let attention = try attentionPositions(positionAxes: positions)
        let outer = (0..<positions).filter { !attention.contains($0) }
        let scores: Shape =
            outer.map { query[$0] } + [numHeads] + attention.map { query[$0] } + attention.map { value[$0] }
        return [output, scores]
    }

    // MARK: Weights

    /// The projections in Keras's creation order, each with its input width and the size per head.
    func projections(query: Int?, value: Int?, key: Int?) -> [(name: String, input: Int?, perHead: Int)] {
        [("query", query, keyDim), ("key", key, keyDim)] + (useGate ? [("gate", query, valueDim)] : [])
            + [("value", value, valueDim)]
    }

    func weights(input: Shape) -> [WeightSpec] { weightSpecs(query: nil, value: nil, key: nil, outputDims: outputDims) }

    func weights(inputs: [Shape]) -> [WeightSpec] {
        let query = input("query", inputs)?.last ?? nil
        return weightSpecs(
            query: query, value: input("value", inputs)?.last ?? nil, key: keyInput(inputs)?.last ?? nil,
            outputDims: outputDims ?? [query])
    }

    func weightSpecs(query: Int?, value: Int?, key: Int?, outputDims: [Int?]?) -> [WeightSpec] {
        var specs: [WeightSpec] = []
        for p in projections(query: query, value: value, key: key) {
            var kernel = WeightSpec("\(p.name)_kernel", [p.input, numHeads, p.perHead], keras3Name: "kernel")
            kernel.keras3Group = Self.keras3Group(p.name)
            specs.append(kernel)
            if useBias {
                var bias = WeightSpec("\(p.name)_bias", [numHeads, p.perHead], keras3Name: "bias")
                bias.keras3Group = Self.keras3Group(p.name)
                specs.append(bias)
            }
        }
        let out: [Int?] = outputDims ?? [nil]
        // The output's channels are its last axis: the kernel's last.
        var kernel = WeightSpec(
            "output_kernel", [numHeads, valueDim] + out, outputAxes: (1 + out.count)..<(2 + out.count),
            keras3Name: "kernel")
        kernel.keras3Group = "output_dense"
        specs.append(kernel)
        if useBias {
            var bias = WeightSpec("output_bias", out, keras3Name: "bias")
            bias.keras3Group = "output_dense"
            specs.append(bias)
        }
        return specs
    }

    /// Keras 3 saves the projections under their public properties (`query_dense`); the gate has
    /// none, so it keeps its attribute's name (`_gate_dense`).
    static func keras3Group(_ projection: String) -> String {
        projection == "gate" ? "_gate_dense" : "\(projection)_dense"
    }

    /// The projections, and the softmax and dropout layers Keras 3 tracks (with empty `vars`).
    var keras3SubObjects: [Keras3SubObject] {
        (["query", "key"] + (useGate ? ["gate"] : []) + ["value"]).map {
            Keras3SubObject(group: Self.keras3Group($0), name: $0)
        }
            + [
                Keras3SubObject(group: "output_dense", name: "attention_output"),
                Keras3SubObject(group: "_softmax", name: "softmax"),
                Keras3SubObject(group: "_dropout_layer", name: "dropout"),
            ]
    }

    // MARK: Cost

    func macs(input: [Int], output: [Int]) -> Int? { nil }

    func macs(inputs: [[Int]], output: [Int]) -> Int? {
        guard let query = input("query", inputs), let value = input("value", inputs), let key = keyInput(inputs),
            query.count >= 2, value.count == query.count, let dq = query.last, let dv = value.last, let dk = key.last,
            let attention = try? attentionPositions(positionAxes: query.count - 1)
        else { return nil }
        let positions = query.count - 1
        guard let pq = ShapeMath.product(Array(query.dropLast())), let pk = ShapeMath.product(Array(value.dropLast())),
            let outer = ShapeMath.product((0..<positions).filter { !attention.contains($0) }.map { query[$0] }),
            let nq = ShapeMath.product(attention.map { query[$0] }),
            let nk = ShapeMath.product(attention.map { value[$0] }),
            let out = ShapeMath.product(outputDims ?? [dq])
        else { return nil }
        let terms: [[Int]] =
            [
                [pq, dq, numHeads, keyDim], [pk, dk, numHeads, keyDim], [pk, dv, numHeads, valueDim],
                // Scores and the weighted sum of values: what attention itself multiplies.
                [outer, numHeads, nq, nk, keyDim], [outer, numHeads, nq, nk, valueDim],
                [pq, numHeads, valueDim, out],
            ] + (useGate ? [[pq, dq, numHeads, valueDim]] : [])
        return ShapeMath.sum(terms.map { ShapeMath.product($0) })
    }

    /// The projections of query, key and value, the heads' outputs (and the gate), per example:
    /// what `attend` holds beside the output. Saturates rather than overflows (the budget refuses it).
    func scratchElements(inputs: [Shape], output: Shape, macs: Int?) -> Int {
        guard let query = input("query", inputs), let value = input("value", inputs) else { return 0 }
        let pq = ShapeMath.product(query.dropLast().map { $0 ?? 1 }) ?? Int.max
        let pk = ShapeMath.product(value.dropLast().map { $0 ?? 1 }) ?? Int.max
        let terms: [Int?] = [
            ShapeMath.product([pq, numHeads, keyDim]), ShapeMath.product([pk, numHeads, keyDim]),
            ShapeMath.product([pk, numHeads, valueDim]), ShapeMath.product([pq, numHeads, valueDim]),
            useGate ? ShapeMath.product([pq, numHeads, valueDim]) : 0,
            returnScores ? ShapeMath.product([pq, numHeads, pk]) : 0,
        ]
        return ShapeMath.sum(terms) ?? Int.max
    }

    // MARK: Channels and heads

    /// The query's channels (and the value's and key's, lined up with them) index the rows of the
    /// projections; the output projection makes the layer's own channels. A multi-dimensional
    /// `output_shape` has no single channel axis.
    func channelFlow(input: Shape, output: Shape) -> ChannelFlow {
        var flow = ChannelFlow.produces
        flow.indexedByInputChannel = true
        flow.alignedInputs = ["value", "key"].compactMap { call.index(of: $0) }.filter { $0 > 0 }
        if let outputDims, outputDims.count > 1 {
            flow.blocksOutputs = "projects to output_shape \(outputDims), not one channel axis"
        }
        return flow
    }

    /// Without `output_shape` the output is as wide as the query: narrowing the query's channels
    /// would narrow it too, so the width it had is written into the config.
    func keepingInputChannels(_ keep: [Int], _ edit: inout LayerEdit) throws {
        for p in projections(query: nil, value: nil, key: nil) {
            try edit.slice("\(p.name)_kernel", axis: 0, keep: keep)
        }
        if outputDims == nil, let width = edit.weights["output_kernel"]?.shape.last {
            edit.config.set("output_shape", .array([.int(width)]))
        }
    }

    func keepingOutputChannels(_ keep: [Int], _ edit: inout LayerEdit) throws {
        try edit.slice("output_kernel", axis: 2, keep: keep)
        try edit.slice("output_bias", axis: 0, keep: keep)
        edit.config.set("output_shape", .array([.int(keep.count)]))
    }

    /// The masked model zeroes the output projection's columns and bias for removed channels.
    func maskingOutputChannels(_ removed: Set<Int>, _ edit: inout LayerEdit) throws -> Bool {
        try edit.zero("output_kernel", axis: 2, removed: removed)
        try edit.zero("output_bias", axis: 0, removed: removed)
        return true
    }

    /// Keeps heads `keep` (ascending): every projection's heads axis, the output kernel's, `num_heads`.
    func keepingHeads(_ keep: [Int], _ edit: inout LayerEdit) throws {
        for p in projections(query: nil, value: nil, key: nil) {
            try edit.slice("\(p.name)_kernel", axis: 1, keep: keep)
            try edit.slice("\(p.name)_bias", axis: 0, keep: keep)
        }
        try edit.slice("output_kernel", axis: 0, keep: keep)
        edit.config.set("num_heads", .int(keep.count))
    }

    /// The masked baseline: heads `removed` get a zero value kernel and bias.
    func maskingHeads(_ removed: Set<Int>, _ edit: inout LayerEdit) throws {
        try edit.zero("value_kernel", axis: 1, removed: removed)
        try edit.zero("value_bias", axis: 0, removed: removed)
    }

    // MARK: Interpreter

    var appliesOwnBias: Bool { true }

    /// Keras 3's call ends with `set_keras_mask(query/value/key, None)`.
    var keras3ClearedInputMasks: [Int] { ["query", "value", "key"].compactMap { call.index(of: $0) } }

    func checkRunnable(_ context: RunContext) throws {
        for role in ["query_kernel", "key_kernel", "value_kernel", "output_kernel"] + (useGate ? ["gate_kernel"] : []) {
            let shape = try context.shape(role)
            guard shape.count >= 3, (role == "output_kernel" ? shape[0] : shape[1]) == numHeads else {
                throw InterpreterError.badInput(
                    "layer '\(context.path)': \(role) of shape \(shape) for \(numHeads) heads")
            }
        }
    }

    /// The per-example position axes split into those attention spans and the rest.
    struct PositionLayout {
        /// For each group of the non-attention axes, the positions in it, in row-major order of the attention axes.
        var groups: [[Int]]

        init(dims: [Int], attention: [Int]) {
            let outerAxes = dims.indices.filter { !attention.contains($0) }
            let outerCount = outerAxes.reduce(1) { $0 * dims[$1] }
            let innerCount = attention.reduce(1) { $0 * dims[$1] }
            var groups = [[Int]](repeating: [Int](repeating: 0, count: innerCount), count: outerCount)
            let total = dims.reduce(1, *)
            for p in 0..<total {
                var rem = p
                var coords = [Int](repeating: 0, count: dims.count)
                for d in stride(from: dims.count - 1, through: 0, by: -1) {
                    coords[d] = rem % dims[d]
                    rem /= dims[d]
                }
                let outer = outerAxes.reduce(0) { $0 * dims[$1] + coords[$1] }
                let inner = attention.reduce(0) { $0 * dims[$1] + coords[$1] }
                groups[outer][inner] = p
            }
            self.groups = groups
        }
    }

    /// What the heads compute before the output projection: per example, query position and head,
    /// `value_dim` values (gated where the layer has a gate), and the attention scores.
    struct Attended {
        var heads: [Float]
        var scores: [Float]
        var scoreShape: [Int]
        var positionDims: [Int]
    }

    func computeOutputs(_ inputs: inout [FloatArray], masks: [StepMask?], _ context: RunContext) throws -> LayerResult {
        let attended = try attend(inputs, masks: masks, context)
        guard let query = input("query", inputs) else {
            throw InterpreterError.badInput("layer '\(context.path)': query missing")
        }
        let (batch, dq, h) = (query.batch, query.shape.last!, numHeads)
        let pq = attended.positionDims.reduce(1, *)
        let outDims = outputDims ?? [dq]
        let outCount = outDims.reduce(1, *)
        let outputKernel = try context.weight("output_kernel")
        let outputBias = useBias ? try context.weight("output_bias") : nil
        guard outputKernel.count == h * valueDim * outCount, (outputBias?.count ?? outCount) == outCount else {
            throw InterpreterError.badInput("layer '\(context.path)': output projection of the wrong size")
        }
        let y = AttentionKernels.project(
            attended.heads, rows: batch * pq, inner: h * valueDim, kernel: outputKernel, outputs: outCount,
            bias: outputBias)
        let output = FloatArray(shape: [batch] + attended.positionDims + outDims, data: y)
        let queryMask = call.index(of: "query").flatMap { $0 < masks.count ? masks[$0] : nil }
        // The output keeps the query's mask where its positions are the query's.
        let outputMask = outDims.count == 1 ? queryMask : nil
        guard returnScores else { return LayerResult(values: [output], masks: [outputMask]) }
        return LayerResult(
            values: [output, FloatArray(shape: attended.scoreShape, data: attended.scores)], masks: [outputMask, nil])
    }

    func attend(_ inputs: [FloatArray], masks: [StepMask?], _ context: RunContext) throws -> Attended {
        guard let query = input("query", inputs), let value = input("value", inputs), let key = keyInput(inputs) else {
            throw InterpreterError.badInput("layer '\(context.path)': query or value missing")
        }
        let batch = query.batch
        guard inputs.allSatisfy({ $0.batch == batch }) else {
            throw InterpreterError.badInput("layer '\(context.path)': its inputs hold different numbers of examples")
        }
        let positionDims = Array(query.shape.dropFirst().dropLast())
        let keyDims = Array(value.shape.dropFirst().dropLast())
        let attention = try attentionPositions(positionAxes: positionDims.count)
        let pq = positionDims.reduce(1, *)
        let pk = keyDims.reduce(1, *)
        let (dq, dv, dk) = (query.shape.last!, value.shape.last!, key.shape.last!)
        let h = numHeads

        func weight(_ role: String, count: Int) throws -> [Float] {
            let w = try context.weight(role)
            guard w.count == count else {
                throw InterpreterError.badInput(
                    "layer '\(context.path)': \(role) has \(w.count) values, expected \(count)")
            }
            return w
        }
        func bias(_ role: String, count: Int) throws -> [Float]? { useBias ? try weight(role, count: count) : nil }

        let q = AttentionKernels.project(
            query.data, rows: batch * pq, inner: dq, kernel: try weight("query_kernel", count: dq * h * keyDim),
            outputs: h * keyDim, bias: try bias("query_bias", count: h * keyDim))
        let k = AttentionKernels.project(
            key.data, rows: batch * pk, inner: dk, kernel: try weight("key_kernel", count: dk * h * keyDim),
            outputs: h * keyDim, bias: try bias("key_bias", count: h * keyDim))
        let v = AttentionKernels.project(
            value.data, rows: batch * pk, inner: dv, kernel: try weight("value_kernel", count: dv * h * valueDim),
            outputs: h * valueDim, bias: try bias("value_bias", count: h * valueDim))

        let keep = try attentionKeep(
            inputs, masks: masks, batch: batch, positions: positionDims, keys: keyDims, context)
        let rule = softmaxRule(kerasMajor: context.kerasMajor, queryRank: query.shape.count)
        let scale = Float(1 / Double(keyDim).squareRoot())
        // Keras 3's dot_product_attention scales the logits; the Softmax paths scale the query first.
        let scaleLogits = rule == .keras3DotProduct

        let qLayout = PositionLayout(dims: positionDims, attention: attention)
        let kLayout = PositionLayout(dims: keyDims, attention: attention)
        guard qLayout.groups.count == kLayout.groups.count else {
            throw InterpreterError.badInput(
                "layer '\(context.path)': query and value differ outside the attention axes")
        }
        let nq = qLayout.groups.first?.count ?? 0
        let nk = kLayout.groups.first?.count ?? 0
        let outer = qLayout.groups.count
        var heads = [Float](repeating: 0, count: batch * pq * h * valueDim)
        var scores = returnScores ? [Float](repeating: 0, count: batch * outer * h * nq * nk) : []
        // Per example, group and head: the head's query, key and value rows gathered, then scores
        // and weighted sums as GEMMs over blocks of query rows (memory bounded by the block).
        let block = 64
        var qh = [Float](repeating: 0, count: nq * keyDim)
        var kh = [Float](repeating: 0, count: nk * keyDim)
        var vh = [Float](repeating: 0, count: nk * valueDim)
        var logits = [Float](repeating: 0, count: min(nq, block) * nk)
        var mixed = [Float](repeating: 0, count: min(nq, block) * valueDim)
        var rowKeep = [Bool](repeating: true, count: nk)
        for b in 0..<batch {
            for o in 0..<outer {
                let qPositions = qLayout.groups[o]
                let kPositions = kLayout.groups[o]
                for head in 0..<h {
                    for i in 0..<nq {
                        let base = ((b * pq + qPositions[i]) * h + head) * keyDim
                        for d in 0..<keyDim { qh[i * keyDim + d] = scaleLogits ? q[base + d] : q[base + d] * scale }
                    }
                    for j in 0..<nk {
                        let kBase = ((b * pk + kPositions[j]) * h + head) * keyDim
                        for d in 0..<keyDim { kh[j * keyDim + d] = k[kBase + d] }
                        let vBase = ((b * pk + kPositions[j]) * h + head) * valueDim
                        for d in 0..<valueDim { vh[j * valueDim + d] = v[vBase + d] }
                    }
                    for start in stride(from: 0, to: nq, by: block) {
                        let rows = min(block, nq - start)
                        AttentionKernels.multiplyTransposed(
                            qh, offset: start * keyDim, rows: rows, kh, count: nk, inner: keyDim, into: &logits)
                        for r in 0..<rows {
                            let i = start + r
                            if let keep { keep.fill(&rowKeep, b: b, i: qPositions[i]) }
                            logits.withUnsafeMutableBufferPointer { p in
                                let row = UnsafeMutableBufferPointer(rebasing: p[(r * nk)..<((r + 1) * nk)])
                                if scaleLogits { for j in row.indices { row[j] *= scale } }
                                AttentionKernels.maskedSoftmax(row, keep: keep == nil ? nil : rowKeep, rule: rule)
                            }
                            if returnScores {
                                let base = (((b * outer + o) * h + head) * nq + i) * nk
                                for j in 0..<nk { scores[base + j] = logits[r * nk + j] }
                            }
                        }
                        multiplyMatrices(logits, rows: rows, inner: nk, vh, columns: valueDim, into: &mixed)
                        for r in 0..<rows {
                            let outBase = ((b * pq + qPositions[start + r]) * h + head) * valueDim
                            for d in 0..<valueDim { heads[outBase + d] = mixed[r * valueDim + d] }
                        }
                    }
                }
            }
        }
        if useGate {
            var gate = AttentionKernels.project(
                query.data, rows: batch * pq, inner: dq, kernel: try weight("gate_kernel", count: dq * h * valueDim),
                outputs: h * valueDim, bias: try bias("gate_bias", count: h * valueDim))
            ActivationFunction.sigmoid.apply(&gate, channels: 1)
            for i in heads.indices { heads[i] *= gate[i] }
        }
        let outerDims = positionDims.indices.filter { !attention.contains($0) }.map { positionDims[$0] }
        let scoreShape = [batch] + outerDims + [h] + attention.map { positionDims[$0] } + attention.map { keyDims[$0] }
        return Attended(heads: heads, scores: scores, scoreShape: scoreShape, positionDims: positionDims)
    }

    /// Keras 3 takes its dot_product_attention path for a rank-3 query without dropout or returned
    /// scores, its Softmax layer otherwise; tf.keras 2 always uses its Softmax layer.
    func softmaxRule(kerasMajor: Int, queryRank: Int) -> MaskedSoftmaxRule {
        guard kerasMajor >= 3 else { return robustMasking ? .replace(fill: -1e9) : .largeNegative }
        let dotProductPath = dropout == 0 && !returnScores && queryRank == 3
        return dotProductPath ? .keras3DotProduct : .keras3SoftmaxLayer
    }

    /// Which key positions each query position may attend to, combining every mask the call has
    /// (rank-3 inputs: one position axis); nil when nothing is masked.
    func attentionKeep(
        _ inputs: [FloatArray], masks: [StepMask?], batch: Int, positions: [Int], keys: [Int], _ context: RunContext
    ) throws -> AttentionMask? {
        func stepMask(_ name: String) -> [Bool]? {
            // An explicit value_mask/key_mask tensor (Keras 3 records the masks it filled in), else
            // the input's mask; Keras 3 reads the query's mask from the query itself, always.
            if name != "query_mask", let t = input(name, inputs) { return t.data.map { $0 != 0 } }
            let source = name == "key_mask" ? (call.index(of: "key") != nil ? "key" : nil) : String(name.dropLast(5))
            guard let source, let i = call.index(of: source), i < masks.count, let m = masks[i] else { return nil }
            return m.keep
        }
        let mask = AttentionMask(
            t: positions.first ?? 0, s: keys.first ?? 0, query: stepMask("query_mask"), value: stepMask("value_mask"),
            key: stepMask("key_mask"), causal: useCausalMask, window: slidingWindow,
            explicit: input("attention_mask", inputs))
        guard mask.masksAnything else { return nil }
        guard positions.count == 1 else {
            throw InterpreterError.unsupported(
                "masks on MultiHeadAttention over several position axes (layer '\(context.path)')")
        }
        for (name, m, n) in [("query", mask.query, mask.t), ("value", mask.value, mask.s), ("key", mask.key, mask.s)] {
            if let m, m.count != batch * n {
                throw InterpreterError.badInput("layer '\(context.path)': its \(name) mask has \(m.count) entries")
            }
        }
        return mask
    }
}

/// An attention call's masks for a rank-3 query (T positions) and key (S positions): the query's,
/// value's and key's Keras masks, causality, Keras 3's sliding window and an `attention_mask`
/// tensor of shape (batch, T or 1, S or 1), all combined by AND.
struct AttentionMask {
    let t: Int
    let s: Int
    let query: [Bool]?
    let value: [Bool]?
    let key: [Bool]?
    let causal: Bool
    let window: Int?
    let explicit: FloatArray?

    var masksAnything: Bool {
        query != nil || value != nil || key != nil || causal || window != nil || explicit != nil
    }

    /// Fills `row` (S entries) with whether query position `i` of example `b` may see each key position.
    func fill(_ row: inout [Bool], b: Int, i: Int) {
        if let query, !query[b * t + i] {
            for j in 0..<s { row[j] = false }
            return
        }
        for j in 0..<s { row[j] = true }
        if causal { for j in min(i + 1, s)..<s { row[j] = false } }
        if let window { for j in 0..<s where abs(i - j) >= window { row[j] = false } }
        if let value { for j in 0..<s where !value[b * s + j] { row[j] = false } }
        if let key { for j in 0..<s where !key[b * s + j] { row[j] = false } }
        if let explicit {
            let (rows, columns) = (explicit.shape[1], explicit.shape[2])
            let base = (b * rows + (rows == 1 ? 0 : i)) * columns
            for j in 0..<s where explicit.data[base + (columns == 1 ? 0 : j)] == 0 { row[j] = false }
        }
    }
}

/// `Attention(use_scale, score_mode)` and `AdditiveAttention(use_scale)` called on
/// `[query, value]` or `[query, value, key]` (`key` defaults to `value`), with
/// `mask=[query_mask, value_mask]` and `use_causal_mask`, `return_attention_scores`:
/// scores `q·kᵀ` (× `scale`), `concat_score_weight · Σ tanh(scale · (q + k))` for `score_mode="concat"`,
/// or `Σ scale_d · tanh(q_d + k_d)` for AdditiveAttention; value-masked and (causal) later
/// positions get 1e9 subtracted before the softmax; the output is `softmax · value`, zero where
/// the query is masked, and carries the query's mask.
struct DotAttention: LayerKind {
    static let classNames = ["Attention", "AdditiveAttention"]
    static let tensorParameters = ["query", "value", "key", "query_mask", "value_mask", "key_mask"]
    static let maskListParameters = ["query_mask", "value_mask", "key_mask"]

    enum Score: Equatable { case dot, concat, additive }
    let score: Score
    let useScale: Bool
    let call: CallSignature
    let useCausalMask: Bool
    let returnScores: Bool

    init(config: LayerConfig) throws {
        if config.className == "AdditiveAttention" {
            score = .additive
            useScale = config.bool("use_scale", fallback: true)
        } else {
            switch config.string("score_mode", fallback: "dot") {
            case "dot": score = .dot
            case "concat": score = .concat
            case let other: throw LayerConfigError("score_mode '\(other)' is not one Keras has")
            }
            useScale = config.bool("use_scale", fallback: false)
        }
        call = config.call ?? CallSignature(inputNames: ["query", "value"], keywords: .object([]))
        guard call.index(of: "query") != nil, call.index(of: "value") != nil else {
            throw LayerConfigError("is called without a query and a value")
        }
        // tf.keras before 2.10 kept causality in the config (`causal`); later lines in the call.
        useCausalMask = try call.flag("use_causal_mask") || config.bool("causal", fallback: false)
        returnScores = try call.flag("return_attention_scores")
    }

    func input<T>(_ name: String, _ inputs: [T]) -> T? {
        call.index(of: name).flatMap { $0 < inputs.count ? inputs[$0] : nil }
    }

    func outputShape(_ inputs: [Shape]) throws -> Shape { try outputShapes(inputs)[0] }

    func outputShapes(_ inputs: [Shape]) throws -> [Shape] {
        guard let query = input("query", inputs), let value = input("value", inputs) else {
            throw LayerConfigError("expects a query and a value")
        }
        let key = input("key", inputs) ?? value
        guard query.count >= 2, value.count == query.count, key.count == query.count else {
            throw LayerConfigError("expects query, value and key of one rank ≥ 3 (batch included)")
        }
        let compatible = { (a: Int?, b: Int?) in a == nil || b == nil || a == b }
        guard zip(query.dropLast(2), value.dropLast(2)).allSatisfy(compatible),
            zip(query.dropLast(2), key.dropLast(2)).allSatisfy(compatible),
            compatible(value[value.count - 2], key[key.count - 2])
        else { throw LayerConfigError("query \(describe(query)), value \(describe(value)) and key do not line up") }
        guard compatible(query.last!, key.last!) else {
            throw LayerConfigError("query width \(describe(query)) and key width \(describe(key)) differ")
        }
        for (name, of) in [("query_mask", query), ("value_mask", value), ("key_mask", key)] {
            if let mask = input(name, inputs) {
                guard mask.count == of.count - 1, zip(mask, of).allSatisfy(compatible) else {
                    throw LayerConfigError("its \(name) has shape \(describe(mask)), its input \(describe(of))")
                }
            }
        }
        let output = Array(query.dropLast()) + [value.last!]
        guard returnScores else { return [output] }
        return [output, Array(query.dropLast()) + [key[key.count - 2]]]
    }

    func weights(input: Shape) -> [WeightSpec] {
        switch score {
        case .dot: return useScale ? [WeightSpec("scale", [])] : []
        case .concat: return (useScale ? [WeightSpec("scale", [])] : []) + [WeightSpec("concat_score_weight", [])]
        case .additive: return useScale ? [WeightSpec("scale", [input.last ?? nil])] : []
        }
    }

    func channelFlow(input: Shape, output: Shape) -> ChannelFlow {
        ChannelFlow.mixes.blockingInputs(
            "\(score == .additive ? "AdditiveAttention" : "Attention") mixes positions by their channels")
    }

    func macs(input: [Int], output: [Int]) -> Int? { nil }

    func macs(inputs: [[Int]], output: [Int]) -> Int? {
        guard let query = input("query", inputs), let value = input("value", inputs), query.count >= 2 else {
            return nil
        }
        // Scores (query × key per position pair) and the weighted sum of values.
        let pairs = ShapeMath.product(Array(query.dropLast()) + [value[value.count - 2]])
        return pairs.flatMap { ShapeMath.product([$0, query.last! + value.last!]) }
    }

    static let countsMACs = true

    func checkRunnable(_ context: RunContext) throws {
        for (role, shape) in context.weightShapes where role != "scale" || score != .additive {
            guard shape.reduce(1, *) == 1 else {
                throw InterpreterError.badInput("layer '\(context.path)': \(role) is not a scalar")
            }
        }
    }

    func computeOutputs(_ inputs: inout [FloatArray], masks: [StepMask?], _ context: RunContext) throws -> LayerResult {
        guard let query = input("query", inputs), let value = input("value", inputs) else {
            throw InterpreterError.badInput("layer '\(context.path)': query or value missing")
        }
        let key = input("key", inputs) ?? value
        let d = query.shape.last!
        let dv = value.shape.last!
        let tq = query.shape[query.shape.count - 2]
        let tv = value.shape[value.shape.count - 2]
        let groups = query.count / max(1, tq * d)
        // Every operand must hold the query's groups: the loops below index them by group.
        guard value.shape.count == query.shape.count, key.shape.last == d, value.count == groups * tv * dv,
            key.count == groups * tv * d
        else {
            throw InterpreterError.badInput(
                "layer '\(context.path)': query \(query.shape), value \(value.shape) and key \(key.shape) "
                    + "do not line up")
        }
        let scale = context.weights["scale"]
        if let scale, score == .additive, scale.count != d {
            throw InterpreterError.badInput("layer '\(context.path)': scale has \(scale.count) values for width \(d)")
        }
        let concatWeight = context.weights["concat_score_weight"]?.first ?? 1
        func maskKeep(_ name: String, source: String) -> [Bool]? {
            if let t = input(name, inputs) { return t.data.map { $0 != 0 } }
            guard let i = call.index(of: source), i < masks.count, let m = masks[i] else { return nil }
            return m.keep
        }
        let queryKeep = maskKeep("query_mask", source: "query")
        let valueKeep = maskKeep("value_mask", source: "value")
        var output = FloatArray(zeros: Array(query.shape.dropLast()) + [dv])
        var weights = returnScores ? FloatArray(zeros: Array(query.shape.dropLast()) + [tv]) : FloatArray(zeros: [0])
        var row = [Float](repeating: 0, count: tv)
        for g in 0..<groups {
            for i in 0..<tq {
                let qBase = (g * tq + i) * d
                for j in 0..<tv {
                    let kBase = (g * tv + j) * d
                    var s: Float = 0
                    switch score {
                    case .dot:
                        for c in 0..<d { s += query.data[qBase + c] * key.data[kBase + c] }
                        if let scale { s *= scale[0] }
                    case .concat:
                        let f = scale?[0] ?? 1
                        for c in 0..<d { s += Foundation.tanh(f * (query.data[qBase + c] + key.data[kBase + c])) }
                        s *= concatWeight
                    case .additive:
                        for c in 0..<d {
                            s += (scale?[c] ?? 1) * Foundation.tanh(query.data[qBase + c] + key.data[kBase + c])
                        }
                    }
                    row[j] = s
                }
                var keep: [Bool]?
                if valueKeep != nil || useCausalMask {
                    keep = (0..<tv).map { j in (valueKeep?[g * tv + j] ?? true) && (!useCausalMask || j <= i) }
                }
                row.withUnsafeMutableBufferPointer {
                    AttentionKernels.maskedSoftmax($0, keep: keep, rule: .largeNegative)
                }
                if returnScores { for j in 0..<tv { weights.data[(g * tq + i) * tv + j] = row[j] } }
                // Keras zeroes the output where the query is masked (the scores stay).
                if let queryKeep, !queryKeep[g * tq + i] { continue }
                let oBase = (g * tq + i) * dv
                for j in 0..<tv {
                    let w = row[j]
                    let vBase = (g * tv + j) * dv
                    for c in 0..<dv { output.data[oBase + c] += w * value.data[vBase + c] }
                }
            }
        }
        let queryMask = call.index(of: "query").flatMap { $0 < masks.count ? masks[$0] : nil }
        let outputMask =
            input("query_mask", inputs).map { StepMask(shape: $0.shape, keep: $0.data.map { $0 != 0 }) } ?? queryMask
        return LayerResult(
            values: returnScores ? [output, weights] : [output], masks: returnScores ? [outputMask, nil] : [outputMask])
    }
}
