/// `Dense(units)`: kernel `(in, units)` over the last axis of an input of any rank, bias `(units)`.
struct Dense: LayerKind {
    static let classNames = ["Dense"]
    static let countsMACs = true
    let units: Int
    let useBias: Bool
    let activation: JSON?
    let activationName: String?

    init(config: LayerConfig) throws {
        units = try config.positive("units", what: "units missing or not positive")
        useBias = config.bool("use_bias", fallback: true)
        activation = config.activation
        activationName = config.activationName
    }

    func outputShape(_ inputs: [Shape]) throws -> Shape {
        guard inputs.count == 1, !inputs[0].isEmpty else { throw LayerConfigError("expects 1 input of rank ≥ 2") }
        return Array(inputs[0].dropLast()) + [units]
    }

    func weights(input: Shape) -> [WeightSpec] {
        [WeightSpec("kernel", [input.last ?? nil, units], outputAxes: 1..<2)]
            + (useBias ? [WeightSpec("bias", [units])] : [])
    }

    func preActivationWeights(_ key: String) -> [WeightSlice]? {
        key == "activation" ? [WeightSlice("kernel")] + (useBias ? [WeightSlice("bias")] : []) : nil
    }

    func macs(input: [Int], output: [Int]) -> Int? {
        guard let last = output.last else { return nil }
        return ShapeMath.product(input + [last])
    }

    func channelFlow(input: Shape, output: Shape) -> ChannelFlow {
        ChannelFlow.producer(activation: activationName)
    }

    func compute(_ inputs: inout [FloatArray], _ context: RunContext) throws -> FloatArray {
        ConvolutionKernels.dense(inputs[0], kernel: try context.weight("kernel"), units: units)
    }

    func keepingInputChannels(_ keep: [Int], _ edit: inout LayerEdit) throws {
        try edit.slice("kernel", axis: 0, keep: keep)
    }

    func keepingOutputChannels(_ keep: [Int], _ edit: inout LayerEdit) throws {
        try edit.keepOutputs(keep, kernel: "kernel", axis: 1, count: "units")
    }

    func foldedConstants(_ constants: [ConstantInput], _ weights: [String: Tensor]) throws -> FoldedBias? {
        guard let kernel = weights["kernel"], kernel.shape.count == 2 else { return nil }
        return try Self.folded(constants, kernel: kernel)
    }

    /// What constants at input channels add to the outputs of an `(in, out)` kernel.
    static func folded(_ constants: [ConstantInput], kernel: Tensor) throws -> FoldedBias {
        let w = try kernel.floats()
        let units = kernel.shape[1]
        var delta = [Float](repeating: 0, count: units)
        for constant in constants {
            for o in 0..<units { delta[o] += constant.value * w[constant.position * units + o] }
        }
        return FoldedBias(delta: delta, kernelRole: "kernel", approximation: nil)
    }

    /// Keras passes the mask of the input on (the layer supports masking and does not change it).
    func outputMasks(_ masks: [StepMask?], inputShapes: [[Int]], outputs: [FloatArray]) -> [StepMask?] {
        [masks.first ?? nil]
    }
}
