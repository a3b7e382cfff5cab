import COpenBLAS
import Foundation

/// Keeps accuracy after channels are removed, without training: on calibration data, in graph
/// order, every layer whose input the removal changed is fitted again to what the original computed.
/// - A BatchNormalization gets the moving mean and variance of its inputs in the pruned model (the
///   mean and population variance over the calibration examples and every position): "adaptive BN".
/// - A Dense or a convolution (Conv1D/Conv2D, one group, channels-last) gets kernel and bias
///   refitted by ridge-regularized least squares, so that its pre-activation output on its inputs in
///   the pruned model matches the original layer's pre-activation output on the original's inputs
///   (the original's kept channels, for a layer whose own outputs were pruned). Convolutions through
///   im2col. The normal equations (XᵀX + λI) W = XᵀY are summed over calibration batches (`ssyrk`,
///   `sgemm` in float32, accumulated in float64) and solved by Cholesky (`dpotrf`, `dpotrs`), with
///   λ = `ridge` × the mean of XᵀX's diagonal.
/// - A DepthwiseConv1D/2D (channels-last) is refitted the same way channel by channel: each kept
///   channel's taps and bias against the original's outputs of that channel.
/// Each step runs the pruned model as it is after the steps before it, so errors do not accumulate.
/// Shared layers (called more than once), layers inside nested models and SeparableConv layers (two
/// kernels in one layer) are left as they are.
public enum Reconstruction {
    public struct LayerReport: Sendable {
        public var path: String
        public var className: String
        /// "refit", "kept" (the refit would not have lowered the error) or "BN statistics".
        public var action: String
        /// ‖XW − Y‖ / ‖Y‖ on the calibration data with the weights before and after (refits only).
        public var errorBefore: Double?
        public var errorAfter: Double?
    }

    /// The reconstructed model and what each step did.
    public struct Outcome: Sendable {
        public var model: Model
        public var reports: [LayerReport]
        /// Whether kernels were refitted (`--reconstruct`) or only BatchNormalization statistics recomputed.
        public var refits: Bool
        /// The layers reconstruction could act on, whether or not their inputs changed.
        public var considered: Int
    }

    /// Widest feature row (im2col columns + bias) refitted: its normal matrix is this squared.
    static let maxFeatures = 8192

    /// `pruned` reconstructed against `original`; `keptOutputs` gives a pruned layer's kept output
    /// channels (the plan's `keptChannels`), `keptInputs` a depthwise layer's kept input channels
    /// (the plan's `keptPositions`; a depthwise layer without an entry keeps them all).
    public static func reconstruct(
        original: Model, pruned: Model, keptOutputs: [String: [Int]], keptInputs: [String: [Int]] = [:],
        calibration: [FloatArray], batchSize: Int = 128, ridge: Double = 1e-3, refit refits: Bool = true
    ) throws -> Outcome {
        var model = pruned
        let checkedOriginal = try CheckedModel(original)
        let checked = try CheckedModel(pruned)
        var reports: [LayerReport] = []
        guard let arch = checked.architecture else {
            return Outcome(model: model, reports: reports, refits: refits, considered: 0)
        }
        var steps: [(path: String, className: String, step: Step)] = []
        for site in arch.callOrder where site.layer.nested == nil && site.layer.calls.count == 1 {
            if let kind = checked.kind(site.layer.name), let step = Step(kind, refits: refits) {
                steps.append((site.layer.name, site.layer.className, step))
            }
        }
        // The original's inputs once; the pruned model's again only after a step changed it.
        let originalInputs = try LayerInputs.record(
            original, paths: Set(steps.map(\.path)), calibration: calibration, batchSize: batchSize)
        var prunedInputs: [String: [FloatArray]]?
        var prunedIsCurrent = false
        // Once a whole recording of the pruned model passed the limit, layers are recorded one at a time.
        var recordsWhole = true
        for (index, s) in steps.enumerated() {
            if !prunedIsCurrent {
                prunedInputs = nil  // the stale recording goes before the new one is made
                if recordsWhole {
                    prunedInputs = try LayerInputs.record(
                        model, paths: Set(steps[index...].map(\.path)), calibration: calibration,
                        batchSize: batchSize)
                    recordsWhole = prunedInputs != nil
                }
                prunedIsCurrent = true
            }
            // A finished recording without the layer: it never ran. Past the limit, one layer at a time.
            let captured = Captured(
                original: try originalInputs.map { $0[s.path] ?? [] }
                    ?? LayerInputs.record(original, path: s.path, calibration: calibration, batchSize: batchSize),
                pruned: try prunedInputs.map { $0[s.path] ?? [] }
                    ?? LayerInputs.record(model, path: s.path, calibration: calibration, batchSize: batchSize))
            let report: LayerReport?
            switch s.step {
            case .batchNorm(let bn):
                guard captured.keptChannelsChanged,
                    try recalibrate(&model, path: s.path, inputs: captured.pruned, axis: bn.axis)
                else { continue }
                report = LayerReport(path: s.path, className: s.className, action: "BN statistics")
            case .dense, .conv:
                guard captured.changed else { continue }
                let window: ConvWindow? = if case .conv(let w) = s.step { w } else { nil }
                report = try refit(
                    &model, path: s.path, className: s.className, window: window, captured: captured,
                    originalWeights: checkedOriginal.weightsByRole(s.path), kept: keptOutputs[s.path], ridge: ridge)
            case .depthwise(let window, let multiplier):
                guard captured.keptChannelsChanged else { continue }
                report = try refitDepthwise(
                    &model, path: s.path, className: s.className, window: window, multiplier: multiplier,
                    captured: captured, originalWeights: checkedOriginal.weightsByRole(s.path),
                    keptChannels: keptInputs[s.path], ridge: ridge)
            }
            guard let report else { continue }
            reports.append(report)
            if report.action != "kept" { prunedIsCurrent = false }
        }
        return Outcome(model: model, reports: reports, refits: refits, considered: steps.count)
    }

