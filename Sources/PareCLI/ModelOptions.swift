import ArgumentParser
import CProcess
import Foundation
import Pare

/// Options of every command that reads a model: `--config`, the architecture for files that hold
/// weights only (Keras 3 `.weights.h5`, legacy weights-only `.h5`), and `--max-memory`.
struct ReadOptions: ParsableArguments {
    @Option(
        name: .long,
        help: ArgumentHelp(
            "The architecture of a weights-only input: a config.json, or a .keras / full-model .h5 / .pare of "
                + "the same model.",
            valueName: "file"))
    var config: String?

    @Option(
        name: .long,
        help: ArgumentHelp(
            "The most memory to allocate for what the inputs ask (bytes, or with K, M, G, T); default: physical "
                + "memory, lowered by ulimit.",
            valueName: "size"))
    var maxMemory: String?

    func validate() throws {
        if let maxMemory, MemoryBudget.parseSize(maxMemory) == nil {
            throw ValidationError("--max-memory takes a size such as 512M or 4G, got '\(maxMemory)'")
        }
    }

    /// Runs a command body: first checks its files (inputs must be regular files, outputs must be
    /// none of the inputs; `--config` counts as an input), applies `--max-memory`, and reports
    /// errors as one line on stderr (exit 1, or 2 for a usage error).
    func run(reading inputs: [String?], writing outputs: [String?] = [], _ body: () throws -> Void) throws {
        try runReportingErrors {
            MemoryBudget.setLimit(maxMemory.flatMap(MemoryBudget.parseSize))
            let all = (inputs + [config]).compactMap { $0 }
            try OutputPaths.check(outputs: outputs.compactMap { $0 }, inputs: all)
            for input in all { try InputFile.requireRegular(input) }
            InputFile.protect(all)
            // Plain contiguous weights are read mapped from the page cache (no copy); a truncation of an
            // input by another process meanwhile is reported by the SIGBUS handler as an error, exit 1.
            pare_sigbus_install(all.joined(separator: ", "))
            MappedReads.enabled = true
            do {
                try body()
            } catch let error as PareError where config != nil && error.file != config && !error.file.hasSuffix(".npy")
            {
                // The architecture came from --config: a problem with the model may be that file's.
                throw PareError(
                    file: error.file, object: error.object,
                    commandLineText(error.reason) + " (architecture from \(config!))")
            }
        }
    }

    /// Reads `path`, giving it the `--config` architecture when it has none of its own; with
    /// `graphFor`, fails clearly when the result has no graph to run.
    func read(_ path: String, graphFor command: String? = nil) throws -> Model {
        let architecture = try architectureJSON()
        try Probe.isolate(path)
        let model = try ModelFile.read(path, architecture: architecture, onlyIfMissing: true)
        printNotes(model.readNotes, output: path)
        if let command { try model.requireArchitecture(for: command) }
        return model
    }

    /// The `--config` architecture, its file probed first like every HDF5 input.
    func architectureJSON() throws -> JSON? {
        guard let config else { return nil }
        try Probe.isolate(config, asConfig: true)
        return try ModelFile.readArchitecture(config)
    }
}

/// Prints what a reader left out of a file, or a writer could not carry over to the destination's format.
func printNotes(_ notes: [String], output file: String) {
    for note in notes { FileHandle.standardError.write(Data("pare: note: \(file): \(note.oneLine)\n".utf8)) }
}

/// `--random N --seed S`: the inputs a command runs on when it is given no input files.
struct RandomInputOptions: ParsableArguments {
    @Option(
        name: .long, parsing: .unconditional,
        help: "Without input files: this many random inputs, uniform in [0, 1).")
    var random: Int = 16
    @Option(name: .long, parsing: .unconditional, help: "Seed of the random inputs.") var seed: UInt64 = 0

    func validate() throws {
        if random < 1 { throw ValidationError("--random must be at least 1") }
    }

    /// How the inputs are named in a report: "16 random inputs (seed 0)".
    var described: String { "\(random) random inputs (seed \(seed))" }
}
