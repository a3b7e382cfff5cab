import XCTest

@testable import Pare

/// Transformer layers against the outputs Keras computed (fixtures/zoo: norm, attention,
/// dense_attention, einsum and activation3 zoos in both lines).
extension InterpreterTests {
    func testTransformerZooMatchesKeras() throws {
        for (name, inputs) in [("norm_zoo", 2), ("attention_zoo", 6), ("dense_attention_zoo", 4), ("einsum_zoo", 4)] {
            for flavour in ["", "_tfkeras2"] {
                let model = name + flavour
                let outputs = zooOutputs(model)
                XCTAssertGreaterThan(outputs.count, 1, model)
                try check(
                    model: "zoo/\(model).h5", inputs: (0..<inputs).map { "zoo/\(model)_in\($0).npy" }, outputs: outputs)
            }
        }
        try check(
            model: "zoo/activation3_zoo_tfkeras2.h5", inputs: ["zoo/activation3_zoo_tfkeras2_in0.npy"],
            outputs: zooOutputs("activation3_zoo_tfkeras2"))
    }

    /// Keras 3's activations, each against Keras's predict. Sparsemax's row 0 is left out: it holds
    /// exact ties (2, 1, 0.5, 0 …) where the support test `z₂ − (cumsum₂ − 1)/2 > 0` is exactly 0, and
    /// Keras disagrees with itself there — `predict` (graph mode) gives all zeros, the eager call
    /// `keras.activations.sparsemax` gives 1 at the 2 (Pare's answer, the exact arithmetic).
    func testKeras3ActivationsMatchKeras() throws {
        let model = try ModelFile.read(Fixtures.path("zoo/activation3_zoo.h5"))
        let interpreter = try Interpreter(model)
        let x = try NPY.read(Fixtures.path("zoo/activation3_zoo_in0.npy")).floatArray()
        let got = try interpreter.run([x])
        let outputs = zooOutputs("activation3_zoo")
        XCTAssertEqual(got.count, outputs.count)
        for (i, name) in interpreter.outputNames.enumerated() {
            let expected = try NPY.read(Fixtures.path(outputs[i])).floatArray()
            let skipFirstRow = name == "act_sparsemax"
            let rows = skipFirstRow ? 1..<expected.batch : 0..<expected.batch
            let error = try relativeError(got[i].slice(rows), expected.slice(rows).tensor)
            XCTAssertLessThanOrEqual(error, 1e-5, name)
        }
        XCTAssertTrue(interpreter.outputNames.contains("act_sparsemax"))
    }

    func testTrainedTransformersMatchKeras() throws {
        for (model, inputs) in Fixtures.transformerModels {
            for (file, pred) in [("keras3.h5", "keras3"), ("keras3.keras", "keras3"), ("tfkeras2.h5", "tfkeras2")] {
                try check(model: "\(model)/\(file)", inputs: inputs, outputs: ["\(model)/\(pred)_pred.npy"])
            }
        }
    }
}
