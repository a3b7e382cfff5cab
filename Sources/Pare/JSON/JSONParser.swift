public struct JSONParseError: Error, CustomStringConvertible, Equatable {
    public let offset: Int
    public let message: String
    public var description: String { "invalid JSON at byte \(offset): \(message)" }
}

extension JSON {
    /// Parses JSON text (RFC 8259, plus the NaN/Infinity literals Python's json writes).
    /// Nesting is limited so hostile input cannot exhaust the stack.
    public static func parse(_ text: String) throws -> JSON {
        var parser = Parser(bytes: Array(text.utf8))
        parser.skipWhitespace()
        let value = try parser.value(depth: 0)
        parser.skipWhitespace()
        guard parser.position == parser.bytes.count else { throw parser.error("unexpected text after the value") }
        return value
    }
}

private struct Parser {
    let bytes: [UInt8]
    var position = 0
    static let maxDepth = JSON.maxNestingDepth

    func error(_ message: String) -> JSONParseError { JSONParseError(offset: position, message: message) }

    mutating func skipWhitespace() {
        while position < bytes.count, [0x20, 0x09, 0x0A, 0x0D].contains(bytes[position]) { position += 1 }
    }

    mutating func literal(_ word: String) -> Bool {
        let w = Array(word.utf8)
        guard position + w.count <= bytes.count, Array(bytes[position..<(position + w.count)]) == w else {
            return false
        }
        position += w.count
        return true
    }

    mutating func value(depth: Int) throws -> JSON {
        guard depth < Parser.maxDepth else { throw error("nesting deeper than \(Parser.maxDepth)") }
        guard position < bytes.count else { throw error("unexpected end of text") }
        switch bytes[position] {
        case UInt8(ascii: "{"): return try object(depth: depth)
        case UInt8(ascii: "["): return try array(depth: depth)
        case UInt8(ascii: "\""): return .string(try string())
        case UInt8(ascii: "t"): if literal("true") { return .bool(true) }
        case UInt8(ascii: "f"): if literal("false") { return .bool(false) }
        case UInt8(ascii: "n"): if literal("null") { return .null }
        case UInt8(ascii: "N"): if literal("NaN") { return .number("NaN") }
        case UInt8(ascii: "I"): if literal("Infinity") { return .number("Infinity") }
        default: return try number()
        }
        throw error("unknown literal")
    }

    mutating func object(depth: Int) throws -> JSON {
        position += 1
        var pairs: [(String, JSON)] = []
        var keys = Set<String>()
        skipWhitespace()
        if position < bytes.count, bytes[position] == UInt8(ascii: "}") {
            position += 1
            return .object(pairs)
        }
        while true {
            skipWhitespace()
            guard position < bytes.count, bytes[position] == UInt8(ascii: "\"") else { throw error("expected a key") }
            let key = try string()
            // Python keeps the last of two equal keys and Pare would keep the first: the file would
            // mean two models. Keras never writes one.
            guard keys.insert(key).inserted else { throw error("the key \"\(key)\" appears twice in one object") }
            skipWhitespace()
            guard position < bytes.count, bytes[position] == UInt8(ascii: ":") else { throw error("expected ':'") }
            position += 1
            skipWhitespace()
            pairs.append((key, try value(depth: depth + 1)))
            skipWhitespace()
            guard position < bytes.count else { throw error("unterminated object") }
            if bytes[position] == UInt8(ascii: ",") {
                position += 1
                continue
            }
            if bytes[position] == UInt8(ascii: "}") {
                position += 1
                return .object(pairs)
            }
            throw error("expected ',' or '}'")
        }
    }

    mutating func array(depth: Int) throws -> JSON {
        position += 1
        var items: [JSON] = []
        skipWhitespace()
        if position < bytes.count, bytes[position] == UInt8(ascii: "]") {
            position += 1
            return .array(items)
        }
        while true {
            skipWhitespace()
            items.append(try value(depth: depth + 1))
            skipWhitespace()
            guard position < bytes.count else { throw error("unterminated array") }
            if bytes[position] == UInt8(ascii: ",") {
                position += 1
                continue
            }
            if bytes[position] == UInt8(ascii: "]") {
                position += 1
                return .array(items)
            }
            throw error("expected ',' or ']'")
        }
    }

