/// Bit-exact edits of weight tensors: slicing along an axis and zeroing slices keep every other
/// element's bytes as they were, whatever the dtype.
extension Tensor {
    /// Keeps the given indices (in order) along `axis`. The shape and indices are checked now; the
    /// bytes are cut when needed (see `edited`).
    public func sliced(axis: Int, keep: [Int]) throws -> Tensor {
        try checkEdit(axis: axis, indices: keep)
        let outer = shape[..<axis].reduce(1, *)
        let n = shape[axis]
        let inner = shape[(axis + 1)...].reduce(1, *) * dtype.byteCount
        var newShape = shape
        newShape[axis] = keep.count
        return try edited(shape: newShape) { src, dst in
            guard inner > 0, !keep.isEmpty, outer > 0 else { return }
            // One element per kept index (a Dense kernel's columns): copied as words, not with memcpy.
            func words<W>(_: W.Type) {
                let from = src.baseAddress!.assumingMemoryBound(to: W.self)
                let to = dst.baseAddress!.assumingMemoryBound(to: W.self)
                var at = 0
                for o in 0..<outer {
                    let row = from + o * n
                    for k in keep {
                        to[at] = row[k]
                        at += 1
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
                        (dst.baseAddress! + at).copyMemory(
                            from: src.baseAddress! + (o * n + k) * inner, byteCount: inner)
                        at += inner
                    }
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
        return try edited(shape: shape) { src, dst in
            guard src.count > 0 else { return }
            dst.baseAddress!.copyMemory(from: src.baseAddress!, byteCount: src.count)
            if inner == 4 {
                let words = dst.baseAddress!.assumingMemoryBound(to: UInt32.self)
                for o in 0..<outer {
                    for k in sorted { words[o * n + k] = 0 }
                }
                return
            }
            for o in 0..<outer {
                for k in sorted {
                    (dst.baseAddress! + (o * n + k) * inner).initializeMemory(
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