    enum Step {
        case batchNorm(BatchNormalization)
        case dense
        case conv(ConvWindow)
        case depthwise(ConvWindow, multiplier: Int)

        /// The step for a layer, nil for layers reconstruction leaves alone.
        init?(_ kind: any LayerKind, refits: Bool) {
            if let bn = kind as? BatchNormalization, !bn.renorm {
                self = .batchNorm(bn)
            } else if !refits {
                return nil
            } else if kind is Dense {
                self = .dense
            } else if let conv = kind as? Conv, conv.groups == 1, conv.base.rank <= 2,
                !conv.base.layout.channelsFirst
            {
                self = .conv(conv.base.window)
            } else if let depthwise = kind as? DepthwiseConv, depthwise.base.rank <= 2,
                !depthwise.base.layout.channelsFirst
            {
                self = .depthwise(depthwise.base.window, multiplier: depthwise.multiplier)
            } else {
                return nil
            }
        }
    }

    /// A layer's first input in each model, batch by batch over the calibration data.
    struct Captured {
        var original: [FloatArray] = []
        var pruned: [FloatArray] = []
        /// Whether the pruned model's input differs from the original's (in shape, or beyond float noise
        /// in value): a layer mixing channels then computes something else, removed channels included.
        var changed: Bool {
            zip(original, pruned).contains { a, b in
                guard a.shape == b.shape else { return true }
                let scale = a.data.reduce(Float(0)) { max($0, abs($1)) }
                return zip(a.data, b.data).contains { abs($0 - $1) > 1e-6 * max(scale, 1e-30) }
            }
        }

        /// Whether a kept channel differs: a per-channel layer (BatchNormalization) whose channels were
        /// only removed computes the same on the rest, and its trained statistics stay.
        var keptChannelsChanged: Bool {
            zip(original, pruned).contains { a, b in !Self.keepsChannels(of: a, b) }
        }

        /// Whether each channel (last axis) of `b` equals a channel of `a`, in order.
        static func keepsChannels(of a: FloatArray, _ b: FloatArray) -> Bool {
            guard a.shape.dropLast() == b.shape.dropLast(), let ca = a.shape.last, let cb = b.shape.last, cb <= ca
            else { return false }
            let scale = a.data.reduce(Float(0)) { max($0, abs($1)) }
            let tolerance = 1e-6 * max(scale, 1e-30)
            let positions = a.count / max(ca, 1)
            var next = 0
            for j in 0..<cb {
                var found = false
                while next < ca, !found {
                    found = (0..<positions).allSatisfy {
                        abs(a.data[$0 * ca + next] - b.data[$0 * cb + j]) <= tolerance
                    }
                    next += 1
                }
                if !found { return false }
            }
            return true
        }
    }

