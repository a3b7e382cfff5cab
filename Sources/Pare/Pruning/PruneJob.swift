import Foundation

/// One layer's row in the before/after table.
public struct PruneRow: Codable, Sendable {
    public var layer: String
    public var className: String
    public var channelsBefore: Int?
    public var channelsAfter: Int?
    public var parametersBefore: Int
    public var parametersAfter: Int
    public var macsBefore: Int?
    public var macsAfter: Int?
}

/// Everything `pare prune` and `pare mask` compute.
public struct PruneResult {
    public var plan: PrunePlan
    public var masked: Model
    public var pruned: Model?
    public var folds: [FoldReport]
    /// Pruned (candidate) against the reference, per output.
    public var comparisons: [OutputComparison]
    /// The pruned model's outputs on the verification inputs.
    public var outputs: [FloatArray]
    /// The original model's outputs on the same inputs.
    public var originalOutputs: [FloatArray]
    /// Pruned against the original, per output: what the removal cost (measured, not a verification).
    public var drift: [OutputComparison]
    public var rows: [PruneRow]
    public var totals: PruneTotals
    public var verified: Bool { comparisons.allSatisfy(\.withinTolerance) }
}

/// Parameters and MACs of the whole model before and after.
public struct PruneTotals: Sendable {
    public var before: Int
    public var after: Int
    public var macsBefore: Int?
    public var macsAfter: Int?
}

/// Per-layer rows and whole-model totals of a before/after comparison.
public struct PruneTable {
    public var rows: [PruneRow]
    public var totals: PruneTotals
}

/// A model with its planner (the checked graph) and the channels chosen to go.
public struct PlannedPrune {
    public let planner: Planner
    public let plan: PrunePlan
    /// How a `--target-*` budget was met, when one was given.
    public var budget: BudgetOutcome?

    /// Whether the plan removes channels that pass through a normalization over the channels
    /// (only with `approximateNormalization`): the pruned model then only approximates the masked one.
    public var passesNormalization: Bool {
        planner.graph.approximateNormalization
            && planner.graph.inputMaps.keys.contains { path in
                planner.checked.kind(path) is ChannelNormalization
                    && (plan.keptPositions(path)?.count ?? 0) < (planner.graph.inputMaps[path]?.count ?? 0)
            }
    }
}

public enum PruneJob {
    /// Plans a selection on `model`: scores channels (running `calibration` through the model for
    /// activation criteria) and picks the groups to remove.
    /// A budget's sensitivity allocation measures on `calibration`, else on `sensitivityInputs`.
    public static func plan(
        _ model: Model, selection: PruneSelection, criterion: PruneCriterion,
        calibration: [FloatArray]?, approximateNormalization: Bool = false, sensitivityInputs: [FloatArray]? = nil
    ) throws -> PlannedPrune {
        // The masked and pruned models are edits of the original made when their tensors are needed
        // (`Tensor.edited`), and each interpreter checks what it holds: resident weights up to
        // `Interpreter.residentWeightLimit` each, one layer's at a time beyond.
        let planner = try Planner(model, approximateNormalization: approximateNormalization)
        var activation: [Int: Double]?
        var headActivation: [String: [Double]]?
        if criterion.needsCalibration, selection.usesCriterion, let calibration {
            activation = try activationScores(planner, calibration: calibration, criterion: criterion)
            headActivation = try headActivationScores(planner, calibration: calibration, criterion: criterion)
        }
        let plan = try planner.plan(
            selection, criterion: criterion, activationScores: activation, headActivationScores: headActivation)
        guard let budget = selection.budget else { return PlannedPrune(planner: planner, plan: plan) }
        let search = BudgetSearch(
            planner: planner, base: plan, budget: budget, roundTo: selection.roundTo ?? 1,
            inputs: calibration ?? sensitivityInputs)
        let found = try search.run()
        return PlannedPrune(planner: planner, plan: found.plan, budget: found.outcome)
    }

    /// Mean activation (or 1 − APoZ) of every producer channel, measured after the BatchNormalization
    /// and activation layers that directly follow it.
    static func activationScores(_ planner: Planner, calibration: [FloatArray], criterion: PruneCriterion) throws
        -> [Int: Double]
    {
        let arch = planner.graph.architecture
        var watch: [String: ChannelGraph.Space] = [:]
        for space in planner.graph.spaces { watch[activationPoint(of: space.path, in: arch)] = space }
        var sums: [Int: Double] = [:]
        var zeros: [Int: Double] = [:]
        var counts: [Int: Double] = [:]
        let interpreter = try Interpreter(planner.model)
        interpreter.observer = { path, _, output in
            guard let space = watch[path] else { return }
            let c = output.shape.last ?? 1
            guard c == space.count else { return }
            var s = [Double](repeating: 0, count: c)
            var z = [Double](repeating: 0, count: c)
            for (i, v) in output.data.enumerated() {
                s[i % c] += Double(v)
                if v == 0 { z[i % c] += 1 }
            }
            let per = Double(output.count / c)
            for j in 0..<c {
                sums[space.first + j, default: 0] += s[j]
                zeros[space.first + j, default: 0] += z[j]
                counts[space.first + j, default: 0] += per
            }
        }
        _ = try interpreter.run(calibration, batchSize: 256)
        var scores: [Int: Double] = [:]
        for (id, n) in counts where n > 0 {
            scores[id] = criterion == .apoz ? 1 - zeros[id]! / n : sums[id]! / n
        }
        return scores
    }

