/// Magnitude sparsification: zero the smallest-|w| elements of kernels (never biases or
/// BatchNormalization statistics), per tensor or against one global threshold.
public enum MagnitudeSparsifier {
    public static let kernelRoles: Set<String> = ["kernel", "depthwise_kernel", "pointwise_kernel"]

    public struct Row: Sendable {
        public var layer: String
        public var weight: String
        public var zeros: Int
        public var count: Int
        public var sparsity: Double { count == 0 ? 0 : Double(zeros) / Double(count) }
    }

    /// Returns the sparsified model and, per kernel touched, the achieved zeros.
    public static func sparsify(_ model: Model, sparsity: Double, global: Bool, layers: Set<String>?) throws -> (Model, [Row]) {
        guard sparsity >= 0, sparsity < 1 else { throw SelectionError(message: "--sparsity must be in [0, 1)") }
        if let layers {
            let known = Set(model.layers.map(\.name)).union(model.layers.flatMap { $0.weights.compactMap(\.ownerName) })
            if let unknown = layers.subtracting(known).first {
                throw SelectionError(message: "--layers: no layer named '\(unknown)'")
            }
        }
        let out = model.copy()
        var targets: [(layer: Int, weight: Int, values: [Float])] = []
        for (l, layer) in out.layers.enumerated() {
            for (w, weight) in layer.weights.enumerated() where kernelRoles.contains(weight.role) && weight.tensor.dtype.isFloatingPoint {
                if let layers, !layers.contains(layer.name), !(weight.ownerName.map(layers.contains) ?? false) { continue }
                targets.append((l, w, try weight.tensor.floats()))
            }
        }
        guard !targets.isEmpty else { throw SelectionError(message: "no kernels selected to sparsify") }
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
                for i in values.indices where budget > 0 && threshold.map({ abs(values[i]) < $0 }) == true { values[i] = 0; budget -= 1 }
                rows.append(try store(out, t.layer, t.weight, values))
            }
            // Elements equal to the threshold fill what is left of the budget, in order.
            for (r, t) in targets.enumerated() where budget > 0 {
                var values = try out.layers[t.layer].weights[t.weight].tensor.floats()
                for i in values.indices where budget > 0 && values[i] != 0 && abs(values[i]) == threshold! { values[i] = 0; budget -= 1 }
                rows[r] = try store(out, t.layer, t.weight, values)
            }
            return (out, rows)
        }
        var rows: [Row] = []
        for t in targets {
            let k = Int((sparsity * Double(t.values.count)).rounded())
            let order = t.values.indices.sorted { (abs(t.values[$0]), $0) < (abs(t.values[$1]), $1) }
            var values = t.values
            for i in order.prefix(k) { values[i] = 0 }
            rows.append(try store(out, t.layer, t.weight, values))
        }
        return (out, rows)
    }

    /// Writes values back in the tensor's dtype; elements left alone keep their exact bytes.
    static func store(_ model: Model, _ l: Int, _ w: Int, _ values: [Float]) throws -> Row {
        let weight = model.layers[l].weights[w]
        let original = try weight.tensor.floats()
        let zeroIndices = Set(values.indices.filter { values[$0] == 0 && original[$0] != 0 })
        let tensor = try weight.tensor.flatZeroed(zeroIndices)
        model.layers[l].weights[w].tensor = tensor
        let zeros = try TensorStats.zeroCount(tensor, bytes: tensor.bytes())
        return Row(layer: model.layers[l].name, weight: weight.name, zeros: zeros, count: tensor.count)
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