    /// One layer's input in each model (the data-aware sparsifier fits layer by layer).
    static func capture(path: String, original: Model, pruned: Model, calibration: [FloatArray], batchSize: Int)
        throws -> Captured
    {
        Captured(
            original: try LayerInputs.record(original, path: path, calibration: calibration, batchSize: batchSize),
            pruned: try LayerInputs.record(pruned, path: path, calibration: calibration, batchSize: batchSize))
    }

    /// Sets a BatchNormalization's moving statistics to its inputs' over the calibration data.
    static func recalibrate(_ model: inout Model, path: String, inputs: [FloatArray], axis: Int) throws -> Bool {
        guard let rank = inputs.first?.shape.count, axis == -1 || axis == rank - 1,
            let channels = inputs.first?.shape.last, channels > 0
        else { return false }
        var sum = [Double](repeating: 0, count: channels)
        var squares = [Double](repeating: 0, count: channels)
        var count = 0
        for x in inputs {
            for (i, v) in x.data.enumerated() {
                sum[i % channels] += Double(v)
                squares[i % channels] += Double(v) * Double(v)
            }
            count += x.count / channels
        }
        guard count > 0 else { return false }
        let mean = sum.map { $0 / Double(count) }
        let variance = zip(squares, mean).map { max($0 / Double(count) - $1 * $1, 0) }
        try replace(&model, path: path, role: "moving_mean", with: mean.map { Float($0) })
        try replace(&model, path: path, role: "moving_variance", with: variance.map { Float($0) })
        return true
    }

    static func replace(_ model: inout Model, path: String, role: String, with values: [Float]) throws {
        guard let l = model.layers.firstIndex(where: { $0.name == path }),
            let w = model.layers[l].weights.firstIndex(where: { $0.role == role })
        else { throw PareError(file: model.sourcePath, object: "layer '\(path)'", "has no \(role) to reconstruct") }
        let shape = model.layers[l].weights[w].tensor.shape
        guard shape.reduce(1, *) == values.count else {
            throw PareError(
                file: model.sourcePath, object: "layer '\(path)' \(role)",
                "holds \(shape.reduce(1, *)) values; reconstruction computed \(values.count)")
        }
        model.layers[l].weights[w].tensor = Tensor(float32: values, shape: shape)
    }

    /// Feature rows of a layer's input: the last axis for a Dense, im2col patches for a convolution.
    static func features(_ x: FloatArray, window: ConvWindow?) -> (rows: Int, width: Int, data: [Float]) {
        guard let window else {
            let width = x.shape.last ?? 1
            return (x.count / max(width, 1), width, x.data)
        }
        let image = SpatialLayout.asImage(x)
        let w = window.window(image)
        let channels = image.shape[3]
        let (perImage, width) = (w.outH * w.outW, w.kH * w.kW * channels)
        var cols = [Float](repeating: 0, count: image.batch * perImage * width)
        image.data.withUnsafeBufferPointer { input in
            cols.withUnsafeMutableBufferPointer { c in
                for i in 0..<image.batch {
                    ConvolutionKernels.im2col(
                        input.baseAddress! + i * w.inH * w.inW * channels, channels: channels, firstChannel: 0,
                        groupChannels: channels, window: w, into: c.baseAddress! + i * perImage * width)
                }
            }
        }
        return (image.batch * perImage, width, cols)
    }

    /// The normal equations of one layer's fit: G = XᵀX and C = XᵀY over the calibration batches,
    /// X the pruned model's features (with a column of ones last when the layer has a bias), Y the
    /// original layer's pre-activation outputs at `columns` (its kept channels).
    struct NormalEquations {
        /// Feature columns of the kernel, and of X (the kernel's plus the bias column).
        var inputs: Int
        var d: Int
        var outputs: Int
        var gram: [Double]
        var cross: [Double]
        var targetSquares: Double

