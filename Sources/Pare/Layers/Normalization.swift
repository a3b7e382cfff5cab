/// `BatchNormalization`: `gamma · (x − moving_mean) / sqrt(moving_variance + epsilon) + beta`
/// along `axis`; gamma `(n)` if `scale`, beta `(n)` if `center`, then the two statistics `(n)`.
struct BatchNormalization: LayerKind {
    static let classNames = ["BatchNormalization"]
    /// As Keras writes it: negative from the end, positive counting the batch axis.
    let axis: Int
    let epsilon: Float
    let scale: Bool
    let center: Bool

    init(config: LayerConfig) throws {
        axis = try config.axis()
        guard axis != 0 else { throw LayerConfigError("axis 0 is the batch axis") }
        epsilon = Float(try config.number("epsilon", fallback: 1e-3))
        guard epsilon >= 0 else { throw LayerConfigError("epsilon must not be negative") }
        scale = config.bool("scale", fallback: true)
        center = config.bool("center", fallback: true)
    }

    /// The normalized axis in a per-example shape of `rank`, nil if out of range.
    func axisIndex(rank: Int) -> Int? {
        let a = axis < 0 ? rank + axis : axis - 1
        return (0..<rank).contains(a) ? a : nil
    }

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
        ]
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
            if let w = context.weights[role], w.count != n {
                throw InterpreterError.badInput(
                    "layer '\(context.path)': \(role) has \(w.count) values for \(n) channels")
            }
        }
        guard context.weights["moving_mean"] != nil, context.weights["moving_variance"] != nil else {
            throw InterpreterError.badInput("layer '\(context.path)': moving statistics missing")
        }
    }

    func compute(_ inputs: inout [FloatArray], _ context: RunContext) throws -> FloatArray {
        var y = takeFirst(&inputs)
        guard let index = axisIndex(rank: y.shape.count - 1) else {
            throw InterpreterError.badInput("layer '\(context.path)': axis \(axis) is outside its input")
        }
        let a = index + 1
        let channels = y.shape[a]
        let inner = y.shape[(a + 1)...].reduce(1, *)
        let mean = try context.weight("moving_mean")
        let variance = try context.weight("moving_variance")
        let gamma = context.weights["gamma"]
        let beta = context.weights["beta"]
        // y = gamma * (x - mean) / sqrt(var + eps) + beta, as Keras computes it.
        var factor = [Float](repeating: 0, count: channels)
        var shift = [Float](repeating: 0, count: channels)
        for c in 0..<channels {
            let inv = 1 / (variance[c] + epsilon).squareRoot()
            factor[c] = inv * (gamma?[c] ?? 1)
            shift[c] = (beta?[c] ?? 0) - mean[c] * factor[c]
        }
        let rows = y.count / max(1, channels * inner)
        y.data.withUnsafeMutableBufferPointer { p in
            Parallel.chunks(rows, minimumPerChunk: max(1, (1 << 16) / max(1, channels * inner))) { rowRange in
                var i = rowRange.lowerBound * channels * inner
                for _ in rowRange {
                    for c in 0..<channels {
                        let (m, b) = (factor[c], shift[c])
                        for j in 0..<inner { p[i + j] = p[i + j] * m + b }
                        i += inner
                    }
                }
            }
        }
        return y
    }

    func keepingInputChannels(_ keep: [Int], _ edit: inout LayerEdit) throws {
        for role in ["gamma", "beta", "moving_mean", "moving_variance"] { try edit.slice(role, axis: 0, keep: keep) }
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
