import XCTest

@testable import Pare

final class PareFormatTests: XCTestCase {
    var dir: URL!
    override func setUpWithError() throws { dir = try temporaryDirectory() }
    override func tearDownWithError() throws { try? FileManager.default.removeItem(at: dir) }
    func path(_ name: String) -> String { dir.appendingPathComponent(name).path }

    func testEveryFixtureRoundTripsThroughPareBitIdentically() throws {
        for source in Fixtures.legacyH5 {
            for deflate in [false, true] {
                let original = try ModelFile.read(source)
                try PareFile.write(original, to: path("m.pare"), options: .init(deflate: deflate))
                _ = try PareFile.check(path("m.pare"))
                let packed = try ModelFile.read(path("m.pare"))
                try assertSameTensors(original, packed)
                XCTAssertEqual(packed.config, original.config)
                try ModelFile.write(packed, to: path("back.h5"))
                let back = try ModelFile.read(path("back.h5"))
                try assertSameTensors(original, back)
                XCTAssertEqual(back.source.rootAttributes.map(\.0), original.source.rootAttributes.map(\.0))
                XCTAssertEqual(back.source.nameListEncoding, original.source.nameListEncoding, source)
            }
        }
    }

    /// A weights-only model holding the given tensors, one per layer.
    func model(_ tensors: [Tensor]) -> Model {
        Model(
            format: .kerasLegacyH5, kind: .weightsOnly, sourcePath: "synthetic",
            layers: tensors.enumerated().map {
                LayerWeights(name: "l\($0.offset)", weights: [Weight(name: "l\($0.offset)/kernel", tensor: $0.element)])
            })
    }

    /// A full model whose Dense layers (no bias) hold the given `(in, units)` kernels, each on its own input:
    /// the architecture tells int8 packing that their output channels are the last axis.
    func denseModel(_ kernels: [Tensor]) throws -> Model {
        var layers: [String] = []
        for (i, t) in kernels.enumerated() {
            layers.append(
                """
                {"class_name": "InputLayer", "name": "x\(i)", "inbound_nodes": [],
                 "config": {"name": "x\(i)", "batch_input_shape": [null, \(t.shape[0])], "dtype": "float32"}}
                """)
            layers.append(
                """
                {"class_name": "Dense", "name": "l\(i)", "inbound_nodes": [[["x\(i)", 0, 0, {}]]],
                 "config": {"name": "l\(i)", "units": \(t.shape[1]), "use_bias": false, "activation": "linear"}}
                """)
        }
        let refs = { (prefix: String) in kernels.indices.map { "[\"\(prefix)\($0)\", 0, 0]" }.joined(separator: ", ") }
        let config = """
            {"class_name": "Functional", "config": {"name": "m", "layers": [\(layers.joined(separator: ", "))],
             "input_layers": [\(refs("x"))], "output_layers": [\(refs("l"))]}}
            """
        var m = Model(
            format: .kerasLegacyH5, kind: .fullModel, sourcePath: "synthetic",
            layers: kernels.enumerated().map {
                LayerWeights(
                    name: "l\($0.offset)", weights: [Weight(name: "l\($0.offset)/kernel:0", tensor: $0.element)])
            })
        m.config = try JSON.parse(config)
        return m
    }

    func sparseTensor(density: Double, count: Int, seed: UInt64) -> Tensor {
        var g = RandomInputs(seed: seed)
        return Tensor(
            float32: (0..<count).map { _ in g.next() < Float(density) ? g.next() * 2 - 1 + 1e-3 : 0 },
            shape: [count / 100, 100])
    }

    func testSizesFollowTheBitmaskFormula() throws {
        let n = 200_000
        for d in [0.05, 0.1, 0.25, 0.4, 0.5, 0.75, 0.9, 1.0] {
            let t = sparseTensor(density: d, count: n, seed: UInt64(d * 1000))
            let nnz = try t.floats().filter { $0 != 0 }.count
            let packed = try PareFile.write(model([t]), to: path("d.pare"))
            // 1 + 32·d bits per element (bitmask), or 32 when dense is smaller.
            let formula = min(Double(n) / 8 + Double(4 * nnz), Double(4 * n))
            XCTAssertEqual(Double(packed[0].storedBytes), formula, accuracy: formula * 0.01, "density \(d)")
            let fileSize = try FileManager.default.attributesOfItem(atPath: path("d.pare"))[.size] as! Int
            XCTAssertLessThan(
                Double(fileSize), formula * 1.01 + 4096, "file at density \(d): header and padding stay small")
            // int8: 1 + 8·d bits plus 4 bytes of scale per channel (100 channels).
            let q = try PareFile.write(try denseModel([t]), to: path("q.pare"), options: .init(int8: true))
            let int8Formula = min(Double(n) / 8 + Double(nnz), Double(n)) + 400
            XCTAssertEqual(Double(q[0].storedBytes), int8Formula, accuracy: int8Formula * 0.01, "int8 density \(d)")
        }
    }

