import Foundation
import HDF5
import XCTest

final class HDF5RoundTripTests: XCTestCase {
    var directory: URL!

    override func setUpWithError() throws {
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("pare-hdf5-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws { try? FileManager.default.removeItem(at: directory) }

    func testAttributesKeepTheirStringEncodingAndValues() throws {
        let path = directory.appendingPathComponent("attrs.h5").path
        let fixed = StringEncoding(variableLength: false, utf8: false, fixedSize: 0, padding: .nullPadded)
        let written: [(String, AttributeValue)] = [
            ("vlen", .string("{\"a\": \"é\"}")),
            (
                "vlenASCII",
                .strings(
                    ["backend", "tensorflow"], shape: [2], encoding: StringEncoding(variableLength: true, utf8: false))
            ),
            ("fixed", .stringArray(["conv2d", "dense_1"], encoding: fixed)),
            ("empty", .numbers(.float(bits: 64), shape: [0], bytes: [])),
            (
                "ints",
                .numbers(
                    .signed(bits: 64), shape: [2],
                    bytes: [1, 0, 0, 0, 0, 0, 0, 0, 255, 255, 255, 255, 255, 255, 255, 255])
            ),
        ]
        do {
            let file = try HDF5File.create(path)
            let root = try file.root()
            for (name, value) in written { try root.setAttribute(name, value) }
            try file.close()
        }
        let root = try HDF5File.open(path).root()
        XCTAssertEqual(try root.attributeNames(), ["empty", "fixed", "ints", "vlen", "vlenASCII"])
        XCTAssertEqual(try root.attribute("vlenASCII"), written[1].1)
        XCTAssertEqual(try root.attribute("vlen"), written[0].1)
        guard case .strings(let values, let shape, let encoding) = try root.attribute("fixed") else {
            return XCTFail("not strings")
        }
        XCTAssertEqual(values, ["conv2d", "dense_1"])
        XCTAssertEqual(shape, [2])
        XCTAssertFalse(encoding.variableLength)
        XCTAssertEqual(encoding.fixedSize, 7)
        XCTAssertEqual(encoding.padding, .nullPadded)
        XCTAssertEqual(try root.attribute("empty"), written[3].1)
        XCTAssertEqual(try root.attribute("ints").doubleValues, [1, -1])
    }

    func testDatasetsAreBitExactIncludingNaNPayloadsNegativeZeroAndHalfFloats() throws {
        let path = directory.appendingPathComponent("data.h5").path
        let floats: [UInt32] = [0x7FC0_1234, 0x8000_0000, 0x0000_0001, 0x3F80_0000, 0xFF80_0000]
        let f32 = floats.flatMap { v in (0..<4).map { UInt8((v >> (8 * $0)) & 0xFF) } }
        let f16: [UInt8] = [0x01, 0x7E, 0x00, 0x80, 0x01, 0x00, 0x00, 0x3C]  // NaN payload, −0, subnormal, 1
        for level in [nil, 6] as [Int?] {
            do {
                let file = try HDF5File.create(path)
                let root = try file.root()
                try root.createDataset(
                    "a/b/f32", type: .float(bits: 32), shape: [5], bytes: f32,
                    options: DatasetOptions(deflateLevel: level))
                try root.createDataset(
                    "f16", type: .float(bits: 16), shape: [2, 2], bytes: f16,
                    options: DatasetOptions(deflateLevel: level))
                try root.createDataset(
                    "scalar", type: .signed(bits: 64), shape: [], bytes: [7, 0, 0, 0, 0, 0, 0, 0],
                    options: DatasetOptions(deflateLevel: level))
                try file.close()
            }
            let root = try HDF5File.open(path).root()
            XCTAssertEqual(try root.dataset("a/b/f32").readBytes(), f32)
            XCTAssertEqual(try root.dataset("f16").readBytes(), f16)
            XCTAssertEqual(try root.dataset("f16").elementType(), .float(bits: 16))
            XCTAssertEqual(try root.dataset("f16").shape(), [2, 2])
            XCTAssertEqual(try root.dataset("scalar").shape(), [])
            XCTAssertTrue(root.contains("a/b"))
            XCTAssertFalse(root.contains("a/c/f32"))
            XCTAssertEqual(try root.children().map(\.name), ["a", "f16", "scalar"])
        }
    }

    func testOpeningBadFilesNamesTheFileAndTheProblem() throws {
        let missing = directory.appendingPathComponent("missing.h5").path
        XCTAssertThrowsError(try HDF5File.open(missing)) { error in
            XCTAssertEqual(error as? HDF5Error, .fileOpenFailed(file: missing, reason: "no such file"))
        }
        let text = directory.appendingPathComponent("text.h5").path
        try Data(repeating: 0x41, count: 4096).write(to: URL(fileURLWithPath: text))
        XCTAssertThrowsError(try HDF5File.open(text)) { error in
            XCTAssertEqual(error as? HDF5Error, .fileOpenFailed(file: text, reason: "not an HDF5 file"))
        }
        let good = directory.appendingPathComponent("good.h5").path
        do {
            let file = try HDF5File.create(good)
            try file.root().createDataset(
                "x", type: .float(bits: 32), shape: [4096], bytes: [UInt8](repeating: 1, count: 16384))
            try file.close()
        }
        let truncated = directory.appendingPathComponent("truncated.h5").path
        try Data(try Data(contentsOf: URL(fileURLWithPath: good)).prefix(3000)).write(
            to: URL(fileURLWithPath: truncated))
        XCTAssertThrowsError(try HDF5File.open(truncated).root().dataset("x").readBytes()) { error in
            XCTAssertTrue("\(error)".contains(truncated), "\(error)")
        }
        XCTAssertThrowsError(try HDF5File.open(good).root().dataset("nope")) { error in
            XCTAssertEqual(error as? HDF5Error, .objectNotFound(file: good, object: "/nope"))
        }
    }
}
