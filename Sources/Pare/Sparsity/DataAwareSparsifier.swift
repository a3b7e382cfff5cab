import COpenBLAS
import Foundation

/// How `sparsify` ranks the weights it zeroes.
public enum SparsityCriterion: String, CaseIterable, Sendable {
    /// |w|.
    case magnitude
    /// |w| × the L2 norm of the weight's input feature over calibration data (Wanda, Sun et al. 2023):
    /// a small weight on a large activation still matters.
    case wanda
}

/// Sparsification that looks at calibration data: Wanda scores, and SparseGPT-style reconstruction.
///
/// The layers it fits are Dense and Conv1D/Conv2D (one group, channels-last, float32, called once, at
/// the top level); their input features are the layer's inputs (im2col patches for a convolution).
/// Other kernels in the selection (depthwise, separable, transposed, nested) are ranked by magnitude,
/// and each row of the result says which criterion it used.
///
/// Reconstruction (Frantar & Alistarh 2023, SparseGPT), layer by layer in graph order: the layer's
/// inputs X̃ in the model sparsified so far, its original outputs Y. First the dense ridge fit
/// W₀ = (X̃ᵀX̃ + λI)⁻¹ X̃ᵀY (as `prune --reconstruct`), then the input features are walked in blocks of
/// 128: the criterion picks the block's weights to zero on the weights as updated so far, and each
/// zeroed weight's error is spread over the features not yet walked through the Cholesky factor U of
/// H⁻¹ (H = X̃ᵀX̃ + λI): W[m] −= (w / U[j][j]) · U[j][m] for m > j. The bias (a column of ones in X̃)
/// is never zeroed and absorbs what it can.
public enum DataAwareSparsifier {
    /// Features walked together: the mask of a block is chosen on the weights updated so far.
    static let block = 128

    public struct Options: Sendable {
        public var sparsity: Double
        public var global = false
        public var layers: Set<String>?
        public var criterion: SparsityCriterion = .wanda
        public var reconstruct = false
        public var ridge = 1e-2

        public init(sparsity: Double) { self.sparsity = sparsity }
    }

    /// The sparsified model, per kernel its zeros and criterion, and per fitted layer its errors.
    public static func sparsify(_ model: Model, _ options: Options, calibration: [FloatArray]) throws
        -> MagnitudeSparsifier.Sparsified
    {
        guard options.sparsity >= 0, options.sparsity < 1 else {
            throw SelectionError(option: "sparsity", "must be in [0, 1)")
        }
        guard model.kind != .tensors, let arch = try CheckedModel(model).architecture else {
            throw PareError(
                file: model.sourcePath,
                "\(options.criterion == .wanda ? "--criterion wanda" : "--reconstruct") needs the layer graph to run "
                    + "calibration data; this file holds tensors only")
        }
        let fitted = try fittedLayers(model, arch: arch, layers: options.layers)
        // Scores of every selected kernel: wanda's where the inputs are known, else magnitude.
        let norms =
            options.criterion == .wanda
            ? try featureNorms(model, layers: fitted, calibration: calibration) : [:]
        let targets = try MagnitudeSparsifier.targets(model, layers: options.layers)
        var scores: [[Float]] = []
        var criteria: [String] = []
        for t in targets {
            let values = try t.tensor.floats()
            let outputs = max(t.tensor.shape.last ?? 1, 1)
            let norm =
                isKernel(t, of: model)
                ? norms[t.layer].flatMap { $0.count == values.count / outputs ? $0 : nil } : nil
            criteria.append(
                norm != nil
                    ? "wanda"
                    : options.criterion == .wanda
                        ? "magnitude (no input features for this layer)"
                        : "magnitude")
            scores.append(values.indices.map { abs(values[$0]) * (norm?[$0 / outputs] ?? 1) })
        }
        var result: MagnitudeSparsifier.Sparsified
        if options.reconstruct {
            // The share of each kernel: the sparsity itself, or what one global ranking gives it.
            let shares =
                options.global
                ? MagnitudeSparsifier.globalShares(scores, sparsity: options.sparsity)
                : targets.map { _ in options.sparsity }
            result = try reconstruct(
                model, targets: targets, shares: shares, fitted: fitted, options: options, calibration: calibration)
        } else {
            result = try MagnitudeSparsifier.run(
                model, targets, scores: scores, criteria: criteria, sparsity: options.sparsity, global: options.global,
                perOutput: options.criterion == .wanda)
        }
        return result
    }

