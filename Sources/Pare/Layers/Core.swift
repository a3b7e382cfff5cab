/// Core layers: model inputs, layers that do nothing at inference, Rescaling and Masking.

/// `InputLayer`: declares a model input's shape. It is never called; a nested model's input
/// layer declares its width, which follows the channels that flow in.
struct InputLayerKind: LayerKind {
    static let classNames = ["InputLayer"]
    init() {}
    init(config: LayerConfig) throws {}

    func outputShape(_ inputs: [Shape]) throws -> Shape { try singleInput(inputs) }

    func channelFlow(input: Shape, output: Shape) -> ChannelFlow {
        .perChannel(indexed: true, elementwise: true)
    }

    func compute(_ inputs: inout [FloatArray], _ context: RunContext) throws -> FloatArray {
        takeFirst(&inputs)
    }

    /// The declared width, and a Sequential's build shape, narrow with the channels.
    func keepingInputChannels(_ keep: [Int], _ edit: inout LayerEdit) throws {
        for key in ["batch_shape", "batch_input_shape", "build_input_shape"] {
            if var shape = edit.config[key]?.arrayValue, !shape.isEmpty {
                shape[shape.count - 1] = .int(keep.count)
                edit.config.set(key, .array(shape))
            }
        }
    }
}

/// Layers that change nothing at inference: dropout and noise layers act only in training,
/// regularization only adds a loss, `Identity` is the identity.
struct InferenceNoOp: LayerKind {
    static let classNames = [
        "Dropout", "SpatialDropout1D", "SpatialDropout2D", "SpatialDropout3D", "GaussianNoise", "GaussianDropout",
        "AlphaDropout", "ActivityRegularization", "Identity",
    ]
    init(config: LayerConfig) throws {}

    func outputShape(_ inputs: [Shape]) throws -> Shape { try singleInput(inputs) }

    func channelFlow(input: Shape, output: Shape) -> ChannelFlow { .perChannel(elementwise: true) }

    func compute(_ inputs: inout [FloatArray], _ context: RunContext) throws -> FloatArray {
        takeFirst(&inputs)
    }

    /// Keras passes the mask of the input on (the layer supports masking and does not change it).
    func outputMasks(_ masks: [StepMask?], inputShapes: [[Int]], outputs: [FloatArray]) -> [StepMask?] {
        [masks.first ?? nil]
    }
}

/// `Rescaling(scale, offset)`: `x * scale + offset`, each a number or one value per channel.
struct Rescaling: LayerKind {
    static let classNames = ["Rescaling"]
    let scale: [Float]
    let offset: [Float]

    init(config: LayerConfig) throws {
        func values(_ key: String, _ fallback: Float) throws -> [Float] {
            guard let value = config[key], !value.isNull else { return [fallback] }
            if let list = value.arrayValue {
                let numbers = list.compactMap { $0.doubleValue }.filter(\.isFinite).map(Float.init)
                guard numbers.count == list.count, !numbers.isEmpty else {
                    throw LayerConfigError("\(key) must be a number or a list of numbers")
                }
                return numbers
            }
            guard let v = value.doubleValue, v.isFinite else { throw LayerConfigError("\(key) is not a number") }
            return [Float(v)]
        }
        scale = try values("scale", 1)
        offset = try values("offset", 0)
    }

    func outputShape(_ inputs: [Shape]) throws -> Shape { try singleInput(inputs) }

    func channelFlow(input: Shape, output: Shape) -> ChannelFlow {
        .perChannel(indexed: scale.count > 1 || offset.count > 1, elementwise: true)
    }

    func checkRunnable(_ context: RunContext) throws {
        let channels = context.outputShape.last.flatMap { $0 }
        for (key, list) in [("scale", scale), ("offset", offset)] where list.count != 1 && list.count != channels {
            throw InterpreterError.badInput(
                "layer '\(context.path)': \(key) lists \(list.count) values for "
                    + "\(channels.map(String.init) ?? "?") channels"
            )
        }
    }

    func compute(_ inputs: inout [FloatArray], _ context: RunContext) throws -> FloatArray {
        var y = takeFirst(&inputs)
        let c = y.shape.last ?? 1
        for i in 0..<y.count {
            y.data[i] = y.data[i] * scale[scale.count == 1 ? 0 : i % c] + offset[offset.count == 1 ? 0 : i % c]
        }
        return y
    }

    func keepingInputChannels(_ keep: [Int], _ edit: inout LayerEdit) throws {
        for key in ["scale", "offset"] {
            if let list = edit.config[key]?.arrayValue, list.count > 1 {
                edit.config.set(key, .array(keep.map { list[$0] }))
            }
        }
    }

    /// Keras 3's Rescaling passes a mask on, tf.keras 2's drops it: which one applies is not
    /// known to the layer, so Pare refuses rather than guess.
    var maskLimitation: String? { "Rescaling of a masked value (Keras 2 and 3 treat its mask differently)" }
}

/// `Masking(mask_value)`: a step whose features all equal `mask_value` becomes zeros
/// (`x * any(x != mask_value, axis=-1)`, the same in tf.keras 2 and Keras 3).
struct Masking: LayerKind {
    static let classNames = ["Masking"]
    let maskValue: Float

    init(config: LayerConfig) throws {
        maskValue = Float(try config.number("mask_value", fallback: 0))
    }

    func outputShape(_ inputs: [Shape]) throws -> Shape { try singleInput(inputs) }

    func channelFlow(input: Shape, output: Shape) -> ChannelFlow {
        ChannelFlow.perChannel().blockingInputs("Masking reads every channel to decide which steps it masks")
    }

    func compute(_ inputs: inout [FloatArray], _ context: RunContext) throws -> FloatArray {
        var y = takeFirst(&inputs)
        let c = max(1, y.shape.last ?? 1)
        for start in stride(from: 0, to: y.count, by: c) {
            let end = min(start + c, y.count)
            if !(start..<end).contains(where: { y.data[$0] != maskValue }) {
                for i in start..<end { y.data[i] = 0 }
            }
        }
        return y
    }

    /// The mask Keras attaches: a step is kept where any feature differs from `mask_value`.
    func computeOutputs(_ inputs: inout [FloatArray], masks: [StepMask?], _ context: RunContext) throws
        -> LayerResult
    {
        let x = inputs[0]
        let c = max(1, x.shape.last ?? 1)
        var keep: [Bool] = []
        keep.reserveCapacity(x.count / c)
        for start in stride(from: 0, to: x.count, by: c) {
            keep.append((start..<min(start + c, x.count)).contains { x.data[$0] != maskValue })
        }
        let y = try compute(&inputs, context)
        return LayerResult(values: [y], masks: [StepMask(shape: Array(x.shape.dropLast()), keep: keep)])
    }
}

/// The first input, moved out of `inputs` so that it can be changed in place when nothing else holds it.
func takeFirst(_ inputs: inout [FloatArray]) -> FloatArray {
    var taken = FloatArray(shape: [0], data: [])
    swap(&taken, &inputs[0])
    return taken
}
