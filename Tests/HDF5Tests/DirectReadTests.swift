import CHDF5
import Foundation
import XCTest

@testable import HDF5

/// `readBytes` reads plain contiguous data with one `pread` at the dataset's file offset. Every other
/// storage must fall back to `H5Dread`, and both paths must return the same bytes.
final class DirectReadTests: XCTestCase {
    var directory: URL!
    let values: [Float] = (0..<1000).map { Float($0) * 0.5 - 7 }

    override func setUpWithError() throws {
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("pare-direct-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws { try? FileManager.default.removeItem(at: directory) }

    /// A file with one dataset `/data` of `values` stored as `fileType`, made with the C API so each
    /// storage option can be set. `write: false` leaves the dataset unallocated.
    func makeFile(
        _ name: String, fileType: hid_t = shim_T_IEEE_F32LE(), userBlock: hsize_t = 0, write: Bool = true,
        _ configure: (hid_t) -> Void = { _ in }
    ) -> String {
        let p = directory.appendingPathComponent(name).path
        _ = try? HDF5File.create(p).close()  // initializes the library like Pare does
        let fcpl = H5Pcreate(shim_P_FILE_CREATE())
        if userBlock > 0 { H5Pset_userblock(fcpl, userBlock) }
        let fid = H5Fcreate(p, shim_F_ACC_TRUNC(), fcpl, shim_P_DEFAULT())
        var dims: [hsize_t] = [hsize_t(values.count)]
        let space = H5Screate_simple(1, &dims, nil)
        let dcpl = H5Pcreate(shim_P_DATASET_CREATE())
        configure(dcpl)
        let d = H5Dcreate2(fid, "/data", fileType, space, shim_P_DEFAULT(), dcpl, shim_P_DEFAULT())
        if write {
            var copy = values
            H5Dwrite(d, shim_T_IEEE_F32LE(), shim_S_ALL(), shim_S_ALL(), shim_P_DEFAULT(), &copy)
        }
        H5Dclose(d)
        H5Pclose(dcpl)
        H5Sclose(space)
        H5Pclose(fcpl)
        H5Fclose(fid)
        return p
    }

    func floats(_ bytes: [UInt8]) -> [Float] {
        bytes.withUnsafeBytes { Array($0.bindMemory(to: Float.self)) }
    }

    /// Reads `/data` both ways; returns the direct location (nil when `H5Dread` was used) after
    /// checking the two reads agree and hold `expected`.
    func readBothWays(_ path: String, expected: [Float]) throws -> UInt64? {
        let dataset = try HDF5File.open(path).root().dataset("data")
        let direct = try dataset.readBytes()
        let viaHDF5 = try dataset.readBytes(direct: false)
        XCTAssertEqual(direct, viaHDF5, path)
        XCTAssertEqual(floats(direct), expected, path)
        return try dataset.directLocation()?.offset
    }

    func testContiguousLittleEndianDataIsReadDirectly() throws {
        let offset = try readBothWays(makeFile("plain.h5"), expected: values)
        XCTAssertNotNil(offset)
    }

    func testAUserBlockShiftsTheOffset() throws {
        let offset = try XCTUnwrap(try readBothWays(makeFile("userblock.h5", userBlock: 4096), expected: values))
        XCTAssertGreaterThanOrEqual(offset, 4096)
    }

    func testBigEndianDataIsConvertedByHDF5() throws {
        XCTAssertNil(try readBothWays(makeFile("big-endian.h5", fileType: shim_T_IEEE_F32BE()), expected: values))
    }

    func testChunkedDeflatedAndCompactDataUseH5Dread() throws {
        let chunked = makeFile("chunked.h5") { dcpl in
            var chunk: [hsize_t] = [100]
            H5Pset_chunk(dcpl, 1, &chunk)
            H5Pset_deflate(dcpl, 4)
        }
        XCTAssertNil(try readBothWays(chunked, expected: values))
        let compact = makeFile("compact.h5") { dcpl in H5Pset_layout(dcpl, H5D_COMPACT) }
        XCTAssertNil(try readBothWays(compact, expected: values))
    }

    func testUnallocatedDataReadsAsZerosEvenWithAUserBlock() throws {
        let path = makeFile("unallocated.h5", userBlock: 512, write: false)
        XCTAssertNil(try readBothWays(path, expected: [Float](repeating: 0, count: values.count)))
    }

    /// sec2 reads past a file's end as zeros: a file cut short inside a dataset's data must be an
    /// error naming the file, whichever layer notices first.
    func testATruncatedFileIsAnErrorNotZeros() throws {
        let path = makeFile("truncated.h5")
        let size = try XCTUnwrap(try FileManager.default.attributesOfItem(atPath: path)[.size] as? Int)
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: path))
        try handle.truncate(atOffset: UInt64(size - 2000))
        try handle.close()
        do {
            let bytes = try HDF5File.open(path).root().dataset("data").readBytes()
            XCTFail("read \(bytes.count) bytes from a truncated file")
        } catch {
            XCTAssertTrue(String(describing: error).contains("truncated.h5"), "\(error)")
        }
    }
}
