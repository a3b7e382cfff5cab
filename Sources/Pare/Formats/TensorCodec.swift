import CPareKernels
import Foundation

/// Encodes one tensor into the streams of a `.pare` encoding, and decodes them back (spec/pare-format.md).
enum TensorCodec {
    enum Encoding: String {
        case dense, bitmask, int8
        case int8Bitmask = "int8-bitmask"

        var streamCount: Int {
            switch self {
            case .dense: return 1
            case .bitmask, .int8: return 2
            case .int8Bitmask: return 3
            }
        }
    }

    struct Encoded {
        var encoding: Encoding
        var nonzero: Int?
        var channels: Int?
        /// int8: the axes whose flattened index is the channel a scale belongs to.
        var channelAxes: Range<Int>?
        /// Decoded stream contents, in the encoding's order.
        var streams: [Stream]
        /// For int8: the largest absolute error and the signal-to-quantization-noise ratio in dB.
        var maxAbsError: Double?
        var sqnr: Double?
    }

    /// A stream's bytes: made by the encoding, or the tensor's own bytes (dense), written from where they lie.
    enum Stream {
        case owned([UInt8])
        case source
    }

    struct Options {
        /// Quantize to int8 with one scale per channel over these axes (a kernel's output channels);
        /// nil keeps the tensor exact.
        var int8Axes: Range<Int>?
        /// Store dense at or above this density even if the bitmask would be smaller (1 = only when smaller).
        var denseAbove = 1.0
    }

    static func isZero(_ raw: UnsafeRawBufferPointer, _ i: Int, _ size: Int) -> Bool {
        for k in 0..<size where raw[i * size + k] != 0 { return false }
        return true
    }

    static func mask(_ bytes: [UInt8], count n: Int, size: Int) -> (mask: [UInt8], nonzero: Int) {
        bytes.withUnsafeBytes { mask($0, count: n, size: size) }
    }

    /// `raw` holds `n` elements of `size` bytes (4-byte ones aligned to 4).
    static func mask(_ raw: UnsafeRawBufferPointer, count n: Int, size: Int) -> (mask: [UInt8], nonzero: Int) {
        if size == 4, n > 0 {
            // The common case: eight words make one mask byte (pare_kernels.h).
            var nonzero = 0
            let mask = [UInt8](unsafeUninitializedCapacity: (n + 7) / 8) { m, initialized in
                nonzero = pare_mask_words(raw.baseAddress!.assumingMemoryBound(to: UInt32.self), n, m.baseAddress!)
                initialized = (n + 7) / 8
            }
            return (mask, nonzero)
        }
        var mask = [UInt8](repeating: 0, count: (n + 7) / 8)
        var nonzero = 0
        mask.withUnsafeMutableBufferPointer { m in
            for i in 0..<n where !isZero(raw, i, size) {
                m[i >> 3] |= 1 << UInt8(i & 7)
                nonzero += 1
            }
        }
        return (mask, nonzero)
    }

    /// Calls `body(j, k)` for every set bit: element j of the tensor is value k of the packed stream.
    @inline(__always)
    static func forEachSetBit(_ m: UnsafeBufferPointer<UInt8>, _ body: (Int, Int) -> Void) {
        var k = 0
        for byte in 0..<m.count {
            var bits = m[byte]
            while bits != 0 {
                body(byte * 8 + bits.trailingZeroBitCount, k)
                k += 1
                bits &= bits &- 1
            }
        }
    }

    /// Copies elements of `b` bytes, one per set mask bit: `gather` packs (element j of the full
    /// tensor → value k), otherwise it scatters (value k → element j).
    static func moveBySetBits(
        mask m: [UInt8], from src: UnsafeRawBufferPointer, to dst: UnsafeMutableRawBufferPointer, size b: Int,
        gather: Bool
    ) {
        m.withUnsafeBufferPointer { mask in
            forEachSetBit(mask) { j, k in
                let (from, to) = gather ? (j, k) : (k, j)
                if b == 4 {
                    dst.storeBytes(
                        of: src.loadUnaligned(fromByteOffset: from * 4, as: UInt32.self), toByteOffset: to * 4,
                        as: UInt32.self)
                } else {
                    dst.baseAddress!.advanced(by: to * b).copyMemory(
                        from: src.baseAddress!.advanced(by: from * b), byteCount: b)
                }
            }
        }
    }

