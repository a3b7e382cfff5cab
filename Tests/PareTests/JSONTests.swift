import HDF5
import XCTest

@testable import Pare

final class JSONTests: XCTestCase {
    func testEveryFixtureConfigSerializesBackToTheTextKerasWrote() throws {
        var checked = 0
        for path in Fixtures.legacyH5 {
            let root = try HDF5File.open(path).root()
            guard root.hasAttribute("model_config") else { continue }
            let text = try XCTUnwrap(try root.attribute("model_config").stringValues?.first)
            XCTAssertEqual(try JSON.parse(text).serialized(), text, path)
            checked += 1
        }
        XCTAssertGreaterThanOrEqual(checked, 10)
    }

    func testNumbersKeepTheirLiteralAndObjectsTheirOrder() throws {
        let value = try JSON.parse(
            #"{"b": 1.0, "a": [1, -2e-07, NaN, -Infinity], "s": "\u00e9\n\"", "n": null, "t": true}"#)
        XCTAssertEqual(
            value.serialized(),
            #"{"b": 1.0, "a": [1, -2e-07, NaN, -Infinity], "s": "\u00e9\n\"", "n": null, "t": true}"#)
        XCTAssertEqual(value["b"]?.intValue, 1)
        XCTAssertEqual(value["s"]?.stringValue, "é\n\"")
        XCTAssertEqual(value.objectValue?.map(\.0), ["b", "a", "s", "n", "t"])
    }

    func testMalformedTextIsRejectedWithItsOffset() {
        for (text, offset) in [
            ("{\"a\": }", 6), ("[1, 2", 5), ("{\"a\" 1}", 5), ("01x", 1), ("\"abc", 4), ("[] []", 3),
        ] {
            XCTAssertThrowsError(try JSON.parse(text), text) { error in
                XCTAssertEqual((error as? JSONParseError)?.offset, offset, "\(text): \(error)")
            }
        }
        let deep = String(repeating: "[", count: 10_000) + String(repeating: "]", count: 10_000)
        XCTAssertThrowsError(try JSON.parse(deep))
    }
}
