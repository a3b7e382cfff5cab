import Foundation

/// A size the pruned model must fit in: `--target-params`, `--target-macs`, `--target-size`.
public struct PruneBudget: Sendable, Equatable {
    public enum Measure: String, Sendable {
        case parameters
        case macs = "MACs"
        /// Bytes of the weights at their stored dtypes (the file adds its own headers and config).
        case bytes = "weight bytes"
    }

    public enum Amount: Sendable, Equatable {
        case count(Int)
        /// Of the original model's measure, in (0, 1].
        case fraction(Double)
    }

    /// How the removal is shared among layers.
    public enum Allocation: String, CaseIterable, Sendable {
        /// Every removable channel group ranked on one scale: its criterion score divided by the mean
        /// score of its layer (scores of different layers are not comparable as they are).
        case normalized
        /// Each layer's share decided by its measured sensitivity: output error per unit of the
        /// measure saved, from removing growing fractions of that layer alone.
        case sensitivity
    }

    public var measure: Measure
    public var amount: Amount
    public var allocation: Allocation = .normalized

    public init(_ measure: Measure, _ amount: Amount, allocation: Allocation = .normalized) {
        self.measure = measure
        self.amount = amount
        self.allocation = allocation
    }

    /// `N` (a count) or `P%` (a percentage of the original, in (0, 100]).
    public static func amount(_ text: String) -> Amount? {
        if text.hasSuffix("%") {
            guard let p = Double(text.dropLast()), p.isFinite, p > 0, p <= 100 else { return nil }
            return .fraction(p / 100)
        }
        guard let n = Int(text), n > 0 else { return nil }
        return .count(n)
    }

    /// The budget in units of the measure, for a model that measures `original`.
    func target(original: Int) -> Int {
        switch amount {
        case .count(let n): return n
        case .fraction(let f): return Int((f * Double(original)).rounded(.down))
        }
    }
}

/// How a budget was met: the target, what the pruned model measures, and the per-layer allocation.
public struct BudgetOutcome: Sendable {
    public var measure: PruneBudget.Measure
    public var allocation: PruneBudget.Allocation
    public var original: Int
    public var target: Int
    public var reached: Int
    /// Groups of coupled layers that `--round-to` left whole (their widths cannot all be multiples).
    public var leftWholeByRounding: [String] = []
    /// Relative shortfall below the target (0 when within it); met when at most 2%.
    public var under: Double { target == 0 ? 0 : max(0, Double(target - reached) / Double(target)) }
    public var met: Bool { reached <= target && under <= 0.02 }
}

/// Searches the channel groups to remove so that the pruned model fits a budget.
///
/// Removable groups are gathered into *clusters*: producers whose channels are coupled (a residual
/// stack, a shared layer) form one, since removing a group narrows them all. Each cluster removes a
/// prefix of its groups in its own ranking; an allocation is the prefix length per cluster. The
/// allocations are ordered (by normalized score or by measured sensitivity) so that the measure falls
/// as the index grows; a binary search finds the first that fits, and a last pass puts back groups
/// while the budget still holds. Every candidate is measured exactly, on the rewritten model.
struct BudgetSearch {
    let planner: Planner
    let base: PrunePlan
    let budget: PruneBudget
    let roundTo: Int
    /// Inputs the sensitivity allocation measures output error on.
    let inputs: [FloatArray]?

    struct Cluster {
        var spaces: [Int]
        /// Candidate group roots, lowest-ranked first.
        var groups: [Int]
        /// Prefix lengths that keep every layer at least `roundTo` (or 1) wide and, with `--round-to`,
        /// every narrowed layer a multiple of it.
        var options: [Int]
        var name: String
    }

    var graph: ChannelGraph { planner.graph }

    func run() throws -> (plan: PrunePlan, outcome: BudgetOutcome) {
        let original = try measure(planner.model)
        let target = budget.target(original: original)
        var clusters = try makeClusters()
        let order = try orderedAllocations(&clusters)
        func removal(_ allocation: [Int]) -> Set<Int> {
            var removed = base.removed
            for (c, r) in allocation.enumerated() { removed.formUnion(clusters[c].groups.prefix(r)) }
            return removed
        }
        var cache: [Int: Int] = [:]
        func value(_ index: Int) throws -> Int {
            if let v = cache[index] { return v }
            let v = try measure(removal(order[index]))
            cache[index] = v
            return v
        }
        let most = try value(order.count - 1)
        guard most <= target else {
            throw SelectionError(
                option: budget.measure.option,
                ": the model measures \(original) \(budget.measure.rawValue); removing every channel Pare can "
                    + "(each layer keeping \(max(roundTo, 1))) leaves \(most), above the target \(target)")
        }
        // The first allocation that fits: the measure does not grow with the index.
        var (low, high) = (0, order.count - 1)
        while low < high {
            let mid = (low + high) / 2
            if try value(mid) <= target { high = mid } else { low = mid + 1 }
        }
        var allocation = order[low]
        var reached = try value(low)
        // Put back what still fits: the highest-ranked removed step of each cluster first.
        var tries = 0
        var improved = true
        while improved && tries < 64 {
            improved = false
            for c in restoreOrder(allocation, clusters) {
                guard let previous = clusters[c].options.last(where: { $0 < allocation[c] }) else { continue }
                var candidate = allocation
                candidate[c] = previous
                tries += 1
                let v = try measure(removal(candidate))
                if v <= target {
                    (allocation, reached, improved) = (candidate, v, true)
                    break
                }
                if tries >= 64 { break }
            }
        }
        let plan = makePlan(removal(allocation))
        var outcome = BudgetOutcome(
            measure: budget.measure, allocation: budget.allocation, original: original, target: target,
            reached: reached)
        outcome.leftWholeByRounding = clusters.filter { $0.options == [0] && $0.groups.count > 0 }.map(\.name)
        return (plan, outcome)
    }

