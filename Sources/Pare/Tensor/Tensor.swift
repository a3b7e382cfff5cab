/// A weight tensor: shape, dtype and row-major little-endian bytes.
///
/// Tensors read from a file are deferred: their bytes are read when asked for and not kept, so a
/// conversion holds one tensor at a time. Tensors made by a transformation hold their bytes.
public struct Tensor: Sendable {
    public let dtype: DType
    public let shape: [Int]
    private let source: Source

    private enum Source: Sendable {
        case bytes([UInt8])
        case deferred(@Sendable () throws -> [UInt8])
        /// `allow` throws if the tensor may not be allocated (the memory budget); `fill` then writes
        /// exactly `byteCount` bytes into the start of the buffer it is given (or throws): the bytes go
        /// straight where they are needed, a float32 tensor's into the `[Float]` that `floats()` returns.
        /// `capacity` (≥ `byteCount`) is the size of that buffer: an edit made in place (a slice
        /// compacts forward, a zeroing overwrites) works in the buffer its source was read into, so a
        /// pruned kernel costs one read and no second buffer.
        /// `map`, when the bytes lie plain in a file, calls its argument with them mapped from the file
        /// and returns true (false: not mapped; read them with `fill`).
        /// `exact`, for an edit of mapped bytes, writes the result into a buffer of exactly `byteCount`
        /// bytes and returns true (false: it could not; use `fill`).
        case filled(
            allow: @Sendable () throws -> Void, capacity: Int,
            fill: @Sendable (UnsafeMutableRawBufferPointer) throws -> Void, map: MappedBytes?, exact: FillExactly?)
    }

    typealias FillExactly = @Sendable (UnsafeMutableRawBufferPointer) throws -> Bool

    /// Calls its argument with a tensor's bytes mapped from its file and returns true, or returns false
    /// (without calling it) when they cannot be mapped.
    public typealias MappedBytes = @Sendable (_ body: (UnsafeRawBufferPointer) throws -> Void) throws -> Bool

    public init(dtype: DType, shape: [Int], bytes: [UInt8]) {
        precondition(bytes.count == shape.reduce(1, *) * dtype.byteCount, "tensor byte count does not match shape")
        self.dtype = dtype
        self.shape = shape
        self.source = .bytes(bytes)
    }

    /// A tensor whose bytes are read by `load` when needed. `load` must return exactly
    /// `count * dtype.byteCount` bytes; `bytes()` checks it.
    public init(dtype: DType, shape: [Int], load: @escaping @Sendable () throws -> [UInt8]) {
        self.dtype = dtype
        self.shape = shape
        self.source = .deferred(load)
    }

    /// A tensor whose bytes `fill` writes when needed, into a buffer of exactly `byteCount` bytes that
    /// it must fill completely (or throw): the memory it gets is not initialized. `allow` runs first,
    /// before anything is allocated, and throws when the tensor may not be (the memory budget).
    /// `map`, for bytes that lie plain in a file, lends them mapped (see `withBytes`).
    public init(
        dtype: DType, shape: [Int], allow: @escaping @Sendable () throws -> Void = {},
        fill: @escaping @Sendable (UnsafeMutableRawBufferPointer) throws -> Void, map: MappedBytes? = nil
    ) {
        self.dtype = dtype
        self.shape = shape
        self.source = .filled(
            allow: allow, capacity: shape.reduce(1, *) * dtype.byteCount, fill: fill, map: map, exact: nil)
    }

    public init(float32 values: [Float], shape: [Int]) {
        #if _endian(little)
            // Stored little-endian: the values' own bytes, in one copy.
            let bytes = values.withUnsafeBytes { [UInt8]($0) }
        #else
            var bytes = [UInt8](repeating: 0, count: values.count * 4)
            bytes.withUnsafeMutableBytes { raw in
                for (i, v) in values.enumerated() {
                    raw.storeBytes(of: v.bitPattern.littleEndian, toByteOffset: i * 4, as: UInt32.self)
                }
            }
        #endif
        self.init(dtype: .float32, shape: shape, bytes: bytes)
    }

    /// Whether the bytes are read when asked for (from a file, or by an edit of such a tensor).
    public var isDeferred: Bool {
        if case .bytes = source { return false }
        return true
    }

