/// Layers folded into the convolution before them, so that their passes over its output happen while
/// the values are still in registers. After a convolution (with or without its own ReLU), in this
/// order and each optional: a BatchNormalization over the channels, an Add of one other tensor of the
/// same shape (a residual connection, the other tensor computed before the convolution runs), a plain
/// ReLU — each the only consumer of the one before, and at least one of them present.
///
/// The convolution's kernels apply each folded layer's arithmetic exactly as that layer would have
/// (`Epilogue`: the same multiply, add and comparison per value; a sum of two is the same either way
/// round), so fused and unfused runs give the same bits. Fusion happens only where nothing looks at
/// the layers in between: calls of the top-level graph, with no observer or profiling (`Interpreter.unobserved`).
extension Interpreter {
    struct Fusion {
        /// The BatchNormalization folded in and its channels, if any.
        var normalization: String?
        var channels = 0
        /// The Add folded in, the other tensor it adds, and whether that is the Add's first input.
        var addition: String?
        var residual: TensorRef?
        var residualFirst = false
        /// The ReLU folded in last, if any.
        var activation: String?
        /// Where the last folded layer's output goes.
        var output: TensorRef

        var folded: [String] { [normalization, addition, activation].compactMap { $0 } }
    }

    /// A Concatenate on the channels of images whose only consumer is a MaxPooling2D: the parts are pooled
    /// straight into the pooling's result (`Pooling.maxPooled(concatenating:)`), so the concatenated
    /// tensor, often a small network's largest activation, is never written. Each channel pools on its
    /// own, so the bits are those of the two layers.
    struct PooledConcatenation {
        var pooling: String
        /// The pooling's output.
        var output: TensorRef
    }

    /// Who consumes each tensor of `arch`'s top-level graph.
    struct Consumers {
        private var consumers: [TensorRef: [LayerNode]] = [:]
        private let outputs: Set<TensorRef>
        private let ops: [String: LayerOp]

        init(_ arch: Architecture, ops: [String: LayerOp]) {
            for layer in arch.layers {
                for call in layer.calls.indices {
                    for ref in layer.dependencies(ofCall: call) { consumers[ref, default: []].append(layer) }
                }
            }
            outputs = Set(arch.outputs)
            self.ops = ops
        }

        /// The layer called once, on `ref` (and `others` more inputs), that is `ref`'s only consumer.
        func sole(of ref: TensorRef, others: Int = 0) -> (LayerNode, LayerOp)? {
            guard !outputs.contains(ref), let list = consumers[ref], list.count == 1, let layer = list.first,
                layer.nested == nil, layer.calls.count == 1, layer.calls[0].count == 1 + others,
                layer.calls[0].contains(ref), layer.callMasks.allSatisfy({ $0 == nil }), let op = ops[layer.name]
            else { return nil }
            return (layer, op)
        }
    }

    /// The Concatenate → MaxPooling2D pairs of `arch`'s top-level calls, by Concatenate name.
    static func pooledConcatenations(_ arch: Architecture, ops: [String: LayerOp]) -> [String: PooledConcatenation] {
        let consumers = Consumers(arch, ops: ops)
        var pairs: [String: PooledConcatenation] = [:]
        for layer in arch.layers where layer.nested == nil && layer.calls.count == 1 {
            guard let op = ops[layer.name], op.isPlain, let concatenate = op.kind as? Concatenate,
                op.outputShape.count == 3, concatenate.axisIndex(rank: 3) == 2,
                layer.callMasks.allSatisfy({ $0 == nil }),
                let (pooling, poolingOp) = consumers.sole(of: TensorRef(layer: layer.name, node: 0, tensor: 0)),
                poolingOp.isPlain, let kind = poolingOp.kind as? Pooling, kind.isMax, kind.layout.rank == 2
            else { continue }
            pairs[layer.name] = PooledConcatenation(
                pooling: pooling.name, output: TensorRef(layer: pooling.name, node: 0, tensor: 0))
        }
        return pairs
    }

