import Foundation

/// Activation layers. All work value by value (Softmax along one axis) and keep the shape.

/// Channels reaching a softmax over the last axis are tied together: none can be removed alone.
let softmaxAcrossChannels = "softmax across channels"

/// `Activation(name)`: the function is applied by the interpreter like any layer's `activation`,
/// except `glu`, which halves the last axis (`a · sigmoid(b)` of its two halves) and runs here.
struct ActivationLayer: LayerKind {
    static let classNames = ["Activation"]
    let configuredActivation: JSON?
    let activationName: String?

    init(config: LayerConfig) throws {
        configuredActivation = config.activation
        activationName = config.activationName
    }

    var isGLU: Bool { activationName == "glu" }
    var activation: JSON? { isGLU ? nil : configuredActivation }

    func outputShape(_ inputs: [Shape]) throws -> Shape {
        let x = try singleInput(inputs)
        guard isGLU else { return x }
        guard let last = x.last else { throw LayerConfigError("glu needs an axis to split") }
        if let last, last % 2 != 0 { throw LayerConfigError("glu splits a last axis of \(last), which is odd") }
        return Array(x.dropLast()) + [last.map { $0 / 2 }]
    }

    func channelFlow(input: Shape, output: Shape) -> ChannelFlow {
        if isGLU { return .mixes }
        return ChannelFlow.perChannel(elementwise: true).blockingInputs(
            activationName.map(ActivationFunction.channelCoupling.contains) == true ? softmaxAcrossChannels : nil)
    }

    func compute(_ inputs: inout [FloatArray], _ context: RunContext) throws -> FloatArray {
        let x = takeFirst(&inputs)
        guard isGLU else { return x }
        let half = (x.shape.last ?? 0) / 2
        var y = FloatArray(zeros: Array(x.shape.dropLast()) + [half])
        for row in 0..<(y.count / max(half, 1)) {
            for k in 0..<half {
                let a = x.data[row * 2 * half + k]
                let b = x.data[row * 2 * half + half + k]
                y.data[row * half + k] = a * ActivationFunction.sigmoid(b)
            }
        }
        return y
    }

    /// Keras passes the mask of the input on (the layer supports masking and does not change it).
    func outputMasks(_ masks: [StepMask?], inputShapes: [[Int]], outputs: [FloatArray]) -> [StepMask?] {
        [masks.first ?? nil]
    }
}

/// `ReLU(max_value, negative_slope, threshold)`.
struct ReLU: LayerKind {
    static let classNames = ["ReLU"]
    let maxValue: Float?
    let negativeSlope: Float
    let threshold: Float

    init(config: LayerConfig) throws {
        let m = config["max_value"]
        maxValue = m == nil || m?.isNull == true ? nil : Float(try config.number("max_value", fallback: 0))
        negativeSlope = Float(try config.number("negative_slope", fallback: 0))
        threshold = Float(try config.number("threshold", fallback: 0))
    }

    func outputShape(_ inputs: [Shape]) throws -> Shape { try singleInput(inputs) }
    func channelFlow(input: Shape, output: Shape) -> ChannelFlow { .perChannel(elementwise: true) }

    func compute(_ inputs: inout [FloatArray], _ context: RunContext) throws -> FloatArray {
        var y = takeFirst(&inputs)
        let plain = maxValue == nil && negativeSlope == 0 && threshold == 0
        let function: ActivationFunction =
            plain ? .relu : .reluLayer(maxValue: maxValue, negativeSlope: negativeSlope, threshold: threshold)
        function.apply(&y.data, channels: 1)
        return y
    }

    /// Keras passes the mask of the input on (the layer supports masking and does not change it).
    func outputMasks(_ masks: [StepMask?], inputShapes: [[Int]], outputs: [FloatArray]) -> [StepMask?] {
        [masks.first ?? nil]
    }
}

/// `LeakyReLU`: Keras 3 calls the slope `negative_slope`, Keras 2 `alpha`; both default to 0.3.
struct LeakyReLU: LayerKind {
    static let classNames = ["LeakyReLU"]
    let slope: Float

    init(config: LayerConfig) throws {
        slope = Float(
            config["negative_slope"] != nil
                ? try config.number("negative_slope", fallback: 0.3) : try config.number("alpha", fallback: 0.3))
    }

    func outputShape(_ inputs: [Shape]) throws -> Shape { try singleInput(inputs) }
    func channelFlow(input: Shape, output: Shape) -> ChannelFlow { .perChannel(elementwise: true) }

    func compute(_ inputs: inout [FloatArray], _ context: RunContext) throws -> FloatArray {
        var y = takeFirst(&inputs)
        ActivationFunction.leakyRelu(slope).apply(&y.data, channels: 1)
        return y
    }

    /// Keras passes the mask of the input on (the layer supports masking and does not change it).
    func outputMasks(_ masks: [StepMask?], inputShapes: [[Int]], outputs: [FloatArray]) -> [StepMask?] {
        [masks.first ?? nil]
    }
}

/// `ELU(alpha)`.
struct ELU: LayerKind {
    static let classNames = ["ELU"]
    let alpha: Float

