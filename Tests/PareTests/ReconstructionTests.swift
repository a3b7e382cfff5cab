import XCTest

@testable import Pare

/// `prune --reconstruct`: the least-squares refit checked against an independent computation, and
/// BatchNormalization statistics against the activations they summarize.
final class ReconstructionTests: XCTestCase {
    /// x (5) → d1 Dense(units1) → d2 Dense(3), both linear with biases.
    func chain(units1: Int, w1: [Float], b1: [Float], w2: [Float], b2: [Float]) throws -> Model {
        let dense = { (name: String, on: String, units: Int) in
            TestModels.layer(
                "Dense", name, on: on, "\"units\": \(units), \"use_bias\": true, \"activation\": \"linear\"")
        }
        let config = try TestModels.functional(
            [TestModels.input("x", "5"), dense("d1", "x", units1), dense("d2", "d1", 3)], inputs: ["x"], outputs: ["d2"]
        )
        return TestModels.model(
            config,
            [
                TestModels.weights("d1", [("kernel", w1, [5, units1]), ("bias", b1, [units1])]),
                TestModels.weights("d2", [("kernel", w2, [units1, 3]), ("bias", b2, [3])]),
            ], path: "chain")
    }

    /// Solves A x = b by Gaussian elimination with partial pivoting, in Double: no LAPACK.
    func solve(_ a: [[Double]], _ b: [Double]) -> [Double] {
        var m = a
        var v = b
        let n = v.count
        for col in 0..<n {
            let pivot = (col..<n).max { abs(m[$0][col]) < abs(m[$1][col]) }!
            m.swapAt(col, pivot)
            v.swapAt(col, pivot)
            for row in (col + 1)..<n {
                let f = m[row][col] / m[col][col]
                for k in col..<n { m[row][k] -= f * m[col][k] }
                v[row] -= f * v[col]
            }
        }
        var x = [Double](repeating: 0, count: n)
        for row in stride(from: n - 1, through: 0, by: -1) {
            var s = v[row]
            for k in (row + 1)..<n { s -= m[row][k] * x[k] }
            x[row] = s / m[row][row]
        }
        return x
    }

    func testTheRefitIsTheRidgeLeastSquaresSolution() throws {
        var g = RandomInputs(seed: 7)
        let random = { (n: Int) in (0..<n).map { _ in g.next() * 2 - 1 } }
        let (w1, b1, w2, b2) = (random(5 * 4), random(4), random(4 * 3), random(3))
        let original = try chain(units1: 4, w1: w1, b1: b1, w2: w2, b2: b2)
        // d1's channel 2 removed, d2's matching kernel row with it: what prune leaves, before any refit.
        let kept = [0, 1, 3]
        let w1p = (0..<5).flatMap { i in kept.map { w1[i * 4 + $0] } }
        let w2p = kept.flatMap { r in (0..<3).map { w2[r * 3 + $0] } }
        let pruned = try chain(units1: 3, w1: w1p, b1: kept.map { b1[$0] }, w2: w2p, b2: b2)
        let x = random(64 * 5)
        let calibration = [FloatArray(shape: [64, 5], data: x)]
        let result = try Reconstruction.reconstruct(
            original: original, pruned: pruned, keptOutputs: ["d1": kept], calibration: calibration, batchSize: 16)
        XCTAssertEqual(result.reports.map(\.path), ["d2"], "d1's input did not change; d2's did")
        XCTAssertEqual(result.reports.first?.action, "refit")
        // Independently: features [h, 1] of the pruned d1's outputs, targets the original d2's outputs.
        var features: [[Double]] = []
        var targets: [[Double]] = []
        for e in 0..<64 {
            let row = (0..<5).map { Double(x[e * 5 + $0]) }
            let hFull = (0..<4).map { j in (0..<5).reduce(Double(b1[j])) { $0 + row[$1] * Double(w1[$1 * 4 + j]) } }
            targets.append(
                (0..<3).map { o in (0..<4).reduce(Double(b2[o])) { $0 + hFull[$1] * Double(w2[$1 * 3 + o]) } })
            features.append(kept.map { hFull[$0] } + [1])
        }
        var gram = [[Double]](repeating: [Double](repeating: 0, count: 4), count: 4)
        for f in features { for i in 0..<4 { for j in 0..<4 { gram[i][j] += f[i] * f[j] } } }
        let lambda = 1e-3 * (0..<4).reduce(0.0) { $0 + gram[$1][$1] } / 4
        for i in 0..<4 { gram[i][i] += lambda }
        let d2 = try XCTUnwrap(result.model.layer(named: "d2"))
        let kernel = try XCTUnwrap(d2.weights.first { $0.role == "kernel" }).tensor.floats()
        let bias = try XCTUnwrap(d2.weights.first { $0.role == "bias" }).tensor.floats()
        for o in 0..<3 {
            let rhs = (0..<4).map { i in zip(features, targets).reduce(0.0) { $0 + $1.0[i] * $1.1[o] } }
            let w = solve(gram, rhs)
            for r in 0..<3 { XCTAssertEqual(Double(kernel[r * 3 + o]), w[r], accuracy: 1e-4, "kernel \(r), \(o)") }
            XCTAssertEqual(Double(bias[o]), w[3], accuracy: 1e-4, "bias \(o)")
        }
        // The least-squares solution can only lower the error the removal left.
        let report = try XCTUnwrap(result.reports.first)
        XCTAssertLessThan(try XCTUnwrap(report.errorAfter), try XCTUnwrap(report.errorBefore))
    }