    /// The elements whose mask bit is set, packed in order.
    static func packed(_ bytes: [UInt8], mask m: [UInt8], count n: Int, nonzero: Int, size b: Int) throws -> [UInt8] {
        try bytes.withUnsafeBytes { try packed($0, mask: m, count: n, nonzero: nonzero, size: b) }
    }

    /// The tensor's bytes changed while they were encoded (mapped from a file being rewritten).
    struct ChangedWhileRead: Error {}

    static func packed(_ full: UnsafeRawBufferPointer, mask m: [UInt8], count n: Int, nonzero: Int, size b: Int)
        throws -> [UInt8]
    {
        guard b == 4 else {
            var values = [UInt8](repeating: 0, count: nonzero * b)
            values.withUnsafeMutableBytes { moveBySetBits(mask: m, from: full, to: $0, size: b, gather: true) }
            return values
        }
        guard n > 0, nonzero > 0 else { return [] }
        // Words: the mask bit is `word != 0` (pare_kernels.h; whole 8-word stores need 8 words of room).
        var seen = nonzero
        let values = [UInt8](unsafeUninitializedCapacity: (nonzero + 8) * 4) { buffer, initialized in
            seen = pare_pack_words(
                full.baseAddress!.assumingMemoryBound(to: UInt32.self), n,
                UnsafeMutableRawPointer(buffer.baseAddress!).assumingMemoryBound(to: UInt32.self), nonzero + 8)
            initialized = nonzero * 4
        }
        // Bytes mapped from a file another process rewrites can change between the mask's pass and this one.
        guard seen == nonzero else { throw ChangedWhileRead() }
        return values
    }

    /// Words of a bitmask encoding: element j is the next packed value where its bit is set, else zero.
    /// The values are never read past their end, whatever the mask (`decode` checks its count first).
    static func scatteredWords(mask m: [UInt8], values: [UInt8], count n: Int) -> [UInt8] {
        precondition(m.count == (n + 7) / 8, "a mask byte per eight elements")
        return [UInt8](unsafeUninitializedCapacity: n * 4) { buffer, initialized in
            values.withUnsafeBytes { packed in
                m.withUnsafeBufferPointer { mask in
                    let out = UnsafeMutableRawPointer(buffer.baseAddress!).assumingMemoryBound(to: UInt32.self)
                    guard packed.count >= 4 else {
                        // No values (an empty array may have no storage): every element is zero.
                        out.initialize(repeating: 0, count: n)
                        return
                    }
                    _ = pare_scatter_words(
                        mask.baseAddress!, packed.baseAddress!.assumingMemoryBound(to: UInt32.self), packed.count / 4,
                        n, out)
                }
            }
            initialized = n * 4
        }
    }

    /// Encodes the tensor, every stream in memory.
    static func encode(_ tensor: Tensor, _ options: Options) throws -> (Encoded, streams: [[UInt8]]) {
        let bytes = try tensor.bytes()
        let encoded = try bytes.withUnsafeBytes { try encode($0, of: tensor, options) }
        return (
            encoded,
            encoded.streams.map {
                switch $0 {
                case .owned(let b): return b
                case .source: return bytes
                }
            }
        )
    }

