/// Plain text tables for the terminal: first row is the header, numbers right-aligned.
enum Table {
    static func render(_ rows: [[String]]) -> String {
        guard let header = rows.first else { return "" }
        let widths = header.indices.map { col in rows.map { $0.indices.contains(col) ? $0[col].count : 0 }.max() ?? 0 }
        return rows.map { row in
            row.indices.map { col in
                let cell = row[col]
                let pad = String(repeating: " ", count: widths[col] - cell.count)
                let numeric = Double(cell.replacingOccurrences(of: ",", with: "")) != nil
                return numeric ? pad + cell : cell + pad
            }.joined(separator: "  ").trimmingTrailingSpaces()
        }.joined(separator: "\n") + "\n"
    }
}

extension String {
    func trimmingTrailingSpaces() -> String {
        var s = self
        while s.last == " " { s.removeLast() }
        return s
    }
}
