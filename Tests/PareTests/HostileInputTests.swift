import Foundation
import HDF5
import XCTest

@testable import Pare

/// Inputs built to hurt: files that are not what they claim, names that are paths, numbers that
/// trap, sizes that exhaust memory, outputs that are the inputs.
final class HostileInputTests: XCTestCase {
    var directory: URL!

    override func setUpWithError() throws { directory = try temporaryDirectory() }
    override func tearDownWithError() throws {
        try? FileManager.default.removeItem(at: directory)
        MemoryBudget.setLimit(nil)
    }

    func path(_ name: String) -> String { directory.appendingPathComponent(name).path }

    func message(_ body: () throws -> Void) -> String {
        do { try body() } catch { return String(describing: error) }
        return "no error"
    }

    // MARK: Outputs and inputs

    func testAnOutputThatIsAnInputInAnySpellingIsRefused() throws {
        let model = path("m.h5")
        try FileManager.default.copyItem(atPath: Fixtures.path("mnist_cnn/keras3.h5"), toPath: model)
        try FileManager.default.createSymbolicLink(atPath: path("link.h5"), withDestinationPath: model)
        XCTAssertEqual(link(model, path("hard.h5")), 0)
        let spellings = [
            model, directory.path + "/./m.h5", directory.path + "//m.h5", path("link.h5"), path("hard.h5"),
            "../" + directory.lastPathComponent + "/m.h5",
        ]
        let cwd = FileManager.default.currentDirectoryPath
        FileManager.default.changeCurrentDirectoryPath(directory.path)
        defer { FileManager.default.changeCurrentDirectoryPath(cwd) }
        for output in spellings + ["m.h5", "./m.h5"] {
            let text = message { try OutputPaths.check(outputs: [output], inputs: [model]) }
            XCTAssertTrue(text.contains("is the input"), "\(output): \(text)")
        }
        XCTAssertEqual(message { try OutputPaths.check(outputs: [path("new.h5")], inputs: [model]) }, "no error")
        let twice = message {
            try OutputPaths.check(outputs: [path("a.csv"), directory.path + "//a.csv"], inputs: [model])
        }
        XCTAssertTrue(twice.contains("same file as the output"), twice)
    }

    func testSpecialFilesAreNeitherReadNorReplaced() throws {
        XCTAssertEqual(mkfifo(path("fifo"), 0o600), 0)
        let asOutput = message { try OutputPaths.check(outputs: [path("fifo")], inputs: []) }
        XCTAssertTrue(asOutput.contains("FIFO") && asOutput.contains("regular files"), asOutput)
        let asInput = message { _ = try ModelFile.read(path("fifo")) }
        XCTAssertTrue(asInput.contains("FIFO") && asInput.hasPrefix(path("fifo")), asInput)
        let asConfig = message { _ = try ModelFile.readArchitecture(path("fifo")) }
        XCTAssertTrue(asConfig.contains("FIFO"), asConfig)
        let device = message { try OutputPaths.check(outputs: ["/dev/null"], inputs: []) }
        XCTAssertTrue(device.contains("character device"), device)
        let directoryInput = message { _ = try ModelFile.read(directory.path) }
        XCTAssertTrue(directoryInput.contains("a directory"), directoryInput)
    }

    // MARK: Memory

    func testEveryReadIsCheckedAgainstTheMemoryBudget() throws {
        MemoryBudget.setLimit(100_000)
        for file in ["mnist_cnn/keras3.h5", "mnist_cnn/model.keras", "mnist_cnn/model.weights.h5"] {
            let text = message { _ = try ModelFile.check(Fixtures.path(file)) }
            XCTAssertTrue(text.contains("over the memory budget of 97.7 KiB (100000 bytes)"), "\(file): \(text)")
        }
        let packed = path("m.pare")
        MemoryBudget.setLimit(nil)
        try PareFile.write(try ModelFile.read(Fixtures.path("mnist_cnn/keras3.h5")), to: packed)
        MemoryBudget.setLimit(100_000)
        let pare = message { _ = try ModelFile.check(packed) }
        XCTAssertTrue(pare.contains("tensor") && pare.contains("over the memory budget"), pare)
        let npy = message { _ = try NPY.read(Fixtures.path("data/mnist_x.npy")) }
        XCTAssertTrue(npy.contains("over the memory budget"), npy)
        let random = message {
            var generator = RandomInputs(seed: 0)
            _ = try generator.array(batch: 1_000_000_000, shape: [28, 28, 1], name: "x", file: "m.h5")
        }
        XCTAssertTrue(
            random.contains("1000000000 random examples") && random.contains("over the memory budget"), random)
    }

