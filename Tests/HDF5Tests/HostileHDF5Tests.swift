import CHDF5
import Foundation
import HDF5
import XCTest

/// HDF5 features that would make Pare read outside the file it was given, loop, or write memory
/// it does not own. The files are made with libhdf5's C API (Pare's wrapper never writes them).
final class HostileHDF5Tests: XCTestCase {
    var directory: URL!
    let secret = "PARE-SECRET-\(UUID().uuidString)"

    override func setUpWithError() throws {
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("pare-hostile-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws { try? FileManager.default.removeItem(at: directory) }

    func path(_ name: String) -> String { directory.appendingPathComponent(name).path }

    /// A file with one float32 dataset `/data` holding `values`.
    func makeFile(_ name: String, values: [Float] = [1, 2, 3, 4], _ extra: (hid_t) -> Void = { _ in }) -> String {
        let p = path(name)
        _ = try? HDF5File.create(p).close()  // initializes the library like Pare does
        let fid = H5Fcreate(p, shim_F_ACC_TRUNC(), shim_P_DEFAULT(), shim_P_DEFAULT())
        var dims: [hsize_t] = [hsize_t(values.count)]
        let space = H5Screate_simple(1, &dims, nil)
        let d = H5Dcreate2(
            fid, "/data", shim_T_IEEE_F32LE(), space, shim_P_DEFAULT(), shim_P_DEFAULT(), shim_P_DEFAULT())
        var copy = values
        H5Dwrite(d, shim_T_IEEE_F32LE(), shim_S_ALL(), shim_S_ALL(), shim_P_DEFAULT(), &copy)
        H5Dclose(d)
        H5Sclose(space)
        extra(fid)
        H5Fclose(fid)
        return p
    }

    func error(_ body: () throws -> Void) -> String {
        do { try body() } catch { return String(describing: error) }
        return "no error"
    }

    func testExternalLinksAreRefusedAndNeverFollowed() throws {
        let outside = makeFile("outside.h5", values: [42, 42])
        let file = makeFile("link.h5") { fid in
            H5Lcreate_external(outside, "/data", fid, "/stolen", shim_P_DEFAULT(), shim_P_DEFAULT())
        }
        let root = try HDF5File.open(file).root()
        let listing = error { _ = try root.children() }
        XCTAssertTrue(listing.contains("/stolen") && listing.contains("external link"), listing)
        let opening = error { _ = try root.dataset("stolen").readBytes() }
        XCTAssertTrue(opening.contains("/stolen") && opening.contains("external link"), opening)
        XCTAssertFalse(root.contains("stolen"), "an external link does not count as an object of this file")
    }

    func testExternalRawStorageIsRefusedBeforeReading() throws {
        let raw = path("secret.bin")
        try Data(secret.utf8).write(to: URL(fileURLWithPath: raw))
        let file = makeFile("external.h5") { fid in
            let dcpl = H5Pcreate(shim_P_DATASET_CREATE())
            H5Pset_external(dcpl, raw, 0, 16)
            var dims: [hsize_t] = [4]
            let space = H5Screate_simple(1, &dims, nil)
            H5Dclose(H5Dcreate2(fid, "/leak", shim_T_IEEE_F32LE(), space, shim_P_DEFAULT(), dcpl, shim_P_DEFAULT()))
            H5Sclose(space)
            H5Pclose(dcpl)
        }
        let message = error { _ = try HDF5File.open(file).root().dataset("leak").readBytes() }
        XCTAssertTrue(message.contains("/leak") && message.contains("external files"), message)
    }

    func testVirtualDatasetsAreRefused() throws {
        let source = makeFile("source.h5", values: [7, 7, 7, 7])
        let file = makeFile("virtual.h5") { fid in
            var dims: [hsize_t] = [4]
            let space = H5Screate_simple(1, &dims, nil)
            let dcpl = H5Pcreate(shim_P_DATASET_CREATE())
            H5Pset_virtual(dcpl, space, source, "/data", space)
            H5Dclose(H5Dcreate2(fid, "/mapped", shim_T_IEEE_F32LE(), space, shim_P_DEFAULT(), dcpl, shim_P_DEFAULT()))
            H5Pclose(dcpl)
            H5Sclose(space)
        }
        let message = error { _ = try HDF5File.open(file).root().dataset("mapped") }
        XCTAssertTrue(message.contains("/mapped") && message.contains("virtual dataset"), message)
    }

    func testSoftLinksInsideTheFileWorkAndDanglingOnesAreNamed() throws {
        let file = makeFile("soft.h5") { fid in
            H5Lcreate_soft("/data", fid, "/alias", shim_P_DEFAULT(), shim_P_DEFAULT())
            H5Lcreate_soft("/missing", fid, "/dangling", shim_P_DEFAULT(), shim_P_DEFAULT())
        }
        let root = try HDF5File.open(file).root()
        XCTAssertEqual(try root.dataset("alias").readBytes(), try root.dataset("data").readBytes())
        let message = error { _ = try root.children() }
        XCTAssertTrue(message.contains("/dangling") && message.contains("soft link"), message)
    }

    func testHardLinkCyclesAreFoundByIdentity() throws {
        let file = makeFile("cycle.h5") { fid in
            H5Gclose(H5Gcreate2(fid, "/g", shim_P_DEFAULT(), shim_P_DEFAULT(), shim_P_DEFAULT()))
            H5Lcreate_hard(fid, "/g", fid, "/g/loop", shim_P_DEFAULT(), shim_P_DEFAULT())
        }
        let root = try HDF5File.open(file).root()
        var guardian = WalkGuard()
        var depth = 0
        func walk(_ g: HDF5Group) throws {
            depth += 1
            XCTAssertLessThan(depth, 10, "the walk must stop at the cycle")
            guard case .first = try guardian.enter(g) else { return }
            defer { guardian.leave(g) }
            for link in try g.children() where link.kind == .group { try walk(try g.group(link.name)) }
        }
        let message = error { try walk(root) }
        XCTAssertTrue(message.contains("/g/loop") && message.contains("cycle"), message)
    }

    func testAttributeValuesMustFillTheirShape() throws {
        let file = try HDF5File.create(path("attrs.h5"))
        let root = try file.root()
        let short = error { try root.setAttribute("a", .strings(["only one"], shape: [2], encoding: .variableUTF8)) }
        XCTAssertTrue(short.contains("1 values do not fill its shape [2]"), short)
        let long = error {
            try root.setAttribute("b", .numbers(.float(bits: 32), shape: [1], bytes: [UInt8](repeating: 0, count: 8)))
        }
        XCTAssertTrue(long.contains("2 values do not fill its shape [1]"), long)
        let negative = error { try root.setAttribute("c", .strings([], shape: [-1], encoding: .variableUTF8)) }
        XCTAssertNotEqual(negative, "no error")
        XCTAssertEqual(try root.attributeNames(), [], "nothing half-written")
    }

    func testManyAttributesAndDatasetsAreListedInOnePass() throws {
        let file = try HDF5File.create(path("many.h5"))
        let root = try file.root()
        let group = try root.createGroup("g")
        for i in 0..<4000 { try group.setAttribute(String(format: "a%05d", i), .string("x")) }
        for i in 0..<4000 {
            try group.createDataset(
                String(format: "d%05d", i), type: .float(bits: 32), shape: [1], bytes: [0, 0, 0, 0])
        }
        try file.close()
        let reopened = try HDF5File.open(path("many.h5")).root().group("g")
        let start = Date()
        let names = try reopened.attributeNames()
        let children = try reopened.children()
        let seconds = Date().timeIntervalSince(start)
        XCTAssertEqual(names.count, 4000)
        XCTAssertEqual(names.first, "a00000")
        XCTAssertEqual(children.count, 4000)
        XCTAssertEqual(children.last?.name, "d03999")
        // Listing by index took 118 s for 4,000 attributes; one pass takes milliseconds. A bound
        // this loose holds on any machine and still fails a quadratic listing by a wide margin.
        XCTAssertLessThan(seconds, 10)
    }
}
