import XCTest

@testable import Pare

/// Transformer layers against the outputs Keras computed (fixtures/zoo: norm, attention,
/// dense_attention, einsum and activation3 zoos in both lines).
extension InterpreterTests {
    func testTransformerZooMatchesKeras() throws {
        for (name, inputs) in [
            ("norm_zoo", 2), ("attention_zoo", 6), ("dense_attention_zoo", 4), ("einsum_zoo", 4),
        ] {
            for flavour in ["", "_tfkeras2"] {
                let model = name + flavour
                let outputs = zooOutputs(model)
                XCTAssertGreaterThan(outputs.count, 1, model)
                try check(
                    model: "zoo/\(model).h5", inputs: (0..<inputs).map { "zoo/\(model)_in\($0).npy" }, outputs: outputs)
            }
        }
        for flavour in ["", "_tfkeras2"] {
            let model = "attention_prune_zoo" + flavour
            try check(model: "zoo/\(model).h5", inputs: ["zoo/\(model)_in0.npy"], outputs: ["zoo/\(model)_out0.npy"])
        }
        try check(
            model: "zoo/activation3_zoo_tfkeras2.h5", inputs: ["zoo/activation3_zoo_tfkeras2_in0.npy"],
            outputs: zooOutputs("activation3_zoo_tfkeras2"))
    }

    /// Keras 3's activations, each against Keras's predict. Sparsemax reads its own input (`xs`): on
    /// exact ties Keras's graph mode and eager mode disagree (fixtures/zoo/README.md).
    func testKeras3ActivationsMatchKeras() throws {
        let outputs = zooOutputs("activation3_zoo")
        XCTAssertGreaterThan(outputs.count, 10)
        try check(
            model: "zoo/activation3_zoo.h5", inputs: ["zoo/activation3_zoo_in0.npy", "zoo/activation3_zoo_in1.npy"],
            outputs: outputs)
    }

    func testTrainedTransformersMatchKeras() throws {
        for (model, inputs) in Fixtures.transformerModels {
            for (file, pred) in [("keras3.h5", "keras3"), ("keras3.keras", "keras3"), ("tfkeras2.h5", "tfkeras2")] {
                try check(model: "\(model)/\(file)", inputs: inputs, outputs: ["\(model)/\(pred)_pred.npy"])
            }
        }
    }
}

/// Pruning transformers: attention heads and FFN units, on the trained ViT (fixtures/vit).
final class TransformerPruningTests: XCTestCase {
    let vitInputs = ["data/mnist_x.npy", "data/vit_positions.npy"]
    func load(_ p: String) throws -> Model { try ModelFile.read(Fixtures.path(p)) }
    func inputs(_ paths: [String]) throws -> [FloatArray] {
        try paths.map { try NPY.read(Fixtures.path($0)).floatArray() }
    }

    func prune(
        _ model: Model, _ selection: PruneSelection, criterion: PruneCriterion = .l1, calibration: [FloatArray]? = nil,
        inputs: [FloatArray], file: StaticString = #filePath, line: UInt = #line
    ) throws -> PruneResult {
        let job = try PruneJob.plan(model, selection: selection, criterion: criterion, calibration: calibration)
        let result = try PruneJob.prune(
            job, fold: true, verifyInputs: inputs, referenceIsOriginal: false, atol: 0, rtol: 1e-5)
        for c in result.comparisons {
            XCTAssertTrue(c.withinTolerance, "\(c.output): max rel \(c.maxRelativeError)", file: file, line: line)
        }
        return result
    }

    /// The L1 norm of each head's slices of the query, key, value and output kernels, from the file.
    func headNorms(_ model: Model, _ layer: String) throws -> [Double] {
        let weights = try XCTUnwrap(model.layer(named: layer)).weights
        var norms = [Double](repeating: 0, count: 4)
        for w in weights where w.name.hasSuffix("kernel") || w.name.hasSuffix("kernel:0") {
            let shape = w.tensor.shape
            let values = try w.tensor.floats()
            // (in, heads, dim) for the projections, (heads, dim, out) for the output kernel.
            let isOutput = w.name.contains("attention_output")
            let (headAxisSize, inner) = isOutput ? (shape[0], shape[1] * shape[2]) : (shape[1], shape[2])
            XCTAssertEqual(headAxisSize, 4)
            for (i, v) in values.enumerated() {
                let head = isOutput ? i / inner : (i / inner) % 4
                norms[head] += Double(abs(v))
            }
        }
        return norms
    }

