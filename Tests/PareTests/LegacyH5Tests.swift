import HDF5
import XCTest

@testable import Pare

final class LegacyH5Tests: XCTestCase {
    func testEveryFixtureReadsWithKerasParameterCount() throws {
        XCTAssertGreaterThanOrEqual(Fixtures.legacyH5.count, 18)
        for path in Fixtures.legacyH5 {
            let model = try ModelFile.read(path)
            let name = URL(fileURLWithPath: path).deletingLastPathComponent().lastPathComponent
            XCTAssertEqual(model.parameterCount, try Fixtures.kerasParameterCount(name), path)
            XCTAssertEqual(model.kind, path.hasSuffix("_weights.h5") ? .weightsOnly : .fullModel, path)
        }
    }

    func testConvertRoundTripsEveryFixtureBitIdentically() throws {
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        for path in Fixtures.legacyH5 {
            for level in [nil, 4] as [Int?] {
                let source = try ModelFile.read(path)
                let out = dir.appendingPathComponent("out.h5").path
                try ModelFile.write(source, to: out, options: .init(deflateLevel: level))
                let copy = try ModelFile.read(out)
                try assertSameTensors(try ModelFile.read(path), copy)
                XCTAssertEqual(copy.kind, source.kind)
                XCTAssertEqual(copy.config, source.config, path)
                XCTAssertEqual(copy.kerasVersion, source.kerasVersion)
                XCTAssertEqual(copy.source.rootAttributes.map(\.0), source.source.rootAttributes.map(\.0))
                XCTAssertEqual(copy.source.nameListEncoding, source.source.nameListEncoding, path)
                let optimizerA = source.optimizer?.datasets() ?? []
                let optimizerB = copy.optimizer?.datasets() ?? []
                XCTAssertEqual(optimizerA.map(\.path), optimizerB.map(\.path))
                for (x, y) in zip(optimizerA, optimizerB) { XCTAssertEqual(try x.tensor.bytes(), try y.tensor.bytes()) }
            }
        }
    }

    func testDeflateShrinksASparseModelAndDropOptimizerRemovesItsState() throws {
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let path = Fixtures.path("siamese/keras3.h5")
        let model = try ModelFile.read(path)
        XCTAssertEqual(
            model.optimizer?.datasets().count, 22, "Adam: iteration, learning rate, momentum and velocity of 10 weights"
        )
        let plain = dir.appendingPathComponent("plain.h5").path
        let packed = dir.appendingPathComponent("packed.h5").path
        try ModelFile.write(model, to: plain)
        try ModelFile.write(model, to: packed, options: .init(deflateLevel: 6, dropOptimizer: true))
        XCTAssertNil(try ModelFile.read(packed).optimizer)
        let size = { (p: String) in try FileManager.default.attributesOfItem(atPath: p)[.size] as! Int }
        XCTAssertLessThan(try size(packed), try size(plain) / 2, "optimizer state is two thirds of this file")
    }

    func testOldWriterLayoutsReadLikeTheirModernTwin() throws {
        let old = try ModelFile.read(Fixtures.path("mnist_cnn/keras22_h5py2.h5"))
        let modern = try ModelFile.read(Fixtures.path("mnist_cnn/tfkeras2.h5"))
        XCTAssertFalse(old.source.nameListEncoding.variableLength)
        XCTAssertTrue(modern.source.nameListEncoding.variableLength)
        try assertSameTensors(old, modern)
        let arch = try Architecture.parse(try XCTUnwrap(old.config))
        XCTAssertEqual(arch.layers.first?.className, "InputLayer", "a bare-list config gets the input Keras would make")
        XCTAssertEqual(arch.inputShapes.values.first, [28, 28, 1])
    }

    func testNameListsOverTheAttributeLimitAreSplitAsKerasDoes() throws {
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let path = dir.appendingPathComponent("names.h5").path
        let names = (0..<3000).map { "layer_with_a_long_name_\($0)" }
        do {
            let file = try HDF5File.create(path)
            try KerasLegacyH5.writeNameList(try file.root(), "layer_names", names, encoding: .fixedASCII)
            try KerasLegacyH5.writeNameList(try file.root(), "weight_names", [], encoding: .fixedASCII)
            try file.close()
        }
        let root = try HDF5File.open(path).root()
        XCTAssertFalse(root.hasAttribute("layer_names"))
        XCTAssertTrue(root.hasAttribute("layer_names0") && root.hasAttribute("layer_names1"))
        XCTAssertEqual(try KerasLegacyH5.nameList(root, "layer_names")?.values, names)
        XCTAssertEqual(try KerasLegacyH5.nameList(root, "weight_names")?.values, [])
        XCTAssertEqual(try root.attribute("weight_names"), .numbers(.float(bits: 64), shape: [0], bytes: []))
    }
}
