import Foundation
import SystemPackage

/// Reading and writing `.pare` files (spec/pare-format.md).
public enum PareFile {
    static let magic: [UInt8] = [0x89, 0x50, 0x41, 0x52, 0x45, 0x0D, 0x0A, 0x1A]
    static let trailerMagic: [UInt8] = Array("PAREHDR".utf8) + [0]
    static let alignment = 64
    static let maxHeader = 64 << 20

    public struct PackOptions: Sendable {
        public var int8 = false
        public var deflate = false
        public var denseAbove = 1.0
        public init(int8: Bool = false, deflate: Bool = false, denseAbove: Double = 1.0) {
            self.int8 = int8
            self.deflate = deflate
            self.denseAbove = denseAbove
        }
    }

    /// What `pack` reports per tensor.
    public struct PackedTensor: Sendable {
        public var index: Int
        public var dtype: DType
        public var shape: [Int]
        public var encoding: String
        public var storedBytes: Int
        public var denseBytes: Int
        public var maxAbsError: Double?
        public var sqnr: Double?
    }

    static func aligned(_ n: Int) -> Int { (n + alignment - 1) / alignment * alignment }

    static func le<T: FixedWidthInteger>(_ v: T) -> [UInt8] { withUnsafeBytes(of: v.littleEndian) { Array($0) } }

    static func readLE<T: FixedWidthInteger>(_ b: [UInt8], _ at: Int, as: T.Type) -> T {
        var v: T = 0
        for i in 0..<MemoryLayout<T>.size { v |= T(b[at + i]) << (8 * i) }
        return v
    }

    // MARK: Writing

    /// For `--int8`: each layer weight's output-channel axes, as its layer's kind states them, by
    /// layer and weight name. Weights without such axes (biases, statistics, unknown layers,
    /// weights-only files without an architecture) and optimizer state stay exact.
    static func outputChannelAxes(_ model: Model) throws -> [String: [String: Range<Int>]] {
        let checked = try CheckedModel(model)
        var axes: [String: [String: Range<Int>]] = [:]
        for unit in checked.weightUnits {
            let top = String(unit.path.split(separator: "/").first ?? "")
            for specified in checked.specifiedWeights(unit.path) {
                if let outputAxes = specified.spec.outputAxes {
                    axes[top, default: [:]][specified.weight.name] = outputAxes
                }
            }
        }
        return axes
    }

