import Foundation

/// NumPy's .npy format, version 1–3: C-order arrays of float32, float64, uint8 and the integer
/// types labels come in. Anything else (Fortran order, big-endian, objects, strings) is rejected.
public enum NPY {
    static let magic: [UInt8] = [0x93] + Array("NUMPY".utf8)

    public static func read(_ path: String) throws -> Tensor {
        guard FileManager.default.fileExists(atPath: path) else { throw PareError(file: path, "no such file") }
        try InputFile.requireRegular(path)
        // The array is the file's bytes: the file's size is what reading it costs (twice, while copied).
        let size = (try? FileManager.default.attributesOfItem(atPath: path)[.size] as? Int) ?? 0
        try MemoryBudget.require(
            size.multipliedReportingOverflow(by: 2).overflow ? nil : size * 2, for: "reading this .npy file", file: path
        )
        guard let data = FileManager.default.contents(atPath: path) else {
            throw PareError(file: path, "cannot be read")
        }
        return try decode([UInt8](data), name: path)
    }

    public static func decode(_ bytes: [UInt8], name: String) throws -> Tensor {
        func fail(_ problem: String) -> PareError { PareError(file: name, problem) }
        guard bytes.count >= 10, Array(bytes[0..<6]) == magic else {
            throw fail("not a .npy file (no \\x93NUMPY magic)")
        }
        let major = bytes[6]
        let headerLength: Int
        let headerStart: Int
        switch major {
        case 1:
            headerLength = Int(bytes[8]) | Int(bytes[9]) << 8
            headerStart = 10
        case 2, 3:
            guard bytes.count >= 12 else { throw fail("truncated .npy header") }
            headerLength = (0..<4).reduce(0) { $0 | Int(bytes[8 + $1]) << (8 * $1) }
            headerStart = 12
        default:
            throw fail(".npy version \(major) is not supported")
        }
        guard headerLength <= 1 << 20, headerStart + headerLength <= bytes.count else {
            throw fail("truncated .npy header")
        }
        let header = String(decoding: bytes[headerStart..<(headerStart + headerLength)], as: UTF8.self)
        guard let descr = field(header, "descr"), let order = field(header, "fortran_order"),
            let shapeText = field(header, "shape")
        else {
            throw fail("malformed .npy header: \(header.trimmingCharacters(in: .whitespacesAndNewlines))")
        }
        guard order == "False" else {
            throw fail("Fortran-order arrays are not supported; save with np.ascontiguousarray")
        }
        let dtype: DType
        switch descr {
        case "'<f4'": dtype = .float32
        case "'<f8'": dtype = .float64
        case "'<f2'": dtype = .float16
        case "'|u1'", "'<u1'": dtype = .uint8
        case "'|i1'", "'<i1'": dtype = .int8
        case "'<i2'": dtype = .int16
        case "'<i4'": dtype = .int32
        case "'<i8'": dtype = .int64
        case "'<u2'": dtype = .uint16
        case "'<u4'": dtype = .uint32
        case "'<u8'": dtype = .uint64
        case let d where d.hasPrefix("'>"):
            throw fail("big-endian dtype \(d) is not supported; convert with arr.astype(arr.dtype.newbyteorder('<'))")
        default:
            throw fail("dtype \(descr) is not supported (float32, float64, float16, integers)")
        }
        let inner = shapeText.trimmingCharacters(in: CharacterSet(charactersIn: "() "))
        var shape: [Int] = []
        for part in inner.split(separator: ",") {
            let t = part.trimmingCharacters(in: .whitespaces)
            if t.isEmpty { continue }
            guard let n = Int(t), n >= 0 else { throw fail("malformed shape \(shapeText)") }
            shape.append(n)
        }
        var count = 1
        for n in shape {
            let (product, overflow) = count.multipliedReportingOverflow(by: n)
            guard !overflow else { throw fail("shape \(shapeText) overflows") }
            count = product
        }
        let start = headerStart + headerLength
        let (needed, overflow) = count.multipliedReportingOverflow(by: dtype.byteCount)
        guard !overflow else { throw fail("shape \(shapeText) overflows") }
        let available = bytes.count - start
        guard available >= needed else {
            throw fail("truncated: shape \(shape) of \(dtype) needs \(needed) data bytes, the file has \(available)")
        }
        guard available == needed else { throw fail("\(available - needed) bytes after the array data") }
        return Tensor(dtype: dtype, shape: shape, bytes: Array(bytes[start...]))
    }

    /// The value of `'key': value` in the header dict: a quoted string, a word, or a tuple.
    static func field(_ header: String, _ key: String) -> String? {
        guard let range = header.range(of: "'\(key)':") else { return nil }
        let rest = header[range.upperBound...].drop { $0 == " " }
        if rest.first == "(" {
            guard let close = rest.firstIndex(of: ")") else { return nil }
            return String(rest[...close])
        }
        if rest.first == "'" {
            guard let close = rest.dropFirst().firstIndex(of: "'") else { return nil }
            return String(rest[...close])
        }
        return String(rest.prefix { $0 != "," && $0 != "}" }).trimmingCharacters(in: .whitespaces)
    }

    public static func encode(_ tensor: Tensor) throws -> [UInt8] {
        let descr: String
        switch tensor.dtype {
        case .float32: descr = "<f4"
        case .float64: descr = "<f8"
        case .float16: descr = "<f2"
        case .uint8: descr = "|u1"
        case .int8: descr = "|i1"
        case .int16: descr = "<i2"
        case .int32: descr = "<i4"
        case .int64: descr = "<i8"
        case .uint16, .bfloat16: descr = "<u2"
        case .uint32: descr = "<u4"
        case .uint64: descr = "<u8"
        }
        let shape =
            tensor.shape.count == 1
            ? "(\(tensor.shape[0]),)" : "(" + tensor.shape.map(String.init).joined(separator: ", ") + ")"
        let dict = "{'descr': '\(descr)', 'fortran_order': False, 'shape': \(shape), }"
        // Data starts 64-aligned: the header is padded with spaces and ends with a newline.
        func padded(prefix: Int) -> String {
            dict + String(repeating: " ", count: (64 - (prefix + dict.utf8.count + 1) % 64) % 64) + "\n"
        }
        // Version 1 keeps the header length in two bytes; a longer header (a rank in the thousands) needs version 2.
        let short = padded(prefix: 10)
        if short.utf8.count <= 0xFFFF {
            let length = short.utf8.count
            return magic + [1, 0, UInt8(length & 0xFF), UInt8(length >> 8)] + Array(short.utf8) + (try tensor.bytes())
        }
        let long = padded(prefix: 12)
        let size = (0..<4).map { UInt8(truncatingIfNeeded: long.utf8.count >> (8 * $0)) }
        return magic + [2, 0] + size + Array(long.utf8) + (try tensor.bytes())
    }

    /// Writes atomically (temporary file beside the target, then rename).
    public static func write(_ tensor: Tensor, to path: String) throws {
        let bytes = try encode(tensor)
        try AtomicFile.write(to: path) { temporary in
            guard FileManager.default.createFile(atPath: temporary, contents: Data(bytes)) else {
                throw PareError(file: path, "cannot write: \(String(cString: strerror(errno)))")
            }
        }
    }
}
