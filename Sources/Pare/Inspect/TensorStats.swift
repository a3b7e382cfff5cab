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
        let shape = tensor.shape
        guard axis >= 0, axis < shape.count else { return [] }
        let channels = shape[axis]
        let inner = shape[(axis + 1)...].reduce(1, *)
        var zero = [Bool](repeating: true, count: channels)
        bytes.withUnsafeBytes { raw in
            for i in 0..<tensor.count where zero[(i / inner) % channels] && !Tensor.isZero(raw, i, tensor.dtype) {
                zero[(i / inner) % channels] = false
            }
        }
        return zero
    }
}
