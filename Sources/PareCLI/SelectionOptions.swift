import ArgumentParser
import Foundation
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
    @Option(
        name: .long, parsing: .unconditional,
        help: "Remove channels ranked across layers until the model has at most N (or P%) parameters.")
    var targetParams: String?
    @Option(
        name: .long, parsing: .unconditional, help: "The same budget in multiply-accumulates per example: N or P%.")
    var targetMacs: String?
    @Option(
        name: .long, parsing: .unconditional,
        help: """
            The same budget in bytes of the output file, estimated as the weights at their dtypes plus the input \
            file's other bytes (the written size is printed): N or P%.
            """)
    var targetSize: String?
    @Option(
        name: .long,
        help: """
            How a --target-* budget is shared among layers: normalized (scores divided by their layer's mean, \
            one ranking; default) or sensitivity (each layer's output error per unit saved, measured).
            """)
    var allocation: String?
    @Option(
        name: .long, parsing: .unconditional,
        help: "With --target-* or a global --ratio: every narrowed layer keeps a multiple of N channels.")
    var roundTo: Int?

    /// The allocation given, or the default; one message for a name that is none.
    func parsedAllocation() throws -> PruneBudget.Allocation {
        guard let parsed = PruneBudget.Allocation(rawValue: allocation ?? "normalized") else {
            throw ValidationError(
                "--allocation must be one of "
                    + PruneBudget.Allocation.allCases.map(\.rawValue).joined(separator: ", "))
        }
        return parsed
    }

    func validate() throws {
        if allocation != nil {
            _ = try parsedAllocation()
            // Given without a budget, even the default would be a silent no-op: the user meant something.
            guard targetParams != nil || targetMacs != nil || targetSize != nil else {
                throw ValidationError("--allocation applies to a --target-params/--target-macs/--target-size budget")
            }
        }
        if let empty = calibration.first(where: \.isEmpty) {
            throw ValidationError("--calibration '\(empty)': an empty path")
        }
        guard PruneCriterion(rawValue: criterion) != nil else {
            throw ValidationError(
                "--criterion must be one of \(PruneCriterion.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        _ = try selection()
    }

    var parsedCriterion: PruneCriterion { PruneCriterion(rawValue: criterion) ?? .l1 }

    /// The one `--target-*` budget given, if any. A size target counts weight bytes: a percentage is of
    /// the input file's size (`fileSize`), and the file's other bytes (`fileOverhead`, known once the
    /// model is read) are taken off the byte count.
    func budget(fileSize: Int = 0, fileOverhead: Int = 0, file: String = "") throws -> PruneBudget? {
        let given = [
            (targetParams, PruneBudget.Measure.parameters, "--target-params"), (targetMacs, .macs, "--target-macs"),
            (targetSize, .bytes, "--target-size"),
        ].compactMap { text, measure, option in text.map { ($0, measure, option) } }
        guard let (text, measure, option) = given.first else { return nil }
        guard given.count == 1 else {
            throw ValidationError("give one budget: \(given.map(\.2).joined(separator: ", ")) exclude each other")
        }
        guard var amount = PruneBudget.amount(text) else {
            throw ValidationError(
                "\(option) \(text): expected a positive whole number N or a percentage P% in (0, 100]")
        }
        let allocation = try parsedAllocation()
        if measure == .bytes, case .fraction(let f) = amount, fileSize > 0 {
            amount = .count(Int((f * Double(fileSize)).rounded(.down)))
        }
        if measure == .bytes, case .count(let n) = amount {
            guard n > fileOverhead else {
                throw PareError(
                    file: file,
                    "\(option) \(text) (\(n) bytes): the file's headers and configuration alone take "
                        + "\(fileOverhead) bytes")
            }
            amount = .count(n - fileOverhead)
        }
        return PruneBudget(measure, amount, allocation: allocation)
    }

    /// The selection for `model`, read from `file`: a `--target-size` counts the weights at their dtypes
    /// plus the file's other bytes (headers, configuration), and its percentage is of that whole — the
    /// file's size, or more where the file is smaller than its weights (compressed, or a packed .pare).
    /// `prune` and `mask` take the same channels from it.
    func selection(for model: Model, file: String) throws -> PruneSelection {
        var s = try selection()
        if targetSize != nil {
            let overhead = max(Self.fileSize(file) - model.weightBytes, 0)
            s.budget = try budget(fileSize: model.weightBytes + overhead, fileOverhead: overhead, file: file)
        }
        return s
    }

    /// A file's size in bytes (0 when it cannot be read: the reader reports that).
    static func fileSize(_ path: String) -> Int {
        (try? FileManager.default.attributesOfItem(atPath: path)[.size] as? Int) ?? 0
    }

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
        s.budget = try budget()
        if let roundTo {
            guard roundTo >= 1 else { throw ValidationError("--round-to \(roundTo): must be at least 1") }
            guard s.budget != nil || s.globalRatio != nil else {
                throw ValidationError("--round-to applies to --target-params/--target-macs/--target-size or --ratio R")
            }
            s.roundTo = roundTo
        }
        if s.budget != nil, !s.keep.isEmpty || !s.ratio.isEmpty || s.globalRatio != nil || s.threshold != nil {
            throw ValidationError(
                "a --target-* budget decides each layer's share: give no --keep, --ratio, --threshold")
        }
        if s.isEmpty {
            throw ValidationError(
                "nothing selected: give --keep, --ratio, --drop, --threshold, --drop-dead or a --target-* budget")
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
