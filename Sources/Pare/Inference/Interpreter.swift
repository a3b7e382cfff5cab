import Dispatch
import Foundation

/// One input of a model: its input layer's name and the per-example shape it takes.
public struct ModelInput: Sendable {
    public var name: String
    public var shape: Shape
    /// For an input that feeds an Embedding: ids must be whole numbers below this (the smallest
    /// `input_dim` it feeds), so generated inputs are drawn from them.
    public var idLimit: Int?

    /// The inputs of `arch`, in order.
    static func of(_ arch: Architecture) -> [ModelInput] {
        arch.inputs.map { ref in
            let limits = arch.layers.filter { $0.calls.contains { $0.first == ref } }.compactMap {
                ($0.layerKind as? Embedding)?.inputDim
            }
            return ModelInput(name: ref.layer, shape: arch.inputShapes[ref.layer] ?? [], idLimit: limits.min())
        }
    }
}

/// Runs a `Model` on float32 inputs, as Keras's `predict` would: NHWC, inference mode (dropout
/// and noise off, BatchNormalization on its moving statistics).
public final class Interpreter {
    public let architecture: Architecture
    /// Model inputs: name and per-example shape.
    public let inputs: [ModelInput]
    public let outputNames: [String]
    let ops: [String: LayerOp]
    private let file: String
    /// Seconds spent per layer path over all runs, collected when `profiling` is on.
    public var profiling = false
    public private(set) var layerSeconds: [String: Double] = [:]
    /// Called after each layer call with its path, inputs and output (calibration statistics, folding).
    public var observer: ((String, [FloatArray], FloatArray) -> Void)?
    /// Called before each layer call with its path, inputs, their masks and its weights (criteria
    /// that look inside a layer, such as attention heads).
    public var callObserver: ((String, [FloatArray], [StepMask?], RunContext) -> Void)?
    /// Bytes one example needs at most: every layer's output held at once, plus each convolution's
    /// im2col matrix (an upper bound: values are freed after their last use). nil if it overflows.
    public let bytesPerExample: Int?
    /// The layer call with the largest output, named when one example does not fit the budget.
    private let largestCall: String
    /// Values in the largest layer output or im2col matrix of one example.
    private let largestElements: Int
    /// Values in all model outputs of one example (nil if unknown); shape inference is not re-run per step.
    private let outputElementsPerExample: Int?

    /// Whether each layer's weights are read when it runs and released after, rather than held as
    /// float32 while the interpreter lives (models whose float32 weights pass `residentWeightLimit`).
    public let streamsWeights: Bool
    /// Float32 weights up to this size stay resident (every batch reuses them); a larger model streams
    /// its weights, so its peak memory is one layer's weights plus the activations, not the model.
    public static let residentWeightLimit = 256 << 20

    /// The model, kept when its config leaves dimensions open: it is specialized to each batch's shapes.
    private let model: Model
    private let needsConcreteShapes: Bool
    /// The major version of the Keras that wrote the file (some layers' side effects differ).
    private var kerasMajor = 3
    private var specialized: (shapes: [[Int]], interpreter: Interpreter)?
    /// The order of the model's calls, and the part of it that runs tile by tile (`TiledRun.swift`):
    /// none when weights stream (each tile would read them again).
    private let topOrder: [CallSite]
    lazy var tilePlan: TilePlan? = streamsWeights ? nil : Self.tilePlan(order: topOrder, ops: ops)
    /// Convolutions with the layers folded into them (`LayerFusion.swift`), and the layers folded.
    let fusions: [String: Fusion]
    /// Concatenations pooled part by part into the MaxPooling2D after them (`LayerFusion.swift`).
    let pooledConcatenations: [String: PooledConcatenation]
    /// Whether no hook looks at each layer's values: only then do top-level calls run fused and tiled.
    var unobserved: Bool { observer == nil && callObserver == nil && !profiling }
    /// Steps that ran tile by tile (tests check which path ran).
    private(set) var tiledSteps = 0
    /// Calls of Concatenate pooled part by part (tests check that the fold ran); tiles count from every
    /// core, under the lock.
    private(set) var pooledConcatenationCalls = 0
    private let countLock = NSLock()

    /// `streamingWeights` forces the choice `residentWeightLimit` otherwise makes (tests run small models
    /// both ways and compare).
    public convenience init(_ model: Model, streamingWeights: Bool? = nil) throws {
        try self.init(model, inputShapes: nil, streamingWeights: streamingWeights)
    }

