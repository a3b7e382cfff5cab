import HDF5
import XCTest

@testable import Pare

/// Keras 2 files upgraded to Keras 3 and Keras 3 files rewritten for tf.keras 2: each result is
/// run with the other line's semantics and held to what the source's writer computed. (The
/// cross-check, tools/crosscheck/upgrades, loads the same results in the real frameworks.)
final class UpgradeTests: XCTestCase {
    /// The fixture's inputs and its writer's outputs, by the layout each folder uses.
    func io(_ path: String) throws -> (inputs: [FloatArray], outputs: [Tensor]) {
        let folder = (path as NSString).deletingLastPathComponent
        let base = ((path as NSString).lastPathComponent as NSString).deletingPathExtension
        let names = try FileManager.default.contentsOfDirectory(atPath: Fixtures.path(folder)).sorted {
            $0.compare($1, options: .numeric) == .orderedAscending
        }
        let inputs = names.filter { $0.hasPrefix(base + "_in") }.map { folder + "/" + $0 }
        let outputs = names.filter { $0.hasPrefix(base + "_out") }.map { folder + "/" + $0 }
        return (
            try inputs.map { try NPY.read(Fixtures.path($0)).floatArray() },
            try outputs.map { try NPY.read(Fixtures.path($0)) }
        )
    }

    func relativeError(_ a: FloatArray, _ b: Tensor) throws -> Double {
        let reference = try b.floats()
        XCTAssertEqual(a.shape, b.shape)
        var (worst, scale): (Float, Float) = (0, 0)
        for i in reference.indices {
            worst = max(worst, abs(a.data[i] - reference[i]))
            scale = max(scale, abs(reference[i]))
        }
        return Double(worst / max(scale, 1e-30))
    }

