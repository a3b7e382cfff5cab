import Foundation

/// Element-wise activations by the names Keras accepts on Conv/Dense and in `Activation` layers.
enum ActivationFunction: Equatable {
    case linear, relu, relu6, sigmoid, hardSigmoidKeras3, hardSigmoidKeras2, tanh, softmax, softplus, softsign
    case swish, gelu
    case elu(Float)
    case selu, exponential
    case leakyRelu(Float)
    /// The `ReLU` layer: `max_value`, `negative_slope`, `threshold`.
    case reluLayer(maxValue: Float?, negativeSlope: Float, threshold: Float)
    case hardSwish, mish, logSoftmax, relu6Keras
    // Keras 3 only (keras.activations): each as its TensorFlow backend computes it.
    case celu, squareplus, softShrink, hardShrink, sparsePlus, tanhShrink, hardTanh, logSigmoid, sparseSigmoid
    /// Euclidean projection onto the simplex along the last axis: ties the channels like softmax.
    case sparsemax

    /// Parses `"relu"` or Keras 3's serialized function `{"class_name": "function", "config": "relu", …}`.
    static func parse(_ value: JSON?, kerasMajor: Int) throws -> ActivationFunction {
        guard let value, !value.isNull else { return .linear }
        let name: String
        if let s = value.stringValue {
            name = s
        } else if let s = value["config"]?.stringValue ?? value["registered_name"]?.stringValue {
            name = s
        } else {
            throw InterpreterError.unsupported("activation \(value.serialized())")
        }
        switch name {
        case "linear", "None": return .linear
        case "relu": return .relu
        case "relu6": return .relu6
        case "sigmoid": return .sigmoid
        // Keras 3 defines hard_sigmoid as relu6(x + 3) / 6; Keras 2 as clip(0.2x + 0.5, 0, 1).
        case "hard_sigmoid": return kerasMajor >= 3 ? .hardSigmoidKeras3 : .hardSigmoidKeras2
        case "hard_silu", "hard_swish": return .hardSwish
        case "tanh": return .tanh
        case "softmax": return .softmax
        case "log_softmax": return .logSoftmax
        case "softplus": return .softplus
        case "softsign": return .softsign
        case "swish", "silu": return .swish
        case "gelu": return .gelu
        case "elu": return .elu(1)
        case "selu": return .selu
        case "exponential": return .exponential
        case "leaky_relu": return .leakyRelu(0.2)
        case "mish": return .mish
        case "celu": return .celu
        case "squareplus": return .squareplus
        case "soft_shrink": return .softShrink
        case "hard_shrink": return .hardShrink
        case "sparse_plus": return .sparsePlus
        case "tanh_shrink": return .tanhShrink
        case "hard_tanh": return .hardTanh
        case "log_sigmoid": return .logSigmoid
        case "sparse_sigmoid": return .sparseSigmoid
        case "sparsemax": return .sparsemax
        // Keras calls threshold(x) without its two required arguments, so no saved model can use it.
        case "threshold": throw InterpreterError.unsupported("activation 'threshold' (Keras cannot call it by name)")
        // glu halves the last axis; only the Activation layer (ActivationLayer.glu) shapes that.
        case "glu": throw InterpreterError.unsupported("activation 'glu' outside an Activation layer")
        default: throw InterpreterError.unsupported("activation '\(name)'")
        }
    }

    /// Activations computed across the last axis (softmax and its kin): the channels they read are
    /// tied together, and none can be removed alone.
    static let channelCoupling: Set<String> = ["softmax", "log_softmax", "sparsemax", "glu"]

    /// Applies in place to `x` whose last axis has `channels` elements (softmax works along it).
    func apply(_ x: inout [Float], channels: Int) {
        switch self {
        case .linear: return
        case .softmax: Self.softmax(&x, inner: 1, axisLength: channels, log: false)
        case .logSoftmax: Self.softmax(&x, inner: 1, axisLength: channels, log: true)
        case .sparsemax: Self.sparsemax(&x, channels: channels)
        // The common cases get their own loop so the compiler can vectorize them.
        // A select rather than a conditional store, so it vectorizes; NaN is not < 0 and passes through.
        case .relu: Self.forEach(&x) { p, r in for i in r { p[i] = p[i] < 0 ? 0 : p[i] } }
        case .relu6: Self.forEach(&x) { p, r in for i in r { p[i] = Swift.min(Swift.max(p[i], 0), 6) } }
        default: Self.forEach(&x) { p, r in for i in r { p[i] = scalar(p[i]) } }
        }
    }

