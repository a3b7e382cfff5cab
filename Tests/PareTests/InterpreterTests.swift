import XCTest

@testable import Pare

/// Pare's interpreter against outputs Keras computed itself (saved by tools/fixtures).
final class InterpreterTests: XCTestCase {
    /// max |a − b| / max |b|: the error relative to the output's scale.
    func relativeError(_ a: FloatArray, _ b: Tensor) throws -> Double {
        let ref = try b.floats()
        XCTAssertEqual(a.shape, b.shape)
        guard a.count == ref.count else { return .infinity }
        var maxAbs: Float = 0
        var scale: Float = 0
        for i in 0..<ref.count {
            // NaN where Keras has NaN (a mean over no unmasked step) agrees; anywhere else it does not.
            if ref[i].isNaN && a.data[i].isNaN { continue }
            maxAbs = max(maxAbs, abs(a.data[i] - ref[i]))
            scale = max(scale, abs(ref[i]))
        }
        if maxAbs.isNaN { return .infinity }
        return Double(maxAbs / max(scale, 1e-30))
    }

    func check(
        model path: String, inputs: [String], outputs: [String], tolerance: Double = 1e-5,
        file: StaticString = #filePath, line: UInt = #line
    ) throws {
        let interpreter = try Interpreter(try ModelFile.read(Fixtures.path(path)))
        let x = try inputs.map { try NPY.read(Fixtures.path($0)).floatArray() }
        let y = try interpreter.run(x)
        XCTAssertEqual(y.count, outputs.count, path, file: file, line: line)
        for (i, (got, expectedPath)) in zip(y, outputs).enumerated() {
            let error = try relativeError(got, try NPY.read(Fixtures.path(expectedPath)))
            XCTAssertLessThanOrEqual(
                error, tolerance, "\(path) output \(i) (\(interpreter.outputNames[i]))", file: file, line: line)
        }
    }

    func zooOutputs(_ name: String) -> [String] {
        let files = (try? FileManager.default.contentsOfDirectory(atPath: Fixtures.path("zoo"))) ?? []
        let count = files.filter { $0.hasPrefix(name + "_out") }.count
        return (0..<count).map { "zoo/\(name)_out\($0).npy" }
    }

    func testEveryZooLayerMatchesKeras() throws {
        for (name, inputs) in [
            ("conv_zoo", 1), ("misc_zoo", 2), ("activation_zoo", 1), ("nested_zoo", 2),
            ("activation_zoo_tfkeras2", 1), ("misc_zoo_tfkeras2", 2), ("thresholded_zoo_tfkeras2", 1), ("core_zoo", 3),
            ("core_zoo_tfkeras2", 3),
        ] {
            let outputs = zooOutputs(name)
            XCTAssertGreaterThan(outputs.count, 1, name)
            try check(model: "zoo/\(name).h5", inputs: (0..<inputs).map { "zoo/\(name)_in\($0).npy" }, outputs: outputs)
        }
    }

    func testEveryFixtureMatchesItsWritersPredictions() throws {
        for model in ["mnist_cnn", "residual", "siamese"] {
            let inputs = model == "siamese" ? ["data/pairs_left.npy", "data/pairs_right.npy"] : ["data/mnist_x.npy"]
            try check(model: "\(model)/keras3.h5", inputs: inputs, outputs: ["\(model)/keras3_pred.npy"])
            try check(model: "\(model)/tfkeras2.h5", inputs: inputs, outputs: ["\(model)/tfkeras2_pred.npy"])
        }
        try check(
            model: "mnist_cnn/keras22_h5py2.h5", inputs: ["data/mnist_x.npy"], outputs: ["mnist_cnn/tfkeras2_pred.npy"])
        try check(
            model: "siamese/keras2_h5py2.h5", inputs: ["data/pairs_left.npy", "data/pairs_right.npy"],
            outputs: ["siamese/tfkeras2_pred.npy"])
    }
}

extension InterpreterTests {
    func testTheComparisonDetectsADifferentModel() throws {
        let interpreter = try Interpreter(try ModelFile.read(Fixtures.path("mnist_cnn/keras3.h5")))
        let y = try interpreter.run([try NPY.read(Fixtures.path("data/mnist_x.npy")).floatArray()])
        XCTAssertGreaterThan(try relativeError(y[0], try NPY.read(Fixtures.path("residual/keras3_pred.npy"))), 0.1)
        XCTAssertLessThan(try relativeError(y[0], try NPY.read(Fixtures.path("mnist_cnn/keras3_pred.npy"))), 1e-5)
    }