    /// Writes `model` as `.pare`, one tensor in memory at a time; returns what each tensor became.
    @discardableResult
    public static func write(
        _ model: Model, to path: String, options: PackOptions = PackOptions(),
        progress: ((Int, Int) -> Void)? = nil
    ) throws -> [PackedTensor] {
        var packed: [PackedTensor] = []
        let int8Axes = options.int8 ? try outputChannelAxes(model) : [:]
        try AtomicFile.write(to: path) { temporary in
            let output: FileDescriptor
            do {
                output = try FileDescriptor.open(
                    FilePath(temporary), .writeOnly, options: [.create, .exclusiveCreate, .closeOnExec],
                    permissions: FilePermissions(rawValue: 0o666))
            } catch {
                throw PareError(file: path, "cannot create: \(systemMessage(error))")
            }
            defer { try? output.close() }
            var offset = 0
            // Each stream is one write straight from its array (writeAll retries short writes and EINTR).
            func emit(_ bytes: [UInt8]) throws { try bytes.withUnsafeBytes { try emit($0) } }
            func emit(_ bytes: UnsafeRawBufferPointer) throws {
                do { _ = try output.writeAll(bytes) } catch let error as Errno where error == .badAddress {
                    // write(2) from a mapped page past a file's end (an input truncated meanwhile) is EFAULT.
                    throw PareError(
                        file: model.sourcePath, "the file was truncated while Pare read it; nothing written")
                } catch {
                    throw PareError(file: path, "write failed: \(systemMessage(error))")
                }
                offset += bytes.count
            }
            let start = magic + le(UInt16(1)) + le(UInt16(1)) + le(UInt32(0))
            try emit(start + le(Zlib.crc32(start)) + [UInt8](repeating: 0, count: 44))
            var entries: [JSON] = []
            let total = countTensors(model)
            let modelJSON = try PareModelJSON.model(model) { tensor, place in
                let index = entries.count
                let axes = place.layer.flatMap { layer in place.weight.flatMap { int8Axes[layer]?[$0] } }
                let codecOptions = TensorCodec.Options(int8Axes: axes, denseAbove: options.denseAbove)
                var streams: [JSON] = []
                var stored = 0
                func write(_ raw: UnsafeRawBufferPointer) throws {
                    var compression = "none"
                    var compressed: [UInt8]?
                    if options.deflate, raw.count > 64, let z = Zlib.compress(raw), z.count < raw.count {
                        compressed = z
                        compression = "zlib"
                    }
                    try compressed.withUnsafeBytesOr(raw) { data in
                        streams.append(
                            .object([
                                ("offset", .int(offset)), ("length", .int(data.count)),
                                ("decoded_length", .int(raw.count)), ("compression", .string(compression)),
                                ("crc32", .int(Int(Zlib.crc32(data)))),
                            ]))
                        try emit(data)
                        stored += data.count
                    }
                    try emit([UInt8](repeating: 0, count: aligned(offset) - offset))
                }
                // The tensor's bytes as they lie in the page cache when they can be (a dense stream is then
                // written straight from there), else read into memory.
                let encoded: TensorCodec.Encoded
                do {
                    encoded = try tensor.withBytes { source in
                        let encoded = try TensorCodec.encode(source, of: tensor, codecOptions)
                        for stream in encoded.streams {
                            switch stream {
                            case .owned(let bytes): try bytes.withUnsafeBytes { try write($0) }
                            case .source: try write(source)
                            }
                        }
                        return encoded
                    }
                } catch let bad as TensorCodec.QuantizationError {
                    throw PareError(
                        file: model.sourcePath, object: "tensor \(index) (shape \(tensor.shape))",
                        .notQuantizable(value: bad.value, index: bad.index))
                } catch is TensorCodec.ChangedWhileRead {
                    throw PareError(
                        file: model.sourcePath, object: "tensor \(index) (shape \(tensor.shape))",
                        "its bytes changed while Pare read them (the file is being rewritten); nothing written")
                }
                var entry: [(String, JSON)] = [
                    ("dtype", .string(tensor.dtype.rawValue)), ("shape", .array(tensor.shape.map(JSON.int))),
                    ("encoding", .string(encoded.encoding.rawValue)),
                ]
                if let nz = encoded.nonzero { entry.append(("nonzero", .int(nz))) }
                if let c = encoded.channels { entry.append(("channels", .int(c))) }
                if let axes = encoded.channelAxes {
                    entry.append(("channel_axes", .array([.int(axes.lowerBound), .int(axes.upperBound)])))
                }
                entry.append(("streams", .array(streams)))
                entries.append(.object(entry))
                packed.append(
                    PackedTensor(
                        index: index, dtype: tensor.dtype, shape: tensor.shape, encoding: encoded.encoding.rawValue,
                        storedBytes: stored, denseBytes: tensor.byteCount, maxAbsError: encoded.maxAbsError,
                        sqnr: encoded.sqnr))
                progress?(index + 1, total)
                return index
            }
            let header = Array(
                JSON.object([
                    ("format", .string("pare")), ("version", .array([.int(1), .int(1)])),
                    ("model", modelJSON), ("tensors", .array(entries)),
                ]).serialized().utf8)
            guard header.count <= maxHeader else {
                throw PareError(file: path, "the header would be \(header.count) bytes, over the 64 MiB limit")
            }
            let headerOffset = offset
            try emit(header)
            var trailer = trailerMagic + le(UInt64(headerOffset)) + le(UInt64(header.count)) + le(Zlib.crc32(header))
            trailer += le(Zlib.crc32(trailer))
            try emit(trailer)
            // No fsync: like cp, h5py and Keras's own save, the file reaches the disk when the kernel
            // writes it back. The rename makes it all-or-nothing for a process that dies or is killed.
        }
        return packed
    }

    static func countTensors(_ model: Model) -> Int {
        model.layers.reduce(0) { $0 + $1.weights.count } + (model.optimizer?.datasets().count ?? 0)
            + model.rootExtras.reduce(0) { $0 + $1.datasets().count }
            + model.weightsGroupExtras.reduce(0) { $0 + $1.datasets().count }
    }