    func testTheInterpreterBatchesWithinTheBudgetAndRefusesOneExampleTooLarge() throws {
        let model = try ModelFile.read(Fixtures.path("mnist_cnn/keras3.h5"))
        let interpreter = try Interpreter(model)
        let perExample = try XCTUnwrap(interpreter.bytesPerExample)
        XCTAssertGreaterThan(perExample, 28 * 28 * 32 * 4, "at least the first conv's output")
        MemoryBudget.setLimit(perExample * 2 * 10)
        XCTAssertEqual(try interpreter.stepSize(requested: .max, examples: 1000), 10)
        XCTAssertEqual(try interpreter.stepSize(requested: 4, examples: 1000), 4)
        // Steps of 10 give the result of one pass (up to the GEMM's summation order).
        let x = try ModelInputs.load([Fixtures.path("data/mnist_x.npy")])[0].slice(0..<32)
        let batched = try interpreter.run([x])[0]
        MemoryBudget.setLimit(nil)
        let whole = try interpreter.run([x], batchSize: .max)[0]
        XCTAssertEqual(batched.shape, [32, 10])
        XCTAssertLessThan(zip(batched.data, whole.data).map { abs($0 - $1) }.max() ?? 1, 1e-5)
        MemoryBudget.setLimit(perExample - 1)
        let text = message { _ = try interpreter.run([x]) }
        XCTAssertTrue(text.contains("running one example") && text.contains("over the memory budget"), text)
    }

    func testSizesParseAsMaxMemoryTakesThem() {
        XCTAssertEqual(MemoryBudget.parseSize("512M"), 512 << 20)
        XCTAssertEqual(MemoryBudget.parseSize("4G"), 4 << 30)
        XCTAssertEqual(MemoryBudget.parseSize("1.5GiB"), 3 << 29)
        XCTAssertEqual(MemoryBudget.parseSize("100000"), 100_000)
        for bad in ["", "-1", "0", "G", "1e30", "nan", "4X"] { XCTAssertNil(MemoryBudget.parseSize(bad), bad) }
    }

    // MARK: Values and names

    func testLabelsAreReadExactly() throws {
        let predictions = FloatArray(shape: [3, 4], data: [1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 1])
        func labels(_ values: [Double]) -> Tensor {
            var bytes: [UInt8] = []
            for v in values { withUnsafeBytes(of: v.bitPattern.littleEndian) { bytes += $0 } }
            return Tensor(dtype: .float64, shape: [values.count], bytes: bytes)
        }
        XCTAssertEqual(
            try Evaluation.of(predictions: predictions, labels: labels([0, 1, 3]), file: "y.npy").correct, 3)
        for (values, expected) in [
            ([0, 1, .nan], "example 2: label nan is not a whole class index"),
            ([0, 3.5, 3], "example 1: label 3.5 is not a whole class index"),
            ([0, 1, 4], "example 2: label 4.0 is out of range"),
            ([-1, 1, 3], "example 0: label -1.0 is out of range"),
            ([0, .infinity, 3], "example 1: label inf is not a whole class index"),
        ] {
            let text = message {
                _ = try Evaluation.of(predictions: predictions, labels: labels(values), file: "y.npy")
            }
            XCTAssertTrue(text.contains(expected), text)
        }
        let huge = Tensor(dtype: .uint64, shape: [3], bytes: [UInt8](repeating: 0xFF, count: 24))
        let text = message { _ = try Evaluation.of(predictions: predictions, labels: huge, file: "y.npy") }
        XCTAssertTrue(text.contains("out of range"), text)
    }

    func testLayerNamesThatArePathsAreRefused() throws {
        func config(_ names: [String]) throws -> JSON {
            let layers = names.enumerated().map { i, name in
                i == 0
                    ? "{\"class_name\": \"InputLayer\", \"config\": {\"name\": \"\(name)\", \"batch_shape\": "
                        + "[null, 4]}}"
                    : "{\"class_name\": \"Dense\", \"config\": {\"name\": \"\(name)\", \"units\": 2}}"
            }
            return try JSON.parse(
                "{\"class_name\": \"Sequential\", \"config\": {\"name\": \"s\", \"layers\": "
                    + "[\(layers.joined(separator: ","))]}}"
            )
        }
        XCTAssertNoThrow(try Architecture.parse(try config(["in", "a", "b"])))
        XCTAssertTrue(message { _ = try Architecture.parse(try config(["in", "a/b"])) }.contains("containing '/'"))
        XCTAssertTrue(message { _ = try Architecture.parse(try config(["in", ""])) }.contains("empty name"))
        XCTAssertTrue(message { _ = try Architecture.parse(try config(["in", "a", "a"])) }.contains("used twice"))
        XCTAssertNil(NameRules.problem(withPath: "dense/kernel:0"))
        for bad in ["/model_weights/x", "a//b", "a/../b", "./a", ""] {
            XCTAssertNotNil(NameRules.problem(withPath: bad), bad)
        }
    }

