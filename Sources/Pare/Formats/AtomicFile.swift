import Foundation

/// Writes a file so that the destination is either untouched or complete: the content goes to a
/// temporary file beside the target, which is renamed over it only after it was written in full.
public enum AtomicFile {
    public static func write(to destination: String, _ body: (String) throws -> Void) throws {
        let url = URL(fileURLWithPath: destination)
        let directory = url.deletingLastPathComponent().path
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: directory, isDirectory: &isDirectory), isDirectory.boolValue else {
            throw PareError(file: destination, "the directory \(directory) does not exist")
        }
        let temporary = directory + "/." + url.lastPathComponent + ".pare-tmp-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        do {
            try body(temporary)
            guard rename(temporary, destination) == 0 else {
                throw PareError(file: destination, "cannot move the finished file into place: \(String(cString: strerror(errno)))")
            }
        } catch {
            unlink(temporary)
            throw PareError.from(error, file: destination)
        }
    }
}
