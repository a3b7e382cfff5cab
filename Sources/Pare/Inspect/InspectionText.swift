import Foundation

extension Inspection {
    /// The human-readable report: one table of layers, one of weights, then dead channels.
    public func text() -> String {
        var out = ""
        out += "file      \(file)\n"
        out += "format    \(format), \(kind)\n"
        out += "writer    \(writer)\n"
        if let modelName { out += "model     \(modelName) (\(modelClass ?? "?"))\n" }
        out += "\n"
        var table: [[String]] = [["layer", "class", "output shape", "inbound", "params", "MACs"]]
        for row in layers {
            let depth = row.path.split(separator: "/").count - 1
            let name =
                String(repeating: "  ", count: depth)
                + (row.path.split(separator: "/").last.map(String.init) ?? row.path)
            let inbound = row.inbound.map { $0.joined(separator: ", ") }.joined(separator: " | ")
            table.append([
                name, row.className, row.outputShapes.joined(separator: " | "), inbound,
                grouped(row.parameters), row.macs.map(grouped) ?? "?",
            ])
        }
        if kind == "tensors" {
            out += "tensors           \(weights.count) datasets, no model graph\n"
            out += "total values      \(grouped(totalParameters))\n"
        } else {
            out += TextTable.render(table, rightAligned: [4, 5])
            out += "\ntotal parameters  \(grouped(totalParameters))\n"
            out += "total MACs        \(totalMACs.map(grouped) ?? "unknown (an unsupported layer or unknown shape)")\n"
            out += "                  \(macsNote)\n"
        }
        if optimizerTensors > 0 {
            out +=
                "optimizer state   \(optimizerTensors) tensors, \(grouped(optimizerParameters)) values (not counted in parameters)\n"
        }
        out += "\n"
        var weightTable: [[String]] = [
            [
                kind == "tensors" ? "group" : "layer", kind == "tensors" ? "dataset" : "weight", "shape", "dtype",
                "params", "zeros", "sparsity",
            ]
        ]
        for w in weights {
            weightTable.append([
                w.layer, w.name, "(" + w.shape.map(String.init).joined(separator: ", ") + ")", w.dtype,
                grouped(w.parameters), grouped(w.zeros), String(format: "%.2f%%", w.sparsity * 100),
            ])
        }
        out += TextTable.render(weightTable, rightAligned: [4, 5, 6])
        out += "\n"
        let withDead = deadChannels.filter { !$0.dead.isEmpty }
        if withDead.isEmpty {
            out += "dead channels     none (no output channel has all-zero weights and bias)\n"
        } else {
            out += "dead channels (all-zero kernel slice and bias):\n"
            for d in withDead {
                let list = d.dead.prefix(32).map(String.init).joined(separator: ", ") + (d.dead.count > 32 ? ", …" : "")
                out += "  \(d.layer): \(d.dead.count) of \(d.channels): \(list)\n"
            }
        }
        for problem in unsupportedLayers { out += "unsupported: \(problem)\n" }
        return out
    }

    public func json() throws -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        return String(decoding: try encoder.encode(self), as: UTF8.self)
    }
}

/// 643594 → "643,594".
func grouped(_ n: Int) -> String {
    let digits = String(abs(n))
    var out = ""
    for (i, ch) in digits.enumerated() {
        if i > 0, (digits.count - i) % 3 == 0 { out += "," }
        out.append(ch)
    }
    return n < 0 ? "-" + out : out
}

/// Plain-text tables for the terminal: the first row is the header; the columns in `rightAligned`
/// (or, when nil, every cell that reads as a number) are right-aligned.
public enum TextTable {
    public static func render(_ rows: [[String]], rightAligned: Set<Int>? = nil) -> String {
        guard let header = rows.first else { return "" }
        let widths = header.indices.map { col in rows.map { $0.indices.contains(col) ? $0[col].count : 0 }.max() ?? 0 }
        return rows.map { row in
            var line = row.indices.map { col in
                let cell = row[col]
                let pad = String(repeating: " ", count: widths[col] - cell.count)
                let right = rightAligned?.contains(col) ?? (Double(cell.replacingOccurrences(of: ",", with: "")) != nil)
                return right ? pad + cell : cell + pad
            }.joined(separator: "  ")
            while line.last == " " { line.removeLast() }
            return line
        }.joined(separator: "\n") + "\n"
    }
}
