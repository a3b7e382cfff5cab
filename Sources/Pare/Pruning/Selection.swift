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
    /// Remove the lowest-ranked channels across layers until the model fits this.
    public var budget: PruneBudget?
    /// With `budget` or `globalRatio`: every narrowed layer keeps a multiple of this many channels.
    public var roundTo: Int?

    public init() {}

    public var isEmpty: Bool {
        keep.isEmpty && ratio.isEmpty && globalRatio == nil && drop.isEmpty && threshold == nil && !dropDead
            && budget == nil
    }

    /// Whether the ranking criterion decides anything (explicit lists and dead channels need none).
    public var usesCriterion: Bool {
        !keep.isEmpty || !ratio.isEmpty || globalRatio != nil || threshold != nil || budget != nil
    }
}

public enum PruneCriterion: String, CaseIterable, Sendable {
    case l1, l2
    case bnGamma = "bn-gamma"
    case meanActivation = "mean-activation"
    case apoz

    public var needsCalibration: Bool { self == .meanActivation || self == .apoz }
}

/// A selection that does not fit the model (exit status 2 in the CLI). `option` names the part of
/// the selection at fault (`keep`, `ratio`, `drop`, `layer`, `steps`, `sparsity`, `layers`), so that a
/// front end can show it as it spells it (`--keep`).
public struct SelectionError: Error, CustomStringConvertible {
    public let option: String?
    public let message: String

    public init(option: String? = nil, _ message: String) {
        self.option = option
        self.message = message
    }

    /// The line with the option spelled by `spell`.
    public func text(spelling spell: (String) -> String) -> String {
        guard let option else { return message }
        return spell(option) + (message.hasPrefix(":") ? "" : " ") + message
    }

    public var description: String { text { $0 } }
}