    func scalar(_ v: Float) -> Float {
        switch self {
        case .linear, .softmax, .logSoftmax, .sparsemax: return v
        case .relu: return v < 0 ? 0 : v  // NaN passes through, as in TensorFlow
        case .relu6, .relu6Keras: return min(max(v, 0), 6)
        case .sigmoid: return Self.sigmoid(v)
        case .hardSigmoidKeras3: return min(max(v + 3, 0), 6) / 6
        case .hardSigmoidKeras2: return min(max(0.2 * v + 0.5, 0), 1)
        case .hardSwish: return v * min(max(v + 3, 0), 6) / 6
        case .tanh: return Foundation.tanh(v)
        case .softplus: return Self.softplus(v)
        case .softsign: return v / (1 + abs(v))
        case .swish: return v * Self.sigmoid(v)
        case .gelu: return Float(0.5 * Double(v) * (1 + erf(Double(v) / 2.0.squareRoot())))
        case .elu(let alpha): return v > 0 ? v : alpha * (Foundation.exp(v) - 1)
        case .selu:
            let scale: Float = 1.0507009873554805
            let alpha: Float = 1.6732632423543772
            return v > 0 ? scale * v : scale * alpha * (Foundation.exp(v) - 1)
        case .exponential: return Foundation.exp(v)
        case .leakyRelu(let slope): return v < 0 ? slope * v : v
        case .mish: return v * Foundation.tanh(Self.softplus(v))
        case .celu: return max(v, 0) + Foundation.expm1(min(v, 0))
        case .squareplus: return (v + (v * v + 4).squareRoot()) / 2
        case .softShrink: return v > 0.5 ? v - 0.5 : (v < -0.5 ? v + 0.5 : 0)
        case .hardShrink: return abs(v) > 0.5 ? v : 0
        case .sparsePlus: return v <= -1 ? 0 : (v < 1 ? 0.25 * (v + 1) * (v + 1) : v)
        case .tanhShrink: return v - Foundation.tanh(v)
        case .hardTanh: return min(max(v, -1), 1)
        case .logSigmoid: return -Self.softplus(-v)
        case .sparseSigmoid: return v <= -1 ? 0 : (v >= 1 ? 1 : 0.5 * (v + 1))
        case .reluLayer(let maxValue, let slope, let threshold):
            if let maxValue, v >= maxValue { return maxValue }
            // Keras keeps x only above a threshold (`x > θ`, both lines); at and below it, the slope.
            if v > threshold || (threshold == 0 && v == 0) { return v }
            return slope == 0 ? 0 : slope * (v - threshold)  // no 0 · ∞ for a threshold beyond float32
        }
    }

    /// Runs `body` over disjoint index ranges of `x`, on every core for large arrays.
    static func forEach(_ x: inout [Float], _ body: (UnsafeMutableBufferPointer<Float>, Range<Int>) -> Void) {
        x.withUnsafeMutableBufferPointer { p in
            Parallel.chunks(p.count, minimumPerChunk: 1 << 16) { r in body(p, r) }
        }
    }

    static func sigmoid(_ v: Float) -> Float {
        v >= 0 ? 1 / (1 + Foundation.exp(-v)) : Foundation.exp(v) / (1 + Foundation.exp(v))
    }

    static func softplus(_ v: Float) -> Float { Foundation.log1p(Foundation.exp(-abs(v))) + max(v, 0) }

    /// Sparsemax along the last axis (`channels` long), as Keras 3's TensorFlow backend computes it:
    /// sort descending, the support is where `z_k − (cumsum_k − 1) / k > 0`, and
    /// τ = (Σ over the support of cumsum_k − 1) / |support| — Keras sums the running sums there, not
    /// the last one as the sparsemax paper does; Pare follows Keras.
    static func sparsemax(_ x: inout [Float], channels: Int) {
        guard channels > 0 else { return }
        for start in stride(from: 0, to: x.count, by: channels) {
            let row = x[start..<(start + channels)]
            let sorted = row.sorted(by: >)
            var cumulative: Double = 0
            var supportSum: Double = 0
            var supportSize: Double = 0
            for (k, z) in sorted.enumerated() {
                cumulative += Double(z)
                if Double(z) - (cumulative - 1) / Double(k + 1) > 0 {
                    supportSum += cumulative
                    supportSize += 1
                }
            }
            let tau = Float((supportSum - 1) / max(supportSize, 1))
            for i in start..<(start + channels) { x[i] = max(x[i] - tau, 0) }
        }
    }

    /// Softmax along an axis of length `axisLength` whose elements are `inner` apart.
    static func softmax(_ x: inout [Float], inner: Int, axisLength: Int, log: Bool) {
        guard axisLength > 0 else { return }
        let outer = x.count / (inner * axisLength)
        for o in 0..<outer {
            for i in 0..<inner {
                let base = o * axisLength * inner + i
                var m = -Float.infinity
                for k in 0..<axisLength { m = max(m, x[base + k * inner]) }
                var sum: Float = 0
                for k in 0..<axisLength { sum += Foundation.exp(x[base + k * inner] - m) }
                for k in 0..<axisLength {
                    let idx = base + k * inner
                    x[idx] = log ? x[idx] - m - Foundation.log(sum) : Foundation.exp(x[idx] - m) / sum
                }
            }
        }
    }
}

public enum InterpreterError: Error, CustomStringConvertible {
    case unsupported(String)
    case badInput(String)

    public var description: String {
        switch self {
        case .unsupported(let what): return "\(what) is not supported by Pare's interpreter"
        case .badInput(let what): return what
        }
    }
}
