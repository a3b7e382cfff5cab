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
