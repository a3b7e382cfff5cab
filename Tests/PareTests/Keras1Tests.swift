import HDF5
import XCTest

@testable import Pare

/// Keras 1.2.2 files (fixtures/keras1, written by real Keras 1.2.2 on Theano) read in Keras 2's
/// terms: each computes what Keras 1 computed, its weights are where Keras 2's layout puts them
/// (checked against the raw datasets), and what cannot be converted is refused by name.
final class Keras1Tests: XCTestCase {
    /// The fixtures Pare converts; their upgrades to Keras 3 are checked in UpgradeTests.
    static let converted = [
        "cnn_th", "cnn_tf", "conv1d", "rnn_lstm", "rnn_gru", "rnn_simple", "merge_sequential", "functional_merge",
    ]

    func io(_ name: String) throws -> (inputs: [FloatArray], output: Tensor) {
        let folder = Fixtures.path("keras1")
        let inputs = try FileManager.default.contentsOfDirectory(atPath: folder)
            .filter { $0.hasPrefix(name + "_input") }.sorted()
        return (
            try inputs.map { try NPY.read(folder + "/" + $0).floatArray() },
            try NPY.read(folder + "/\(name)_output.npy")
        )
    }

    func testKeras1FilesComputeWhatKeras1Computed() throws {
        for name in Self.converted {
            let model = try ModelFile.read(Fixtures.path("keras1/\(name).h5"))
            XCTAssertEqual(model.source.keras1Version, "1.2.2", name)
            XCTAssertTrue(Inspection.writerDescription(model).contains("Keras 1.2.2"), name)
            let (inputs, expected) = try io(name)
            let y = try Interpreter(model).run(inputs)
            let reference = try expected.floats()
            XCTAssertEqual(y[0].shape, expected.shape, name)
            let scale = reference.map(abs).max() ?? 1
            let worst = zip(y[0].data, reference).map { abs($0 - $1) }.max() ?? .infinity
            XCTAssertLessThanOrEqual(worst / scale, 1e-5, name)
        }
    }

    /// The raw datasets of a layer's group, by weight name.
    func raw(_ name: String, layer: String) throws -> [String: Tensor] {
        let file = try HDF5File.open(Fixtures.path("keras1/\(name).h5"))
        let group = try file.root().group("model_weights").group(layer)
        var out: [String: Tensor] = [:]
        for link in try group.children() {
            out[link.name] = try StoredNodeIO.tensor(of: try group.dataset(link.name), legacyKeras: true)
        }
        return out
    }

    func weight(_ model: Model, _ layer: String, _ role: String) throws -> Tensor {
        try XCTUnwrap(model.layer(named: layer)?.weights.first { $0.role == role }, "\(layer) \(role)").tensor
    }

    func testGateByGateLSTMWeightsAreJoinedInKeras2sOrder() throws {
        let model = try ModelFile.read(Fixtures.path("keras1/rnn_lstm.h5"))
        let stored = try raw("rnn_lstm", layer: "lstm_cpu")
        let kernel = try weight(model, "lstm_cpu", "kernel")
        let (rows, units) = (kernel.shape[0], kernel.shape[1] / 4)
        let k = try kernel.floats()
        // Keras 2's columns: i, f, c, o.
        for (block, gate) in ["i", "f", "c", "o"].enumerated() {
            let w = try XCTUnwrap(stored["lstm_cpu_W_\(gate)"]).floats()
            for r in 0..<rows {
                for u in 0..<units { XCTAssertEqual(k[r * 4 * units + block * units + u], w[r * units + u]) }
            }
            let b = try XCTUnwrap(stored["lstm_cpu_b_\(gate)"]).floats()
            XCTAssertEqual(
                Array(try weight(model, "lstm_cpu", "bias").floats()[(block * units)..<((block + 1) * units)]), b)
        }
    }

    func testTheanoChannelsFirstKernelsAreTransposedAndFlipped() throws {
        let model = try ModelFile.read(Fixtures.path("keras1/cnn_th.h5"))
        let stored = try XCTUnwrap(try raw("cnn_th", layer: "conv_same")["conv_same_W"])
        let kernel = try weight(model, "conv_same", "kernel")
        // Keras 1 'th': (filters, channels, rows, cols); Keras 2: (rows, cols, channels, filters), and
        // Theano's convolution is Keras's correlation with the kernel reversed in rows and columns.
        let (f, c, r, q) = (stored.shape[0], stored.shape[1], stored.shape[2], stored.shape[3])
        XCTAssertEqual(kernel.shape, [r, q, c, f])
        let (w, k) = (try stored.floats(), try kernel.floats())
        for o in 0..<f {
            for i in 0..<c {
                for y in 0..<r {
                    for x in 0..<q {
                        let keras1 = w[((o * c + i) * r + (r - 1 - y)) * q + (q - 1 - x)]
                        XCTAssertEqual(k[((y * q + x) * c + i) * f + o], keras1)
                    }
                }
            }
        }
        let config = try XCTUnwrap(model.config?.serialized())
        XCTAssertTrue(config.contains("\"data_format\": \"channels_first\""))
        XCTAssertFalse(
            config.contains("nb_filter") || config.contains("border_mode") || config.contains("dim_ordering"))
    }