    /// The fusions of `arch`'s top-level calls (run in `order`), by convolution name.
    static func fusions(_ arch: Architecture, ops: [String: LayerOp], order: [CallSite]) -> [String: Fusion] {
        let consumers = Consumers(arch, ops: ops)
        // Where each call runs: a shared layer's calls run at different places.
        var position: [TensorRef: Int] = [:]
        for (i, site) in order.enumerated() {
            position[TensorRef(layer: site.layer.name, node: site.call, tensor: 0)] = i
        }
        func output(_ layer: LayerNode) -> TensorRef { TensorRef(layer: layer.name, node: 0, tensor: 0) }

        var fusions: [String: Fusion] = [:]
        for layer in arch.layers where layer.nested == nil && layer.calls.count == 1 {
            guard let conv = ops[layer.name], conv.takesEpilogue, let at = position[output(layer)],
                let shape = conv.outputShape.allKnown
            else { continue }
            var fusion = Fusion(output: output(layer))
            if let (norm, op) = consumers.sole(of: fusion.output), let channels = op.channelsLastNormalization {
                (fusion.normalization, fusion.channels, fusion.output) = (norm.name, channels, output(norm))
            }
            if let (add, op) = consumers.sole(of: fusion.output, others: 1), op.isPlainAddition,
                let other = add.calls[0].first(where: { $0 != fusion.output }),
                let producer = ops[other.layer],
                (position[TensorRef(layer: other.layer, node: other.node, tensor: 0)] ?? .max) < at,
                producer.outputShape.allKnown == shape, op.outputShape.allKnown == shape
            {
                (fusion.addition, fusion.residual, fusion.output) = (add.name, other, output(add))
                fusion.residualFirst = add.calls[0].first == other
            }
            if let (relu, op) = consumers.sole(of: fusion.output), op.isPlainRelu {
                (fusion.activation, fusion.output) = (relu.name, output(relu))
            }
            if !fusion.folded.isEmpty { fusions[layer.name] = fusion }
        }
        return fusions
    }

    /// What the layers of `fusion` apply, with their weights as they are now and `residual` the value
    /// of the other tensor its Add takes (of the convolution output's shape `outputShape`).
    func epilogue(of fusion: Fusion, residual: FloatArray?, outputShape: [Int]) throws -> Epilogue {
        var epilogue = Epilogue(rectify: fusion.activation != nil)
        if let name = fusion.normalization {
            guard let norm = ops[name], let kind = norm.kind as? BatchNormalization else {
                throw InterpreterError.unsupported("layer '\(name)' is not a BatchNormalization")
            }
            epilogue.affine = try kind.affine(try norm.context(), channels: fusion.channels)
        }
        if let residual {
            guard residual.shape == outputShape else {
                throw InterpreterError.badInput(
                    "layer '\(fusion.addition ?? "?")' adds shape \(residual.shape) to \(outputShape)")
            }
            epilogue.residual = residual.data
            epilogue.residualFirst = fusion.residualFirst
        }
        return epilogue
    }
}

extension Shape {
    /// The dimensions when every one is known.
    var allKnown: [Int]? { contains(nil) ? nil : compactMap { $0 } }
}

extension LayerOp {
    /// Whether this call can take fused layers' epilogue: a kind that applies it, computing in float32
    /// channels-last, with no activation of its own but ReLU.
    var takesEpilogue: Bool {
        kind.appliesEpilogue && (activation == .linear || activation == .relu) && !float16Compute && !channelsFirst
    }

    /// For a BatchNormalization over the last axis, computing in float32: its channels (nil otherwise).
    var channelsLastNormalization: Int? {
        guard let kind = kind as? BatchNormalization, !float16Compute, !channelsFirst, activation == .linear,
            let channels = outputShape.last ?? nil, kind.axisIndex(rank: outputShape.count) == outputShape.count - 1
        else { return nil }
        return channels
    }

    /// Whether this call computes in float32, channels-last, with no activation of its own.
    var isPlain: Bool { activation == .linear && !float16Compute && !channelsFirst }

    /// Whether this call is an Add of two tensors in float32 and nothing else.
    var isPlainAddition: Bool {
        guard let merge = kind as? Merge else { return false }
        return merge.operation == .add && activation == .linear && !float16Compute && !channelsFirst
    }

    /// Whether this call is `x < 0 ? 0 : x` and nothing else, in float32.
    var isPlainRelu: Bool {
        guard !float16Compute, !channelsFirst else { return false }
        if let relu = kind as? ReLU {
            return activation == .linear && relu.maxValue == nil && relu.negativeSlope == 0 && relu.threshold == 0
        }
        if let layer = kind as? ActivationLayer { return !layer.isGLU && activation == .relu }
        return false
    }
}
