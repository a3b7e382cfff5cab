import XCTest

@testable import Pare

final class PruningTests: XCTestCase {
    func load(_ p: String) throws -> Model { try ModelFile.read(Fixtures.path(p)) }
    func npy(_ p: String) throws -> FloatArray { try NPY.read(Fixtures.path(p)).floatArray() }

    /// Plans, masks, prunes and verifies; fails the test unless pruned equals masked within 1e-5.
    @discardableResult
    func pruneAndVerify(
        _ model: Model, _ selection: PruneSelection, criterion: PruneCriterion = .l1,
        calibration: [FloatArray]? = nil, inputs: [FloatArray], referenceIsOriginal: Bool = false,
        fold: Bool = true, file: StaticString = #filePath, line: UInt = #line
    ) throws -> PruneResult {
        let job = try PruneJob.plan(
            model, selection: selection, criterion: criterion, calibration: calibration)
        let result = try PruneJob.prune(
            job, fold: fold, verifyInputs: inputs, referenceIsOriginal: referenceIsOriginal,
            atol: 0, rtol: 1e-5)
        for c in result.comparisons {
            XCTAssertTrue(c.withinTolerance, "\(c.output): max rel \(c.maxRelativeError)", file: file, line: line)
        }
        return result
    }

    func testTheMNISTReportCNNPrunedTo22And38Channels() throws {
        var s = PruneSelection()
        s.keep = ["conv2d": 22, "conv2d_1": 38]
        let result = try pruneAndVerify(try load("mnist_cnn/keras3.h5"), s, inputs: [try npy("data/mnist_x.npy")])
        XCTAssertEqual(result.totals.before, 643_594)
        XCTAssertEqual(result.totals.after, 392_784)
        let pruned = try XCTUnwrap(result.pruned)
        let report = try Inspection.of(pruned)
        XCTAssertEqual(report.layers.first { $0.path == "flatten" }?.outputShapes, ["(None, 1368)"])
        XCTAssertEqual(pruned.layer(named: "dense")?.weights.first?.tensor.shape, [1368, 256])
        // The kept filters are those with the largest L1 norms, in their original order.
        let kernel = try load("mnist_cnn/keras3.h5").layer(named: "conv2d")!.weights[0].tensor
        let values = try kernel.floats()
        let norms = (0..<32).map { c in
            stride(from: c, to: values.count, by: 32).reduce(Float(0)) { $0 + abs(values[$1]) }
        }
        let expected = (0..<32).sorted { (norms[$0], $0) > (norms[$1], $1) }.prefix(22).sorted()
        XCTAssertEqual(result.plan.keptChannels["conv2d"], Array(expected))
        // Round trip through the file keeps it equal.
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let out = dir.appendingPathComponent("p.h5").path
        try ModelFile.write(pruned, to: out)
        XCTAssertEqual(try ModelFile.read(out).parameterCount, 392_784)
    }

    func testSiameseSharedEncoderSweepByMeanActivation() throws {
        let model = try load("siamese/keras3.h5")
        let inputs = [try npy("data/pairs_left.npy"), try npy("data/pairs_right.npy")]
        for k in [1, 8, 32, 64, 100, 127] {
            var s = PruneSelection()
            s.keep = ["encoder/enc_conv3": 128 - k]
            let result = try pruneAndVerify(model, s, criterion: .meanActivation, calibration: inputs, inputs: inputs)
            XCTAssertEqual(result.plan.keptChannels["encoder/enc_conv3"]?.count, 128 - k)
            XCTAssertEqual(result.pruned?.layer(named: "head")?.weights.first?.tensor.shape, [128 - k, 32])
        }
        // Ranking: the channels removed first have the lowest mean activation after ReLU.
        var s = PruneSelection()
        s.keep = ["enc_conv3": 127]
        let plan = try PruneJob.plan(model, selection: s, criterion: .meanActivation, calibration: inputs).plan
        let space = try XCTUnwrap(plan.graph.space("encoder/enc_conv3"))
        let gone = Set(0..<128).subtracting(plan.keptChannels["encoder/enc_conv3"]!).first!
        let lowest = (0..<128).min {
            (plan.scores[space.first + $0] ?? 0, $0) < (plan.scores[space.first + $1] ?? 0, $1)
        }
        XCTAssertEqual(gone, lowest)
    }

    func testEveryPrunableGroupOfTheResidualModel() throws {
        let model = try load("residual/keras3.h5")
        let inputs = [try npy("data/mnist_x.npy")]
        let graph = try Planner(model).graph
        var prunable = 0
        for space in graph.spaces {
            let candidates = (0..<space.count).filter {
                graph.blockedReason(group: graph.group(space.first + $0)) == nil
            }
            guard let c = candidates.first else { continue }
            prunable += 1
            var s = PruneSelection()
            s.drop = [space.path: [c, candidates.last!]]
            try pruneAndVerify(model, s, inputs: inputs)
        }
        XCTAssertEqual(
            prunable, 4,
            "stem, block_conv (coupled to stem by the Add), separable, head_conv; not the classifier (a model output)")
        // stem and block_conv are coupled by the Add, and the depthwise branch goes with them.
        let stem = graph.space("stem")!
        let block = graph.space("block_conv")!
        XCTAssertEqual(graph.group(stem.first + 3), graph.group(block.first + 3))
        XCTAssertNotNil(graph.blockedReason(group: graph.group(graph.space("classifier")!.first)))
    }

