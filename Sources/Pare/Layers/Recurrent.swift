/// Recurrent layers: `SimpleRNN`, `LSTM`, `GRU` and tf.keras 2's `CuDNNLSTM` / `CuDNNGRU`.
///
/// Weights, gate blocks side by side on the last axis (u = units, G = gates):
/// - kernel `(in, G·u)`, recurrent_kernel `(u, G·u)`, bias `(G·u)`; GRU with `reset_after` has
///   bias `(2, 3u)`: row 0 added to the input part, row 1 to the recurrent part;
/// - gate order LSTM i, f, c, o; GRU z, r, h; SimpleRNN one block;
/// - CuDNNLSTM bias `(8u)` = input bias then recurrent bias (they add up); CuDNNGRU bias `(6u)` =
///   GRU's `(2, 3u)` flattened. Both compute with tanh and sigmoid, CuDNNGRU with `reset_after`;
///   tf.keras loads their weights into LSTM / GRU unchanged but for that bias, and so does Pare.
///
/// Masked steps (Keras's rule): the states stay as they were and the step's output repeats the
/// previous step's (zeros before the first real step), or is zero where `zero_output_for_mask`
/// (Bidirectional sets it when it returns sequences).

/// The cell a recurrent layer runs at each step.
enum RecurrentCell: Sendable, Equatable {
    case simple
    case lstm
    case gru(resetAfter: Bool)

    var gates: Int {
        switch self {
        case .simple: return 1
        case .lstm: return 4
        case .gru: return 3
        }
    }

    /// State tensors the layer returns with `return_state` (LSTM: h and c).
    var stateCount: Int { self == .lstm ? 2 : 1 }
}

/// `SimpleRNN`, `LSTM`, `GRU`, `CuDNNLSTM`, `CuDNNGRU`.
struct Recurrent: LayerKind {
    static let classNames = ["SimpleRNN", "LSTM", "GRU", "CuDNNLSTM", "CuDNNGRU"]
    static let countsMACs = true
    let cell: RecurrentCell
    /// tf.keras 2's cuDNN classes: their bias holds input and recurrent halves.
    let cudnn: Bool
    let units: Int
    let cellActivation: JSON?
    let recurrentActivation: JSON?
    let useBias: Bool
    let returnSequences: Bool
    let returnState: Bool
    private(set) var goBackwards: Bool
    let stateful: Bool
    let timeMajor: Bool
    private(set) var zeroOutputForMask: Bool
    let unroll: Bool

    init(config: LayerConfig) throws {
        let name = config.className
        cudnn = name.hasPrefix("CuDNN")
        switch name {
        case "SimpleRNN": cell = .simple
        case "LSTM", "CuDNNLSTM": cell = .lstm
        default:
            // GRU's reset_after came with Keras 2.1.3; files written before have no key and the old rule.
            cell = .gru(resetAfter: cudnn || config.bool("reset_after", fallback: false))
        }
        units = try config.positive("units", what: "units missing or not positive")
        // cuDNN layers have fixed activations and always a bias.
        cellActivation = cudnn ? .string("tanh") : (config["activation"] ?? .string("tanh"))
        recurrentActivation = cell == .simple ? nil : cudnn ? .string("sigmoid") : config["recurrent_activation"]
        useBias = cudnn || config.bool("use_bias", fallback: true)
        returnSequences = config.bool("return_sequences", fallback: false)
        returnState = config.bool("return_state", fallback: false)
        goBackwards = config.bool("go_backwards", fallback: false)
        stateful = config.bool("stateful", fallback: false)
        timeMajor = config.bool("time_major", fallback: false)
        zeroOutputForMask = config.bool("zero_output_for_mask", fallback: false)
        unroll = config.bool("unroll", fallback: false)
    }

    /// This layer running the other way in time (Bidirectional's backward copy), or writing zeros
    /// at masked steps.
    func with(goBackwards backwards: Bool? = nil, zeroOutputForMask zero: Bool? = nil) -> Recurrent {
        var copy = self
        copy.goBackwards = backwards ?? goBackwards
        copy.zeroOutputForMask = zero ?? zeroOutputForMask
        return copy
    }

