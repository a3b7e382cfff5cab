import CPareZlib

enum Zlib {
    static func crc32(_ bytes: [UInt8]) -> UInt32 {
        bytes.withUnsafeBufferPointer { p in
            var crc = CPareZlib.crc32(0, nil, 0)
            var offset = 0
            while offset < p.count {  // zlib takes 32-bit lengths
                let n = min(p.count - offset, 1 << 30)
                crc = CPareZlib.crc32(crc, p.baseAddress! + offset, UInt32(n))
                offset += n
            }
            return UInt32(crc)
        }
    }

    /// zlib-wrapped deflate at `level`.
    static func compress(_ bytes: [UInt8], level: Int32 = 6) -> [UInt8]? {
        var length = compressBound(uLong(bytes.count))
        var out = [UInt8](repeating: 0, count: Int(length))
        let status = bytes.withUnsafeBufferPointer { src in
            out.withUnsafeMutableBufferPointer { dst in
                compress2(dst.baseAddress, &length, src.baseAddress, uLong(src.count), level)
            }
        }
        guard status == Z_OK else { return nil }
        return Array(out[..<Int(length)])
    }

    /// Inflates to exactly `expected` bytes; nil if the stream is corrupt, has another length, or
    /// is followed by bytes that are not part of it (a reader must not accept what it ignores).
    static func decompress(_ bytes: [UInt8], expected: Int) -> [UInt8]? {
        var out = [UInt8](repeating: 0, count: max(1, expected))
        var length = uLong(expected)
        var consumed = uLong(bytes.count)
        let status = bytes.withUnsafeBufferPointer { src in
            out.withUnsafeMutableBufferPointer { dst in
                uncompress2(dst.baseAddress, &length, src.baseAddress, &consumed)
            }
        }
        guard status == Z_OK, Int(length) == expected, Int(consumed) == bytes.count else { return nil }
        return Array(out[..<expected])
    }
}
