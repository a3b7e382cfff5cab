import ArgumentParser
import CProcess
import Foundation
import Pare

/// `pare probe FILE` (hidden): walks an HDF5 file's metadata. Run as a child process before a
/// command reads an HDF5 input, so that libhdf5 crashing on corrupt metadata ends the child,
/// not the command: the command then reports the file as corrupt, exit 1. The child dies with
/// its parent, and the parent stops it at a time and a memory limit, reported as such.
struct Probe: ParsableCommand {
    static let configuration = CommandConfiguration(shouldDisplay: false)
    @Option(name: .long, help: "The process that started this probe; the probe ends when it does.") var parent: Int32?
    @Option(name: .long, help: "The parent's memory budget in bytes.") var maxMemory: Int?
    @Option(name: .long, help: "The parent's temporary copy of a .keras archive's weights.")
    var stagedWeights: String?
    @Argument var input: String

    /// Wall-clock seconds a probe may take (a 256 MB model takes 0.04 s).
    static let timeLimit: Double = 30
    /// Resident memory a probe may use: metadata only, so far more than any real file needs.
    static let memoryLimit = 2 << 30

    func run() throws {
        MemoryBudget.setLimit(maxMemory)
        if let parent {
            guard pare_die_with_parent(parent) == 0 else { throw ExitCode(3) }
            // A backstop should the parent's watch miss a sudden allocation: address space well above its limit.
            let backstop = rlim_t(Self.memoryLimit) * 4 + rlim_t(MemoryBudget.limit)
            var limit = rlimit(rlim_cur: backstop, rlim_max: backstop)
            setrlimit(__rlimit_resource_t(RLIMIT_AS.rawValue), &limit)
        }
        try runReportingErrors {
            if let stagedWeights { KerasArchive.adoptStaged(path: input, copy: stagedWeights) }
            try ModelFile.probeHDF5(input)
        }
    }

    /// Probes `path` in a child process; throws a PareError if it is corrupt, crashes libhdf5, or
    /// goes past the time or memory limit. Files that are not HDF5 or zip (.pare, NPY, JSON) are not probed.
    /// The rule is the reader's own: whatever ModelFile would hand to libhdf5 is probed. Only a
    /// `.pare` (by its magic) and, for `--config`, a JSON text are never read by libhdf5; any other
    /// file may be HDF5 behind a user block (found at 512, 1024, … bytes), whatever its first bytes.
    static func isolate(_ path: String, asConfig: Bool = false) throws {
        try InputFile.requireRegular(path)
        guard let handle = FileHandle(forReadingAtPath: path) else { return }
        let head = (try? handle.read(upToCount: 64)) ?? Data()
        try? handle.close()
        if PareFile.looksLikePare(head) || head.count < 8 { return }
        if asConfig, ModelFile.looksLikeJSON(head) { return }
        // An archive's weights are inflated into memory to be walked: they count against the budget
        // (refused here, before a child spends time inflating them) and raise the probe's limit. Large
        // ones are copied to a temporary file here, once, which the child walks and the command then reads.
        var weights = KerasArchive.looksLikeZip(head) ? KerasArchive.declaredWeightsSize(path: path) ?? 0 : 0
        var arguments = ["probe", "--parent", "\(getpid())", "--max-memory", "\(MemoryBudget.limit)"]
        if weights > 0, let copy = try KerasArchive.stagedWeights(path: path) {
            arguments += ["--staged-weights", copy]
            weights = 0
        }
        var walked = false
        defer { if !walked { KerasArchive.discardStaged(path: path) } }
        try MemoryBudget.require(weights, for: "the archive's \(KerasArchive.weightsName)", file: path)
        let memoryLimit = Self.memoryLimit + 2 * weights
        let outcome = try ChildProcess.run(arguments + [path], timeLimit: timeLimit, memoryLimit: memoryLimit)
        switch outcome.ending {
        case .timedOut:
            throw PareError(
                file: path,
                "walking its HDF5 metadata took longer than \(Int(timeLimit)) s: refused (a file built to be slow?)")
        case .overMemory:
            throw PareError(
                file: path,
                "walking its HDF5 metadata needed more than \(memoryLimit >> 20) MiB: refused (a file built to "
                    + "exhaust memory?)"
            )
        case .signaled(let signal):
            throw PareError(file: path, "libhdf5 crashed reading its metadata (signal \(signal)): the file is corrupt")
        case .exited(0):
            walked = true
        case .exited(let status):
            let line = outcome.stderr.split(separator: "\n").first.map(String.init) ?? ""
            let message = line.replacingOccurrences(of: "pare: error: ", with: "")
            let problem = message.hasPrefix(path + ": ") ? String(message.dropFirst(path.count + 2)) : message
            throw PareError(file: path, problem.isEmpty ? "cannot be read (status \(status))" : problem)
        }
    }
}
