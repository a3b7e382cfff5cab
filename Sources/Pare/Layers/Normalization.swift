/// `BatchNormalization`: `gamma · (x − moving_mean) / sqrt(moving_variance + epsilon) + beta`
/// along `axis`; gamma `(n)` if `scale`, beta `(n)` if `center`, then the two statistics `(n)`.
/// tf.keras's batch renormalization (`renorm`) adds three statistics `(n)` that only training reads.
struct BatchNormalization: LayerKind {
    static let classNames = ["BatchNormalization"]
    /// What tf.keras's renorm adds, in its order (used in training only).
    static let renormRoles = ["moving_stddev", "renorm_mean", "renorm_stddev"]
    /// As Keras writes it: negative from the end, positive counting the batch axis.
    let axis: Int
    let epsilon: Float
    let scale: Bool
    let center: Bool
    let renorm: Bool

    init(config: LayerConfig) throws {
        axis = try config.channelAxis()
        epsilon = Float(try config.number("epsilon", fallback: 1e-3))
        guard epsilon >= 0 else { throw LayerConfigError("epsilon must not be negative") }
        scale = config.bool("scale", fallback: true)
        center = config.bool("center", fallback: true)
        renorm = config.bool("renorm", fallback: false)
    }

    /// The normalized axis in a per-example shape of `rank`, nil if out of range.
    func axisIndex(rank: Int) -> Int? { LayerConfig.axisIndex(axis, rank: rank) }

    func outputShape(_ inputs: [Shape]) throws -> Shape {
        let x = try singleInput(inputs)
        guard axisIndex(rank: x.count) != nil else {
            throw LayerConfigError("axis \(axis) is outside a rank-\(x.count + 1) input")
        }
        return x
    }

    func weights(input: Shape) -> [WeightSpec] {
        let n: Int? = axisIndex(rank: input.count).flatMap { input[$0] }
        var list: [WeightSpec] = []
        if scale { list.append(WeightSpec("gamma", [n])) }
        if center { list.append(WeightSpec("beta", [n])) }
        return list + [
            WeightSpec("moving_mean", [n], trainable: false), WeightSpec("moving_variance", [n], trainable: false),
        ] + (renorm ? Self.renormRoles.map { WeightSpec($0, [n], trainable: false) } : [])
    }

    func channelFlow(input: Shape, output: Shape) -> ChannelFlow {
        // Its parameters follow the channels only when it normalizes the last axis.
        ChannelFlow.perChannel(indexed: true, elementwise: true).blockingInputs(
            axisIndex(rank: input.count) == input.count - 1
                ? nil : "BatchNormalization normalizes axis \(axis), not the channels")
    }

    func checkRunnable(_ context: RunContext) throws {
        let rank = context.outputShape.count
        guard let a = axisIndex(rank: rank), let n = context.outputShape[a] else {
            throw InterpreterError.unsupported(
                "BatchNormalization axis \(axis) of a rank-\(rank + 1) tensor (layer '\(context.path)')")
        }
        for role in ["gamma", "beta", "moving_mean", "moving_variance"] {
            if let w = context.count(role), w != n {
                throw InterpreterError.badInput(
                    "layer '\(context.path)': \(role) has \(w) values for \(n) channels")
            }
        }
        guard context.count("moving_mean") != nil, context.count("moving_variance") != nil else {
            throw InterpreterError.badInput("layer '\(context.path)': moving statistics missing")
        }
    }

    /// The map `compute` applies to each channel: `x · scale + shift` (a multiply, then an add), with
    /// scale = gamma / sqrt(var + eps) and shift = beta − mean · scale, as Keras computes it. The
    /// interpreter applies it inside a preceding convolution's store (`Epilogue`).
    func affine(_ context: RunContext, channels: Int) throws -> ChannelAffine {
        let mean = try context.weight("moving_mean")
        let variance = try context.weight("moving_variance")
        let gamma = context.weights["gamma"]
        let beta = context.weights["beta"]
        guard mean.count >= channels, variance.count >= channels, (gamma?.count ?? channels) >= channels,
            (beta?.count ?? channels) >= channels
        else { throw InterpreterError.badInput("layer '\(context.path)': fewer statistics than \(channels) channels") }
        var map = ChannelAffine(
            scale: [Float](repeating: 0, count: channels), shift: [Float](repeating: 0, count: channels))
        for c in 0..<channels {
            let inv = 1 / (variance[c] + epsilon).squareRoot()
            map.scale[c] = inv * (gamma?[c] ?? 1)
            map.shift[c] = (beta?[c] ?? 0) - mean[c] * map.scale[c]
        }
        return map
    }

