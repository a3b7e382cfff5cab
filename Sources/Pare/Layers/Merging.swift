/// Layers that combine several inputs.

/// `Add`, `Subtract`, `Multiply`, `Average`, `Maximum`, `Minimum`: element by element, with
/// broadcasting of size-1 dimensions in shape inference (the interpreter needs equal shapes).
struct Merge: LayerKind {
    enum Operation: String, Sendable {
        case add = "Add"
        case subtract = "Subtract"
        case multiply = "Multiply"
        case average = "Average"
        case maximum = "Maximum"
        case minimum = "Minimum"
    }

    static let classNames = ["Add", "Subtract", "Multiply", "Average", "Maximum", "Minimum"]
    let operation: Operation

    init(config: LayerConfig) throws {
        guard let op = Operation(rawValue: config.className) else {
            throw LayerConfigError("is not a merge Pare knows")
        }
        operation = op
    }

    func outputShape(_ inputs: [Shape]) throws -> Shape {
        guard operation == .subtract ? inputs.count == 2 : inputs.count >= 2 else {
            throw LayerConfigError(
                operation == .subtract ? "Subtract takes exactly 2 inputs" : "merges need at least 2 inputs")
        }
        guard inputs.allSatisfy({ $0.count == inputs[0].count }) else {
            throw LayerConfigError("inputs of different ranks: \(inputs.map(describe))")
        }
        return (0..<inputs[0].count).map { axis in
            inputs.compactMap { $0[axis] }.filter { $0 != 1 }.first ?? inputs[0][axis]
        }
    }

    func channelFlow(input: Shape, output: Shape) -> ChannelFlow { ChannelFlow(.merges) }

    /// With masks, the two Keras lines differ. tf.keras 2 and Keras 2 keep the values and keep a
    /// position where every masked input keeps it. Keras 3 keeps a position where any input keeps
    /// it (no mask unless every input has one), and its Maximum, Minimum and Multiply change values:
    /// a masked element does not take part (Multiply reads it as 1 and writes 0 where all inputs
    /// are masked; Maximum/Minimum fold left, taking the other operand where one is masked).
    func computeOutputs(_ inputs: inout [FloatArray], masks: [StepMask?], _ context: RunContext) throws
        -> LayerResult
    {
        guard masks.contains(where: { $0 != nil }) else {
            return LayerResult(values: [try compute(&inputs, context)], masks: [nil])
        }
        guard context.kerasMajor >= 3 else {
            return LayerResult(values: [try compute(&inputs, context)], masks: [StepMask.intersection(masks)])
        }
        switch operation {
        case .maximum, .minimum, .multiply:
            return LayerResult(values: [try keras3MaskedMerge(inputs, masks, context)], masks: [StepMask.union(masks)])
        default:
            return LayerResult(values: [try compute(&inputs, context)], masks: [StepMask.union(masks)])
        }
    }

    /// Keras 3's Maximum, Minimum and Multiply of masked inputs (`base_merge.py`, `multiply.py`).
    private func keras3MaskedMerge(_ inputs: [FloatArray], _ masks: [StepMask?], _ context: RunContext) throws
        -> FloatArray
    {
        let shape = inputs[0].shape
        guard inputs.allSatisfy({ $0.shape == shape }) else {
            throw InterpreterError.unsupported(
                "\(operation.rawValue) of differently shaped inputs (layer '\(context.path)')")
        }
        let c = max(1, shape.last ?? 1)
        func kept(_ mask: StepMask?, _ i: Int) -> Bool? { mask.map { $0.keep[i / c] } }
        var out = inputs[0].data
        if operation == .multiply {
            let allMasked = masks.allSatisfy { $0 != nil }
            for i in out.indices {
                var product: Float = 1
                var any = false
                for (x, mask) in zip(inputs, masks) {
                    let k = kept(mask, i)
                    product *= k == false ? 1 : x.data[i]
                    any = any || (k ?? false)
                }
                out[i] = allMasked && !any ? 0 : product
            }
            return FloatArray(shape: shape, data: out)
        }
        let isMax = operation == .maximum
        for i in out.indices {
            var value = inputs[0].data[i]
            var valueMask = kept(masks[0], i)
            for (x, mask) in zip(inputs.dropFirst(), masks.dropFirst()) {
                let m = kept(mask, i)
                var other = x.data[i]
                if m == false { other = value }
                if valueMask == false { value = other }
                value =
                    isMax
                    ? propagatingMax(value, other) : (value.isNaN || other.isNaN ? .nan : Swift.min(value, other))
                valueMask = valueMask.flatMap { a in m.map { a || $0 } }
            }
            out[i] = value
        }
        return FloatArray(shape: shape, data: out)
    }

