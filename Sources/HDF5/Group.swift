import CHDF5

public enum HDF5ChildKind: Equatable, Sendable {
    case group, dataset, other
}

/// A child of a group: its link name and what it is.
public struct HDF5Child: Equatable, Sendable {
    public var name: String
    public var kind: HDF5ChildKind
}

/// Options for creating a dataset.
public struct DatasetOptions: Equatable, Sendable {
    /// zlib level 1…9 with the shuffle filter, as h5py's `compression="gzip", shuffle=True`; nil stores contiguous.
    public var deflateLevel: Int?
    public init(deflateLevel: Int? = nil) { self.deflateLevel = deflateLevel }
}

public final class HDF5Group: HDF5Object {
    /// Direct children in name order (the order h5py lists them), listed in one pass. A child that
    /// would be read from another file (an external or user-defined link) is an error naming it; a
    /// soft link is followed (it stays inside this file) and one whose target is missing is an error.
    public func children() throws -> [HDF5Child] {
        try HDF5Library.sync {
            let links = try listNames(object: path) { shim_list_links(id, $0, $1) }
            return try links.map { name, linkType in
                let full = childPath(name)
                try Self.refuseForeignLink(linkType, file: fileName, object: full)
                let object = H5Oopen(id, name, HDF5Library.linkAccess)
                guard object >= 0 else {
                    let reason = HDF5Library.lastError()
                    if linkType == Int32(H5L_TYPE_SOFT.rawValue) {
                        throw HDF5Error.refused(
                            file: fileName, object: full,
                            reason: "a soft link whose target does not exist in this file")
                    }
                    throw HDF5Error.readFailed(file: fileName, object: full, reason: reason)
                }
                defer { H5Oclose(object) }
                switch H5Iget_type(object) {
                case H5I_GROUP: return HDF5Child(name: name, kind: .group)
                case H5I_DATASET: return HDF5Child(name: name, kind: .dataset)
                default: return HDF5Child(name: name, kind: .other)
                }
            }
        }
    }

    /// External links open another file and user-defined links are opaque: Pare reads only bytes
    /// of the file it was given, so both are refused wherever they are met.
    static func refuseForeignLink(_ linkType: Int32, file: String, object: String) throws {
        if linkType == Int32(H5L_TYPE_EXTERNAL.rawValue) {
            throw HDF5Error.refused(
                file: file, object: object,
                reason: "an external link to another file: Pare reads only the file it is given")
        }
        if linkType != Int32(H5L_TYPE_HARD.rawValue) && linkType != Int32(H5L_TYPE_SOFT.rawValue) {
            throw HDF5Error.refused(
                file: file, object: object,
                reason: "a user-defined link (type \(linkType)): Pare reads only the file it is given")
        }
    }

    /// Checks every link on the way to `relativePath`: nil if one is missing, an error if one leads
    /// to another file; otherwise the type of the last link.
    private func linkChain(_ relativePath: String) throws -> Int32? {
        var prefix = ""
        var last: Int32?
        for component in relativePath.split(separator: "/", omittingEmptySubsequences: true) {
            prefix += prefix.isEmpty ? String(component) : "/" + component
            guard H5Lexists(id, prefix, HDF5Library.linkAccess) > 0 else {
                shim_clear_errors()
                return nil
            }
            var info = H5L_info_t()
            guard H5Lget_info(id, prefix, &info, HDF5Library.linkAccess) >= 0 else {
                throw HDF5Error.readFailed(file: fileName, object: childPath(prefix), reason: HDF5Library.lastError())
            }
            last = Int32(info.type.rawValue)
            try Self.refuseForeignLink(last!, file: fileName, object: childPath(prefix))
        }
        return last
    }

    /// Whether `path` (relative, may contain `/`) names an existing object inside this file.
    public func contains(_ relativePath: String) -> Bool {
        HDF5Library.sync {
            guard (try? linkChain(relativePath)) != nil else {
                shim_clear_errors()
                return false
            }
            let object = H5Oopen(id, relativePath, HDF5Library.linkAccess)
            guard object >= 0 else {
                shim_clear_errors()
                return false
            }
            H5Oclose(object)
            return true
        }
    }

    /// Opens the object at `relativePath`, refusing links that leave the file.
    private func open(_ relativePath: String) throws -> hid_t {
        let full = childPath(relativePath)
        guard let linkType = try linkChain(relativePath) else {
            throw HDF5Error.objectNotFound(file: fileName, object: full)
        }
        let object = H5Oopen(id, relativePath, HDF5Library.linkAccess)
        guard object >= 0 else {
            let reason = HDF5Library.lastError()
            if linkType == Int32(H5L_TYPE_SOFT.rawValue) {
                throw HDF5Error.refused(
                    file: fileName, object: full, reason: "a soft link whose target does not exist in this file")
            }
            throw HDF5Error.readFailed(file: fileName, object: full, reason: reason)
        }
        return object
    }

    public func group(_ relativePath: String) throws -> HDF5Group {
        try HDF5Library.sync {
            let full = childPath(relativePath)
            let object = try open(relativePath)
            guard H5Iget_type(object) == H5I_GROUP else {
                H5Oclose(object)
                throw HDF5Error.notAGroup(file: fileName, object: full)
            }
            return HDF5Group(id: object, file: file, path: full)
        }
    }

