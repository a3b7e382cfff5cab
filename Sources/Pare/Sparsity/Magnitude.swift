/// Magnitude sparsification: zero the smallest-|w| elements of kernels (never biases or
/// BatchNormalization statistics), per tensor or against one global threshold. In a plain tensor
/// file, the kernels are the floating-point tensors of rank 2 or more.
public enum MagnitudeSparsifier {
    public static let kernelRoles: Set<String> = ["kernel", "depthwise_kernel", "pointwise_kernel"]

    /// The sparsified model and, per kernel touched, the zeros it now has.
    public struct Sparsified {
        public var model: Model
        public var rows: [Row]
    }

    public struct Row: Sendable {
        public var layer: String
        public var weight: String
        public var zeros: Int
        public var count: Int
        /// How the zeros were chosen: `magnitude`, `wanda`, or `wanda + reconstruct`.
        public var criterion = "magnitude"
        /// With reconstruction: ‖XW − Y‖ / ‖Y‖ on the calibration data, zeroed as the criterion alone
        /// would zero the original weights, and as reconstructed.
        public var errorBefore: Double?
        public var errorAfter: Double?
        public var sparsity: Double { count == 0 ? 0 : Double(zeros) / Double(count) }
    }

    /// Returns the sparsified model and, per kernel touched, the achieved zeros.
    public static func sparsify(_ model: Model, sparsity: Double, global: Bool, layers: Set<String>?) throws
        -> Sparsified
    {
        guard sparsity >= 0, sparsity < 1 else { throw SelectionError(option: "sparsity", "must be in [0, 1)") }
        if model.kind == .tensors {
            return try sparsifyTensors(model, sparsity: sparsity, global: global, layers: layers)
        }
        return try run(model, try targets(model, layers: layers), sparsity: sparsity, global: global)
    }

    /// The floating-point kernels of a model's layers (only `layers`' when given).
    static func targets(_ model: Model, layers: Set<String>?) throws -> [Target] {
        if let layers {
            let known = Set(model.layers.map(\.name)).union(model.layers.flatMap { $0.weights.compactMap(\.ownerName) })
            if let unknown = layers.subtracting(known).first {
                throw SelectionError(option: "layers", ": no layer named '\(unknown)'")
            }
        }
        var targets: [Target] = []
        for (l, layer) in model.layers.enumerated() {
            for (w, weight) in layer.weights.enumerated()
            where kernelRoles.contains(weight.role) && weight.tensor.dtype.isFloatingPoint {
                if let layers, !layers.contains(layer.name), !(weight.ownerName.map(layers.contains) ?? false) {
                    continue
                }
                targets.append(
                    Target(slot: .weight(l, w), layer: layer.name, weight: weight.name, tensor: weight.tensor))
            }
        }
        return targets
    }

    /// Where a target tensor lives: a layer's weight, or a dataset of a plain tensor file (by path).
    enum Slot {
        case weight(Int, Int)
        case dataset([String])
    }

    /// A kernel to sparsify; its values are read when it is ranked (a model read from a file holds none).
    struct Target {
        var slot: Slot
        var layer: String
        var weight: String
        var tensor: Tensor
    }

    static func sparsifyTensors(_ model: Model, sparsity: Double, global: Bool, layers: Set<String>?) throws
        -> Sparsified
    {
        let all = model.rootExtras.flatMap { $0.datasets() }
        if let layers,
            let unknown = layers.first(where: { name in
                !all.contains { $0.path == name || $0.path.hasPrefix(name + "/") }
            })
        {
            throw SelectionError(option: "layers", ": no tensor or group named '\(unknown)'")
        }
        var targets: [Target] = []
        for dataset in all where dataset.tensor.dtype.isFloatingPoint && dataset.tensor.shape.count >= 2 {
            let (path, tensor) = (dataset.path, dataset.tensor)
            if let layers, !layers.contains(where: { path == $0 || path.hasPrefix($0 + "/") }) { continue }
            let parts = path.split(separator: "/").map(String.init)
            targets.append(
                Target(
                    slot: .dataset(parts), layer: parts.dropLast().joined(separator: "/"), weight: parts.last!,
                    tensor: tensor))
        }
        return try run(model, targets, sparsity: sparsity, global: global)
    }

