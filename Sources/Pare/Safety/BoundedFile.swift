import Foundation

/// Reads byte ranges of a file whose offsets and lengths come from the file itself: a range that
/// leaves the file is an error naming it ("truncated"), checked before anything is allocated.
final class BoundedFile {
    let path: String
    let size: Int
    private let handle: FileHandle

    init(_ path: String) throws {
        guard let handle = FileHandle(forReadingAtPath: path) else { throw PareError(file: path, "cannot be opened") }
        self.path = path
        self.handle = handle
        size = Int((try? handle.seekToEnd()) ?? 0)
    }

    deinit { try? handle.close() }

    func read(_ offset: Int, _ count: Int) throws -> [UInt8] {
        guard offset >= 0, count >= 0, offset <= size, count <= size - offset else {
            throw PareError(file: path, "truncated: needs bytes \(offset)..<\(offset &+ count), the file has \(size)")
        }
        try handle.seek(toOffset: UInt64(offset))
        let data = try handle.read(upToCount: count) ?? Data()
        guard data.count == count else {
            throw PareError(file: path, "truncated while reading bytes \(offset)..<\(offset + count)")
        }
        return [UInt8](data)
    }
}
