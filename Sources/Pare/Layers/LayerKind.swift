/// Shapes are per example, without the batch axis; nil marks an unknown dimension.
public typealias Shape = [Int?]

/// Everything Pare knows about one Keras layer class, in one place.
///
/// A value of a conforming type is one layer's config, parsed into typed fields and range-checked
/// once (`init(config:)`); every other part of Pare asks it instead of reading the config or
/// switching on the class name: shape inference (`outputShape`), the weight check (`weights`),
/// cost (`macs`), the channel graph (`channelFlow`), the interpreter (`compute`), the rewriter
/// (`keepingInputChannels`, `keepingOutputChannels`, `foldedConstants`) and int8 packing
/// (`WeightSpec.outputAxes`). Defaults below describe a layer without weights that Pare can
/// shape but not run or prune; each family file overrides what its layers do.
///
/// Adding a layer kind: one type in the family's file under `Layers/`, its class names in
/// `LayerRegistry.kinds`, a fixture made by Keras, and a test (CONTRIBUTING.md walks through it).
public protocol LayerKind: Sendable {
    /// The class names Keras saves for this kind.
    static var classNames: [String] { get }

    /// Whether the kind reads `LayerConfig.callArguments` (Keras 3 operations do).
    static var takesCallConstants: Bool { get }

    /// For kinds whose calls pass several tensors by name (attention), the parameter names in the
    /// order the kind receives them; empty for the rest (inputs in the order the config lists them).
    static var tensorParameters: [String] { get }

    /// For such kinds, the parameters a `mask=[…]` list fills, in order (Attention's query and value masks).
    static var maskListParameters: [String] { get }

    /// Parses and range-checks `config`; throws `LayerConfigError` naming what is wrong.
    init(config: LayerConfig) throws

    /// The shape of the output of one call, per example.
    func outputShape(_ inputs: [Shape]) throws -> Shape

    /// The shapes of every output of one call: recurrent layers returning their states, and
    /// Bidirectional without a merge mode, have several (default: `outputShape` alone).
    func outputShapes(_ inputs: [Shape]) throws -> [Shape]

    /// The weights the layer must have, in Keras's order, for an input of this shape.
    func weights(input: Shape) -> [WeightSpec]

    /// The weights for a call with these inputs (attention sizes its key and value projections
    /// from its other inputs); the default asks `weights(input:)` with the first.
    func weights(inputs: [Shape]) -> [WeightSpec]

    /// Multiply-accumulates of one call with known shapes (bias, normalization and activations not counted).
    func macs(input: [Int], output: [Int]) -> Int?

    /// Multiply-accumulates of a call with several inputs (attention); the default counts the first.
    func macs(inputs: [[Int]], output: [Int]) -> Int?

    /// Whether `macs` counts anything for this kind (reports list the kinds they count).
    static var countsMACs: Bool { get }

    /// Whether this layer's `macs` count anything (a wrapper counts what its layer counts).
    var macsCounted: Bool { get }

    /// Working memory the interpreter needs beyond the output, in elements per example.
    func scratchElements(input: Shape, output: Shape, macs: Int?) -> Int

    /// The same for a call with several inputs (attention's projections of its query, key and value).
    func scratchElements(inputs: [Shape], output: Shape, macs: Int?) -> Int

    /// How output channels relate to input channels, for coupled-channel pruning.
    func channelFlow(input: Shape, output: Shape) -> ChannelFlow

    /// The `activation` the layer applies after its own computation and bias, if it takes one.
    var activation: JSON? { get }

    /// Why Pare's interpreter cannot run this layer, or nil if it can.
    var interpreterLimitation: String? { get }

    /// The interpreter: the layer's output before bias and activation (`LayerOp` adds those).
    /// May consume `inputs` (an elementwise layer works in place on the first one).
    func compute(_ inputs: inout [FloatArray], _ context: RunContext) throws -> FloatArray

