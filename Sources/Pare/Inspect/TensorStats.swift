/// Exact-zero counts and all-zero ("dead") output channels of weight tensors.
enum TensorStats {
    static func zeroCount(_ tensor: Tensor, bytes: [UInt8]) -> Int {
        bytes.withUnsafeBytes { raw in
            var zeros = 0
            for i in 0..<tensor.count where Tensor.isZero(raw, i, tensor.dtype) { zeros += 1 }
            return zeros
        }
    }

    /// For each output channel (index along `axis` of the kernel), whether every element is zero.
    static func zeroChannels(_ tensor: Tensor, bytes: [UInt8], axis: Int) -> [Bool] {
        zeroChannels(tensor, bytes: bytes, axes: axis..<(axis + 1))
    }

    /// For each output channel (the flattened index over `axes`), whether every element is zero.
    static func zeroChannels(_ tensor: Tensor, bytes: [UInt8], axes: Range<Int>) -> [Bool] {
        let shape = tensor.shape
        guard axes.lowerBound >= 0, axes.upperBound <= shape.count, !axes.isEmpty, tensor.count > 0 else { return [] }
        let channels = shape[axes].reduce(1, *)
        let inner = shape[axes.upperBound...].reduce(1, *)
        guard channels > 0, inner > 0 else { return [] }
        var zero = [Bool](repeating: true, count: channels)
        bytes.withUnsafeBytes { raw in
            for i in 0..<tensor.count where zero[(i / inner) % channels] && !Tensor.isZero(raw, i, tensor.dtype) {
                zero[(i / inner) % channels] = false
            }
        }
        return zero
    }
}
