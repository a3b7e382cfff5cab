import Foundation

/// A MultiHeadAttention layer, whose heads a selection removes as it removes a producer's channels.
///
/// Heads live inside one layer: removing one slices that layer's projections on their heads axis
/// and touches no other layer, so heads are planned beside the channel graph, not in it.
public struct HeadSpace: Sendable {
    public let path: String
    public let count: Int
    /// Why its heads cannot be removed, if they cannot.
    public let blockedReason: String?
}

extension Planner {
    /// Every MultiHeadAttention layer of the model (nested models included).
    static func headSpaces(_ arch: Architecture) -> [HeadSpace] {
        arch.allLayers().compactMap { entry in
            (entry.layer.layerKind as? MultiHeadAttention).map {
                HeadSpace(
                    path: entry.path, count: $0.numHeads,
                    blockedReason: $0.returnScores
                        ? "returns its attention scores, one map per head: removing a head changes that output"
                        : nil)
            }
        }
    }

    /// The head space a selection entry names: a full path or a name unique among attention layers.
    func headSpace(named name: String) -> HeadSpace? {
        if let exact = heads.first(where: { $0.path == name }) { return exact }
        let matches = heads.filter { $0.path.hasSuffix("/" + name) }
        return matches.count == 1 ? matches[0] : nil
    }

    /// Per attention layer, one score per head by a weight criterion: the L1 (or L2) norm of the
    /// head's slices of the query, key, value and output kernels. nil for criteria without one.
    func headWeightScores(_ criterion: PruneCriterion) throws -> [String: [Double]]? {
        guard criterion == .l1 || criterion == .l2 else { return nil }
        var scores: [String: [Double]] = [:]
        for space in heads {
            var sums = [Double](repeating: 0, count: space.count)
            let roles = checked.weightsByRole(space.path)
            for (role, axis) in [("query_kernel", 1), ("key_kernel", 1), ("value_kernel", 1), ("output_kernel", 0)] {
                guard let weight = roles[role], weight.tensor.shape.count > axis,
                    weight.tensor.shape[axis] == space.count
                else { continue }
                let norms = try channelNorms(weight, axis: axis, squared: criterion == .l2)
                for h in 0..<space.count { sums[h] += norms[h] }
            }
            scores[space.path] = criterion == .l2 ? sums.map { $0.squareRoot() } : sums
        }
        return scores
    }

    /// Heads whose value kernel slice and bias are exactly zero: their output is zero.
    func deadHeads(_ space: HeadSpace) throws -> Set<Int> {
        let roles = checked.weightsByRole(space.path)
        guard let kernel = roles["value_kernel"], kernel.tensor.shape.count == 3 else { return [] }
        let values = try kernel.tensor.floats()
        let (heads, dim) = (kernel.tensor.shape[1], kernel.tensor.shape[2])
        var dead = Set(0..<heads)
        for (i, v) in values.enumerated() where v != 0 { dead.remove((i / dim) % heads) }
        if let bias = roles["value_bias"] {
            for (i, v) in try bias.tensor.floats().enumerated() where v != 0 { dead.remove(i / dim) }
        }
        return dead
    }
}

extension PruneJob {
    /// Per attention layer and head, the mean absolute value (or, for APoZ, one minus the fraction
    /// of exact zeros) of the head's output before the output projection, over calibration data.
    static func headActivationScores(_ planner: Planner, calibration: [FloatArray], criterion: PruneCriterion) throws
        -> [String: [Double]]
    {
        var sums: [String: [Double]] = [:]
        var counts: [String: Double] = [:]
        let kinds = Dictionary(
            planner.heads.compactMap { space in
                (planner.checked.kind(space.path) as? MultiHeadAttention).map { (space.path, $0) }
            }, uniquingKeysWith: { a, _ in a })
        guard !kinds.isEmpty else { return [:] }
        let interpreter = try Interpreter(planner.model)
        interpreter.callObserver = { path, inputs, masks, context in
            guard let kind = kinds[path], let attended = try? kind.attend(inputs, masks: masks, context) else { return }
            let perHead = kind.valueDim
            var s = sums[path] ?? [Double](repeating: 0, count: kind.numHeads)
            for (i, v) in attended.heads.enumerated() {
                let h = (i / perHead) % kind.numHeads
                s[h] += criterion == .apoz ? (v == 0 ? 0 : 1) : Double(abs(v))
            }
            sums[path] = s
            counts[path, default: 0] += Double(attended.heads.count / max(1, kind.numHeads))
        }
        _ = try interpreter.run(calibration, batchSize: 256)
        var scores: [String: [Double]] = [:]
        for (path, s) in sums { scores[path] = s.map { $0 / max(1, counts[path] ?? 1) } }
        return scores
    }
}
