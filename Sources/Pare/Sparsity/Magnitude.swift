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
        if let layers {
            let known = Set(model.layers.map(\.name)).union(model.layers.flatMap { $0.weights.compactMap(\.ownerName) })
            if let unknown = layers.subtracting(known).first {
                throw SelectionError(option: "layers", ": no layer named '\(unknown)'")
            }
        }
        var out = model
        var targets: [Target] = []
        for (l, layer) in out.layers.enumerated() {
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
        return try run(out, targets, sparsity: sparsity, global: global)
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

    static func run(_ model: Model, _ targets: [Target], sparsity: Double, global: Bool) throws -> Sparsified {
        guard !targets.isEmpty else { throw SelectionError("no kernels selected to sparsify") }
        var out = model
        var threshold: Float?
        if global {
            // Ties broken by position, so exactly round(s·N) elements go.
            let all = targets.flatMap { $0.values.map(abs) }.sorted()
            let k = Int((sparsity * Double(all.count)).rounded())
            threshold = k == 0 ? nil : all[k - 1]
            var budget = k
            var rows: [Row] = []
            for t in targets {
                var values = t.values
                for i in values.indices where budget > 0 && threshold.map({ abs(values[i]) < $0 }) == true {
                    values[i] = 0
                    budget -= 1
                }
                rows.append(try store(&out, t, values))
            }
            // Elements equal to the threshold fill what is left of the budget, in order.
            for (r, t) in targets.enumerated() where budget > 0 {
                var values = try current(out, t).floats()
                for i in values.indices where budget > 0 && values[i] != 0 && abs(values[i]) == threshold! {
                    values[i] = 0
                    budget -= 1
                }
                rows[r] = try store(&out, t, values)
            }
            return Sparsified(model: out, rows: rows)
        }
        var rows: [Row] = []
        for t in targets {
            let k = Int((sparsity * Double(t.values.count)).rounded())
            let order = t.values.indices.sorted { (abs(t.values[$0]), $0) < (abs(t.values[$1]), $1) }
            var values = t.values
            for i in order.prefix(k) { values[i] = 0 }
            rows.append(try store(&out, t, values))
        }
        return Sparsified(model: out, rows: rows)
    }

    static func current(_ model: Model, _ t: Target) throws -> Tensor {
        switch t.slot {
        case .weight(let l, let w): return model.layers[l].weights[w].tensor
        case .dataset(let parts):
            return model.rootExtras.flatMap { $0.datasets() }.first { $0.path == parts.joined(separator: "/") }!.tensor
        }
    }

    /// Writes values back in the tensor's dtype; elements left alone keep their exact bytes.
    static func store(_ model: inout Model, _ t: Target, _ values: [Float]) throws -> Row {
        let zeroIndices = Set(values.indices.filter { values[$0] == 0 && t.values[$0] != 0 })
        let tensor = try current(model, t).flatZeroed(zeroIndices)
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
