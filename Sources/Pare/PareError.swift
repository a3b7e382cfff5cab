import Foundation
import HDF5

/// A failure on user input: always names the file, the object inside it, and the problem.
public struct PareError: Error, CustomStringConvertible {
    public let file: String
    public let object: String?
    public let problem: String

    public init(file: String, object: String? = nil, _ problem: String) {
        self.file = file
        self.object = object
        self.problem = problem
    }

    /// One line, always: names read from a damaged file can hold newlines or other control characters.
    public var description: String {
        let text =
            object.map { !$0.isEmpty ? "\(file): \($0): \(problem)" : "\(file): \(problem)" } ?? "\(file): \(problem)"
        return text.oneLine
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