    func testKeepingTwoHeadsEqualsTheMaskedModelAndHalvesTheProjections() throws {
        let model = try load("vit/keras3.h5")
        var selection = PruneSelection()
        selection.keep = ["mha0": 2]
        let result = try prune(model, selection, inputs: try inputs(vitInputs))
        // The two heads with the largest L1 norm stay, in order.
        let norms = try headNorms(model, "mha0")
        let expected = (0..<4).sorted { (norms[$0], $0) > (norms[$1], $1) }.prefix(2).sorted()
        XCTAssertEqual(result.plan.keptHeads["mha0"], Array(expected))
        XCTAssertEqual(result.plan.keptHeads["mha1"], [0, 1, 2, 3])
        // Per head: query, key and value kernels 32×8 and biases 8, output kernel 8×32: 1,048.
        XCTAssertEqual(result.totals.before - result.totals.after, 2 * 1_048)
        let pruned = try XCTUnwrap(result.pruned)
        XCTAssertEqual(try Planner(pruned).heads.first { $0.path == "mha0" }?.count, 2)
        let shapes = Dictionary(
            try XCTUnwrap(pruned.layer(named: "mha0")).weights.map { ($0.name, $0.tensor.shape) },
            uniquingKeysWith: { a, _ in a })
        XCTAssertEqual(shapes["mha0/query/kernel"], [32, 2, 8])
        XCTAssertEqual(shapes["mha0/attention_output/kernel"], [2, 8, 32])
        // The masked baseline silences the removed heads' values only.
        let removed = Set(0..<4).subtracting(expected)
        let masked = try XCTUnwrap(result.masked.layer(named: "mha0")).weights
        let value = try XCTUnwrap(masked.first { $0.name == "mha0/value/kernel" }).tensor
        let v = try value.floats()
        for (i, x) in v.enumerated() where removed.contains((i / 8) % 4) { XCTAssertEqual(x, 0) }
        XCTAssertTrue(v.enumerated().contains { removed.contains(($0.offset / 8) % 4) == false && $0.element != 0 })
    }

    func testRatioPrunesHeadsAndFeedForwardUnitsButNotTheResidualWidth() throws {
        let model = try load("vit/keras3.keras")
        var selection = PruneSelection()
        selection.globalRatio = 0.5
        let result = try prune(model, selection, inputs: try inputs(vitInputs))
        XCTAssertEqual(result.plan.keptHeads["mha0"]?.count, 2)
        XCTAssertEqual(result.plan.keptHeads["mha1"]?.count, 2)
        XCTAssertEqual(result.plan.keptChannels["ffn0_up"]?.count, 32)
        XCTAssertEqual(result.plan.keptChannels["ffn1_up"]?.count, 32)
        // The residual stream (patch embedding, positions, ffn*_down) meets LayerNormalization.
        XCTAssertEqual(result.plan.keptChannels["patch_embed"]?.count, 32)
        XCTAssertEqual(result.plan.keptChannels["ffn0_down"]?.count, 32)
        // 2 × 2 heads × 1,048, and per FFN 32 units × (32 + 1 + 32): 4,192 + 4,160.
        XCTAssertEqual(result.totals.before - result.totals.after, 4 * 1_048 + 2 * 32 * 65)
    }

    func testActivationCriteriaRankHeadsByTheirOutputs() throws {
        let model = try load("vit/keras3.h5")
        let x = try inputs(vitInputs)
        for criterion in [PruneCriterion.meanActivation, .apoz] {
            var selection = PruneSelection()
            selection.keep = ["mha1": 3]
            let result = try prune(model, selection, criterion: criterion, calibration: x, inputs: x)
            let scores = try XCTUnwrap(result.plan.headScores["mha1"])
            XCTAssertEqual(scores.count, 4)
            let lowest = (0..<4).min { (scores[$0], $0) < (scores[$1], $1) }!
            XCTAssertEqual(result.plan.keptHeads["mha1"], (0..<4).filter { $0 != lowest })
            // Mean |output| is positive for every head of a trained model; APoZ sees no exact zeros.
            XCTAssertTrue(scores.allSatisfy { $0 > 0 }, "\(criterion): \(scores)")
        }
    }

    func testHeadSelectionsThatCannotBeMetAreNamed() throws {
        let planner = try Planner(try load("vit/keras3.h5"))
        let cases: [(PruneSelection, PruneCriterion, String)] = [
            (
                {
                    var s = PruneSelection()
                    s.keep = ["mha0": 0]
                    return s
                }(), .l1, "at least one head"
            ),
            (
                {
                    var s = PruneSelection()
                    s.keep = ["mha0": 5]
                    return s
                }(), .l1, "has only 4 heads"
            ),
            (
                {
                    var s = PruneSelection()
                    s.drop = ["mha0": [4]]
                    return s
                }(), .l1, "head 4 of 'mha0'"
            ),
            (
                {
                    var s = PruneSelection()
                    s.drop = ["mha0": [0, 1, 2, 3]]
                    return s
                }(), .l1, "at least one head"
            ),
            (
                {
                    var s = PruneSelection()
                    s.keep = ["mha0": 2]
                    return s
                }(), .bnGamma, "bn-gamma"
            ),
            (
                {
                    var s = PruneSelection()
                    s.keep = ["patch_embed": 16]
                    return s
                }(), .l1,
                "feeds a LayerNormalization, which normalizes across channels"
            ),
        ]
        for (selection, criterion, words) in cases {
            XCTAssertThrowsError(try planner.plan(selection, criterion: criterion)) { error in
                XCTAssertTrue(error is SelectionError && "\(error)".contains(words), "\(error)")
            }
        }
    }

