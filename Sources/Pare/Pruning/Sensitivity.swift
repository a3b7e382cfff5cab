import Foundation

/// One point of a sensitivity curve: K channels of one layer physically removed.
public struct SensitivityPoint: Codable, Sendable {
    public var layer: String
    /// Channels removed and kept.
    public var removed: Int
    public var kept: Int
    public var parameters: Int
    public var macs: Int?
    /// Top-1 (or binary) accuracy against the labels, when labels were given.
    public var accuracy: Double?
    /// Output 0 of the pruned model against the unpruned model.
    public var maxAbsError: Double
    public var cosineSimilarity: Double
    public var top1Agreement: Double?
    /// The pruned model against the zero-masked one (folding makes them equal where exact): the
    /// physical removal computes what zeroing the channels computes.
    public var prunedVersusMasked: Double
}

public struct SensitivityCurve: Codable, Sendable {
    public var layer: String
    public var channels: Int
    public var points: [SensitivityPoint]
    /// The metric the knee is found on: `accuracy` with labels, else `top1Agreement`.
    public var metric: String
    /// The knee of the metric (Kneedle: farthest point above the chord from first to last point), nil
    /// if the curve is flat.
    public var knee: Int?
    /// What K counts: `channels`, or `heads` for an attention layer.
    public var unit = "channels"

    public func value(_ p: SensitivityPoint) -> Double? { metric == "accuracy" ? p.accuracy : p.top1Agreement }
}

/// Removes the K lowest-ranked channels of a layer for a range of K, each time physically through
/// the pruning core, and measures the result. The model is read once and its tensors held in memory;
/// channel scores (and activation statistics) are computed once per sweep.
public enum SensitivitySweep {
    public struct Options {
        public var criterion: PruneCriterion = .l1
        public var steps: Steps = .automatic
        public var fold = true
        public init() {}
    }

    public enum Steps: Sendable, Equatable {
        /// Every K when the layer has at most 128 removable channels, else 64 evenly spaced values.
        case automatic
        /// Every K.
        case all
        /// This many evenly spaced K from 0 to the largest.
        case count(Int)
        /// Exactly these K.
        case list([Int])

        /// Parses `all`, `N`, or `K1,K2,…` (a single number is a count, so `--steps 0,` … lists need a comma).
        public static func parse(_ text: String) -> Steps? {
            if text == "all" { return .all }
            if !text.contains(","), let n = Int(text), n >= 2 { return .count(n) }
            let parts = text.split(separator: ",").map { Int($0.trimmingCharacters(in: .whitespaces)) }
            guard !parts.isEmpty, parts.allSatisfy({ $0 != nil && $0! >= 0 }) else { return nil }
            return .list(parts.map { $0! })
        }

        func values(maxRemovable: Int) -> [Int] {
            switch self {
            case .all: return Array(0...maxRemovable)
            case .automatic:
                return maxRemovable <= 128
                    ? Array(0...maxRemovable) : Steps.count(65).values(maxRemovable: maxRemovable)
            case .count(let n):
                if n > maxRemovable { return Array(0...maxRemovable) }
                let ks = (0..<n).map { Int((Double($0) * Double(maxRemovable) / Double(max(1, n - 1))).rounded()) }
                return Array(Set(ks)).sorted()
            case .list(let ks): return Array(Set(ks)).sorted()
            }
        }
    }