    /// The sequence input and, after it, initial states (`initial_state=`), one per state tensor.
    func outputShapes(_ inputs: [Shape]) throws -> [Shape] {
        guard let x = inputs.first, x.count == 2 else {
            let got = inputs.first.map(describe) ?? "none"
            throw LayerConfigError("expects a sequence input of rank 3 (batch, steps, features), got \(got)")
        }
        guard inputs.count == 1 || inputs.count == 1 + cell.stateCount else {
            throw LayerConfigError("takes \(cell.stateCount) initial state(s), got \(inputs.count - 1)")
        }
        for state in inputs.dropFirst() where state.count != 1 || (state[0] != nil && state[0] != units) {
            throw LayerConfigError("an initial state of shape \(describe(state)) does not match \(units) units")
        }
        let output: Shape = returnSequences ? [x[0], units] : [units]
        return [output] + (returnState ? Array(repeating: [units], count: cell.stateCount) : [])
    }

    func outputShape(_ inputs: [Shape]) throws -> Shape { try outputShapes(inputs)[0] }

    func weights(input: Shape) -> [WeightSpec] {
        let width = cell.gates * units
        let features = input.count == 2 ? input[1] : nil
        var specs = [
            WeightSpec("kernel", [features, width], outputAxes: 1..<2),
            WeightSpec("recurrent_kernel", [units, width], outputAxes: 1..<2),
        ]
        if useBias {
            switch (cell, cudnn) {
            case (_, true): specs.append(WeightSpec("bias", [2 * width]))
            case (.gru(resetAfter: true), false): specs.append(WeightSpec("bias", [2, width]))
            default: specs.append(WeightSpec("bias", [width]))
            }
        }
        // Keras 3 keeps them in the layer's cell.
        return specs.map { spec in
            var s = spec
            s.keras3Group = "cell"
            return s
        }
    }

    /// The gate columns each activation reads (u = units): SimpleRNN's one block; LSTM's i, f, o
    /// through `recurrent_activation` (its `activation` also squashes the cell state, which no
    /// weight scales); GRU's z, r through `recurrent_activation` and h through `activation` (with
    /// reset_after, r multiplies the recurrent part linearly, so scaling its weights still scales h's input).
    func preActivationWeights(_ key: String) -> [WeightSlice]? {
        guard !cudnn else { return nil }
        let u = units
        let columns: [Range<Int>]
        switch (cell, key) {
        case (.simple, "activation"): columns = [0..<u]
        case (.lstm, "recurrent_activation"): columns = [0..<2 * u, 3 * u..<4 * u]
        case (.gru, "recurrent_activation"): columns = [0..<2 * u]
        case (.gru, "activation"): columns = [2 * u..<3 * u]
        default: return nil
        }
        let roles = ["kernel", "recurrent_kernel"] + (useBias ? ["bias"] : [])
        return roles.flatMap { role in columns.map { WeightSlice(role, columns: $0) } }
    }

    /// The cell Keras 3 saves the weights in, under its class's default name.
    var keras3SubObjects: [Keras3SubObject] {
        let name: String
        switch cell {
        case .simple: name = "simple_rnn_cell"
        case .lstm: name = "lstm_cell"
        case .gru: name = "gru_cell"
        }
        return [Keras3SubObject(group: "cell", name: name)]
    }

    /// Per step: the input and recurrent matrix products.
    func macs(input: [Int], output: [Int]) -> Int? {
        guard input.count == 2 else { return nil }
        return ShapeMath.product([input[0], input[1] + units, cell.gates * units])
    }

    /// The per-step products over a whole batch: the input projection of every step.
    func scratchElements(input: Shape, output: Shape, macs: Int?) -> Int {
        guard input.count == 2, let steps = input[0] else { return 0 }
        return ShapeMath.product([steps, cell.gates * units, 2]) ?? Int.max
    }

