import ArgumentParser
import Pare

/// The channel selection shared by `prune` and `mask`.
struct SelectionOptions: ParsableArguments {
    @Option(name: .long, help: "Channels to keep per layer: LAYER=N[,LAYER=N…] (repeatable).") var keep: [String] = []
    // Unconditional parsing: `--ratio -0.5` is a (wrong) value to explain, not a missing one.
    @Option(
        name: .long, parsing: .unconditionalSingleValue,
        help: "Fraction of channels to remove: R for every prunable layer, or LAYER=R[,…] (repeatable).")
    var ratio: [String] = []
    @Option(name: .long, help: "Channel indices to remove: LAYER=I,J,K (repeatable).") var drop: [String] = []
    @Option(
        name: .long, parsing: .unconditional, help: "Remove every prunable channel whose criterion score is below this."
    )
    var threshold: Double?
    @Flag(name: .long, help: "Remove channels whose kernel slice and bias are already exactly zero.") var dropDead =
        false
    @Option(name: .long, help: "Ranking: l1, l2, bn-gamma, mean-activation, apoz (default l1).") var criterion: String =
        "l1"
    @Option(name: .long, help: "Calibration inputs (.npy, one per model input) for mean-activation and apoz.")
    var calibration: [String] = []

    func validate() throws {
        guard PruneCriterion(rawValue: criterion) != nil else {
            throw ValidationError(
                "--criterion must be one of \(PruneCriterion.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        _ = try selection()
    }

    var parsedCriterion: PruneCriterion { PruneCriterion(rawValue: criterion) ?? .l1 }

    func selection() throws -> PruneSelection {
        var s = PruneSelection()
        do {
            for text in keep {
                for (layer, value) in try Self.parsePairs(text, option: "--keep") {
                    guard let n = Int(value) else {
                        throw ValidationError("--keep \(layer)=\(value): not a whole number")
                    }
                    s.keep[layer] = n
                }
            }
            for text in ratio {
                if let r = Double(text) {
                    s.globalRatio = r
                    continue
                }
                for (layer, value) in try Self.parsePairs(text, option: "--ratio") {
                    guard let r = Double(value) else {
                        throw ValidationError("--ratio \(layer)=\(value): not a number")
                    }
                    s.ratio[layer] = r
                }
            }
            for text in drop { s.drop.merge(try Self.parseDrop(text)) { $0 + $1 } }
        }
        if let threshold, !threshold.isFinite {
            throw ValidationError("--threshold \(threshold): must be a finite number")
        }
        s.threshold = threshold
        s.dropDead = dropDead
        if s.isEmpty {
            throw ValidationError("nothing selected: give --keep, --ratio, --drop, --threshold or --drop-dead")
        }
        if parsedCriterion.needsCalibration, s.usesCriterion, calibration.isEmpty {
            throw ValidationError("--criterion \(criterion) needs --calibration inputs")
        }
        return s
    }
}

extension SelectionOptions {
    /// Parses `name=value,name=value` (or a bare value for `--ratio`/`--threshold`).
    static func parsePairs(_ text: String, option: String) throws -> [(String, String)] {
        try text.split(separator: ",").map { part in
            let pieces = part.split(separator: "=", maxSplits: 1).map(String.init)
            guard pieces.count == 2, !pieces[0].isEmpty, !pieces[1].isEmpty else {
                throw ValidationError("\(option): expected LAYER=VALUE, got '\(part)'")
            }
            return (pieces[0], pieces[1])
        }
    }

    /// `--drop conv2d_2=3,17,40` (indices after the first `=` until the next `LAYER=`).
    static func parseDrop(_ text: String) throws -> [String: [Int]] {
        var result: [String: [Int]] = [:]
        var current: String?
        for part in text.split(separator: ",").map(String.init) {
            var value = part
            if let eq = part.firstIndex(of: "=") {
                current = String(part[..<eq])
                value = String(part[part.index(after: eq)...])
            }
            guard let layer = current, let index = Int(value), index >= 0 else {
                throw ValidationError("--drop: expected LAYER=I,J,K with channel indices, got '\(text)'")
            }
            result[layer, default: []].append(index)
        }
        return result
    }
}