    /// The layers whose input features can be formed, by name, with their im2col window (nil: Dense).
    static func fittedLayers(_ model: Model, arch: Architecture, layers: Set<String>?) throws -> [String: ConvWindow?] {
        let checked = try CheckedModel(model)
        var fitted: [String: ConvWindow?] = [:]
        for site in arch.callOrder where site.layer.nested == nil && site.layer.calls.count == 1 {
            let path = site.layer.name
            if let layers, !layers.contains(path) { continue }
            guard let kernel = checked.weightsByRole(path)["kernel"], kernel.tensor.dtype == .float32 else { continue }
            if checked.kind(path) is Dense {
                fitted[path] = .some(nil)
            } else if let conv = checked.kind(path) as? Conv, conv.groups == 1, conv.base.rank <= 2,
                !conv.base.layout.channelsFirst
            {
                fitted[path] = conv.base.window
            }
        }
        return fitted
    }

    /// Per fitted layer, the L2 norm of each input feature over the calibration data (original model).
    static func featureNorms(_ model: Model, layers: [String: ConvWindow?], calibration: [FloatArray]) throws
        -> [String: [Float]]
    {
        var squares: [String: [Double]] = [:]
        _ = try LayerInputs.visit(model, paths: Set(layers.keys), calibration: calibration, batchSize: 128) {
            path, x in
            guard let window = layers[path] else { return true }
            let f = Reconstruction.features(x, window: window)
            var s = squares[path] ?? [Double](repeating: 0, count: f.width)
            guard s.count == f.width else { return true }
            for (i, v) in f.data.enumerated() { s[i % f.width] += Double(v) * Double(v) }
            squares[path] = s
            return true
        }
        return squares.mapValues { $0.map { Float($0.squareRoot()) } }
    }

    /// SparseGPT-style: each fitted kernel refitted, then zeroed block by block with the error spread
    /// over the features left; other kernels zeroed by magnitude.
    static func reconstruct(
        _ model: Model, targets: [MagnitudeSparsifier.Target], shares: [Double], fitted: [String: ConvWindow?],
        options: Options, calibration: [FloatArray]
    ) throws -> MagnitudeSparsifier.Sparsified {
        var out = model
        var rows: [MagnitudeSparsifier.Row] = []
        let arch = try CheckedModel(model).architecture!
        let order = arch.callOrder.map(\.layer.name)
        let ordered = targets.indices.sorted {
            (order.firstIndex(of: targets[$0].layer) ?? .max, $0) < (
                order.firstIndex(of: targets[$1].layer) ?? .max, $1
            )
        }
        var done: [Int: MagnitudeSparsifier.Row] = [:]
        for i in ordered {
            let t = targets[i]
            let k = Int((shares[i] * Double(t.tensor.count)).rounded())
            if isKernel(t, of: model), t.tensor.dtype == .float32, let window = fitted[t.layer],
                let fit = try fitLayer(
                    &out, original: model, path: t.layer, window: window, zeros: k, options: options,
                    calibration: calibration)
            {
                var row = try MagnitudeSparsifier.store(&out, t, Tensor(float32: fit.kernel, shape: t.tensor.shape))
                row.criterion = "\(options.criterion.rawValue) + reconstruct"
                row.errorBefore = fit.before
                row.errorAfter = fit.after
                done[i] = row
                continue
            }
            // Not fitted: the criterion's own ranking, as without --reconstruct.
            let current = try MagnitudeSparsifier.current(out, t)
            let values = try current.floats()
            let ranked = values.indices.sorted { (abs(values[$0]), $0) < (abs(values[$1]), $1) }
            var row = try MagnitudeSparsifier.store(&out, t, try current.flatZeroed(Set(ranked.prefix(k))))
            row.criterion = "magnitude (no input features for this layer)"
            done[i] = row
        }
        for i in targets.indices { rows.append(done[i]!) }
        return MagnitudeSparsifier.Sparsified(model: out, rows: rows)
    }

    /// Whether a target is its layer's `kernel` (not a depthwise or pointwise one): the weight fitted.
    static func isKernel(_ t: MagnitudeSparsifier.Target, of model: Model) -> Bool {
        model.layer(named: t.layer)?.weights.first { $0.role == "kernel" }?.name == t.weight
    }

    struct Fit {
        var kernel: [Float]
        var before: Double
        var after: Double
    }