    /// Units are the layer's channels: unit k is column k of every gate block of the kernel, the
    /// recurrent kernel and the bias, and row k of the recurrent kernel. Its output and states carry
    /// the units. A unit whose gate columns are all zero stays exactly zero (its candidate is
    /// activation(0) = 0 and its state starts at 0), so the masked model equals the pruned one when
    /// the activation is zero at zero.
    func channelFlow(input: Shape, output: Shape) -> ChannelFlow {
        var flow = ChannelFlow.produces
        flow.indexedByInputChannel = true
        flow.foldsConstants = useBias && !cudnn
        flow.outputCopies = [1] + (returnState ? Array(repeating: 1, count: cell.stateCount) : [])
        if cudnn {
            flow.blocksInputs = "a cuDNN layer's kernel layout"
            flow.blocksOutputs = "is a cuDNN layer (its kernel layout is cuDNN's)"
        } else if let reason = unitBlock {
            flow.blocksOutputs = reason
        }
        return flow
    }

    /// Why a unit with zero weights would not output zero, if it would not.
    var unitBlock: String? {
        guard let f = try? ActivationFunction.parse(cellActivation, kerasMajor: 3) else {
            return "has an activation Pare does not know"
        }
        return f.scalar(0) == 0 ? nil : "has an activation that is not zero at zero (a removed unit would not be)"
    }

    /// Columns of the gate blocks that belong to `units` (kernel, recurrent kernel and bias columns).
    func gateColumns(_ units: [Int]) -> [Int] {
        (0..<cell.gates).flatMap { g in units.map { g * self.units + $0 } }
    }

    func keepingOutputChannels(_ keep: [Int], _ edit: inout LayerEdit) throws {
        try keepUnits(keep, &edit, prefix: "")
        edit.config.set("units", .int(keep.count))
    }

    /// Keeps `keep` units in the weights whose roles start with `prefix`.
    func keepUnits(_ keep: [Int], _ edit: inout LayerEdit, prefix: String) throws {
        let columns = gateColumns(keep)
        try edit.slice(prefix + "kernel", axis: 1, keep: columns)
        try edit.slice(prefix + "recurrent_kernel", axis: 1, keep: columns)
        try edit.slice(prefix + "recurrent_kernel", axis: 0, keep: keep)
        if let bias = edit.weights[prefix + "bias"] {
            try edit.slice(prefix + "bias", axis: bias.shape.count - 1, keep: columns)
        }
    }

    func maskingOutputChannels(_ removed: Set<Int>, _ edit: inout LayerEdit) throws -> Bool {
        try zeroUnits(removed, &edit, prefix: "")
        return true
    }

    /// Zeroes the gate columns of `removed` units in the weights whose roles start with `prefix`.
    func zeroUnits(_ removed: Set<Int>, _ edit: inout LayerEdit, prefix: String) throws {
        let columns = Set(gateColumns(removed.sorted()))
        try edit.zero(prefix + "kernel", axis: 1, removed: columns)
        try edit.zero(prefix + "recurrent_kernel", axis: 1, removed: columns)
        if let bias = edit.weights[prefix + "bias"] {
            try edit.zero(prefix + "bias", axis: bias.shape.count - 1, removed: columns)
        }
    }

    /// A constant at a removed input adds `constant × kernel row` to the input projection of every
    /// step: exactly the input-side bias (row 0 of a GRU's `(2, 3u)` bias).
    func foldedConstants(_ constants: [ConstantInput], _ weights: [String: Tensor]) throws -> FoldedBias? {
        guard let kernel = weights["kernel"], kernel.shape.count == 2, let bias = weights["bias"], !cudnn else {
            return nil
        }
        let w = try kernel.floats()
        let width = kernel.shape[1]
        var delta = [Float](repeating: 0, count: bias.count)
        for constant in constants {
            for j in 0..<width { delta[j] += constant.value * w[constant.position * width + j] }
        }
        return FoldedBias(delta: delta, kernelRole: "kernel", approximation: nil)
    }

    var appliesOwnBias: Bool { true }

    var interpreterLimitation: String? {
        if stateful { return "stateful recurrent layers (their result depends on earlier batches)" }
        if timeMajor { return "time_major recurrent layers" }
        return nil
    }