    func testInt8KeepsZerosAndBoundsTheError() throws {
        let t = sparseTensor(density: 0.3, count: 10_000, seed: 5)
        let packed = try PareFile.write(try denseModel([t]), to: path("q.pare"), options: .init(int8: true))
        let back = try ModelFile.read(path("q.pare")).layers[0].weights[0].tensor.floats()
        let original = try t.floats()
        for (a, b) in zip(original, back) {
            if a == 0 { XCTAssertEqual(b, 0) }
            XCTAssertLessThanOrEqual(
                abs(a - b), 1.0 / 127 / 2 + 1e-6, "error at most half a step of max|w|/127 (max|w| ≤ 1)")
        }
        XCTAssertEqual(packed[0].encoding, "int8-bitmask")
        XCTAssertGreaterThan(packed[0].sqnr ?? 0, 30)
    }

    /// A small file with every encoding: dense, bitmask, zlib, int8, scalars, -0.0 and NaN payloads.
    func smallPackedFile() throws -> [UInt8] {
        let special = Tensor(float32: [0, -0.0, .nan, Float(bitPattern: 0x7FC0_1234), 1e-42, 0, 0, 3], shape: [2, 4])
        let m = model([
            sparseTensor(density: 0.2, count: 300, seed: 1), special, Tensor(float32: [1.5], shape: [1]),
            Tensor(float32: [Float](repeating: 0.25, count: 200), shape: [2, 100]),
        ])
        try PareFile.write(m, to: path("small.pare"), options: .init(deflate: true))
        let back = try ModelFile.read(path("small.pare"))
        XCTAssertEqual(
            try back.layers[1].weights[0].tensor.bytes(), try special.bytes(),
            "-0.0 and NaN payloads come back bit for bit")
        return [UInt8](try Data(contentsOf: URL(fileURLWithPath: path("small.pare"))))
    }

    func testEverySingleByteCorruptionIsDetected() throws {
        let bytes = try smallPackedFile()
        XCTAssertLessThan(bytes.count, 8192)
        var undetected: [Int] = []
        for i in 0..<bytes.count {
            for flip: UInt8 in [0x01, 0x80] {
                var corrupt = bytes
                corrupt[i] ^= flip
                try Data(corrupt).write(to: URL(fileURLWithPath: path("c.pare")))
                let checkFails = (try? PareFile.check(path("c.pare"))) == nil
                let unpackFails: Bool = {
                    guard let m = try? ModelFile.read(path("c.pare")) else { return true }
                    return (try? m.layers.map { try $0.weights.map { try $0.tensor.bytes() } }) == nil
                }()
                if !checkFails || !unpackFails { undetected.append(i) }
            }
        }
        XCTAssertEqual(undetected, [], "bytes whose corruption went unnoticed")
    }

    func testEveryTruncationIsAClearError() throws {
        let bytes = try smallPackedFile()
        for length in 0..<bytes.count {
            try Data(bytes.prefix(length)).write(to: URL(fileURLWithPath: path("t.pare")))
            XCTAssertThrowsError(try PareFile.check(path("t.pare")), "length \(length)") { error in
                XCTAssertTrue("\(error)".hasPrefix(self.path("t.pare")), "\(error)")
            }
        }
    }

    func testAHeaderClaimingMoreThanTheFileIsRejectedBeforeReading() throws {
        var bytes = try smallPackedFile()
        let t = bytes.count - 32
        for (length, words) in [(UInt64(1) << 40, "64 MiB limit"), (UInt64(60_000_000), "does not fit")] {
            var b = bytes
            for k in 0..<8 { b[t + 16 + k] = UInt8((length >> (8 * UInt64(k))) & 0xFF) }
            let crc = Zlib.crc32(Array(b[t..<(t + 28)]))
            for k in 0..<4 { b[t + 28 + k] = UInt8((crc >> (8 * UInt32(k))) & 0xFF) }
            try Data(b).write(to: URL(fileURLWithPath: path("h.pare")))
            XCTAssertThrowsError(try PareFile.check(path("h.pare"))) { error in
                XCTAssertTrue("\(error)".contains(words), "\(error)")
            }
        }
        bytes[0] = 0
        try Data(bytes).write(to: URL(fileURLWithPath: path("m.pare")))
        XCTAssertThrowsError(try PareFile.check(path("m.pare")))
    }

    func testSparsifyReachesTheTargetOnKernelsOnly() throws {
        let model = try ModelFile.read(Fixtures.path("residual/keras3.h5"))
        for global in [false, true] {
            let sparsified = try MagnitudeSparsifier.sparsify(model, sparsity: 0.6, global: global, layers: nil)
            let (sparse, rows) = (sparsified.model, sparsified.rows)
            let zeros = rows.reduce(0) { $0 + $1.zeros }
            let total = rows.reduce(0) { $0 + $1.count }
            XCTAssertEqual(Double(zeros) / Double(total), 0.6, accuracy: 0.001, "global \(global)")
            if !global {
                for r in rows { XCTAssertEqual(r.sparsity, 0.6, accuracy: 1.0 / Double(r.count) + 1e-9, r.weight) }
            }
            // Biases and BatchNormalization statistics are untouched.
            for (a, b) in zip(model.layers, sparse.layers) {
                for (wa, wb) in zip(a.weights, b.weights) where !MagnitudeSparsifier.kernelRoles.contains(wa.role) {
                    XCTAssertEqual(try wa.tensor.bytes(), try wb.tensor.bytes(), wa.name)
                }
            }
        }
        XCTAssertThrowsError(try MagnitudeSparsifier.sparsify(model, sparsity: 0.5, global: false, layers: ["nope"]))
    }
}