    func testFloat16AndFloat64LayersFollowTheirDTypePolicy() throws {
        // dense_f16 computes in float16 in Keras; Pare rounds its inputs and outputs to float16 the same way,
        // but accumulates in float32, so agreement is at float16 precision.
        try check(
            model: "dtypes/keras3.h5", inputs: ["data/mnist_flat.npy"], outputs: ["dtypes/keras3_pred.npy"],
            tolerance: 2e-3)
    }
}

extension InterpreterTests {
    /// The MNIST CNN with one layer's config changed by `edit`.
    func editedCNN(_ edit: (inout JSON) -> Void) throws -> Model {
        var model = try ModelFile.read(Fixtures.path("mnist_cnn/keras3.h5"))
        var config = try XCTUnwrap(model.config)
        var inner = try XCTUnwrap(config["config"])
        var layers = try XCTUnwrap(inner["layers"]?.arrayValue)
        for i in layers.indices { edit(&layers[i]) }
        inner.set("layers", .array(layers))
        config.set("config", inner)
        model.config = config
        return model
    }

    func testUnknownLayersAreNamedNotSkipped() throws {
        let model = try editedCNN { layer in
            if layer["config"]?["name"]?.stringValue == "dense_1" { layer.set("class_name", .string("Lambda")) }
        }
        XCTAssertThrowsError(try Interpreter(model)) { error in
            XCTAssertTrue("\(error)".contains("dense_1") && "\(error)".contains("Lambda"), "\(error)")
        }
    }

    func testChannelsFirstComputesWhatChannelsLastDoesOnTransposedInputs() throws {
        // A consistent NCHW model: every conv, pool and the Flatten channels_first, input (1, 28, 28).
        // Kernels are stored channels-last either way, and Flatten(channels_first) moves the channels
        // last before flattening, so on NCHW inputs it computes what the NHWC model computes.
        let model = try editedCNN { layer in
            var config = layer["config"]!
            if config["data_format"] != nil { config.set("data_format", .string("channels_first")) }
            if config["batch_shape"] != nil { config.set("batch_shape", .array([.null, .int(1), .int(28), .int(28)])) }
            layer.set("config", config)
        }
        XCTAssertEqual(try Inspection.of(model).layers.first { $0.path == "flatten" }?.outputShapes, ["(None, 2304)"])
        let original = try ModelFile.read(Fixtures.path("mnist_cnn/keras3.h5"))
        let x = try NPY.read(Fixtures.path("data/mnist_x.npy")).floatArray()
        let batch = FloatArray(shape: [8, 28, 28, 1], data: Array(x.data.prefix(8 * 784)))
        // (N, 28, 28, 1) and (N, 1, 28, 28) hold the same values in the same order.
        let nchw = FloatArray(shape: [8, 1, 28, 28], data: batch.data)
        let expected = try Interpreter(original).run([batch])[0]
        let got = try Interpreter(model).run([nchw])[0]
        XCTAssertEqual(got.shape, expected.shape)
        for (a, b) in zip(got.data, expected.data) { XCTAssertEqual(a, b, accuracy: 1e-5) }
    }

    func testEmptyBatchesAndWrongShapesAreRejected() throws {
        let interpreter = try Interpreter(try ModelFile.read(Fixtures.path("mnist_cnn/keras3.h5")))
        XCTAssertThrowsError(try interpreter.run([FloatArray(zeros: [0, 28, 28, 1])])) { error in
            XCTAssertTrue("\(error)".contains("batch is empty"), "\(error)")
        }
        XCTAssertThrowsError(try interpreter.run([FloatArray(zeros: [2, 28, 28, 3])])) { error in
            XCTAssertTrue("\(error)".contains("expects (None, 28, 28, 1)"), "\(error)")
        }
        XCTAssertThrowsError(try ModelInputs.load([Fixtures.path("data/missing.npy")]))
    }