    /// The interpreter for layers with several outputs or that read or make masks (recurrent layers,
    /// Embedding): every output with its mask. The default runs `compute` and takes the masks from
    /// `outputMasks`; `LayerOp` then adds the bias and activation to the first output.
    func computeOutputs(_ inputs: inout [FloatArray], masks: [StepMask?], _ context: RunContext) throws
        -> LayerResult

    /// Whether `computeOutputs` applies the `bias` weight itself (recurrent cells add it inside).
    var appliesOwnBias: Bool { get }

    /// Whether `compute` applies `RunContext.epilogue` itself as it stores its output (the convolution
    /// kernels do): a following BatchNormalization's affine map and ReLU, fused by the interpreter,
    /// and its own `relu` activation, whose pass `LayerOp` then leaves out.
    var appliesEpilogue: Bool { get }

    /// The masks of the outputs given those of the inputs, as Keras's `compute_mask` makes them.
    /// The default is Keras's rule for a layer that does not support masking: the mask stops here.
    func outputMasks(_ masks: [StepMask?], inputShapes: [[Int]], outputs: [FloatArray]) -> [StepMask?]

    /// The inputs (positions in the call) whose Keras mask Keras 3 deletes from the tensor itself when
    /// it calls the layer (MultiHeadAttention clears its query's, value's and key's): consumers of
    /// those tensors that Keras runs later see no mask. Empty for other kinds.
    var keras3ClearedInputMasks: [Int] { get }

    /// Why Pare cannot run this layer when a mask reaches it (a use of the mask Pare does not
    /// implement), nil if it can: it then computes what Keras computes with or without one.
    var maskLimitation: String? { get }

    /// Weights the interpreter needs that the shape check cannot verify (per-channel counts at run time).
    func checkRunnable(_ context: RunContext) throws

    /// For a wrapper, the input shape (per example) each layer it holds in its config is built
    /// with, by config key (`layer`, `backward_layer`); Keras 3 saves it in their `build_config`.
    func wrappedInputs(_ input: Shape) -> [String: Shape]

    /// The objects Keras 3 tracks inside this layer (a recurrent layer's cell, a wrapper's layers),
    /// each with the group it is saved in below the layer's and the name its `vars` group carries.
    var keras3SubObjects: [Keras3SubObject] { get }

    /// Keeps only the input channels (positions of the last input axis) in `keep`.
    func keepingInputChannels(_ keep: [Int], _ edit: inout LayerEdit) throws

    /// Keeps only the output channels in `keep` (layers whose flow is `.produces`).
    func keepingOutputChannels(_ keep: [Int], _ edit: inout LayerEdit) throws

    /// Zeroes the weights that read removed input channels, for the masked model (same shapes).
    func maskingInputChannels(_ removed: Set<Int>, _ edit: inout LayerEdit) throws

    /// Zeroes what makes removed output channels, for the masked model, when the kind does it
    /// itself (a recurrent unit's columns in every gate block) and returns true; false leaves it
    /// to the generic step, which zeroes the output kernel's channel slices and the bias.
    func maskingOutputChannels(_ removed: Set<Int>, _ edit: inout LayerEdit) throws -> Bool

    /// What adding a constant `value` at input channel `position` does to the output: the change
    /// of bias that carries removed inputs' constants, or nil if the layer cannot absorb them.
    func foldedConstants(_ constants: [ConstantInput], _ weights: [String: Tensor]) throws -> FoldedBias?

    /// The weight slices that make the input of the activation the config names under `key`
    /// (`activation`, `recurrent_activation`) linearly, so that scaling them scales that input:
    /// how a constant factor is folded into the layer (Keras 2's hard_sigmoid upgraded to Keras 3's).
    /// nil when that input is not linear in this layer's weights alone.
    func preActivationWeights(_ key: String) -> [WeightSlice]?
}

/// Columns `columns` of the last axis of the weight `role` (the whole weight when nil).
public struct WeightSlice: Sendable, Equatable {
    public var role: String
    public var columns: Range<Int>?

    public init(_ role: String, columns: Range<Int>? = nil) {
        self.role = role
        self.columns = columns
    }
}