    // MARK: Reading

    struct StreamEntry {
        var offset: Int
        var length: Int
        var decoded: Int
        var zlib: Bool
        var crc: UInt32
    }
    struct TensorEntry {
        var dtype: DType
        var shape: [Int]
        var encoding: TensorCodec.Encoding
        var nonzero: Int?
        var channels: Int?
        var channelAxes: Range<Int>?
        var streams: [StreamEntry]
    }

    /// Whether the file starts with the `.pare` magic.
    public static func looksLikePare(_ head: Data) -> Bool { head.starts(with: magic) }

    /// Opens a `.pare` file: validates its structure (every rule of the spec but the stream
    /// checksums, which are checked as each tensor is read) and returns the model with deferred tensors.
    public static func read(_ path: String) throws -> Model {
        let (model, _) = try open(path)
        return model
    }

    /// Reads every tensor as well, so every checksum and encoding rule is checked. Returns a summary.
    public static func check(_ path: String) throws -> String {
        let (model, entries) = try open(path)
        var checked = 0
        for layer in model.layers {
            for w in layer.weights {
                _ = try w.tensor.bytes()
                checked += 1
            }
        }
        for node in [model.optimizer].compactMap({ $0 }) + model.rootExtras + model.weightsGroupExtras {
            for t in node.datasets().map(\.tensor) {
                _ = try t.bytes()
                checked += 1
            }
        }
        let size = (try? FileManager.default.attributesOfItem(atPath: path)[.size] as? Int) ?? 0
        let prologue = try BoundedFile(path).read(8, 4)
        let version = "\(readLE(prologue, 0, as: UInt16.self)).\(readLE(prologue, 2, as: UInt16.self))"
        return
            "\(path): ok: .pare \(version), \(checked) tensors (\(entries.filter { $0.encoding != .dense }.count) "
            + "sparse or quantized), \(model.layers.count) layers, \(size) bytes, every checksum verified"
    }

