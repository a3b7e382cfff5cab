import XCTest

@testable import Pare

/// Sequence, text and audio layers against the outputs Keras computed (fixtures/zoo,
/// fixtures/text_cls, fixtures/signal, fixtures/pretrained).
extension InterpreterTests {
    func testSequenceZooMatchesKeras() throws {
        for (name, inputs) in [
            ("conv1d_zoo", 1), ("conv3d_zoo", 1), ("recurrent_zoo", 1), ("rnn_wrapper_zoo", 2), ("mask_zoo", 3),
        ] {
            for flavour in ["", "_tfkeras2"] {
                let model = name + flavour
                let outputs = zooOutputs(model)
                XCTAssertGreaterThan(outputs.count, 1, model)
                try check(
                    model: "zoo/\(model).h5", inputs: (0..<inputs).map { "zoo/\(model)_in\($0).npy" }, outputs: outputs)
            }
        }
        // tf.keras 2 only: CuDNNLSTM / CuDNNGRU, their weights converted as tf.keras converts them.
        try check(
            model: "zoo/cudnn_zoo_tfkeras2.h5", inputs: ["zoo/cudnn_zoo_tfkeras2_in0.npy"],
            outputs: zooOutputs("cudnn_zoo_tfkeras2"))
    }

    func testTrainedSequenceModelsMatchKeras() throws {
        for model in Fixtures.sequenceModels {
            let input = Fixtures.sequenceInput(model)
            for (file, pred) in [("keras3.h5", "keras3"), ("keras3.keras", "keras3"), ("tfkeras2.h5", "tfkeras2")] {
                try check(model: "\(model)/\(file)", inputs: [input], outputs: ["\(model)/\(pred)_pred.npy"])
            }
        }
        // Token ids stored as float32 are the same ids.
        try check(
            model: "text_cls/keras3.h5", inputs: ["data/mnist_tokens_f32.npy"], outputs: ["text_cls/keras3_pred.npy"])
    }

    func testPretrainedPyPIFilesMatchTfKeras() throws {
        for name in Fixtures.pretrained {
            let directory = (try FileManager.default.contentsOfDirectory(atPath: Fixtures.path("pretrained")))
            let inputs = directory.filter { $0.hasPrefix(name + "_in") }.sorted().map { "pretrained/\($0)" }
            let outputs = directory.filter { $0.hasPrefix(name + "_out") }.sorted().map { "pretrained/\($0)" }
            XCTAssertFalse(inputs.isEmpty, name)
            try check(model: "pretrained/\(name).h5", inputs: inputs, outputs: outputs)
        }
    }

    /// Ids are whole numbers in 0 ..< input_dim; anything else is named, where Keras would cast it
    /// (3.5 → 3) or fail somewhere inside TensorFlow.
    func testEmbeddingNamesABadId() throws {
        let interpreter = try Interpreter(try ModelFile.read(Fixtures.path("text_cls/keras3.h5")))
        var ids = try NPY.read(Fixtures.path("data/mnist_tokens.npy")).floatArray().slice(0..<2)
        XCTAssertNoThrow(try interpreter.run([ids]))
        for (bad, expected) in [
            (Float(3.5), "id 3.5 at [1, 4] is not a whole number"), (30, "id 30 at [1, 4] is outside 0..<30"),
            (-1, "id -1 at [1, 4] is outside 0..<30"), (.nan, "id nan at [1, 4] is not a whole number"),
        ] {
            ids.data[ids.shape[1] + 4] = bad
            XCTAssertThrowsError(try interpreter.run([ids])) { error in
                XCTAssertTrue("\(error)".contains(expected), "\(error)")
                XCTAssertTrue("\(error)".contains("layer 'embed'"), "\(error)")
            }
        }
    }
}

