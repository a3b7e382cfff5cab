import CHDF5
import Foundation

/// Identifies an object inside an open file (file number and header address).
public struct HDF5ObjectIdentity: Hashable, Sendable {
    public let fileNumber: UInt64
    public let address: UInt64
}

/// An open HDF5 group or dataset. Owns its id and closes it when released.
public class HDF5Object {
    let id: hid_t
    public let file: HDF5File
    /// Absolute path inside the file, for messages.
    public let path: String

    init(id: hid_t, file: HDF5File, path: String) {
        self.id = id
        self.file = file
        self.path = path
    }

    deinit { HDF5Library.sync { _ = H5Oclose(id) } }

    var fileName: String { file.path }

    func childPath(_ name: String) -> String {
        path == "/" ? "/" + name : path + "/" + name
    }

    // MARK: Attributes

    /// Attribute names in name order, listed in one pass.
    public func attributeNames() throws -> [String] {
        try HDF5Library.sync { try listNames(object: path) { shim_list_attributes(id, $0, $1) }.map(\.name) }
    }

    /// The object's identity in the file: two links reaching the same object give the same value,
    /// so walks can detect cycles made with hard links.
    public func identity() throws -> HDF5ObjectIdentity {
        try HDF5Library.sync {
            var fileNumber: UInt = 0
            var address: UInt64 = 0
            guard shim_object_identity(id, &fileNumber, &address) >= 0 else {
                throw HDF5Error.readFailed(file: fileName, object: path, reason: HDF5Library.lastError())
            }
            return HDF5ObjectIdentity(fileNumber: UInt64(fileNumber), address: address)
        }
    }

    /// Runs one of the shim's listing functions, collecting (name, link type) pairs.
    func listNames(object: String, _ list: (shim_name_sink, UnsafeMutableRawPointer) -> herr_t) throws
        -> [(name: String, type: Int32)]
    {
        final class Collector { var items: [(name: String, type: Int32)] = [] }
        let collector = Collector()
        let context = Unmanaged.passUnretained(collector).toOpaque()
        let status = withExtendedLifetime(collector) {
            list(
                { name, type, context in
                    guard let name, let context else { return }
                    Unmanaged<Collector>.fromOpaque(context).takeUnretainedValue().items.append(
                        (String(cString: name), type))
                }, context)
        }
        guard status >= 0 else {
            throw HDF5Error.readFailed(file: fileName, object: object, reason: HDF5Library.lastError())
        }
        return collector.items
    }

    public func hasAttribute(_ name: String) -> Bool {
        HDF5Library.sync { H5Aexists(id, name) > 0 }
    }