    /// With `inputShapes` (per input layer, without the batch axis) the config's open dimensions are
    /// fixed, every weight is checked against the concrete shapes, and every shape must be known:
    /// kernels then index only memory whose size they have been told.
    private init(_ model: Model, inputShapes: [String: [Int?]]?, streamingWeights: Bool?) throws {
        file = model.sourcePath
        self.model = model
        let checked = try CheckedModel(model, inputShapes: inputShapes)
        guard let arch = checked.architecture, let analysis = checked.analysis else {
            throw PareError(file: model.sourcePath, "a weights-only file has no architecture to run")
        }
        if let error = analysis.unsupportedError(
            file: model.sourcePath, consequence: "Pare's interpreter cannot run this model")
        {
            throw error
        }
        if let uneven = analysis.unevenlySharedLayers.sorted(by: { $0.key < $1.key }).first {
            throw PareError(
                file: model.sourcePath, object: "layer '\(uneven.key)'",
                uneven.value + "; Pare's interpreter runs a shared layer only when its calls have the same shapes")
        }
        architecture = arch
        let allWeights = ShapeMath.product([model.parameterCount, 4])
        streamsWeights =
            streamingWeights ?? allWeights.map { $0 > min(Self.residentWeightLimit, MemoryBudget.limit / 4) } ?? true
        if !streamsWeights {
            try MemoryBudget.require(allWeights, for: "the model's weights as float32", file: model.sourcePath)
        }
        let openCall = analysis.calls.first { call in
            call.output.map { $0.contains(nil) } ?? true || call.inputs.contains { $0.contains(nil) }
        }
        needsConcreteShapes = openCall != nil
        if let openCall, inputShapes != nil {
            throw PareError(
                file: model.sourcePath, object: "layer '\(openCall.path)' (\(openCall.className))",
                "its shapes stay unknown even for this batch (inputs \(openCall.inputs.map(describe)))")
        }
        let major = Int(model.kerasVersion?.split(separator: ".").first ?? "3") ?? 3
        kerasMajor = major
        var ops: [String: LayerOp] = [:]
        for entry in arch.allLayers() where entry.layer.nested == nil && !entry.layer.isInput && !needsConcreteShapes {
            let (path, node) = (entry.path, entry.layer)
            guard let output = analysis.calls(of: path).first?.output else {
                throw PareError(
                    file: model.sourcePath, object: "layer '\(path)'", "its output shape cannot be inferred")
            }
            let weights = checked.weightsByRole(path)
            if streamsWeights {
                // A streamed layer's weights are read (stored bytes) and converted (float32) at once.
                let values = ShapeMath.sum(weights.values.map { $0.tensor.count })
                try MemoryBudget.require(
                    values.flatMap { ShapeMath.product([$0, 8]) }, for: "the weights of one layer as it runs",
                    file: model.sourcePath, object: "layer '\(path)'")
            }
            do {
                ops[path] = try LayerOp(
                    path: path, node: node, weights: weights, outputShape: output, kerasMajor: major,
                    residentWeights: !streamsWeights)
            } catch let error as InterpreterError {
                throw PareError(file: model.sourcePath, object: "layer '\(path)' (\(node.className))", "\(error)")
            }
        }
        self.ops = ops
        topOrder = Self.executionOrder(arch, kerasMajor: major)
        fusions = Self.fusions(arch, ops: ops, order: topOrder)
        pooledConcatenations = Self.pooledConcatenations(arch, ops: ops)
        (bytesPerExample, largestCall, largestElements) = Self.memoryPerExample(analysis)
        outputElementsPerExample = Self.outputElements(analysis)
        inputs = ModelInput.of(arch)
        outputNames = arch.outputs.map { $0.layer }
    }

