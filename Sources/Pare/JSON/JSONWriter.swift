extension JSON {
    /// The deepest nesting Pare's reader takes (a bound on untrusted input); what Pare writes must
    /// stay within it, or Pare could not read its own output.
    public static let maxNestingDepth = 512

    /// Levels of arrays and objects: 0 for a scalar, 1 for `[]`.
    public var nestingDepth: Int {
        switch self {
        case .array(let items): 1 + (items.map(\.nestingDepth).max() ?? 0)
        case .object(let pairs): 1 + (pairs.map(\.1.nestingDepth).max() ?? 0)
        default: 0
        }
    }

    /// Serialized as Python's `json.dumps` does by default (", " and ": " separators, non-ASCII escaped),
    /// so an unchanged config comes out as Keras wrote it.
    public func serialized() -> String {
        var out = ""
        write(to: &out)
        return out
    }

    private func write(to out: inout String) {
        switch self {
        case .null: out += "null"
        case .bool(let b): out += b ? "true" : "false"
        case .number(let n): out += n
        case .string(let s): JSON.writeString(s, to: &out)
        case .array(let items):
            out += "["
            for (i, item) in items.enumerated() {
                if i > 0 { out += ", " }
                item.write(to: &out)
            }
            out += "]"
        case .object(let pairs):
            out += "{"
            for (i, (key, value)) in pairs.enumerated() {
                if i > 0 { out += ", " }
                JSON.writeString(key, to: &out)
                out += ": "
                value.write(to: &out)
            }
            out += "}"
        }
    }

    static func writeString(_ s: String, to out: inout String) {
        out += "\""
        for unit in s.unicodeScalars {
            switch unit {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case "\u{08}": out += "\\b"
            case "\u{0C}": out += "\\f"
            default:
                if unit.value < 0x20 || unit.value > 0x7E {
                    for code in String(unit).utf16 { out += "\\u" + hex4(code) }
                } else {
                    out.unicodeScalars.append(unit)
                }
            }
        }
        out += "\""
    }

    private static func hex4(_ v: UInt16) -> String {
        let s = String(v, radix: 16)
        return String(repeating: "0", count: 4 - s.count) + s
    }
}
