import Dispatch

/// Runs a `Model` on float32 inputs, as Keras's `predict` would: NHWC, inference mode (dropout
/// and noise off, BatchNormalization on its moving statistics).
public final class Interpreter {
    public let architecture: Architecture
    /// Model inputs: name and per-example shape.
    public let inputs: [(name: String, shape: Shape)]
    public let outputNames: [String]
    private let ops: [String: LayerOp]
    private let file: String
    /// Seconds spent per layer path over all runs, collected when `profiling` is on.
    public var profiling = false
    public private(set) var layerSeconds: [String: Double] = [:]
    /// Called after each layer call with its path, inputs and output (calibration statistics, folding).
    public var observer: ((String, [FloatArray], FloatArray) -> Void)?

    public init(_ model: Model) throws {
        file = model.sourcePath
        let checked = try CheckedModel(model)
        guard let arch = checked.architecture, let analysis = checked.analysis else {
            throw PareError(file: model.sourcePath, "a weights-only file has no architecture to run")
        }
        if let problem = analysis.problems.first {
            throw PareError(file: model.sourcePath, object: "layer '\(problem.layer)' (\(problem.className))",
                            "\(problem.reason); Pare's interpreter cannot run this model")
        }
        architecture = arch
        let major = Int(model.kerasVersion?.split(separator: ".").first ?? "3") ?? 3
        var ops: [String: LayerOp] = [:]
        for (path, node) in arch.allLayers() where node.nested == nil && node.className != "InputLayer" {
            guard let output = analysis.calls(of: path).first?.output else {
                throw PareError(file: model.sourcePath, object: "layer '\(path)'", "its output shape cannot be inferred")
            }
            do {
                ops[path] = try LayerOp(path: path, node: node, weights: checked.weightsByRole(path), outputShape: output, kerasMajor: major)
            } catch let error as InterpreterError {
                throw PareError(file: model.sourcePath, object: "layer '\(path)' (\(node.className))", "\(error)")
            }
        }
        self.ops = ops
        inputs = arch.inputs.map { ($0.layer, arch.inputShapes[$0.layer] ?? []) }
        outputNames = arch.outputs.map { $0.layer }
    }

    /// Runs the whole batch at once.
    public func run(_ values: [FloatArray]) throws -> [FloatArray] {
        guard values.count == inputs.count else {
            throw PareError(file: file, "the model has \(inputs.count) input(s) (\(inputs.map(\.name).joined(separator: ", "))), \(values.count) given")
        }
        for (value, input) in zip(values, inputs) {
            let expected = input.shape
            let matches = value.shape.count == expected.count + 1
                && zip(value.shape.dropFirst(), expected).allSatisfy { have, want in want == nil || want == have }
            guard matches else {
                throw PareError(file: file, object: "input '\(input.name)'",
                                "has shape \(value.shape), the model expects \(describe(expected))")
            }
            guard value.batch > 0 else { throw PareError(file: file, object: "input '\(input.name)'", "the batch is empty") }
            guard value.batch == values[0].batch else {
                throw PareError(file: file, object: "input '\(input.name)'", "batch of \(value.batch) differs from the first input's \(values[0].batch)")
            }
        }
        do {
            return try evaluate(architecture, inputs: values, prefix: "")
        } catch let error as InterpreterError {
            throw PareError(file: file, "\(error)")
        }
    }

    /// Runs in batches of `batchSize` examples (bounding memory) and joins the results.
    public func run(_ values: [FloatArray], batchSize: Int) throws -> [FloatArray] {
        let n = values.first?.batch ?? 0
        guard batchSize > 0, n > batchSize else { return try run(values) }
        var parts: [[FloatArray]] = []
        var start = 0
        while start < n {
            let range = start..<min(n, start + batchSize)
            parts.append(try run(values.map { $0.slice(range) }))
            start = range.upperBound
        }
        return (0..<parts[0].count).map { i in FloatArray.joined(parts.map { $0[i] }) }
    }

    private func evaluate(_ arch: Architecture, inputs given: [FloatArray], prefix: String) throws -> [FloatArray] {
        var values: [TensorRef: FloatArray] = [:]
        for (ref, value) in zip(arch.inputs, given) { values[ref] = value }
        // Uses left of each value: when the last consumer takes it, it leaves the table, so a
        // layer that works in place (activations, BatchNormalization, merges) owns its input.
        var usesLeft: [TensorRef: Int] = [:]
        for layer in arch.layers { for refs in layer.calls { for ref in refs { usesLeft[ref, default: 0] += 1 } } }
        for ref in arch.outputs { usesLeft[ref, default: 0] += 1 }
        for (layer, call) in arch.callOrder {
            var args: [FloatArray] = []
            for ref in layer.calls[call] {
                guard let value = values[ref] else { throw InterpreterError.badInput("input \(ref) of '\(prefix + layer.name)' was never computed") }
                usesLeft[ref]! -= 1
                args.append(usesLeft[ref]! == 0 ? values.removeValue(forKey: ref)! : value)
            }
            let path = prefix + layer.name
            let outputs: [FloatArray]
            if let nested = layer.nested {
                outputs = try evaluate(nested, inputs: args, prefix: path + "/")
            } else {
                guard let op = ops[path] else { throw InterpreterError.unsupported("layer '\(path)' (\(layer.className))") }
                if let empty = args.first(where: { $0.count == 0 }) {
                    throw InterpreterError.badInput("layer '\(path)' receives an empty tensor of shape \(empty.shape)")
                }
                let start = profiling ? DispatchTime.now().uptimeNanoseconds : 0
                let output = try op.run(args)
                if profiling { layerSeconds[path, default: 0] += Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9 }
                observer?(path, args, output)
                outputs = [output]
            }
            for (t, output) in outputs.enumerated() {
                let ref = TensorRef(layer: layer.name, node: call, tensor: t)
                if usesLeft[ref, default: 0] > 0 { values[ref] = output }
            }
        }
        return try arch.outputs.map { ref in
            guard let v = values[ref] else { throw InterpreterError.badInput("output \(ref) was never computed") }
            return v
        }
    }
}