    func testSensitivitySweepsHeads() throws {
        let model = try load("vit/keras3.h5")
        let x = try inputs(vitInputs)
        var options = SensitivitySweep.Options()
        options.steps = try XCTUnwrap(SensitivitySweep.Steps.parse("1,3"))
        let curves = try SensitivitySweep.run(
            model, layers: ["mha0"], inputs: x, labels: try NPY.read(Fixtures.path("data/mnist_y.npy")),
            labelsFile: "mnist_y.npy", options: options)
        XCTAssertEqual(curves.count, 1)
        XCTAssertEqual(curves[0].unit, "heads")
        XCTAssertEqual(curves[0].points.map(\.removed), [1, 3])
        XCTAssertEqual(curves[0].points.map(\.kept), [3, 1])
        // Each point is a verified prune: pruned equals masked.
        for p in curves[0].points { XCTAssertLessThan(p.prunedVersusMasked, 1e-5) }
        XCTAssertEqual(curves[0].points[1].parameters, model.parameterCount - 3 * 1_048)
    }

    /// Dense → MultiHeadAttention → Dense: the Dense layers' channels index the attention's projection
    /// rows (query and value lined up) and its output columns; pruning them equals the masked model.
    func testChannelsThroughAttentionLayersAreExact() throws {
        for flavour in ["", "_tfkeras2"] {
            let model = try load("zoo/attention_prune_zoo\(flavour).h5")
            var selection = PruneSelection()
            selection.keep = ["d": 5]
            let result = try prune(model, selection, inputs: try inputs(["zoo/attention_prune_zoo\(flavour)_in0.npy"]))
            // mha2 reads d2's channels as its query and d's as its value: they are removed together.
            XCTAssertEqual(result.plan.keptChannels["d"]?.count, 5)
            XCTAssertEqual(result.plan.keptChannels["d2"], result.plan.keptChannels["d"])
            let pruned = try XCTUnwrap(result.pruned)
            func shape(_ layer: String, _ suffix: String) -> [Int]? {
                pruned.layer(named: layer)?.weights.first { $0.name.hasPrefix("\(layer)/\(suffix)") }?.tensor.shape
            }
            XCTAssertEqual(shape("mha", "query/kernel"), [5, 2, 4])
            XCTAssertEqual(shape("mha", "value/kernel"), [5, 2, 4])
            // mha's own output channels feed d2 alone: they stay.
            XCTAssertEqual(shape("mha", "attention_output/kernel"), [2, 4, 8])
            XCTAssertEqual(shape("mha2", "query/kernel"), [5, 2, 3])
            XCTAssertEqual(shape("mha2", "value/kernel"), [5, 2, 3])
            // mha2's output stays 8 wide although its query narrowed: output_shape says so now.
            XCTAssertEqual(shape("mha2", "attention_output/kernel"), [2, 3, 8])
        }
    }

    /// Asked for, channels of the residual width go through LayerNormalization (its γ and β sliced):
    /// the result is approximate, and the job says so.
    func testApproximateNormalizationRemovesResidualChannels() throws {
        let model = try load("vit/keras3.h5")
        var selection = PruneSelection()
        selection.keep = ["patch_embed": 28]
        let job = try PruneJob.plan(
            model, selection: selection, criterion: .l1, calibration: nil, approximateNormalization: true)
        XCTAssertTrue(job.passesNormalization)
        for producer in ["patch_embed", "pos_embed", "mha0", "ffn0_down", "mha1", "ffn1_down"] {
            XCTAssertEqual(job.plan.keptChannels[producer]?.count, 28, producer)
        }
        let x = try inputs(vitInputs)
        let result = try PruneJob.prune(job, fold: false, verifyInputs: x, referenceIsOriginal: true, atol: 0, rtol: 0)
        let pruned = try XCTUnwrap(result.pruned)
        XCTAssertEqual(pruned.layer(named: "ln0a")?.weights.map(\.tensor.shape), [[28], [28]])
        XCTAssertEqual(pruned.layer(named: "probs")?.weights.first?.tensor.shape, [28, 10])
        // 4 residual channels of 32: every residual-width weight loses an eighth.
        XCTAssertLessThan(result.totals.after, result.totals.before)
        // The drift is measured, not hidden: the outputs moved.
        XCTAssertGreaterThan(result.comparisons[0].maxAbsError, 0)
        let planner = try Planner(model)
        XCTAssertThrowsError(try planner.plan(selection, criterion: .l1))
    }
}

extension TransformerPruningTests {
    /// L1 scores a recurrent layer's units by the first gate block of its kernel (the kernel holds
    /// every block's columns); the README's figures for the text model hold.
    func testRecurrentUnitsStillScoreByTheirFirstGateBlock() throws {
        var selection = PruneSelection()
        selection.globalRatio = 0.5
        let result = try prune(
            try load("text_cls/keras3.h5"), selection, inputs: try inputs(["data/mnist_tokens.npy"]))
        XCTAssertEqual(result.totals.before, 8_994)
        XCTAssertEqual(result.totals.after, 2_486)
    }
}
