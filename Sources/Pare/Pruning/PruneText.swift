import Foundation

/// The human-readable reports of `pare prune`.
public enum PruneText {
    static func change(_ a: Int, _ b: Int) -> String {
        a == b
            ? grouped(a)
            : "\(grouped(a)) → \(grouped(b)) "
                + "(\(String(format: "%+.1f%%", a == 0 ? 0 : Double(b - a) / Double(a) * 100)))"
    }

    public static func table(_ r: PruneResult) -> String {
        var rows = [["layer", "class", "channels", "params", "MACs"]]
        for row in r.rows {
            let ch: String
            if let a = row.channelsBefore, let b = row.channelsAfter {
                ch = a == b ? "\(a)" : "\(a) → \(b)"
            } else {
                ch = "?"
            }
            let macs: String
            if let a = row.macsBefore, let b = row.macsAfter { macs = change(a, b) } else { macs = "" }
            rows.append([row.layer, row.className, ch, change(row.parametersBefore, row.parametersAfter), macs])
        }
        let macs: String
        if let a = r.totals.macsBefore, let b = r.totals.macsAfter { macs = change(a, b) } else { macs = "?" }
        rows.append(["total", "", "", change(r.totals.before, r.totals.after), macs])
        return TextTable.render(rows, rightAligned: [])
    }

    /// Layers whose channels cannot be removed (all or some), with the reason.
    public static func leftAlone(_ graph: ChannelGraph) -> String {
        var out = ""
        for space in graph.spaces {
            let blocked = (0..<space.count).compactMap { graph.blockedReason(group: graph.group(space.first + $0)) }
            guard let reason = blocked.first else { continue }
            out += "  \(space.path): \(blocked.count) of \(space.count) channels: it \(reason)\n"
        }
        return out.isEmpty ? "" : "left alone (cannot be removed):\n" + out
    }

    public static func folds(_ folds: [FoldReport]) -> String {
        guard !folds.isEmpty else { return "" }
        var out = "folding of removed channels' constant outputs:\n"
        for f in folds {
            out +=
                "  \(f.layer): \(f.removedInputs) removed inputs, \(f.folded) non-zero constants folded, "
                + "\(f.exact ? "exact" : "APPROXIMATE") — \(f.note)\n"
        }
        return out
    }

    /// `measuredOnly`: the comparison measures a drift the user accepted (no verdict per output).
    public static func verification(
        _ comparisons: [OutputComparison], against: String, inputs: String, measuredOnly: Bool = false
    ) -> String {
        var out =
            measuredOnly
            ? "measured error against \(against) on \(inputs):\n" : "verification against \(against) on \(inputs):\n"
        for c in comparisons {
            let top1 = c.top1Agreement.map { String(format: "%.4f", $0) } ?? "-"
            out +=
                "  \(c.output): max abs \(String(format: "%.3g", c.maxAbsError)), max rel "
                + "\(String(format: "%.3g", c.maxRelativeError)), cosine "
                + "\(String(format: "%.9f", c.cosineSimilarity)), top-1 agreement \(top1): "
                + (measuredOnly ? "measured\n" : "\(c.withinTolerance ? "ok" : "DIFFERENT")\n")
        }
        return out
    }

    /// What the removal cost: the result against the original model (not a pass/fail check), and with
    /// labels the accuracy of both.
    public static func cost(
        _ drift: [OutputComparison], inputs: String, accuracy: (before: Evaluation, after: Evaluation)? = nil,
        labels: String? = nil
    ) -> String {
        var out = "cost against the original model on \(inputs):\n"
        for c in drift {
            let top1 = c.top1Agreement.map { String(format: "%.4f", $0) } ?? "-"
            out +=
                "  \(c.output): max abs \(String(format: "%.3g", c.maxAbsError)), cosine "
                + "\(String(format: "%.6f", c.cosineSimilarity)), top-1 agreement \(top1)\n"
        }
        if let (before, after) = accuracy {
            let what = before.binary ? "binary accuracy" : "top-1 accuracy"
            out +=
                "  \(what) on \(labels ?? "the labels"): \(String(format: "%.4f", before.accuracy)) → "
                + "\(String(format: "%.4f", after.accuracy)) (\(after.correct) of \(after.examples))\n"
        }
        return out
    }

    /// One line per reconstructed layer: what was done and the refit's error before and after.
    public static func reconstruction(_ outcome: Reconstruction.Outcome, calibration: [String]) -> String {
        var out =
            "reconstruction on \(calibration.joined(separator: ", ")) (relative error of each layer's "
            + "pre-activation output against the original's):\n"
        if outcome.considered == 0 {
            out +=
                outcome.refits
                ? "  no BatchNormalization, Dense, convolution or depthwise layer to reconstruct\n"
                : "  no BatchNormalization layer to recalibrate\n"
        } else if outcome.reports.isEmpty {
            out +=
                outcome.refits
                ? "  no layer's input changed\n"
                : "  no BatchNormalization layer's input changed (only removed channels)\n"
        }
        for r in outcome.reports {
            if let before = r.errorBefore, let after = r.errorAfter {
                out +=
                    "  \(r.path) (\(r.className)): \(r.action), error \(String(format: "%.4f", before)) → "
                    + "\(String(format: "%.4f", after))\n"
            } else {
                out += "  \(r.path) (\(r.className)): \(r.action) recomputed\n"
            }
        }
        return out
    }

    /// The written file's size against a `--target-size` (the budget's weight bytes plus the input's
    /// other bytes).
    public static func sizeTarget(_ option: String, file: String, size: Int, wanted: Int) -> String {
        let off = Double(size - wanted) / Double(max(wanted, 1)) * 100
        return "--target-size \(option): \(file) is \(grouped(size)) bytes against \(grouped(wanted)) "
            + "(\(String(format: "%+.2f%%", off)))\n"
    }

    /// The budget line: target, what the pruned model measures, and whether it is within 2% below.
    public static func budget(_ b: BudgetOutcome) -> String {
        let share = Double(b.reached) / Double(max(b.original, 1)) * 100
        var out =
            "budget: \(grouped(b.target)) \(b.measure.rawValue) (\(b.allocation.rawValue) allocation); reached "
            + "\(grouped(b.reached)) of \(grouped(b.original)) (\(String(format: "%.1f%%", share)) of the original), "
        out +=
            b.met
            ? "within 2% of the target\n"
            : "\(String(format: "%.1f%%", b.under * 100)) under the target (the smallest step the channel "
                + "groups allow)\n"
        for name in b.leftWholeByRounding {
            out += "  --round-to left \(name) whole: its coupled widths cannot all be multiples\n"
        }
        return out
    }

    public static func sizes(input: String, output: String) -> String {
        let size = { (p: String) in (try? FileManager.default.attributesOfItem(atPath: p)[.size] as? Int) ?? 0 }
        let change = Double(size(output) - size(input)) / Double(max(1, size(input))) * 100
        return
            "file size: \(input) \(grouped(size(input))) bytes → \(output) \(grouped(size(output))) bytes "
            + "(\(String(format: "%+.1f%%", change)))\n"
    }
}