/// One weight a layer holds: its role (`kernel`, `bias`, `gamma`…), expected shape and layout.
public struct WeightSpec: Sendable, Equatable {
    public var role: String
    /// nil where the config and input do not fix a dimension.
    public var shape: [Int?]
    /// The axes, as a range, whose flattened index is the layer's output channel; nil for weights
    /// without one (bias, normalization statistics). `pack --int8` keeps one scale per such channel.
    public var outputAxes: Range<Int>?
    /// False for state Keras does not train (BatchNormalization's moving statistics).
    public var trainable = true
    /// The name Keras 3 gives the variable where it differs from the role.
    public var keras3Name: String?
    /// Where Keras 3's weights file keeps the variable, below the layer's group: "" for the layer's
    /// own `vars`, or the tracked object holding it (`cell` of an LSTM, `forward_layer/cell` of a
    /// Bidirectional, `layer` of a TimeDistributed). Variables are numbered within each group.
    public var keras3Group = ""

    public init(
        _ role: String, _ shape: [Int?], outputAxes: Range<Int>? = nil, trainable: Bool = true,
        keras3Name: String? = nil
    ) {
        self.role = role
        self.shape = shape
        self.outputAxes = outputAxes
        self.trainable = trainable
        self.keras3Name = keras3Name
    }
}

/// An object Keras 3 saves inside a layer (`cell`, `forward_layer`, …) and its name.
public struct Keras3SubObject: Sendable, Equatable {
    public var group: String
    public var name: String
}

/// How a layer's output channels (last axis) come from its inputs' channels.
public struct ChannelFlow: Sendable {
    public enum Kind: Sendable, Equatable {
        /// Makes channels of its own (Conv, Dense): removable, and its weights index its input channels.
        case produces
        /// Output channel `c * multiplier + k` comes from input channel `c` (activations, pooling, BN, depthwise).
        case perChannel(multiplier: Int)
        /// Inputs meet position by position (Add, Multiply, …): their channels are coupled.
        case merges
        /// Concatenation along the channel axis joins the inputs' channels; along another axis, merges.
        case concatenates(onChannels: Bool)
        /// Every position of the input repeats its channels in the output (Flatten).
        case flattens
        /// Channels are moved or mixed (Reshape, Permute): nothing passing through can be removed.
        case mixes
    }

    public var kind: Kind
    /// Its weights or config are indexed by input channel: removing one edits this layer too.
    public var indexedByInputChannel = false
    /// Value by value, same shape: the channel's output is still itself after this layer (BN, activations).
    public var elementwise = false
    /// Why the channels reaching this layer cannot be removed, if they cannot.
    public var blocksInputs: String?
    /// Why the channels this layer makes cannot be removed, if they cannot.
    public var blocksOutputs: String?
    /// A constant reaching a removed input channel can be folded into this layer's bias.
    public var foldsConstants = false
    /// For `.produces`: per output tensor, how many times the layer's channels repeat, one block
    /// after another, along its last axis. A recurrent layer's states carry its units (`[1, 1, 1]`
    /// for an LSTM returning h and c); a concatenating Bidirectional repeats them (`[2]`: forward
    /// unit k at k, backward unit k at units + k).
    public var outputCopies = [1]
    /// For `.produces` with several inputs: the inputs (positions after the first) whose channels
    /// line up with the first input's, read by the same kernel rows (an attention layer's value and
    /// key beside its query). Any other extra input blocks the layer (recurrent initial states).
    public var alignedInputs: [Int] = []

    public init(_ kind: Kind) { self.kind = kind }

    static let produces = ChannelFlow(.produces)