    func compute(_ inputs: inout [FloatArray], _ context: RunContext) throws -> FloatArray {
        var y = takeFirst(&inputs)
        guard let index = axisIndex(rank: y.shape.count - 1) else {
            throw InterpreterError.badInput("layer '\(context.path)': axis \(axis) is outside its input")
        }
        let a = index + 1
        let channels = y.shape[a]
        let inner = y.shape[(a + 1)...].reduce(1, *)
        let map = try affine(context, channels: channels)
        let (factor, shift) = (map.scale, map.shift)
        let rows = y.count / max(1, channels * inner)
        guard rows > 0, channels > 0, inner > 0 else { return y }
        // Plain pointers, so that the loops vectorize (indexing the arrays in the closure did not).
        y.data.withUnsafeMutableBufferPointer { p in
            factor.withUnsafeBufferPointer { f in
                shift.withUnsafeBufferPointer { s in
                    let (values, scale, offset) = (p.baseAddress!, f.baseAddress!, s.baseAddress!)
                    Parallel.chunks(rows, minimumPerChunk: max(1, (1 << 16) / (channels * inner))) { rowRange in
                        var line = values + rowRange.lowerBound * channels * inner
                        for _ in rowRange {
                            if inner == 1 {
                                // Channels last: one row is every channel once.
                                for c in 0..<channels { line[c] = line[c] * scale[c] + offset[c] }
                                line += channels
                                continue
                            }
                            for c in 0..<channels {
                                let (m, b) = (scale[c], offset[c])
                                for j in 0..<inner { line[j] = line[j] * m + b }
                                line += inner
                            }
                        }
                    }
                }
            }
        }
        return y
    }

    func keepingInputChannels(_ keep: [Int], _ edit: inout LayerEdit) throws {
        for role in ["gamma", "beta", "moving_mean", "moving_variance"] + Self.renormRoles {
            try edit.slice(role, axis: 0, keep: keep)
        }
    }

    /// The masked model zeroes γ and β: the removed channel's output becomes exactly zero.
    func maskingInputChannels(_ removed: Set<Int>, _ edit: inout LayerEdit) throws {
        for role in ["gamma", "beta"] { try edit.zero(role, axis: 0, removed: removed) }
    }

    /// Keras passes the mask of the input on (the layer supports masking and does not change it).
    func outputMasks(_ masks: [StepMask?], inputShapes: [[Int]], outputs: [FloatArray]) -> [StepMask?] {
        [masks.first ?? nil]
    }
}

/// Why channels reaching a normalization across them cannot be removed: every output depends on
/// statistics over all of them.
func normalizesAcrossChannels(_ className: String) -> String {
    "feeds a \(className), which normalizes across channels: removing one changes the others' statistics"
}

/// A normalization over the channels whose parameters are per channel when it normalizes the last
/// axis alone: asked to (`--approximate-norm`), pruning removes channels through it, slicing them.
protocol ChannelNormalization {
    func normalizesOnlyChannels(rank: Int) -> Bool
}

/// `LayerNormalization(axis, epsilon, center, scale, rms_scaling)`: per example, over `axis`,
/// `(x − mean) / sqrt(var + epsilon) · gamma + beta` (biased variance); gamma and beta are shaped
/// like the normalized axes. Keras 3's `rms_scaling` drops the centring: `x / sqrt(var + epsilon) · gamma`.
struct LayerNormalization: LayerKind, ChannelNormalization {
    static let classNames = ["LayerNormalization"]
    let axes: NormalizedAxes
    let epsilon: Double
    let center: Bool
    let scale: Bool
    let rmsScaling: Bool

    init(config: LayerConfig) throws {
        axes = try NormalizedAxes(config: config)
        epsilon = try config.number("epsilon", fallback: 1e-3)
        guard epsilon >= 0 else { throw LayerConfigError("epsilon must not be negative") }
        rmsScaling = config.bool("rms_scaling", fallback: false)
        // Keras 3 forces scale on and center off under rms_scaling.
        center = rmsScaling ? false : config.bool("center", fallback: true)
        scale = rmsScaling ? true : config.bool("scale", fallback: true)
    }