    func compute(_ inputs: inout [FloatArray], _ context: RunContext) throws -> FloatArray {
        var y = takeFirst(&inputs)
        let rest = inputs.dropFirst()
        guard rest.allSatisfy({ $0.shape == y.shape }) else {
            throw InterpreterError.unsupported(
                "\(operation.rawValue) of differently shaped inputs \([y.shape] + rest.map(\.shape)) (layer "
                    + "'\(context.path)')"
            )
        }
        let operation = self.operation
        y.data.withUnsafeMutableBufferPointer { p in
            for other in rest {
                other.data.withUnsafeBufferPointer { q in
                    // Plain pointers, so that the loops vectorize.
                    guard let a = p.baseAddress, let b = q.baseAddress else { return }
                    let count = min(p.count, q.count)
                    Parallel.chunks(count, minimumPerChunk: 1 << 16) { r in
                        switch operation {
                        case .add, .average: for i in r { a[i] += b[i] }
                        case .subtract: for i in r { a[i] -= b[i] }
                        case .multiply: for i in r { a[i] *= b[i] }
                        case .maximum: for i in r { a[i] = propagatingMax(a[i], b[i]) }
                        case .minimum: for i in r { a[i] = a[i].isNaN || b[i].isNaN ? .nan : min(a[i], b[i]) }
                        }
                    }
                }
            }
            if operation == .average { for i in p.indices { p[i] /= Float(rest.count + 1) } }
        }
        return y
    }
}

/// `Concatenate(axis)`: axis as Keras counts it (negative from the end, positive including the batch).
struct Concatenate: LayerKind {
    static let classNames = ["Concatenate"]
    let axis: Int

    init(config: LayerConfig) throws {
        guard let a = config["axis"] == nil ? -1 : config["axis"]?.intValue, (-64...64).contains(a), a != 0 else {
            throw LayerConfigError("axis out of range")
        }
        axis = a
    }

    /// The axis in a per-example shape of `rank`.
    func axisIndex(rank: Int) -> Int { axis < 0 ? rank + axis : axis - 1 }

    func outputShape(_ inputs: [Shape]) throws -> Shape {
        guard inputs.count >= 1, inputs.allSatisfy({ $0.count == inputs[0].count }) else {
            throw LayerConfigError("inputs of different ranks")
        }
        let r = inputs[0].count
        let a = axisIndex(rank: r)
        guard a >= 0, a < r else { throw LayerConfigError("axis out of range") }
        for other in inputs.dropFirst() {
            for d in 0..<r where d != a {
                if let x = inputs[0][d], let y = other[d], x != y {
                    throw LayerConfigError("inputs \(inputs.map(describe)) differ off the axis")
                }
            }
        }
        var out = inputs[0]
        out[a] = inputs.contains(where: { $0[a] == nil }) ? nil : ShapeMath.sum(inputs.map { $0[a] })
        return out
    }

    func channelFlow(input: Shape, output: Shape) -> ChannelFlow {
        ChannelFlow(.concatenates(onChannels: axisIndex(rank: output.count) == output.count - 1))
    }

    func compute(_ inputs: inout [FloatArray], _ context: RunContext) throws -> FloatArray {
        ShapeKernels.concatenate(inputs, axis: axisIndex(rank: inputs[0].shape.count - 1) + 1)
    }

