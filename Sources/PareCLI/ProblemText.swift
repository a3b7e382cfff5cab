import Foundation
import Pare

/// The CLI's wording of a library problem: where the remedy is an option of this command line,
/// the message names it (the library's own text names none).
func commandLineText(_ problem: Problem) -> String {
    let fromFile = "pass --config with its config.json, .keras or full-model .h5"
    switch problem {
    case .overMemoryBudget(let what, let needed, let budget):
        return "\(what) needs \(MemoryBudget.describe(needed)), over the memory budget of "
            + "\(MemoryBudget.describe(budget)) (set with --max-memory; default: physical memory and ulimit)"
    case .needsArchitecture(_, let plainTensors, let keras3Weights) where keras3Weights || !plainTensors:
        return problem.text + ": " + fromFile
    case .holdsOwnArchitecture: return "holds its own architecture: --config applies to weights-only files"
    case .plainTensorsTakeNoArchitecture: return "holds plain tensors, not Keras weights: --config does not apply"
    case .notQuantizable: return problem.text + ": pack without --int8"
    case .openInputShape(let shape): return "has unknown dimensions \(shape); pass --input"
    default: return problem.text
    }
}

extension PareError {
    /// The one line the CLI prints.
    var commandLineDescription: String { line(commandLineText(reason)) }
}

extension SelectionError {
    /// The line with the selection's part spelled as the option that sets it (`keep` → `--keep`).
    var commandLineDescription: String {
        text { name in
            "--"
                + name.unicodeScalars.map {
                    CharacterSet.uppercaseLetters.contains($0) ? "-" + String($0).lowercased() : String($0)
                }
                .joined()
        }.oneLine
    }
}
