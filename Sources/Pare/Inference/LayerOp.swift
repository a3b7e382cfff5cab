import Foundation

/// One layer made ready to run: its kind (config parsed once) and its weights, converted to float32
/// once when the interpreter keeps them resident, or at each call and released after it when it
/// streams them (a model larger than memory runs one layer's weights at a time). The kind computes;
/// this adds what every layer shares: float16 rounding for float16 policies, the bias, and the
/// `activation` argument.
struct LayerOp {
    let path: String
    let kind: any LayerKind
    /// Shapes and everything else a call needs but the weights' values.
    private let shapeContext: RunContext
    private let weights: [String: Tensor]
    /// The weights as float32 when resident.
    private let resident: RunContext?
    let activation: ActivationFunction
    /// Layers whose dtype policy computes in float16 round their inputs and outputs to it, as Keras does.
    let float16Compute: Bool

    /// For a layer working channels-first (Keras 1's 'th' models): it runs as its channels-last twin
    /// (`kind`), its inputs moved to channels-last before and its outputs back after.
    let channelsFirst: Bool
    /// The output's shape (without the batch axis) as shape inference gives it.
    let outputShape: Shape

    init(
        path: String, node: LayerNode, weights: [String: Weight], outputShape: Shape, kerasMajor: Int,
        residentWeights: Bool
    ) throws {
        self.path = path
        switch node.kind {
        case .success(let kind):
            if let twin = Self.channelsLastTwin(kind, node: node) {
                self.kind = twin
                channelsFirst = true
            } else {
                self.kind = kind
                channelsFirst = false
            }
        case .failure(let problem):
            throw InterpreterError.unsupported("layer '\(path)' (\(node.className)): \(problem.reason)")
        }
        self.outputShape = outputShape
        // The twin of a channels-first layer computes channels-last.
        let runShape =
            channelsFirst && outputShape.count >= 2 ? Array(outputShape.dropFirst()) + [outputShape[0]] : outputShape
        self.weights = weights.mapValues(\.tensor)
        shapeContext = RunContext(
            path: path, weights: [:], weightShapes: weights.mapValues(\.tensor.shape), outputShape: runShape,
            kerasMajor: kerasMajor)
        activation = try ActivationFunction.parse(kind.activation, kerasMajor: kerasMajor)
        float16Compute = (try? LayerConfig(node.config, className: node.className))?.computesInFloat16 ?? false
        if let limitation = kind.interpreterLimitation {
            throw InterpreterError.unsupported("\(limitation) (layer '\(path)')")
        }
        try kind.checkRunnable(shapeContext)
        resident = residentWeights ? try Self.loading(self.weights, into: shapeContext) : nil
    }

    /// The values of all of this layer's weights.
    var weightValues: Int { weights.values.reduce(0) { $0 + $1.count } }

    /// The context of a call: the resident weights, or this layer's weights read and converted now.
    func context() throws -> RunContext {
        if let resident { return resident }
        return try Self.loading(weights, into: shapeContext)
    }

    private static func loading(_ weights: [String: Tensor], into context: RunContext) throws -> RunContext {
        var loaded = context
        for (role, tensor) in weights { loaded.weights[role] = try tensor.floats() }
        return loaded
    }

    /// The same layer working channels-last, when `kind` works channels-first and only that keeps
    /// the interpreter from running it (the weights' layout does not depend on the data format).
    static func channelsLastTwin(_ kind: any LayerKind, node: LayerNode) -> (any LayerKind)? {
        guard kind.interpreterLimitation != nil, node.config["data_format"]?.stringValue == "channels_first" else {
            return nil
        }
        var config = node.config
        config.set("data_format", .string("channels_last"))
        guard case .success(let twin) = LayerRegistry.parse(className: node.className, config: config),
            twin.interpreterLimitation == nil
        else { return nil }
        return twin
    }