    /// Runs one step: the whole of `values` at once (callers go through `run(_:batchSize:)`,
    /// which sizes steps to the memory budget).
    private func runStep(_ values: [FloatArray]) throws -> [FloatArray] {
        guard values.count == inputs.count else {
            throw PareError(
                file: file,
                "the model has \(inputs.count) input(s) "
                    + "(\(inputs.map(\.name).joined(separator: ", "))), \(values.count) given"
            )
        }
        for (value, input) in zip(values, inputs) {
            let expected = input.shape
            let matches =
                value.shape.count == expected.count + 1
                && zip(value.shape.dropFirst(), expected).allSatisfy { have, want in want == nil || want == have }
            guard matches else {
                throw PareError(
                    file: file, object: "input '\(input.name)'",
                    "has shape \(value.shape), the model expects \(describe(expected))")
            }
            guard value.batch > 0 else {
                throw PareError(file: file, object: "input '\(input.name)'", "the batch is empty")
            }
            guard value.batch == values[0].batch else {
                throw PareError(
                    file: file, object: "input '\(input.name)'",
                    "batch of \(value.batch) differs from the first input's \(values[0].batch)")
            }
        }
        if needsConcreteShapes {
            let concrete = try specializedInterpreter(for: values)
            concrete.observer = observer
            concrete.callObserver = callObserver
            concrete.profiling = profiling
            defer {
                for (path, seconds) in concrete.layerSeconds { layerSeconds[path, default: 0] += seconds }
                concrete.layerSeconds = [:]
            }
            return try concrete.runStep(values)
        }
        do {
            // The tiled run leaves the per-layer hooks out (they see whole batches).
            if unobserved, let plan = tilePlan,
                values[0].batch >= 2 * plan.examples,
                let outputs = try runTiled(architecture, order: topOrder, plan: plan, inputs: values)
            {
                tiledSteps += 1
                return outputs
            }
            return try evaluate(architecture, inputs: values, prefix: "")
        } catch let error as InterpreterError {
            throw PareError(file: file, "\(error)")
        }
    }

    /// This model with its open dimensions fixed to those of `values` (cached for the next batch).
    private func specializedInterpreter(for values: [FloatArray]) throws -> Interpreter {
        let shapes = values.map { Array($0.shape.dropFirst()) }
        if let specialized, specialized.shapes == shapes { return specialized.interpreter }
        let given = Dictionary(
            zip(inputs.map(\.name), shapes.map { $0.map(Optional.some) }), uniquingKeysWith: { a, _ in a })
        let concrete = try Interpreter(model, inputShapes: given, streamingWeights: streamsWeights)
        specialized = (shapes, concrete)
        return concrete
    }

    /// Runs in batches of at most `batchSize` examples, fewer when the memory budget needs it
    /// (activations of one step take at most half the budget), and joins the results.
    public func run(_ values: [FloatArray], batchSize: Int = .max) throws -> [FloatArray] {
        let n = values.first?.batch ?? 0
        let planner =
            needsConcreteShapes && values.count == inputs.count ? try specializedInterpreter(for: values) : self
        let batchSize = try planner.stepSize(requested: batchSize, examples: n)
        guard batchSize > 0, n > batchSize else { return try runStep(values) }
        var parts: [[FloatArray]] = []
        var start = 0
        while start < n {
            let range = start..<min(n, start + batchSize)
            parts.append(try runStep(values.map { $0.slice(range) }))
            start = range.upperBound
        }
        return (0..<parts[0].count).map { i in FloatArray.joined(parts.map { $0[i] }) }
    }

    /// Throws unless `examples` examples can run within the memory budget (one at a time if need be):
    /// checked before inputs are made or read for them.
    public func requireFits(examples: Int) throws {
        guard !needsConcreteShapes else { return }
        _ = try stepSize(requested: .max, examples: examples)
    }

    /// The examples per step that fit the memory budget; throws when one example does not fit, or
    /// the outputs of all of them would not.
    func stepSize(requested: Int, examples: Int) throws -> Int {
        let budget = MemoryBudget.limit
        guard let perExample = bytesPerExample else {
            try MemoryBudget.require(nil, for: "running one example", file: file)
            return 1
        }
        try MemoryBudget.require(
            perExample, for: "running one example (largest layer output: \(largestCall))", file: file)
        let outputBytes = outputElementsPerExample.flatMap { per in
            per.multipliedReportingOverflow(by: max(1, examples)).overflow ? nil : per * max(1, examples)
        }.flatMap { $0.multipliedReportingOverflow(by: 4).overflow ? nil : $0 * 4 }
        try MemoryBudget.require(outputBytes, for: "the outputs of \(examples) examples", file: file)
        // OpenBLAS takes 32-bit sizes: one step's largest matrix must stay below 2^31 values.
        guard largestElements < Int(Int32.max) else {
            throw PareError(
                file: file,
                "layer \(largestCall) has \(largestElements) values per example; Pare's interpreter handles up to 2^31")
        }
        let gemmCap = Int(Int32.max) / max(1, largestElements)
        return max(1, min(requested, budget / 2 / max(1, perExample), gemmCap))
    }

    /// Output elements of one example (nil if a dimension is unknown or the count overflows).
    static func outputElements(_ analysis: GraphAnalysis) -> Int? {
        ShapeMath.sum(analysis.outputs.map { shape in shape.flatMap { ShapeMath.product($0.map { $0 ?? 1 }) } })
    }

