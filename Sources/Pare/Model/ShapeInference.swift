public struct UnsupportedLayerError: Error, CustomStringConvertible {
    public let layer: String
    public let className: String
    public let reason: String
    /// The class is one Pare does not know (a custom layer): the model may still be valid Keras.
    /// Otherwise the class is known and its config is not valid.
    public var unknownClass = false
    public var description: String { "layer '\(layer)' (\(className)): \(reason)" }

    init(layer: String, className: String, reason: String, unknownClass: Bool = false) {
        self.layer = layer
        self.className = className
        self.reason = reason
        self.unknownClass = unknownClass
    }

    init(layer: String, className: String, _ problem: LayerProblem) {
        self.init(layer: layer, className: className, reason: problem.reason, unknownClass: problem == .unknownClass)
    }
}

/// One call of one layer, with the shapes that flow through it.
public struct LayerCall: Sendable {
    /// `layer` or `nested_model/layer`.
    public var path: String
    public var className: String
    /// Which call of the layer this is (its node, counted from 0).
    public var node = 0
    public var inputs: [Shape]
    /// nil where it could not be inferred (an unknown layer upstream).
    public var output: Shape?
    /// Every output's shape: a recurrent layer returning its states has several.
    public var outputs: [Shape?] = []
    /// Multiply-accumulates of this call (Conv/Dense), nil where shapes are unknown.
    public var macs: Int?
    /// Working memory the interpreter needs for the call beyond its output, in elements per example.
    public var scratchElements = 0
}

/// Shapes and costs of every call in a model, with the layers Pare could not follow.
public struct GraphAnalysis: Sendable {
    public var calls: [LayerCall] = []
    public var problems: [UnsupportedLayerError] = []
    public var outputs: [Shape?] = []

    /// Layers already reported, so that a layer is reported once (a list scan was quadratic).
    private var problemLayers: Set<String> = []

    /// Calls by layer path, built once (looking each path up in `calls` made large models quadratic).
    private var callsByPath: [String: [LayerCall]] = [:]

    public func calls(of path: String) -> [LayerCall] { callsByPath[path] ?? [] }

    public static func run(_ architecture: Architecture) -> GraphAnalysis {
        var analysis = GraphAnalysis()
        // Every layer whose class is unknown or whose config is invalid, reached or not: a model
        // is judged on all of them at once.
        for entry in architecture.allLayers() where entry.layer.nested == nil {
            let (path, node) = (entry.path, entry.layer)
            if case .failure(let problem) = node.kind {
                analysis.problems.append(UnsupportedLayerError(layer: path, className: node.className, problem))
            }
        }
        analysis.outputs = analysis.evaluate(architecture, inputs: nil, prefix: "")
        analysis.callsByPath = Dictionary(grouping: analysis.calls, by: \.path)
        // A layer called on tensors of different shapes is valid Keras (a shared activation), but
        // Pare prepares each layer once, from its first call: such layers are named for those
        // that run or rewrite the model to refuse.
        for call in analysis.calls {
            guard let first = analysis.callsByPath[call.path]?.first, call.inputs != first.inputs else { continue }
            if analysis.unevenlySharedLayers[call.path] == nil {
                analysis.unevenlySharedLayers[call.path] =
                    "'\(call.path)' (\(call.className)) is called on inputs of different shapes "
                    + "(\(first.inputs.map(describe).joined(separator: ", ")) and "
                    + "\(call.inputs.map(describe).joined(separator: ", ")))"
            }
        }
        return analysis
    }

    /// Layers called on inputs of different shapes, each with a sentence saying so.
    public private(set) var unevenlySharedLayers: [String: String] = [:]

    /// Most layer calls a model may expand to: nested models are evaluated once per call site, so
    /// a chain of models each calling the next twice would grow exponentially.
    static let maxCalls = 1 << 20
    private var expandedCalls = 0
    /// How many outputs each evaluated call has, to name a reference past them.
    private struct CallKey: Hashable {
        let layer: String
        let node: Int
    }
    private var outputCounts: [CallKey: Int] = [:]
    private var callBudgetExceeded = false