        /// nil when the captured features do not match the kernels (sizes) or the layer is too wide.
        init?(
            window: ConvWindow?, captured: Captured, originalKernel: Tensor, originalBias: Tensor?, columns: [Int],
            inputs: Int, hasBias: Bool
        ) throws {
            let outputs = columns.count
            let originalOutputs = originalKernel.shape.last ?? 0
            let d = inputs + (hasBias ? 1 : 0)
            guard d <= Reconstruction.maxFeatures, outputs > 0, columns.allSatisfy({ $0 < originalOutputs }) else {
                return nil
            }
            let wOriginal = try originalKernel.floats()
            let bOriginal = try originalBias?.floats() ?? [Float](repeating: 0, count: originalOutputs)
            let originalInputs = originalKernel.count / max(originalOutputs, 1)
            var gram = [Double](repeating: 0, count: d * d)
            var cross = [Double](repeating: 0, count: d * outputs)
            var targetSquares = 0.0
            for (xo, xp) in zip(captured.original, captured.pruned) {
                let fo = Reconstruction.features(xo, window: window)
                let fp = Reconstruction.features(xp, window: window)
                guard fo.width == originalInputs, fp.width == inputs, fo.rows == fp.rows else { return nil }
                let rows = fp.rows
                // Y: the original layer's pre-activation outputs, its kept channels only.
                var full = [Float](repeating: 0, count: rows * originalOutputs)
                multiplyMatrices(
                    fo.data, rows: rows, inner: originalInputs, wOriginal, columns: originalOutputs, into: &full)
                var y = [Float](repeating: 0, count: rows * outputs)
                for r in 0..<rows {
                    for (j, c) in columns.enumerated() {
                        y[r * outputs + j] = full[r * originalOutputs + c] + bOriginal[c]
                    }
                }
                for v in y { targetSquares += Double(v) * Double(v) }
                // X: the pruned model's features, with a column of ones for the bias.
                var x = [Float](repeating: 1, count: rows * d)
                for r in 0..<rows {
                    for j in 0..<inputs { x[r * d + j] = fp.data[r * inputs + j] }
                }
                Reconstruction.accumulate(x: x, y: y, rows: rows, d: d, k: outputs, gram: &gram, cross: &cross)
            }
            for i in 0..<d {
                for j in 0..<i { gram[i * d + j] = gram[j * d + i] }
            }
            guard targetSquares > 0 else { return nil }
            (self.inputs, self.d, self.outputs) = (inputs, d, outputs)
            (self.gram, self.cross, self.targetSquares) = (gram, cross, targetSquares)
        }

        /// ‖XW − Y‖ / ‖Y‖ of a (d × outputs) weight matrix.
        func error(_ w: [Double]) -> Double {
            Reconstruction.relativeError(w, gram: gram, cross: cross, targetSquares: targetSquares, d: d, k: outputs)
        }
    }

    /// Adds one batch's XᵀX (upper triangle) and XᵀY to `gram` and `cross`: X is rows × d, Y rows × k,
    /// row-major; the products in float32 (`ssyrk`, `sgemm`), the sums in float64.
    static func accumulate(
        x: [Float], y: [Float], rows: Int, d: Int, k: Int, gram: inout [Double], cross: inout [Double]
    ) {
        var g = [Float](repeating: 0, count: d * d)
        var c = [Float](repeating: 0, count: d * k)
        x.withUnsafeBufferPointer { px in
            g.withUnsafeMutableBufferPointer { pg in
                cblas_ssyrk(
                    CblasRowMajor, CblasUpper, CblasTrans, Int32(d), Int32(rows), 1, px.baseAddress!, Int32(d), 0,
                    pg.baseAddress!, Int32(d))
            }
            y.withUnsafeBufferPointer { py in
                c.withUnsafeMutableBufferPointer { pc in
                    cblas_sgemm(
                        CblasRowMajor, CblasTrans, CblasNoTrans, Int32(d), Int32(k), Int32(rows), 1, px.baseAddress!,
                        Int32(d), py.baseAddress!, Int32(k), 0, pc.baseAddress!, Int32(k))
                }
            }
        }
        for i in 0..<d {
            for j in i..<d { gram[i * d + j] += Double(g[i * d + j]) }
        }
        for i in 0..<(d * k) { cross[i] += Double(c[i]) }
    }