    mutating func number() throws -> JSON {
        let start = position
        if position < bytes.count, bytes[position] == UInt8(ascii: "-") {
            position += 1
            if literal("Infinity") { return .number("-Infinity") }
        }
        if position + 1 < bytes.count, bytes[position] == UInt8(ascii: "0"), (0x30...0x39).contains(bytes[position + 1])
        {
            position += 1
            throw error("leading zero in a number")
        }
        var digits = 0
        while position < bytes.count, (0x30...0x39).contains(bytes[position]) {
            position += 1
            digits += 1
        }
        guard digits > 0 else {
            position = start
            throw error("expected a value")
        }
        if position < bytes.count, bytes[position] == UInt8(ascii: ".") {
            position += 1
            var fraction = 0
            while position < bytes.count, (0x30...0x39).contains(bytes[position]) {
                position += 1
                fraction += 1
            }
            guard fraction > 0 else { throw error("digits expected after '.'") }
        }
        if position < bytes.count, bytes[position] == UInt8(ascii: "e") || bytes[position] == UInt8(ascii: "E") {
            position += 1
            if position < bytes.count, bytes[position] == UInt8(ascii: "+") || bytes[position] == UInt8(ascii: "-") {
                position += 1
            }
            var exponent = 0
            while position < bytes.count, (0x30...0x39).contains(bytes[position]) {
                position += 1
                exponent += 1
            }
            guard exponent > 0 else { throw error("digits expected in exponent") }
        }
        return .number(String(decoding: bytes[start..<position], as: UTF8.self))
    }

    mutating func hex4() throws -> UInt32 {
        guard position + 4 <= bytes.count else { throw error("truncated \\u escape") }
        var v: UInt32 = 0
        for _ in 0..<4 {
            let c = bytes[position]
            let d: UInt32
            switch c {
            case 0x30...0x39: d = UInt32(c - 0x30)
            case 0x41...0x46: d = UInt32(c - 0x41 + 10)
            case 0x61...0x66: d = UInt32(c - 0x61 + 10)
            default: throw error("bad hex digit in \\u escape")
            }
            v = v * 16 + d
            position += 1
        }
        return v
    }

    mutating func string() throws -> String {
        position += 1
        var out: [UInt8] = []
        while true {
            guard position < bytes.count else { throw error("unterminated string") }
            let c = bytes[position]
            position += 1
            if c == UInt8(ascii: "\"") { break }
            if c < 0x20 { throw error("control character in string") }
            if c != UInt8(ascii: "\\") {
                out.append(c)
                continue
            }
            guard position < bytes.count else { throw error("unterminated escape") }
            let e = bytes[position]
            position += 1
            switch e {
            case UInt8(ascii: "\""): out.append(0x22)
            case UInt8(ascii: "\\"): out.append(0x5C)
            case UInt8(ascii: "/"): out.append(0x2F)
            case UInt8(ascii: "b"): out.append(0x08)
            case UInt8(ascii: "f"): out.append(0x0C)
            case UInt8(ascii: "n"): out.append(0x0A)
            case UInt8(ascii: "r"): out.append(0x0D)
            case UInt8(ascii: "t"): out.append(0x09)
            case UInt8(ascii: "u"):
                var scalar = try hex4()
                if (0xD800...0xDBFF).contains(scalar), position + 6 <= bytes.count,
                    bytes[position] == UInt8(ascii: "\\"), bytes[position + 1] == UInt8(ascii: "u")
                {
                    position += 2
                    let low = try hex4()
                    guard (0xDC00...0xDFFF).contains(low) else { throw error("invalid surrogate pair") }
                    scalar = 0x10000 + ((scalar - 0xD800) << 10) + (low - 0xDC00)
                }
                // A lone surrogate (Python's json allows it) becomes U+FFFD.
                let u = Unicode.Scalar(scalar) ?? "\u{FFFD}"
                out.append(contentsOf: Array(String(Character(u)).utf8))
            default: throw error("unknown escape")
            }
        }
        return String(decoding: out, as: UTF8.self)
    }
}