    func testRandomSelectionsOnEveryFixturePruneToTheMaskedModel() throws {
        var rng = SystemRandomNumberGenerator()
        let seed = UInt64.random(in: 0...UInt64.max, using: &rng)
        var generator = RandomInputs(seed: seed)
        let cases: [(String, [String])] = [
            ("mnist_cnn/keras3.h5", ["data/mnist_x.npy"]), ("residual/tfkeras2.h5", ["data/mnist_x.npy"]),
            ("siamese/tfkeras2.h5", ["data/pairs_left.npy", "data/pairs_right.npy"]),
            ("zoo/nested_zoo.h5", ["zoo/nested_zoo_in0.npy", "zoo/nested_zoo_in1.npy"]),
        ]
        for (file, inputFiles) in cases {
            let model = try load(file)
            let inputs = try inputFiles.map { try npy($0).slice(0..<4) }
            let graph = try Planner(model).graph
            for _ in 0..<3 {
                var s = PruneSelection()
                for space in graph.spaces {
                    let candidates = (0..<space.count).filter {
                        graph.blockedReason(group: graph.group(space.first + $0)) == nil
                    }
                    guard candidates.count > 1 else { continue }
                    let n = Int(generator.next() * Float(candidates.count - 1))
                    let chosen = candidates.filter { _ in generator.next() < Float(n) / Float(candidates.count) }
                    if !chosen.isEmpty { s.drop[space.path] = chosen }
                }
                guard !s.drop.isEmpty else { continue }
                do {
                    try pruneAndVerify(model, s, inputs: inputs)
                } catch let error as SelectionError where error.message.contains("every channel") {
                    continue  // coupled choices emptied a layer: correctly refused
                } catch {
                    XCTFail("\(file) seed \(seed) selection \(s.drop): \(error)")
                }
            }
        }
    }
}

extension PruningTests {
    /// `model` with channels of `layer` made dead in the way tfmot or a hand mask leaves them:
    /// kernel slice zero, but the bias set to `bias` (so the channel emits relu(bias), a constant).
    func deadChannels(_ model: Model, layer: String, channels: [Int], bias: Float) throws -> Model {
        var m = model
        let r = try CheckedModel(m).weightsByRole(layer)
        let kernel = r["kernel"]!
        m.setWeight(
            path: layer, name: kernel.name,
            try kernel.tensor.zeroed(axis: kernel.tensor.shape.count - 1, indices: Set(channels)))
        var b = try r["bias"]!.tensor.floats()
        for c in channels { b[c] = bias }
        m.setWeight(path: layer, name: r["bias"]!.name, try r["bias"]!.tensor.replacingValues(b))
        return m
    }

    func testFoldingMakesDeadChannelsWithBiasExactForValidConvsAndDense() throws {
        var model = try deadChannels(try load("mnist_cnn/keras3.h5"), layer: "conv2d", channels: [1, 5], bias: 0.25)
        model = try deadChannels(model, layer: "conv2d_1", channels: [0, 7, 40], bias: 0.5)
        XCTAssertEqual(
            try Inspection.of(model).deadChannels.filter { !$0.dead.isEmpty }.count, 0,
            "a bias keeps them alive by inspect's rule")
        var s = PruneSelection()
        s.drop = ["conv2d": [1, 5], "conv2d_1": [0, 7, 40]]
        let inputs = [try npy("data/mnist_x.npy")]
        // Reference: the model itself (the channels already emit only constants).
        let result = try pruneAndVerify(model, s, inputs: inputs, referenceIsOriginal: true)
        XCTAssertEqual(result.folds.first { $0.layer == "dense" }?.folded, 3 * 36)
        XCTAssertEqual(result.folds.first { $0.layer == "dense" }?.exact, true)
        XCTAssertEqual(result.folds.first { $0.layer == "conv2d_1" }?.exact, true, "conv2d_1 is valid-padded")
        XCTAssertLessThan(result.comparisons[0].maxRelativeError, 1e-6)
        // Without folding the same removal changes the outputs.
        let job = try PruneJob.plan(model, selection: s, criterion: .l1, calibration: nil)
        let unfolded = try PruneJob.prune(
            job, fold: false, verifyInputs: inputs, referenceIsOriginal: true, atol: 0, rtol: 1e-5)
        XCTAssertFalse(unfolded.verified)
        XCTAssertGreaterThan(unfolded.comparisons[0].maxRelativeError, 1e-3)
    }