    /// Upgrades `path` and runs the result with Keras 3's semantics: every output but `drifting`
    /// must be what tf.keras 2 computed on the source.
    @discardableResult
    func checkUpgrade(_ path: String, drifting: Set<String> = [], file: StaticString = #filePath, line: UInt = #line)
        throws -> KerasUpgrade.Result
    {
        let source = try ModelFile.read(Fixtures.path(path))
        XCTAssertTrue(KerasUpgrade.isKeras2(source), path, file: file, line: line)
        let result = try KerasUpgrade.upgrade(source)
        let config = try XCTUnwrap(result.model.config)
        XCTAssertTrue(Keras3Layout.isKeras3Config(config), path, file: file, line: line)
        XCTAssertFalse(config.serialized().contains("batch_input_shape"), path, file: file, line: line)
        XCTAssertEqual(result.model.kerasVersion, "3.15.1", file: file, line: line)
        let (inputs, outputs) = try io(path)
        let interpreter = try Interpreter(result.model)
        let y = try interpreter.run(inputs)
        XCTAssertEqual(y.count, outputs.count, path, file: file, line: line)
        var drifted: Set<String> = []
        for (i, (got, expected)) in zip(y, outputs).enumerated() {
            let name = interpreter.outputNames[i]
            let error = try relativeError(got, expected)
            if error > 1e-5 { drifted.insert(name) }
            if !drifting.contains(name) {
                XCTAssertLessThanOrEqual(error, 1e-5, "\(path) output \(i) (\(name))", file: file, line: line)
            }
        }
        XCTAssertEqual(drifted, drifting, "\(path): the outputs that differ from tf.keras", file: file, line: line)
        return result
    }

    /// Keras 1.2.2 files (Theano): read in Keras 2's terms, then upgraded like any Keras 2 file.
    func testKeras1FilesUpgradeAndComputeWhatKeras1Computed() throws {
        for name in Keras1Tests.converted { try checkUpgrade("keras1/\(name).h5") }
    }

    func testKeras2FilesUpgradeAndComputeWhatTfKerasComputed() throws {
        for name in Fixtures.pretrained { try checkUpgrade("pretrained/\(name).h5") }
        for name in [
            "seq_no_input", "seq_no_input_named", "nested_shared", "thresholded_seq", "keras2_misc", "initial_state",
        ] {
            try checkUpgrade("upgrade/\(name).h5")
        }
        for name in [
            "cudnn_zoo", "recurrent_zoo", "rnn_wrapper_zoo", "conv_zoo", "core_zoo", "misc_zoo", "thresholded_zoo",
        ]
        where FileManager.default.fileExists(atPath: Fixtures.path("zoo/\(name)_tfkeras2.h5")) {
            try checkUpgrade("zoo/\(name)_tfkeras2.h5")
        }
    }

    /// Where Keras 3 computes differently and no rewrite can help, the outputs differ (and
    /// `convert` refuses unless told to accept it): Keras 3 ORs merged masks where tf.keras ANDs them.
    func testMaskMergingDiffersBetweenTheLinesAndIsReported() throws {
        try checkUpgrade("zoo/mask_zoo_tfkeras2.h5", drifting: ["concat_lstm", "add_lstm"])
    }

    /// The shared nested encoder: tf.keras numbers its calls 1 and 2, Keras 3 0 and 1.
    func testNestedModelCallsAreCountedFromZero() throws {
        let result = try KerasUpgrade.upgrade(try ModelFile.read(Fixtures.path("siamese/tfkeras2.h5")))
        let layers = try XCTUnwrap(result.model.config?["config"]?["layers"]?.arrayValue)
        let difference = try XCTUnwrap(layers.first { $0["name"]?.stringValue == "difference" })
        let histories = difference["inbound_nodes"]?[0]?["args"]?[0]?.arrayValue?.map {
            $0["config"]?["keras_history"]?.serialized() ?? ""
        }
        XCTAssertEqual(histories, ["[\"encoder\", 0, 0]", "[\"encoder\", 1, 0]"])
        let encoder = try XCTUnwrap(layers.first { $0["name"]?.stringValue == "encoder" })
        XCTAssertEqual(encoder["module"]?.stringValue, "keras")
        XCTAssertEqual(encoder["class_name"]?.stringValue, "Sequential")
    }

    /// Keras ≤ 2.2 Sequential files declare the input on the first layer; Keras 3 needs an InputLayer.
    func testASequentialWithoutAnInputLayerGetsOne() throws {
        let result = try checkUpgrade("upgrade/seq_no_input.h5")
        let layers = try XCTUnwrap(result.model.config?["config"]?["layers"]?.arrayValue)
        XCTAssertEqual(layers.first?["class_name"]?.stringValue, "InputLayer")
        XCTAssertEqual(layers.first?["config"]?["batch_shape"]?.serialized(), "[null, 12]")
        XCTAssertTrue(result.notes.contains { $0.contains("batch_input_shape") }, "\(result.notes)")
    }

    /// Keras 2's hard_sigmoid(x) is Keras 3's hard_sigmoid(1.2·x): the factor goes into the weights
    /// that make the activation's input, or a Rescaling; an LSTM's cell activation cannot take it.
    func testHardSigmoidIsFoldedWhereTheMathAllows() throws {
        let path = "upgrade/hard_sigmoid_zoo.h5"
        let source = try ModelFile.read(Fixtures.path(path))
        let result = try checkUpgrade(path, drifting: ["lstm_act_hs"])
        func kernel(_ model: Model, _ layer: String) throws -> [Float] {
            try XCTUnwrap(model.layer(named: layer)?.weights.first { $0.role == "kernel" }).tensor.floats()
        }
        let before = try kernel(source, "dense_hs")
        let after = try kernel(result.model, "dense_hs")
        XCTAssertEqual(after, before.map { $0 * 1.2 })
        XCTAssertTrue(result.hardSigmoidFixes.contains { $0.contains("act_hs_fold") && $0.contains("dense_lin_d") })
        XCTAssertTrue(result.hardSigmoidFixes.contains { $0.contains("act_hs_shared") && $0.contains("Rescaling") })
        XCTAssertEqual(result.approximations.count, 1)
        XCTAssertTrue(result.approximations[0].contains("lstm_act_hs"))
        // The LSTM's gates i, f and o are scaled; its candidate block c is not.
        let units = 4
        let lstmBefore = try kernel(source, "lstm_rec_hs")
        let lstmAfter = try kernel(result.model, "lstm_rec_hs")
        let width = 4 * units
        for row in 0..<(lstmBefore.count / width) {
            for column in 0..<width {
                let factor: Float = (2 * units..<3 * units).contains(column) ? 1 : 1.2
                XCTAssertEqual(lstmAfter[row * width + column], lstmBefore[row * width + column] * factor)
            }
        }
    }

    /// CuDNNLSTM / CuDNNGRU become LSTM / GRU with their weights in Keras's layout.
    func testCuDNNLayersBecomeKerasLayers() throws {
        let result = try checkUpgrade("zoo/cudnn_zoo_tfkeras2.h5")
        let text = try XCTUnwrap(result.model.config?.serialized())
        XCTAssertFalse(text.contains("CuDNN"))
        let checked = try CheckedModel(result.model)
        for unit in checked.weightUnits where unit.className == "LSTM" || unit.className == "GRU" {
            let bias = try XCTUnwrap(checked.weightsByRole(unit.path)["bias"])
            XCTAssertEqual(bias.tensor.shape.count, unit.className == "LSTM" ? 1 : 2, unit.path)
        }
    }

    /// Keras 3 writes a Bidirectional's backward layer out; rebuilt at load from the forward one, it now
    /// and then came back going forwards and Keras refused the file. The upgrade writes it as Keras does.
    func testBidirectionalLayersGetTheirBackwardLayerWrittenOut() throws {
        let result = try checkUpgrade("zoo/rnn_wrapper_zoo_tfkeras2.h5")
        var found = 0
        func walk(_ json: JSON) {
            if json["class_name"]?.stringValue == "Bidirectional", let config = json["config"] {
                let forward = config["layer"]?["config"]
                let backward = config["backward_layer"]?["config"]
                let name = forward?["name"]?.stringValue ?? "?"
                XCTAssertEqual(backward?["name"]?.stringValue, "backward_" + name)
                XCTAssertEqual(backward?["go_backwards"]?.boolValue, !(forward?["go_backwards"]?.boolValue ?? false))
                XCTAssertEqual(backward?["units"], forward?["units"], name)
                found += 1
            }
            if case .object(let pairs) = json { for (_, value) in pairs { walk(value) } }
            if case .array(let items) = json { for item in items { walk(item) } }
        }
        walk(try XCTUnwrap(result.model.config))
        XCTAssertEqual(found, 7, "the zoo's seven Bidirectional layers")
    }

    /// Keras 3 lists a rebuilt model's layers by depth, its mask operations included, and numbers
    /// the weight groups by that order. In this model Keras 3.15.1 lists `emb_f2` before `emb_f`
    /// (printed by keras.saving.deserialize_keras_object on the upgraded config), which tf.keras's
    /// config order does not.
    func testLayersFollowKeras3sOrderWithItsMaskOperations() throws {
        let source = try ModelFile.read(Fixtures.path("zoo/mask_zoo_tfkeras2.h5"))
        let order = try XCTUnwrap(source.config?["config"]?["layers"]?.arrayValue).compactMap {
            $0["name"]?.stringValue
        }
        XCTAssertLessThan(try XCTUnwrap(order.firstIndex(of: "emb_f")), try XCTUnwrap(order.firstIndex(of: "emb_f2")))
        let result = try KerasUpgrade.upgrade(source)
        let upgraded = try XCTUnwrap(result.model.config?["config"]?["layers"]?.arrayValue).compactMap {
            $0["name"]?.stringValue
        }
        XCTAssertEqual(
            Array(upgraded.prefix(6)), ["ids", "fids", "emb", "emb_f2", "m", "emb_f"],
            "Keras 3.15.1's model.layers order")
    }

    /// Arguments Keras 3 cannot express are refused, never dropped.
    func testTimeMajorInputsAreRefused() throws {
        var model = try ModelFile.read(Fixtures.path("pretrained/ethnicolr_fl5cat_tf28.h5"))
        var text = try XCTUnwrap(model.config?.serialized())
        text = text.replacingOccurrences(of: "\"time_major\": false", with: "\"time_major\": true")
        model.config = try JSON.parse(text)
        XCTAssertThrowsError(try KerasUpgrade.upgrade(model)) { error in
            XCTAssertTrue("\(error)".contains("time_major=true"), "\(error)")
        }
    }

    // MARK: Keras 3 → tf.keras 2

    /// The rewrite runs with Keras 2's semantics and must compute what Keras 3 computed.
    func testKeras3FilesRewrittenForTfKerasComputeTheSame() throws {
        for model in ["mnist_cnn", "siamese", "residual"] {
            let source = try ModelFile.read(Fixtures.path("\(model)/model.keras"))
            let result = try KerasDowngrade.downgrade(source)
            XCTAssertEqual(result.model.kerasVersion, "2.15.0")
            let text = try XCTUnwrap(result.model.config?.serialized())
            XCTAssertTrue(text.contains("batch_input_shape"), model)
            XCTAssertFalse(text.contains("__keras_tensor__"), model)
            XCTAssertFalse(Keras3Layout.isKeras3Config(try XCTUnwrap(result.model.config)), model)
            let inputs =
                model == "siamese"
                ? ["data/pairs_left.npy", "data/pairs_right.npy"] : ["data/mnist_x.npy"]
            let x = try inputs.map { try NPY.read(Fixtures.path($0)).floatArray() }
            let y = try Interpreter(result.model).run(x)
            let expected = try NPY.read(Fixtures.path("\(model)/keras3_pred.npy"))
            XCTAssertLessThanOrEqual(try relativeError(y[0], expected), 1e-5, model)
        }
        // tf.keras numbers the shared encoder's calls from 1 again.
        let siamese = try KerasDowngrade.downgrade(try ModelFile.read(Fixtures.path("siamese/model.keras")))
        let layers = try XCTUnwrap(siamese.model.config?["config"]?["layers"]?.arrayValue)
        let difference = try XCTUnwrap(layers.first { $0["name"]?.stringValue == "difference" })
        XCTAssertEqual(
            difference["inbound_nodes"]?.serialized(), "[[[\"encoder\", 1, 0, {}], [\"encoder\", 2, 0, {}]]]")
    }

    /// tf.keras's legacy loader reads the weight groups in its own order of the layers (its
    /// map_graph), not by name: the rewrite writes them so. The order below is what tf_keras 2.21's
    /// `model_from_json` gave `model.layers` for the rewritten config.
    func testWeightGroupsFollowTfKerasLayerOrder() throws {
        let result = try KerasDowngrade.downgrade(try ModelFile.read(Fixtures.path("zoo/nested_zoo.h5")))
        XCTAssertEqual(
            result.model.layers.map(\.name), ["a", "b", "shared_dense", "inner_seq", "sum", "inner_functional"])
    }

    func testKeras3OnlyLayersAndBfloat16AreRefusedForTfKeras() throws {
        XCTAssertThrowsError(try KerasDowngrade.downgrade(try ModelFile.read(Fixtures.path("zoo/norm_zoo.h5")))) {
            XCTAssertTrue("\($0)".contains("tf.keras"), "\($0)")
        }
        XCTAssertThrowsError(try KerasDowngrade.downgrade(try ModelFile.read(Fixtures.path("bf16/model.keras")))) {
            XCTAssertTrue("\($0)".contains("bfloat16"), "\($0)")
        }
    }

    /// A weights-only file given its architecture: the weights group says who wrote them, or
    /// tf.keras reads them as Keras 1's.
    func testWeightsOnlyFileWithAConfigRecordsItsWriter() throws {
        let model = try ModelFile.read(
            Fixtures.path("mnist_cnn/tfkeras2_weights.h5"),
            architecture: try ModelFile.readArchitecture(Fixtures.path("mnist_cnn/tfkeras2.h5")))
        let directory = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let path = directory.appendingPathComponent("full.h5").path
        try ModelFile.write(model, to: path)
        let weights = try HDF5File.open(path).root().group("model_weights")
        XCTAssertEqual(try weights.attribute("keras_version").singleString, "2.21.0")
        XCTAssertEqual(try weights.attribute("backend").singleString, "tensorflow")
    }
}