    /// The same tensor with its bytes made by an edit of this tensor's bytes: at once when they are in
    /// memory, else when asked for, so that editing a model read from a file holds no weights (a masked
    /// or pruned model costs nothing until it runs or is written, one tensor at a time).
    ///
    /// `inPlace` receives a buffer that starts with this tensor's bytes and rewrites its start into the
    /// new shape's bytes (never more than the source's: edits slice or zero). `copying`, when given,
    /// writes the new bytes from the source into a separate buffer of the new size; it is used for
    /// bytes held in memory, which keep their own array, and for bytes mapped from a file. Arrays
    /// returned for a smaller result are cut to its size (see `exactly`): the memory budget counts them.
    func edited(
        shape newShape: [Int], _ inPlace: @escaping @Sendable (UnsafeMutableRawBufferPointer) -> Void,
        copying: (@Sendable (UnsafeRawBufferPointer, UnsafeMutableRawBufferPointer) -> Void)? = nil
    ) throws -> Tensor {
        let newCount = newShape.reduce(1, *) * dtype.byteCount
        let oldCount = byteCount
        precondition(newCount <= oldCount, "an edit never makes a tensor larger")
        switch source {
        case .bytes(let b):
            let out = [UInt8](unsafeUninitializedCapacity: copying == nil ? oldCount : newCount) {
                buffer, initialized in
                let destination = UnsafeMutableRawBufferPointer(buffer)
                b.withUnsafeBytes { source in
                    if let copying {
                        copying(source, destination)
                    } else {
                        destination.copyMemory(from: source)
                        inPlace(destination)
                    }
                }
                initialized = newCount
            }
            return Tensor(dtype: dtype, shape: newShape, bytes: out)
        case .deferred:
            // A loader checks its own budget before it allocates; the edit works in the loaded array.
            let original = self
            return Tensor(
                dtype: dtype, shape: newShape,
                load: {
                    var bytes = try original.bytes()
                    bytes.withUnsafeMutableBytes { inPlace($0) }
                    return Self.exactly(bytes, newCount)
                })
        case .filled(let allow, let capacity, let fill, let map, _):
            // The source's budget check (which names its file) runs before anything is allocated. A copying
            // edit of mapped bytes reads them once, from the page cache, into its output.
            var exact: FillExactly?
            if let copying, let map {
                exact = { buffer in
                    guard MappedReads.enabled else { return false }
                    var copied = false
                    _ = try map { source in
                        guard Self.wordAligned(source) else { return }
                        copying(source, buffer)
                        copied = true
                    }
                    return copied
                }
            }
            return Tensor(
                dtype: dtype, shape: newShape,
                source: .filled(
                    allow: allow, capacity: capacity,
                    fill: { [exact] buffer in
                        if let exact, try exact(UnsafeMutableRawBufferPointer(rebasing: buffer[..<newCount])) { return }
                        try fill(buffer)
                        inPlace(UnsafeMutableRawBufferPointer(rebasing: buffer[..<oldCount]))
                    }, map: nil, exact: exact))
        }
    }

    private init(dtype: DType, shape: [Int], source: Source) {
        self.dtype = dtype
        self.shape = shape
        self.source = source
    }

    /// Mapped bytes are used where they start on an 8-byte boundary (HDF5 places data so): the loops that
    /// read them load 4- and 8-byte words, which Swift's typed pointers require aligned.
    static func wordAligned(_ raw: UnsafeRawBufferPointer) -> Bool {
        Int(bitPattern: raw.baseAddress) % 8 == 0
    }

    /// Calls `body` with the tensor's bytes: mapped straight from its file (no copy) when they lie there
    /// plain, 8-byte aligned, and `MappedReads` is enabled; else read into memory.
    public func withBytes<R>(_ body: (UnsafeRawBufferPointer) throws -> R) throws -> R {
        if MappedReads.enabled, case .filled(_, _, _, let map?, _) = source {
            var result: R?
            _ = try map { raw in
                guard Self.wordAligned(raw) else { return }
                result = try body(raw)
            }
            if let result { return result }
        }
        return try bytes().withUnsafeBytes(body)
    }

    /// Calls `body` with the values as float32: the mapped bytes themselves for little-endian float32
    /// (see `withBytes`), else `floats()`.
    public func withFloats<R>(_ body: (UnsafeBufferPointer<Float>) throws -> R) throws -> R {
        #if _endian(little)
            if dtype == .float32, MappedReads.enabled, case .filled(_, _, _, _?, _) = source {
                return try withBytes { raw in
                    try body(
                        UnsafeBufferPointer(start: raw.baseAddress?.assumingMemoryBound(to: Float.self), count: count))
                }
            }
        #endif
        return try floats().withUnsafeBufferPointer(body)
    }

