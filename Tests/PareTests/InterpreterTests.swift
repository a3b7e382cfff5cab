@testable import Pare
import XCTest

/// Pare's interpreter against outputs Keras computed itself (saved by tools/fixtures).
final class InterpreterTests: XCTestCase {
    /// max |a − b| / max |b|: the error relative to the output's scale.
    func relativeError(_ a: FloatArray, _ b: Tensor) throws -> Double {
        let ref = try b.floats()
        XCTAssertEqual(a.shape, b.shape)
        guard a.count == ref.count else { return .infinity }
        var maxAbs: Float = 0, scale: Float = 0
        for i in 0..<ref.count {
            maxAbs = max(maxAbs, abs(a.data[i] - ref[i]))
            scale = max(scale, abs(ref[i]))
        }
        if maxAbs.isNaN { return .infinity }
        return Double(maxAbs / max(scale, 1e-30))
    }

    func check(model path: String, inputs: [String], outputs: [String], tolerance: Double = 1e-5,
               file: StaticString = #filePath, line: UInt = #line) throws {
        let interpreter = try Interpreter(try ModelFile.read(Fixtures.path(path)))
        let x = try inputs.map { try NPY.read(Fixtures.path($0)).floatArray() }
        let y = try interpreter.run(x)
        XCTAssertEqual(y.count, outputs.count, path, file: file, line: line)
        for (i, (got, expectedPath)) in zip(y, outputs).enumerated() {
            let error = try relativeError(got, try NPY.read(Fixtures.path(expectedPath)))
            XCTAssertLessThanOrEqual(error, tolerance, "\(path) output \(i) (\(interpreter.outputNames[i]))", file: file, line: line)
        }
    }

    func zooOutputs(_ name: String) -> [String] {
        let files = (try? FileManager.default.contentsOfDirectory(atPath: Fixtures.path("zoo"))) ?? []
        let count = files.filter { $0.hasPrefix(name + "_out") }.count
        return (0..<count).map { "zoo/\(name)_out\($0).npy" }
    }

    func testEveryZooLayerMatchesKeras() throws {
        for (name, inputs) in [("conv_zoo", 1), ("misc_zoo", 2), ("activation_zoo", 1), ("nested_zoo", 2),
                               ("activation_zoo_tfkeras2", 1), ("misc_zoo_tfkeras2", 2)] {
            let outputs = zooOutputs(name)
            XCTAssertGreaterThan(outputs.count, 1, name)
            try check(model: "zoo/\(name).h5", inputs: (0..<inputs).map { "zoo/\(name)_in\($0).npy" }, outputs: outputs)
        }
    }

    func testEveryFixtureMatchesItsWritersPredictions() throws {
        for model in ["mnist_cnn", "residual", "siamese"] {
            let inputs = model == "siamese" ? ["data/pairs_left.npy", "data/pairs_right.npy"] : ["data/mnist_x.npy"]
            try check(model: "\(model)/keras3.h5", inputs: inputs, outputs: ["\(model)/keras3_pred.npy"])
            try check(model: "\(model)/tfkeras2.h5", inputs: inputs, outputs: ["\(model)/tfkeras2_pred.npy"])
        }
        try check(model: "mnist_cnn/keras22_h5py2.h5", inputs: ["data/mnist_x.npy"], outputs: ["mnist_cnn/tfkeras2_pred.npy"])
        try check(model: "siamese/keras2_h5py2.h5", inputs: ["data/pairs_left.npy", "data/pairs_right.npy"], outputs: ["siamese/tfkeras2_pred.npy"])
    }
}

extension InterpreterTests {
    func testTheComparisonDetectsADifferentModel() throws {
        let interpreter = try Interpreter(try ModelFile.read(Fixtures.path("mnist_cnn/keras3.h5")))
        let y = try interpreter.run([try NPY.read(Fixtures.path("data/mnist_x.npy")).floatArray()])
        XCTAssertGreaterThan(try relativeError(y[0], try NPY.read(Fixtures.path("residual/keras3_pred.npy"))), 0.1)
        XCTAssertLessThan(try relativeError(y[0], try NPY.read(Fixtures.path("mnist_cnn/keras3_pred.npy"))), 1e-5)
    }

    func testFloat16AndFloat64LayersFollowTheirDTypePolicy() throws {
        // dense_f16 computes in float16 in Keras; Pare rounds its inputs and outputs to float16 the same way,
        // but accumulates in float32, so agreement is at float16 precision.
        try check(model: "dtypes/keras3.h5", inputs: ["data/mnist_flat.npy"], outputs: ["dtypes/keras3_pred.npy"], tolerance: 2e-3)
    }
}