    init(config: LayerConfig) throws { alpha = Float(try config.number("alpha", fallback: 1)) }

    func outputShape(_ inputs: [Shape]) throws -> Shape { try singleInput(inputs) }
    func channelFlow(input: Shape, output: Shape) -> ChannelFlow { .perChannel(elementwise: true) }

    func compute(_ inputs: inout [FloatArray], _ context: RunContext) throws -> FloatArray {
        var y = takeFirst(&inputs)
        ActivationFunction.elu(alpha).apply(&y.data, channels: 1)
        return y
    }

    /// Keras passes the mask of the input on (the layer supports masking and does not change it).
    func outputMasks(_ masks: [StepMask?], inputShapes: [[Int]], outputs: [FloatArray]) -> [StepMask?] {
        [masks.first ?? nil]
    }
}

/// tf.keras 2's `ThresholdedReLU(theta)` (Keras 3 removed it): `x · cast(x > theta)`, so a value at
/// the threshold becomes 0, and −∞ or NaN become NaN, exactly as TensorFlow's multiply gives.
struct ThresholdedReLU: LayerKind {
    static let classNames = ["ThresholdedReLU"]
    let theta: Float

    init(config: LayerConfig) throws {
        let t = try config.number("theta", fallback: 1)
        // tf.keras refuses a negative or missing theta when it builds the layer.
        guard t >= 0 else { throw LayerConfigError("theta must not be negative") }
        theta = Float(t)
    }

    func outputShape(_ inputs: [Shape]) throws -> Shape { try singleInput(inputs) }
    func channelFlow(input: Shape, output: Shape) -> ChannelFlow { .perChannel(elementwise: true) }

    func compute(_ inputs: inout [FloatArray], _ context: RunContext) throws -> FloatArray {
        var y = takeFirst(&inputs)
        let theta = self.theta
        y.data.withUnsafeMutableBufferPointer { p in
            Parallel.chunks(p.count, minimumPerChunk: 1 << 16) { r in
                for i in r { p[i] = p[i] * (p[i] > theta ? 1 : 0) }
            }
        }
        return y
    }

    /// Keras passes the mask of the input on (the layer supports masking and does not change it).
    func outputMasks(_ masks: [StepMask?], inputShapes: [[Int]], outputs: [FloatArray]) -> [StepMask?] {
        [masks.first ?? nil]
    }
}

/// `PReLU`: a learned slope `alpha` per position, shared (size 1) along `shared_axes`.
struct PReLU: LayerKind {
    static let classNames = ["PReLU"]
    /// Axes as Keras counts them (1 is the first axis after the batch).
    let sharedAxes: [Int]

    init(config: LayerConfig) throws {
        guard let value = config["shared_axes"], !value.isNull else {
            sharedAxes = []
            return
        }
        let list = value.arrayValue ?? [value]
        let axes = list.compactMap { $0.intValue }
        guard axes.count == list.count, axes.allSatisfy({ (1...64).contains($0) }) else {
            throw LayerConfigError("shared_axes must list axes from 1")
        }
        sharedAxes = axes
    }

    func outputShape(_ inputs: [Shape]) throws -> Shape { try singleInput(inputs) }

    func weights(input: Shape) -> [WeightSpec] {
        var shape = input
        for a in sharedAxes where a <= shape.count { shape[a - 1] = 1 }
        return [WeightSpec("alpha", shape)]
    }

    func channelFlow(input: Shape, output: Shape) -> ChannelFlow {
        ChannelFlow.perChannel(indexed: true, elementwise: true).blockingInputs(
            sharedAxes.contains(output.count) ? "PReLU shares its slope across channels" : nil)
    }

    func compute(_ inputs: inout [FloatArray], _ context: RunContext) throws -> FloatArray {
        var y = takeFirst(&inputs)
        let alpha = try context.weight("alpha")
        let shape = try context.shape("alpha")
        let dims = Array(y.shape.dropFirst())
        guard shape.count == dims.count else {
            throw InterpreterError.badInput("layer '\(context.path)': alpha of shape \(shape) for input \(dims)")
        }
        let per = y.exampleSize
        for i in 0..<y.count where y.data[i] < 0 {
            // Broadcast alpha over shared axes (size 1) by index arithmetic.
            var rem = i % per
            var aIndex = 0
            var aStride = 1
            var coords = [Int](repeating: 0, count: dims.count)
            for d in stride(from: dims.count - 1, through: 0, by: -1) {
                coords[d] = rem % dims[d]
                rem /= dims[d]
            }
            for d in stride(from: dims.count - 1, through: 0, by: -1) {
                aIndex += (shape[d] == 1 ? 0 : coords[d]) * aStride
                aStride *= shape[d]
            }
            y.data[i] *= alpha[aIndex]
        }
        return y
    }

    func keepingInputChannels(_ keep: [Int], _ edit: inout LayerEdit) throws {
        let alpha = try edit.weight("alpha")
        if let last = alpha.shape.last, last > 1 { try edit.slice("alpha", axis: alpha.shape.count - 1, keep: keep) }
    }

