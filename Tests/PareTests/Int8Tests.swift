import XCTest

@testable import Pare

/// `pack --int8` keeps one scale per output channel, on the axes each layer kind says hold them.
final class Int8Tests: XCTestCase {
    var dir: URL!
    override func setUpWithError() throws { dir = try temporaryDirectory() }
    override func tearDownWithError() throws { try? FileManager.default.removeItem(at: dir) }
    func path(_ name: String) -> String { dir.appendingPathComponent(name).path }

    /// Flattened channel index over `axes` of each element, and the number of channels.
    func channelOf(_ shape: [Int], _ axes: Range<Int>) -> (channel: (Int) -> Int, count: Int) {
        let channels = shape[axes].reduce(1, *)
        let inner = shape[axes.upperBound...].reduce(1, *)
        return ({ ($0 / inner) % channels }, channels)
    }

    /// Output channel 0 of every kernel made 1000× smaller than the others: quantized with its
    /// neighbours' scale it would round to zero.
    func withTinyFirstChannel(_ model: inout Model) throws -> [String: String] {
        let checked = try CheckedModel(model)
        var kinds: [String: String] = [:]  // weight name → class name (and multiplier)
        for unit in checked.weightUnits {
            for specified in checked.specifiedWeights(unit.path) {
                guard let axes = specified.spec.outputAxes else { continue }
                let tensor = specified.weight.tensor
                let (channel, _) = channelOf(tensor.shape, axes)
                var values = try tensor.floats()
                for j in values.indices where channel(j) == 0 { values[j] *= 1e-3 }
                model.setWeight(path: unit.path, name: specified.weight.name, try tensor.replacingValues(values))
                kinds[specified.weight.name] = "\(unit.className ?? "?") \(specified.spec.role) \(tensor.shape)"
            }
        }
        return kinds
    }

    func testEveryKernelKeepsHalfAStepInEveryOutputChannel() throws {
        var covered: [String] = []
        for fixture in ["zoo/conv_zoo.h5", "zoo/activation_zoo.h5"] {
            var model = try ModelFile.read(Fixtures.path(fixture))
            let kinds = try withTinyFirstChannel(&model)
            try PareFile.write(model, to: path("q.pare"), options: .init(int8: true))
            let back = try ModelFile.read(path("q.pare"))
            let checked = try CheckedModel(model)
            let backWeights = Dictionary(
                back.layers.flatMap(\.weights).map { ($0.name, $0.tensor) }, uniquingKeysWith: { a, _ in a })
            for unit in checked.weightUnits {
                for specified in checked.specifiedWeights(unit.path) {
                    let original = try specified.weight.tensor.floats()
                    let restored = try XCTUnwrap(backWeights[specified.weight.name]).floats()
                    guard let axes = specified.spec.outputAxes else {
                        XCTAssertEqual(original, restored, "\(specified.weight.name) has no channels: kept exact")
                        continue
                    }
                    let (channel, count) = channelOf(specified.weight.tensor.shape, axes)
                    var maxAbs = [Float](repeating: 0, count: count)
                    for (j, v) in original.enumerated() { maxAbs[channel(j)] = max(maxAbs[channel(j)], abs(v)) }
                    for (j, (a, b)) in zip(original, restored).enumerated() {
                        let step = maxAbs[channel(j)] / 127
                        XCTAssertLessThanOrEqual(
                            abs(a - b), step / 2 * 1.0001 + 1e-12,
                            "\(kinds[specified.weight.name] ?? "") element \(j), channel \(channel(j))")
                    }
                    covered.append(kinds[specified.weight.name] ?? "")
                }
            }
        }
        let summary = covered.joined(separator: "; ")
        for expected in [
            "Conv2D kernel", "Dense kernel", "Conv2DTranspose kernel", "DepthwiseConv2D depthwise_kernel [3, 3, 3, 2]",
            "DepthwiseConv2D depthwise_kernel [3, 3, 3, 1]", "SeparableConv2D depthwise_kernel",
            "SeparableConv2D pointwise_kernel",
        ] {
            XCTAssertTrue(summary.contains(expected), "no \(expected) among \(summary)")
        }
    }

    /// The fixture discriminates: scaling a transposed kernel's last axis (its inputs) loses the tiny channel.
    func testScalingTheWrongAxisWouldFailTheCheck() throws {
        var model = try ModelFile.read(Fixtures.path("zoo/conv_zoo.h5"))
        _ = try withTinyFirstChannel(&model)
        let checked = try CheckedModel(model)
        let transposed = try XCTUnwrap(checked.specifiedWeights("transpose_same").first)
        XCTAssertEqual(transposed.spec.outputAxes, 2..<3)
        let tensor = transposed.weight.tensor
        let (wrong, streams) = try TensorCodec.encode(tensor, .init(int8Axes: 3..<4))
        let decoded = try TensorCodec.decode(
            wrong.encoding, dtype: tensor.dtype, shape: tensor.shape, nonzero: wrong.nonzero, channels: wrong.channels,
            channelAxes: wrong.channelAxes, streams: streams, fail: { PareError(file: "t", $0) })
        let back = try Tensor(dtype: tensor.dtype, shape: tensor.shape, bytes: decoded).floats()
        let original = try tensor.floats()
        let (channel, _) = channelOf(tensor.shape, 2..<3)
        let tinyStep = original.indices.filter { channel($0) == 0 }.map { abs(original[$0]) }.max()! / 127
        let worst = original.indices.filter { channel($0) == 0 }.map { abs(original[$0] - back[$0]) }.max()!
        XCTAssertGreaterThan(worst, 10 * tinyStep, "last-axis scales crush output channel 0")
    }

    func testOptimizerStateAndBiasesStayExact() throws {
        let source = Fixtures.path("residual/keras3.h5")
        let model = try ModelFile.read(source)
        let optimizer = try XCTUnwrap(model.optimizer).datasets()
        XCTAssertGreaterThan(optimizer.count, 0)
        let packed = try PareFile.write(model, to: path("o.pare"), options: .init(int8: true))
        XCTAssertGreaterThan(packed.filter { $0.encoding.hasPrefix("int8") }.count, 0)
        let back = try ModelFile.read(path("o.pare"))
        for (a, b) in zip(optimizer, try XCTUnwrap(back.optimizer).datasets()) {
            XCTAssertEqual(try a.tensor.bytes(), try b.tensor.bytes(), "optimizer \(a.path) is not quantized")
        }
        for (layer, other) in zip(model.layers, back.layers) {
            for (w, v) in zip(layer.weights, other.weights) where w.tensor.shape.count == 1 {
                XCTAssertEqual(try w.tensor.bytes(), try v.tensor.bytes(), "\(w.name) stays exact")
            }
        }
    }
}