    /// The `count` elements a `.filled` source writes: straight into an array of their size when `exact`
    /// can (a copying edit of mapped bytes), else through `fill` into a buffer of `capacityBytes`, cut to size.
    private static func filledArray<T>(
        count n: Int, capacityBytes: Int, fill: (UnsafeMutableRawBufferPointer) throws -> Void, exact: FillExactly?
    ) throws -> [T] {
        if let exact {
            var done = false
            let values = try [T](unsafeUninitializedCapacity: n) { buffer, initialized in
                done = try exact(UnsafeMutableRawBufferPointer(buffer))
                initialized = done ? n : 0
            }
            if done { return values }
        }
        return exactly(
            try [T](unsafeUninitializedCapacity: capacityBytes / MemoryLayout<T>.stride) { buffer, initialized in
                try fill(UnsafeMutableRawBufferPointer(buffer))
                initialized = n
            }, n)
    }

    /// `array` itself when it holds no more than `count` elements' room, else its first `count` copied
    /// into an array of their size: an edit made in its source's buffer would otherwise keep the
    /// source's memory for as long as the result is held (the interpreter's resident weights).
    static func exactly<T>(_ array: [T], _ count: Int) -> [T] {
        if array.count == count, array.capacity - count <= max(1024, count / 8) { return array }
        // Through a buffer pointer: an Array made from a slice of a whole array shares its storage.
        return array.withUnsafeBufferPointer { Array(UnsafeBufferPointer(rebasing: $0[..<count])) }
    }

    public var count: Int { shape.reduce(1, *) }
    public var byteCount: Int { count * dtype.byteCount }

    public func bytes() throws -> [UInt8] {
        switch source {
        case .bytes(let b): return b
        case .deferred(let load):
            let b = try load()
            guard b.count == byteCount else {
                throw PareError(
                    file: "<tensor>", "read \(b.count) bytes where shape \(shape) of \(dtype) needs \(byteCount)")
            }
            return b
        case .filled(let allow, let capacity, let fill, _, let exact):
            try allow()
            return try Self.filledArray(count: byteCount, capacityBytes: capacity, fill: fill, exact: exact)
        }
    }

    /// The values widened (or narrowed) to Float; integers convert numerically.
    public func floats() throws -> [Float] {
        #if _endian(little)
            // Little-endian float32 written in place: no byte array at all (half the memory of a layer).
            if dtype == .float32, case .filled(let allow, let capacity, let fill, _, let exact) = source {
                try allow()
                return try Self.filledArray(count: count, capacityBytes: capacity, fill: fill, exact: exact)
            }
        #endif
        let b = try bytes()
        #if _endian(little)
            if dtype == .float32 {
                // Little-endian float32 is already the values: one copy (a large kernel took seconds
                // value by value).
                return [Float](unsafeUninitializedCapacity: count) { buffer, initialized in
                    b.withUnsafeBytes { raw in
                        UnsafeMutableRawBufferPointer(buffer).copyMemory(
                            from: UnsafeRawBufferPointer(rebasing: raw[..<(count * 4)]))
                    }
                    initialized = count
                }
            }
        #endif
        return b.withUnsafeBytes { raw in
            (0..<count).map { i in Tensor.float(raw, i, dtype) }
        }
    }

    /// The values as Double: floats widened exactly, integers converted numerically (labels keep
    /// 2^64 − 1 as a huge number rather than wrapping or trapping).
    public func doubles() throws -> [Double] {
        let b = try bytes()
        return b.withUnsafeBytes { raw in
            (0..<count).map { i -> Double in
                switch dtype {
                case .float64:
                    return Double(bitPattern: raw.loadUnaligned(fromByteOffset: i * 8, as: UInt64.self).littleEndian)
                case .int64: return Double(raw.loadUnaligned(fromByteOffset: i * 8, as: Int64.self).littleEndian)
                case .uint64: return Double(raw.loadUnaligned(fromByteOffset: i * 8, as: UInt64.self).littleEndian)
                case .int32: return Double(raw.loadUnaligned(fromByteOffset: i * 4, as: Int32.self).littleEndian)
                case .uint32: return Double(raw.loadUnaligned(fromByteOffset: i * 4, as: UInt32.self).littleEndian)
                default: return Double(Tensor.float(raw, i, dtype))
                }
            }
        }
    }

