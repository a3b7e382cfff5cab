/// Keras 3 operations recorded as layers. A Keras 3 functional model whose layers pass masks
/// saves the mask computation itself: `Embedding(mask_zero=True)` → `NotEqual(ids, 0)`, `Masking`
/// → `NotEqual(x, v)` then `Any(axis=-1)`, `Concatenate` → `ExpandDims`, `ZerosLike`, `LogicalOr`,
/// `Concatenate`, `Any`, merges → `LogicalOr`; the result feeds the next layers' `mask=` argument.
/// Booleans are held as 0 and 1. Constant operands (the `0` of `NotEqual(ids, 0)`) come from the
/// call's arguments.

/// `NotEqual`, `LogicalOr`: element by element, with NumPy broadcasting between two operands,
/// tensors or constants. (Only the operations Keras 3's built-in masks record are registered, each
/// with a Keras fixture; a model with others is refused by name.)
struct Comparison: LayerKind {
    static let classNames = ["NotEqual", "LogicalOr"]
    static let takesCallConstants = true
    let operation: String
    /// The operands in order: a constant, or nil for the next input tensor.
    let operands: [Float?]

    init(config: LayerConfig) throws {
        operation = config.className
        let arguments = config.callArguments.isEmpty ? [nil, nil] : config.callArguments
        guard arguments.count == 2 else {
            throw LayerConfigError("\(operation) takes 2 operands, the call gives \(arguments.count)")
        }
        operands = try arguments.map { argument in
            guard let argument else { return nil }
            if let b = argument.boolValue { return b ? 1 : 0 }
            guard let v = argument.doubleValue, v.isFinite else {
                throw LayerConfigError("operand \(argument.serialized().prefix(40)) is not a number")
            }
            return Float(v)
        }
    }

    func outputShape(_ inputs: [Shape]) throws -> Shape {
        let tensors = operands.filter { $0 == nil }.count
        guard tensors >= 1 else { throw LayerConfigError("needs at least one tensor operand") }
        guard inputs.count == tensors else {
            throw LayerConfigError("expects \(tensors) tensor operand(s), got \(inputs.count)")
        }
        // Broadcasting stays behind the batch axis only when the tensors have one rank (the masks
        // Keras records always do); otherwise it would pair examples with each other.
        guard inputs.allSatisfy({ $0.count == inputs[0].count }) else {
            throw LayerConfigError("operands of different ranks \(inputs.map(describe)) are not supported")
        }
        var shapes: [Shape] = []
        var next = 0
        for operand in operands {
            if operand == nil {
                shapes.append(inputs[next])
                next += 1
            } else {
                shapes.append([])
            }
        }
        return try broadcastShape(shapes[0], shapes[1])
    }

    func compute(_ inputs: inout [FloatArray], _ context: RunContext) throws -> FloatArray {
        var next = 0
        let values: [FloatArray] = operands.map { operand in
            if let operand { return FloatArray(shape: [], data: [operand]) }
            next += 1
            return inputs[next - 1]
        }
        let test: (Float, Float) -> Bool = operation == "NotEqual" ? { $0 != $1 } : { $0 != 0 || $1 != 0 }
        return try broadcasting(values[0], values[1], path: context.path) { test($0, $1) ? 1 : 0 }
    }
}

/// `ZerosLike`: zeros of the input's shape (Keras 3's Concatenate makes an all-kept mask from it).
struct ZerosLike: LayerKind {
    static let classNames = ["ZerosLike"]

    init(config: LayerConfig) throws {}

    func outputShape(_ inputs: [Shape]) throws -> Shape { try singleInput(inputs) }

    func compute(_ inputs: inout [FloatArray], _ context: RunContext) throws -> FloatArray {
        FloatArray(zeros: inputs[0].shape)
    }
}

/// `Any` over `axis` (an int or a list; not the batch axis), with or without `keepdims`.
struct Reduction: LayerKind {
    static let classNames = ["Any"]
    let axes: [Int]
    let keepdims: Bool

    init(config: LayerConfig) throws {
        keepdims = config.bool("keepdims", fallback: false)
        if let value = config["axis"], !value.isNull {
            let list = value.arrayValue ?? [value]
            let ints = list.compactMap { $0.intValue }
            guard ints.count == list.count, !ints.isEmpty, ints.allSatisfy({ (-64...64).contains($0) }) else {
                throw LayerConfigError("axis must be an int or a list of ints")
            }
            axes = ints
        } else {
            throw LayerConfigError("\(config.className) over every axis, the batch's too, is not supported")
        }
    }

    /// The reduced axes of a full shape (batch = 0) of `rank`.
    func reduced(rank: Int) throws -> Set<Int> {
        let resolved = axes.map { $0 < 0 ? rank + $0 : $0 }
        guard resolved.allSatisfy({ (1..<rank).contains($0) }) else {
            throw LayerConfigError("axis \(axes) out of range for rank \(rank)")
        }
        return Set(resolved)
    }

