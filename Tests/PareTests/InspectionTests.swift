import HDF5
import XCTest

@testable import Pare

final class InspectionTests: XCTestCase {
    func testTheMNISTReportCNNReadsAsTheReportDescribesIt() throws {
        for file in ["keras3.h5", "tfkeras2.h5", "keras22_h5py2.h5"] {
            let report = try Inspection.of(try ModelFile.read(Fixtures.path("mnist_cnn/" + file)))
            XCTAssertEqual(report.totalParameters, 643_594)
            let rows = Dictionary(report.layers.map { ($0.path, $0) }, uniquingKeysWith: { a, _ in a })
            XCTAssertEqual(rows["flatten"]?.outputShapes, ["(None, 2304)"])
            XCTAssertEqual(rows["conv2d_1"]?.outputShapes, ["(None, 12, 12, 64)"])
            // Hand-derived MACs: 28·28·5·5·1·32, 12·12·3·3·32·64, 2304·256, 256·128, 128·10.
            XCTAssertEqual(rows["conv2d"]?.macs, 627_200)
            XCTAssertEqual(rows["conv2d_1"]?.macs, 2_654_208)
            XCTAssertEqual(rows["dense"]?.macs, 589_824)
            XCTAssertEqual(report.totalMACs, 627_200 + 2_654_208 + 589_824 + 32_768 + 1_280)
            XCTAssertEqual(rows["dense"]?.parameters, 2304 * 256 + 256)
            XCTAssertTrue(report.unsupportedLayers.isEmpty)
        }
    }

    func testTheSharedEncoderHasTwoCallSitesWhicheverKerasNumberedThem() throws {
        for file in ["keras3.h5", "tfkeras2.h5", "keras2_h5py2.h5"] {
            let report = try Inspection.of(try ModelFile.read(Fixtures.path("siamese/" + file)))
            let rows = Dictionary(report.layers.map { ($0.path, $0) }, uniquingKeysWith: { a, _ in a })
            XCTAssertEqual(rows["encoder"]?.inbound, [["left[0][0]"], ["right[0][0]"]], file)
            XCTAssertEqual(rows["difference"]?.inbound, [["encoder[0][0]", "encoder[1][0]"]], file)
            XCTAssertEqual(rows["encoder/enc_conv3"]?.outputShapes, ["(None, 3, 3, 128)", "(None, 3, 3, 128)"])
            XCTAssertEqual(rows["encoder/enc_conv3"]?.parameters, 3 * 3 * 64 * 128 + 128)
            XCTAssertEqual(rows["encoder"]?.parameters, 320 + 18_496 + 73_856)
            // Each call of the shared encoder costs its MACs again.
            XCTAssertEqual(rows["encoder/enc_conv1"]?.macs, 2 * 26 * 26 * 9 * 32)
        }
    }

    func testResidualFixtureShapesThroughAddConcatDepthwiseAndSeparable() throws {
        let report = try Inspection.of(try ModelFile.read(Fixtures.path("residual/keras3.h5")))
        let rows = Dictionary(report.layers.map { ($0.path, $0) }, uniquingKeysWith: { a, _ in a })
        XCTAssertEqual(rows["concat"]?.outputShapes, ["(None, 28, 28, 40)"])
        XCTAssertEqual(rows["head_conv"]?.outputShapes, ["(None, 6, 6, 32)"])
        XCTAssertEqual(rows["depthwise"]?.parameters, 3 * 3 * 16 + 16)
        XCTAssertEqual(rows["separable"]?.parameters, 3 * 3 * 16 + 16 * 24 + 24)
        XCTAssertEqual(rows["stem_bn"]?.parameters, 4 * 16, "gamma, beta and both moving statistics")
        XCTAssertEqual(rows["separable"]?.macs, 28 * 28 * 9 * 16 + 28 * 28 * 16 * 24)
        XCTAssertEqual(report.totalParameters, try Fixtures.kerasParameterCount("residual"))
    }

    func testSparsityAndDeadChannelsCountExactZeros() throws {
        var model = try ModelFile.read(Fixtures.path("mnist_cnn/keras3.h5"))
        let index = try XCTUnwrap(model.layers.firstIndex { $0.name == "conv2d" })
        // Zero output channels 3 and 17 of conv2d (kernel slice and bias), as a user masking filters would.
        var layer = model.layers[index]
        for (w, weight) in layer.weights.enumerated() {
            var values = try weight.tensor.floats()
            let channels = weight.tensor.shape.last!
            for i in values.indices where [3, 17].contains(i % channels) { values[i] = 0 }
            layer.weights[w].tensor = Tensor(float32: values, shape: weight.tensor.shape)
        }
        model.layers[index] = layer
        let report = try Inspection.of(model)
        XCTAssertEqual(report.deadChannels.first { $0.layer == "conv2d" }?.dead, [3, 17])
        XCTAssertEqual(report.deadChannels.first { $0.layer == "conv2d_1" }?.dead, [])
        let kernel = try XCTUnwrap(report.weights.first { $0.layer == "conv2d" && $0.name.contains("kernel") })
        XCTAssertEqual(kernel.zeros, 2 * 25)
        XCTAssertEqual(kernel.sparsity, 50.0 / 800.0, accuracy: 1e-12)
    }

    func testJSONReportCarriesTheSameFigures() throws {
        let report = try Inspection.of(try ModelFile.read(Fixtures.path("mnist_cnn/keras3.h5")))
        let decoded = try JSONDecoder().decode(Inspection.self, from: Data(try report.json().utf8))
        XCTAssertEqual(decoded.totalParameters, 643_594)
        XCTAssertEqual(decoded.layers.map(\.path), report.layers.map(\.path))
        XCTAssertTrue(report.text().contains("643,594"))
    }
}
