import ArgumentParser
import Foundation
import Pare

@main
struct PareCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "pare",
        abstract: "Shrink trained neural-network checkpoints and prove the smaller file still computes what it should.",
        version: "0.1.0",
        subcommands: [Inspect.self, Convert.self]
    )
}

/// Runs a command body, printing input errors as one line on stderr with exit status 1.
func runReportingErrors(_ body: () throws -> Void) throws {
    do {
        try body()
    } catch let error as PareError {
        FileHandle.standardError.write(Data("pare: error: \(error)\n".utf8))
        throw ExitCode(1)
    }
}