    func outputShape(_ inputs: [Shape]) throws -> Shape {
        let x = try singleInput(inputs)
        _ = try axes.resolved(rank: x.count)
        return x
    }

    func weights(input: Shape) -> [WeightSpec] {
        let shape: Shape = ((try? axes.resolved(rank: input.count)) ?? []).map { input[$0] }
        let parameterShape: Shape = input.isEmpty ? [nil] : shape
        return (scale ? [WeightSpec("gamma", parameterShape)] : [])
            + (center ? [WeightSpec("beta", parameterShape)] : [])
    }

    func channelFlow(input: Shape, output: Shape) -> ChannelFlow {
        ChannelFlow.mixes.blockingInputs(normalizesAcrossChannels("LayerNormalization"))
    }

    func normalizesOnlyChannels(rank: Int) -> Bool { (try? axes.resolved(rank: rank)) == [rank - 1] }

    func keepingInputChannels(_ keep: [Int], _ edit: inout LayerEdit) throws {
        for role in ["gamma", "beta"] { try edit.slice(role, axis: 0, keep: keep) }
    }

    /// The masked model zeroes γ and β: the removed channel's output becomes exactly zero.
    func maskingInputChannels(_ removed: Set<Int>, _ edit: inout LayerEdit) throws {
        for role in ["gamma", "beta"] { try edit.zero(role, axis: 0, removed: removed) }
    }

    func compute(_ inputs: inout [FloatArray], _ context: RunContext) throws -> FloatArray {
        var y = takeFirst(&inputs)
        let groups = AxisGroups(
            shape: y.shape, axes: Set(try axes.resolved(rank: y.shape.count - 1).map { $0 + 1 }))
        let gamma = context.weights["gamma"]
        let beta = context.weights["beta"]
        for role in ["gamma", "beta"] {
            if let w = context.weights[role], w.count != groups.groupSize {
                throw InterpreterError.badInput(
                    "layer '\(context.path)': \(role) has \(w.count) values for \(groups.groupSize) normalized")
            }
        }
        let n = Double(groups.groupSize)
        let (center, rms, epsilon) = (self.center, self.rmsScaling, self.epsilon)
        y.data.withUnsafeMutableBufferPointer { p in
            Parallel.chunks(groups.groupCount, minimumPerChunk: 64) { range in
                for g in range {
                    let base = groups.outerBase[g]
                    var sum = 0.0
                    for o in groups.innerOffset { sum += Double(p[base + o]) }
                    let mean = sum / n
                    var squares = 0.0
                    for o in groups.innerOffset {
                        let d = Double(p[base + o]) - mean
                        squares += d * d
                    }
                    let inv = 1 / (squares / n + epsilon).squareRoot()
                    for (j, o) in groups.innerOffset.enumerated() {
                        let centred = rms ? Double(p[base + o]) : Double(p[base + o]) - mean
                        var v = centred * inv * Double(gamma?[j] ?? 1)
                        if center { v += Double(beta?[j] ?? 0) }
                        p[base + o] = Float(v)
                    }
                }
            }
        }
        return y
    }

    /// Keras passes the mask of the input on (the layer supports masking and does not change it).
    func outputMasks(_ masks: [StepMask?], inputShapes: [[Int]], outputs: [FloatArray]) -> [StepMask?] {
        [masks.first ?? nil]
    }
}

/// Keras 3's `RMSNormalization(axis, epsilon)`: `x / sqrt(mean(x²) + epsilon) · scale` over `axis`.
struct RMSNormalization: LayerKind, ChannelNormalization {
    static let classNames = ["RMSNormalization"]
    let axes: NormalizedAxes
    let epsilon: Double

    init(config: LayerConfig) throws {
        axes = try NormalizedAxes(config: config)
        epsilon = try config.number("epsilon", fallback: 1e-6)
        guard epsilon >= 0 else { throw LayerConfigError("epsilon must not be negative") }
    }

    func outputShape(_ inputs: [Shape]) throws -> Shape {
        let x = try singleInput(inputs)
        _ = try axes.resolved(rank: x.count)
        return x
    }

