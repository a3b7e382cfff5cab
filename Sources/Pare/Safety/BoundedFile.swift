import Foundation
import SystemPackage

/// Reads byte ranges of a file whose offsets and lengths come from the file itself: a range that
/// leaves the file is an error naming it ("truncated"), checked before anything is allocated.
/// Each range is one positioned read straight into the returned array (no intermediate `Data`,
/// no seek, no 4 KiB read loop as `FileHandle.read(upToCount:)` does on Linux).
final class BoundedFile {
    let path: String
    let size: Int
    private let descriptor: FileDescriptor

    init(_ path: String) throws {
        do {
            descriptor = try FileDescriptor.open(FilePath(path), .readOnly, options: [.closeOnExec])
        } catch {
            throw PareError(file: path, "cannot be opened: \(systemMessage(error))")
        }
        self.path = path
        var status = stat()
        size = fstat(descriptor.rawValue, &status) == 0 ? Int(status.st_size) : 0
    }

    deinit { try? descriptor.close() }

    func read(_ offset: Int, _ count: Int) throws -> [UInt8] {
        guard offset >= 0, count >= 0, offset <= size, count <= size - offset else {
            throw PareError(file: path, "truncated: needs bytes \(offset)..<\(offset &+ count), the file has \(size)")
        }
        var failure: Error?
        let bytes = [UInt8](unsafeUninitializedCapacity: count) { buffer, initialized in
            var done = 0
            while done < count {
                let rest = UnsafeMutableRawBufferPointer(UnsafeMutableBufferPointer(rebasing: buffer[done...]))
                let n: Int
                do { n = try descriptor.read(fromAbsoluteOffset: Int64(offset + done), into: rest) } catch {
                    failure = error
                    break
                }
                if n == 0 { break }
                done += n
            }
            initialized = done
        }
        if let failure {
            throw PareError(file: path, "reading bytes \(offset)..<\(offset + count): \(systemMessage(failure))")
        }
        guard bytes.count == count else {
            throw PareError(file: path, "truncated while reading bytes \(offset)..<\(offset + count)")
        }
        return bytes
    }
}
