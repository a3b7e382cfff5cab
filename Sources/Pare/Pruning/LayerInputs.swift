/// The inputs of chosen layers over calibration data, recorded in one pass of a model.
///
/// Reconstruction needs, for each layer it may fit, that layer's input in the original model and in
/// the pruned model as it stands. Recording every layer in one pass runs the original once and the
/// pruned model again only after a step changed it, where running both models for every layer made
/// `--reconstruct` and `--recalibrate-bn` cost two full passes per layer (even when nothing changed).
enum LayerInputs {
    /// Values recorded in one pass at most (1 GiB of float32); past it, layers are recorded one at a time.
    static let limit = 1 << 28

    /// Per path, the layer's first input batch by batch; nil when the recording would hold more than
    /// `limit` values. Layers that never run are absent.
    static func record(
        _ model: Model, paths: Set<String>, calibration: [FloatArray], batchSize: Int, limit: Int = limit
    ) throws -> [String: [FloatArray]]? {
        guard !paths.isEmpty else { return [:] }
        let interpreter = try Interpreter(model)
        var seen: [String: [FloatArray]] = [:]
        var total = 0
        interpreter.observer = { layer, inputs, _ in
            guard total <= limit, paths.contains(layer), let x = inputs.first else { return }
            total += x.count
            if total <= limit { seen[layer, default: []].append(x) }
        }
        let n = calibration.first?.batch ?? 0
        var start = 0
        while start < n {
            let range = start..<min(n, start + max(batchSize, 1))
            _ = try interpreter.run(calibration.map { $0.slice(range) })
            guard total <= limit else { return nil }
            start = range.upperBound
        }
        return seen
    }

    /// One layer's first input batch by batch, however large.
    static func record(_ model: Model, path: String, calibration: [FloatArray], batchSize: Int) throws
        -> [FloatArray]
    {
        try record(model, paths: [path], calibration: calibration, batchSize: batchSize, limit: .max)?[path] ?? []
    }
}