    /// x (10 × 3) → d1 Dense(2) → dw DepthwiseConv1D(kernel 3, multiplier 2), all linear with biases.
    func depthwiseChain(w1: [Float], b1: [Float], k: [Float], b: [Float]) throws -> Model {
        let config = try TestModels.functional(
            [
                TestModels.input("x", "10, 3"),
                TestModels.layer(
                    "Dense", "d1", on: "x", "\"units\": 2, \"use_bias\": true, \"activation\": \"linear\""),
                TestModels.layer(
                    "DepthwiseConv1D", "dw", on: "d1",
                    """
                    "kernel_size": [3], "strides": [1], "padding": "valid", "depth_multiplier": 2,
                    "data_format": "channels_last", "dilation_rate": [1], "use_bias": true, "activation": "linear"
                    """),
            ], inputs: ["x"], outputs: ["dw"])
        return TestModels.model(
            config,
            [
                TestModels.weights("d1", [("kernel", w1, [3, 2]), ("bias", b1, [2])]),
                TestModels.weights("dw", [("depthwise_kernel", k, [3, 2, 2]), ("bias", b, [4])]),
            ], path: "depthwise")
    }

    func testADepthwiseLayerIsRefittedChannelByChannel() throws {
        var g = RandomInputs(seed: 5)
        let random = { (n: Int) in (0..<n).map { _ in g.next() * 2 - 1 } }
        let (w1, b1, k, b) = (random(6), random(2), random(12), random(4))
        let original = try depthwiseChain(w1: w1, b1: b1, k: k, b: b)
        // d1 changed upstream (as an earlier refit changes it): dw's input differs, its weights do not.
        let w1p = w1.map { $0 + 0.3 * (g.next() - 0.5) }
        let changed = try depthwiseChain(w1: w1p, b1: b1, k: k, b: b)
        let x = random(20 * 10 * 3)
        let result = try Reconstruction.reconstruct(
            original: original, pruned: changed, keptOutputs: [:],
            calibration: [FloatArray(shape: [20, 10, 3], data: x)],
            batchSize: 7)
        XCTAssertEqual(result.reports.map(\.path), ["dw"], "d1's input did not change; dw's did")
        XCTAssertEqual(result.reports.first?.action, "refit")
        let report = try XCTUnwrap(result.reports.first)
        XCTAssertLessThan(try XCTUnwrap(report.errorAfter), try XCTUnwrap(report.errorBefore))
        let dw = try XCTUnwrap(result.model.layer(named: "dw"))
        let kernel = try XCTUnwrap(dw.weights.first { $0.role == "depthwise_kernel" }).tensor.floats()
        let bias = try XCTUnwrap(dw.weights.first { $0.role == "bias" }).tensor.floats()
        func dense(_ w: [Float], _ e: Int, _ t: Int, _ c: Int) -> Double {
            var sum = Double(b1[c])
            for i in 0..<3 { sum += Double(x[(e * 10 + t) * 3 + i]) * Double(w[i * 2 + c]) }
            return sum
        }
        // Independently, channel by channel: features [h'(t), h'(t+1), h'(t+2), 1] of the changed d1,
        // targets the original dw's outputs c·2 + j on the original d1's.
        for c in 0..<2 {
            var gram = [[Double]](repeating: [Double](repeating: 0, count: 4), count: 4)
            var rhs = [[Double]](repeating: [Double](repeating: 0, count: 4), count: 2)
            for e in 0..<20 {
                for t in 0..<8 {
                    let f = (0..<3).map { dense(w1p, e, t + $0, c) } + [1]
                    for i in 0..<4 { for j in 0..<4 { gram[i][j] += f[i] * f[j] } }
                    for j in 0..<2 {
                        var y = Double(b[c * 2 + j])
                        for p in 0..<3 { y += dense(w1, e, t + p, c) * Double(k[(p * 2 + c) * 2 + j]) }
                        for i in 0..<4 { rhs[j][i] += f[i] * y }
                    }
                }
            }
            let lambda = 1e-3 * (0..<4).reduce(0.0) { $0 + gram[$1][$1] } / 4
            for i in 0..<4 { gram[i][i] += lambda }
            for j in 0..<2 {
                let w = solve(gram, rhs[j])
                for p in 0..<3 {
                    XCTAssertEqual(Double(kernel[(p * 2 + c) * 2 + j]), w[p], accuracy: 1e-3, "tap \(p), \(c), \(j)")
                }
                XCTAssertEqual(Double(bias[c * 2 + j]), w[3], accuracy: 1e-3, "bias \(c), \(j)")
            }
        }
    }