/// Sequence-layer configs that Keras would not load, or that Pare cannot compute as Keras does, are
/// named, never run with something else.
final class SequenceConfigTests: XCTestCase {
    /// text_cls (Keras 3) with one layer's config changed by `edit`.
    func textModel(editing name: String, _ edit: (inout JSON) -> Void) throws -> Model {
        var model = try ModelFile.read(Fixtures.path("text_cls/keras3.h5"))
        var config = try XCTUnwrap(model.config)
        var inner = try XCTUnwrap(config["config"])
        var layers = try XCTUnwrap(inner["layers"]?.arrayValue)
        let i = try XCTUnwrap(layers.firstIndex { $0["config"]?["name"]?.stringValue == name })
        var layerConfig = try XCTUnwrap(layers[i]["config"])
        edit(&layerConfig)
        layers[i].set("config", layerConfig)
        inner.set("layers", .array(layers))
        config.set("config", inner)
        model.config = config
        return model
    }

    /// Refused when the interpreter is built, or else when it runs on `inputs` (zoo fixture inputs).
    func assertRefused(_ model: Model, _ words: [String], inputs: [String] = [], line: UInt = #line) {
        XCTAssertThrowsError(
            try Interpreter(model).run(try inputs.map { try NPY.read(Fixtures.path($0)).floatArray() }), line: line
        ) { error in
            for word in words {
                XCTAssertTrue("\(error)".contains(word), "'\(word)' missing from: \(error)", line: line)
            }
        }
    }

    func testInvalidOrUnrunnableRecurrentConfigsAreNamed() throws {
        assertRefused(try textModel(editing: "lstm") { $0.set("units", .int(0)) }, ["'lstm'", "units"])
        assertRefused(
            try textModel(editing: "lstm") { $0.set("stateful", .bool(true)) }, ["'lstm'", "stateful recurrent layers"])
        // No recurrent_activation at all: Keras before 2.3 meant hard_sigmoid, later versions sigmoid.
        assertRefused(
            try textModel(editing: "lstm") { c in
                c = .object((c.objectValue ?? []).filter { $0.0 != "recurrent_activation" })
            }, ["'lstm'", "recurrent_activation"])
        assertRefused(
            try textModel(editing: "bigru") { c in
                var layer = c["layer"]!
                layer.set("class_name", .string("Dense"))
                c.set("layer", layer)
            }, ["'bigru'", "not a recurrent layer"])
        assertRefused(
            try textModel(editing: "bigru") { $0.set("merge_mode", .string("max")) }, ["'bigru'", "merge_mode"])
        assertRefused(try textModel(editing: "embed") { $0.set("input_dim", .int(-3)) }, ["'embed'", "input_dim"])
        // A weight that no longer fits: GRU without reset_after has a (3u) bias, the file holds (2, 3u).
        assertRefused(
            try textModel(editing: "bigru") { c in
                var layer = c["layer"]!
                var config = layer["config"]!
                config.set("reset_after", .bool(false))
                layer.set("config", config)
                c.set("layer", layer)
            }, ["'bigru'", "forward_gru/gru_cell/bias", "contradicts"])
    }

    /// A fixture with one layer's whole entry (class, config, inbound nodes) changed by `edit`.
    func model(_ fixture: String, layer name: String, _ edit: (inout JSON) -> Void) throws -> Model {
        var model = try ModelFile.read(Fixtures.path(fixture))
        var config = try XCTUnwrap(model.config)
        var inner = try XCTUnwrap(config["config"])
        var layers = try XCTUnwrap(inner["layers"]?.arrayValue)
        let i = try XCTUnwrap(layers.firstIndex { $0["config"]?["name"]?.stringValue == name })
        edit(&layers[i])
        inner.set("layers", .array(layers))
        config.set("config", inner)
        model.config = config
        return model
    }

