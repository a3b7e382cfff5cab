import CHDF5
import Foundation

/// Serial libhdf5 is not thread-safe: every call into it goes through `HDF5Library.sync`.
public enum HDF5Library {
    private static let lock = NSRecursiveLock()
    private static let initialized: Bool = {
        _ = shim_open()
        _ = shim_silence_errors()
        _ = shim_disable_plugins()
        return true
    }()

    @discardableResult
    public static func sync<T>(_ body: () throws -> T) rethrows -> T {
        lock.lock()
        defer { lock.unlock() }
        precondition(initialized)
        return try body()
    }

    /// Opens objects without following external links and with a bounded chain of soft links.
    static let linkAccess: hid_t = sync { shim_safe_lapl() }

    /// The most specific message on HDF5's error stack, which is cleared afterwards.
    static func lastError() -> String {
        var buffer = [CChar](repeating: 0, count: 512)
        shim_last_error(&buffer, buffer.count)
        var message = String(cString: buffer)
        // The sec2 driver's write/read errors carry a long record (time, descriptor, buffer address…);
        // keep what a user can act on: the system's message.
        if let range = message.range(of: "error message = '"),
            let end = message[range.upperBound...].firstIndex(of: "'")
        {
            let errno =
                message.range(of: "errno = ").map { String(message[$0.upperBound...].prefix { $0.isNumber }) } ?? ""
            let head = message.components(separatedBy: ":").first ?? ""
            message = head + ": " + String(message[range.upperBound..<end]) + (errno.isEmpty ? "" : " (errno \(errno))")
        }
        message = message.replacingOccurrences(of: "\n", with: " ")
        return message.isEmpty ? "unknown HDF5 error" : message
    }
}
