import XCTest

@testable import Pare

/// Sequence, text and audio layers against the outputs Keras computed (fixtures/zoo,
/// fixtures/text_cls, fixtures/signal, fixtures/pretrained).
extension InterpreterTests {
    func testSequenceZooMatchesKeras() throws {
        for (name, inputs) in [
            ("conv1d_zoo", 1), ("recurrent_zoo", 1), ("rnn_wrapper_zoo", 2), ("mask_zoo", 3),
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
