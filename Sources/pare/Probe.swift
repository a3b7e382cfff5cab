import ArgumentParser
import Foundation
import Pare

/// `pare probe FILE` (hidden): walks an HDF5 file's metadata. Run as a child process before a
/// command reads an HDF5 input, so that libhdf5 crashing on corrupt metadata ends the child,
/// not the command: the command then reports the file as corrupt, exit 1.
struct Probe: ParsableCommand {
    static let configuration = CommandConfiguration(shouldDisplay: false)
    @Argument var input: String

    func run() throws {
        try runReportingErrors { try ModelFile.probeHDF5(input) }
    }

    /// Probes `path` in a child process; throws a PareError if it is corrupt or crashes libhdf5.
    static func isolate(_ path: String) throws {
        guard FileManager.default.isReadableFile(atPath: path),
              let head = try? FileHandle(forReadingFrom: URL(fileURLWithPath: path)).read(upToCount: 8), head.count == 8,
              !PareFile.looksLikePare(head), !head.starts(with: [0x93] + Array("NUMPY".utf8)) else { return }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/proc/self/exe")
        process.arguments = ["probe", path]
        var environment = ProcessInfo.processInfo.environment
        environment["SWIFT_BACKTRACE"] = "enable=no"  // a crash here is expected, not worth a backtrace
        process.environment = environment
        let err = Pipe()
        process.standardError = err
        process.standardOutput = FileHandle.nullDevice
        try process.run()
        let stderr = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        if process.terminationReason == .uncaughtSignal {
            throw PareError(file: path, "libhdf5 crashed reading its metadata (signal \(process.terminationStatus)): the file is corrupt")
        }
        guard process.terminationStatus == 0 else {
            let line = stderr.split(separator: "\n").first.map(String.init) ?? ""
            let message = line.replacingOccurrences(of: "pare: error: ", with: "")
            let problem = message.hasPrefix(path + ": ") ? String(message.dropFirst(path.count + 2)) : message
            throw PareError(file: path, problem.isEmpty ? "cannot be read (status \(process.terminationStatus))" : problem)
        }
    }
}