    func testStringsPareCannotKeepExactlyAreRefused() throws {
        let file = path("strings.h5")
        do {
            let root = try HDF5File.create(file).root()
            let fixed = StringEncoding(variableLength: false, utf8: false, fixedSize: 5, padding: .nullPadded)
            try root.setAttribute("ok", .strings(["ab"], shape: [1], encoding: fixed))
        }
        // Patch the stored bytes to hold a NUL inside the value ("ab\0cd") and to hold bytes that are not UTF-8.
        var bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: file)))
        let at = try XCTUnwrap(bytes.indices.first { bytes[$0] == 0x61 && bytes[$0 + 1] == 0x62 && bytes[$0 + 2] == 0 })
        bytes[at + 3] = 0x63
        try Data(bytes).write(to: URL(fileURLWithPath: path("nul.h5")))
        bytes[at + 3] = 0
        bytes[at] = 0xFF
        try Data(bytes).write(to: URL(fileURLWithPath: path("latin.h5")))
        XCTAssertEqual(try HDF5File.open(file).root().attribute("ok").stringValues, ["ab"])
        for bad in ["nul.h5", "latin.h5"] {
            let text = message { _ = try HDF5File.open(path(bad)).root().attribute("ok") }
            XCTAssertTrue(text.contains("cannot keep exactly"), "\(bad): \(text)")
        }
    }

    func testDuplicateJSONKeysAreRefused() {
        let text = message { _ = try JSON.parse("{\"units\": 2, \"units\": 3}") }
        XCTAssertTrue(text.contains("appears twice"), text)
    }

    func testALegacyModelConfigMustBeOneString() throws {
        let copy = path("array.h5")
        try FileManager.default.copyItem(atPath: Fixtures.path("mnist_cnn/keras3.h5"), toPath: copy)
        do {
            let root = try HDF5File.open(copy, writable: true).root()
            let text = try XCTUnwrap(root.attribute("model_config").singleString)
            try root.setAttribute("model_config", .strings([text, text], shape: [2], encoding: .variableUTF8))
        }
        let text = message { _ = try ModelFile.read(copy) }
        XCTAssertTrue(text.contains("model_config") && text.contains("array of 2 strings"), text)
    }
}

/// Inputs an attacker's review of the layer registry found to trap or run away.
extension HostileInputTests {
    /// A Functional model from layer entries (Keras 2 inbound-node form), inputs and outputs.
    /// `outputNode`: the node index of the outputs' calls (tf.keras numbers a nested model's from 1).
    func functional(_ layers: [String], inputs: [String], outputs: [String], outputNode: Int = 0) throws -> JSON {
        try TestModels.functional(layers, inputs: inputs, outputs: outputs, outputNode: outputNode)
    }

    func input(_ name: String, _ shape: String) -> String { TestModels.input(name, shape) }

    func testASharedLayerCalledOnDifferentShapesIsRefusedBeforeItRuns() throws {
        // A shared Dense on a 4-wide and a 64-wide input: its one kernel (4, 8) cannot serve both.
        var model = Model(
            format: .kerasLegacyH5, kind: .fullModel, sourcePath: "shared.h5",
            layers: [
                LayerWeights(
                    name: "d",
                    weights: [
                        Weight(
                            name: "d/kernel:0", tensor: Tensor(float32: Array(repeating: 1, count: 32), shape: [4, 8]))
                    ])
            ])
        model.config = try functional(
            [
                input("a", "4"), input("b", "64"),
                """
                {"class_name": "Dense", "name": "d", "inbound_nodes": [[["a", 0, 0, {}]], [["b", 0, 0, {}]]],
                 "config": {"name": "d", "units": 8, "use_bias": false}}
                """,
            ], inputs: ["a", "b"], outputs: ["d"])
        let text = message { _ = try Interpreter(model) }
        XCTAssertTrue(text.contains("called on inputs of different shapes"), text)
        XCTAssertTrue(message { _ = try Planner(model) }.contains("called on inputs of different shapes"))
        XCTAssertNoThrow(try Inspection.of(model), "inspect still describes the model")
    }