    static func float(_ raw: UnsafeRawBufferPointer, _ i: Int, _ dtype: DType) -> Float {
        switch dtype {
        case .float32: return Float(bitPattern: raw.loadUnaligned(fromByteOffset: i * 4, as: UInt32.self).littleEndian)
        case .float64:
            return Float(Double(bitPattern: raw.loadUnaligned(fromByteOffset: i * 8, as: UInt64.self).littleEndian))
        case .float16: return halfToFloat(raw.loadUnaligned(fromByteOffset: i * 2, as: UInt16.self).littleEndian)
        case .bfloat16:
            return Float(
                bitPattern: UInt32(raw.loadUnaligned(fromByteOffset: i * 2, as: UInt16.self).littleEndian) << 16)
        case .int8: return Float(raw.load(fromByteOffset: i, as: Int8.self))
        case .uint8: return Float(raw.load(fromByteOffset: i, as: UInt8.self))
        case .int16: return Float(raw.loadUnaligned(fromByteOffset: i * 2, as: Int16.self).littleEndian)
        case .uint16: return Float(raw.loadUnaligned(fromByteOffset: i * 2, as: UInt16.self).littleEndian)
        case .int32: return Float(raw.loadUnaligned(fromByteOffset: i * 4, as: Int32.self).littleEndian)
        case .uint32: return Float(raw.loadUnaligned(fromByteOffset: i * 4, as: UInt32.self).littleEndian)
        case .int64: return Float(raw.loadUnaligned(fromByteOffset: i * 8, as: Int64.self).littleEndian)
        case .uint64: return Float(raw.loadUnaligned(fromByteOffset: i * 8, as: UInt64.self).littleEndian)
        }
    }

    /// Whether element i is exactly zero (+0.0 or −0.0 for floats).
    static func isZero(_ raw: UnsafeRawBufferPointer, _ i: Int, _ dtype: DType) -> Bool {
        switch dtype.byteCount {
        case 1: return raw[i] == 0
        case 2:
            let v = raw.loadUnaligned(fromByteOffset: i * 2, as: UInt16.self)
            return dtype.isFloatingPoint ? (v & 0x7FFF) == 0 : v == 0
        case 4:
            let v = raw.loadUnaligned(fromByteOffset: i * 4, as: UInt32.self)
            return dtype.isFloatingPoint ? (v & 0x7FFF_FFFF) == 0 : v == 0
        default:
            let v = raw.loadUnaligned(fromByteOffset: i * 8, as: UInt64.self)
            return dtype.isFloatingPoint ? (v & 0x7FFF_FFFF_FFFF_FFFF) == 0 : v == 0
        }
    }
}

/// IEEE binary16 → binary32, exact (including subnormals, infinities and NaN payloads).
func halfToFloat(_ h: UInt16) -> Float {
    let sign = UInt32(h & 0x8000) << 16
    let exponent = UInt32(h >> 10) & 0x1F
    var mantissa = UInt32(h & 0x3FF)
    if exponent == 0 {
        if mantissa == 0 { return Float(bitPattern: sign) }
        var e: UInt32 = 127 - 15 + 1
        while mantissa & 0x400 == 0 {
            mantissa <<= 1
            e -= 1
        }
        mantissa &= 0x3FF
        return Float(bitPattern: sign | (e << 23) | (mantissa << 13))
    }
    if exponent == 0x1F { return Float(bitPattern: sign | 0x7F80_0000 | (mantissa << 13)) }
    return Float(bitPattern: sign | ((exponent + 127 - 15) << 23) | (mantissa << 13))
}

/// Whether tensors read from files may lend their bytes mapped from the file instead of read into memory.
/// Off unless enabled: a file truncated by another process while mapped raises SIGBUS, which the command
/// line turns into an error naming the file (`pare_sigbus_install`); a library user who enables it
/// takes that on. Mapped bytes are shared with the file: a pass that reads them twice can see them
/// change if another process rewrites the file in place (`.pare` packing then refuses the tensor).
public enum MappedReads {
    nonisolated(unsafe) public static var enabled = false
}
