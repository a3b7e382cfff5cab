/// Layers that combine several inputs.

/// `Add`, `Subtract`, `Multiply`, `Average`, `Maximum`, `Minimum`: element by element, with
/// broadcasting of size-1 dimensions in shape inference (the interpreter needs equal shapes).
struct Merge: LayerKind {
    enum Operation: String, Sendable {
        case add = "Add"
        case subtract = "Subtract"
        case multiply = "Multiply"
        case average = "Average"
        case maximum = "Maximum"
        case minimum = "Minimum"
    }

    static let classNames = ["Add", "Subtract", "Multiply", "Average", "Maximum", "Minimum"]
    let operation: Operation

    init(config: LayerConfig) throws {
        guard let op = Operation(rawValue: config.className) else {
            throw LayerConfigError("is not a merge Pare knows")
        }
        operation = op
    }

    func outputShape(_ inputs: [Shape]) throws -> Shape {
        guard operation == .subtract ? inputs.count == 2 : inputs.count >= 2 else {
            throw LayerConfigError(
                operation == .subtract ? "Subtract takes exactly 2 inputs" : "merges need at least 2 inputs")
        }
        guard inputs.allSatisfy({ $0.count == inputs[0].count }) else {
            throw LayerConfigError("inputs of different ranks: \(inputs.map(describe))")
        }
        return (0..<inputs[0].count).map { axis in
            inputs.compactMap { $0[axis] }.filter { $0 != 1 }.first ?? inputs[0][axis]
        }
    }

    func channelFlow(input: Shape, output: Shape) -> ChannelFlow { ChannelFlow(.merges) }

    func compute(_ inputs: inout [FloatArray], _ context: RunContext) throws -> FloatArray {
        var y = takeFirst(&inputs)
        let rest = inputs.dropFirst()
        guard rest.allSatisfy({ $0.shape == y.shape }) else {
            throw InterpreterError.unsupported(
                "\(operation.rawValue) of differently shaped inputs \([y.shape] + rest.map(\.shape)) (layer "
                    + "'\(context.path)')"
            )
        }
        let operation = self.operation
        y.data.withUnsafeMutableBufferPointer { p in
            for other in rest {
                other.data.withUnsafeBufferPointer { q in
                    Parallel.chunks(p.count, minimumPerChunk: 1 << 16) { r in
                        switch operation {
                        case .add, .average: for i in r { p[i] += q[i] }
                        case .subtract: for i in r { p[i] -= q[i] }
                        case .multiply: for i in r { p[i] *= q[i] }
                        case .maximum: for i in r { p[i] = propagatingMax(p[i], q[i]) }
                        case .minimum: for i in r { p[i] = p[i].isNaN || q[i].isNaN ? .nan : min(p[i], q[i]) }
                        }
                    }
                }
            }
            if operation == .average { for i in p.indices { p[i] /= Float(rest.count + 1) } }
        }
        return y
    }
}

/// `Concatenate(axis)`: axis as Keras counts it (negative from the end, positive including the batch).
struct Concatenate: LayerKind {
    static let classNames = ["Concatenate"]
    let axis: Int

    init(config: LayerConfig) throws {
        guard let a = config["axis"] == nil ? -1 : config["axis"]?.intValue, (-64...64).contains(a), a != 0 else {
            throw LayerConfigError("axis out of range")
        }
        axis = a
    }

    /// The axis in a per-example shape of `rank`.
    func axisIndex(rank: Int) -> Int { axis < 0 ? rank + axis : axis - 1 }

    func outputShape(_ inputs: [Shape]) throws -> Shape {
        guard inputs.count >= 1, inputs.allSatisfy({ $0.count == inputs[0].count }) else {
            throw LayerConfigError("inputs of different ranks")
        }
        let r = inputs[0].count
        let a = axisIndex(rank: r)
        guard a >= 0, a < r else { throw LayerConfigError("axis out of range") }
        for other in inputs.dropFirst() {
            for d in 0..<r where d != a {
                if let x = inputs[0][d], let y = other[d], x != y {
                    throw LayerConfigError("inputs \(inputs.map(describe)) differ off the axis")
                }
            }
        }
        var out = inputs[0]
        out[a] = inputs.contains(where: { $0[a] == nil }) ? nil : ShapeMath.sum(inputs.map { $0[a] })
        return out
    }

    func channelFlow(input: Shape, output: Shape) -> ChannelFlow {
        ChannelFlow(.concatenates(onChannels: axisIndex(rank: output.count) == output.count - 1))
    }

    func compute(_ inputs: inout [FloatArray], _ context: RunContext) throws -> FloatArray {
        ShapeKernels.concatenate(inputs, axis: axisIndex(rank: inputs[0].shape.count - 1) + 1)
    }
}
