import Foundation

/// Bit-exact edits of weight tensors: slicing along an axis and zeroing slices keep every other
/// element's bytes as they were, whatever the dtype.
extension Tensor {
    /// Keeps the given indices (in order) along `axis`. The shape and indices are checked now; the
    /// bytes are cut when needed (see `edited`).
    public func sliced(axis: Int, keep: [Int]) throws -> Tensor {
        try checkEdit(axis: axis, indices: keep)
        // A slice keeps each index once (an edit never makes a tensor larger).
        guard Set(keep).count == keep.count else {
            throw PareError(file: "<tensor>", "indices \(keep) along axis \(axis) repeat one")
        }
        let outer = shape[..<axis].reduce(1, *)
        let n = shape[axis]
        let inner = shape[(axis + 1)...].reduce(1, *) * dtype.byteCount
        var newShape = shape
        newShape[axis] = keep.count
        let gather = { @Sendable (src: UnsafeRawPointer, dst: UnsafeMutableRawPointer) in
            Self.gather(from: src, to: dst, outer: outer, n: n, inner: inner, keep: keep)
        }
        // Kept indices in increasing order (what pruning keeps) compact forward in place: every value
        // is written at or before the place it is read from, after everything before it was read.
        let increasing = zip(keep, keep.dropFirst()).allSatisfy { $0 < $1 }
        let newCount = newShape.reduce(1, *) * dtype.byteCount
        return try edited(
            shape: newShape,
            { buffer in
                guard newCount > 0 else { return }
                if increasing {
                    gather(UnsafeRawPointer(buffer.baseAddress!), buffer.baseAddress!)
                } else {
                    let source = [UInt8](UnsafeRawBufferPointer(buffer))
                    source.withUnsafeBytes { gather($0.baseAddress!, buffer.baseAddress!) }
                }
            },
            copying: { src, dst in
                guard newCount > 0 else { return }
                gather(src.baseAddress!, dst.baseAddress!)
            })
    }

    /// Copies `keep`'s slices of each of `outer` blocks of `n` slices of `inner` bytes. `from` and `to`
    /// may be the same buffer when `keep` increases (a forward compaction; `memmove` for the bytes).
    private static func gather(
        from src: UnsafeRawPointer, to dst: UnsafeMutableRawPointer, outer: Int, n: Int, inner: Int, keep: [Int]
    ) {
        guard inner > 0, !keep.isEmpty, outer > 0 else { return }
        // One element per kept index (a Dense kernel's columns): copied as words, not with memcpy.
        func words<W>(_: W.Type) {
            let from = src.assumingMemoryBound(to: W.self)
            let to = dst.assumingMemoryBound(to: W.self)
            var at = 0
            keep.withUnsafeBufferPointer { keep in
                for o in 0..<outer {
                    let row = from + o * n
                    for k in keep {
                        to[at] = row[k]
                        at += 1
                    }
                }
            }
        }
        switch inner {
        case 4: words(UInt32.self)
        case 2: words(UInt16.self)
        case 8: words(UInt64.self)
        default:
            var at = 0
            for o in 0..<outer {
                for k in keep {
                    memmove(dst + at, src + (o * n + k) * inner, inner)
                    at += inner
                }
            }
        }
    }

    /// Sets the given indices along `axis` to zero (indices past the axis are ignored); applied when
    /// the bytes are needed.
    public func zeroed(axis: Int, indices: Set<Int>) throws -> Tensor {
        try checkEdit(axis: axis, indices: [])
        let n = shape[axis]
        let sorted = indices.filter { (0..<n).contains($0) }.sorted()
        guard !sorted.isEmpty else { return self }
        let outer = shape[..<axis].reduce(1, *)
        let inner = shape[(axis + 1)...].reduce(1, *) * dtype.byteCount
        return try edited(shape: shape) { buffer in
            guard buffer.count > 0 else { return }
            if inner == 4 {
                let words = buffer.baseAddress!.assumingMemoryBound(to: UInt32.self)
                for o in 0..<outer {
                    for k in sorted { words[o * n + k] = 0 }
                }
                return
            }
            for o in 0..<outer {
                for k in sorted {
                    (buffer.baseAddress! + (o * n + k) * inner).initializeMemory(
                        as: UInt8.self, repeating: 0, count: inner)
                }
            }
        }
    }

    /// An edit along `axis` must name an axis of the shape and indices inside it: checked here so a
    /// deferred edit cannot fail (or index out of bounds) when its bytes are finally made.
    private func checkEdit(axis: Int, indices: [Int]) throws {
        guard shape.indices.contains(axis) else {
            throw PareError(file: "<tensor>", "axis \(axis) is not an axis of shape \(shape)")
        }
        if let bad = indices.first(where: { $0 < 0 || $0 >= shape[axis] }) {
            throw PareError(file: "<tensor>", "index \(bad) is outside axis \(axis) of shape \(shape)")
        }
    }

    /// Float values stored back in this tensor's dtype (float16/32/64), for values Pare computed.
    public func replacingValues(_ values: [Float]) throws -> Tensor {
        var out = [UInt8]()
        switch dtype {
        case .float32:
            for v in values { withUnsafeBytes(of: v.bitPattern.littleEndian) { out += $0 } }
        case .float64:
            for v in values { withUnsafeBytes(of: Double(v).bitPattern.littleEndian) { out += $0 } }
        case .float16:
            for v in values { withUnsafeBytes(of: Float16(v).bitPattern.littleEndian) { out += $0 } }
        default:
            throw PareError(file: "<tensor>", "cannot store computed values as \(dtype)")
        }
        return Tensor(dtype: dtype, shape: shape, bytes: out)
    }
}
