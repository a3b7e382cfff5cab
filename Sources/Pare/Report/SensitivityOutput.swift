import Foundation

/// The table, the terminal chart, the SVG plot and the CSV of a sensitivity sweep.
extension SensitivityCurve {
    var metricLabel: String { metric == "accuracy" ? "accuracy" : "top-1 agreement with the unpruned model" }
}

public enum SensitivityOutput {
    static func format(_ v: Double?, _ digits: Int = 4) -> String { v.map { String(format: "%.\(digits)f", $0) } ?? "" }

    public static func table(_ curves: [SensitivityCurve]) -> String {
        var out = ""
        for curve in curves {
            var rows = [
                [
                    "K removed", "kept", "parameters", "MACs", "accuracy", "max abs", "cosine", "top-1 agree",
                    "vs masked",
                ]
            ]
            for p in curve.points {
                rows.append([
                    "\(p.removed)", "\(p.kept)", "\(p.parameters)", p.macs.map(String.init) ?? "?", format(p.accuracy),
                    String(format: "%.3g", p.maxAbsError), String(format: "%.6f", p.cosineSimilarity),
                    format(p.top1Agreement),
                    String(format: "%.2g", p.prunedVersusMasked),
                ])
            }
            out += "layer \(curve.layer) (\(curve.channels) \(curve.unit))\n"
            out += TextTable.render(rows, rightAligned: Set(0..<9))
            if let knee = curve.knee, let p = curve.points.first(where: { $0.removed == knee }) {
                out +=
                    "knee of \(curve.metricLabel): K = \(knee) (\(curve.channels - knee) kept, "
                    + "\(format(curve.value(p))))\n"
            } else {
                out += "no knee: \(curve.metricLabel) does not fall over this range\n"
            }
            out += "\n"
        }
        out += "max abs, cosine, top-1 agree: output 0 of the pruned model against the unpruned one; "
        out += "vs masked: max relative difference of the physically pruned model from the zero-masked one.\n"
        return out
    }

    public static func csv(_ curves: [SensitivityCurve]) -> String {
        var out =
            "layer,k_removed,channels_kept,parameters,macs,accuracy,max_abs_error,cosine,top1_agreement,"
            + "pruned_vs_masked\n"
        for c in curves {
            for p in c.points {
                let fields = [
                    c.layer, "\(p.removed)", "\(p.kept)", "\(p.parameters)", p.macs.map(String.init) ?? "",
                    p.accuracy.map { "\($0)" } ?? "", "\(p.maxAbsError)", "\(p.cosineSimilarity)",
                    p.top1Agreement.map { "\($0)" } ?? "", "\(p.prunedVersusMasked)",
                ]
                out += fields.map(csvField).joined(separator: ",") + "\n"
            }
        }
        return out
    }

    static func csvField(_ s: String) -> String {
        s.contains(where: { $0 == "," || $0 == "\"" || $0 == "\n" })
            ? "\"" + s.replacingOccurrences(of: "\"", with: "\"\"") + "\"" : s
    }

    static let symbols: [Character] = ["*", "+", "o", "x", "#", "@", "%", "&"]
    static let colors = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf"]

    /// The curves as characters: y from 0 to 1, x from 0 to the largest K.
    public static func terminalChart(_ curves: [SensitivityCurve], width: Int = 64, height: Int = 14) -> String {
        let maxK = max(1, curves.flatMap { $0.points.map(\.removed) }.max() ?? 1)
        var grid = [[Character]](repeating: [Character](repeating: " ", count: width), count: height)
        for (i, curve) in curves.enumerated() {
            for p in curve.points {
                guard let v = curve.value(p) else { continue }
                let x = min(width - 1, Int((Double(p.removed) / Double(maxK) * Double(width - 1)).rounded()))
                let y = min(height - 1, max(0, Int(((1 - v) * Double(height - 1)).rounded())))
                grid[y][x] = symbols[i % symbols.count]
            }
        }
        let metric = curves.first?.metricLabel ?? ""
        let units = Set(curves.map(\.unit)).sorted().joined(separator: " or ")
        var out = "\(metric) (y, 0 to 1) against \(units) removed (x, 0 to \(maxK))\n"
        for (r, row) in grid.enumerated() {
            let label = r == 0 ? "1.0 |" : r == height - 1 ? "0.0 |" : "    |"
            out += label + String(row) + "\n"
        }
        out += "    +" + String(repeating: "-", count: width) + "\n"
        out += "     0" + String(repeating: " ", count: max(1, width - 1 - String(maxK).count)) + "\(maxK)\n"
        for (i, curve) in curves.enumerated() {
            out +=
                "     \(symbols[i % symbols.count]) \(curve.layer)" + (curve.knee.map { "  knee K = \($0)" } ?? "")
                + "\n"
        }
        return out
    }

    static func escape(_ s: String) -> String {
        s.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;")
            .replacingOccurrences(of: ">", with: "&gt;").replacingOccurrences(of: "\"", with: "&quot;")
    }