    /// Keras's rule: each input's mask (all kept where it has none) spread over its last axis,
    /// concatenated like the values, then reduced over the last axis: "any" in Keras 3, "all" in
    /// tf.keras 2 and Keras 2. Along the channels that is the union (Keras 3) or intersection of
    /// the masks; along the steps, the masks joined end to end.
    func computeOutputs(_ inputs: inout [FloatArray], masks: [StepMask?], _ context: RunContext) throws
        -> LayerResult
    {
        let shapes = inputs.map(\.shape)
        let y = try compute(&inputs, context)
        return LayerResult(values: [y], masks: [joinedMask(masks, inputShapes: shapes, any: context.kerasMajor >= 3)])
    }

    private func joinedMask(_ masks: [StepMask?], inputShapes: [[Int]], any: Bool) -> StepMask? {
        guard masks.contains(where: { $0 != nil }), let rank = inputShapes.first?.count else { return nil }
        let full = zip(masks, inputShapes).map { mask, shape in mask ?? StepMask(allKept: shape) }
        let a = axisIndex(rank: rank - 1) + 1
        if a == rank - 1 { return any ? StepMask.union(full) : StepMask.intersection(full) }
        // Joined along axis `a` of the masks (which lack the last axis).
        let outer = full[0].shape[..<a].reduce(1, *)
        var keep: [Bool] = []
        for o in 0..<outer {
            for m in full {
                let inner = m.shape[a...].reduce(1, *)
                keep += m.keep[(o * inner)..<((o + 1) * inner)]
            }
        }
        var shape = full[0].shape
        shape[a] = full.reduce(0) { $0 + $1.shape[a] }
        return StepMask(shape: shape, keep: keep)
    }
}

/// `Dot(axes, normalize)` of two vectors per example: `(batch, n) · (batch, n) → (batch, 1)`, the
/// rank Keras 1's `merge(mode='dot')` and Keras 2's and 3's `Dot` give it; with `normalize`, each
/// input is first divided by its L2 norm (at least √1e-12, Keras's `l2_normalize`). Dots of higher
/// ranks (batched matrix products) are refused.
struct Dot: LayerKind {
    static let classNames = ["Dot"]
    let normalize: Bool

    init(config: LayerConfig) throws {
        let axes = config["axes"]?.arrayValue ?? config["axes"].map { [$0] } ?? []
        guard !axes.isEmpty, axes.count <= 2, axes.allSatisfy({ $0.intValue == 1 || $0.intValue == -1 }) else {
            throw LayerConfigError(
                "Dot over axes \(config["axes"]?.serialized() ?? "none"): Pare takes axes 1 (vectors)")
        }
        normalize = config["normalize"]?.boolValue ?? false
    }

    func outputShape(_ inputs: [Shape]) throws -> Shape {
        guard inputs.count == 2, inputs.allSatisfy({ $0.count == 1 }) else {
            throw LayerConfigError("Dot of \(inputs.map(describe)): Pare takes two vectors per example")
        }
        if let a = inputs[0][0], let b = inputs[1][0], a != b {
            throw LayerConfigError("Dot of vectors of \(a) and \(b) values")
        }
        return [1]
    }

    /// Every input channel meets its partner in one sum: removing one changes the result.
    func channelFlow(input: Shape, output: Shape) -> ChannelFlow {
        ChannelFlow.mixes.blockingInputs("a Dot sums over its inputs' channels")
    }

    func compute(_ inputs: inout [FloatArray], _ context: RunContext) throws -> FloatArray {
        let (a, b) = (inputs[0], inputs[1])
        let n = a.shape[1]
        var out = [Float](repeating: 0, count: a.batch)
        for e in 0..<a.batch {
            let x = a.data[(e * n)..<((e + 1) * n)]
            let y = b.data[(e * n)..<((e + 1) * n)]
            var dot: Float = 0
            for (p, q) in zip(x, y) { dot += p * q }
            if normalize {
                let nx = max(x.reduce(0) { $0 + $1 * $1 }, 1e-12).squareRoot()
                let ny = max(y.reduce(0) { $0 + $1 * $1 }, 1e-12).squareRoot()
                dot /= nx * ny
            }
            out[e] = dot
        }
        return FloatArray(shape: [a.batch, 1], data: out)
    }
}
