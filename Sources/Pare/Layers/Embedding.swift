/// `Embedding(input_dim, output_dim, mask_zero)`: each id in the input picks a row of `embeddings`
/// `(input_dim, output_dim)`. Ids arrive as numbers of any dtype (Pare's inputs are float32, exact
/// for every id below 2^24, and `input_dim` is at most 2^24); an id that is not a whole number in
/// `0 ..< input_dim` is an error naming it, where Keras would cast it or read outside the table.
/// With `mask_zero`, id 0 masks its position for the layers after.
struct Embedding: LayerKind {
    static let classNames = ["Embedding"]
    let inputDim: Int
    let outputDim: Int
    let maskZero: Bool

    init(config: LayerConfig) throws {
        inputDim = try config.positive("input_dim", what: "input_dim missing or not positive")
        outputDim = try config.positive("output_dim", what: "output_dim missing or not positive")
        maskZero = config.bool("mask_zero", fallback: false)
        if let rank = config["lora_rank"], !rank.isNull {
            throw LayerConfigError("LoRA-adapted embeddings (lora_rank) are not supported")
        }
    }

    func outputShape(_ inputs: [Shape]) throws -> Shape { try singleInput(inputs) + [outputDim] }

    func weights(input: Shape) -> [WeightSpec] {
        [WeightSpec("embeddings", [inputDim, outputDim], outputAxes: 1..<2)]
    }

    /// Output dimensions are the embedding's own channels: removing one drops a column of the table.
    func channelFlow(input: Shape, output: Shape) -> ChannelFlow {
        var flow = ChannelFlow.produces
        flow.blocksInputs = "Embedding reads ids, not channels"
        return flow
    }

    func computeOutputs(_ inputs: inout [FloatArray], masks: [StepMask?], _ context: RunContext) throws
        -> LayerResult
    {
        let ids = inputs[0]
        let table = try context.weight("embeddings")
        let d = outputDim
        var out = [Float](repeating: 0, count: ids.count * d)
        for (i, value) in ids.data.enumerated() {
            guard value.rounded(.towardZero) == value else {
                throw InterpreterError.badInput(
                    "layer '\(context.path)': id \(value) at \(position(i, ids.shape)) is not a whole number")
            }
            guard value >= 0, value < Float(inputDim) else {
                // Whole numbers print as such (a huge or infinite one as a float: no conversion can trap).
                let id = abs(value) < 1e15 ? String(Int(value)) : "\(value)"
                throw InterpreterError.badInput(
                    "layer '\(context.path)': id \(id) at \(position(i, ids.shape)) is outside "
                        + "0..<\(inputDim) (input_dim)")
            }
            let row = Int(value)
            for k in 0..<d { out[i * d + k] = table[row * d + k] }
        }
        // `mask_zero`: a position whose id is 0 is masked (the mask has the ids' shape).
        let mask = maskZero ? StepMask(shape: ids.shape, keep: ids.data.map { $0 != 0 }) : nil
        return LayerResult(values: [FloatArray(shape: ids.shape + [d], data: out)], masks: [mask])
    }

    func keepingOutputChannels(_ keep: [Int], _ edit: inout LayerEdit) throws {
        try edit.slice("embeddings", axis: 1, keep: keep)
        edit.config.set("output_dim", .int(keep.count))
    }
}

/// `[example, position…]` of element `index` in a value of `shape` (batch first), for messages.
func position(_ index: Int, _ shape: [Int]) -> String {
    var rest = index
    var coordinates: [Int] = []
    for n in shape.reversed() {
        coordinates.append(rest % max(n, 1))
        rest /= max(n, 1)
    }
    return "[" + coordinates.reversed().map(String.init).joined(separator: ", ") + "]"
}