    static func open(_ path: String) throws -> (Model, [TensorEntry]) {
        func fail(_ problem: String) -> PareError { PareError(file: path, problem) }
        let file = try BoundedFile(path)
        let size = file.size
        let read = file.read
        guard size >= 96 else { throw fail("too short for a .pare file (\(size) bytes; at least 96)") }
        let prologue = try read(0, 64)
        guard Array(prologue[0..<8]) == magic else { throw fail("not a .pare file (bad magic)") }
        let major = readLE(prologue, 8, as: UInt16.self)
        let minor = readLE(prologue, 10, as: UInt16.self)
        guard major == 1 else { throw fail(".pare version \(major).\(minor) is not supported (this reader knows 1.x)") }
        guard readLE(prologue, 16, as: UInt32.self) == Zlib.crc32(Array(prologue[0..<16])) else {
            throw fail("prologue checksum mismatch")
        }
        guard prologue[12..<16].allSatisfy({ $0 == 0 }), prologue[20..<64].allSatisfy({ $0 == 0 }) else {
            throw fail("prologue flags or reserved bytes are not zero")
        }
        let trailer = try read(size - 32, 32)
        guard Array(trailer[0..<8]) == trailerMagic else {
            throw fail("bad trailer magic (truncated or not a .pare file)")
        }
        guard readLE(trailer, 28, as: UInt32.self) == Zlib.crc32(Array(trailer[0..<28])) else {
            throw fail("trailer checksum mismatch")
        }
        let h = readLE(trailer, 8, as: UInt64.self)
        let l = readLE(trailer, 16, as: UInt64.self)
        guard l <= UInt64(maxHeader) else { throw fail("header length \(l) is over the 64 MiB limit") }
        guard h >= 64, h % 64 == 0, h <= UInt64(size), l + 32 <= UInt64(size) - h, h + l + 32 == UInt64(size) else {
            throw fail("header at \(h) of \(l) bytes does not fit a file of \(size) bytes")
        }
        let header = try read(Int(h), Int(l))
        guard readLE(trailer, 24, as: UInt32.self) == Zlib.crc32(header) else { throw fail("header checksum mismatch") }
        let json: JSON
        // Decoding would replace bad bytes with U+FFFD: a header that is not UTF-8 is refused instead.
        guard let headerText = String(validating: header, as: UTF8.self) else {
            throw fail("header is not valid UTF-8")
        }
        do { json = try JSON.parse(headerText) } catch {
            throw fail("header is not valid JSON: \(error)")
        }
        guard json["format"]?.stringValue == "pare", json["version"]?[0]?.intValue == 1,
            let list = json["tensors"]?.arrayValue
        else {
            throw fail("header is not a .pare 1.x header")
        }
        var entries: [TensorEntry] = []
        var expectedOffset = 64
        for (i, t) in list.enumerated() {
            func bad(_ what: String) -> PareError { fail("tensor \(i): \(what)") }
            guard let dtype = t["dtype"]?.stringValue.flatMap(DType.init(rawValue:)) else { throw bad("unknown dtype") }
            guard let shape = t["shape"]?.arrayValue?.map({ $0.intValue ?? -1 }), shape.allSatisfy({ $0 >= 0 }) else {
                throw bad("malformed shape")
            }
            // Every dimension is bounded, not only the product: after a 0 the product stays 0, and
            // products over a subset of the axes (int8 channels) must not overflow either.
            guard shape.count <= 64, shape.allSatisfy({ $0 <= Int(UInt32.max) }) else {
                throw bad("shape \(shape) has a dimension over 2^32 or more than 64 axes")
            }
            var n = 1
            for d in shape {
                let (p, o) = n.multipliedReportingOverflow(by: d)
                guard !o, p <= Int(UInt32.max) * 64 else { throw bad("shape \(shape) overflows") }
                n = p
            }
            guard let encoding = t["encoding"]?.stringValue.flatMap(TensorCodec.Encoding.init(rawValue:)) else {
                throw bad("unknown encoding")
            }
            let nonzero = t["nonzero"]?.intValue
            let channels = t["channels"]?.intValue
            if encoding == .bitmask || encoding == .int8Bitmask {
                guard let nz = nonzero, nz >= 0, nz <= n else { throw bad("missing or impossible nonzero") }
            }
            var channelAxes: Range<Int>?
            if encoding == .int8 || encoding == .int8Bitmask {
                // 1.1 names the channel axes; a 1.0 file has none and scales the last axis.
                if let axes = t["channel_axes"] {
                    guard let pair = axes.arrayValue?.compactMap({ $0.intValue }), pair.count == 2,
                        pair[0] >= 0, pair[0] < pair[1], pair[1] <= shape.count
                    else { throw bad("channel_axes must be [first, end) within the shape") }
                    channelAxes = pair[0]..<pair[1]
                }
                let expected = channelAxes.map { ShapeMath.product(Array(shape[$0])) } ?? (shape.last ?? 1)
                guard dtype.isFloatingPoint, let c = channels, c == expected, c >= 1, c <= max(n, 1) else {
                    throw bad("int8 needs a float dtype and channels = the size of its channel axes")
                }
            }
            guard let streamList = t["streams"]?.arrayValue, streamList.count == encoding.streamCount else {
                throw bad("wrong number of streams")
            }
            let lengths = TensorCodec.expectedLengths(
                encoding, dtype: dtype, count: n, nonzero: nonzero, channels: channels)
            var streams: [StreamEntry] = []
            for (k, s) in streamList.enumerated() {
                guard let offset = s["offset"]?.intValue, let length = s["length"]?.intValue,
                    let decoded = s["decoded_length"]?.intValue,
                    let compression = s["compression"]?.stringValue, compression == "none" || compression == "zlib",
                    let crc = s["crc32"]?.intValue, crc >= 0, crc <= Int(UInt32.max)
                else { throw bad("stream \(k) is malformed") }
                guard decoded == lengths[k] else {
                    throw bad("stream \(k) decodes to \(decoded) bytes; the encoding needs \(lengths[k])")
                }
                guard compression == "zlib" || length == decoded else {
                    throw bad("uncompressed stream \(k) of \(length) bytes, needs \(decoded)")
                }
                // Deflate expands at most ~1032:1: a stream claiming more cannot be honest.
                guard compression == "none" || length >= 0 && decoded / 1032 <= length + 64 else {
                    throw bad(
                        "stream \(k) claims to inflate \(length) bytes to \(decoded), beyond what deflate can "
                            + "encode: corrupt or hostile"
                    )
                }
                guard offset == expectedOffset else {
                    throw bad(
                        "stream \(k) at \(offset), expected at \(expectedOffset) (streams are contiguous, 64-aligned)")
                }
                guard length >= 0, length <= Int(h) - offset else { throw bad("stream \(k) runs past the header") }
                streams.append(
                    StreamEntry(
                        offset: offset, length: length, decoded: decoded, zlib: compression == "zlib", crc: UInt32(crc))
                )
                let end = offset + length
                expectedOffset = aligned(end)
                if expectedOffset > end {
                    guard try read(end, expectedOffset - end).allSatisfy({ $0 == 0 }) else {
                        throw bad("padding after stream \(k) is not zero")
                    }
                }
            }
            entries.append(
                TensorEntry(
                    dtype: dtype, shape: shape, encoding: encoding, nonzero: nonzero, channels: channels,
                    channelAxes: channelAxes, streams: streams))
        }
        guard expectedOffset == Int(h) else {
            throw fail("\(Int(h) - expectedOffset) bytes between the last stream and the header")
        }
        var used = [Bool](repeating: false, count: entries.count)
        let lock = NSLock()
        let tensorAt: (Int) throws -> Tensor = { i in
            guard i >= 0, i < entries.count else {
                throw fail("tensor index \(i) out of range (\(entries.count) tensors)")
            }
            guard !used[i] else { throw fail("tensor \(i) is referenced twice") }
            used[i] = true
            let e = entries[i]
            return Tensor(dtype: e.dtype, shape: e.shape) {
                try lock.withLock { try decodeTensor(e, index: i, path: path) }
            }
        }
        let model = try PareModelJSON.model(json["model"] ?? .null, path: path, tensor: tensorAt, fail: { fail($0) })
        if let unused = used.firstIndex(of: false) { throw fail("tensor \(unused) is referenced by nothing") }
        return (model, entries)
    }