    public func dataset(_ relativePath: String) throws -> HDF5Dataset {
        try HDF5Library.sync {
            let full = childPath(relativePath)
            let object = try open(relativePath)
            guard H5Iget_type(object) == H5I_DATASET else {
                H5Oclose(object)
                throw HDF5Error.notADataset(file: fileName, object: full)
            }
            let dataset = HDF5Dataset(id: object, file: file, path: full)
            try dataset.refuseOutsideStorage()
            return dataset
        }
    }

    /// Creates a group; `relativePath` may contain `/`, intermediate groups are created (as h5py does).
    public func createGroup(_ relativePath: String) throws -> HDF5Group {
        try HDF5Library.sync {
            let full = childPath(relativePath)
            let lcpl = H5Pcreate(shim_P_LINK_CREATE())
            defer { H5Pclose(lcpl) }
            H5Pset_create_intermediate_group(lcpl, 1)
            let gid = H5Gcreate2(id, relativePath, lcpl, shim_P_DEFAULT(), shim_P_DEFAULT())
            guard gid >= 0 else {
                throw HDF5Error.writeFailed(file: fileName, object: full, reason: HDF5Library.lastError())
            }
            return HDF5Group(id: gid, file: file, path: full)
        }
    }

    /// Removes the link `relativePath` (the object goes when nothing else links to it).
    public func deleteLink(_ relativePath: String) throws {
        try HDF5Library.sync {
            guard H5Ldelete(id, relativePath, shim_P_DEFAULT()) >= 0 else {
                throw HDF5Error.writeFailed(
                    file: fileName, object: childPath(relativePath), reason: HDF5Library.lastError())
            }
        }
    }

    /// Opens the group at `relativePath`, creating it (and its parents) if missing.
    public func requireGroup(_ relativePath: String) throws -> HDF5Group {
        contains(relativePath) ? try group(relativePath) : try createGroup(relativePath)
    }

    /// Creates a dataset holding `bytes` (little-endian elements of `type`, row-major) and returns it.
    @discardableResult
    public func createDataset(
        _ relativePath: String, type: HDF5ElementType, shape: [Int], bytes: [UInt8],
        options: DatasetOptions = DatasetOptions()
    ) throws -> HDF5Dataset {
        try HDF5Library.sync {
            let full = childPath(relativePath)
            let fail = { HDF5Error.writeFailed(file: self.fileName, object: full, reason: HDF5Library.lastError()) }
            var count = 1
            for d in shape {
                let (p, o) = count.multipliedReportingOverflow(by: d)
                guard d >= 0, !o else {
                    throw HDF5Error.writeFailed(file: fileName, object: full, reason: "bad shape \(shape)")
                }
                count = p
            }
            guard bytes.count == count * type.byteCount else {
                throw HDF5Error.writeFailed(
                    file: fileName, object: full,
                    reason: "\(bytes.count) bytes for shape \(shape) of \(type.name)")
            }
            let space = try makeDataspace(shape, object: full)
            defer { H5Sclose(space) }
            let ftype = type.makeTypeID()
            guard ftype >= 0 else { throw fail() }
            defer { H5Tclose(ftype) }
            let lcpl = H5Pcreate(shim_P_LINK_CREATE())
            defer { H5Pclose(lcpl) }
            H5Pset_create_intermediate_group(lcpl, 1)
            let dcpl = H5Pcreate(shim_P_DATASET_CREATE())
            defer { H5Pclose(dcpl) }
            if let level = options.deflateLevel, !shape.isEmpty, count > 0 {
                let chunk = chunkShape(shape, elementSize: type.byteCount)
                H5Pset_chunk(dcpl, Int32(chunk.count), chunk.map { hsize_t($0) })
                H5Pset_shuffle(dcpl)
                H5Pset_deflate(dcpl, UInt32(max(1, min(9, level))))
            }
            let did = H5Dcreate2(id, relativePath, ftype, space, lcpl, dcpl, shim_P_DEFAULT())
            guard did >= 0 else { throw fail() }
            let dataset = HDF5Dataset(id: did, file: file, path: full)
            if count > 0 {
                let status = bytes.withUnsafeBytes {
                    H5Dwrite(did, ftype, shim_S_ALL(), shim_S_ALL(), shim_P_DEFAULT(), $0.baseAddress)
                }
                guard status >= 0 else { throw fail() }
            }
            return dataset
        }
    }
}

/// Chunks of at most ~1 MiB, split along the leading axes, so deflate works on bounded blocks.
func chunkShape(_ shape: [Int], elementSize: Int) -> [Int] {
    var chunk = shape.map { max(1, $0) }
    let target = 1 << 20
    var axis = 0
    while chunk.reduce(elementSize, *) > target, axis < chunk.count {
        let rest = chunk.reduce(elementSize, *) / chunk[axis]
        chunk[axis] = max(1, target / max(1, rest))
        if chunk[axis] > 1 { break }
        axis += 1
    }
    return chunk
}