    static func memoryPerExample(_ analysis: GraphAnalysis) -> (Int?, String, Int) {
        var total = 0
        var largest = (elements: 0, path: "")
        var widest = 0
        for call in analysis.calls {
            guard call.output != nil else { continue }
            // Every output a call makes (a recurrent layer's states too) is held.
            let counts = call.outputs.map { shape in shape.flatMap { ShapeMath.product($0.map { $0 ?? 1 }) } }
            guard let elements = ShapeMath.sum(counts.isEmpty ? [0] : counts) else { return (nil, call.path, Int.max) }
            if elements > largest.elements { largest = (elements, call.path) }
            let im2col = call.scratchElements
            widest = max(widest, elements, im2col)
            guard let scratch = ShapeMath.sum([elements, im2col]), let bytes = ShapeMath.product([scratch, 4]) else {
                return (nil, call.path, Int.max)
            }
            let (sum, o) = total.addingReportingOverflow(bytes)
            if o { return (nil, call.path, Int.max) }
            total = sum
        }
        let shapeText = analysis.calls.first { $0.path == largest.path }?.output.map(describe) ?? "?"
        return (total, "'\(largest.path)' \(shapeText)", widest)
    }

    private func evaluate(_ arch: Architecture, inputs given: [FloatArray], prefix: String) throws -> [FloatArray] {
        try evaluate(arch, inputs: given, masks: given.map { _ in nil }, prefix: prefix).values
    }

    /// Runs `arch` on `given` whose masks are `givenMasks` (a nested model receives its caller's
    /// masks, as in Keras), returning the outputs and their masks.
    private func evaluate(
        _ arch: Architecture, inputs given: [FloatArray], masks givenMasks: [StepMask?], prefix: String
    ) throws -> LayerResult {
        var state = GraphState(arch, inputs: given, masks: givenMasks)
        try run(executionOrder(arch)[...], in: &state, prefix: prefix)
        return try state.outputs(of: arch)
    }

    /// The order calls of `arch` run in.
    func executionOrder(_ arch: Architecture) -> [CallSite] { Self.executionOrder(arch, kerasMajor: kerasMajor) }

    static func executionOrder(_ arch: Architecture, kerasMajor: Int) -> [CallSite] {
        // Keras 3's MultiHeadAttention clears its inputs' masks as it runs: other consumers of those
        // tensors see them or not depending on Keras's order, which is then followed.
        let clearsMasks =
            kerasMajor >= 3
            && arch.layers.contains { !($0.layerKind?.keras3ClearedInputMasks.isEmpty ?? true) }
        return clearsMasks ? arch.kerasExecutionOrder : arch.callOrder
    }

