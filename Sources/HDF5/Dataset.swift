import CHDF5
import Foundation

public final class HDF5Dataset: HDF5Object {
    /// A dataset whose bytes live outside the file (external raw files, or a virtual dataset mapped
    /// from other datasets) would make Pare read another file: refused before anything is read.
    func refuseOutsideStorage() throws {
        try HDF5Library.sync {
            switch shim_dataset_storage(id) {
            case 0: return
            case 1:
                throw HDF5Error.refused(
                    file: fileName, object: path,
                    reason: "stores its data in external files: Pare reads only the file it is given")
            case 2:
                throw HDF5Error.refused(
                    file: fileName, object: path,
                    reason:
                        "a virtual dataset mapped from other datasets or files: Pare reads only stored data of "
                        + "the file it is given"
                )
            default:
                throw HDF5Error.readFailed(file: fileName, object: path, reason: HDF5Library.lastError())
            }
        }
    }

    public func shape() throws -> [Int] {
        try HDF5Library.sync {
            let space = H5Dget_space(id)
            guard space >= 0 else {
                throw HDF5Error.readFailed(file: fileName, object: path, reason: HDF5Library.lastError())
            }
            defer { H5Sclose(space) }
            return try dataspaceShape(space, object: path)
        }
    }

    /// The element type, or an error naming what the dataset holds instead.
    public func elementType() throws -> HDF5ElementType {
        try HDF5Library.sync {
            let ftype = H5Dget_type(id)
            guard ftype >= 0 else {
                throw HDF5Error.readFailed(file: fileName, object: path, reason: HDF5Library.lastError())
            }
            defer { H5Tclose(ftype) }
            guard let element = HDF5ElementType.from(typeID: ftype) else {
                throw HDF5Error.unsupportedType(file: fileName, object: path, detail: describeType(ftype))
            }
            return element
        }
    }

    /// Bytes of storage the dataset occupies in the file (compressed size when filtered).
    public func storageSize() -> Int {
        HDF5Library.sync { Int(clamping: H5Dget_storage_size(id)) }
    }

    /// Deflate expands at most ~1032:1; a dataset may claim more than its file holds only that far.
    static let maxExpansion = 1100

    /// The dataset's size in bytes once read, checked against what the file can hold: a shape whose
    /// element count overflows, or that claims far more than the file's bytes (a corrupt dataspace),
    /// is an error here rather than a giant allocation.
    public func checkedByteCount() throws -> Int {
        try HDF5Library.sync {
            let type = try elementType()
            var total = type.byteCount
            for d in try shape() {
                let (p, o) = total.multipliedReportingOverflow(by: d)
                guard !o else {
                    throw HDF5Error.readFailed(
                        file: fileName, object: path, reason: "its shape \(try shape()) overflows")
                }
                total = p
            }
            var fileSize: hsize_t = 0
            H5Fget_filesize(file.id, &fileSize)
            let available = max(Int(clamping: fileSize), Int(clamping: H5Dget_storage_size(id)))
            let (limit, o) = available.multipliedReportingOverflow(by: Self.maxExpansion)
            if !o, total > limit + (1 << 20) {
                throw HDF5Error.readFailed(
                    file: fileName, object: path,
                    reason:
                        "its shape \(try shape()) needs \(total) bytes, far more than the \(available)-byte "
                        + "file can hold: the file is corrupt"
                )
            }
            return total
        }
    }

    /// All elements as little-endian bytes in row-major order, exactly as stored (bit-exact for floats).
    /// `direct: false` forces `H5Dread` (tests compare both paths).
    public func readBytes(direct: Bool = true) throws -> [UInt8] {
        let byteCount = try checkedByteCount()
        return try [UInt8](unsafeUninitializedCapacity: byteCount) { buffer, initialized in
            try read(into: UnsafeMutableRawBufferPointer(buffer), direct: direct)
            initialized = byteCount
        }
    }

    /// Writes all elements, as `readBytes` returns them, into `buffer` (exactly `checkedByteCount()`
    /// bytes, which need not be initialized). Plain contiguous data is read with one `pread` at its
    /// file offset; everything else (chunked, filtered, compact, big-endian, unallocated, files opened
    /// from memory) goes through `H5Dread`.
    public func read(into buffer: UnsafeMutableRawBufferPointer, direct: Bool = true) throws {
        try HDF5Library.sync {
            let type = try elementType()
            let byteCount = try checkedByteCount()
            guard buffer.count == byteCount else {
                throw HDF5Error.readFailed(
                    file: fileName, object: path, reason: "a buffer of \(buffer.count) bytes for \(byteCount)")
            }
            guard byteCount > 0, let base = buffer.baseAddress else { return }
            let mtype = type.makeTypeID()
            defer { H5Tclose(mtype) }
            if direct, let (fd, offset) = try directLocation(byteCount: byteCount, memoryType: mtype) {
                try readDirect(fd: fd, offset: offset, into: buffer)
                return
            }
            // H5Dread leaves an unallocated dataset without a fill value untouched: never uninitialized memory.
            buffer.initializeMemory(as: UInt8.self, repeating: 0)
            guard H5Dread(id, mtype, shim_S_ALL(), shim_S_ALL(), shim_P_DEFAULT(), base) >= 0 else {
                throw HDF5Error.readFailed(file: fileName, object: path, reason: HDF5Library.lastError())
            }
        }
    }

