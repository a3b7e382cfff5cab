import Foundation
import HDF5
import XCTest
import ZIPFoundation

@testable import Pare

/// Keras 3's `.keras` and `.weights.h5`, conversions between every format, and plain HDF5 tensor files.
final class Keras3FormatTests: XCTestCase {
    var dir: URL!
    override func setUpWithError() throws { dir = try temporaryDirectory() }
    override func tearDownWithError() throws { try? FileManager.default.removeItem(at: dir) }
    func path(_ name: String) -> String { dir.appendingPathComponent(name).path }

    static let models = Fixtures.models + ["bf16"]

    func testKerasArchiveAndWeightsFileHoldWhatKerasLegacyWriterWrote() throws {
        // Keras 3 wrote keras3.h5, model.keras and model.weights.h5 from the same trained model: read
        // through the architecture, the Keras 3 layout must give the legacy writer's names, order and bytes.
        for name in Self.models {
            let legacy = try ModelFile.read(Fixtures.path("\(name)/keras3.h5"))
            let archive = try ModelFile.read(Fixtures.path("\(name)/model.keras"))
            XCTAssertEqual(archive.format, .kerasArchive)
            XCTAssertEqual(archive.layout, .keras3)
            try assertSameTensors(legacy, archive, optimizer: false)
            let config = try ModelFile.readArchitecture(Fixtures.path("\(name)/model.keras"))
            let weights = try ModelFile.read(Fixtures.path("\(name)/model.weights.h5"), architecture: config)
            XCTAssertEqual(weights.format, .keras3WeightsH5)
            try assertSameTensors(archive, weights)
            // The optimizer's variables: Keras 3 numbers them in the same order as the legacy file names them.
            if let legacyOptimizer = legacy.optimizer?.datasets() {
                XCTAssertEqual(legacyOptimizer.count, try XCTUnwrap(archive.optimizer).datasets().count, name)
            }
            if name != "bf16" { XCTAssertEqual(legacy.parameterCount, try Fixtures.kerasParameterCount(name)) }
        }
    }

    func testNestedModelWeightsPutTrainableFirstAsKerasDoes() throws {
        // bf16's nested block has a frozen conv and a BatchNormalization: Keras's legacy writer lists
        // gamma, beta (trainable), then the frozen conv's kernel and bias, then the moving statistics.
        let archive = try ModelFile.read(Fixtures.path("bf16/model.keras"))
        XCTAssertEqual(
            archive.layer(named: "block")?.weights.map(\.name),
            [
                "block/block_bn/gamma", "block/block_bn/beta", "block/block_conv/kernel", "block/block_conv/bias",
                "block/block_bn/moving_mean", "block/block_bn/moving_variance",
            ])
        XCTAssertEqual(archive.layer(named: "conv_bf16")?.weights.first?.tensor.dtype, .bfloat16)
    }

    func testSnakeCaseMatchesKeras() {
        for (cls, snake) in [
            ("Conv2D", "conv2d"), ("BatchNormalization", "batch_normalization"), ("ReLU", "re_lu"),
            ("DepthwiseConv2D", "depthwise_conv2d"), ("GlobalAveragePooling2D", "global_average_pooling2d"),
            ("InputLayer", "input_layer"), ("PReLU", "p_re_lu"), ("Conv2DTranspose", "conv2d_transpose"),
            ("Functional", "functional"), ("Sequential", "sequential"),
        ] {
            XCTAssertEqual(Keras3Layout.snakeCase(cls), snake, cls)
        }
    }

    func testConvertingInEveryDirectionKeepsEveryTensor() throws {
        for name in Self.models {
            let original = try ModelFile.read(Fixtures.path("\(name)/model.keras"))
            let config = try XCTUnwrap(original.config)
            // .keras → .keras keeps everything, optimizer, config text and metadata included.
            try ModelFile.write(original, to: path("a.keras"))
            let same = try ModelFile.read(path("a.keras"))
            try assertSameTensors(original, same)
            XCTAssertEqual(same.source.originalConfigText, original.source.originalConfigText)
            XCTAssertEqual(same.source.kerasMetadataText, original.source.kerasMetadataText)
            // A chain through every format and back.
            var current = original
            for (i, ext) in ["h5", "weights.h5", "pare", "keras", "pare", "weights.h5", "h5", "keras"].enumerated() {
                let out = path("chain\(i).\(ext)")
                try ModelFile.write(current, to: out)
                current = try ModelFile.read(out, architecture: ext == "weights.h5" ? config : nil)
                try assertSameTensors(original, current, optimizer: false)
            }
            XCTAssertEqual(current.format, .kerasArchive)
        }
    }

