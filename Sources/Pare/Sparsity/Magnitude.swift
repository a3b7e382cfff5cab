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
                    Target(
                        slot: .weight(l, w), layer: layer.name, weight: weight.name, tensor: weight.tensor,
                        values: try weight.tensor.floats()))
            }
        }
        return targets
    }

    /// Where a target tensor lives: a layer's weight, or a dataset of a plain tensor file (by path).
    enum Slot {
        case weight(Int, Int)
        case dataset([String])
    }

    struct Target {
        var slot: Slot
        var layer: String
        var weight: String
        var tensor: Tensor
        var values: [Float]
    }

    static func sparsifyTensors(_ model: Model, sparsity: Double, global: Bool, layers: Set<String>?) throws
        -> Sparsified
    {
        var out = model
        let all = out.rootExtras.flatMap { $0.datasets() }
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
                    tensor: tensor, values: try tensor.floats()))
        }
        return try run(out, targets, sparsity: sparsity, global: global)
    }

    /// Zeroes the lowest-scored elements: per kernel (per output column with `perOutput`: each output
    /// keeps the same share of its inputs, as Wanda compares), or against one global threshold. Scores
    /// default to |w|; `criteria` names each target's scoring in the rows.
    static func run(
        _ model: Model, _ targets: [Target], scores given: [[Float]]? = nil, criteria: [String]? = nil,
        sparsity: Double, global: Bool, perOutput: Bool = false
    ) throws -> Sparsified {
        guard !targets.isEmpty else { throw SelectionError("no kernels selected to sparsify") }
        let scores = given ?? targets.map { $0.values.map(abs) }
        var out = model
        var rows: [Row] = []
        if global {
            // Ties broken by target and position, so exactly round(s·N) elements go.
            let chosen = globalLowest(scores, sparsity: sparsity)
            for (i, t) in targets.enumerated() {
                var values = t.values
                for j in chosen[i] { values[j] = 0 }
                rows.append(try store(&out, t, values))
            }
        } else {
            for (i, t) in targets.enumerated() {
                var values = t.values
                let outputs = t.tensor.shape.last ?? 1
                if perOutput, t.tensor.shape.count >= 2, outputs > 0 {
                    let inputs = values.count / outputs
                    let k = Int((sparsity * Double(inputs)).rounded())
                    for o in 0..<outputs {
                        let column = (0..<inputs).map { $0 * outputs + o }
                        for j in column.sorted(by: { (scores[i][$0], $0) < (scores[i][$1], $1) }).prefix(k) {
                            values[j] = 0
                        }
                    }
                } else {
                    let k = Int((sparsity * Double(values.count)).rounded())
                    for j in values.indices.sorted(by: { (scores[i][$0], $0) < (scores[i][$1], $1) }).prefix(k) {
                        values[j] = 0
                    }
                }
                rows.append(try store(&out, t, values))
            }
        }
        if let criteria { for i in rows.indices { rows[i].criterion = criteria[i] } }
        return Sparsified(model: out, rows: rows)
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

    /// Writes values back in the tensor's dtype; elements left alone keep their exact bytes. With
    /// `replacing` (reconstructed weights, float32 only) every value is written.
    static func store(_ model: inout Model, _ t: Target, _ values: [Float], replacing: Bool = false) throws -> Row {
        let zeroIndices = Set(values.indices.filter { values[$0] == 0 && t.values[$0] != 0 })
        let tensor =
            replacing
            ? Tensor(float32: values, shape: t.tensor.shape) : try current(model, t).flatZeroed(zeroIndices)
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
    /// Sets the elements at the given flat indices to zero bytes.
    func flatZeroed(_ indices: Set<Int>) throws -> Tensor {
        guard !indices.isEmpty else { return self }
        var b = try bytes()
        let size = dtype.byteCount
        for i in indices { for k in 0..<size { b[i * size + k] = 0 } }
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