    func weights(input: Shape) -> [WeightSpec] {
        let shape: Shape = ((try? axes.resolved(rank: input.count)) ?? []).map { input[$0] }
        return [WeightSpec("scale", input.isEmpty ? [nil] : shape)]
    }

    func channelFlow(input: Shape, output: Shape) -> ChannelFlow {
        ChannelFlow.mixes.blockingInputs(normalizesAcrossChannels("RMSNormalization"))
    }

    func normalizesOnlyChannels(rank: Int) -> Bool { (try? axes.resolved(rank: rank)) == [rank - 1] }

    func keepingInputChannels(_ keep: [Int], _ edit: inout LayerEdit) throws {
        try edit.slice("scale", axis: 0, keep: keep)
    }

    func maskingInputChannels(_ removed: Set<Int>, _ edit: inout LayerEdit) throws {
        try edit.zero("scale", axis: 0, removed: removed)
    }

    func compute(_ inputs: inout [FloatArray], _ context: RunContext) throws -> FloatArray {
        var y = takeFirst(&inputs)
        let groups = AxisGroups(
            shape: y.shape, axes: Set(try axes.resolved(rank: y.shape.count - 1).map { $0 + 1 }))
        let scale = try context.weight("scale")
        guard scale.count == groups.groupSize else {
            throw InterpreterError.badInput(
                "layer '\(context.path)': scale has \(scale.count) values for \(groups.groupSize) normalized")
        }
        let (n, epsilon) = (Double(groups.groupSize), self.epsilon)
        y.data.withUnsafeMutableBufferPointer { p in
            Parallel.chunks(groups.groupCount, minimumPerChunk: 64) { range in
                for g in range {
                    let base = groups.outerBase[g]
                    var squares = 0.0
                    for o in groups.innerOffset { squares += Double(p[base + o]) * Double(p[base + o]) }
                    let inv = 1 / (squares / n + epsilon).squareRoot()
                    for (j, o) in groups.innerOffset.enumerated() {
                        p[base + o] = Float(Double(p[base + o]) * inv * Double(scale[j]))
                    }
                }
            }
        }
        return y
    }

    // Keras 3's RMSNormalization does not support masking: the mask stops here (the default).
}

/// `GroupNormalization(groups, axis, epsilon, center, scale)`: the channels of `axis` split into
/// `groups` consecutive groups; per example and group, statistics over every position and the
/// group's channels; gamma and beta per channel.
struct GroupNormalization: LayerKind {
    static let classNames = ["GroupNormalization"]
    let groups: Int
    let axis: Int
    let epsilon: Double
    let center: Bool
    let scale: Bool

    init(config: LayerConfig) throws {
        groups = try config.positive("groups", fallback: 32)
        axis = try config.channelAxis()
        epsilon = try config.number("epsilon", fallback: 1e-3)
        guard epsilon >= 0 else { throw LayerConfigError("epsilon must not be negative") }
        center = config.bool("center", fallback: true)
        scale = config.bool("scale", fallback: true)
    }

    /// The channel axis in a per-example shape of `rank`, nil if out of range.
    func axisIndex(rank: Int) -> Int? { LayerConfig.axisIndex(axis, rank: rank) }

    func outputShape(_ inputs: [Shape]) throws -> Shape {
        let x = try singleInput(inputs)
        guard let a = axisIndex(rank: x.count) else {
            throw LayerConfigError("axis \(axis) is outside a rank-\(x.count + 1) input")
        }
        if let channels = x[a], channels % groups != 0 {
            throw LayerConfigError("\(channels) channels do not split into \(groups) groups")
        }
        return x
    }

    func weights(input: Shape) -> [WeightSpec] {
        let n: Int? = axisIndex(rank: input.count).flatMap { input[$0] }
        return (scale ? [WeightSpec("gamma", [n])] : []) + (center ? [WeightSpec("beta", [n])] : [])
    }

    func channelFlow(input: Shape, output: Shape) -> ChannelFlow {
        ChannelFlow.mixes.blockingInputs(normalizesAcrossChannels("GroupNormalization"))
    }