    /// Zeroes the lowest-scored elements: per kernel (per output column with `perOutput`: each output
    /// keeps the same share of its inputs, as Wanda compares), or against one global threshold. Scores
    /// default to |w|, ranked one kernel at a time into deferred edits (see `LowestScores`); given
    /// scores (Wanda's) are ranked in memory. `criteria` names each target's scoring in the rows.
    static func run(
        _ model: Model, _ targets: [Target], scores given: [[Float]]? = nil, criteria: [String]? = nil,
        sparsity: Double, global: Bool, perOutput: Bool = false
    ) throws -> Sparsified {
        guard !targets.isEmpty else { throw SelectionError("no kernels selected to sparsify") }
        var out = model
        var rows: [Row] = []
        if let scores = given {
            let chosen =
                global
                ? globalLowest(scores, sparsity: sparsity)
                : targets.indices.map { i in
                    lowest(scores[i], shape: targets[i].tensor.shape, sparsity: sparsity, perOutput: perOutput)
                }
            for (i, t) in targets.enumerated() {
                rows.append(try store(&out, t, try current(out, t).flatZeroed(Set(chosen[i]))))
            }
        } else {
            let cutoffs =
                global
                ? try LowestScores.global(targets.map(\.tensor), sparsity: sparsity)
                : try targets.map { LowestScores.perTensor(try $0.tensor.floats(), sparsity: sparsity) }
            for (t, cutoff) in zip(targets, cutoffs) {
                let tensor = try current(out, t)
                rows.append(try store(&out, t, try cutoff.map(tensor.zeroingLowest) ?? tensor))
            }
        }
        if let criteria { for i in rows.indices { rows[i].criterion = criteria[i] } }
        return Sparsified(model: out, rows: rows)
    }

    /// The indices of one kernel's round(s·N) lowest scores (per output column with `perOutput`), ties
    /// broken by position.
    static func lowest(_ scores: [Float], shape: [Int], sparsity: Double, perOutput: Bool) -> [Int] {
        let outputs = shape.last ?? 1
        guard perOutput, shape.count >= 2, outputs > 0 else {
            let k = Int((sparsity * Double(scores.count)).rounded())
            return Array(scores.indices.sorted { (scores[$0], $0) < (scores[$1], $1) }.prefix(k))
        }
        let inputs = scores.count / outputs
        let k = Int((sparsity * Double(inputs)).rounded())
        return (0..<outputs).flatMap { o in
            (0..<inputs).map { $0 * outputs + o }.sorted { (scores[$0], $0) < (scores[$1], $1) }.prefix(k)
        }
    }

    /// Per target, the indices among the round(s·N) lowest scores of all targets together.
    static func globalLowest(_ scores: [[Float]], sparsity: Double) -> [[Int]] {
        var all: [(score: Float, target: Int, index: Int)] = []
        for (t, s) in scores.enumerated() { for (j, v) in s.enumerated() { all.append((v, t, j)) } }
        let k = Int((sparsity * Double(all.count)).rounded())
        var chosen = [[Int]](repeating: [], count: scores.count)
        for e in all.sorted(by: { ($0.score, $0.target, $0.index) < ($1.score, $1.target, $1.index) }).prefix(k) {
            chosen[e.target].append(e.index)
        }
        return chosen
    }

    /// Each target's share of one global ranking's zeros.
    static func globalShares(_ scores: [[Float]], sparsity: Double) -> [Double] {
        zip(globalLowest(scores, sparsity: sparsity), scores).map { Double($0.count) / Double(max($1.count, 1)) }
    }

    static func current(_ model: Model, _ t: Target) throws -> Tensor {
        switch t.slot {
        case .weight(let l, let w): return model.layers[l].weights[w].tensor
        case .dataset(let parts):
            return model.rootExtras.flatMap { $0.datasets() }.first { $0.path == parts.joined(separator: "/") }!.tensor
        }
    }

    /// Puts a target's new tensor in the model and counts its zeros (reading a deferred edit once, then
    /// letting it go).
    static func store(_ model: inout Model, _ t: Target, _ tensor: Tensor) throws -> Row {
        switch t.slot {
        case .weight(let l, let w): model.layers[l].weights[w].tensor = tensor
        case .dataset(let parts):
            model.rootExtras = model.rootExtras.map { $0.replacingTensor(at: parts[...], with: tensor) }
        }
        let zeros = try TensorStats.zeroCount(tensor, bytes: tensor.bytes())
        return Row(layer: t.layer, weight: t.weight, zeros: zeros, count: tensor.count)
    }
}

extension Tensor {
    /// Sets the elements at the given flat indices to zero bytes; elements already zero (−0 included)
    /// keep their bytes.
    func flatZeroed(_ indices: Set<Int>) throws -> Tensor {
        guard !indices.isEmpty else { return self }
        var b = try bytes()
        let size = dtype.byteCount
        b.withUnsafeMutableBytes { raw in
            for i in indices where !Tensor.isZero(UnsafeRawBufferPointer(raw), i, dtype) {
                (raw.baseAddress! + i * size).initializeMemory(as: UInt8.self, repeating: 0, count: size)
            }
        }
        return Tensor(dtype: dtype, shape: shape, bytes: b)
    }
}

extension StoredNode {
    /// This node with the dataset at `path` (starting with this node's own name) holding `tensor`.
    func replacingTensor(at path: ArraySlice<String>, with tensor: Tensor) -> StoredNode {
        guard path.first == name else { return self }
        switch self {
        case .dataset(let name, let attributes, _):
            return path.count == 1 ? .dataset(name: name, attributes: attributes, tensor: tensor) : self
        case .group(let name, let attributes, let children):
            return .group(
                name: name, attributes: attributes,
                children: children.map { $0.replacingTensor(at: path.dropFirst(), with: tensor) })
        }
    }
}
