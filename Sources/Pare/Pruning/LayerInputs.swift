/// The inputs of chosen layers over calibration data, recorded in one pass of a model.
///
/// Reconstruction needs, for each layer it may fit, that layer's input in the original model and in
/// the pruned model as it stands. Recording every layer in one pass runs the original once and the
/// pruned model again only after a step changed it, where running both models for every layer made
/// `--reconstruct` and `--recalibrate-bn` cost two full passes per layer (even when nothing changed).
enum LayerInputs {
    /// Values recorded in one pass at most: 1 GiB of float32, or a quarter of the memory budget
    /// (`--max-memory`, the machine's) when that is less; past it, layers are recorded one at a time.
    static var limit: Int { min(1 << 28, MemoryBudget.limit / 16) }

    /// Per path, the layer's first input batch by batch; nil when the recording would hold more than
    /// `limit` values. Layers that never run are absent.
    static func record(
        _ model: Model, paths: Set<String>, calibration: [FloatArray], batchSize: Int, limit: Int = limit
    ) throws -> [String: [FloatArray]]? {
        var seen: [String: [FloatArray]] = [:]
        var total = 0
        let finished = try visit(model, paths: paths, calibration: calibration, batchSize: batchSize) { layer, x in
            total += x.count
            guard total <= limit else { return false }
            seen[layer, default: []].append(x)
            return true
        }
        return finished ? seen : nil
    }

    /// Runs `model` over the calibration data in batches and hands `body` the first input of every call
    /// of a layer in `paths`; `body` returns false to stop (then so does this, returning false).
    static func visit(
        _ model: Model, paths: Set<String>, calibration: [FloatArray], batchSize: Int,
        _ body: @escaping (String, FloatArray) -> Bool
    ) throws -> Bool {
        guard !paths.isEmpty else { return true }
        let interpreter = try Interpreter(model)
        var going = true
        interpreter.observer = { layer, inputs, _ in
            guard going, paths.contains(layer), let x = inputs.first else { return }
            going = body(layer, x)
        }
        let n = calibration.first?.batch ?? 0
        var start = 0
        while start < n {
            let range = start..<min(n, start + max(batchSize, 1))
            _ = try interpreter.run(calibration.map { $0.slice(range) })
            guard going else { return false }
            start = range.upperBound
        }
        return true
    }

    /// One layer's first input batch by batch, however large.
    static func record(_ model: Model, path: String, calibration: [FloatArray], batchSize: Int) throws
        -> [FloatArray]
    {
        try record(model, paths: [path], calibration: calibration, batchSize: batchSize, limit: .max)?[path] ?? []
    }
}