    // MARK: Clusters

    func makeClusters() throws -> [Cluster] {
        let spaces = graph.spaces
        var rootSpaces: [Int: [Int]] = [:]
        var candidates: [Int] = []
        for (s, space) in spaces.enumerated() {
            for c in 0..<space.count {
                let root = graph.group(space.first + c)
                guard !base.removed.contains(root), graph.blockedReason(group: root) == nil else { continue }
                if rootSpaces[root] == nil { candidates.append(root) }
                rootSpaces[root, default: []].append(s)
            }
        }
        // Union-find over producers: a group narrows every producer it has channels in.
        var parent = Array(spaces.indices)
        func find(_ i: Int) -> Int {
            var i = i
            while parent[i] != i {
                parent[i] = parent[parent[i]]
                i = parent[i]
            }
            return i
        }
        for root in candidates {
            let members = rootSpaces[root]!
            for s in members.dropFirst() { parent[find(s)] = find(members[0]) }
        }
        var byCluster: [Int: Int] = [:]
        var clusters: [Cluster] = []
        for root in candidates {
            let key = find(rootSpaces[root]![0])
            if byCluster[key] == nil {
                byCluster[key] = clusters.count
                let members = spaces.indices.filter { find($0) == key }
                clusters.append(
                    Cluster(
                        spaces: members, groups: [], options: [],
                        name: members.map { spaces[$0].path }.joined(separator: "+")))
            }
            clusters[byCluster[key]!].groups.append(root)
        }
        let normalized = normalizedScores()
        for c in clusters.indices {
            clusters[c].groups.sort { (normalized[$0] ?? 0, $0) < (normalized[$1] ?? 0, $1) }
            clusters[c].options = options(clusters[c], rootSpaces: rootSpaces)
        }
        return clusters
    }

    /// The prefix lengths a cluster may remove.
    func options(_ cluster: Cluster, rootSpaces: [Int: [Int]]) -> [Int] {
        var kept: [Int: Int] = [:]
        for s in cluster.spaces {
            let space = graph.spaces[s]
            kept[s] = (0..<space.count).filter { !base.removed.contains(graph.group(space.first + $0)) }.count
        }
        let width = Dictionary(cluster.spaces.map { ($0, graph.spaces[$0].count) }, uniquingKeysWith: { a, _ in a })
        let minimum = max(roundTo, 1)
        var options = [0]
        for (r, root) in cluster.groups.enumerated() {
            for s in rootSpaces[root]! { kept[s]! -= 1 }
            if kept.values.contains(where: { $0 < minimum }) { break }
            if roundTo > 1, kept.contains(where: { s, k in k != width[s]! && k % roundTo != 0 }) { continue }
            options.append(r + 1)
        }
        return options
    }

    /// Each channel group's criterion score, each member's divided by the mean score of its layer.
    func normalizedScores() -> [Int: Double] {
        var result: [Int: Double] = [:]
        for space in graph.spaces {
            let values = (0..<space.count).map { base.scores[space.first + $0] ?? 0 }
            let mean = values.reduce(0, +) / Double(max(values.count, 1))
            for (c, v) in values.enumerated() {
                result[graph.group(space.first + c), default: 0] += mean > 0 ? v / mean : 0
            }
        }
        return result
    }

    // MARK: Allocation orders

    /// Allocations (prefix length per cluster) whose measure does not grow along the list, from
    /// nothing removed to the most each cluster may remove.
    func orderedAllocations(_ clusters: inout [Cluster]) throws -> [[Int]] {
        switch budget.allocation {
        case .normalized: return normalizedOrder(clusters)
        case .sensitivity: return try sensitivityOrder(clusters)
        }
    }