    func outputShape(_ inputs: [Shape]) throws -> Shape {
        let x = try singleInput(inputs)
        let gone = try reduced(rank: x.count + 1)
        if keepdims { return x.indices.map { gone.contains($0 + 1) ? 1 : x[$0] } }
        return x.indices.filter { !gone.contains($0 + 1) }.map { x[$0] }
    }

    func compute(_ inputs: inout [FloatArray], _ context: RunContext) throws -> FloatArray {
        let x = inputs[0]
        let gone = try reduced(rank: x.shape.count)
        let outShape = x.shape.indices.map { gone.contains($0) ? 1 : x.shape[$0] }
        var out = [Float](repeating: 0, count: outShape.reduce(1, *))
        let strides = FloatArray.strides(outShape)
        var index = [Int](repeating: 0, count: x.shape.count)
        for value in x.data {
            var o = 0
            for (axis, i) in index.enumerated() where !gone.contains(axis) { o += i * strides[axis] }
            if value != 0 { out[o] = 1 }
            FloatArray.advance(&index, shape: x.shape)
        }
        let finalShape = keepdims ? outShape : x.shape.indices.filter { !gone.contains($0) }.map { x.shape[$0] }
        return FloatArray(shape: finalShape, data: out)
    }
}

/// `ExpandDims(axis)`: a new axis of length 1.
struct ExpandDims: LayerKind {
    static let classNames = ["ExpandDims"]
    let axis: Int

    init(config: LayerConfig) throws {
        guard let a = config["axis"]?.intValue ?? config["axis"]?[0]?.intValue, (-64...64).contains(a) else {
            throw LayerConfigError("axis must be an int")
        }
        axis = a
    }

    /// Where the new axis goes in a full shape (batch = 0) of `rank` before the insertion.
    func position(rank: Int) throws -> Int {
        let p = axis < 0 ? rank + 1 + axis : axis
        guard (1...rank).contains(p) else { throw LayerConfigError("axis \(axis) out of range") }
        return p
    }

    func outputShape(_ inputs: [Shape]) throws -> Shape {
        var x = try singleInput(inputs)
        x.insert(1, at: try position(rank: x.count + 1) - 1)
        return x
    }

    func compute(_ inputs: inout [FloatArray], _ context: RunContext) throws -> FloatArray {
        let x = takeFirst(&inputs)
        var shape = x.shape
        shape.insert(1, at: try position(rank: shape.count))
        return FloatArray(shape: shape, data: x.data)
    }
}

/// NumPy's broadcast of two per-example shapes (trailing axes aligned, 1 stretches).
func broadcastShape(_ a: Shape, _ b: Shape) throws -> Shape {
    let rank = max(a.count, b.count)
    let pa = [Int?](repeating: 1, count: rank - a.count) + a
    let pb = [Int?](repeating: 1, count: rank - b.count) + b
    return try zip(pa, pb).map { x, y in
        if x == 1 { return y }
        if y == 1 || x == y { return x }
        if x == nil || y == nil { return x ?? y }
        throw LayerConfigError("shapes \(describe(a)) and \(describe(b)) do not broadcast")
    }
}

/// `f` applied to `a` and `b` broadcast against each other (full shapes, batch included).
func broadcasting(_ a: FloatArray, _ b: FloatArray, path: String, _ f: (Float, Float) -> Float) throws
    -> FloatArray
{
    let rank = max(a.shape.count, b.shape.count)
    let sa = [Int](repeating: 1, count: rank - a.shape.count) + a.shape
    let sb = [Int](repeating: 1, count: rank - b.shape.count) + b.shape
    var shape: [Int] = []
    for (x, y) in zip(sa, sb) {
        guard x == y || x == 1 || y == 1 else {
            throw InterpreterError.badInput("layer '\(path)': shapes \(a.shape) and \(b.shape) do not broadcast")
        }
        shape.append(max(x, y))
    }
    let (stridesA, stridesB) = (FloatArray.strides(sa), FloatArray.strides(sb))
    var out = [Float](repeating: 0, count: shape.reduce(1, *))
    var index = [Int](repeating: 0, count: rank)
    for o in out.indices {
        var (ia, ib) = (0, 0)
        for axis in 0..<rank {
            if sa[axis] != 1 { ia += index[axis] * stridesA[axis] }
            if sb[axis] != 1 { ib += index[axis] * stridesB[axis] }
        }
        out[o] = f(a.data[ia], b.data[ib])
        FloatArray.advance(&index, shape: shape)
    }
    return FloatArray(shape: shape, data: out)
}

extension FloatArray {
    /// Row-major strides of `shape`.
    static func strides(_ shape: [Int]) -> [Int] {
        var strides = [Int](repeating: 1, count: shape.count)
        for i in stride(from: shape.count - 2, through: 0, by: -1) { strides[i] = strides[i + 1] * shape[i + 1] }
        return strides
    }

    /// The next index of `shape` in row-major order.
    static func advance(_ index: inout [Int], shape: [Int]) {
        var axis = shape.count - 1
        while axis >= 0 {
            index[axis] += 1
            if index[axis] < shape[axis] { return }
            index[axis] = 0
            axis -= 1
        }
    }
}