    func checkRunnable(_ context: RunContext) throws {
        if cell != .simple && recurrentActivation == nil {
            throw InterpreterError.badInput(
                "layer '\(context.path)': its config has no recurrent_activation (Keras before 2.3 meant "
                    + "hard_sigmoid, later versions sigmoid); Pare does not guess")
        }
    }

    func computeOutputs(_ inputs: inout [FloatArray], masks: [StepMask?], _ context: RunContext) throws
        -> LayerResult
    {
        let run = try RecurrentRun(
            self, weights: context, prefix: "", kerasMajor: context.kerasMajor, path: context.path)
        let result = try run.run(inputs[0], mask: masks.first ?? nil, initialStates: Array(inputs.dropFirst()))
        return LayerResult(
            values: result, masks: result.indices.map { $0 == 0 && returnSequences ? (masks.first ?? nil) : nil })
    }

    func keepingInputChannels(_ keep: [Int], _ edit: inout LayerEdit) throws {
        try edit.slice("kernel", axis: 0, keep: keep)
    }
}

/// One recurrent layer ready to run on a batch: weights as float32, activations parsed, biases split
/// into the part added to the input projection and the part added to the recurrent one.
struct RecurrentRun {
    let layer: Recurrent
    let kernel: [Float]
    let recurrentKernel: [Float]
    let inputBias: [Float]?
    let recurrentBias: [Float]?
    let activation: ActivationFunction
    let gateActivation: ActivationFunction
    let path: String

    /// `prefix` picks a Bidirectional direction's weights (`forward_`, `backward_`).
    init(_ layer: Recurrent, weights context: RunContext, prefix: String, kerasMajor: Int, path: String) throws {
        self.layer = layer
        self.path = path
        let storedKernel = try context.weight(prefix + "kernel")
        let storedRecurrent = try context.weight(prefix + "recurrent_kernel")
        let width = layer.cell.gates * layer.units
        guard storedRecurrent.count == layer.units * width, storedKernel.count % width == 0 else {
            throw InterpreterError.badInput("layer '\(path)': kernel shapes do not match \(layer.units) units")
        }
        if layer.cudnn {
            (kernel, recurrentKernel) = Self.fromCuDNN(
                storedKernel, storedRecurrent, units: layer.units, gates: layer.cell.gates)
        } else {
            (kernel, recurrentKernel) = (storedKernel, storedRecurrent)
        }
        if layer.useBias {
            let bias = try context.weight(prefix + "bias")
            if layer.cudnn, layer.cell == .lstm, bias.count == 2 * width {
                inputBias = (0..<width).map { bias[$0] + bias[width + $0] }
                recurrentBias = nil
            } else if bias.count == 2 * width {
                inputBias = Array(bias[..<width])
                recurrentBias = Array(bias[width...])
            } else if bias.count == width {
                inputBias = bias
                recurrentBias = nil
            } else {
                throw InterpreterError.badInput("layer '\(path)': bias of \(bias.count) values for \(width)")
            }
        } else {
            inputBias = nil
            recurrentBias = nil
        }
        activation = try ActivationFunction.parse(layer.cellActivation, kerasMajor: kerasMajor)
        gateActivation = try ActivationFunction.parse(
            layer.recurrentActivation ?? .string("sigmoid"), kerasMajor: kerasMajor)
        for f in [activation, gateActivation] where f == .softmax || f == .logSoftmax || f == .sparsemax {
            throw InterpreterError.unsupported("a softmax activation inside a recurrent cell (layer '\(path)')")
        }
    }

