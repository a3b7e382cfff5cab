import COpenBLAS
import Foundation

/// How a Keras line keeps masked positions out of an attention softmax. The lines differ only
/// where a whole row is masked (uniform weights, or zeros), and Pare follows each exactly.
enum MaskedSoftmaxRule: Sendable, Equatable {
    /// Keras 3's `Softmax` layer (MultiHeadAttention with scores returned or dropout set):
    /// `where(mask, x, fill)`, softmax, then `where(mask, y, 0)`: a fully masked row is zeros.
    case replaceThenZero(fill: Float)
    /// Keras 3's `dot_product_attention` (MultiHeadAttention's other path): `where(mask, x, fill)`
    /// with fill = −0.7 × 3.38953e38: a fully masked row is uniform.
    case replace(fill: Float)
    /// tf.keras 2's `Softmax` layer and both lines' Attention layers: `x − 1e9` where masked, in
    /// float32: a fully masked row is uniform over what the rounding leaves.
    case subtract(Float)

    static let keras3SoftmaxLayer = MaskedSoftmaxRule.replaceThenZero(fill: -1e9)
    static let keras3DotProduct = MaskedSoftmaxRule.replace(fill: Float(-0.7 * 3.38953e38))
    static let largeNegative = MaskedSoftmaxRule.subtract(1e9)
}

enum AttentionKernels {
    /// Softmax in place over `row`, leaving out positions where `keep` is false as `rule` says.
    static func maskedSoftmax(_ row: UnsafeMutableBufferPointer<Float>, keep: [Bool]?, rule: MaskedSoftmaxRule) {
        if let keep {
            for j in row.indices where !keep[j] {
                switch rule {
                case .replaceThenZero(let fill), .replace(let fill): row[j] = fill
                case .subtract(let amount): row[j] -= amount
                }
            }
        }
        var m = -Float.infinity
        for v in row { m = max(m, v) }
        var sum: Float = 0
        for j in row.indices {
            row[j] = Foundation.exp(row[j] - m)
            sum += row[j]
        }
        for j in row.indices { row[j] /= sum }
        if case .replaceThenZero = rule, let keep {
            for j in row.indices where !keep[j] { row[j] = 0 }
        }
    }

    /// `x · kernel + bias` over the last axis of row-major `rows × inner` data (Dense's GEMM).
    static func project(_ x: [Float], rows: Int, inner: Int, kernel: [Float], outputs: Int, bias: [Float]?) -> [Float] {
        var y =
            rows > 0 && inner > 0
            ? ConvolutionKernels.dense(FloatArray(shape: [rows, inner], data: x), kernel: kernel, units: outputs)
            : FloatArray(zeros: [rows, outputs])
        if let bias { ConvolutionKernels.addBias(&y, bias) }
        return y.data
    }

    /// `out[r][j] = Σ_d a[offset + r·inner + d] · b[j·inner + d]` for `rows` rows and `count` columns
    /// (A · Bᵀ: every query row against every key row).
    static func multiplyTransposed(
        _ a: [Float], offset: Int, rows: Int, _ b: [Float], count: Int, inner: Int, into out: inout [Float]
    ) {
        guard rows > 0, count > 0 else { return }
        guard inner > 0 else {
            for i in 0..<(rows * count) { out[i] = 0 }
            return
        }
        a.withUnsafeBufferPointer { pa in
            b.withUnsafeBufferPointer { pb in
                out.withUnsafeMutableBufferPointer { pc in
                    cblas_sgemm(
                        CblasRowMajor, CblasNoTrans, CblasTrans, Int32(rows), Int32(count), Int32(inner), 1,
                        pa.baseAddress! + offset, Int32(inner), pb.baseAddress!, Int32(inner), 0, pc.baseAddress!,
                        Int32(count))
                }
            }
        }
    }
}
