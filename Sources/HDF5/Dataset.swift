import CHDF5

public final class HDF5Dataset: HDF5Object {
    public func shape() throws -> [Int] {
        try HDF5Library.sync {
            let space = H5Dget_space(id)
            guard space >= 0 else { throw HDF5Error.readFailed(file: fileName, object: path, reason: HDF5Library.lastError()) }
            defer { H5Sclose(space) }
            return try dataspaceShape(space, object: path)
        }
    }

    /// The element type, or an error naming what the dataset holds instead.
    public func elementType() throws -> HDF5ElementType {
        try HDF5Library.sync {
            let ftype = H5Dget_type(id)
            guard ftype >= 0 else { throw HDF5Error.readFailed(file: fileName, object: path, reason: HDF5Library.lastError()) }
            defer { H5Tclose(ftype) }
            guard let element = HDF5ElementType.from(typeID: ftype) else {
                throw HDF5Error.unsupportedType(file: fileName, object: path, detail: describeType(ftype))
            }
            return element
        }
    }

    /// Bytes of storage the dataset occupies in the file (compressed size when filtered).
    public func storageSize() -> Int {
        HDF5Library.sync { Int(H5Dget_storage_size(id)) }
    }

    /// All elements as little-endian bytes in row-major order, exactly as stored (bit-exact for floats).
    public func readBytes() throws -> [UInt8] {
        try HDF5Library.sync {
            let type = try elementType()
            let count = try shape().reduce(1, *)
            var bytes = [UInt8](repeating: 0, count: count * type.byteCount)
            guard count > 0 else { return bytes }
            let mtype = type.makeTypeID()
            defer { H5Tclose(mtype) }
            let status = bytes.withUnsafeMutableBytes {
                H5Dread(id, mtype, shim_S_ALL(), shim_S_ALL(), shim_P_DEFAULT(), $0.baseAddress)
            }
            guard status >= 0 else { throw HDF5Error.readFailed(file: fileName, object: path, reason: HDF5Library.lastError()) }
            return bytes
        }
    }
}