    func testLegacyFilesOfEveryWriterConvertToKeras3Layouts() throws {
        for name in Fixtures.models {
            for legacy in ["keras3.h5", "tfkeras2.h5"] {
                let source = try ModelFile.read(Fixtures.path("\(name)/\(legacy)"))
                let config = try XCTUnwrap(source.config)
                try ModelFile.write(source, to: path("w.weights.h5"))
                let back = try ModelFile.read(path("w.weights.h5"), architecture: config)
                XCTAssertEqual(back.layers.map(\.name), source.layers.map(\.name))
                for (a, b) in zip(source.layers, back.layers) {
                    XCTAssertEqual(
                        try a.weights.map { try $0.tensor.bytes() }, try b.weights.map { try $0.tensor.bytes() },
                        "\(name)/\(legacy) \(a.name)")
                }
                let out = path("\(name)_\(legacy).keras")
                if legacy == "keras3.h5" {
                    try ModelFile.write(source, to: out)
                    try assertSameTensors(source, try ModelFile.read(out), optimizer: false)
                } else {
                    XCTAssertThrowsError(try ModelFile.write(source, to: out)) { error in
                        XCTAssertTrue("\(error)".contains("Keras 2 / tf.keras config"), "\(error)")
                    }
                    XCTAssertFalse(FileManager.default.fileExists(atPath: out))
                }
            }
        }
    }

    func testInterpreterRunsKeras3FilesLikeKeras() throws {
        let x = try NPY.read(Fixtures.path("data/mnist_x.npy")).floatArray()
        let flat = try NPY.read(Fixtures.path("data/mnist_flat.npy")).floatArray()
        for name in ["mnist_cnn", "residual", "dtypes"] {
            let interpreter = try Interpreter(try ModelFile.read(Fixtures.path("\(name)/model.keras")))
            let y = try interpreter.run([name == "dtypes" ? flat : x])[0]
            let expected = try NPY.read(Fixtures.path("\(name)/keras3_pred.npy")).floatArray()
            let scale = expected.data.map(abs).max()!
            let error = zip(y.data, expected.data).map { abs($0 - $1) }.max()!
            XCTAssertLessThanOrEqual(error / scale, name == "dtypes" ? 2e-3 : 1e-5, name)
        }
        // bfloat16 weights: Keras's predictions on the first 64 digits.
        let first64 = FloatArray(shape: [64, 28, 28, 1], data: Array(x.data.prefix(64 * 784)))
        let y = try Interpreter(try ModelFile.read(Fixtures.path("bf16/model.keras"))).run([first64])[0]
        let expected = try NPY.read(Fixtures.path("bf16/pred.npy")).floatArray()
        XCTAssertLessThanOrEqual(zip(y.data, expected.data).map { abs($0 - $1) }.max()!, 1e-2)
        XCTAssertEqual(y.data.count, expected.data.count)
    }

    func testBFloat16IsStoredTheWayKerasStoresIt() throws {
        let model = try ModelFile.read(Fixtures.path("bf16/model.keras"))
        try ModelFile.write(model, to: path("b.weights.h5"))
        let file = try HDF5File.open(path("b.weights.h5"))
        let kernel = try file.root().dataset("layers/conv2d/vars/0")
        XCTAssertEqual(try kernel.elementType(), .opaque(bytes: 2, tag: ""))
        XCTAssertEqual(try kernel.attribute("dtype").stringValues, ["bfloat16"])
        // Keras 3's legacy writer stores bfloat16 as opaque without the attribute; Pare reads it as bfloat16.
        let legacy = try ModelFile.read(Fixtures.path("bf16/keras3.h5"))
        XCTAssertEqual(legacy.layer(named: "conv_bf16")?.weights[0].tensor.dtype, .bfloat16)
    }

    // MARK: Pruning a .keras