    /// A layer that computes channels of its own from all its input channels (Conv, Dense): its
    /// kernel is indexed by input channel, it takes removed inputs' constants into its bias, and a
    /// softmax `activation` ties its channels together.
    static func producer(activation: String?) -> ChannelFlow {
        var flow = ChannelFlow.produces
        flow.indexedByInputChannel = true
        flow.foldsConstants = true
        flow.blocksOutputs =
            activation.map(ActivationFunction.channelCoupling.contains) == true
            ? "applies \(activation!) across its channels" : nil
        return flow
    }
    static let mixes = ChannelFlow(.mixes)
    static func perChannel(multiplier: Int = 1, indexed: Bool = false, elementwise: Bool = false) -> ChannelFlow {
        var flow = ChannelFlow(.perChannel(multiplier: multiplier))
        flow.indexedByInputChannel = indexed
        flow.elementwise = elementwise
        return flow
    }

    func blockingInputs(_ reason: String?) -> ChannelFlow {
        var flow = self
        flow.blocksInputs = reason
        return flow
    }
}

/// What a layer's computation sees: its weights as float32 by role, and its concrete output shape.
public struct RunContext {
    public var path: String
    public var weights: [String: [Float]]
    public var weightShapes: [String: [Int]]
    public var outputShape: Shape
    /// The major version of the Keras that wrote the file (activations differ between 2 and 3).
    public var kerasMajor = 3
    /// For a kind that `appliesEpilogue`: what it applies to its output after its bias (nothing unless
    /// the interpreter fused layers into this call, or the layer's own activation is ReLU).
    var epilogue = Epilogue()

    func weight(_ role: String) throws -> [Float] {
        guard let w = weights[role] else { throw InterpreterError.badInput("layer '\(path)': \(role) missing") }
        return w
    }

    /// Values of a weight by its shape (the weights themselves may not be loaded: `checkRunnable`
    /// sees shapes only, so an interpreter streaming its weights checks every layer without reading it).
    func count(_ role: String) -> Int? { weightShapes[role].map { $0.reduce(1, *) } }

    func shape(_ role: String) throws -> [Int] {
        guard let s = weightShapes[role] else { throw InterpreterError.badInput("layer '\(path)': \(role) missing") }
        return s
    }
}

/// One layer's weights by role and its config, being rewritten.
public struct LayerEdit {
    public var weights: [String: Tensor]
    public var config: JSON

    func weight(_ role: String) throws -> Tensor {
        guard let w = weights[role] else { throw LayerConfigError("its \(role) is missing") }
        return w
    }

    mutating func slice(_ role: String, axis: Int, keep: [Int]) throws {
        guard let w = weights[role] else { return }
        weights[role] = try w.sliced(axis: axis, keep: keep)
    }

    /// Keeps output channels `keep` of a producer: the kernel along `axis`, the bias, and the
    /// config's count (`filters`, `units`).
    mutating func keepOutputs(_ keep: [Int], kernel role: String, axis: Int, count key: String) throws {
        try slice(role, axis: axis, keep: keep)
        try slice("bias", axis: 0, keep: keep)
        config.set(key, .int(keep.count))
    }

    mutating func zero(_ role: String, axis: Int, removed: Set<Int>) throws {
        guard let w = weights[role] else { return }
        weights[role] = try w.zeroed(axis: axis, indices: removed)
    }
}

/// A removed input channel that carried a constant value.
public struct ConstantInput: Sendable {
    public var position: Int
    public var value: Float
}

/// The change of a layer's bias that carries the constants of removed inputs.
public struct FoldedBias {
    /// Added to the bias, one value per output channel.
    public var delta: [Float]
    /// The weight the bias follows when the layer has none and one must be added.
    public var kernelRole: String
    /// Where the fold is not exact (padding, transposed spreading), why.
    public var approximation: String?
}

/// A config value that is missing, of the wrong type or out of range.
public struct LayerConfigError: Error, CustomStringConvertible {
    public let reason: String
    public init(_ reason: String) { self.reason = reason }
    public var description: String { reason }
}