    /// (N, C, s…) ↔ (N, s…, C): the non-batch axes moved so the channels go last (or back first).
    static func movingChannels(_ x: FloatArray, toLast: Bool) -> FloatArray {
        let rank = x.shape.count - 1
        guard rank >= 2 else { return x }
        let order = toLast ? Array(1..<rank) + [0] : [rank - 1] + Array(0..<(rank - 1))
        return ShapeKernels.permute(x, order: order)
    }

    /// One call with the weights `context()` gave: every output, with the masks Keras would attach to them.
    /// `fused`: what the layers the interpreter fused into this call (a kind that `appliesEpilogue`)
    /// compute after it.
    func run(
        _ rawInputs: consuming [FloatArray], masks: [StepMask?], context: RunContext, fused: Epilogue = Epilogue()
    ) throws -> LayerResult {
        if masks.contains(where: { $0 != nil }), let limitation = kind.maskLimitation {
            throw InterpreterError.unsupported("\(limitation) (layer '\(path)' receives a mask)")
        }
        if channelsFirst, masks.contains(where: { $0 != nil }) {
            throw InterpreterError.unsupported("a mask on a channels-first layer (layer '\(path)')")
        }
        let batch = rawInputs.first?.batch
        // Consumed, not copied: a layer working in place then owns its input's buffer.
        var inputs = float16Compute ? rawInputs.map(Self.roundedToHalf) : consume rawInputs
        let inputRanks = inputs.map(\.shape.count)
        if channelsFirst { inputs = inputs.map { Self.movingChannels($0, toLast: true) } }
        var callContext = context
        callContext.epilogue = fused
        // The kind rectifies as it stores, before what was fused after it: no pass of its own.
        let rectifiesItself = activation == .relu && kind.appliesEpilogue
        if rectifiesItself { callContext.epilogue.rectifyFirst = true }
        var result = try kind.computeOutputs(&inputs, masks: masks, callContext)
        if !result.values.isEmpty {
            if !kind.appliesOwnBias, let bias = context.weights["bias"] {
                ConvolutionKernels.addBias(&result.values[0], bias)
            }
            if activation != .linear && !rectifiesItself {
                activation.apply(&result.values[0].data, channels: result.values[0].shape.last ?? 1)
            }
        }
        if float16Compute { result.values = result.values.map(Self.roundedToHalf) }
        if channelsFirst {
            // Outputs of the inputs' rank hold channels (a pooled vector does not).
            result.values = result.values.map {
                inputRanks.contains($0.shape.count) ? Self.movingChannels($0, toLast: false) : $0
            }
        }
        // What a kind computed must have the shape shape inference gave it (known dimensions), and
        // every output the inputs' batch: consumers index several tensors by one example number.
        if let batch, let wrong = result.values.first(where: { $0.batch != batch }) {
            throw InterpreterError.badInput(
                "layer '\(path)' computed \(wrong.batch) examples from \(batch) (shape \(wrong.shape))")
        }
        if let first = result.values.first, !hasOutputShape(first) {
            throw InterpreterError.badInput(
                "layer '\(path)' computed shape \(first.shape), its config gives \(describe(outputShape))")
        }
        for (value, mask) in zip(result.values, result.masks) {
            if let mask, mask.shape != Array(value.shape.dropLast()) {
                throw InterpreterError.unsupported(
                    "a mask of shape \(mask.shape) on an output of shape \(value.shape) (layer '\(path)')")
            }
        }
        return result
    }

    /// Whether `value` has the shape shape inference gave this layer's output (its known dimensions).
    func hasOutputShape(_ value: FloatArray) -> Bool {
        value.shape.count == outputShape.count + 1
            && zip(value.shape.dropFirst(), outputShape).allSatisfy { have, want in want == nil || want == have }
    }

    static func roundedToHalf(_ x: FloatArray) -> FloatArray {
        FloatArray(shape: x.shape, data: x.data.map { Float(Float16($0)) })
    }
}