    /// Fits one layer: ridge refit, then blockwise zeroing with inverse-Hessian updates; sets the bias.
    /// nil when the layer cannot be fitted (too wide, no features, singular system).
    static func fitLayer(
        _ model: inout Model, original: Model, path: String, window: ConvWindow?, zeros: Int, options: Options,
        calibration: [FloatArray]
    ) throws -> Fit? {
        guard let layer = model.layer(named: path), let kernel = layer.weights.first(where: { $0.role == "kernel" }),
            let originalLayer = original.layer(named: path),
            let originalKernel = originalLayer.weights.first(where: { $0.role == "kernel" })
        else { return nil }
        let bias = layer.weights.first { $0.role == "bias" }
        let outputs = kernel.tensor.shape.last ?? 0
        let inputs = kernel.tensor.count / max(outputs, 1)
        let captured = try Reconstruction.capture(
            path: path, original: original, pruned: model, calibration: calibration, batchSize: 128)
        guard
            let system = try Reconstruction.NormalEquations(
                window: window, captured: captured, originalKernel: originalKernel.tensor,
                originalBias: originalLayer.weights.first(where: { $0.role == "bias" })?.tensor,
                columns: Array(0..<outputs), inputs: inputs, hasBias: bias != nil)
        else { return nil }
        let d = system.d
        // Dense weights to start from: the ridge refit (the inputs may already differ upstream).
        guard
            var w = Reconstruction.solveRidge(
                gram: system.gram, cross: system.cross, d: d, k: outputs, ridge: options.ridge)
        else { return nil }
        // The error of the criterion's mask on the original weights, untouched: what plain zeroing gives.
        var plain = try originalKernel.tensor.floats().map(Double.init)
        if let b = originalLayer.weights.first(where: { $0.role == "bias" }) {
            plain += try b.tensor.floats().map(Double.init)
        }
        let norms = (0..<inputs).map { Float(system.gram[$0 * d + $0].squareRoot()) }
        let plainScores = (0..<(inputs * outputs)).map {
            Float(abs(plain[$0])) * (options.criterion == .wanda ? norms[$0 / outputs] : 1)
        }
        for j in plainScores.indices.sorted(by: { (plainScores[$0], $0) < (plainScores[$1], $1) }).prefix(zeros) {
            plain[j] = 0
        }
        let before = system.error(plain)
        guard let u = inverseHessianFactor(system.gram, d: d, ridge: options.ridge) else { return nil }
        var removed = 0
        var blockStart = 0
        while blockStart < inputs {
            let blockEnd = min(inputs, blockStart + block)
            // Zeros due by the end of this block, in proportion, so the layer ends exactly at `zeros`.
            let due = Int((Double(zeros) * Double(blockEnd) / Double(inputs)).rounded()) - removed
            var candidates: [(score: Float, index: Int)] = []
            for j in blockStart..<blockEnd {
                let scale = options.criterion == .wanda ? norms[j] : 1
                for o in 0..<outputs { candidates.append((Float(abs(w[j * outputs + o])) * scale, j * outputs + o)) }
            }
            candidates.sort { ($0.score, $0.index) < ($1.score, $1.index) }
            // A masked weight later in the block still takes updates until its own feature comes: its
            // error is then the updated value's, as SparseGPT computes it.
            let mask = Set(candidates.prefix(max(due, 0)).map(\.index))
            removed += mask.count
            for j in blockStart..<blockEnd {
                var error = [Double](repeating: 0, count: outputs)
                var any = false
                for o in 0..<outputs where mask.contains(j * outputs + o) {
                    error[o] = w[j * outputs + o] / u[j * d + j]
                    w[j * outputs + o] = 0
                    any = true
                }
                guard any, j + 1 < d else { continue }
                // W[m][o] −= U[j][m] · error[o] for every feature m after j (the bias row included).
                let rest = Int32(d - j - 1)
                u.withUnsafeBufferPointer { pu in
                    w.withUnsafeMutableBufferPointer { pw in
                        cblas_dger(
                            CblasRowMajor, rest, Int32(outputs), -1, pu.baseAddress! + j * d + j + 1, 1, error, 1,
                            pw.baseAddress! + (j + 1) * outputs, Int32(outputs))
                    }
                }
            }
            blockStart = blockEnd
        }
        let after = system.error(w)
        if bias != nil {
            try Reconstruction.replace(
                &model, path: path, role: "bias", with: w.suffix(outputs).map { Float($0) })
        }
        return Fit(kernel: w.prefix(inputs * outputs).map { Float($0) }, before: before, after: after)
    }

    /// U, upper triangular with H⁻¹ = UᵀU, for H = G + λI (λ = ridge × G's mean diagonal), row-major.
    static func inverseHessianFactor(_ gram: [Double], d: Int, ridge: Double) -> [Double]? {
        var a = gram
        let meanDiagonal = (0..<d).reduce(0.0) { $0 + gram[$1 * d + $1] } / Double(d)
        let lambda = max(ridge * meanDiagonal, 1e-12)
        for i in 0..<d { a[i * d + i] += lambda }
        // Row-major arrays are LAPACK's transposes: 'L' (column-major) is the row-major upper triangle.
        var uplo = Int8(UInt8(ascii: "L"))
        var n = Int32(d)
        var lda = Int32(d)
        var info: Int32 = 0
        dpotrf_(&uplo, &n, &a, &lda, &info)
        guard info == 0 else { return nil }
        dpotri_(&uplo, &n, &a, &lda, &info)
        guard info == 0 else { return nil }
        for i in 0..<d {
            for j in 0..<i { a[i * d + j] = a[j * d + i] }
        }
        dpotrf_(&uplo, &n, &a, &lda, &info)
        guard info == 0 else { return nil }
        for i in 0..<d {
            for j in 0..<i { a[i * d + j] = 0 }
        }
        return a.allSatisfy(\.isFinite) ? a : nil
    }
}