    /// Kernels of tf.keras 2's cuDNN layers in Keras's layout, as tf.keras converts them on load:
    /// each gate's `(in, u)` block of the stored kernel is cuDNN's row-major `(u, in)` matrix, so it
    /// is read as that and transposed; each `(u, u)` block of the recurrent kernel is transposed.
    static func fromCuDNN(_ kernel: [Float], _ recurrent: [Float], units u: Int, gates: Int) -> ([Float], [Float]) {
        let width = gates * u
        let features = kernel.count / width
        var k = [Float](repeating: 0, count: kernel.count)
        var r = [Float](repeating: 0, count: recurrent.count)
        for g in 0..<gates {
            // The block's values in C order: stored[i, g·u + j] is element i·u + j of the block.
            for i in 0..<features {
                for j in 0..<u {
                    let flat = i * u + j
                    let (row, column) = (flat / features, flat % features)  // (u, in) matrix element
                    k[column * width + g * u + row] = kernel[i * width + g * u + j]
                }
            }
            for i in 0..<u {
                for j in 0..<u { r[j * width + g * u + i] = recurrent[i * width + g * u + j] }
            }
        }
        return (k, r)
    }

    /// Runs `x` (batch, steps, features); returns the output (last or every step, in the order the
    /// steps were processed, so reversed for `go_backwards`) and, with `return_state`, the states.
    func run(_ x: FloatArray, mask: StepMask?, initialStates: [FloatArray]) throws -> [FloatArray] {
        let (n, steps, features) = (x.shape[0], x.shape[1], x.shape[2])
        let u = layer.units
        let width = layer.cell.gates * u
        guard kernel.count == features * width else {
            throw InterpreterError.badInput("layer '\(path)': kernel does not take \(features) features")
        }
        if let mask, mask.shape != [n, steps] {
            throw InterpreterError.badInput(
                "layer '\(path)': a mask of shape \(mask.shape) for a sequence of shape \(x.shape)")
        }
        // The input projection of every step at once: (batch·steps, G·u).
        var projected = ConvolutionKernels.dense(x, kernel: kernel, units: width)
        if let inputBias { ConvolutionKernels.addBias(&projected, inputBias) }
        var h = initialStates.first?.data ?? [Float](repeating: 0, count: n * u)
        var c =
            layer.cell == .lstm ? (initialStates.dropFirst().first?.data ?? [Float](repeating: 0, count: n * u)) : []
        guard h.count == n * u, layer.cell != .lstm || c.count == n * u else {
            throw InterpreterError.badInput("layer '\(path)': initial states do not match the batch")
        }
        var previousOutput = [Float](repeating: 0, count: n * u)
        var sequence = layer.returnSequences ? [Float](repeating: 0, count: n * steps * u) : []
        // TensorFlow's unrolled loop carries outputs over masked steps and zeroes the sequence
        // afterwards with the mask in input order, not the reversed one (Keras 3 and tf.keras 2
        // alike): with go_backwards that zeroes other steps than the masked ones. Pare does the same.
        let unrolledQuirk = layer.unroll && layer.goBackwards && layer.zeroOutputForMask && mask != nil
        var recurrent = [Float](repeating: 0, count: n * width)
        var newH = h
        var newC = c
        for step in 0..<steps {
            let t = layer.goBackwards ? steps - 1 - step : step
            try cellStep(
                projected: projected.data, t: t, steps: steps, n: n, h: h, c: c, recurrent: &recurrent, newH: &newH,
                newC: &newC)
            for b in 0..<n {
                let kept = mask.map { $0.keep[b * steps + t] } ?? true
                let row = b * u
                if kept {
                    for k in 0..<u {
                        h[row + k] = newH[row + k]
                        previousOutput[row + k] = newH[row + k]
                    }
                    if layer.cell == .lstm { for k in 0..<u { c[row + k] = newC[row + k] } }
                } else if layer.zeroOutputForMask && !unrolledQuirk {
                    for k in 0..<u { previousOutput[row + k] = 0 }
                }
                if layer.returnSequences {
                    let zeroed = unrolledQuirk && !(mask?.keep[b * steps + step] ?? true)
                    for k in 0..<u { sequence[(b * steps + step) * u + k] = zeroed ? 0 : previousOutput[row + k] }
                }
                if unrolledQuirk, step == steps - 1, !kept {
                    for k in 0..<u { previousOutput[row + k] = 0 }
                }
            }
        }
        let output =
            layer.returnSequences
            ? FloatArray(shape: [n, steps, u], data: sequence) : FloatArray(shape: [n, u], data: previousOutput)
        guard layer.returnState else { return [output] }
        let states = layer.cell == .lstm ? [h, c] : [h]
        return [output] + states.map { FloatArray(shape: [n, u], data: $0) }
    }