    func testNestedModelsCalledAgainAndAgainAreRefusedQuickly() throws {
        // Each level calls the next twice: 2^40 calls if expanded; refused at the call budget.
        var inner = try functional(
            [
                input("i0", "3"),
                #"{"class_name": "ReLU", "name": "r", "inbound_nodes": [[["i0", 0, 0, {}]]], "config": {"name": "r"}}"#,
            ],
            inputs: ["i0"], outputs: ["r"])
        for level in 1...40 {
            let call = "[[\"i\(level)\", 0, 0, {}]]"
            var entry = try JSON.parse(
                "{\"class_name\": \"Functional\", \"name\": \"m\(level - 1)\", \"inbound_nodes\": [\(call), \(call)]}")
            var config = inner["config"]!
            config.set("name", .string("m\(level - 1)"))
            entry.set("config", config)
            inner = try functional(
                [input("i\(level)", "3"), entry.serialized()], inputs: ["i\(level)"], outputs: ["m\(level - 1)"],
                outputNode: 1)
        }
        var model = Model(format: .kerasLegacyH5, kind: .fullModel, sourcePath: "nested.h5", layers: [])
        model.config = inner
        let start = Date()
        let text = message { _ = try CheckedModel(model) }
        XCTAssertTrue(text.contains("expands to more than"), text)
        XCTAssertLessThan(Date().timeIntervalSince(start), 60)
    }

    func testChannelsFirstLayersArePassedOverByThePruner() throws {
        var model = Model(
            format: .kerasLegacyH5, kind: .fullModel, sourcePath: "cf.h5",
            layers: [
                LayerWeights(
                    name: "c",
                    weights: [
                        Weight(
                            name: "c/kernel:0",
                            tensor: Tensor(float32: Array(repeating: 0.5, count: 108), shape: [3, 3, 3, 4])),
                        Weight(name: "c/bias:0", tensor: Tensor(float32: Array(repeating: 0, count: 4), shape: [4])),
                    ])
            ])
        model.config = try functional(
            [
                input("x", "3, 32, 32"),
                """
                {"class_name": "Conv2D", "name": "c", "inbound_nodes": [[["x", 0, 0, {}]]],
                 "config": {"name": "c", "filters": 4, "kernel_size": 3, "data_format": "channels_first"}}
                """,
                #"{"class_name": "Flatten", "name": "f", "inbound_nodes": [[["c", 0, 0, {}]]], "config": {}}"#,
            ], inputs: ["x"], outputs: ["f"])
        var selection = PruneSelection()
        selection.globalRatio = 0.5
        // Nothing in a channels-first tensor can be removed: an empty plan, not a trap.
        let plan = try PruneJob.plan(model, selection: selection, criterion: .l1, calibration: nil).plan
        XCTAssertEqual(plan.removed, [])
    }

    func testAPareHeaderWithHugeDimensionsAfterAZeroIsRefused() throws {
        let m = try ModelFile.read(Fixtures.path("mnist_cnn/keras3.h5"))
        try PareFile.write(m, to: path("q.pare"), options: .init(int8: true))
        var bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: path("q.pare"))))
        let t = bytes.count - 32
        let h = Int(PareFile.readLE(bytes, t + 8, as: UInt64.self))
        let l = Int(PareFile.readLE(bytes, t + 16, as: UInt64.self))
        var header = try JSON.parse(String(decoding: bytes[h..<(h + l)], as: UTF8.self))
        var tensors = header["tensors"]!.arrayValue!
        let index = tensors.firstIndex { $0["encoding"]?.stringValue == "int8" }!
        var entry = tensors[index]
        entry.set("shape", .array([.int(0), .int(1 << 62), .int(1 << 62)]))
        entry.set("channel_axes", .array([.int(1), .int(3)]))
        entry.set("channels", .int(1))
        tensors[index] = entry
        header.set("tensors", .array(tensors))
        let text = Array(header.serialized().utf8)
        var trailer = PareFile.trailerMagic + PareFile.le(UInt64(h)) + PareFile.le(UInt64(text.count))
        trailer += PareFile.le(Zlib.crc32(text))
        trailer += PareFile.le(Zlib.crc32(trailer))
        bytes = Array(bytes[..<h]) + text + trailer
        try Data(bytes).write(to: URL(fileURLWithPath: path("h.pare")))
        let refused = message { _ = try PareFile.check(path("h.pare")) }
        XCTAssertTrue(refused.contains("over 2^32"), refused)
    }

    func testABiasNameFromAKernelNamedOnlyWithColonsDoesNotTrap() {
        XCTAssertEqual(Rewriter.biasName(forKernel: "conv/kernel:0"), "conv/bias:0")
        XCTAssertEqual(Rewriter.biasName(forKernel: "c2/:"), "c2/bias")
        XCTAssertEqual(Rewriter.biasName(forKernel: ":"), "bias")
    }
}
