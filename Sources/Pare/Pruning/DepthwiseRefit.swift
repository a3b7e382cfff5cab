extension Reconstruction {
    /// Refits a DepthwiseConv1D/2D channel by channel: channel c's taps (and its bias) see only channel
    /// c of the input, so each kept channel is its own small least-squares problem, features its im2col
    /// taps in the pruned model, targets the original layer's pre-activation outputs of that channel
    /// (`multiplier` of them) on the original's input. A channel keeps its weights where the refit would
    /// not lower its error. nil when the layer cannot be fitted (sizes, dtypes).
    static func refitDepthwise(
        _ model: inout Model, path: String, className: String, window: ConvWindow, multiplier m: Int,
        captured: Captured, originalWeights: [String: Weight], keptChannels: [Int]?, ridge: Double
    ) throws -> LayerReport? {
        guard let layer = model.layer(named: path),
            let kernel = layer.weights.first(where: { $0.role == "depthwise_kernel" }),
            let originalKernel = originalWeights["depthwise_kernel"], kernel.tensor.dtype == .float32,
            kernel.tensor.shape.count >= 3, originalKernel.tensor.shape.count == kernel.tensor.shape.count, m > 0
        else { return nil }
        let bias = layer.weights.first { $0.role == "bias" }
        let channels = kernel.tensor.shape[kernel.tensor.shape.count - 2]
        let originalChannels = originalKernel.tensor.shape[originalKernel.tensor.shape.count - 2]
        let taps = kernel.tensor.count / max(channels * m, 1)
        let kept = keptChannels ?? (channels == originalChannels ? Array(0..<channels) : [])
        guard channels > 0, kept.count == channels, kept.allSatisfy({ $0 >= 0 && $0 < originalChannels }),
            originalKernel.tensor.count == taps * originalChannels * m
        else { return nil }
        let d = taps + (bias != nil ? 1 : 0)
        let w0 = try originalKernel.tensor.floats()
        let b0 = try originalWeights["bias"]?.tensor.floats() ?? [Float](repeating: 0, count: originalChannels * m)
        guard b0.count == originalChannels * m else { return nil }
        var grams = [[Double]](repeating: [Double](repeating: 0, count: d * d), count: channels)
        var crosses = [[Double]](repeating: [Double](repeating: 0, count: d * m), count: channels)
        var targetSquares = [Double](repeating: 0, count: channels)
        for (xo, xp) in zip(captured.original, captured.pruned) {
            let fo = features(xo, window: window)
            let fp = features(xp, window: window)
            guard fo.width == taps * originalChannels, fp.width == taps * channels, fo.rows == fp.rows else {
                return nil
            }
            let rows = fp.rows
            var x = [Float](repeating: 1, count: rows * d)
            var y = [Float](repeating: 0, count: rows * m)
            for (channel, oc) in kept.enumerated() {
                // im2col lays a row out tap by tap, channels fastest: tap p of channel c is p × C + c.
                for r in 0..<rows {
                    for p in 0..<taps { x[r * d + p] = fp.data[r * fp.width + p * channels + channel] }
                    for j in 0..<m {
                        var sum = b0[oc * m + j]
                        for p in 0..<taps {
                            sum +=
                                fo.data[r * fo.width + p * originalChannels + oc]
                                * w0[(p * originalChannels + oc) * m + j]
                        }
                        y[r * m + j] = sum
                        targetSquares[channel] += Double(sum) * Double(sum)
                    }
                }
                accumulate(x: x, y: y, rows: rows, d: d, k: m, gram: &grams[channel], cross: &crosses[channel])
            }
        }
        var newKernel = try kernel.tensor.floats()
        var newBias = try bias?.tensor.floats() ?? []
        var (residualBefore, residualAfter, total) = (0.0, 0.0, 0.0)
        for channel in 0..<channels where targetSquares[channel] > 0 {
            for i in 0..<d {
                for j in 0..<i { grams[channel][i * d + j] = grams[channel][j * d + i] }
            }
            // The channel's current weights as one (d × m) matrix: taps, then the bias.
            var current = [Double](repeating: 0, count: d * m)
            for p in 0..<taps {
                for j in 0..<m { current[p * m + j] = Double(newKernel[(p * channels + channel) * m + j]) }
            }
            if bias != nil { for j in 0..<m { current[taps * m + j] = Double(newBias[channel * m + j]) } }
            let squared = { (w: [Double]) in
                pow2(
                    relativeError(
                        w, gram: grams[channel], cross: crosses[channel],
                        targetSquares: targetSquares[channel], d: d, k: m)) * targetSquares[channel]
            }
            let before = squared(current)
            total += targetSquares[channel]
            residualBefore += before
            guard let solved = solveRidge(gram: grams[channel], cross: crosses[channel], d: d, k: m, ridge: ridge),
                squared(solved) < before
            else {
                residualAfter += before
                continue
            }
            residualAfter += squared(solved)
            for p in 0..<taps {
                for j in 0..<m { newKernel[(p * channels + channel) * m + j] = Float(solved[p * m + j]) }
            }
            if bias != nil { for j in 0..<m { newBias[channel * m + j] = Float(solved[taps * m + j]) } }
        }
        guard total > 0 else { return nil }
        let (before, after) = ((residualBefore / total).squareRoot(), (residualAfter / total).squareRoot())
        guard after < before else {
            return LayerReport(
                path: path, className: className, action: "kept", errorBefore: before, errorAfter: before)
        }
        try replace(&model, path: path, role: "depthwise_kernel", with: newKernel)
        if bias != nil { try replace(&model, path: path, role: "bias", with: newBias) }
        return LayerReport(path: path, className: className, action: "refit", errorBefore: before, errorAfter: after)
    }

    private static func pow2(_ x: Double) -> Double { x * x }
}