    func testPrunedKerasArchiveHasNewBuildShapes() throws {
        let model = try ModelFile.read(Fixtures.path("residual/model.keras"))
        var selection = PruneSelection()
        selection.globalRatio = 0.5
        let job = try PruneJob.plan(model, selection: selection, criterion: .l1, calibration: nil)
        let pruned = try Rewriter(planner: job.planner, plan: job.plan).prune(constants: nil).model
        try ModelFile.write(pruned, to: path("p.keras"))
        let back = try ModelFile.read(path("p.keras"))
        let layers = try XCTUnwrap(back.config?["config"]?["layers"]?.arrayValue)
        let head = try XCTUnwrap(layers.first { $0["config"]?["name"]?.stringValue == "head_conv" })
        let inputChannels = try XCTUnwrap(head["build_config"]?["input_shape"]?[3]?.intValue)
        let kernel = try XCTUnwrap(back.layer(named: "head_conv")?.weights[0].tensor.shape)
        XCTAssertEqual(inputChannels, kernel[2], "build_config input channels follow the pruned kernel")
        XCTAssertLessThan(inputChannels, 40)
        let add = try XCTUnwrap(layers.first { $0["config"]?["name"]?.stringValue == "residual_add" })
        XCTAssertEqual(
            add["build_config"]?["input_shape"]?[0]?[3]?.intValue, add["build_config"]?["input_shape"]?[1]?[3]?.intValue
        )
        XCTAssertLessThan(try XCTUnwrap(add["build_config"]?["input_shape"]?[0]?[3]?.intValue), 16)
    }

    // MARK: Plain HDF5 tensor files

    func testPlainTensorFileRoundTripsThroughPareWithAttributes() throws {
        let source = try ModelFile.read(Fixtures.path("plain/state_dict.h5"))
        XCTAssertEqual(source.kind, .tensors)
        XCTAssertEqual(source.parameterCount, 2_173)
        try ModelFile.write(source, to: path("s.pare"))
        try ModelFile.write(try ModelFile.read(path("s.pare")), to: path("s.h5"))
        let a = try HDF5File.open(Fixtures.path("plain/state_dict.h5"))
        let b = try HDF5File.open(path("s.h5"))
        try assertSameTree(try a.root(), try b.root())
        XCTAssertThrowsError(try Interpreter(try ModelFile.read(path("s.h5"))))
        XCTAssertThrowsError(try source.requireArchitecture(for: "run")) { error in
            XCTAssertTrue("\(error)".contains("plain tensors"), "\(error)")
        }
        XCTAssertThrowsError(try ModelFile.write(source, to: path("s.keras")))
    }

    func assertSameTree(_ a: HDF5Group, _ b: HDF5Group) throws {
        XCTAssertEqual(try a.attributeNames(), try b.attributeNames(), a.path)
        for name in try a.attributeNames() {
            XCTAssertEqual(try a.attribute(name), try b.attribute(name), "\(a.path)@\(name)")
        }
        let ca = try a.children()
        let cb = try b.children()
        XCTAssertEqual(ca.map(\.name), cb.map(\.name), a.path)
        for link in ca {
            let child = link.name
            if link.kind == .group {
                try assertSameTree(try a.group(child), try b.group(child))
            } else {
                let da = try a.dataset(child)
                let db = try b.dataset(child)
                XCTAssertEqual(try da.elementType(), try db.elementType(), child)
                XCTAssertEqual(try da.shape(), try db.shape(), child)
                XCTAssertEqual(try da.readBytes(), try db.readBytes(), child)
                XCTAssertEqual(try da.attributeNames(), try db.attributeNames(), child)
            }
        }
    }

    func testSparsifyingPlainTensorsTouchesFloatMatricesOnly() throws {
        let source = try ModelFile.read(Fixtures.path("plain/state_dict.h5"))
        let sparsified = try MagnitudeSparsifier.sparsify(source, sparsity: 0.5, global: false, layers: nil)
        let (sparse, rows) = (sparsified.model, sparsified.rows)
        XCTAssertEqual(
            Set(rows.map { ($0.layer.isEmpty ? "" : $0.layer + "/") + $0.weight }),
            ["classifier.weight", "features.0.weight", "meta/embedding"])
        for row in rows { XCTAssertEqual(row.sparsity, 0.5, accuracy: 0.01, row.weight) }
        let before = Dictionary(
            uniqueKeysWithValues: source.rootExtras.flatMap { $0.datasets() }.map { ($0.path, $0.tensor) })
        for (p, t) in sparse.rootExtras.flatMap({ $0.datasets() }).map({ ($0.path, $0.tensor) })
        where !["classifier.weight", "features.0.weight", "meta/embedding"].contains(p) {
            XCTAssertEqual(try t.bytes(), try before[p]!.bytes(), p)
        }
    }

