import CLibDeflate

/// zlib-format deflate streams and CRC-32, as the .pare format stores them (`"compression": "zlib"`),
/// computed with libdeflate: every stream is one whole buffer, which is the case libdeflate is made
/// for (its CRC-32 is vectorized; zlib's is not). The bytes are standard zlib streams any inflater reads.
enum Zlib {
    static func crc32(_ bytes: [UInt8]) -> UInt32 {
        bytes.withUnsafeBytes { crc32($0) }
    }

    static func crc32(_ bytes: UnsafeRawBufferPointer) -> UInt32 {
        libdeflate_crc32(0, bytes.baseAddress, bytes.count)
    }

    /// zlib-wrapped deflate at `level` (libdeflate's 1–12; 6 is its default).
    static func compress(_ bytes: [UInt8], level: Int32 = 6) -> [UInt8]? {
        bytes.withUnsafeBytes { compress($0, level: level) }
    }

    static func compress(_ src: UnsafeRawBufferPointer, level: Int32 = 6) -> [UInt8]? {
        guard let compressor = libdeflate_alloc_compressor(level) else { return nil }
        defer { libdeflate_free_compressor(compressor) }
        let bound = libdeflate_zlib_compress_bound(compressor, src.count)
        var length = 0
        let out = [UInt8](unsafeUninitializedCapacity: bound) { buffer, initialized in
            length = libdeflate_zlib_compress(compressor, src.baseAddress, src.count, buffer.baseAddress, bound)
            initialized = length
        }
        return length > 0 ? out : nil
    }

    /// Inflates to exactly `expected` bytes; nil if the stream is corrupt, has another length, or
    /// is followed by bytes that are not part of it (a reader must not accept what it ignores).
    static func decompress(_ bytes: [UInt8], expected: Int) -> [UInt8]? {
        guard expected >= 0 else { return nil }
        guard let decompressor = libdeflate_alloc_decompressor() else { return nil }
        defer { libdeflate_free_decompressor(decompressor) }
        var consumed = 0
        var produced = 0
        var result = LIBDEFLATE_BAD_DATA
        let out = [UInt8](unsafeUninitializedCapacity: max(1, expected)) { buffer, initialized in
            result = bytes.withUnsafeBytes { src in
                libdeflate_zlib_decompress_ex(
                    decompressor, src.baseAddress, src.count, buffer.baseAddress, expected, &consumed, &produced)
            }
            // What libdeflate wrote is initialized; the rest is never read (the result is refused).
            initialized = result == LIBDEFLATE_SUCCESS ? min(produced, expected) : 0
        }
        guard result == LIBDEFLATE_SUCCESS, produced == expected, consumed == bytes.count else { return nil }
        return out
    }
}