    func testMaskedModelsWhoseBatchNormKeepsBetaFoldApproximatelyAtSamePaddedBorders() throws {
        // Residual: stem and block_conv channel 2 dead (kernel and bias zero) while stem_bn and block_bn
        // keep β, so the Add emits a non-zero constant into same-padded consumers.
        let base = try load("residual/keras3.h5")
        var m = try deadChannels(base, layer: "stem", channels: [2], bias: 0)
        m = try deadChannels(m, layer: "block_conv", channels: [2], bias: 0)
        var s = PruneSelection()
        s.dropDead = true
        let inputs = [try npy("data/mnist_x.npy")]
        let job = try PruneJob.plan(m, selection: s, criterion: .l1, calibration: nil)
        XCTAssertEqual(job.plan.keptChannels["stem"]?.count, 15)
        let result = try PruneJob.prune(
            job, fold: true, verifyInputs: inputs, referenceIsOriginal: true, atol: 0, rtol: 1e-5)
        let approximate = result.folds.filter { !$0.exact }.map(\.layer).sorted()
        // block_conv reads stem_relu's constant through same padding; whether later consumers get a
        // non-zero constant depends on the trained β (a ReLU may clip it to an exact zero).
        XCTAssertTrue(approximate.contains("block_conv"), "\(result.folds)")
        XCTAssertTrue(result.folds.allSatisfy { $0.exact || $0.note.contains("border") })
        // The measured error is reported, small against the output but not zero.
        let error = result.comparisons[0].maxRelativeError
        XCTAssertGreaterThan(error, 0)
        XCTAssertLessThan(error, 0.5)
    }

    func testSelectionsThatCannotBeHonouredAreRefused() throws {
        let model = try load("mnist_cnn/keras3.h5")
        let planner = try Planner(model)
        func refused(_ edit: (inout PruneSelection) -> Void, _ words: String, criterion: PruneCriterion = .l1) {
            var s = PruneSelection()
            edit(&s)
            XCTAssertThrowsError(try planner.plan(s, criterion: criterion)) { error in
                XCTAssertTrue(error is SelectionError && "\(error)".contains(words), "\(error)")
            }
        }
        refused({ $0.keep = ["conv9": 3] }, "no layer named 'conv9'")
        refused({ $0.keep = ["conv2d": 33] }, "has only 32 channels")
        refused({ $0.keep = ["conv2d": 0] }, "at least one channel")
        refused({ $0.drop = ["conv2d": [32]] }, "channel 32")
        refused({ $0.drop = ["conv2d": Array(0..<32)] }, "every channel")
        refused({ $0.keep = ["dense_2": 5] }, "only 0 can be removed")
        refused({ $0.keep = ["flatten": 5] }, "no output channels of its own")
        refused({ $0.ratio = ["conv2d": 0.5] }, "calibration", criterion: .meanActivation)
        refused({ $0.keep = ["conv2d": 5] }, "BatchNormalization", criterion: .bnGamma)
        refused({ _ in }, "nothing selected")
    }
}

extension PruningTests {
    func testThresholdRemovesEveryChannelScoringBelowIt() throws {
        let model = try load("mnist_cnn/keras3.h5")
        let kernel = try model.layer(named: "conv2d")!.weights[0].tensor.floats()
        let norms = (0..<32).map { c in
            stride(from: c, to: kernel.count, by: 32).reduce(0.0) { $0 + Double(abs(kernel[$1])) }
        }
        let sorted = norms.sorted()
        var s = PruneSelection()
        s.threshold = (sorted[2] + sorted[3]) / 2  // between the third and fourth smallest filter norms
        let result = try pruneAndVerify(model, s, inputs: [try npy("data/mnist_x.npy").slice(0..<16)])
        let expected = (0..<32).filter { norms[$0] >= s.threshold! }
        XCTAssertEqual(result.plan.keptChannels["conv2d"], expected)
        XCTAssertEqual(result.plan.keptChannels["conv2d"]?.count, 29)
        // conv2d_1 filters sum 288 weights each: their L1 norms are far above this threshold.
        XCTAssertEqual(result.plan.keptChannels["conv2d_1"]?.count, 64)
    }
}

extension PruningTests {
    /// The README's library example: one call plans, prunes, folds and verifies.
    func testOneCallPrunesTheMNISTCNNTo392784Parameters() throws {
        let model = try ModelFile.read(Fixtures.path("mnist_cnn/keras3.h5"))
        var selection = PruneSelection()
        selection.keep = ["conv2d": 22, "conv2d_1": 38]
        var options = PruneOptions(selection: selection)
        options.verifyInputs = [try NPY.read(Fixtures.path("data/mnist_x.npy")).floatArray()]
        let result = try model.pruned(options)
        XCTAssertTrue(result.verified, "\(result.comparisons)")
        XCTAssertEqual(result.totals.before, 643_594)
        XCTAssertEqual(result.totals.after, 392_784)
        XCTAssertEqual(try XCTUnwrap(result.pruned).parameterCount, 392_784)
        // Without verification inputs it verifies on random ones, and a bad selection is refused.
        XCTAssertTrue(try model.pruned(PruneOptions(selection: selection)).verified)
        var tooMany = PruneSelection()
        tooMany.keep = ["conv2d": 33]
        XCTAssertThrowsError(try model.pruned(PruneOptions(selection: tooMany)))
    }
}