    /// Encodes the tensor whose bytes are `bytes` (mapped from its file, or read); a dense stream is
    /// `.source`, written from `bytes` where they lie.
    static func encode(_ bytes: UnsafeRawBufferPointer, of tensor: Tensor, _ options: Options) throws -> Encoded {
        let n = tensor.count
        let b = tensor.dtype.byteCount
        let (m, nonzero) = mask(bytes, count: n, size: b)
        let density = n == 0 ? 1 : Double(nonzero) / Double(n)
        if let axes = options.int8Axes, tensor.dtype.isFloatingPoint, n > 0, axes.lowerBound >= 0,
            axes.upperBound <= tensor.shape.count, !axes.isEmpty
        {
            return try quantize(tensor, axes: axes, mask: m, nonzero: nonzero, density: density, options: options)
        }
        let sparseSize = m.count + nonzero * b
        if sparseSize >= n * b || density >= options.denseAbove {
            return Encoded(encoding: .dense, streams: [.source])
        }
        return Encoded(
            encoding: .bitmask, nonzero: nonzero,
            streams: [.owned(m), .owned(try packed(bytes, mask: m, count: n, nonzero: nonzero, size: b))])
    }

    struct QuantizationError: Error {
        let index: Int
        let value: Float
    }

    /// Symmetric int8 with one scale per channel, the channel of element `j` being `(j / inner) % channels`
    /// for the flattened `axes` (`inner`: the elements after them).
    static func quantize(
        _ tensor: Tensor, axes: Range<Int>, mask m: [UInt8], nonzero: Int, density: Double, options: Options
    ) throws -> Encoded {
        let w = try tensor.floats()
        // int8 has no NaN or infinity: storing 0 in their place would change the model silently.
        if let bad = w.firstIndex(where: { !$0.isFinite }) {
            throw QuantizationError(index: bad, value: w[bad])
        }
        let n = w.count
        let channels = tensor.shape[axes].reduce(1, *)
        let inner = tensor.shape[axes.upperBound...].reduce(1, *)
        var maxAbs = [Float](repeating: 0, count: channels)
        for (j, v) in w.enumerated() {
            let c = (j / inner) % channels
            maxAbs[c] = max(maxAbs[c], abs(v))
        }
        let scales = maxAbs.map { $0 > 0 && $0.isFinite ? $0 / 127 : 1 }
        var q = [Int8](repeating: 0, count: n)
        var maxError = 0.0
        var signal = 0.0
        var noise = 0.0
        for (j, v) in w.enumerated() {
            let s = scales[(j / inner) % channels]
            let r = (v / s).rounded(.toNearestOrAwayFromZero)
            q[j] = Int8(max(-127, min(127, r.isFinite ? r : 0)))
            let back = Double(Float(q[j]) * s)
            maxError = max(maxError, abs(back - Double(v)))
            signal += Double(v) * Double(v)
            noise += (back - Double(v)) * (back - Double(v))
        }
        var scaleBytes = [UInt8]()
        for s in scales { withUnsafeBytes(of: s.bitPattern.littleEndian) { scaleBytes += $0 } }
        let sqnr = noise == 0 ? Double.infinity : 10 * log10(signal / noise)
        let bitmaskSize = m.count + nonzero
        if bitmaskSize >= n || density >= options.denseAbove {
            return Encoded(
                encoding: .int8, channels: channels, channelAxes: axes,
                streams: [.owned(scaleBytes), .owned(q.map { UInt8(bitPattern: $0) })],
                maxAbsError: maxError, sqnr: sqnr)
        }
        var values = [UInt8]()
        for j in 0..<n where m[j >> 3] & (1 << UInt8(j & 7)) != 0 { values.append(UInt8(bitPattern: q[j])) }
        return Encoded(
            encoding: .int8Bitmask, nonzero: nonzero, channels: channels, channelAxes: axes,
            streams: [.owned(scaleBytes), .owned(m), .owned(values)],
            maxAbsError: maxError, sqnr: sqnr)
    }

