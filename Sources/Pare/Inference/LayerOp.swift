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
        context = RunContext(path: path, weights: floats, weightShapes: shapes, outputShape: outputShape)
        activation = try ActivationFunction.parse(kind.activation, kerasMajor: kerasMajor)
        float16Compute = (try? LayerConfig(node.config, className: node.className))?.computesInFloat16 ?? false
        if let limitation = kind.interpreterLimitation {
            throw InterpreterError.unsupported("\(limitation) (layer '\(path)')")
        }
        try kind.checkRunnable(context)
    }

    func run(_ rawInputs: __owned [FloatArray]) throws -> FloatArray {
        var inputs = float16Compute ? rawInputs.map(Self.roundedToHalf) : rawInputs
        var y = try kind.compute(&inputs, context)
        if let bias = context.weights["bias"] { ConvolutionKernels.addBias(&y, bias) }
        if activation != .linear { activation.apply(&y.data, channels: y.shape.last ?? 1) }
        return float16Compute ? Self.roundedToHalf(y) : y
    }

    static func roundedToHalf(_ x: FloatArray) -> FloatArray {
        FloatArray(shape: x.shape, data: x.data.map { Float(Float16($0)) })
    }
}
