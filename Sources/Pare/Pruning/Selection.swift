/// What to remove, as the user says it.
public struct PruneSelection: Sendable {
    /// Channels to keep per layer.
    public var keep: [String: Int] = [:]
    /// Fraction of channels to remove per layer.
    public var ratio: [String: Double] = [:]
    /// Fraction to remove from every prunable layer.
    public var globalRatio: Double?
    /// Explicit channel indices to remove per layer.
    public var drop: [String: [Int]] = [:]
    /// Remove every prunable channel whose score is below this.
    public var threshold: Double?
    /// Remove channels whose producing weights (kernel slice and bias) are already all zero.
    public var dropDead = false

    public init() {}

    public var isEmpty: Bool {
        keep.isEmpty && ratio.isEmpty && globalRatio == nil && drop.isEmpty && threshold == nil && !dropDead
    }

    /// Whether the ranking criterion decides anything (explicit lists and dead channels need none).
    public var usesCriterion: Bool { !keep.isEmpty || !ratio.isEmpty || globalRatio != nil || threshold != nil }
}

public enum PruneCriterion: String, CaseIterable, Sendable {
    case l1, l2
    case bnGamma = "bn-gamma"
    case meanActivation = "mean-activation"
    case apoz

    public var needsCalibration: Bool { self == .meanActivation || self == .apoz }
}

/// A usage mistake in a selection (exit status 2).
public struct SelectionError: Error, CustomStringConvertible {
    public let message: String
    public var description: String { message }
}

extension PruneSelection {
    /// Parses `name=value,name=value` (or a bare value for `--ratio`/`--threshold`).
    public static func parsePairs(_ text: String, option: String) throws -> [(String, String)] {
        try text.split(separator: ",").map { part in
            let pieces = part.split(separator: "=", maxSplits: 1).map(String.init)
            guard pieces.count == 2, !pieces[0].isEmpty, !pieces[1].isEmpty else {
                throw SelectionError(message: "\(option): expected LAYER=VALUE, got '\(part)'")
            }
            return (pieces[0], pieces[1])
        }
    }

    /// `--drop conv2d_2=3,17,40` (indices after the first `=` until the next `LAYER=`).
    public static func parseDrop(_ text: String) throws -> [String: [Int]] {
        var result: [String: [Int]] = [:]
        var current: String?
        for part in text.split(separator: ",").map(String.init) {
            var value = part
            if let eq = part.firstIndex(of: "=") {
                current = String(part[..<eq])
                value = String(part[part.index(after: eq)...])
            }
            guard let layer = current, let index = Int(value), index >= 0 else {
                throw SelectionError(message: "--drop: expected LAYER=I,J,K with channel indices, got '\(text)'")
            }
            result[layer, default: []].append(index)
        }
        return result
    }
}
