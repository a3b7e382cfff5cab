/// Layers folded into the convolution before them, so that their pass over its output happens while the
/// values are still in registers: a BatchNormalization over the channels that is the convolution's only
/// consumer, and a plain ReLU that is the BatchNormalization's only consumer (the stem → BN → ReLU
/// pattern of residual networks).
///
/// The convolution's kernels apply the BatchNormalization's `x · scale + shift` and ReLU exactly as those
/// layers would have (`Epilogue`: the same multiply, add and comparison per value), so fused and unfused
/// runs give the same bits. Fusion happens only where nothing looks at the layers in between: calls of the
/// top-level graph, with no observer or profiling (`Interpreter.fusing`).
extension Interpreter {
    struct Fusion {
        /// The BatchNormalization folded in, and its channels.
        var normalization: String
        var channels: Int
        /// The ReLU folded in after it, if any.
        var activation: String?
        /// Where the last folded layer's output goes.
        var output: TensorRef
    }

    /// The fusions of `arch`'s top-level calls, by convolution name.
    static func fusions(_ arch: Architecture, ops: [String: LayerOp]) -> [String: Fusion] {
        var consumers: [TensorRef: [LayerNode]] = [:]
        for layer in arch.layers {
            for call in layer.calls.indices {
                for ref in layer.dependencies(ofCall: call) { consumers[ref, default: []].append(layer) }
            }
        }
        let outputs = Set(arch.outputs)
        /// The layer that takes `ref` as its only input and is its only consumer, called once.
        func soleConsumer(_ ref: TensorRef) -> (LayerNode, LayerOp)? {
            guard !outputs.contains(ref), let list = consumers[ref], list.count == 1, let layer = list.first,
                layer.nested == nil, layer.calls == [[ref]], layer.callMasks.allSatisfy({ $0 == nil }),
                let op = ops[layer.name]
            else { return nil }
            return (layer, op)
        }
        var fusions: [String: Fusion] = [:]
        for layer in arch.layers where layer.nested == nil && layer.calls.count == 1 {
            guard let conv = ops[layer.name], conv.takesEpilogue,
                let (normLayer, norm) = soleConsumer(TensorRef(layer: layer.name, node: 0, tensor: 0)),
                let channels = norm.channelsLastNormalization
            else { continue }
            var fusion = Fusion(
                normalization: normLayer.name, channels: channels, activation: nil,
                output: TensorRef(layer: normLayer.name, node: 0, tensor: 0))
            if let (reluLayer, relu) = soleConsumer(fusion.output), relu.isPlainRelu {
                fusion.activation = reluLayer.name
                fusion.output = TensorRef(layer: reluLayer.name, node: 0, tensor: 0)
            }
            fusions[layer.name] = fusion
        }
        return fusions
    }

    /// What the layers of `fusion` apply, with their weights as they are now.
    func epilogue(of fusion: Fusion) throws -> Epilogue {
        guard let norm = ops[fusion.normalization], let kind = norm.kind as? BatchNormalization else {
            throw InterpreterError.unsupported("layer '\(fusion.normalization)' is not a BatchNormalization")
        }
        let affine = try kind.affine(try norm.context(), channels: fusion.channels)
        return Epilogue(bias: nil, affine: affine, rectify: fusion.activation != nil)
    }
}

extension LayerOp {
    /// Whether this call can take fused layers' epilogue: a kind that applies it, computing in float32
    /// channels-last, with no activation of its own.
    var takesEpilogue: Bool {
        kind.appliesEpilogue && activation == .linear && !float16Compute && !channelsFirst
    }

    /// For a BatchNormalization over the last axis, computing in float32: its channels (nil otherwise).
    var channelsLastNormalization: Int? {
        guard let kind = kind as? BatchNormalization, !float16Compute, !channelsFirst, activation == .linear,
            let channels = outputShape.last ?? nil, kind.axisIndex(rank: outputShape.count) == outputShape.count - 1
        else { return nil }
        return channels
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