    /// Refits one Dense or convolution; nil when it cannot be (sizes, dtypes).
    static func refit(
        _ model: inout Model, path: String, className: String, window: ConvWindow?, captured: Captured,
        originalWeights: [String: Weight], kept: [Int]?, ridge: Double
    ) throws -> LayerReport? {
        guard let layer = model.layer(named: path), let kernel = layer.weights.first(where: { $0.role == "kernel" }),
            let originalKernel = originalWeights["kernel"], kernel.tensor.dtype == .float32
        else { return nil }
        let bias = layer.weights.first { $0.role == "bias" }
        let outputs = kernel.tensor.shape.last ?? 0
        let columns = kept ?? Array(0..<(originalKernel.tensor.shape.last ?? 0))
        guard columns.count == outputs,
            let system = try NormalEquations(
                window: window, captured: captured, originalKernel: originalKernel.tensor,
                originalBias: originalWeights["bias"]?.tensor, columns: columns,
                inputs: kernel.tensor.count / max(outputs, 1), hasBias: bias != nil)
        else { return nil }
        // The current weights as one (d × outputs) matrix, for the error before.
        var current = try kernel.tensor.floats().map(Double.init)
        if let bias { current += try bias.tensor.floats().map(Double.init) }
        let before = system.error(current)
        guard let solved = solveRidge(gram: system.gram, cross: system.cross, d: system.d, k: outputs, ridge: ridge)
        else { return nil }
        let after = system.error(solved)
        // Keep what fits better: a singular or badly scaled system must not make the layer worse.
        guard after < before else {
            return LayerReport(
                path: path, className: className, action: "kept", errorBefore: before, errorAfter: before)
        }
        try replace(&model, path: path, role: "kernel", with: solved.prefix(system.inputs * outputs).map { Float($0) })
        if bias != nil { try replace(&model, path: path, role: "bias", with: solved.suffix(outputs).map { Float($0) }) }
        return LayerReport(path: path, className: className, action: "refit", errorBefore: before, errorAfter: after)
    }

    /// ‖XW − Y‖ / ‖Y‖ from the normal equations (G = XᵀX, C = XᵀY, column by column).
    static func relativeError(
        _ w: [Double], gram: [Double], cross: [Double], targetSquares: Double, d: Int, k: Int
    ) -> Double {
        var total = targetSquares
        for col in 0..<k {
            var quadratic = 0.0
            var linear = 0.0
            for i in 0..<d {
                var gw = 0.0
                for j in 0..<d { gw += gram[i * d + j] * w[j * k + col] }
                quadratic += w[i * k + col] * gw
                linear += w[i * k + col] * cross[i * k + col]
            }
            total += quadratic - 2 * linear
        }
        return (max(total, 0) / targetSquares).squareRoot()
    }

    /// W = (G + λI)⁻¹ C, λ = ridge × mean diagonal of G, by Cholesky; nil when G is not positive definite.
    static func solveRidge(gram: [Double], cross: [Double], d: Int, k: Int, ridge: Double) -> [Double]? {
        var a = gram
        let meanDiagonal = (0..<d).reduce(0.0) { $0 + gram[$1 * d + $1] } / Double(d)
        let lambda = max(ridge * meanDiagonal, 1e-12)
        for i in 0..<d { a[i * d + i] += lambda }
        // LAPACK is column-major; G is symmetric, and the right-hand sides go in column by column.
        var b = [Double](repeating: 0, count: d * k)
        for i in 0..<d {
            for j in 0..<k { b[j * d + i] = cross[i * k + j] }
        }
        var uplo = Int8(UInt8(ascii: "U"))
        var n = Int32(d)
        var nrhs = Int32(k)
        var lda = Int32(d)
        var ldb = Int32(d)
        var info: Int32 = 0
        dpotrf_(&uplo, &n, &a, &lda, &info)
        guard info == 0 else { return nil }
        dpotrs_(&uplo, &n, &nrhs, &a, &lda, &b, &ldb, &info)
        guard info == 0 else { return nil }
        var w = [Double](repeating: 0, count: d * k)
        for i in 0..<d {
            for j in 0..<k { w[i * k + j] = b[j * d + i] }
        }
        return w.allSatisfy(\.isFinite) ? w : nil
    }
}
