/// Bit-exact edits of weight tensors: slicing along an axis and zeroing slices keep every other
/// element's bytes as they were, whatever the dtype.
extension Tensor {
    /// Keeps the given indices (in order) along `axis`.
    public func sliced(axis: Int, keep: [Int]) throws -> Tensor {
        let src = try bytes()
        let outer = shape[..<axis].reduce(1, *)
        let n = shape[axis]
        let inner = shape[(axis + 1)...].reduce(1, *) * dtype.byteCount
        var out = [UInt8]()
        out.reserveCapacity(outer * keep.count * inner)
        for o in 0..<outer {
            for k in keep {
                let start = (o * n + k) * inner
                out.append(contentsOf: src[start..<(start + inner)])
            }
        }
        var newShape = shape
        newShape[axis] = keep.count
        return Tensor(dtype: dtype, shape: newShape, bytes: out)
    }

    /// Sets the given indices along `axis` to zero.
    public func zeroed(axis: Int, indices: Set<Int>) throws -> Tensor {
        guard !indices.isEmpty else { return self }
        var b = try bytes()
        let n = shape[axis]
        let inner = shape[(axis + 1)...].reduce(1, *) * dtype.byteCount
        for o in 0..<shape[..<axis].reduce(1, *) {
            for k in indices where k < n {
                let start = (o * n + k) * inner
                for i in start..<(start + inner) { b[i] = 0 }
            }
        }
        return Tensor(dtype: dtype, shape: shape, bytes: b)
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