    /// Keras passes the mask of the input on (the layer supports masking and does not change it).
    func outputMasks(_ masks: [StepMask?], inputShapes: [[Int]], outputs: [FloatArray]) -> [StepMask?] {
        [masks.first ?? nil]
    }
}

/// `Softmax(axis)`: over one axis, or jointly over several (Keras 3 takes a list:
/// `exp(x − logsumexp(x, axes))`). A `mask` tensor passed to the call (broadcast against the
/// input from its last axis) keeps masked positions out as each line does: Keras 3 replaces them
/// with −1e9 and zeroes them after (a fully masked row is zeros), tf.keras 2 adds −1e9 (uniform),
/// or replaces them under `robust_masking`.
struct Softmax: LayerKind {
    static let classNames = ["Softmax"]
    static let tensorParameters = ["inputs", "mask"]
    let axes: NormalizedAxes
    let robustMasking: Bool
    let call: CallSignature

    init(config: LayerConfig) throws {
        axes = try NormalizedAxes(config: config)
        robustMasking = config.bool("robust_masking", fallback: false)
        call = config.call ?? CallSignature(inputNames: ["inputs"], keywords: .object([]))
        guard call.index(of: "inputs") == 0 else { throw LayerConfigError("is called without its input") }
    }

    func outputShape(_ inputs: [Shape]) throws -> Shape {
        guard let x = inputs.first, inputs.count == call.inputNames.count else {
            throw LayerConfigError("expects its input and at most a mask")
        }
        _ = try axes.resolved(rank: x.count)
        if let m = call.index(of: "mask").map({ inputs[$0] }) {
            // Batch first, then broadcast from the last axis: each dimension 1 or the input's.
            func broadcasts(_ a: Int?, _ b: Int?) -> Bool { a == nil || b == nil || a == 1 || a == b }
            let fits = m.count <= x.count && zip(m.reversed(), x.reversed()).allSatisfy(broadcasts)
            guard fits else { throw LayerConfigError("its mask \(describe(m)) does not broadcast to \(describe(x))") }
        }
        return x
    }

    func channelFlow(input: Shape, output: Shape) -> ChannelFlow {
        let across = (try? axes.resolved(rank: output.count))?.contains(output.count - 1) ?? true
        return ChannelFlow.perChannel(elementwise: true).blockingInputs(across ? softmaxAcrossChannels : nil)
    }

    func compute(_ inputs: inout [FloatArray], _ context: RunContext) throws -> FloatArray {
        let mask = call.index(of: "mask").map { inputs[$0] }
        var y = takeFirst(&inputs)
        let resolved = try axes.resolved(rank: y.shape.count - 1).map { $0 + 1 }
        var keep: [Bool]?
        if let mask { keep = try broadcastKeep(mask, to: y.shape, context) }
        let rule: MaskedSoftmaxRule =
            context.kerasMajor >= 3
            ? .keras3SoftmaxLayer : (robustMasking ? .replace(fill: -1e9) : .largeNegative)
        let groups = AxisGroups(shape: y.shape, axes: Set(resolved))
        var row = [Float](repeating: 0, count: groups.groupSize)
        var rowKeep = keep.map { _ in [Bool](repeating: true, count: groups.groupSize) }
        for g in 0..<groups.groupCount {
            let base = groups.outerBase[g]
            for (j, o) in groups.innerOffset.enumerated() {
                row[j] = y.data[base + o]
                if let keep { rowKeep![j] = keep[base + o] }
            }
            row.withUnsafeMutableBufferPointer { AttentionKernels.maskedSoftmax($0, keep: rowKeep, rule: rule) }
            for (j, o) in groups.innerOffset.enumerated() { y.data[base + o] = row[j] }
        }
        return y
    }

    /// The mask's values (nonzero keeps) broadcast to `shape`, batch first, other axes from the end.
    func broadcastKeep(_ mask: FloatArray, to shape: [Int], _ context: RunContext) throws -> [Bool] {
        let m = mask.shape
        guard m.count <= shape.count, m.first == shape.first || m.count < shape.count else {
            throw InterpreterError.badInput("layer '\(context.path)': mask \(m) does not broadcast to \(shape)")
        }
        let aligned = [Int](repeating: 1, count: shape.count - m.count) + m
        guard zip(aligned, shape).allSatisfy({ $0 == 1 || $0 == $1 }) else {
            throw InterpreterError.badInput("layer '\(context.path)': mask \(m) does not broadcast to \(shape)")
        }
        return broadcastIndices(from: m, to: shape).map { mask.data[$0] != 0 }
    }

    /// Keras passes the mask of the input on (the layer supports masking and does not change it).
    func outputMasks(_ masks: [StepMask?], inputShapes: [[Int]], outputs: [FloatArray]) -> [StepMask?] {
        [masks.first ?? nil]
    }

    /// A Keras mask reaching the Softmax has the input's shape without its last axis, which Keras
    /// broadcasts from the last axis and refuses: no saved model runs it.
    var maskLimitation: String? { "Softmax reading a Keras mask" }
}