    /// Found by an attacker's review: each was a trap, a hang or memory never budgeted for.
    func testHostileSequenceGraphsAreRefused() throws {
        // An explicit Keras 3 mask= of the wrong shape (a float tensor of the input's own shape).
        assertRefused(
            try model("zoo/mask_zoo.h5", layer: "lstm_seq") { entry in
                var nodes = entry["inbound_nodes"]!.arrayValue!
                var kwargs = nodes[0]["kwargs"]!
                var mask = kwargs["mask"]!
                var maskConfig = mask["config"]!
                maskConfig.set("keras_history", .array([.string("emb"), .int(0), .int(0)]))
                mask.set("config", maskConfig)
                kwargs.set("mask", mask)
                nodes[0].set("kwargs", kwargs)
                entry.set("inbound_nodes", .array(nodes))
            }, ["'lstm_seq'", "its mask emb[0][0] has shape"], inputs: (0..<3).map { "zoo/mask_zoo_in\($0).npy" })
        // A reference past a layer's outputs.
        assertRefused(
            try model("zoo/mask_zoo.h5", layer: "lstm_seq") { entry in
                var nodes = entry["inbound_nodes"]!.arrayValue!
                var args = nodes[0]["args"]!.arrayValue!
                var tensor = args[0]
                var tensorConfig = tensor["config"]!
                tensorConfig.set("keras_history", .array([.string("emb"), .int(0), .int(3)]))
                tensor.set("config", tensorConfig)
                args[0] = tensor
                nodes[0].set("args", .array(args))
                entry.set("inbound_nodes", .array(nodes))
            }, ["'lstm_seq'", "takes output 3 of 'emb', which has 1"])
        // Keras rejects output_padding not below the stride.
        assertRefused(
            try model("zoo/conv1d_zoo.h5", layer: "transpose_outpad") { entry in
                var config = entry["config"]!
                config.set("output_padding", .array([.int(9)]))
                entry.set("config", config)
            }, ["'transpose_outpad'", "output_padding [9] must be smaller than the strides"])
        // An infinite id used to trap while its message was being written.
        let interpreter = try Interpreter(try ModelFile.read(Fixtures.path("text_cls/keras3.h5")))
        var ids = try NPY.read(Fixtures.path("data/mnist_tokens.npy")).floatArray().slice(0..<1)
        for bad: Float in [.infinity, -.infinity, 1e30] {
            ids.data[3] = bad
            XCTAssertThrowsError(try interpreter.run([ids])) {
                XCTAssertTrue("\($0)".contains("at [0, 3] is"), "\($0)")
            }
        }
    }

    /// A window longer than its input has no position, as Keras says; and a pool window far larger
    /// than its input only reads the input (it used to walk every tap of the window).
    func testWindowsLargerThanTheirInput() {
        XCTAssertEqual(ShapeMath.convLength(11, kernel: 12, stride: 12, dilation: 1, padding: "valid"), 0)
        XCTAssertEqual(ShapeMath.convLength(12, kernel: 12, stride: 12, dilation: 1, padding: "valid"), 1)
        let x = FloatArray(shape: [1, 1, 4, 1], data: [3, -1, 7, 2])
        let window = Window2D(
            inH: 1, inW: 4, kernel: [1, 1 << 24], strides: [1, 1], dilation: [1, 1], padding: "same")
        XCTAssertEqual(PoolingKernels.pool(x, window: window, max: true).data, [7, 7, 7, 7])
    }

    func testMaskArithmetic() {
        let a = StepMask(shape: [1, 4], keep: [true, false, true, false])
        let b = StepMask(shape: [1, 4], keep: [true, true, false, false])
        XCTAssertEqual(StepMask.union([a, b])?.keep, [true, true, true, false])
        XCTAssertNil(StepMask.union([a, nil]), "Keras 3: no mask unless every input has one")
        XCTAssertEqual(StepMask.intersection([a, b])?.keep, [true, false, false, false])
        XCTAssertEqual(StepMask.intersection([nil, b])?.keep, b.keep, "tf.keras 2: the masks there are")
    }
}