    static func decodeTensor(_ e: TensorEntry, index i: Int, path: String) throws -> [UInt8] {
        func fail(_ problem: String) -> PareError { PareError(file: path, object: "tensor \(i)", problem) }
        let file: BoundedFile
        do { file = try BoundedFile(path) } catch let error as PareError {
            throw fail("cannot reopen the file: \(error.problem)")
        }
        // Decoded streams and the tensor are held together while decoding.
        let decodedTotal = e.streams.reduce(Optional(e.shape.reduce(e.dtype.byteCount, *))) { total, s in
            total.flatMap { t in t.addingReportingOverflow(s.decoded).overflow ? nil : t + s.decoded }
        }
        try MemoryBudget.require(
            decodedTotal, for: "decoding this tensor (shape \(e.shape), \(e.dtype))", file: path,
            object: "tensor \(i)")
        var streams: [[UInt8]] = []
        for (k, s) in e.streams.enumerated() {
            let stored: [UInt8]
            do { stored = try file.read(s.offset, s.length) } catch let error as PareError {
                throw fail("stream \(k): \(error.problem)")
            }
            guard Zlib.crc32(stored) == s.crc else { throw fail("stream \(k) checksum mismatch") }
            if s.zlib {
                guard let d = Zlib.decompress(stored, expected: s.decoded) else {
                    throw fail("stream \(k): zlib data is corrupt or of the wrong length")
                }
                streams.append(d)
            } else {
                streams.append(stored)
            }
        }
        return try TensorCodec.decode(
            e.encoding, dtype: e.dtype, shape: e.shape, nonzero: e.nonzero, channels: e.channels,
            channelAxes: e.channelAxes, streams: streams, fail: { fail($0) })
    }
}

extension Optional where Wrapped == [UInt8] {
    /// `body` with this array's bytes, or with `other` when there is none.
    fileprivate func withUnsafeBytesOr<R>(
        _ other: UnsafeRawBufferPointer, _ body: (UnsafeRawBufferPointer) throws -> R
    ) rethrows -> R {
        if let self { return try self.withUnsafeBytes(body) }
        return try body(other)
    }
}
