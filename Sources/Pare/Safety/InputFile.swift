import Foundation

/// What Pare checks of a path before it opens it for reading.
public enum InputFile {
    /// Refuses anything but a regular file (after following links) before it is opened: a FIFO
    /// blocks the reader forever, a device reads without end, a directory is no model.
    public static func requireRegular(_ path: String) throws {
        var status = stat()
        guard stat(path, &status) == 0 else {
            throw PareError(file: path, errno == ENOENT ? "no such file" : String(cString: strerror(errno)))
        }
        let kind = status.st_mode & S_IFMT
        guard kind == S_IFREG else {
            throw PareError(file: path, "is \(describe(kind)), not a regular file: Pare reads only regular files")
        }
    }

    private static let lock = NSLock()
    nonisolated(unsafe) private static var protected: [FileID] = []

    /// Marks files the command reads: nothing Pare removes (a stale temporary) may be one of them.
    public static func protect(_ paths: [String]) {
        let ids = paths.compactMap { FileID(path: $0, followLinks: true) }
        lock.withLock { protected += ids }
    }

    static func isProtected(_ path: String) -> Bool {
        guard let id = FileID(path: path, followLinks: true) else { return false }
        return lock.withLock { protected.contains(id) }
    }

    static func describe(_ kind: mode_t) -> String {
        switch kind {
        case S_IFDIR: return "a directory"
        case S_IFIFO: return "a FIFO (named pipe)"
        case S_IFCHR: return "a character device"
        case S_IFBLK: return "a block device"
        case S_IFSOCK: return "a socket"
        default: return "not a regular file"
        }
    }
}

/// A command's outputs may not be any of its inputs, nor each other, nor anything but a regular
/// file: caught before anything is read, as a usage error (exit status 2).
public struct OutputConflict: Error, CustomStringConvertible {
    public let description: String
}

public enum OutputPaths {
    /// Compares every output with every input by device and inode, links resolved (so `./m.h5`,
    /// `dir//m.h5`, an absolute path, a symbolic or hard link to an input are all the input), and
    /// refuses an existing output that is a FIFO, device, socket or directory. An output that is a
    /// symbolic link to some other regular file is replaced by the new file: the link goes, the file
    /// it pointed to is left as it was (the result is written beside the link and renamed over it).
    public static func check(outputs: [String], inputs: [String]) throws {
        var inputIDs: [(id: FileID, path: String)] = []
        for input in inputs { if let id = FileID(path: input, followLinks: true) { inputIDs.append((id, input)) } }
        var seen: [String: String] = [:]
        for output in outputs {
            if let target = FileID(path: output, followLinks: true) {
                if let input = inputIDs.first(where: { $0.id == target }) {
                    let same = input.path == output ? "" : " (\(input.path))"
                    throw OutputConflict(
                        description:
                            "\(output): is the input\(same); Pare never overwrites an input: choose another output")
                }
                guard target.kind == S_IFREG else {
                    throw OutputConflict(
                        description:
                            "\(output): exists and is \(InputFile.describe(target.kind)); Pare writes only "
                            + "regular files"
                    )
                }
            } else if let link = FileID(path: output, followLinks: false), link.kind == S_IFLNK {
                // A dangling link: the new file replaces the link.
            }
            let key = canonical(output)
            if let earlier = seen[key] {
                throw OutputConflict(
                    description:
                        "\(output): names the same file as the output \(earlier); give each output its own path")
            }
            seen[key] = output
        }
    }

    /// The path with its directory resolved (the file itself need not exist).
    static func canonical(_ path: String) -> String {
        let url = URL(fileURLWithPath: path)
        let directory = url.deletingLastPathComponent().resolvingSymlinksInPath().standardized.path
        return directory + "/" + url.lastPathComponent
    }
}

/// A file's identity: device and inode, and its kind.
struct FileID: Equatable {
    let device: UInt64
    let inode: UInt64
    let kind: mode_t

    init?(path: String, followLinks: Bool) {
        var status = stat()
        let result = followLinks ? stat(path, &status) : lstat(path, &status)
        guard result == 0 else { return nil }
        device = UInt64(status.st_dev)
        inode = UInt64(status.st_ino)
        kind = status.st_mode & S_IFMT
    }

    static func == (a: FileID, b: FileID) -> Bool { a.device == b.device && a.inode == b.inode }
}
