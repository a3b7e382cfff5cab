import Foundation
import Pare
import XCTest

enum Fixtures {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent()
        .appendingPathComponent("fixtures")

    static func path(_ relative: String) -> String { root.appendingPathComponent(relative).path }

    static let models = ["mnist_cnn", "residual", "siamese", "dtypes"]

    /// Trained sequence models (keras3.h5, tfkeras2.h5, keras3.keras) and their inputs.
    static let sequenceModels = ["text_cls", "signal"]
    static func sequenceInput(_ model: String) -> String {
        model == "text_cls" ? "data/mnist_tokens.npy" : "data/mnist_seq.npy"
    }

    /// Trained transformers (keras3.h5, keras3.keras, tfkeras2.h5) and their inputs.
    static let transformerModels: [(String, [String])] = [
        ("vit", ["data/mnist_x.npy", "data/vit_positions.npy"]),
        ("text_transformer", ["data/mnist_tokens.npy", "data/text_positions.npy"]),
    ]

    /// Real pre-trained files from PyPI packages (fixtures/pretrained/README.md), with the inputs and
    /// tf.keras 2 outputs saved beside them.
    static let pretrained = [
        "dgaintel_dga", "ethnicolr_census2000_k202", "ethnicolr_fl5cat_tf28", "sentinews_gru", "deepcut_thai",
    ]

    /// Every Keras legacy .h5 fixture (all writers, full and weights-only).
    static var legacyH5: [String] {
        models.flatMap { model -> [String] in
            let dir = root.appendingPathComponent(model)
            let names = (try? FileManager.default.contentsOfDirectory(atPath: dir.path)) ?? []
            return names.filter { $0.hasSuffix(".h5") && !$0.hasSuffix(".weights.h5") }.sorted().map {
                dir.appendingPathComponent($0).path
            }
        }
    }

    /// Parameter counts Keras's count_params() reported when it made the fixtures.
    static func kerasParameterCount(_ model: String) throws -> Int {
        let data = try Data(contentsOf: root.appendingPathComponent("keras3_report.json"))
        let report = try JSONSerialization.jsonObject(with: data) as! [String: Any]
        return (report[model] as! [String: Any])["params"] as! Int
    }
}

func temporaryDirectory() throws -> URL {
    let url = FileManager.default.temporaryDirectory.appendingPathComponent("pare-test-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    return url
}

/// Layer order, weight names, dtypes and bytes of every tensor, optimizer state included, are equal.
func assertSameTensors(
    _ a: Model, _ b: Model, optimizer: Bool = true, file: StaticString = #filePath, line: UInt = #line
) throws {
    XCTAssertEqual(a.layers.map(\.name), b.layers.map(\.name), file: file, line: line)
    for (la, lb) in zip(a.layers, b.layers) {
        XCTAssertEqual(la.weights.map(\.name), lb.weights.map(\.name), file: file, line: line)
        for (wa, wb) in zip(la.weights, lb.weights) {
            XCTAssertEqual(wa.tensor.dtype, wb.tensor.dtype, file: file, line: line)
            XCTAssertEqual(try wa.tensor.bytes(), try wb.tensor.bytes(), wa.name, file: file, line: line)
        }
    }
    guard optimizer else { return }
    let oa = a.optimizer?.datasets() ?? []
    let ob = b.optimizer?.datasets() ?? []
    XCTAssertEqual(oa.map(\.path), ob.map(\.path), file: file, line: line)
    for (x, y) in zip(oa, ob) { XCTAssertEqual(try x.tensor.bytes(), try y.tensor.bytes(), file: file, line: line) }
}

/// Small functional models written out in full in tests: a legacy-.h5 config and float32 weights.
enum TestModels {
    /// A functional model's config from its layers' JSON.
    static func functional(_ layers: [String], inputs: [String], outputs: [String], outputNode: Int = 0) throws
        -> JSON
    {
        let refs = { (names: [String], node: Int) in
            names.map { "[\"\($0)\", \(node), 0]" }.joined(separator: ", ")
        }
        return try JSON.parse(
            """
            {"class_name": "Functional", "config": {"name": "m", "layers": [\(layers.joined(separator: ", "))],
             "input_layers": [\(refs(inputs, 0))], "output_layers": [\(refs(outputs, outputNode))]}}
            """)
    }

    /// An InputLayer of `shape` (the part after the batch axis, e.g. "10, 3").
    static func input(_ name: String, _ shape: String) -> String {
        """
        {"class_name": "InputLayer", "name": "\(name)", "inbound_nodes": [],
         "config": {"name": "\(name)", "batch_input_shape": [null, \(shape)]}}
        """
    }

    /// A layer called once on `inbound`, its config's other keys given as JSON members.
    static func layer(_ className: String, _ name: String, on inbound: String, _ config: String) -> String {
        """
        {"class_name": "\(className)", "name": "\(name)", "inbound_nodes": [[["\(inbound)", 0, 0, {}]]],
         "config": {"name": "\(name)", \(config)}}
        """
    }

    /// A layer's float32 weights, named as tf.keras names them (`name/role:0`).
    static func weights(_ name: String, _ tensors: [(role: String, values: [Float], shape: [Int])]) -> LayerWeights {
        LayerWeights(
            name: name,
            weights: tensors.map {
                Weight(name: "\(name)/\($0.role):0", tensor: Tensor(float32: $0.values, shape: $0.shape))
            })
    }

    /// A legacy-.h5 full model of `config` and `layers`.
    static func model(_ config: JSON, _ layers: [LayerWeights], path: String = "test.h5") -> Model {
        var model = Model(format: .kerasLegacyH5, kind: .fullModel, sourcePath: path, layers: layers)
        model.config = config
        return model
    }
}

/// SplitMix64: a reproducible generator, so a failing random case fails again the same way.
struct SeededGenerator: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