    func testLayerInputsAreRecordedInOnePassWithinTheirLimit() throws {
        var g = RandomInputs(seed: 9)
        let random = { (n: Int) in (0..<n).map { _ in g.next() * 2 - 1 } }
        let model = try chain(units1: 4, w1: random(20), b1: random(4), w2: random(12), b2: random(3))
        let x = FloatArray(shape: [10, 5], data: random(50))
        let all = try XCTUnwrap(LayerInputs.record(model, paths: ["d1", "d2"], calibration: [x], batchSize: 4))
        XCTAssertEqual(all["d1"]?.map(\.batch), [4, 4, 2])
        XCTAssertEqual(all["d1"]?.flatMap(\.data), x.data, "d1's input is the model's")
        XCTAssertEqual(all["d2"]?.map(\.shape), [[4, 4], [4, 4], [2, 4]])
        // 10 × 5 + 10 × 4 = 90 values: one fewer allowed and the recording gives up (layers then one by one).
        XCTAssertNil(try LayerInputs.record(model, paths: ["d1", "d2"], calibration: [x], batchSize: 4, limit: 89))
        XCTAssertNotNil(try LayerInputs.record(model, paths: ["d1", "d2"], calibration: [x], batchSize: 4, limit: 90))
        // The default limit follows the memory budget: 16 bytes of budget per value (a quarter, in float32).
        defer { MemoryBudget.setLimit(nil) }
        MemoryBudget.setLimit(89 * 16)
        XCTAssertEqual(LayerInputs.limit, 89)
        XCTAssertNil(try LayerInputs.record(model, paths: ["d1", "d2"], calibration: [x], batchSize: 4))
        MemoryBudget.setLimit(90 * 16)
        XCTAssertNotNil(try LayerInputs.record(model, paths: ["d1", "d2"], calibration: [x], batchSize: 4))
    }

    func testTheInverseHessianFactorMultipliesBackToTheIdentity() throws {
        var g = RandomInputs(seed: 3)
        let n = 6
        let x = (0..<(40 * n)).map { _ in Double(g.next() * 2 - 1) }
        var gram = [Double](repeating: 0, count: n * n)
        for r in 0..<40 { for i in 0..<n { for j in 0..<n { gram[i * n + j] += x[r * n + i] * x[r * n + j] } } }
        let u = try XCTUnwrap(DataAwareSparsifier.inverseHessianFactor(gram, d: n, ridge: 1e-2))
        let lambda = 1e-2 * (0..<n).reduce(0.0) { $0 + gram[$1 * n + $1] } / Double(n)
        for i in 0..<n {
            for j in 0..<i { XCTAssertEqual(u[i * n + j], 0, "U is upper triangular") }
        }
        // (UᵀU)(G + λI) = I, column by column against the Gaussian-elimination solve of (G + λI) v = e.
        let h = (0..<n).map { i in (0..<n).map { j in gram[i * n + j] + (i == j ? lambda : 0) } }
        for col in 0..<n {
            let v = solve(h, (0..<n).map { $0 == col ? 1.0 : 0.0 })
            for row in 0..<n {
                let inverse = (0..<n).reduce(0.0) { $0 + u[$1 * n + row] * u[$1 * n + col] }
                XCTAssertEqual(inverse, v[row], accuracy: 1e-9 * max(1, abs(v[row])), "H⁻¹[\(row)][\(col)]")
            }
        }
    }