    /// Runs the sweep over `layers` (names as `--keep` takes them). `progress(done, total)` is called after each point.
    public static func run(
        _ source: Model, layers: [String], inputs: [FloatArray], labels: Tensor?, labelsFile: String,
        options: Options, progress: ((Int, Int) -> Void)? = nil
    ) throws -> [SensitivityCurve] {
        // The sweep prunes the model once per point: a model whose weights the interpreter keeps resident
        // is read from its file once, here; a larger one stays on file and streams at every point.
        let resident =
            (ShapeMath.product([source.parameterCount, 4]) ?? .max)
            <= min(Interpreter.residentWeightLimit, MemoryBudget.limit / 4)
        let model = resident ? try source.materialized() : source
        let planner = try Planner(model)
        var activation: [Int: Double]?
        var headActivation: [String: [Double]]?
        if options.criterion.needsCalibration {
            activation = try PruneJob.activationScores(planner, calibration: inputs, criterion: options.criterion)
            headActivation = try PruneJob.headActivationScores(
                planner, calibration: inputs, criterion: options.criterion)
        }
        let baselineRun = try Interpreter(model)
        let baseline = try baselineRun.run(inputs, batchSize: 256)
        let baseParameters = model.parameterCount
        let baseMACs = try Inspection.of(model, tensorStatistics: false).totalMACs
        let baseAccuracy = try labels.map {
            try Evaluation.of(predictions: baseline[0], labels: $0, file: labelsFile).accuracy
        }

        var plans: [(layer: String, path: String, channels: Int, ks: [Int])] = []
        var headPaths = Set<String>()
        for name in layers {
            // An attention layer's curve removes K of its heads.
            if let heads = planner.headSpace(named: name) {
                if let reason = heads.blockedReason {
                    throw SelectionError(
                        option: "layer", "\(name): no head of '\(heads.path)' can be removed (it \(reason))")
                }
                let maxK = heads.count - 1
                let ks = options.steps.values(maxRemovable: maxK)
                if let bad = ks.first(where: { $0 > maxK }) {
                    throw SelectionError(
                        option: "steps",
                        ": K = \(bad) is more than '\(heads.path)' allows (\(maxK) of \(heads.count) heads can go)")
                }
                plans.append((name, heads.path, heads.count, ks))
                headPaths.insert(heads.path)
                continue
            }
            let path = try planner.producerPath(name)
            guard let space = planner.graph.space(path) else {
                throw SelectionError(option: "layer", "\(name): not a prunable layer")
            }
            let removable = (0..<space.count).filter {
                planner.graph.blockedReason(group: planner.graph.group(space.first + $0)) == nil
            }.count
            guard removable >= 1 else {
                let reason =
                    planner.graph.blockedReason(group: planner.graph.group(space.first))
                    ?? "is coupled to what cannot change"
                throw SelectionError(option: "layer", "\(name): no channel of '\(path)' can be removed (it \(reason))")
            }
            let maxK = min(removable, space.count - 1)
            let ks = options.steps.values(maxRemovable: maxK)
            if let bad = ks.first(where: { $0 > maxK }) {
                throw SelectionError(
                    option: "steps",
                    ": K = \(bad) is more than '\(path)' allows (\(maxK) of \(space.count) channels can go)")
            }
            plans.append((name, path, space.count, ks))
        }
        let total = plans.reduce(0) { $0 + $1.ks.count }
        var done = 0
        var curves: [SensitivityCurve] = []
        for (name, path, channels, ks) in plans {
            var points: [SensitivityPoint] = []
            for k in ks {
                if k == 0 {
                    let same = Equivalence.compare(
                        name: baselineRun.outputNames[0], reference: baseline[0], candidate: baseline[0], atol: 0,
                        rtol: 0)
                    points.append(
                        SensitivityPoint(
                            layer: name, removed: 0, kept: channels, parameters: baseParameters, macs: baseMACs,
                            accuracy: baseAccuracy, maxAbsError: 0, cosineSimilarity: same.cosineSimilarity,
                            top1Agreement: same.top1Agreement, prunedVersusMasked: 0))
                } else {
                    var selection = PruneSelection()
                    selection.keep[name] = channels - k
                    let plan = try planner.plan(
                        selection, criterion: options.criterion, activationScores: activation,
                        headActivationScores: headActivation)
                    // The same verified step as `pare prune`: masked reference, fold, rewrite, check, run.
                    let result = try PruneJob.prune(
                        PlannedPrune(planner: planner, plan: plan), fold: options.fold, verifyInputs: inputs,
                        referenceIsOriginal: false, atol: 0, rtol: 0)
                    let out = result.outputs
                    let drift = Equivalence.compare(
                        name: baselineRun.outputNames[0], reference: baseline[0], candidate: out[0], atol: 0, rtol: 0)
                    let exactness = result.comparisons[0]
                    let accuracy = try labels.map {
                        try Evaluation.of(predictions: out[0], labels: $0, file: labelsFile).accuracy
                    }
                    points.append(
                        SensitivityPoint(
                            layer: name, removed: k, kept: channels - k, parameters: result.totals.after,
                            macs: result.totals.macsAfter, accuracy: accuracy,
                            maxAbsError: drift.maxAbsError, cosineSimilarity: drift.cosineSimilarity,
                            top1Agreement: drift.top1Agreement, prunedVersusMasked: exactness.maxRelativeError))
                }
                done += 1
                progress?(done, total)
            }
            var curve = SensitivityCurve(
                layer: name, channels: channels, points: points,
                metric: labels != nil ? "accuracy" : "top1Agreement", knee: nil)
            if headPaths.contains(path) { curve.unit = "heads" }
            curve.knee = knee(points.compactMap { p in curve.value(p).map { CurveValue(k: p.removed, value: $0) } })
            curves.append(curve)
        }
        return curves
    }

    /// Kneedle on a falling curve: the K whose value lies farthest above the chord joining the first
    /// and last points (both axes scaled to [0, 1]); nil when the curve does not fall.
    /// The metric at one K, for `knee(_:)`.
    public struct CurveValue: Sendable {
        public var k: Int
        public var value: Double
        public init(k: Int, value: Double) {
            self.k = k
            self.value = value
        }
    }

    public static func knee(_ points: [CurveValue]) -> Int? {
        guard points.count >= 3, let first = points.first, let last = points.last, last.k > first.k else { return nil }
        let drop = first.value - last.value
        guard drop > 1e-12 else { return nil }
        var best: (k: Int, d: Double)?
        for point in points {
            let x = Double(point.k - first.k) / Double(last.k - first.k)
            let y = (point.value - last.value) / drop
            let d = y - (1 - x)
            if d > (best?.d ?? 1e-12) { best = (point.k, d) }
        }
        return best?.k
    }
}

extension Model {
    /// A copy whose tensors hold their bytes (read from the file once, here).
    public func materialized() throws -> Model {
        try MemoryBudget.require(
            ShapeMath.product([parameterCount, 8]), for: "holding every weight in memory", file: sourcePath)
        var m = self
        for l in m.layers.indices {
            for w in m.layers[l].weights.indices {
                let t = m.layers[l].weights[w].tensor
                m.layers[l].weights[w].tensor = Tensor(dtype: t.dtype, shape: t.shape, bytes: try t.bytes())
            }
        }
        return m
    }
}
