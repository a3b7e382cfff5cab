import Foundation
import HDF5
import SystemPackage

/// What went wrong, one case per kind of failure. The library's words name no command-line
/// flag: a front end that offers a remedy (the CLI's `--config`, `--max-memory`, …) maps the
/// case to it, as `PareError.description` gives the library's own one-line text.
public enum Problem: Sendable, Equatable {
    /// The file's content is not what its format allows, or contradicts itself or its architecture;
    /// the text names how.
    case invalid(String)
    /// More memory than the budget allows.
    case overMemoryBudget(what: String, needed: Int, budget: Int)
    /// A size that overflows any count: refused before allocating.
    case uncountableSize(what: String)
    /// The operation needs an architecture and the file holds none. `plainTensors`: the file is not a
    /// Keras model at all; `keras3Weights`: a Keras 3 weights file, which an architecture would make one.
    case needsArchitecture(operation: String, plainTensors: Bool, keras3Weights: Bool)
    /// An architecture was supplied for a file that holds its own.
    case holdsOwnArchitecture
    /// An architecture was supplied for plain tensors, which are not Keras weights.
    case plainTensorsTakeNoArchitecture
    /// A value int8 cannot represent.
    case notQuantizable(value: Float, index: Int)
    /// A model input has dimensions the config leaves open, and no input data fixes them.
    case openInputShape(String)

    /// One line in the library's words.
    public var text: String {
        switch self {
        case .invalid(let text): return text
        case .overMemoryBudget(let what, let needed, let budget):
            return "\(what) needs \(MemoryBudget.describe(needed)), over the memory budget of "
                + "\(MemoryBudget.describe(budget)) (physical memory and ulimit unless set lower)"
        case .uncountableSize(let what): return "\(what) needs more bytes than can be counted: refused"
        case .needsArchitecture(let operation, let plainTensors, let keras3Weights):
            if keras3Weights { return "\(operation) needs a model graph; a Keras 3 weights file holds no architecture" }
            if plainTensors { return "\(operation) needs a model graph; it holds plain tensors, not a Keras model" }
            return "\(operation) needs a model graph; this weights-only file has none"
        case .holdsOwnArchitecture:
            return "holds its own architecture: a separate one applies to weights-only files"
        case .plainTensorsTakeNoArchitecture:
            return "holds plain tensors, not Keras weights: an architecture does not apply"
        case .notQuantizable(let value, let index):
            return "holds \(value) at element \(index), which int8 cannot represent"
        case .openInputShape(let shape): return "has unknown dimensions \(shape): give input data"
        }
    }
}

/// A failure on user input: always names the file, the object inside it, and the problem.
public struct PareError: Error, CustomStringConvertible {
    public let file: String
    public let object: String?
    public let reason: Problem

    public init(file: String, object: String? = nil, _ reason: Problem) {
        self.file = file
        self.object = object
        self.reason = reason
    }

    public init(file: String, object: String? = nil, _ problem: String) {
        self.init(file: file, object: object, .invalid(problem))
    }

    /// The problem in the library's words.
    public var problem: String { reason.text }

    /// One line, always: names read from a damaged file can hold newlines or other control characters.
    public var description: String { line(problem) }

    /// The same line with another wording of the problem (a front end's remedy).
    public func line(_ text: String) -> String {
        let place = object.map { !$0.isEmpty ? "\(file): \($0): " : "\(file): " } ?? "\(file): "
        return (place + text).oneLine
    }
}

extension PareError {
    /// Wraps an HDF5 error (which already names file and object) without repeating them.
    static func from(_ error: Error, file: String) -> Error {
        if error is PareError { return error }
        if let h = error as? HDF5Error {
            return PareError(file: file, String(describing: h).replacingPrefix(file + ": "))
        }
        return error
    }
}

/// The operating system's words for a Foundation file error ("File too large"), not Cocoa's
/// "The operation could not be completed".
func systemMessage(_ error: Error) -> String {
    if let errno = error as? Errno { return String(cString: strerror(errno.rawValue)) + " (errno \(errno.rawValue))" }
    let ns = error as NSError
    for candidate in [ns, ns.userInfo[NSUnderlyingErrorKey] as? NSError].compactMap({ $0 })
    where candidate.domain == NSPOSIXErrorDomain {
        return String(cString: strerror(Int32(candidate.code))) + " (errno \(candidate.code))"
    }
    return ns.localizedDescription
}

extension String {
    /// Control characters escaped (`\n`, `\u{1B}` …) so a message stays on one line.
    public var oneLine: String {
        var out = ""
        for scalar in unicodeScalars {
            switch scalar {
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case _ where scalar.value < 0x20 || scalar.value == 0x7F: out += "\\u{\(String(scalar.value, radix: 16))}"
            default: out.unicodeScalars.append(scalar)
            }
        }
        return out
    }

    func replacingPrefix(_ prefix: String, with replacement: String = "") -> String {
        hasPrefix(prefix) ? replacement + dropFirst(prefix.count) : self
    }
}
