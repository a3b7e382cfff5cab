import HDF5
import XCTest

@testable import Pare

final class BadInputTests: XCTestCase {
    var dir: URL!
    override func setUpWithError() throws { dir = try temporaryDirectory() }
    override func tearDownWithError() throws { try? FileManager.default.removeItem(at: dir) }

    func path(_ name: String) -> String { dir.appendingPathComponent(name).path }

    func assertRejected(_ file: String, mentions words: [String], line: UInt = #line) {
        XCTAssertThrowsError(try ModelFile.read(file), line: line) { error in
            let message = "\(error)"
            XCTAssertTrue(error is PareError, "not a PareError: \(message)", line: line)
            XCTAssertTrue(message.hasPrefix(file), "does not start with the file: \(message)", line: line)
            for word in words {
                XCTAssertTrue(message.contains(word), "'\(word)' missing from: \(message)", line: line)
            }
        }
    }

    func testAWeightWhoseShapeContradictsTheConfigIsNamed() throws {
        var model = try ModelFile.read(Fixtures.path("mnist_cnn/keras3.h5"))
        let i = model.layers.firstIndex { $0.name == "conv2d_1" }!
        model.layers[i].weights[0].tensor = Tensor(
            float32: [Float](repeating: 0, count: 3 * 3 * 30 * 64), shape: [3, 3, 30, 64])
        try ModelFile.write(model, to: path("bad.h5"))
        assertRejected(path("bad.h5"), mentions: ["conv2d_1", "kernel", "[3, 3, 30, 64]", "contradicts"])
    }

    func testAConfigThatDoesNotParseIsRejected() throws {
        var model = try ModelFile.read(Fixtures.path("mnist_cnn/keras3.h5"))
        model.config = nil
        model.source.rootAttributes = model.source.rootAttributes.map {
            $0.0 == "model_config" ? ($0.0, .string("{\"class_name\": \"Sequential\", ")) : $0
        }
        try ModelFile.write(model, to: path("broken.h5"))
        assertRejected(path("broken.h5"), mentions: ["model_config", "does not parse", "expected a key"])
    }

    func testUnknownLayerClassesAreReportedByNameAndTheRestIsListed() throws {
        var model = try ModelFile.read(Fixtures.path("mnist_cnn/keras3.h5"))
        var config = try XCTUnwrap(model.config)
        var inner = try XCTUnwrap(config["config"])
        var layers = try XCTUnwrap(inner["layers"]?.arrayValue)
        let i = try XCTUnwrap(layers.firstIndex { $0["config"]?["name"]?.stringValue == "dense_1" })
        layers[i].set("class_name", .string("MyCustomDense"))
        inner.set("layers", .array(layers))
        config.set("config", inner)
        model.config = config
        try ModelFile.write(model, to: path("custom.h5"))
        let report = try Inspection.of(try ModelFile.read(path("custom.h5")))
        XCTAssertEqual(report.unsupportedLayers.count, 1)
        XCTAssertTrue(
            report.unsupportedLayers[0].contains("dense_1") && report.unsupportedLayers[0].contains("MyCustomDense"))
        XCTAssertEqual(report.layers.first { $0.path == "conv2d" }?.outputShapes, ["(None, 28, 28, 32)"])
        XCTAssertEqual(
            report.layers.first { $0.path == "dense_2" }?.outputShapes, ["?"],
            "shapes after an unknown layer are unknown")
        XCTAssertNil(report.totalMACs)
        XCTAssertEqual(report.totalParameters, 643_594)
    }

    func testFilesThatAreNotKerasModels() throws {
        do {
            let file = try HDF5File.create(path("empty.h5"))
            try file.root().createGroup("state")
            try file.close()
        }
        assertRejected(path("empty.h5"), mentions: ["no datasets"])
        do {
            let file = try HDF5File.create(path("plain.h5"))
            try file.root().createDataset(
                "state/w", type: .float(bits: 32), shape: [2], bytes: [UInt8](repeating: 0, count: 8))
            try file.close()
        }
        // A plain tensor file reads as tensors; what needs a graph says so.
        let plain = try ModelFile.read(path("plain.h5"))
        XCTAssertThrowsError(try plain.requireArchitecture(for: "run")) { error in
            XCTAssertTrue(
                "\(error)".hasPrefix(self.path("plain.h5")) && "\(error)".contains("not a Keras model"), "\(error)")
        }
        try Data(repeating: 7, count: 5000).write(to: URL(fileURLWithPath: path("noise.h5")))
        assertRejected(path("noise.h5"), mentions: ["not HDF5"])
        let bytes = try Data(contentsOf: URL(fileURLWithPath: Fixtures.path("residual/keras3.h5")))
        for cut in [8, 600, 4096, bytes.count / 2, bytes.count - 1] {
            try bytes.prefix(cut).write(to: URL(fileURLWithPath: path("cut.h5")))
            XCTAssertThrowsError(try Inspection.of(try ModelFile.read(path("cut.h5"))), "cut at \(cut)") { error in
                XCTAssertTrue("\(error)".hasPrefix(self.path("cut.h5")), "\(error)")
            }
        }
        assertRejected(path("absent.h5"), mentions: ["no such file"])
        assertRejected(dir.path, mentions: ["directory"])
    }

    func testFailedWritesLeaveNoOutputAndNoTemporaryFile() throws {
        var model = try ModelFile.read(Fixtures.path("residual/keras3.h5"))
        let i = model.layers.firstIndex { $0.name == "stem" }!
        model.layers[i].weights[0].tensor = Tensor(dtype: .float32, shape: [3, 3, 1, 16]) {
            throw PareError(file: "source.h5", object: "stem/kernel", "read failed")
        }
        XCTAssertThrowsError(try ModelFile.write(model, to: path("out.h5")))
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: dir.path), [])
    }

    func testErrorMessagesStayOnOneLineWhateverNamesAFileHolds() {
        let error = PareError(
            file: "m.h5", object: "/featur\ns.1\u{1B}[2J", "a link that is neither a group nor a dataset")
        XCTAssertEqual(error.description, "m.h5: /featur\\ns.1\\u{1b}[2J: a link that is neither a group nor a dataset")
        XCTAssertFalse(error.description.contains("\n"))
    }
}

extension BadInputTests {
    /// Library messages name no command-line flag: each failure is a `Problem` case a front end maps.
    func testLibraryProblemsNameNoCommandLineFlags() throws {
        let problems: [Problem] = [
            .overMemoryBudget(what: "x", needed: 2048, budget: 1024), .uncountableSize(what: "x"),
            .needsArchitecture(operation: "prune", plainTensors: false, keras3Weights: false),
            .needsArchitecture(operation: "prune", plainTensors: true, keras3Weights: true),
            .holdsOwnArchitecture, .plainTensorsTakeNoArchitecture, .notQuantizable(value: .nan, index: 3),
            .openInputShape("(None, None)"),
        ]
        for problem in problems { XCTAssertFalse(problem.text.contains("--"), problem.text) }
        let model = try ModelFile.read(Fixtures.path("mnist_cnn/keras3.h5"))
        var selection = PruneSelection()
        selection.keep = ["conv2d": 99]
        XCTAssertThrowsError(try PruneJob.plan(model, selection: selection, criterion: .l1, calibration: nil)) {
            error in
            let selectionError = error as? SelectionError
            XCTAssertEqual(selectionError?.option, "keep")
            XCTAssertEqual("\(error)", "keep conv2d=99: 'conv2d' has only 32 channels")
            XCTAssertEqual(selectionError?.text { "--" + $0 }, "--keep conv2d=99: 'conv2d' has only 32 channels")
        }
    }
}