    /// The decoded length each stream must have.
    static func expectedLengths(_ encoding: Encoding, dtype: DType, count n: Int, nonzero: Int?, channels: Int?)
        -> [Int]
    {
        let b = dtype.byteCount
        switch encoding {
        case .dense: return [n * b]
        case .bitmask: return [(n + 7) / 8, (nonzero ?? 0) * b]
        case .int8: return [4 * (channels ?? 1), n]
        case .int8Bitmask: return [4 * (channels ?? 1), (n + 7) / 8, nonzero ?? 0]
        }
    }

    /// Rebuilds the tensor's bytes; `fail` names what is wrong.
    static func decode(
        _ encoding: Encoding, dtype: DType, shape: [Int], nonzero: Int?, channels: Int?, channelAxes: Range<Int>?,
        streams: [[UInt8]], fail: (String) -> Error
    ) throws -> [UInt8] {
        let n = shape.reduce(1, *)
        // Elements after the channel axes share a scale (1.0 files: the last axis, inner 1).
        let inner = channelAxes.map { shape[$0.upperBound...].reduce(1, *) } ?? 1
        let b = dtype.byteCount
        func checkMask(_ m: [UInt8]) throws {
            guard m.count == (n + 7) / 8 else { throw fail("mask has \(m.count) bytes for \(n) elements") }
            var bits = 0
            for byte in m { bits += byte.nonzeroBitCount }
            if n % 8 != 0, let last = m.last, last >> UInt8(n % 8) != 0 { throw fail("mask padding bits are set") }
            guard bits == nonzero else {
                throw fail("mask has \(bits) bits set, the header says \(nonzero ?? 0) values")
            }
        }
        func scales(_ s: [UInt8]) throws -> [Float] {
            let values = (0..<(s.count / 4)).map { i in
                Float(
                    bitPattern: UInt32(s[4 * i]) | UInt32(s[4 * i + 1]) << 8 | UInt32(s[4 * i + 2]) << 16 | UInt32(
                        s[4 * i + 3]) << 24)
            }
            guard values.allSatisfy({ $0.isFinite && $0 > 0 }) else { throw fail("a scale is not finite and positive") }
            return values
        }
        func dequantized(_ q: (Int) -> Int8?, _ scales: [Float]) throws -> [UInt8] {
            var out = [Float](repeating: 0, count: n)
            for j in 0..<n {
                guard let v = q(j) else { continue }
                guard v != -128 else { throw fail("int8 value −128 is outside [−127, 127]") }
                out[j] = Float(v) * scales[(j / inner) % scales.count]
            }
            return try Tensor(dtype: dtype, shape: shape, bytes: [UInt8](repeating: 0, count: n * b)).replacingValues(
                out
            ).bytes()
        }
        switch encoding {
        case .dense:
            return streams[0]
        case .bitmask:
            let (m, values) = (streams[0], streams[1])
            try checkMask(m)
            guard values.count == (nonzero ?? 0) * b else {
                throw fail("\(values.count) bytes of values for \(nonzero ?? 0) elements of \(b) bytes")
            }
            if b == 4, n > 0 { return scatteredWords(mask: m, values: values, count: n) }
            var out = [UInt8](repeating: 0, count: n * b)
            values.withUnsafeBytes { packedValues in
                out.withUnsafeMutableBytes {
                    moveBySetBits(mask: m, from: packedValues, to: $0, size: b, gather: false)
                }
            }
            return out
        case .int8:
            let s = try scales(streams[0])
            let q = streams[1]
            return try dequantized({ Int8(bitPattern: q[$0]) }, s)
        case .int8Bitmask:
            let s = try scales(streams[0])
            let (m, values) = (streams[1], streams[2])
            try checkMask(m)
            var index = [Int](repeating: -1, count: n)
            var k = 0
            for j in 0..<n where m[j >> 3] & (1 << UInt8(j & 7)) != 0 {
                index[j] = k
                k += 1
            }
            return try dequantized({ index[$0] >= 0 ? Int8(bitPattern: values[index[$0]]) : nil }, s)
        }
    }
}