    public func attribute(_ name: String) throws -> AttributeValue {
        try HDF5Library.sync {
            let object = "\(path) attribute '\(name)'"
            guard H5Aexists(id, name) > 0 else { throw HDF5Error.objectNotFound(file: fileName, object: object) }
            let attr = H5Aopen(id, name, shim_P_DEFAULT())
            guard attr >= 0 else {
                throw HDF5Error.readFailed(file: fileName, object: object, reason: HDF5Library.lastError())
            }
            defer { H5Aclose(attr) }
            let ftype = H5Aget_type(attr)
            defer { H5Tclose(ftype) }
            let space = H5Aget_space(attr)
            defer { H5Sclose(space) }
            let shape = try dataspaceShape(space, object: object)
            let count = try storedElementCount(shape, elementSize: max(1, H5Tget_size(ftype)), object: object)
            let fail = { HDF5Error.readFailed(file: self.fileName, object: object, reason: HDF5Library.lastError()) }
            let notText = {
                HDF5Error.unsupportedType(
                    file: self.fileName, object: object,
                    detail:
                        "a string holding bytes that are not UTF-8 or a NUL inside it, which Pare cannot keep exactly")
            }

            if H5Tget_class(ftype) == H5T_STRING {
                let utf8 = H5Tget_cset(ftype) == H5T_CSET_UTF8
                let mtype = H5Tcopy(shim_T_C_S1())
                defer { H5Tclose(mtype) }
                H5Tset_cset(mtype, utf8 ? H5T_CSET_UTF8 : H5T_CSET_ASCII)
                if H5Tis_variable_str(ftype) > 0 {
                    H5Tset_size(mtype, shim_T_VARIABLE())
                    var pointers = [UnsafeMutablePointer<CChar>?](repeating: nil, count: count)
                    guard H5Aread(attr, mtype, &pointers) >= 0 else { throw fail() }
                    // Strings must come back byte for byte when written: bytes that are not UTF-8
                    // would be replaced, so they are refused rather than changed.
                    let decoded = pointers.map { $0.map { String(validatingCString: $0) } ?? "" }
                    _ = shim_vlen_reclaim(mtype, space, &pointers)
                    let values = decoded.compactMap { $0 }
                    guard values.count == decoded.count else { throw notText() }
                    return .strings(values, shape: shape, encoding: StringEncoding(variableLength: true, utf8: utf8))
                }
                let size = Int(H5Tget_size(ftype))
                let pad: StringPadding
                switch H5Tget_strpad(ftype) {
                case H5T_STR_NULLPAD: pad = .nullPadded
                case H5T_STR_SPACEPAD: pad = .spacePadded
                default: pad = .nullTerminated
                }
                H5Tset_size(mtype, size)
                H5Tset_strpad(mtype, H5Tget_strpad(ftype))
                var buffer = [UInt8](repeating: 0, count: max(1, size * count))
                guard H5Aread(attr, mtype, &buffer) >= 0 else { throw fail() }
                let values = try (0..<count).map { i -> String in
                    var slice = Array(buffer[(i * size)..<((i + 1) * size)])
                    if pad == .nullTerminated, let nul = slice.firstIndex(of: 0) {
                        slice = Array(slice[..<nul])  // what follows the terminator is not part of the string
                    } else {
                        let padding: UInt8 = pad == .spacePadded ? 0x20 : 0
                        while slice.last == padding || slice.last == 0 { slice.removeLast() }
                        // A NUL inside the value would cut it short when written back.
                        guard !slice.contains(0) else { throw notText() }
                    }
                    guard let text = String(validating: slice, as: UTF8.self) else { throw notText() }
                    return text
                }
                return .strings(
                    values, shape: shape,
                    encoding: StringEncoding(variableLength: false, utf8: utf8, fixedSize: size, padding: pad))
            }
            guard let element = HDF5ElementType.from(typeID: ftype) else {
                throw HDF5Error.unsupportedType(file: fileName, object: object, detail: describeType(ftype))
            }
            let mtype = element.makeTypeID()
            defer { H5Tclose(mtype) }
            var bytes = [UInt8](repeating: 0, count: count * element.byteCount)
            if count > 0 {
                guard H5Aread(attr, mtype, &bytes) >= 0 else { throw fail() }
            }
            return .numbers(element, shape: shape, bytes: bytes)
        }
    }

    /// Removes an attribute (no effect if it does not exist).
    public func deleteAttribute(_ name: String) throws {
        try HDF5Library.sync {
            guard H5Aexists(id, name) > 0 else { return }
            guard H5Adelete(id, name) >= 0 else {
                throw HDF5Error.writeFailed(
                    file: fileName, object: "\(path) attribute '\(name)'", reason: HDF5Library.lastError())
            }
        }
    }

