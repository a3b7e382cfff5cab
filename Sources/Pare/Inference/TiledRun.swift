import Dispatch
import Foundation

/// Running the first layers of a model a few examples at a time, each core on its own tiles.
///
/// Layer by layer over a batch of 256, every activation of a small convolutional network is several
/// megabytes: each layer then reads and writes memory far from the core, and elementwise layers
/// (BatchNormalization, activations, merges, pooling) cost as much as the convolutions. A tile of a
/// few examples keeps a layer's input and output in the core's own cache from one layer to the
/// next. Layers with large weights end the tiled part: a matrix read again for every tile costs more
/// than the activations save, so they run on the whole batch as before (the tiles' values joined).
/// Every layer computes each example on its own (inference), so tiles give the results of the whole
/// batch; a GEMM may sum in another order for fewer rows (OpenBLAS picks kernels by size), which
/// changes the last bits only.
extension Interpreter {
    struct TilePlan {
        /// How many of the execution order's calls run tile by tile.
        var sites: Int
        /// Examples per tile.
        var examples: Int
    }

    /// Weights up to this many values do not end the tiled part (1 MiB as float32).
    static let tiledWeightLimit = 1 << 18
    /// A tile's largest layer output aims at this many bytes: with the layer's input beside it, both
    /// stay in a core's L2 cache (1 MiB on the machines measured, 256 KiB–2 MiB on current x86 and ARM).
    /// 128 KiB to 2 MiB measured within the machine's noise (±10%) on the MNIST CNN and the residual net
    /// at batch 256 (tools/bench/interpreter-notes.md); 512 KiB was best on both by a little.
    static let tileBytes = 512 << 10

    /// The tiled part of `order` and its tile size; nil when the first call already ends it.
    static func tilePlan(order: [CallSite], ops: [String: LayerOp]) -> TilePlan? {
        var sites = 0
        var widest = 1
        for site in order {
            // A nested model runs whole (its layers' weights are not looked at here).
            guard site.layer.nested == nil, let op = ops[site.layer.name], op.weightValues <= tiledWeightLimit
            else { break }
            let elements = ShapeMath.product(op.outputShape.map { max(1, $0 ?? 1) }) ?? .max
            widest = max(widest, min(elements, Int.max / 8))
            sites += 1
        }
        guard sites > 0 else { return nil }
        return TilePlan(sites: sites, examples: max(1, tileBytes / (4 * widest)))
    }

    /// Runs `arch`'s tiled part on tiles of `given` over every core, joins the values still needed,
    /// and runs the rest on the whole batch. Returns nil (nothing is kept) when a tile produced a
    /// mask, which this path does not join, or when a tile failed: the caller then runs the batch
    /// whole, which reports the failure as it always has.
    func runTiled(_ arch: Architecture, order: [CallSite], plan: TilePlan, inputs given: [FloatArray]) throws
        -> [FloatArray]?
    {
        let n = given[0].batch
        let tiles = stride(from: 0, to: n, by: plan.examples).map { $0..<min(n, $0 + plan.examples) }
        var states = [GraphState?](repeating: nil, count: tiles.count)
        var failed = false
        var next = 0
        let lock = NSLock()
        // OpenBLAS set to one thread before any tile calls it.
        Parallel.configure()
        DispatchQueue.concurrentPerform(iterations: min(Parallel.workers, tiles.count)) { _ in
            Parallel.inline {
                while true {
                    lock.lock()
                    let i = next
                    next += 1
                    let stop = failed || i >= tiles.count
                    lock.unlock()
                    if stop { return }
                    var state = GraphState(arch, inputs: given.map { $0.slice(tiles[i]) }, masks: [])
                    let ran = (try? run(order[..<plan.sites], in: &state, prefix: "")) != nil
                    lock.lock()
                    if ran && state.masks.isEmpty { states[i] = state } else { failed = true }
                    lock.unlock()
                }
            }
        }
        guard !failed, let first = states[0] else { return nil }
        let tileStates = states.compactMap { $0 }
        var values: [TensorRef: FloatArray] = [:]
        for ref in first.values.keys {
            // Every tile ran the same calls, so holds the same values.
            let parts = tileStates.compactMap { $0.values[ref] }
            guard parts.count == tiles.count else { return nil }
            values[ref] = FloatArray.joined(parts)
        }
        var joined = GraphState(values: values, usesLeft: first.usesLeft, folded: first.folded)
        try run(order[plan.sites...], in: &joined, prefix: "")
        return try joined.outputs(of: arch).values
    }
}
