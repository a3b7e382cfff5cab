import ArgumentParser
import CProcess
import Foundation
import HDF5
import Pare

@main
struct PareCommand: ParsableCommand {
    /// Usage errors exit with status 2 (argument-parser's default is 64); input errors with 1.
    static func main() {
        // Keep freed blocks below 64 MiB in the heap instead of returning them to the kernel: the
        // interpreter frees and reallocates activations of the same sizes every layer, and fresh pages
        // cost a page fault each (about a third of a residual CNN's run time here, see tools/bench).
        // Larger blocks (a streamed model's weight tensors) are unmapped when freed (CProcess/process.c).
        pare_keep_freed_memory()
        // Past a file-size limit (ulimit -f) a write should fail with EFBIG and be reported, not kill the process.
        signal(SIGXFSZ, SIG_IGN)
        // Temporary copies of large .keras weights are removed on exit, on error, and if interrupted.
        pare_remove_on_signal_install()
        KerasArchive.temporaryCopyObserver = { path, exists in
            if exists { _ = pare_remove_on_signal_add(path) } else { pare_remove_on_signal_forget(path) }
        }
        AtomicFile.temporaryObserver = KerasArchive.temporaryCopyObserver
        do {
            var command = try parseAsRoot()
            try command.run()
        } catch {
            let code = exitCode(for: error)
            if code == .validationFailure {
                // One line, like every other error; --help has the usage.
                let text = message(for: error).split(separator: "\n").first.map(String.init) ?? "invalid arguments"
                let bare = text.hasPrefix("Error: ") ? String(text.dropFirst(7)) : text
                FileHandle.standardError.write(Data("pare: error: \(bare.oneLine) (see 'pare help')\n".utf8))
                Foundation.exit(2)
            }
            // After a failed write libhdf5 may still hold the (deleted) temporary file and crash
            // flushing it in its exit handler; the output is already discarded, so skip the handlers.
            let message = fullMessage(for: error)
            if !message.isEmpty { FileHandle.standardError.write(Data((message + "\n").utf8)) }
            KerasArchive.discardAllStaged()
            fflush(stdout)
            _exit(exitCode(for: error).rawValue)
        }
    }

    static let configuration = CommandConfiguration(
        commandName: "pare",
        abstract: "Shrink trained neural-network checkpoints and prove the smaller file still computes what it should.",
        version: "0.1.0",
        subcommands: [
            Inspect.self, Convert.self, Run.self, Verify.self, Eval.self, Prune.self, Mask.self, Sensitivity.self,
            Report.self, Pack.self, Unpack.self, Check.self, Sparsify.self, Probe.self,
        ]
    )
}

/// Runs a command body, printing input errors as one line on stderr with exit status 1.
func runReportingErrors(_ body: () throws -> Void) throws {
    do {
        try body()
    } catch let error as PareError {
        FileHandle.standardError.write(Data("pare: error: \(error.commandLineDescription)\n".utf8))
        throw ExitCode(1)
    } catch let error as HDF5Error {
        // Normally wrapped as PareError by the library; never let one escape unformatted.
        FileHandle.standardError.write(Data("pare: error: \(String(describing: error).oneLine)\n".utf8))
        throw ExitCode(1)
    } catch let error as OutputConflict {
        FileHandle.standardError.write(Data("pare: error: \(error.description.oneLine)\n".utf8))
        throw ExitCode(2)
    } catch let error as SelectionError {
        FileHandle.standardError.write(Data("pare: error: \(error.commandLineDescription)\n".utf8))
        throw ExitCode(2)
    }
}
