import CHDF5
import Foundation

/// An open HDF5 file. Objects opened from it keep it alive.
public final class HDF5File {
    let id: hid_t
    public let path: String
    /// Keeps a file image alive while HDF5 reads from it (files opened from memory).
    private let image: UnsafeMutableRawPointer?

    private init(id: hid_t, path: String, image: UnsafeMutableRawPointer? = nil) {
        self.id = id
        self.path = path
        self.image = image
    }

    private var closed = false

    deinit {
        if !closed { HDF5Library.sync { _ = H5Fclose(id) } }
        image?.deallocate()
    }

    /// Flushes and closes the file now; objects still open keep HDF5's handle alive until released.
    public func close() throws {
        try HDF5Library.sync {
            guard !closed else { return }
            closed = true
            guard H5Fclose(id) >= 0 else {
                throw HDF5Error.writeFailed(file: path, object: "/", reason: HDF5Library.lastError())
            }
        }
    }

    /// Opens an existing file read-only; `name`, if given, names it in messages instead of `path`.
    public static func open(_ path: String, writable: Bool = false, name: String? = nil) throws -> HDF5File {
        try HDF5Library.sync {
            let label = name ?? path
            var status = stat()
            guard stat(path, &status) == 0 else {
                throw HDF5Error.fileOpenFailed(
                    file: label, reason: errno == ENOENT ? "no such file" : String(cString: strerror(errno)))
            }
            // Opening a FIFO or a device would block or read without end.
            guard status.st_mode & S_IFMT == S_IFREG else {
                throw HDF5Error.fileOpenFailed(file: label, reason: "not a regular file")
            }
            guard H5Fis_hdf5(path) > 0 else {
                shim_clear_errors()
                throw HDF5Error.fileOpenFailed(file: label, reason: "not an HDF5 file")
            }
            let id = H5Fopen(path, writable ? shim_F_ACC_RDWR() : shim_F_ACC_RDONLY(), shim_P_DEFAULT())
            guard id >= 0 else { throw HDF5Error.fileOpenFailed(file: label, reason: HDF5Library.lastError()) }
            return HDF5File(id: id, path: label)
        }
    }

    /// Opens an HDF5 file image held in memory (e.g. `model.weights.h5` inside a `.keras` zip).
    /// `name` is only used in messages.
    public static func open(image bytes: [UInt8], name: String) throws -> HDF5File {
        try HDF5Library.sync {
            let buffer = UnsafeMutableRawPointer.allocate(byteCount: max(1, bytes.count), alignment: 16)
            bytes.withUnsafeBytes {
                if let base = $0.baseAddress { buffer.copyMemory(from: base, byteCount: bytes.count) }
            }
            let fapl = shim_file_image_fapl(buffer, bytes.count)
            guard fapl >= 0 else {
                buffer.deallocate()
                throw HDF5Error.fileOpenFailed(file: name, reason: HDF5Library.lastError())
            }
            defer { H5Pclose(fapl) }
            let id = H5Fopen(name, shim_F_ACC_RDONLY(), fapl)
            guard id >= 0 else {
                buffer.deallocate()
                throw HDF5Error.fileOpenFailed(file: name, reason: HDF5Library.lastError())
            }
            return HDF5File(id: id, path: name, image: buffer)
        }
    }

    /// Creates a new file, replacing any file at `path`.
    public static func create(_ path: String) throws -> HDF5File {
        try HDF5Library.sync {
            let id = H5Fcreate(path, shim_F_ACC_TRUNC(), shim_P_DEFAULT(), shim_P_DEFAULT())
            guard id >= 0 else { throw HDF5Error.fileCreateFailed(file: path, reason: HDF5Library.lastError()) }
            return HDF5File(id: id, path: path)
        }
    }

    public func root() throws -> HDF5Group {
        try HDF5Library.sync {
            let gid = H5Gopen2(id, "/", shim_P_DEFAULT())
            guard gid >= 0 else { throw HDF5Error.readFailed(file: path, object: "/", reason: HDF5Library.lastError()) }
            return HDF5Group(id: gid, file: self, path: "/")
        }
    }

    /// Writes everything buffered to disk; errors (e.g. disk full) surface here.
    public func flush() throws {
        try HDF5Library.sync {
            guard H5Fflush(id, H5F_SCOPE_GLOBAL) >= 0 else {
                throw HDF5Error.writeFailed(file: path, object: "/", reason: HDF5Library.lastError())
            }
        }
    }
}

extension HDF5File: @unchecked Sendable {}
extension HDF5Object: @unchecked Sendable {}
