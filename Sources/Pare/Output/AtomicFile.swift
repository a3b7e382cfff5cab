import Foundation

/// Writes a file so that the destination is either untouched or complete: the content goes to a
/// temporary file beside the target, which is renamed over it only after it was written in full.
public enum AtomicFile {
    /// Told when a temporary file is created (true) and when it is gone or renamed (false): the command
    /// line removes it if interrupted.
    nonisolated(unsafe) public static var temporaryObserver: ((String, Bool) -> Void)?

    public static func write(to destination: String, _ body: (String) throws -> Void) throws {
        let url = URL(fileURLWithPath: destination)
        let directory = url.deletingLastPathComponent().path
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: directory, isDirectory: &isDirectory), isDirectory.boolValue else {
            throw PareError(file: destination, "the directory \(directory) does not exist")
        }
        // A name may have up to 255 bytes; the temporary one adds about 40, so a long name is cut
        // (at a character boundary) to keep the temporary file creatable.
        var stem = url.lastPathComponent
        while stem.utf8.count > 200 { stem.removeLast() }
        let prefix = "." + stem + ".pare-tmp-"
        removeStale(prefix: prefix, in: directory)
        let temporary = directory + "/" + prefix + "\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        temporaryObserver?(temporary, true)
        defer { temporaryObserver?(temporary, false) }
        do {
            try body(temporary)
            guard rename(temporary, destination) == 0 else {
                throw PareError(
                    file: destination, "cannot move the finished file into place: \(String(cString: strerror(errno)))")
            }
        } catch {
            unlink(temporary)
            // Name the destination the user gave, not the temporary file a writer's library was writing.
            let text = String(describing: error)
            for written in [temporary, temporary + ".weights.h5"] where text.hasPrefix(written + ": ") {
                throw PareError(file: destination, String(text.dropFirst(written.count + 2)))
            }
            throw PareError.from(error, file: destination)
        }
    }

    /// Removes temporary files a killed writer of the same destination left behind (their
    /// process no longer exists); a live writer's file is left alone.
    /// Only names of exactly Pare's form (`<prefix><pid>-<digits>`, or with the `.weights.h5` a
    /// `.keras` writer builds beside it) are candidates, and never a file the command reads: an
    /// input may be named like a temporary file.
    static func removeStale(prefix: String, in directory: String) {
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: directory) else { return }
        for name in names where name.hasPrefix(prefix) {
            var rest = name.dropFirst(prefix.count)
            if rest.hasSuffix(".weights.h5") { rest = rest.dropLast(".weights.h5".count) }
            let parts = rest.split(separator: "-", omittingEmptySubsequences: false)
            guard parts.count == 2, let pid = Int32(parts[0]), pid > 0, UInt32(parts[1]) != nil else { continue }
            let path = directory + "/" + name
            guard !InputFile.isProtected(path) else { continue }
            if kill(pid, 0) != 0 && errno == ESRCH { unlink(path) }
        }
    }
}
