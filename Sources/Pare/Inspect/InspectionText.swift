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
                "optimizer state   \(optimizerTensors) tensors, \(grouped(optimizerParameters)) values (not "
                + "counted in parameters)\n"
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
                let list =
                    d.dead.prefix(32).map(String.init).joined(separator: ", ") + (d.dead.count > 32 ? ", …" : "")
                out += "  \(d.layer): \(d.dead.count) of \(d.channels): \(list)\n"
            }
        }
        if !unknownClasses.isEmpty {
            out += "classes Pare does not know: \(unknownClasses.joined(separator: ", "))\n"
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