    /// Writes (or replaces) an attribute.
    public func setAttribute(_ name: String, _ value: AttributeValue) throws {
        try HDF5Library.sync {
            let object = "\(path) attribute '\(name)'"
            let fail = { HDF5Error.writeFailed(file: self.fileName, object: object, reason: HDF5Library.lastError()) }
            if H5Aexists(id, name) > 0 { guard H5Adelete(id, name) >= 0 else { throw fail() } }
            // libhdf5 reads as many values as the shape says: a shorter list would write heap memory
            // into the file (a crafted .pare header did), so the count must match exactly.
            let expected = value.shape.reduce(Optional(1)) { total, d in
                guard let total, d >= 0 else { return nil }
                let (p, o) = total.multipliedReportingOverflow(by: d)
                return o ? nil : p
            }
            let actual: Int
            switch value {
            case .strings(let values, _, _): actual = values.count
            case .numbers(let element, _, let bytes):
                actual = bytes.count / element.byteCount
                guard bytes.count % element.byteCount == 0 else {
                    throw HDF5Error.writeFailed(
                        file: fileName, object: object,
                        reason: "\(bytes.count) bytes are not whole \(element.name) values")
                }
            }
            guard let expected, expected == actual else {
                throw HDF5Error.writeFailed(
                    file: fileName, object: object,
                    reason: "\(actual) values do not fill its shape \(value.shape)")
            }
            let space = try makeDataspace(value.shape, object: object)
            defer { H5Sclose(space) }
            switch value {
            case .strings(let values, _, let encoding):
                let type = H5Tcopy(shim_T_C_S1())
                defer { H5Tclose(type) }
                H5Tset_cset(type, encoding.utf8 ? H5T_CSET_UTF8 : H5T_CSET_ASCII)
                if encoding.variableLength {
                    H5Tset_size(type, shim_T_VARIABLE())
                    let attr = H5Acreate2(id, name, type, space, shim_P_DEFAULT(), shim_P_DEFAULT())
                    guard attr >= 0 else { throw fail() }
                    defer { H5Aclose(attr) }
                    var cStrings = values.map { strdup($0) }
                    defer { for pointer in cStrings { free(pointer) } }
                    guard H5Awrite(attr, type, &cStrings) >= 0 else { throw fail() }
                } else {
                    let longest = values.map { $0.utf8.count }.max() ?? 0
                    let size = max(1, encoding.fixedSize, longest)
                    H5Tset_size(type, size)
                    H5Tset_strpad(
                        type,
                        encoding.padding == .nullPadded
                            ? H5T_STR_NULLPAD
                            : encoding.padding == .spacePadded ? H5T_STR_SPACEPAD : H5T_STR_NULLTERM)
                    let fill: UInt8 = encoding.padding == .spacePadded ? 0x20 : 0
                    var buffer = [UInt8](repeating: fill, count: max(1, size * values.count))
                    for (i, s) in values.enumerated() {
                        for (j, b) in s.utf8.enumerated() { buffer[i * size + j] = b }
                    }
                    let attr = H5Acreate2(id, name, type, space, shim_P_DEFAULT(), shim_P_DEFAULT())
                    guard attr >= 0 else { throw fail() }
                    defer { H5Aclose(attr) }
                    guard H5Awrite(attr, type, &buffer) >= 0 else { throw fail() }
                }
            case .numbers(let element, _, let bytes):
                let type = element.makeTypeID()
                guard type >= 0 else { throw fail() }
                defer { H5Tclose(type) }
                let attr = H5Acreate2(id, name, type, space, shim_P_DEFAULT(), shim_P_DEFAULT())
                guard attr >= 0 else { throw fail() }
                defer { H5Aclose(attr) }
                if !bytes.isEmpty {
                    var copy = bytes
                    guard H5Awrite(attr, type, &copy) >= 0 else { throw fail() }
                }
            }
        }
    }

    /// The number of elements a dataspace of `shape` holds, refused when the product overflows or
    /// when its bytes could not be inside the file (a corrupt or crafted dataspace), before anything
    /// is allocated for it.
    func storedElementCount(_ shape: [Int], elementSize: Int, object: String) throws -> Int {
        var count = 1
        for d in shape {
            let (p, o) = count.multipliedReportingOverflow(by: d)
            guard !o else {
                throw HDF5Error.readFailed(file: fileName, object: object, reason: "its shape \(shape) overflows")
            }
            count = p
        }
        var fileSize: hsize_t = 0
        H5Fget_filesize(file.id, &fileSize)
        let (bytes, o) = count.multipliedReportingOverflow(by: elementSize)
        if o || bytes > Int(clamping: fileSize) + (1 << 20) {
            throw HDF5Error.readFailed(
                file: fileName, object: object,
                reason: "its shape \(shape) claims more data than the \(fileSize)-byte file holds: the file is corrupt")
        }
        return count
    }

    func dataspaceShape(_ space: hid_t, object: String) throws -> [Int] {
        let kind = H5Sget_simple_extent_type(space)
        if kind == H5S_SCALAR { return [] }
        if kind == H5S_NULL {
            throw HDF5Error.unsupportedType(file: fileName, object: object, detail: "empty (null) dataspace")
        }
        let rank = Int(H5Sget_simple_extent_ndims(space))
        guard rank >= 0 else {
            throw HDF5Error.readFailed(file: fileName, object: object, reason: HDF5Library.lastError())
        }
        var dims = [hsize_t](repeating: 0, count: rank)
        H5Sget_simple_extent_dims(space, &dims, nil)
        return try dims.map {
            guard let d = Int(exactly: $0) else {
                throw HDF5Error.readFailed(
                    file: fileName, object: object, reason: "a dimension of \($0) is out of range")
            }
            return d
        }
    }

    func makeDataspace(_ shape: [Int], object: String) throws -> hid_t {
        let space: hid_t
        if shape.isEmpty {
            space = H5Screate(H5S_SCALAR)
        } else {
            guard shape.allSatisfy({ $0 >= 0 }) else {
                throw HDF5Error.writeFailed(
                    file: fileName, object: object, reason: "negative dimension in shape \(shape)")
            }
            let dims = shape.map { hsize_t($0) }
            space = H5Screate_simple(Int32(dims.count), dims, nil)
        }
        guard space >= 0 else {
            throw HDF5Error.writeFailed(file: fileName, object: object, reason: HDF5Library.lastError())
        }
        return space
    }
}