    private mutating func evaluate(_ arch: Architecture, inputs given: [Shape?]?, prefix: String) -> [Shape?] {
        var values: [TensorRef: Shape?] = [:]
        for (i, ref) in arch.inputs.enumerated() {
            if let given, i < given.count {
                values[ref] = given[i]
            } else {
                values[ref] = arch.inputShapes[ref.layer]
            }
        }
        for layer in arch.layers where layer.isInput {
            let ref = TensorRef(layer: layer.name, node: 0, tensor: 0)
            if values[ref] == nil { values[ref] = arch.inputShapes[layer.name] }
        }
        for site in arch.callOrder {
            let (layer, callIndex) = (site.layer, site.call)
            expandedCalls += 1
            guard expandedCalls <= Self.maxCalls else {
                if !callBudgetExceeded {
                    callBudgetExceeded = true
                    problems.append(
                        UnsupportedLayerError(
                            layer: prefix + layer.name, className: layer.className,
                            reason:
                                "the graph expands to more than \(Self.maxCalls) layer calls (nested models called "
                                + "again and again): refused"))
                }
                return arch.outputs.map { _ in nil }
            }
            let refs = layer.calls[callIndex]
            let path = prefix + layer.name
            for ref in refs + (callIndex < layer.callMasks.count ? [layer.callMasks[callIndex]].compactMap { $0 } : [])
            {
                let key = CallKey(layer: prefix + ref.layer, node: ref.node)
                if let count = outputCounts[key], ref.tensor >= count, problemLayers.insert(path).inserted {
                    problems.append(
                        UnsupportedLayerError(
                            layer: path, className: layer.className,
                            reason: "takes output \(ref.tensor) of '\(ref.layer)', which has \(count)"))
                }
            }
            let inputShapes: [Shape?] = refs.map { values[$0] ?? nil }
            // Keras 3's mask= must cover the first input's positions: its shape without the last axis.
            if callIndex < layer.callMasks.count, let maskRef = layer.callMasks[callIndex],
                let maskShape = values[maskRef] ?? nil, let first = inputShapes.first ?? nil
            {
                let wanted = Array(first.dropLast())
                let fits =
                    maskShape.count == wanted.count
                    && zip(maskShape, wanted).allSatisfy { a, b in a == nil || b == nil || a == b }
                if !fits, problemLayers.insert(path).inserted {
                    problems.append(
                        UnsupportedLayerError(
                            layer: path, className: layer.className,
                            reason: "its mask \(maskRef) has shape \(describe(maskShape)); its input "
                                + "\(describe(first)) needs \(describe(wanted))"))
                }
            }
            var outputs: [Shape?]
            if let nested = layer.nested {
                outputs = evaluate(nested, inputs: inputShapes, prefix: path + "/")
            } else if inputShapes.contains(where: { $0 == nil }) {
                outputs = [nil]
            } else if let kind = layer.layerKind {
                do {
                    outputs = try Self.outputShapes(kind, inputs: inputShapes.map { $0! })
                } catch {
                    let reason = (error as? LayerConfigError)?.reason ?? "\(error)"
                    if problemLayers.insert(path).inserted {
                        problems.append(UnsupportedLayerError(layer: path, className: layer.className, reason: reason))
                    }
                    outputs = [nil]
                }
            } else {
                outputs = [nil]
            }
            let flat = inputShapes.compactMap { $0 }
            var call = LayerCall(
                path: path, className: layer.className, inputs: flat, output: outputs.first ?? nil,
                macs: layer.nested == nil && flat.count == inputShapes.count && outputs.first! != nil
                    ? Self.macs(layer.layerKind, inputs: flat, output: outputs.first!!) : nil)
            call.outputs = outputs
            call.node = callIndex
            if let kind = layer.layerKind, let output = call.output {
                call.scratchElements = kind.scratchElements(inputs: flat, output: output, macs: call.macs)
            }
            calls.append(call)
            for (t, shape) in outputs.enumerated() {
                values[TensorRef(layer: layer.name, node: callIndex, tensor: t)] = shape
            }
            if layer.nested == nil, outputs.count > 1 || outputs.first! != nil {
                outputCounts[CallKey(layer: prefix + layer.name, node: callIndex)] = outputs.count
            }
        }
        for ref in arch.outputs {
            let key = CallKey(layer: prefix + ref.layer, node: ref.node)
            if let count = outputCounts[key], ref.tensor >= count, problemLayers.insert(prefix + ref.layer).inserted {
                problems.append(
                    UnsupportedLayerError(
                        layer: prefix + ref.layer, className: arch.layer(ref.layer)?.className ?? "?",
                        reason: "the model's output \(ref) is past its \(count) output(s)"))
            }
        }
        return arch.outputs.map { values[$0] ?? nil }
    }

    /// The kind's output shapes, with every dimension in range.
    static func outputShapes(_ kind: any LayerKind, inputs: [Shape]) throws -> [Shape] {
        let shapes = try kind.outputShapes(inputs)
        for shape in shapes {
            if let bad = shape.compactMap({ $0 }).first(where: { !(0...LayerConfig.maxDimension).contains($0) }) {
                throw LayerConfigError("its output would have a dimension of \(bad), out of range")
            }
        }
        return shapes
    }

    static func macs(_ kind: (any LayerKind)?, inputs: [Shape], output: Shape) -> Int? {
        let known = inputs.compactMap(ShapeMath.known)
        guard let kind, !known.isEmpty, known.count == inputs.count, let o = ShapeMath.known(output) else { return nil }
        return kind.macs(inputs: known, output: o)
    }
}

extension GraphAnalysis {
    /// One error naming every layer Pare cannot follow (unknown classes and invalid configs alike),
    /// nil when there is none; `consequence` says what cannot be done.
    func unsupportedError(file: String, consequence: String?) -> PareError? {
        guard let first = problems.first else { return nil }
        let tail = consequence.map { "; " + $0 } ?? ""
        if problems.count == 1 {
            return PareError(file: file, object: "layer '\(first.layer)' (\(first.className))", first.reason + tail)
        }
        return PareError(
            file: file, object: "\(problems.count) layers", problems.map(\.description).joined(separator: "; ") + tail)
    }
}
