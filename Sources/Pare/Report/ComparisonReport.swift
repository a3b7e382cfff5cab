import Foundation

/// Two versions of a model side by side (the CNN report's table): per layer and in total, parameters,
/// FLOPs, non-zero ("effective") parameters and sparsity, plus file sizes and, with labelled inputs,
/// the accuracy of both. Every figure is computed from the files.
public struct ComparisonReport: Codable, Sendable {
    public struct Side: Codable, Sendable {
        public var file: String
        public var format: String
        public var fileBytes: Int
        public var parameters: Int
        public var nonZero: Int
        public var flops: Int?
        public var accuracy: Double?
        public var sparsity: Double { parameters == 0 ? 0 : 1 - Double(nonZero) / Double(parameters) }
    }

    public struct Row: Codable, Sendable {
        public var layer: String
        public var className: String
        public var channelsBefore: Int?
        public var channelsAfter: Int?
        public var parametersBefore: Int
        public var parametersAfter: Int
        public var nonZeroBefore: Int
        public var nonZeroAfter: Int
        public var flopsBefore: Int?
        public var flopsAfter: Int?
    }

    public var before: Side
    public var after: Side
    public var rows: [Row]
    public var flopsNote: String

    public static func make(before a: Model, after b: Model, inputs: [FloatArray]?, labels: Tensor?, labelsFile: String)
        throws -> ComparisonReport
    {
        for m in [a, b] { try m.requireArchitecture(for: "report") }
        let table = try PruneJob.table(before: a, after: b).rows
        let ia = try Inspection.of(a)
        let ib = try Inspection.of(b)
        func nonZero(_ report: Inspection, _ path: String) -> Int {
            let parts = path.split(separator: "/").map(String.init)
            return report.weights.filter { w in
                guard w.layer == parts[0] else { return false }
                if parts.count == 1 { return true }
                let components = w.name.split(separator: "/").map(String.init)
                return components.count >= 2 && components[components.count - 2] == parts.last!
            }.reduce(0) { $0 + $1.parameters - $1.zeros }
        }
        let rows = table.map { r in
            Row(
                layer: r.layer, className: r.className, channelsBefore: r.channelsBefore,
                channelsAfter: r.channelsAfter,
                parametersBefore: r.parametersBefore, parametersAfter: r.parametersAfter,
                nonZeroBefore: nonZero(ia, r.layer), nonZeroAfter: nonZero(ib, r.layer),
                flopsBefore: r.macsBefore.flatMap { ShapeMath.product([2, $0]) },
                flopsAfter: r.macsAfter.flatMap { ShapeMath.product([2, $0]) })
        }
        func side(_ m: Model, _ report: Inspection) throws -> Side {
            var accuracy: Double?
            if let inputs, let labels {
                let y = try Interpreter(m).run(inputs, batchSize: 256)
                accuracy = try Evaluation.of(predictions: y[0], labels: labels, file: labelsFile).accuracy
            }
            let size = (try? FileManager.default.attributesOfItem(atPath: m.sourcePath)[.size] as? Int) ?? 0
            return Side(
                file: m.sourcePath, format: m.format.rawValue, fileBytes: size, parameters: report.totalParameters,
                nonZero: report.weights.reduce(0) { $0 + $1.parameters - $1.zeros },
                flops: report.totalMACs.flatMap { ShapeMath.product([2, $0]) }, accuracy: accuracy)
        }
        return ComparisonReport(
            before: try side(a, ia), after: try side(b, ib), rows: rows,
            flopsNote: "FLOPs = 2 × MACs. " + LayerRegistry.macsDefinition
        )
    }

    static func change(_ a: Int?, _ b: Int?) -> String {
        guard let a, let b else { return "" }
        if a == 0 { return b == 0 ? "0.0%" : "new" }
        return String(format: "%+.1f%%", (Double(b) - Double(a)) / Double(a) * 100)
    }

    static func grouped(_ n: Int?) -> String {
        guard let n else { return "?" }
        let s = String(abs(n))
        var out = ""
        for (i, c) in s.reversed().enumerated() {
            if i > 0 && i % 3 == 0 { out.append(",") }
            out.append(c)
        }
        return (n < 0 ? "-" : "") + String(out.reversed())
    }