    func testSparseGPTReachesTheSparsityAndLowersEachLayersError() throws {
        var g = RandomInputs(seed: 11)
        let random = { (n: Int) in (0..<n).map { _ in g.next() * 2 - 1 } }
        let model = try chain(units1: 8, w1: random(5 * 8), b1: random(8), w2: random(8 * 3), b2: random(3))
        let calibration = [FloatArray(shape: [96, 5], data: random(96 * 5))]
        for criterion in SparsityCriterion.allCases {
            var options = DataAwareSparsifier.Options(sparsity: 0.5)
            (options.criterion, options.reconstruct) = (criterion, true)
            let result = try DataAwareSparsifier.sparsify(model, options, calibration: calibration)
            XCTAssertEqual(result.rows.map(\.layer), ["d1", "d2"])
            for row in result.rows {
                XCTAssertEqual(row.zeros, row.count / 2, "\(row.layer): exactly half the kernel")
                XCTAssertEqual(row.criterion, "\(criterion.rawValue) + reconstruct")
                XCTAssertLessThan(try XCTUnwrap(row.errorAfter), try XCTUnwrap(row.errorBefore), row.layer)
            }
            // d1's inputs are the model's: its reported error is ‖XW − Y‖ / ‖Y‖ computed here directly.
            let original = try model.layer(named: "d1")!.weights.map { try $0.tensor.floats() }
            let sparse = try result.model.layer(named: "d1")!.weights.map { try $0.tensor.floats() }
            var (difference, norm) = (0.0, 0.0)
            for e in 0..<96 {
                for o in 0..<8 {
                    var (y, z) = (Double(original[1][o]), Double(sparse[1][o]))
                    for i in 0..<5 {
                        let v = Double(calibration[0].data[e * 5 + i])
                        y += v * Double(original[0][i * 8 + o])
                        z += v * Double(sparse[0][i * 8 + o])
                    }
                    (difference, norm) = (difference + (z - y) * (z - y), norm + y * y)
                }
            }
            XCTAssertEqual((difference / norm).squareRoot(), try XCTUnwrap(result.rows[0].errorAfter), accuracy: 1e-4)
        }
    }

    func testReconstructionKeepsTheCNNsAccuracyWherePlainRemovalLosesIt() throws {
        let model = try ModelFile.read(Fixtures.path("mnist_cnn/keras3.h5"))
        let calibration = [try NPY.read(Fixtures.path("data/mnist_calibration.npy")).floatArray()]
        let x = try NPY.read(Fixtures.path("data/mnist_x.npy")).floatArray()
        let labels = try NPY.read(Fixtures.path("data/mnist_y.npy"))
        var selection = PruneSelection()
        selection.keep = ["conv2d": 8, "conv2d_1": 8]
        let job = try PruneJob.plan(model, selection: selection, criterion: .l1, calibration: nil)
        let pruned = try PruneJob.prune(
            job, fold: true, verifyInputs: [x], referenceIsOriginal: false, atol: 1e-6, rtol: 1e-5)
        XCTAssertTrue(pruned.verified)
        let rebuilt = try Reconstruction.reconstruct(
            original: model, pruned: pruned.pruned!, keptOutputs: job.plan.keptChannels, calibration: calibration)
        let accuracy = { (m: Model) throws -> Double in
            try Evaluation.of(predictions: try Interpreter(m).run([x])[0], labels: labels, file: "labels").accuracy
        }
        let (before, plain, reconstructed) = (
            try accuracy(model), try accuracy(pruned.pruned!), try accuracy(rebuilt.model)
        )
        // Measured on the 128 held-out digits (calibration: 512 training digits): 0.953, 0.844, 0.961.
        XCTAssertLessThan(plain, before - 0.05, "removing 75% and 88% of the filters costs accuracy")
        XCTAssertGreaterThan(reconstructed, plain + 0.05, "the refit wins back most of it")
        XCTAssertEqual(rebuilt.reports.first { $0.path == "conv2d_1" }?.action, "refit")
        for report in rebuilt.reports {
            if let before = report.errorBefore, let after = report.errorAfter {
                XCTAssertLessThanOrEqual(after, before)
            }
        }
    }
}
