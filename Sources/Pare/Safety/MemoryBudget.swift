import Foundation

/// The most memory one command may ask for on behalf of its input. Every allocation whose size
/// comes from a file or an option (a tensor, a decoded stream, an NPY array, a batch of
/// activations) is checked against it first, so a file that claims a terabyte gets a message
/// giving the size instead of aborting the process on a failed allocation.
///
/// Default: the machine's physical memory, lowered by the process's own limits (`ulimit -v`,
/// `ulimit -d`) less what it already uses; `--max-memory` lowers it further.
public enum MemoryBudget {
    private static let lock = NSLock()
    nonisolated(unsafe) private static var explicitLimit: Int?

    /// Sets the limit from `--max-memory` (bytes); nil restores the default.
    public static func setLimit(_ bytes: Int?) { lock.withLock { explicitLimit = bytes } }

    /// The budget in bytes now.
    public static var limit: Int {
        let physical = Int(clamping: UInt64(sysconf(Int32(_SC_PHYS_PAGES))) &* UInt64(sysconf(Int32(_SC_PAGESIZE))))
        var result = physical > 0 ? physical : Int.max
        for resource in [RLIMIT_AS, RLIMIT_DATA] {
            var limit = rlimit()
            #if os(Linux)
                let got = getrlimit(__rlimit_resource_t(resource.rawValue), &limit)
            #else
                let got = getrlimit(resource, &limit)
            #endif
            if got == 0, limit.rlim_cur != rlim_t.max {  // RLIM_INFINITY
                result = min(result, max(0, Int(clamping: limit.rlim_cur) - addressSpaceInUse()))
            }
        }
        return lock.withLock { explicitLimit.map { min($0, result) } ?? result }
    }

    /// Throws unless `bytes` (nil: a size that overflowed) fits the budget. `what` says what the
    /// memory is for, in the words of the message ("tensor of shape [..]").
    public static func require(_ bytes: Int?, for what: String, file: String, object: String? = nil) throws {
        let budget = limit
        guard let bytes else { throw PareError(file: file, object: object, .uncountableSize(what: what)) }
        guard bytes <= budget else {
            throw PareError(file: file, object: object, .overMemoryBudget(what: what, needed: bytes, budget: budget))
        }
    }

    /// Bytes in a readable unit: "1.0 TiB (1099511627776 bytes)".
    public static func describe(_ bytes: Int) -> String {
        let units = ["bytes", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"]
        var value = Double(bytes)
        var unit = 0
        while value >= 1024, unit < units.count - 1 {
            value /= 1024
            unit += 1
        }
        return unit == 0 ? "\(bytes) bytes" : String(format: "%.1f %@ (%lld bytes)", value, units[unit], Int64(bytes))
    }

    /// Parses a size as `--max-memory` takes it: bytes, or a number with K, M, G or T (powers of 1024).
    public static func parseSize(_ text: String) -> Int? {
        let trimmed = text.trimmingCharacters(in: .whitespaces).uppercased().replacingOccurrences(of: "IB", with: "")
            .replacingOccurrences(of: "B", with: "")
        let shifts: [Character: Int] = ["K": 10, "M": 20, "G": 30, "T": 40]
        var digits = Substring(trimmed)
        var shift = 0
        if let last = digits.last, let s = shifts[last] {
            shift = s
            digits = digits.dropLast()
        }
        guard let value = Double(digits), value.isFinite, value > 0 else { return nil }
        let bytes = value * pow(2, Double(shift))
        guard bytes < 9.0e18 else { return nil }
        return Int(bytes)
    }

    /// Virtual memory the process maps now (what `ulimit -v` counts), from /proc/self/statm.
    private static func addressSpaceInUse() -> Int {
        guard let text = try? String(contentsOfFile: "/proc/self/statm", encoding: .utf8),
            let pages = text.split(separator: " ").first.flatMap({ Int($0) })
        else { return 0 }
        return pages * Int(sysconf(Int32(_SC_PAGESIZE)))
    }
}