    // MARK: Bad archives and mismatched weights

    /// Builds an archive with ZIPFoundation from (name, bytes, deflate) entries.
    func archive(_ name: String, _ entries: [(String, [UInt8], Bool)]) throws -> String {
        let p = path(name)
        try? FileManager.default.removeItem(atPath: p)
        let zip = try Archive(url: URL(fileURLWithPath: p), accessMode: .create)
        for (entry, bytes, deflate) in entries {
            let data = Data(bytes)
            try zip.addEntry(
                with: entry, type: .file, uncompressedSize: Int64(data.count),
                compressionMethod: deflate ? .deflate : .none
            ) { pos, size in
                data.subdata(in: Int(pos)..<Int(pos) + size)
            }
        }
        return p
    }

    func member(_ name: String, of keras: String = "mnist_cnn/model.keras") throws -> [UInt8] {
        let zip = try Archive(url: URL(fileURLWithPath: Fixtures.path(keras)), accessMode: .read)
        var bytes = [UInt8]()
        _ = try zip.extract(zip[name]!) { bytes += $0 }
        return bytes
    }

    func assertRejected(_ file: String, mentions words: [String], line: UInt = #line) {
        XCTAssertThrowsError(try ModelFile.read(file), line: line) { error in
            let text = "\(error)"
            XCTAssertTrue(text.hasPrefix(file), text, line: line)
            for w in words { XCTAssertTrue(text.contains(w), "\(text) lacks '\(w)'", line: line) }
        }
    }

