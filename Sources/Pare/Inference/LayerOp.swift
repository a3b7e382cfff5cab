import Foundation

/// One layer made ready to run: its kind (config parsed once) and its weights converted to
/// float32 once. The kind computes; this adds what every layer shares: float16 rounding for
/// float16 policies, the bias, and the `activation` argument.
struct LayerOp {
    let path: String
    let kind: any LayerKind
    let context: RunContext
    let activation: ActivationFunction
    /// Layers whose dtype policy computes in float16 round their inputs and outputs to it, as Keras does.
    let float16Compute: Bool

    init(path: String, node: LayerNode, weights: [String: Weight], outputShape: Shape, kerasMajor: Int) throws {
        self.path = path
        switch node.kind {
        case .success(let kind): self.kind = kind
        case .failure(let problem):
            throw InterpreterError.unsupported("layer '\(path)' (\(node.className)): \(problem.reason)")
        }
        var floats: [String: [Float]] = [:]
        var shapes: [String: [Int]] = [:]
        for (role, weight) in weights {
            floats[role] = try weight.tensor.floats()
            shapes[role] = weight.tensor.shape
        }
        context = RunContext(
            path: path, weights: floats, weightShapes: shapes, outputShape: outputShape, kerasMajor: kerasMajor)
        activation = try ActivationFunction.parse(kind.activation, kerasMajor: kerasMajor)
        float16Compute = (try? LayerConfig(node.config, className: node.className))?.computesInFloat16 ?? false
        if let limitation = kind.interpreterLimitation {
            throw InterpreterError.unsupported("\(limitation) (layer '\(path)')")
        }
        try kind.checkRunnable(context)
    }

    /// One call: every output, with the masks Keras would attach to them.
    func run(_ rawInputs: __owned [FloatArray], masks: [StepMask?]) throws -> LayerResult {
        if masks.contains(where: { $0 != nil }), let limitation = kind.maskLimitation {
            throw InterpreterError.unsupported("\(limitation) (layer '\(path)' receives a mask)")
        }
        var inputs = float16Compute ? rawInputs.map(Self.roundedToHalf) : rawInputs
        var result = try kind.computeOutputs(&inputs, masks: masks, context)
        if !result.values.isEmpty {
            if !kind.appliesOwnBias, let bias = context.weights["bias"] {
                ConvolutionKernels.addBias(&result.values[0], bias)
            }
            if activation != .linear {
                activation.apply(&result.values[0].data, channels: result.values[0].shape.last ?? 1)
            }
        }
        if float16Compute { result.values = result.values.map(Self.roundedToHalf) }
        // What a kind computed must have the shape shape inference gave it (known dimensions), and
        // every output the inputs' batch: consumers index several tensors by one example number.
        if let batch = rawInputs.first?.batch, let wrong = result.values.first(where: { $0.batch != batch }) {
            throw InterpreterError.badInput(
                "layer '\(path)' computed \(wrong.batch) examples from \(batch) (shape \(wrong.shape))")
        }
        if let first = result.values.first {
            let expected = context.outputShape
            let fits =
                first.shape.count == expected.count + 1
                && zip(first.shape.dropFirst(), expected).allSatisfy { have, want in want == nil || want == have }
            guard fits else {
                throw InterpreterError.badInput(
                    "layer '\(path)' computed shape \(first.shape), its config gives \(describe(expected))")
            }
        }
        for (value, mask) in zip(result.values, result.masks) {
            if let mask, mask.shape != Array(value.shape.dropLast()) {
                throw InterpreterError.unsupported(
                    "a mask of shape \(mask.shape) on an output of shape \(value.shape) (layer '\(path)')")
            }
        }
        return result
    }

    static func roundedToHalf(_ x: FloatArray) -> FloatArray {
        FloatArray(shape: x.shape, data: x.data.map { Float(Float16($0)) })
    }
}
