/// `EinsumDense(equation, output_shape, bias_axes, activation)`: `einsum(equation, x, kernel)`, the
/// kernel's letters sized from the input where it has them and from `output_shape` (which lists
/// the output's last dimensions, after the batch or the `...`) where not; the bias spans the
/// output from its first `bias_axes` letter on, with size 1 on letters not in `bias_axes`.
struct EinsumDense: LayerKind {
    static let classNames = ["EinsumDense"]
    static let countsMACs = true
    let equation: String
    let partialOutput: [Int?]
    let biasAxes: [Character]
    let activation: JSON?
    let activationName: String?

    init(config: LayerConfig) throws {
        guard let eq = config["equation"]?.stringValue else { throw LayerConfigError("equation missing") }
        guard eq.count <= 64 else { throw LayerConfigError("equation of \(eq.count) characters (at most 64)") }
        equation = eq
        let value = config["output_shape"]
        let list = value?.arrayValue ?? (value.map { [$0] } ?? [])
        guard !list.isEmpty, list.count <= 16 else { throw LayerConfigError("output_shape missing") }
        partialOutput = try list.map { item in
            if item.isNull { return nil }
            guard let d = item.intValue, (1...LayerConfig.maxDimension).contains(d) else {
                throw LayerConfigError("output_shape must list positive sizes or null")
            }
            return d
        }
        let bias = config["bias_axes"]?.stringValue ?? ""
        biasAxes = Array(bias)
        activation = config.activation
        activationName = config.activationName
        if let rank = config["lora_rank"], !rank.isNull {
            throw LayerConfigError("lora_rank is set (a LoRA adapter Pare does not run)")
        }
        // The plan must parse for some rank; the rank itself is checked with the input.
        _ = try EinsumPlan(equation, ellipsisRank: 1)
    }

    /// The plan for an input of `rank` axes, batch included.
    func plan(inputRank: Int) throws -> EinsumPlan {
        let bare = try EinsumPlan(equation, ellipsisRank: 0)
        let ellipsis = EinsumPlan.hasEllipsis(equation) ? inputRank - bare.x.count : 0
        guard ellipsis >= 0 else { throw LayerConfigError("equation '\(equation)' for a rank-\(inputRank) input") }
        let plan = try EinsumPlan(equation, ellipsisRank: ellipsis)
        guard plan.x.count == inputRank else {
            throw LayerConfigError("equation '\(equation)' expects a rank-\(plan.x.count) input, got rank \(inputRank)")
        }
        let described = EinsumPlan.hasEllipsis(equation) ? plan.out.count - ellipsis : plan.out.count - 1
        guard partialOutput.count == described else {
            throw LayerConfigError("output_shape \(describe(partialOutput)) does not fit equation '\(equation)'")
        }
        // Keras keeps the batch as the output's first axis (it inserts it into output_shape): an
        // equation that sums it, moves it, or gives it to the kernel has no Keras meaning.
        guard let batch = plan.x.first, plan.out.first == batch, !plan.w.contains(batch) else {
            throw LayerConfigError("equation '\(equation)' does not keep the batch axis first in its output")
        }
        guard biasAxes.allSatisfy(plan.out.contains) else {
            throw LayerConfigError("bias_axes '\(String(biasAxes))' names letters not in the output")
        }
        return plan
    }

    /// Sizes by letter: the input's, then `output_shape`'s for the output's last letters.
    func sizes(_ plan: EinsumPlan, input: Shape) -> [Character: Int?] {
        var size: [Character: Int?] = [:]
        for (c, d) in zip(plan.x, [nil] + input) { size[c] = d }
        let offset = plan.out.count - partialOutput.count
        for (i, c) in plan.out.enumerated() where i >= offset && size[c] == nil {
            size[c] = partialOutput[i - offset]
        }
        return size
    }

    func outputShape(_ inputs: [Shape]) throws -> Shape {
        let x = try singleInput(inputs)
        let plan = try plan(inputRank: x.count + 1)
        let size = sizes(plan, input: x)
        guard plan.w.allSatisfy({ (size[$0] ?? nil) != nil }) else {
            throw LayerConfigError("equation '\(equation)': a kernel letter has no size")
        }
        let offset = plan.out.count - partialOutput.count
        for (i, c) in plan.out.enumerated() where i >= offset {
            if let want = partialOutput[i - offset], let have = size[c] ?? nil, want != have {
                throw LayerConfigError(
                    "output_shape \(describe(partialOutput)) does not match the input's \(describe(x))")
            }
        }
        return plan.out.dropFirst().map { size[$0] ?? nil }
    }

    func preActivationWeights(_ key: String) -> [WeightSlice]? {
        key == "activation" ? [WeightSlice("kernel")] + (biasAxes.isEmpty ? [] : [WeightSlice("bias")]) : nil
    }