extension LayerKind {
    public func outputShapes(_ inputs: [Shape]) throws -> [Shape] { [try outputShape(inputs)] }
    public func weights(input: Shape) -> [WeightSpec] { [] }
    public func weights(inputs: [Shape]) -> [WeightSpec] { weights(input: inputs.first ?? []) }
    public func macs(inputs: [[Int]], output: [Int]) -> Int? { macs(input: inputs.first ?? [], output: output) }
    public static var tensorParameters: [String] { [] }
    public static var maskListParameters: [String] { [] }
    /// Kinds that implement `computeOutputs` instead are never asked for `compute`.
    public func compute(_ inputs: inout [FloatArray], _ context: RunContext) throws -> FloatArray {
        throw InterpreterError.unsupported("layer '\(context.path)' computed through compute()")
    }
    public func computeOutputs(_ inputs: inout [FloatArray], masks: [StepMask?], _ context: RunContext) throws
        -> LayerResult
    {
        let shapes = inputs.map(\.shape)
        let y = try compute(&inputs, context)
        return LayerResult(values: [y], masks: outputMasks(masks, inputShapes: shapes, outputs: [y]))
    }
    public var appliesOwnBias: Bool { false }
    public var appliesEpilogue: Bool { false }
    public var keras3SubObjects: [Keras3SubObject] { [] }
    public func wrappedInputs(_ input: Shape) -> [String: Shape] { [:] }
    public func outputMasks(_ masks: [StepMask?], inputShapes: [[Int]], outputs: [FloatArray]) -> [StepMask?] {
        outputs.map { _ in nil }
    }
    public var maskLimitation: String? { nil }
    public var keras3ClearedInputMasks: [Int] { [] }
    public func macs(input: [Int], output: [Int]) -> Int? { 0 }
    public func scratchElements(input: Shape, output: Shape, macs: Int?) -> Int { 0 }
    public func scratchElements(inputs: [Shape], output: Shape, macs: Int?) -> Int {
        scratchElements(input: inputs.first ?? [], output: output, macs: macs)
    }
    public func channelFlow(input: Shape, output: Shape) -> ChannelFlow {
        ChannelFlow.mixes
    }
    public var activation: JSON? { nil }
    public var interpreterLimitation: String? { nil }
    public func checkRunnable(_ context: RunContext) throws {
        if let bias = context.count("bias"), let channels = context.outputShape.last.flatMap({ $0 }),
            bias != channels
        {
            throw InterpreterError.badInput(
                "layer '\(context.path)': bias of \(bias) values for \(channels) output channels")
        }
    }
    public func keepingInputChannels(_ keep: [Int], _ edit: inout LayerEdit) throws {}
    public func keepingOutputChannels(_ keep: [Int], _ edit: inout LayerEdit) throws {
        throw LayerConfigError("has no output channels of its own to remove")
    }
    public func maskingInputChannels(_ removed: Set<Int>, _ edit: inout LayerEdit) throws {}
    public func maskingOutputChannels(_ removed: Set<Int>, _ edit: inout LayerEdit) throws -> Bool { false }
    public func foldedConstants(_ constants: [ConstantInput], _ weights: [String: Tensor]) throws -> FoldedBias? {
        nil
    }
    public func preActivationWeights(_ key: String) -> [WeightSlice]? { nil }

    public static var countsMACs: Bool { false }
    public var macsCounted: Bool { Self.countsMACs }
    public static var takesCallConstants: Bool { false }

    /// The (first) class name Keras saves for this kind.
    public static var canonicalName: String { classNames[0] }

    /// The weight whose `outputAxes` index the layer's output channels (pruning criteria, dead channels).
    func outputKernel(input: Shape) -> WeightSpec? {
        weights(input: input).last { $0.outputAxes != nil && $0.role != "bias" }
    }
}

/// Expects exactly one input of the given rank (batch axis excluded).
func singleInput(_ inputs: [Shape], rank: Int? = nil) throws -> Shape {
    guard inputs.count == 1 else { throw LayerConfigError("expects 1 input, got \(inputs.count)") }
    if let rank, inputs[0].count != rank {
        throw LayerConfigError(
            "expects a rank-\(rank + 1) input (batch included), got shape \(describe(inputs[0]))")
    }
    return inputs[0]
}

func describe(_ shape: Shape) -> String {
    "(None, " + shape.map { $0.map(String.init) ?? "None" }.joined(separator: ", ") + ")"
}
