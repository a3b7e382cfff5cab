/// One call of one layer, with the shapes that flow through it.
public struct LayerCall: Sendable {
    /// `layer` or `nested_model/layer`.
    public var path: String
    public var className: String
    public var inputs: [Shape]
    /// nil where it could not be inferred (an unknown layer upstream).
    public var output: Shape?
    /// Multiply-accumulates of this call (Conv/Dense), nil where shapes are unknown.
    public var macs: Int?
}

/// Shapes and costs of every call in a model, with the layers Pare could not follow.
public struct GraphAnalysis: Sendable {
    public var calls: [LayerCall] = []
    public var problems: [UnsupportedLayerError] = []
    public var outputs: [Shape?] = []

    /// Calls by layer path, built once (looking each path up in `calls` made large models quadratic).
    private var callsByPath: [String: [LayerCall]] = [:]

    public func calls(of path: String) -> [LayerCall] { callsByPath[path] ?? [] }

    public static func run(_ architecture: Architecture) -> GraphAnalysis {
        var analysis = GraphAnalysis()
        analysis.outputs = analysis.evaluate(architecture, inputs: nil, prefix: "")
        analysis.callsByPath = Dictionary(grouping: analysis.calls, by: \.path)
        return analysis
    }

    private mutating func evaluate(_ arch: Architecture, inputs given: [Shape?]?, prefix: String) -> [Shape?] {
        var values: [TensorRef: Shape?] = [:]
        for (i, ref) in arch.inputs.enumerated() {
            if let given, i < given.count {
                values[ref] = given[i]
            } else {
                values[ref] = arch.inputShapes[ref.layer]
            }
        }
        for layer in arch.layers where layer.className == "InputLayer" {
            let ref = TensorRef(layer: layer.name, node: 0, tensor: 0)
            if values[ref] == nil { values[ref] = arch.inputShapes[layer.name] }
        }
        for (layer, callIndex) in arch.callOrder {
            let refs = layer.calls[callIndex]
            let inputShapes: [Shape?] = refs.map { values[$0] ?? nil }
            let path = prefix + layer.name
            var outputs: [Shape?]
            if let nested = layer.nested {
                outputs = evaluate(nested, inputs: inputShapes, prefix: path + "/")
            } else if inputShapes.contains(where: { $0 == nil }) {
                outputs = [nil]
            } else {
                do {
                    outputs = [try LayerKinds.outputShape(layer, inputs: inputShapes.map { $0! }, path: path)]
                } catch let error as UnsupportedLayerError {
                    if !problems.contains(where: { $0.layer == error.layer }) { problems.append(error) }
                    outputs = [nil]
                } catch {
                    outputs = [nil]
                }
            }
            let flat = inputShapes.compactMap { $0 }
            calls.append(
                LayerCall(
                    path: path, className: layer.className, inputs: flat, output: outputs.first ?? nil,
                    macs: layer.nested == nil && flat.count == inputShapes.count && outputs.first! != nil
                        ? LayerKinds.macs(layer, input: flat.first ?? [], output: outputs.first!!) : nil))
            for (t, shape) in outputs.enumerated() {
                values[TensorRef(layer: layer.name, node: callIndex, tensor: t)] = shape
            }
        }
        return arch.outputs.map { values[$0] ?? nil }
    }
}