    func testTiledRunsEqualLayerByLayerRuns() throws {
        let digits = try NPY.read(Fixtures.path("data/mnist_x.npy")).floatArray()
        let tokens128 = try NPY.read(Fixtures.path("data/mnist_tokens_f32.npy")).floatArray()
        // The text model's tiles are larger (its activations are small): four copies make enough examples.
        let tokens = FloatArray.joined(Array(repeating: tokens128, count: 4))
        // The tiled part: the whole residual net and text model; the MNIST CNN's convolutions and pooling
        // up to its Flatten (the Dense layers' 590,080 weights end it).
        for (model, input, sites) in [
            ("residual/keras3.h5", digits, 17), ("mnist_cnn/keras3.h5", digits, 5), ("text_cls/keras3.h5", tokens, 6),
        ] {
            let interpreter = try Interpreter(try ModelFile.read(Fixtures.path(model)))
            let plan = try XCTUnwrap(interpreter.tilePlan, model)
            XCTAssertEqual(plan.sites, sites, model)
            XCTAssertLessThan(plan.examples * 2, input.batch, model)
            let tiled = try interpreter.run([input])[0]
            XCTAssertEqual(interpreter.tiledSteps, 1, model)
            interpreter.tilePlan = nil
            let whole = try interpreter.run([input])[0]
            XCTAssertEqual(interpreter.tiledSteps, 1, model)
            // Equal up to float rounding: BLAS may sum in another order for another number of rows.
            XCTAssertLessThan(try relativeError(tiled, whole.tensor), 1e-6, model)
        }
        // A mask crossing the end of the tiled part (the Embedding's, when the part ends there) is not
        // joined: the batch runs whole instead, to the same result.
        let text = try Interpreter(try ModelFile.read(Fixtures.path("text_cls/keras3.h5")))
        let whole = try text.run([tokens])[0]
        text.tilePlan = Interpreter.TilePlan(sites: 1, examples: 8)
        let fallback = try text.run([tokens])[0]
        XCTAssertEqual(text.tiledSteps, 1)
        XCTAssertLessThan(try relativeError(fallback, whole.tensor), 1e-6)
    }

    func testFusedLayersGiveTheBitsOfTheLayersRunOneByOne() throws {
        let interpreter = try Interpreter(try ModelFile.read(Fixtures.path("residual/keras3.h5")))
        // stem → stem_bn → stem_relu and depthwise → depthwise_bn → depthwise_relu fold whole, and so does
        // the residual block: block_conv (with its own ReLU) → block_bn → residual_add (+ stem_relu, computed
        // before block_conv runs) → residual_relu.
        XCTAssertEqual(
            interpreter.fusions.mapValues(\.folded),
            [
                "stem": ["stem_bn", "stem_relu"], "depthwise": ["depthwise_bn", "depthwise_relu"],
                "block_conv": ["block_bn", "residual_add", "residual_relu"],
            ])
        XCTAssertEqual(interpreter.fusions["block_conv"]?.residual?.layer, "stem_relu")
        // concat (of depthwise_relu and separable) is pooled part by part into pool's result.
        XCTAssertEqual(interpreter.pooledConcatenations.mapValues(\.pooling), ["concat": "pool"])
        let x = try NPY.read(Fixtures.path("data/mnist_x.npy")).floatArray()
        interpreter.tilePlan = nil
        let fused = try interpreter.run([x])[0]
        XCTAssertEqual(interpreter.pooledConcatenationCalls, 1, "the fold ran")
        // Profiling times each layer, so every layer runs on its own.
        interpreter.profiling = true
        let separate = try interpreter.run([x])[0]
        XCTAssertEqual(interpreter.layerSeconds.keys.contains("stem_bn"), true)
        XCTAssertEqual(interpreter.layerSeconds.keys.contains("concat"), true)
        XCTAssertEqual(interpreter.pooledConcatenationCalls, 1, "no fold while profiling")
        XCTAssertEqual(fused.data.map(\.bitPattern), separate.data.map(\.bitPattern))
        // A model without BatchNormalization has nothing to fold.
        XCTAssertTrue(try Interpreter(try ModelFile.read(Fixtures.path("mnist_cnn/keras3.h5"))).fusions.isEmpty)
    }

    func testBatchedRunsEqualOneRun() throws {
        let interpreter = try Interpreter(try ModelFile.read(Fixtures.path("residual/keras3.h5")))
        let x = try NPY.read(Fixtures.path("data/mnist_x.npy")).floatArray()
        // Equal up to float rounding: BLAS may sum in another order for another number of rows.
        let whole = try interpreter.run([x])[0]
        XCTAssertLessThan(try relativeError(try interpreter.run([x], batchSize: 7)[0], whole.tensor), 1e-6)
    }
}
