import XCTest

@testable import Pare

final class NPYTests: XCTestCase {
    func testRoundTripAndNumpyHeaders() throws {
        let t = Tensor(float32: [1, -0.0, .nan, 3.5, 1e-40, 7], shape: [2, 3])
        let bytes = try NPY.encode(t)
        XCTAssertEqual((bytes.count - 6 * 4) % 64, 0, "numpy aligns the data to 64 bytes")
        let back = try NPY.decode(bytes, name: "t.npy")
        XCTAssertEqual(back.shape, [2, 3])
        XCTAssertEqual(try back.bytes(), try t.bytes())
        let x = try NPY.read(Fixtures.path("data/mnist_x.npy"))
        XCTAssertEqual(x.shape, [128, 28, 28, 1])
        XCTAssertEqual(x.dtype, .float32)
        XCTAssertEqual(try NPY.read(Fixtures.path("data/mnist_y.npy")).dtype, .int64)
    }

    func header(_ dict: String) -> [UInt8] {
        var h = dict
        h += String(repeating: " ", count: (64 - (10 + h.utf8.count + 1) % 64) % 64) + "\n"
        return NPY.magic + [1, 0, UInt8(h.utf8.count), 0] + Array(h.utf8)
    }

    func testBadFilesAreRejectedWithTheReason() {
        let cases: [([UInt8], String)] = [
            (Array("hello world".utf8), "no \\x93NUMPY magic"),
            (
                header("{'descr': '<f4', 'fortran_order': True, 'shape': (2,), }") + [UInt8](repeating: 0, count: 8),
                "Fortran-order"
            ),
            (
                header("{'descr': '>f4', 'fortran_order': False, 'shape': (2,), }") + [UInt8](repeating: 0, count: 8),
                "big-endian"
            ),
            (
                header("{'descr': '|O', 'fortran_order': False, 'shape': (2,), }") + [UInt8](repeating: 0, count: 16),
                "not supported"
            ),
            (
                header("{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }")
                    + [UInt8](repeating: 0, count: 20), "truncated"
            ),
            (
                header("{'descr': '<f4', 'fortran_order': False, 'shape': (2,), }") + [UInt8](repeating: 0, count: 12),
                "after the array data"
            ),
            (header("{'descr': '<f4', 'fortran_order': False, 'shape': (4611686018427387904, 4), }"), "overflows"),
            (
                Array(header("{'descr': '<f4', 'fortran_order': False, 'shape': (2,), }").prefix(30)),
                "truncated .npy header"
            ),
        ]
        for (bytes, reason) in cases {
            XCTAssertThrowsError(try NPY.decode(bytes, name: "bad.npy"), reason) { error in
                XCTAssertTrue("\(error)".hasPrefix("bad.npy: "), "\(error)")
                XCTAssertTrue("\(error)".contains(reason), "expected '\(reason)' in: \(error)")
            }
        }
    }
}