    /// One scale across layers: the k lowest normalized scores go, each cluster rounded down to an option.
    func normalizedOrder(_ clusters: [Cluster]) -> [[Int]] {
        let normalized = normalizedScores()
        var ranked: [(score: Double, cluster: Int)] = []
        for (c, cluster) in clusters.enumerated() {
            for root in cluster.groups { ranked.append((normalized[root] ?? 0, c)) }
        }
        ranked.sort { ($0.score, $0.cluster) < ($1.score, $1.cluster) }
        var counts = [Int](repeating: 0, count: clusters.count)
        var allocation = counts
        var order: [[Int]] = [allocation]
        for entry in ranked {
            let c = entry.cluster
            counts[c] += 1
            let rounded = clusters[c].options.last { $0 <= counts[c] } ?? 0
            if rounded != allocation[c] {
                allocation[c] = rounded
                order.append(allocation)
            }
        }
        return order
    }

    /// Greedy on measured curves: each step takes the next point of the cluster whose output error
    /// grows least per unit saved. Points between two measured ones are filled in option by option.
    func sensitivityOrder(_ clusters: [Cluster]) throws -> [[Int]] {
        guard let inputs else {
            throw SelectionError(option: "allocation", " sensitivity needs inputs to measure (--calibration)")
        }
        let reference = try Interpreter(planner.model).run(inputs, batchSize: 256)
        let none = [Int](repeating: 0, count: clusters.count)
        let baseMeasure = try measure(base.removed)
        // Up to 8 measured points per cluster, evenly spaced among its options.
        var points: [[(r: Int, error: Double, saved: Double)]] = []
        for (c, cluster) in clusters.enumerated() {
            let options = cluster.options
            let picks = Set((1...8).map { options[min(options.count - 1, ($0 * (options.count - 1) + 7) / 8)] })
            var curve: [(r: Int, error: Double, saved: Double)] = [(0, 0, 0)]
            for r in picks.sorted() where r > 0 {
                var allocation = none
                allocation[c] = r
                let removed = base.removed.union(cluster.groups.prefix(r))
                let masked = try Rewriter(planner: planner, plan: makePlan(removed)).mask()
                let outputs = try Interpreter(masked).run(inputs, batchSize: 256)
                let saved = Double(baseMeasure - (try measure(removed)))
                curve.append((r, relativeError(reference, outputs), saved))
            }
            points.append(curve)
        }
        var position = [Int](repeating: 0, count: clusters.count)
        var allocation = none
        var order: [[Int]] = [none]
        while true {
            var best: (cost: Double, cluster: Int)?
            for c in clusters.indices where position[c] + 1 < points[c].count {
                let (a, b) = (points[c][position[c]], points[c][position[c] + 1])
                let cost = max(b.error - a.error, 0) / max(b.saved - a.saved, 1e-9)
                if best == nil || cost < best!.cost { best = (cost, c) }
            }
            guard let chosen = best?.cluster else { break }
            position[chosen] += 1
            let next = points[chosen][position[chosen]].r
            for r in clusters[chosen].options where r > allocation[chosen] && r <= next {
                allocation[chosen] = r
                order.append(allocation)
            }
        }
        return order
    }

    /// ‖b − a‖ / ‖a‖ over every output.
    func relativeError(_ a: [FloatArray], _ b: [FloatArray]) -> Double {
        var (difference, norm) = (0.0, 0.0)
        for (x, y) in zip(a, b) {
            for (u, v) in zip(x.data, y.data) {
                difference += Double(u - v) * Double(u - v)
                norm += Double(u) * Double(u)
            }
        }
        return (difference / max(norm, 1e-30)).squareRoot()
    }

    /// Clusters in the order their last removed step is put back: the highest-ranked first.
    func restoreOrder(_ allocation: [Int], _ clusters: [Cluster]) -> [Int] {
        let normalized = normalizedScores()
        return clusters.indices.filter { allocation[$0] > 0 }.sorted { a, b in
            (normalized[clusters[a].groups[allocation[a] - 1]] ?? 0)
                > (normalized[clusters[b].groups[allocation[b] - 1]] ?? 0)
        }
    }

    // MARK: Measuring

    func makePlan(_ removed: Set<Int>) -> PrunePlan {
        var kept: [String: [Int]] = [:]
        for space in graph.spaces {
            kept[space.path] = (0..<space.count).filter { !removed.contains(graph.group(space.first + $0)) }
        }
        var plan = PrunePlan(graph: graph, removed: removed, keptChannels: kept, scores: base.scores)
        plan.keptHeads = base.keptHeads
        plan.headScores = base.headScores
        return plan
    }

    func measure(_ removed: Set<Int>) throws -> Int {
        try measure(try Rewriter(planner: planner, plan: makePlan(removed)).prune(constants: nil).model)
    }

    func measure(_ model: Model) throws -> Int {
        switch budget.measure {
        case .parameters: return model.parameterCount
        case .bytes: return model.weightBytes
        case .macs:
            guard let macs = try Inspection.of(model, tensorStatistics: false).totalMACs else {
                throw SelectionError(option: "target-macs", ": the model's MACs cannot be counted")
            }
            return macs
        }
    }
}

extension PruneBudget.Measure {
    /// The selection part a message names (`--target-params` in the CLI).
    var option: String {
        switch self {
        case .parameters: return "target-params"
        case .macs: return "target-macs"
        case .bytes: return "target-size"
        }
    }
}