    /// One step for the whole batch from states `h`, `c`: the candidate new states, before masking.
    private func cellStep(
        projected: [Float], t: Int, steps: Int, n: Int, h: [Float], c: [Float], recurrent: inout [Float],
        newH: inout [Float], newC: inout [Float]
    ) throws {
        let u = layer.units
        let width = layer.cell.gates * u
        // h · recurrent_kernel for every gate block; GRU without reset_after multiplies the h block
        // by (r ∘ h) instead, below.
        let blocks = layer.cell == .gru(resetAfter: false) ? 2 * u : width
        h.withUnsafeBufferPointer { hp in
            recurrentKernel.withUnsafeBufferPointer { kp in
                recurrent.withUnsafeMutableBufferPointer { rp in
                    sgemm(
                        m: n, n: blocks, k: u, a: hp.baseAddress!, lda: u, b: kp.baseAddress!, ldb: width,
                        c: rp.baseAddress!, ldc: width)
                }
            }
        }
        if let recurrentBias {
            for b in 0..<n { for j in 0..<width { recurrent[b * width + j] += recurrentBias[j] } }
        }
        let act = activation
        let gate = gateActivation
        switch layer.cell {
        case .simple:
            for b in 0..<n {
                let x = (b * steps + t) * width
                for k in 0..<u { newH[b * u + k] = act.scalar(projected[x + k] + recurrent[b * width + k]) }
            }
        case .lstm:
            for b in 0..<n {
                let x = (b * steps + t) * width
                let r = b * width
                for k in 0..<u {
                    let i = gate.scalar(projected[x + k] + recurrent[r + k])
                    let f = gate.scalar(projected[x + u + k] + recurrent[r + u + k])
                    let g = act.scalar(projected[x + 2 * u + k] + recurrent[r + 2 * u + k])
                    let o = gate.scalar(projected[x + 3 * u + k] + recurrent[r + 3 * u + k])
                    let cell = f * c[b * u + k] + i * g
                    newC[b * u + k] = cell
                    newH[b * u + k] = o * act.scalar(cell)
                }
            }
        case .gru(let resetAfter):
            var reset = [Float](repeating: 0, count: n * u)
            var z = [Float](repeating: 0, count: n * u)
            for b in 0..<n {
                let x = (b * steps + t) * width
                let r = b * width
                for k in 0..<u {
                    z[b * u + k] = gate.scalar(projected[x + k] + recurrent[r + k])
                    reset[b * u + k] = gate.scalar(projected[x + u + k] + recurrent[r + u + k])
                }
            }
            var candidateInput = [Float](repeating: 0, count: n * u)
            if resetAfter {
                for b in 0..<n {
                    for k in 0..<u { candidateInput[b * u + k] = reset[b * u + k] * recurrent[b * width + 2 * u + k] }
                }
            } else {
                // (r ∘ h) · recurrent_kernel[:, 2u:]
                var rh = [Float](repeating: 0, count: n * u)
                for i in 0..<(n * u) { rh[i] = reset[i] * h[i] }
                rh.withUnsafeBufferPointer { ap in
                    recurrentKernel.withUnsafeBufferPointer { kp in
                        candidateInput.withUnsafeMutableBufferPointer { cp in
                            sgemm(
                                m: n, n: u, k: u, a: ap.baseAddress!, lda: u, b: kp.baseAddress! + 2 * u,
                                ldb: width, c: cp.baseAddress!, ldc: u)
                        }
                    }
                }
            }
            for b in 0..<n {
                let x = (b * steps + t) * width
                for k in 0..<u {
                    let i = b * u + k
                    let candidate = act.scalar(projected[x + 2 * u + k] + candidateInput[i])
                    newH[i] = z[i] * h[i] + (1 - z[i]) * candidate
                }
            }
        }
    }
}
