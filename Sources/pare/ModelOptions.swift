import ArgumentParser
import Foundation
import Pare

/// `--config`: the architecture for files that hold weights only (Keras 3 `.weights.h5`, legacy
/// weights-only `.h5`), shared by every command that reads a model.
struct ArchitectureOption: ParsableArguments {
    @Option(name: .long, help: ArgumentHelp(
        "The architecture of a weights-only input: a config.json, or a .keras / full-model .h5 / .pare of the same model.",
        valueName: "file"))
    var config: String?

    /// Reads `path`, giving it the `--config` architecture when it has none of its own; with
    /// `graphFor`, fails clearly when the result has no graph to run.
    func read(_ path: String, graphFor command: String? = nil) throws -> Model {
        let architecture = try architectureJSON()
        try Probe.isolate(path)
        let model = try ModelFile.read(path, architecture: architecture, onlyIfMissing: true)
        if let command { try model.requireArchitecture(for: command) }
        return model
    }
}

extension ArchitectureOption {
    /// The `--config` architecture, its file probed first like every HDF5 input.
    func architectureJSON() throws -> JSON? {
        guard let config else { return nil }
        try Probe.isolate(config)
        return try ModelFile.readArchitecture(config)
    }
}

/// Prints what a writer could not carry over to the destination's format.
func printNotes(_ notes: [String], output: String) {
    for note in notes { FileHandle.standardError.write(Data("pare: note: \(output): \(note)\n".utf8)) }
}