    /// An SVG line plot: axes with ticks and labels, one path per layer, the knee of each marked, a legend.
    public static func svg(_ curves: [SensitivityCurve], title: String) -> String {
        let width = 760.0
        let height = 460.0
        let left = 70.0
        let right = 190.0
        let top = 50.0
        let bottom = 60.0
        let plotW = width - left - right
        let plotH = height - top - bottom
        let maxK = max(1, curves.flatMap { $0.points.map(\.removed) }.max() ?? 1)
        func x(_ k: Int) -> Double { left + Double(k) / Double(maxK) * plotW }
        func y(_ v: Double) -> Double { top + (1 - min(1, max(0, v))) * plotH }
        func n(_ v: Double) -> String { String(format: "%.2f", v) }
        var s = """
            <?xml version="1.0" encoding="UTF-8"?>
            <svg xmlns="http://www.w3.org/2000/svg" width="\(Int(width))" height="\(Int(height))" \
            viewBox="0 0 \(Int(width)) \(Int(height))" font-family="sans-serif" font-size="12">
            <rect x="0" y="0" width="\(Int(width))" height="\(Int(height))" fill="white"/>
            <text x="\(n(left + plotW / 2))" y="28" text-anchor="middle" font-size="15">\(escape(title))</text>

            """
        // Axes, grid and ticks.
        s += "<g stroke=\"#333\" stroke-width=\"1\">\n"
        s +=
            "<line class=\"axis\" x1=\"\(n(left))\" y1=\"\(n(top + plotH))\" x2=\"\(n(left + plotW))\" "
            + "y2=\"\(n(top + plotH))\"/>\n"
        s += "<line class=\"axis\" x1=\"\(n(left))\" y1=\"\(n(top))\" x2=\"\(n(left))\" y2=\"\(n(top + plotH))\"/>\n"
        s += "</g>\n<g font-size=\"11\" fill=\"#333\">\n"
        for i in 0...5 {
            let v = Double(i) / 5
            s +=
                "<line x1=\"\(n(left))\" y1=\"\(n(y(v)))\" x2=\"\(n(left + plotW))\" y2=\"\(n(y(v)))\" "
                + "stroke=\"#ddd\"/>\n"
            s +=
                "<text x=\"\(n(left - 8))\" y=\"\(n(y(v) + 4))\" "
                + "text-anchor=\"end\">\(String(format: "%.1f", v))</text>\n"
        }
        let step = max(1, Int((Double(maxK) / 8).rounded(.up)))
        var ticks = Array(stride(from: 0, through: maxK, by: step))
        if let last = ticks.last, last != maxK {
            if Double(maxK - last) < Double(step) / 2 { ticks.removeLast() }
            ticks.append(maxK)
        }
        for k in ticks {
            s +=
                "<line x1=\"\(n(x(k)))\" y1=\"\(n(top + plotH))\" x2=\"\(n(x(k)))\" "
                + "y2=\"\(n(top + plotH + 5))\" stroke=\"#333\"/>\n"
            s += "<text x=\"\(n(x(k)))\" y=\"\(n(top + plotH + 18))\" text-anchor=\"middle\">\(k)</text>\n"
        }
        s += "</g>\n"
        s +=
            "<text x=\"\(n(left + plotW / 2))\" y=\"\(n(height - 15))\" text-anchor=\"middle\">channels removed "
            + "(K)</text>\n"
        let yLabel = escape(curves.first?.metricLabel ?? "")
        s +=
            "<text x=\"18\" y=\"\(n(top + plotH / 2))\" text-anchor=\"middle\" transform=\"rotate(-90 18 "
            + "\(n(top + plotH / 2)))\">\(yLabel)</text>\n"
        // One path per layer, its knee, its legend entry.
        for (i, curve) in curves.enumerated() {
            let color = colors[i % colors.count]
            let pts = curve.points.compactMap { p in curve.value(p).map { (p.removed, $0) } }
            let d = pts.enumerated().map { j, p in (j == 0 ? "M" : "L") + "\(n(x(p.0))) \(n(y(p.1)))" }.joined(
                separator: " ")
            s +=
                "<path class=\"curve\" data-layer=\"\(escape(curve.layer))\" d=\"\(d)\" fill=\"none\" "
                + "stroke=\"\(color)\" stroke-width=\"2\"/>\n"
            if let knee = curve.knee, let v = pts.first(where: { $0.0 == knee })?.1 {
                s +=
                    "<circle class=\"knee\" cx=\"\(n(x(knee)))\" cy=\"\(n(y(v)))\" r=\"5\" fill=\"none\" "
                    + "stroke=\"\(color)\" stroke-width=\"2\"/>\n"
                s += "<text x=\"\(n(x(knee) + 8))\" y=\"\(n(y(v) - 8))\" fill=\"\(color)\">knee K=\(knee)</text>\n"
            }
            let ly = top + 10 + Double(i) * 20
            s +=
                "<line x1=\"\(n(left + plotW + 15))\" y1=\"\(n(ly))\" x2=\"\(n(left + plotW + 40))\" "
                + "y2=\"\(n(ly))\" stroke=\"\(color)\" stroke-width=\"2\"/>\n"
            s +=
                "<text x=\"\(n(left + plotW + 46))\" y=\"\(n(ly + 4))\">\(escape(curve.layer)) "
                + "(\(curve.channels))</text>\n"
        }
        s += "</svg>\n"
        return s
    }
}