    static func channels(_ a: Int?, _ b: Int?) -> String {
        guard let a else { return "" }
        return a == b ? "\(a)" : "\(a) → \(b.map(String.init) ?? "—")"
    }

    static func percent(_ v: Double) -> String { String(format: "%.2f%%", v * 100) }

    /// The table's rows as cells, with a header and a total row.
    func cells() -> [[String]] {
        var out = [
            [
                "layer", "class", "channels", "params before", "params after", "change", "FLOPs before", "FLOPs after",
                "change",
                "non-zero before", "non-zero after", "sparsity after",
            ]
        ]
        for r in rows {
            let sparsity =
                r.parametersAfter == 0 ? "" : Self.percent(1 - Double(r.nonZeroAfter) / Double(r.parametersAfter))
            out.append([
                r.layer, r.className, Self.channels(r.channelsBefore, r.channelsAfter),
                Self.grouped(r.parametersBefore), Self.grouped(r.parametersAfter),
                Self.change(r.parametersBefore, r.parametersAfter),
                r.flopsBefore.map(Self.grouped) ?? "", r.flopsAfter.map(Self.grouped) ?? "",
                Self.change(r.flopsBefore, r.flopsAfter),
                Self.grouped(r.nonZeroBefore), Self.grouped(r.nonZeroAfter), sparsity,
            ])
        }
        out.append([
            "total", "", "", Self.grouped(before.parameters), Self.grouped(after.parameters),
            Self.change(before.parameters, after.parameters),
            Self.grouped(before.flops), Self.grouped(after.flops), Self.change(before.flops, after.flops),
            Self.grouped(before.nonZero), Self.grouped(after.nonZero), Self.percent(after.sparsity),
        ])
        return out
    }

    func summaryLines() -> [(String, String, String, String)] {
        var lines = [
            ("file", before.file, after.file, ""),
            ("format", before.format, after.format, ""),
            (
                "file size (bytes)", Self.grouped(before.fileBytes), Self.grouped(after.fileBytes),
                Self.change(before.fileBytes, after.fileBytes)
            ),
            (
                "parameters", Self.grouped(before.parameters), Self.grouped(after.parameters),
                Self.change(before.parameters, after.parameters)
            ),
            (
                "non-zero parameters", Self.grouped(before.nonZero), Self.grouped(after.nonZero),
                Self.change(before.nonZero, after.nonZero)
            ),
            ("sparsity", Self.percent(before.sparsity), Self.percent(after.sparsity), ""),
            (
                "FLOPs per example", Self.grouped(before.flops), Self.grouped(after.flops),
                Self.change(before.flops, after.flops)
            ),
        ]
        if let a = before.accuracy, let b = after.accuracy {
            lines.append(
                ("accuracy", String(format: "%.4f", a), String(format: "%.4f", b), String(format: "%+.4f", b - a)))
        }
        return lines
    }

    public func text() -> String {
        var out = TextTable.render(cells(), rightAligned: Set(2..<12))
        out += "\n"
        out += TextTable.render(
            [["", "before", "after", "change"]] + summaryLines().map { [$0.0, $0.1, $0.2, $0.3] },
            rightAligned: [1, 2, 3])
        out += flopsNote + "\n"
        return out
    }

    public func markdown() -> String {
        func row(_ cells: [String]) -> String {
            "| " + cells.map { $0.replacingOccurrences(of: "|", with: "\\|") }.joined(separator: " | ") + " |\n"
        }
        var out =
            "# \(URL(fileURLWithPath: before.file).lastPathComponent) → "
            + "\(URL(fileURLWithPath: after.file).lastPathComponent)\n\n"
        let c = cells()
        out += row(c[0]) + row(c[0].enumerated().map { $0.offset < 2 ? "---" : "---:" })
        for r in c.dropFirst() { out += row(r) }
        out += "\n" + row(["", "before", "after", "change"]) + row(["---", "---:", "---:", "---:"])
        for l in summaryLines() { out += row([l.0, l.1, l.2, l.3]) }
        out += "\n" + flopsNote + " Non-zero parameters count stored weights that are not exactly 0.\n"
        return out
    }
}