    /// Runs the calls `sites` (in order, a part of `executionOrder`) on the values of `state`.
    func run(_ sites: ArraySlice<CallSite>, in state: inout GraphState, prefix: String) throws {
        let fusing = prefix.isEmpty && unobserved
        for site in sites {
            let (layer, call) = (site.layer, site.call)
            // A layer folded into the convolution before it: that call computed its output.
            if state.folded.contains(layer.name) { continue }
            var args: [FloatArray] = []
            var argMasks: [StepMask?] = []
            func take(_ ref: TensorRef) throws -> FloatArray {
                guard let value = state.values[ref] else {
                    throw InterpreterError.badInput("input \(ref) of '\(prefix + layer.name)' was never computed")
                }
                state.usesLeft[ref]! -= 1
                if state.usesLeft[ref]! == 0 { state.masks[ref] = nil }
                return state.usesLeft[ref]! == 0 ? state.values.removeValue(forKey: ref)! : value
            }
            for ref in layer.calls[call] {
                argMasks.append(state.masks[ref])
                args.append(try take(ref))
            }
            // Keras 3 records the mask a call received as its `mask=` argument: that tensor decides,
            // for the call's first input (built-in layers take one mask: recurrent layers, wrappers,
            // GlobalAveragePooling1D). It must have that input's shape without the last axis.
            if call < layer.callMasks.count, let maskRef = layer.callMasks[call] {
                let explicit = try take(maskRef)
                guard let first = args.first, explicit.shape == Array(first.shape.dropLast()) else {
                    let input = args.first?.shape ?? []
                    throw InterpreterError.badInput(
                        "layer '\(prefix + layer.name)': its mask \(maskRef) has shape \(explicit.shape); its input "
                            + "\(input) needs \(Array(input.dropLast()))")
                }
                argMasks =
                    [StepMask(shape: explicit.shape, keep: explicit.data.map { $0 != 0 })]
                    + args.dropFirst().map { _ in nil }
            }
            let path = prefix + layer.name
            if fusing, let pooled = pooledConcatenations[path], argMasks.allSatisfy({ $0 == nil }),
                args.allSatisfy({ $0.count > 0 }), let poolingOp = ops[pooled.pooling],
                let value = (poolingOp.kind as? Pooling)?.maxPooled(concatenating: args),
                poolingOp.hasOutputShape(value)
            {
                state.folded.insert(pooled.pooling)
                if state.usesLeft[pooled.output, default: 0] > 0 { state.values[pooled.output] = value }
                countLock.withLock { pooledConcatenationCalls += 1 }
                continue
            }
            // A mask on the Add's other tensor would be the Add's output mask: that Add runs on its own.
            let fusion =
                fusing ? fusions[path].flatMap { f in f.residual.flatMap { state.masks[$0] } == nil ? f : nil } : nil
            if let fusion { state.folded.formUnion(fusion.folded) }
            let result: LayerResult
            if let nested = layer.nested {
                result = try evaluate(nested, inputs: args, masks: argMasks, prefix: path + "/")
            } else {
                guard let op = ops[path] else {
                    throw InterpreterError.unsupported("layer '\(path)' (\(layer.className))")
                }
                if let empty = args.first(where: { $0.count == 0 }) {
                    throw InterpreterError.badInput("layer '\(path)' receives an empty tensor of shape \(empty.shape)")
                }
                let start = profiling ? DispatchTime.now().uptimeNanoseconds : 0
                // Streamed weights are read here and released when the call is done.
                let context = try op.context()
                callObserver?(path, args, argMasks, context)
                // The arguments pass to the layer (an in-place layer then writes into its input without
                // a copy) unless the observer still needs them.
                let observed = observer == nil ? [] : args
                var fused = Epilogue()
                if let fusion {
                    // The Add's other tensor is taken here, where the Add would have taken it.
                    let residual = try fusion.residual.map(take)
                    let shape = [args.first?.batch ?? 0] + (op.outputShape.allKnown ?? [])
                    fused = try epilogue(of: fusion, residual: residual, outputShape: shape)
                }
                result = try op.run(consume args, masks: argMasks, context: context, fused: fused)
                if kerasMajor >= 3 {
                    for i in op.kind.keras3ClearedInputMasks where i < layer.calls[call].count {
                        state.masks[layer.calls[call][i]] = nil
                    }
                }
                if profiling {
                    layerSeconds[path, default: 0] += Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
                }
                if let observer, let first = result.values.first { observer(path, observed, first) }
            }
            for (t, output) in result.values.enumerated() {
                let ref = fusion?.output ?? TensorRef(layer: layer.name, node: call, tensor: t)
                if state.usesLeft[ref, default: 0] > 0 {
                    state.values[ref] = output
                    if t < result.masks.count, let mask = result.masks[t] { state.masks[ref] = mask }
                }
            }
        }
    }
}

/// The values of one evaluation of a graph as it goes: those computed and still to be used, their
/// masks, and how many uses each has left.
struct GraphState {
    var values: [TensorRef: FloatArray] = [:]
    var masks: [TensorRef: StepMask] = [:]
    /// When the last consumer takes a value, it leaves the table, so a layer that works in place
    /// (activations, BatchNormalization, merges) owns its input.
    var usesLeft: [TensorRef: Int] = [:]
    /// Layers whose output a convolution computed with its own (`LayerFusion.swift`): their calls are
    /// skipped.
    var folded: Set<String> = []

    init(_ arch: Architecture, inputs given: [FloatArray], masks givenMasks: [StepMask?]) {
        for (i, (ref, value)) in zip(arch.inputs, given).enumerated() {
            values[ref] = value
            if i < givenMasks.count, let mask = givenMasks[i] { masks[ref] = mask }
        }
        for layer in arch.layers {
            for call in layer.calls.indices {
                for ref in layer.dependencies(ofCall: call) { usesLeft[ref, default: 0] += 1 }
            }
        }
        for ref in arch.outputs { usesLeft[ref, default: 0] += 1 }
    }

    init(values: [TensorRef: FloatArray], usesLeft: [TensorRef: Int], folded: Set<String>) {
        self.values = values
        self.usesLeft = usesLeft
        self.folded = folded
    }

    /// The outputs of `arch` and their masks, once every call has run.
    func outputs(of arch: Architecture) throws -> LayerResult {
        let outputs = try arch.outputs.map { ref in
            guard let v = values[ref] else { throw InterpreterError.badInput("output \(ref) was never computed") }
            return v
        }
        return LayerResult(values: outputs, masks: arch.outputs.map { masks[$0] })
    }
}