    func compute(_ inputs: inout [FloatArray], _ context: RunContext) throws -> FloatArray {
        var y = takeFirst(&inputs)
        guard let a = axisIndex(rank: y.shape.count - 1).map({ $0 + 1 }), y.shape[a] % groups == 0 else {
            throw InterpreterError.badInput("layer '\(context.path)': axis \(axis) does not fit its input")
        }
        let channels = y.shape[a]
        let perGroup = channels / groups
        // Splitting the channel axis into (groups, channels per group) keeps the layout; the
        // statistics reduce every axis of that view but the batch and the group.
        let view = Array(y.shape[..<a]) + [groups, perGroup] + Array(y.shape[(a + 1)...])
        let grouping = AxisGroups(shape: view, axes: Set(view.indices.filter { $0 != 0 && $0 != a }))
        // The channel of each inner position, for gamma and beta.
        var inner = [Int](repeating: 0, count: grouping.groupSize)
        let after = y.shape[(a + 1)...].reduce(1, *)
        let gamma = context.weights["gamma"]
        let beta = context.weights["beta"]
        for role in ["gamma", "beta"] {
            if let w = context.weights[role], w.count != channels {
                throw InterpreterError.badInput(
                    "layer '\(context.path)': \(role) has \(w.count) values for \(channels) channels")
            }
        }
        let n = Double(grouping.groupSize)
        let (center, epsilon) = (self.center, self.epsilon)
        for (j, o) in grouping.innerOffset.enumerated() { inner[j] = (o / after) % channels }
        y.data.withUnsafeMutableBufferPointer { p in
            for g in 0..<grouping.groupCount {
                let base = grouping.outerBase[g]
                let firstChannel = (base / after) % channels
                var sum = 0.0
                for o in grouping.innerOffset { sum += Double(p[base + o]) }
                let mean = sum / n
                var squares = 0.0
                for o in grouping.innerOffset {
                    let d = Double(p[base + o]) - mean
                    squares += d * d
                }
                let inv = 1 / (squares / n + epsilon).squareRoot()
                for (j, o) in grouping.innerOffset.enumerated() {
                    let c = firstChannel + inner[j]
                    var v = (Double(p[base + o]) - mean) * inv * Double(gamma?[c] ?? 1)
                    if center { v += Double(beta?[c] ?? 0) }
                    p[base + o] = Float(v)
                }
            }
        }
        return y
    }

    /// Keras passes the mask of the input on (the layer supports masking and does not change it).
    func outputMasks(_ masks: [StepMask?], inputShapes: [[Int]], outputs: [FloatArray]) -> [StepMask?] {
        [masks.first ?? nil]
    }
}

/// `UnitNormalization(axis)`: `x / ‖x‖` over `axis`, with the scale capped for tiny vectors as each
/// line caps it: Keras 3 `x · min(rsqrt(Σ x²), 1e12)`, tf.keras 2 `x · rsqrt(max(Σ x², 1e-12))` (1e6).
struct UnitNormalization: LayerKind {
    static let classNames = ["UnitNormalization"]
    let axes: NormalizedAxes

    init(config: LayerConfig) throws { axes = try NormalizedAxes(config: config) }

    func outputShape(_ inputs: [Shape]) throws -> Shape {
        let x = try singleInput(inputs)
        _ = try axes.resolved(rank: x.count)
        return x
    }

    func channelFlow(input: Shape, output: Shape) -> ChannelFlow {
        ChannelFlow.mixes.blockingInputs(normalizesAcrossChannels("UnitNormalization"))
    }

    func compute(_ inputs: inout [FloatArray], _ context: RunContext) throws -> FloatArray {
        var y = takeFirst(&inputs)
        let groups = AxisGroups(
            shape: y.shape, axes: Set(try axes.resolved(rank: y.shape.count - 1).map { $0 + 1 }))
        let keras3 = context.kerasMajor >= 3
        y.data.withUnsafeMutableBufferPointer { p in
            for g in 0..<groups.groupCount {
                let base = groups.outerBase[g]
                var squares = 0.0
                for o in groups.innerOffset { squares += Double(p[base + o]) * Double(p[base + o]) }
                let inv = keras3 ? min(1 / squares.squareRoot(), 1e12) : 1 / max(squares, 1e-12).squareRoot()
                for o in groups.innerOffset { p[base + o] = Float(Double(p[base + o]) * inv) }
            }
        }
        return y
    }

    /// Keras passes the mask of the input on (the layer supports masking and does not change it).
    func outputMasks(_ masks: [StepMask?], inputShapes: [[Int]], outputs: [FloatArray]) -> [StepMask?] {
        [masks.first ?? nil]
    }
}