    /// Layers that keep each channel itself, value by value (normalization, activations): a
    /// channel's activation is read after them.
    static func follows(_ node: LayerNode) -> Bool {
        node.layerKind?.channelFlow(input: [], output: []).elementwise ?? false
    }

    /// The layer whose output is "the channel's output after its BN and activation".
    static func activationPoint(of path: String, in arch: Architecture) -> String {
        var parts = path.split(separator: "/").map(String.init)
        var level = arch
        for p in parts.dropLast() { level = level.layer(p)?.nested ?? level }
        var current = parts.removeLast()
        while true {
            let consumers = level.layers.filter { l in l.calls.contains { $0.contains { $0.layer == current } } }
            guard consumers.count == 1, let next = consumers.first, next.calls.count == 1,
                follows(next)
            else { break }
            current = next.name
        }
        return (parts + [current]).joined(separator: "/")
    }

    /// Masks, prunes (folding constants unless `fold` is false) and verifies the pruned model against
    /// `reference` — the masked model, or the original for `--drop-dead` (nothing was changed there).
    public static func prune(
        _ job: PlannedPrune, fold: Bool, verifyInputs: [FloatArray], referenceIsOriginal: Bool, atol: Double,
        rtol: Double
    ) throws -> PruneResult {
        let (planner, plan) = (job.planner, job.plan)
        let rewriter = Rewriter(planner: planner, plan: plan)
        let masked = try rewriter.mask()
        let reference = referenceIsOriginal ? planner.model : masked
        let referenceRun = try Interpreter(reference)
        let recorder = rewriter.constantRecorder()
        referenceRun.observer = recorder.record
        let expected = try referenceRun.run(verifyInputs, batchSize: 256)
        let rewritten = try rewriter.prune(constants: fold ? recorder.constants : nil)
        let (pruned, folds) = (rewritten.model, rewritten.folds)
        try pruned.validate()
        let candidate = try Interpreter(pruned)
        let got = try candidate.run(verifyInputs, batchSize: 256)
        let comparisons = zip(referenceRun.outputNames, zip(expected, got)).map { name, pair in
            Equivalence.compare(name: name, reference: pair.0, candidate: pair.1, atol: atol, rtol: rtol)
        }
        let table = try table(before: planner.model, after: pruned)
        // What the removal cost: the pruned model against the original (the masked model is the
        // reference of the verification, which says the rewrite is exact, not what removing changed).
        let original = referenceIsOriginal ? expected : try Interpreter(planner.model).run(verifyInputs, batchSize: 256)
        let drift = zip(referenceRun.outputNames, zip(original, got)).map { name, pair in
            Equivalence.compare(name: name, reference: pair.0, candidate: pair.1, atol: 0, rtol: 0)
        }
        return PruneResult(
            plan: plan, masked: masked, pruned: pruned, folds: folds, comparisons: comparisons, outputs: got,
            originalOutputs: original, drift: drift, rows: table.rows, totals: table.totals)
    }

    /// Per-layer channels, parameters and MACs of two versions of a model, joined by layer path.
    public static func table(before: Model, after: Model) throws -> PruneTable {
        let a = try Inspection.of(before, tensorStatistics: false)
        let b = try Inspection.of(after, tensorStatistics: false)
        let afterRows = Dictionary(b.layers.map { ($0.path, $0) }, uniquingKeysWith: { x, _ in x })
        func channels(_ shapes: [String]) -> Int? {
            shapes.first.flatMap {
                $0.split(separator: ",").last.flatMap {
                    Int($0.trimmingCharacters(in: CharacterSet(charactersIn: " )")))
                }
            }
        }
        var rows: [PruneRow] = []
        for row in a.layers where row.parameters > 0 || (afterRows[row.path]?.parameters ?? 0) > 0 {
            let other = afterRows[row.path]
            rows.append(
                PruneRow(
                    layer: row.path, className: row.className,
                    channelsBefore: channels(row.outputShapes),
                    channelsAfter: other.flatMap { channels($0.outputShapes) },
                    parametersBefore: row.parameters, parametersAfter: other?.parameters ?? 0,
                    macsBefore: row.macs, macsAfter: other?.macs))
        }
        // Rows for layers without weights whose shape changed (Flatten, pooling) help read the table.
        for row in a.layers where row.parameters == 0 && LayerRegistry.kind(named: row.className) == Flatten.self {
            if let other = afterRows[row.path] {
                rows.append(
                    PruneRow(
                        layer: row.path, className: row.className, channelsBefore: channels(row.outputShapes),
                        channelsAfter: channels(other.outputShapes), parametersBefore: 0, parametersAfter: 0,
                        macsBefore: nil, macsAfter: nil))
            }
        }
        let order = Dictionary(a.layers.enumerated().map { ($1.path, $0) }, uniquingKeysWith: { x, _ in x })
        rows.sort { order[$0.layer]! < order[$1.layer]! }
        return PruneTable(
            rows: rows,
            totals: PruneTotals(
                before: a.totalParameters, after: b.totalParameters, macsBefore: a.totalMACs, macsAfter: b.totalMACs))
    }
}