    /// Calls `body` with the dataset's bytes mapped read-only from the file (no copy: the page cache's own
    /// pages), when they lie there as `readBytes` would return them (plain contiguous data, the direct
    /// path); returns nil without calling `body` otherwise, or when the mapping fails. The bytes are only
    /// valid inside `body`. A file truncated by another process while `body` reads is a SIGBUS: callers
    /// enable mapping only where a handler turns that into an error (`MappedReads`).
    public func withMappedBytes<R>(_ body: (UnsafeRawBufferPointer) throws -> R) throws -> R? {
        let located: (fd: Int32, offset: UInt64, count: Int)? = try HDF5Library.sync {
            let type = try elementType()
            let byteCount = try checkedByteCount()
            guard byteCount > 0 else { return nil }
            let mtype = type.makeTypeID()
            defer { H5Tclose(mtype) }
            guard let (fd, offset) = try directLocation(byteCount: byteCount, memoryType: mtype) else { return nil }
            try checkInsideFile(fd: fd, offset: offset, byteCount: byteCount)
            return (fd, offset, byteCount)
        }
        guard let located else { return nil }
        let page = UInt64(sysconf(Int32(_SC_PAGESIZE)))
        let start = located.offset / page * page
        let lead = Int(located.offset - start)
        let length = lead + located.count
        // MAP_POPULATE maps the cached pages at once instead of one fault per 64 KiB.
        guard let base = mmap(nil, length, PROT_READ, MAP_SHARED | MAP_POPULATE, located.fd, off_t(start)),
            base != MAP_FAILED
        else { return nil }
        defer { munmap(base, length) }
        return try body(UnsafeRawBufferPointer(start: base + lead, count: located.count))
    }

    /// The descriptor and absolute offset `readBytes` reads from directly, or nil when it uses `H5Dread`.
    func directLocation() throws -> (fd: Int32, offset: UInt64)? {
        try HDF5Library.sync {
            let mtype = try elementType().makeTypeID()
            defer { H5Tclose(mtype) }
            return try directLocation(byteCount: try checkedByteCount(), memoryType: mtype)
        }
    }

    private func directLocation(byteCount: Int, memoryType: hid_t) throws -> (fd: Int32, offset: UInt64)? {
        var fd: Int32 = -1
        var offset: UInt64 = 0
        switch shim_direct_read_location(id, file.id, memoryType, UInt64(byteCount), &fd, &offset) {
        case 1: return (fd, offset)
        case 0: return nil
        case 2:
            throw HDF5Error.readFailed(
                file: fileName, object: path,
                reason: "its data lies outside the file's allocated space: the file is corrupt")
        default: throw HDF5Error.readFailed(file: fileName, object: path, reason: HDF5Library.lastError())
        }
    }

    /// Fills `buffer` from the file's descriptor at `offset`.
    private func readDirect(fd: Int32, offset: UInt64, into buffer: UnsafeMutableRawBufferPointer) throws {
        let byteCount = buffer.count
        try checkInsideFile(fd: fd, offset: offset, byteCount: byteCount)
        var done = 0
        while done < byteCount {
            // Linux transfers at most ~2 GiB per call; a short read continues where it stopped.
            let n = pread(fd, buffer.baseAddress! + done, min(byteCount - done, 1 << 30), off_t(offset) + off_t(done))
            if n < 0, errno == EINTR { continue }
            guard n > 0 else {
                let reason = n < 0 ? String(cString: strerror(errno)) : "the file ended early"
                throw HDF5Error.readFailed(
                    file: fileName, object: path, reason: "reading \(byteCount) bytes at offset \(offset): \(reason)")
            }
            done += n
        }
    }

    /// A range past the file's end is an error here (sec2 would return zeros for it without a word, and a
    /// mapping would fault).
    private func checkInsideFile(fd: Int32, offset: UInt64, byteCount: Int) throws {
        var status = stat()
        guard fstat(fd, &status) == 0 else {
            throw HDF5Error.readFailed(file: fileName, object: path, reason: String(cString: strerror(errno)))
        }
        let fileSize = UInt64(max(0, status.st_size))
        guard offset <= fileSize, UInt64(byteCount) <= fileSize - offset, offset <= UInt64(Int64.max) else {
            throw HDF5Error.readFailed(
                file: fileName, object: path,
                reason: "its \(byteCount) bytes at offset \(offset) run past the end of the \(fileSize)-byte file: "
                    + "the file is truncated or corrupt")
        }
    }
}