    func weights(input: Shape) -> [WeightSpec] {
        guard let plan = try? plan(inputRank: input.count + 1) else {
            return [WeightSpec("kernel", [nil])] + (biasAxes.isEmpty ? [] : [WeightSpec("bias", [nil])])
        }
        let size = sizes(plan, input: input)
        let kernel = WeightSpec("kernel", plan.w.map { size[$0] ?? nil }, outputAxes: outputAxes(plan))
        guard let first = plan.out.firstIndex(where: biasAxes.contains) else { return [kernel] }
        let biasShape: Shape = plan.out[first...].map { biasAxes.contains($0) ? (size[$0] ?? nil) : 1 }
        return [kernel, WeightSpec("bias", biasShape)]
    }

    /// The kernel axes that make output channels (the output's last letter), for int8 scales.
    func outputAxes(_ plan: EinsumPlan) -> Range<Int>? {
        guard let last = plan.out.last, let i = plan.w.firstIndex(of: last), !plan.x.contains(last) else { return nil }
        return i..<(i + 1)
    }

    /// The equation reads like a Dense on the last axis (`...b,bc->...c`, `abc,cd->abd`): the
    /// kernel is (in, out), the input's last letter summed, the output's last letter the kernel's
    /// second, everything else passed through in order, the bias (if any) on the output channels.
    func denseLike(_ plan: EinsumPlan) -> Bool {
        guard plan.w.count == 2, let k = plan.x.last, plan.w[0] == k, !plan.out.contains(k),
            let n = plan.out.last, plan.w[1] == n, !plan.x.contains(n)
        else { return false }
        return Array(plan.x.dropLast()) == Array(plan.out.dropLast()) && (biasAxes.isEmpty || biasAxes == [n])
    }

    func macs(input: [Int], output: [Int]) -> Int? {
        guard let plan = try? plan(inputRank: input.count + 1) else { return nil }
        let size = sizes(plan, input: input.map { $0 })
        let letters = Set(plan.x.dropFirst() + plan.w + plan.out.dropFirst())
        return ShapeMath.product(letters.sorted().compactMap { size[$0] ?? nil })
    }

    func channelFlow(input: Shape, output: Shape) -> ChannelFlow {
        guard let plan = try? plan(inputRank: input.count + 1), denseLike(plan) else {
            return ChannelFlow.mixes.blockingInputs("EinsumDense '\(equation)' is not a Dense over the last axis")
        }
        return ChannelFlow.producer(activation: activationName)
    }

    var appliesOwnBias: Bool { true }

    func checkRunnable(_ context: RunContext) throws {}

    func compute(_ inputs: inout [FloatArray], _ context: RunContext) throws -> FloatArray {
        let x = takeFirst(&inputs)
        let plan = try plan(inputRank: x.shape.count)
        let kernel = try context.weight("kernel")
        let kernelShape = try context.shape("kernel")
        guard kernelShape.count == plan.w.count, kernelShape.reduce(1, *) == kernel.count else {
            throw InterpreterError.badInput("layer '\(context.path)': kernel of shape \(kernelShape)")
        }
        var y = try x.data.withUnsafeBufferPointer { px in
            try kernel.withUnsafeBufferPointer { pw in try plan.apply(px, xShape: x.shape, pw, wShape: kernelShape) }
        }
        if let bias = context.weights["bias"] {
            let biasShape = try context.shape("bias")
            guard biasShape.count <= y.shape.count - 1,
                zip(biasShape.reversed(), y.shape.reversed()).allSatisfy({ $0 == 1 || $0 == $1 })
            else {
                throw InterpreterError.badInput("layer '\(context.path)': bias of shape \(biasShape) for \(y.shape)")
            }
            addBroadcast(&y, bias, shape: biasShape)
        }
        return y
    }

    /// Adds `bias` (shape `shape`, size-1 axes broadcast) against the last axes of `y`.
    func addBroadcast(_ y: inout FloatArray, _ bias: [Float], shape: [Int]) {
        let tail = Array(y.shape.suffix(shape.count))
        let span = tail.reduce(1, *)
        guard span > 0 else { return }
        let index = broadcastIndices(from: shape, to: tail)
        for start in stride(from: 0, to: y.count, by: span) {
            for j in 0..<span { y.data[start + j] += bias[index[j]] }
        }
    }

    func keepingInputChannels(_ keep: [Int], _ edit: inout LayerEdit) throws {
        try edit.slice("kernel", axis: 0, keep: keep)
    }

    func keepingOutputChannels(_ keep: [Int], _ edit: inout LayerEdit) throws {
        try edit.slice("kernel", axis: 1, keep: keep)
        try edit.slice("bias", axis: 0, keep: keep)
        var shape = partialOutput.map { $0.map(JSON.int) ?? .null }
        shape[shape.count - 1] = .int(keep.count)
        edit.config.set("output_shape", .array(shape))
    }

    func foldedConstants(_ constants: [ConstantInput], _ weights: [String: Tensor]) throws -> FoldedBias? {
        guard let kernel = weights["kernel"], kernel.shape.count == 2, weights["bias"] != nil else { return nil }
        return try Dense.folded(constants, kernel: kernel)
    }

    // EinsumDense does not support masking in either line: the mask stops here (the default).
}