    func testBadArchivesAreRejectedWithoutExtractingAnything() throws {
        let config = try member("config.json")
        let metadata = try member("metadata.json")
        let weights = try member("model.weights.h5")
        let good = try archive(
            "good.keras",
            [("metadata.json", metadata, false), ("config.json", config, false), ("model.weights.h5", weights, true)])
        XCTAssertEqual(try ModelFile.read(good).parameterCount, 643_594, "a deflated weights member is fine")
        assertRejected(
            try archive("noconfig.keras", [("metadata.json", metadata, false), ("model.weights.h5", weights, false)]),
            mentions: ["config.json", "missing"])
        assertRejected(
            try archive("noweights.keras", [("config.json", config, false)]), mentions: ["model.weights.h5", "missing"])
        assertRejected(
            try archive(
                "extra.keras",
                [("config.json", config, false), ("model.weights.h5", weights, false), ("notes.txt", [1], false)]),
            mentions: ["notes.txt", "unexpected"])
        for evil in ["../evil.txt", "/etc/evil", "assets/../../evil"] {
            let before = Set(try FileManager.default.contentsOfDirectory(atPath: dir.deletingLastPathComponent().path))
            assertRejected(
                try archive(
                    "evil.keras",
                    [(evil, [1, 2, 3], false), ("config.json", config, false), ("model.weights.h5", weights, false)]),
                mentions: [evil, "'..'"])
            XCTAssertEqual(
                Set(try FileManager.default.contentsOfDirectory(atPath: dir.deletingLastPathComponent().path)), before)
        }
        assertRejected(
            try archive(
                "badjson.keras",
                [("config.json", Array("{not json".utf8), false), ("model.weights.h5", weights, false)]),
            mentions: ["config.json", "does not parse"])
        // The weights of another model: the architecture does not match.
        let other = try member("model.weights.h5", of: "residual/model.keras")
        assertRejected(
            try archive("mismatch.keras", [("config.json", config, false), ("model.weights.h5", other, false)]),
            mentions: ["do not match"])
        // A zip bomb: 64 MiB of zeros deflate to ~64 KiB (1000:1); then the header claims 1 TiB.
        let bomb = try archive(
            "bomb.keras",
            [("config.json", config, false), ("model.weights.h5", [UInt8](repeating: 0, count: 64 << 20), true)])
        var bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: bomb)))
        XCTAssertLessThan(bytes.count, 1 << 20)
        patchDeclaredSize(&bytes, entry: "model.weights.h5", size: 1 << 40)
        try Data(bytes).write(to: URL(fileURLWithPath: bomb))
        assertRejected(bomb, mentions: ["model.weights.h5", "zip bomb"])
        // Truncated archives and corrupted members.
        let whole = [UInt8](try Data(contentsOf: URL(fileURLWithPath: good)))
        for cut in [10, whole.count / 2, whole.count - 30] {
            try Data(whole.prefix(cut)).write(to: URL(fileURLWithPath: path("cut.keras")))
            XCTAssertThrowsError(try ModelFile.read(path("cut.keras")), "cut at \(cut)") {
                XCTAssertTrue("\($0)".hasPrefix(self.path("cut.keras")), "\($0)")
            }
        }
        var flipped = [UInt8](try Data(contentsOf: URL(fileURLWithPath: Fixtures.path("mnist_cnn/model.keras"))))
        flipped[flipped.count / 2] ^= 0x40
        try Data(flipped).write(to: URL(fileURLWithPath: path("flip.keras")))
        XCTAssertThrowsError(try ModelFile.read(path("flip.keras"))) {
            XCTAssertTrue("\($0)".contains("model.weights.h5"), "\($0)")
        }
    }

    /// Sets an entry's uncompressed size in its local header and central directory record.
    func patchDeclaredSize(_ zip: inout [UInt8], entry: String, size: UInt64) {
        let name = Array(entry.utf8)
        func u16(_ i: Int) -> Int { Int(zip[i]) | Int(zip[i + 1]) << 8 }
        func put32(_ i: Int, _ v: UInt32) { for k in 0..<4 { zip[i + k] = UInt8(truncatingIfNeeded: v >> (8 * k)) } }
        var i = 0
        while i + 46 < zip.count {
            if zip[i] == 0x50, zip[i + 1] == 0x4B, zip[i + 2] == 0x03, zip[i + 3] == 0x04,
                Array(zip[(i + 30)..<(i + 30 + u16(i + 26))]) == name
            {
                put32(i + 22, UInt32(truncatingIfNeeded: min(size, 0xFFFF_FFFE)))
            }
            if zip[i] == 0x50, zip[i + 1] == 0x4B, zip[i + 2] == 0x01, zip[i + 3] == 0x02,
                Array(zip[(i + 46)..<(i + 46 + u16(i + 28))]) == name
            {
                put32(i + 24, UInt32(truncatingIfNeeded: min(size, 0xFFFF_FFFE)))
            }
            i += 1
        }
    }

    func testWeightsFileAgainstTheWrongConfigNamesTheMismatch() throws {
        let wrong = try ModelFile.readArchitecture(Fixtures.path("residual/model.keras"))
        XCTAssertThrowsError(try ModelFile.read(Fixtures.path("mnist_cnn/model.weights.h5"), architecture: wrong)) {
            error in
            let text = "\(error)"
            XCTAssertTrue(text.hasPrefix(Fixtures.path("mnist_cnn/model.weights.h5")), text)
            XCTAssertTrue(text.contains("do not match this config"), text)
        }
        // Without an architecture, a Keras 3 weights file is a set of tensors that still packs exactly.
        let tensors = try ModelFile.read(Fixtures.path("mnist_cnn/model.weights.h5"))
        XCTAssertEqual(tensors.kind, .tensors)
        XCTAssertThrowsError(try tensors.requireArchitecture(for: "prune")) {
            // The library names the problem, not a command-line flag; the CLI adds "pass --config".
            XCTAssertEqual(
                ($0 as? PareError)?.reason,
                .needsArchitecture(operation: "prune", plainTensors: true, keras3Weights: true), "\($0)")
            XCTAssertFalse("\($0)".contains("--"), "\($0)")
        }
        try ModelFile.write(tensors, to: path("t.pare"))
        try ModelFile.write(try ModelFile.read(path("t.pare")), to: path("t.weights.h5"))
        try assertSameTree(
            try HDF5File.open(Fixtures.path("mnist_cnn/model.weights.h5")).root(),
            try HDF5File.open(path("t.weights.h5")).root())
        // A config file given as JSON.
        try Data(try member("config.json")).write(to: URL(fileURLWithPath: path("config.json")))
        let viaJSON = try ModelFile.read(
            Fixtures.path("mnist_cnn/model.weights.h5"),
            architecture: try ModelFile.readArchitecture(path("config.json")))
        XCTAssertEqual(viaJSON.parameterCount, 643_594)
    }
}