    func testAConvertedFileIsWrittenAsKeras2AndNotConvertedTwice() throws {
        let model = try ModelFile.read(Fixtures.path("keras1/rnn_gru.h5"))
        let out = NSTemporaryDirectory() + "pare-keras1-\(UUID().uuidString).h5"
        defer { unlink(out) }
        try KerasLegacyH5.write(model, to: out)
        let again = try ModelFile.read(out)
        XCTAssertNil(again.source.keras1Version)
        XCTAssertEqual(again.kerasVersion, Keras3Serialization.legacyDialectVersion)
        let (inputs, _) = try io("rnn_gru")
        XCTAssertEqual(try Interpreter(again).run(inputs), try Interpreter(model).run(inputs))
        XCTAssertTrue(again.config?.serialized().contains("\"reset_after\": false") ?? false)
    }

    func testWhatKeras2CouldNotLoadIsRefusedByName() throws {
        // Theano pads a stride-2 'same' convolution differently from TensorFlow.
        var text = message { _ = try ModelFile.read(Fixtures.path("keras1/cnn_th_quirks.h5")) }
        XCTAssertTrue(text.contains("same_3x3_s2") && text.contains("Theano"), text)
        // Highway and MaxoutDense: Keras 3 has no such layers.
        text = message { _ = try ModelFile.read(Fixtures.path("keras1/misc.h5")) }
        XCTAssertTrue(text.contains("Highway"), text)
        let bn = try JSON.parse(
            #"{"class_name": "Sequential", "config": [{"class_name": "BatchNormalization", "config": "#
                + #"{"name": "bn", "mode": 2, "axis": -1, "batch_input_shape": [null, 4]}}]}"#)
        text = message { _ = try Keras1Config.rewritten(bn) }
        XCTAssertTrue(text.contains("bn") && text.contains("mode 2"), text)
        let cos = try JSON.parse(
            #"{"class_name": "Model", "config": {"name": "m", "layers": [{"name": "c", "class_name": "Merge", "#
                + #""config": {"name": "c", "mode": "cos"}, "inbound_nodes": []}]}}"#)
        text = message { _ = try Keras1Config.rewritten(cos) }
        XCTAssertTrue(text.contains("'\"cos\"'") || text.contains("cos"), text)
    }

    func testPaddingLayersTakeTheDataFormatTheModelRecords() throws {
        let config = try JSON.parse(
            #"{"class_name": "Sequential", "config": [{"class_name": "ZeroPadding2D", "config": "#
                + #"{"name": "pad", "padding": [1, 2, 3, 4], "batch_input_shape": [null, 1, 8, 8]}}, "#
                + #"{"class_name": "Convolution2D", "config": {"name": "conv", "nb_filter": 2, "nb_row": 3, "#
                + #""nb_col": 3, "border_mode": "valid", "subsample": [1, 1], "dim_ordering": "th", "#
                + #""init": "glorot_uniform", "activation": "linear", "bias": true, "W_regularizer": null}}]}"#)
        let converted = try Keras1Config.rewritten(config)
        let pad = try XCTUnwrap(converted["config"]?[0]?["config"])
        XCTAssertEqual(pad["data_format"], .string("channels_first"))
        XCTAssertEqual(pad["padding"]?.serialized(), "[[1, 2], [3, 4]]")
        let conv = try XCTUnwrap(converted["config"]?[1])
        XCTAssertEqual(conv["class_name"], .string("Conv2D"))
        XCTAssertEqual(conv["config"]?["kernel_size"]?.serialized(), "[3, 3]")
        XCTAssertEqual(conv["config"]?["filters"], .int(2))
        XCTAssertEqual(conv["config"]?["use_bias"], .bool(true))
        XCTAssertNil(conv["config"]?["W_regularizer"])
    }

    func message(_ body: () throws -> Void) -> String {
        do {
            try body()
            return "no error"
        } catch {
            return "\(error)"
        }
    }
}
