import CHDF5
import Foundation

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

    /// Attribute names in name order.
    public func attributeNames() throws -> [String] {
        try HDF5Library.sync {
            let count = shim_num_attrs(id)
            guard count >= 0 else {
                throw HDF5Error.readFailed(file: fileName, object: path, reason: HDF5Library.lastError())
            }
            var names: [String] = []
            for i in 0..<count {
                let len = H5Aget_name_by_idx(id, ".", H5_INDEX_NAME, H5_ITER_INC, hsize_t(i), nil, 0, shim_P_DEFAULT())
                guard len >= 0 else {
                    throw HDF5Error.readFailed(file: fileName, object: path, reason: HDF5Library.lastError())
                }
                var buffer = [CChar](repeating: 0, count: Int(len) + 1)
                H5Aget_name_by_idx(id, ".", H5_INDEX_NAME, H5_ITER_INC, hsize_t(i), &buffer, buffer.count, shim_P_DEFAULT())
                names.append(String(cString: buffer))
            }
            return names
        }
    }

    public func hasAttribute(_ name: String) -> Bool {
        HDF5Library.sync { H5Aexists(id, name) > 0 }
    }

    public func attribute(_ name: String) throws -> AttributeValue {
        try HDF5Library.sync {
            let object = "\(path) attribute '\(name)'"
            guard H5Aexists(id, name) > 0 else { throw HDF5Error.objectNotFound(file: fileName, object: object) }
            let attr = H5Aopen(id, name, shim_P_DEFAULT())
            guard attr >= 0 else { throw HDF5Error.readFailed(file: fileName, object: object, reason: HDF5Library.lastError()) }
            defer { H5Aclose(attr) }
            let ftype = H5Aget_type(attr)
            defer { H5Tclose(ftype) }
            let space = H5Aget_space(attr)
            defer { H5Sclose(space) }
            let shape = try dataspaceShape(space, object: object)
            let count = shape.reduce(1, *)
            let fail = { HDF5Error.readFailed(file: self.fileName, object: object, reason: HDF5Library.lastError()) }

            if H5Tget_class(ftype) == H5T_STRING {
                let utf8 = H5Tget_cset(ftype) == H5T_CSET_UTF8
                let mtype = H5Tcopy(shim_T_C_S1())
                defer { H5Tclose(mtype) }
                H5Tset_cset(mtype, utf8 ? H5T_CSET_UTF8 : H5T_CSET_ASCII)
                if H5Tis_variable_str(ftype) > 0 {
                    H5Tset_size(mtype, shim_T_VARIABLE())
                    var pointers = [UnsafeMutablePointer<CChar>?](repeating: nil, count: count)
                    guard H5Aread(attr, mtype, &pointers) >= 0 else { throw fail() }
                    let values = pointers.map { $0.map { String(cString: $0) } ?? "" }
                    _ = shim_vlen_reclaim(mtype, space, &pointers)
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
                let values = (0..<count).map { i -> String in
                    var slice = Array(buffer[(i * size)..<((i + 1) * size)])
                    if let nul = slice.firstIndex(of: 0) { slice = Array(slice[..<nul]) }
                    if pad == .spacePadded { while slice.last == 0x20 { slice.removeLast() } }
                    return String(decoding: slice, as: UTF8.self)
                }
                return .strings(values, shape: shape,
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
                throw HDF5Error.writeFailed(file: fileName, object: "\(path) attribute '\(name)'", reason: HDF5Library.lastError())
            }
        }
    }

    /// Writes (or replaces) an attribute.
    public func setAttribute(_ name: String, _ value: AttributeValue) throws {
        try HDF5Library.sync {
            let object = "\(path) attribute '\(name)'"
            let fail = { HDF5Error.writeFailed(file: self.fileName, object: object, reason: HDF5Library.lastError()) }
            if H5Aexists(id, name) > 0 { guard H5Adelete(id, name) >= 0 else { throw fail() } }
            let space = try makeDataspace(value.shape, object: object)
            defer { H5Sclose(space) }
            switch value {
            case let .strings(values, _, encoding):
                let type = H5Tcopy(shim_T_C_S1())
                defer { H5Tclose(type) }
                H5Tset_cset(type, encoding.utf8 ? H5T_CSET_UTF8 : H5T_CSET_ASCII)
                if encoding.variableLength {
                    H5Tset_size(type, shim_T_VARIABLE())
                    let attr = H5Acreate2(id, name, type, space, shim_P_DEFAULT(), shim_P_DEFAULT())
                    guard attr >= 0 else { throw fail() }
                    defer { H5Aclose(attr) }
                    var cStrings = values.map { strdup($0) }
                    defer { cStrings.forEach { free($0) } }
                    guard H5Awrite(attr, type, &cStrings) >= 0 else { throw fail() }
                } else {
                    let longest = values.map { $0.utf8.count }.max() ?? 0
                    let size = max(1, encoding.fixedSize, longest)
                    H5Tset_size(type, size)
                    H5Tset_strpad(type, encoding.padding == .nullPadded ? H5T_STR_NULLPAD
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
            case let .numbers(element, _, bytes):
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

    func dataspaceShape(_ space: hid_t, object: String) throws -> [Int] {
        let kind = H5Sget_simple_extent_type(space)
        if kind == H5S_SCALAR { return [] }
        if kind == H5S_NULL {
            throw HDF5Error.unsupportedType(file: fileName, object: object, detail: "empty (null) dataspace")
        }
        let rank = Int(H5Sget_simple_extent_ndims(space))
        guard rank >= 0 else { throw HDF5Error.readFailed(file: fileName, object: object, reason: HDF5Library.lastError()) }
        var dims = [hsize_t](repeating: 0, count: rank)
        H5Sget_simple_extent_dims(space, &dims, nil)
        return dims.map { Int($0) }
    }

    func makeDataspace(_ shape: [Int], object: String) throws -> hid_t {
        let space: hid_t
        if shape.isEmpty {
            space = H5Screate(H5S_SCALAR)
        } else {
            let dims = shape.map { hsize_t($0) }
            space = H5Screate_simple(Int32(dims.count), dims, nil)
        }
        guard space >= 0 else { throw HDF5Error.writeFailed(file: fileName, object: object, reason: HDF5Library.lastError()) }
        return space
    }
}
