import Foundation
import XCTest

enum Fixtures {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("fixtures")

    static func path(_ relative: String) -> String { root.appendingPathComponent(relative).path }

    static let models = ["mnist_cnn", "residual", "siamese", "dtypes"]

    /// Every Keras legacy .h5 fixture (all writers, full and weights-only).
    static var legacyH5: [String] {
        models.flatMap { model -> [String] in
            let dir = root.appendingPathComponent(model)
            let names = (try? FileManager.default.contentsOfDirectory(atPath: dir.path)) ?? []
            return names.filter { $0.hasSuffix(".h5") && !$0.hasSuffix(".weights.h5") }.sorted().map { dir.appendingPathComponent($0).path }
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
