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
