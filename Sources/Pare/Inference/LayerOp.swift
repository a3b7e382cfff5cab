import Foundation

/// One layer made ready to run: its config read once, its weights converted to float32 once.
struct LayerOp {
    let path: String
    let className: String
    let config: JSON
    let weights: [String: [Float]]
    let weightShapes: [String: [Int]]
    let activation: ActivationFunction
    /// Layers whose dtype policy computes in float16 round their inputs and outputs to it, as Keras does.
    let float16Compute: Bool
    let outputShape: Shape

    init(path: String, node: LayerNode, weights: [String: Weight], outputShape: Shape, kerasMajor: Int) throws {
        self.path = path
        className = node.className
        config = node.config
        self.outputShape = outputShape
        var floats: [String: [Float]] = [:]
        var shapes: [String: [Int]] = [:]
        for (role, weight) in weights {
            floats[role] = try weight.tensor.floats()
            shapes[role] = weight.tensor.shape
        }
        self.weights = floats
        weightShapes = shapes
        if node.className == "Activation" {
            activation = try ActivationFunction.parse(config["activation"], kerasMajor: kerasMajor)
        } else if LayerKinds.activationCarriers.contains(node.className) {
            activation = try ActivationFunction.parse(config["activation"], kerasMajor: kerasMajor)
        } else {
            activation = .linear
        }
        let policy = config["dtype"]?["config"]?["name"]?.stringValue ?? config["dtype"]?.stringValue ?? "float32"
        float16Compute = policy == "float16" || policy == "mixed_float16"
        if LayerKinds.channelsFirst(config) {
            throw InterpreterError.unsupported("data_format channels_first (layer '\(path)')")
        }
        if ["Conv2D", "DepthwiseConv2D", "SeparableConv2D", "Conv2DTranspose"].contains(className),
            let pad = config["padding"]?.stringValue, pad != "same", pad != "valid"
        {
            throw InterpreterError.unsupported("padding '\(pad)' (layer '\(path)')")
        }
        if className == "UpSampling2D", let mode = config["interpolation"]?.stringValue, mode != "nearest" {
            throw InterpreterError.unsupported("UpSampling2D interpolation '\(mode)' (layer '\(path)')")
        }
        if className == "Conv2DTranspose", let op = config["output_padding"], !op.isNull {
            throw InterpreterError.unsupported("Conv2DTranspose output_padding (layer '\(path)')")
        }
        try checkChannelParameters()
    }

    /// Per-channel parameters must match the channels the layer sees (its shapes are concrete here):
    /// the kernels index them by channel without bounds checks.
    private func checkChannelParameters() throws {
        let rank = outputShape.count
        let channels = outputShape.last.flatMap { $0 }
        if let bias = weights["bias"], let channels, bias.count != channels {
            throw InterpreterError.badInput(
                "layer '\(path)': bias of \(bias.count) values for \(channels) output channels")
        }
        if className == "BatchNormalization" {
            var axis = config["axis"]?.intValue ?? config["axis"]?[0]?.intValue ?? -1
            axis = axis < 0 ? rank + 1 + axis : axis
            guard axis >= 1, axis <= rank, let n = outputShape[axis - 1] else {
                throw InterpreterError.unsupported(
                    "BatchNormalization axis \(axis) of a rank-\(rank + 1) tensor (layer '\(path)')")
            }
            for role in ["gamma", "beta", "moving_mean", "moving_variance"] {
                if let w = weights[role], w.count != n {
                    throw InterpreterError.badInput("layer '\(path)': \(role) has \(w.count) values for \(n) channels")
                }
            }
            guard weights["moving_mean"] != nil, weights["moving_variance"] != nil else {
                throw InterpreterError.badInput("layer '\(path)': moving statistics missing")
            }
        }
        if className == "Rescaling" {
            for key in ["scale", "offset"] {
                if let list = config[key]?.arrayValue, list.count != 1, list.count != (channels ?? -1) {
                    throw InterpreterError.badInput(
                        "layer '\(path)': \(key) lists \(list.count) values for \(channels.map(String.init) ?? "?") channels"
                    )
                }
            }
        }
    }

    func ints(_ key: String, _ fallback: [Int]) -> [Int] { LayerKinds.ints(config[key], count: 2) ?? fallback }

    func run(_ rawInputs: __owned [FloatArray]) throws -> FloatArray {
        var inputs = float16Compute ? rawInputs.map(Self.roundedToHalf) : rawInputs
        var y = try compute(&inputs)
        // Conv and Dense layers: bias, then activation.
        if let bias = weights["bias"] { ConvolutionKernels.addBias(&y, bias) }
        if activation != .linear { activation.apply(&y.data, channels: y.shape.last ?? 1) }
        return float16Compute ? Self.roundedToHalf(y) : y
    }

    static func roundedToHalf(_ x: FloatArray) -> FloatArray {
        FloatArray(shape: x.shape, data: x.data.map { Float(Float16($0)) })
    }

    /// The first input, moved out of `inputs` so that it can be changed in place when nothing else holds it.
    static func takeFirst(_ inputs: inout [FloatArray]) -> FloatArray {
        var taken = FloatArray(shape: [0], data: [])
        swap(&taken, &inputs[0])
        return taken
    }

    private func compute(_ inputs: inout [FloatArray]) throws -> FloatArray {
        if LayerKinds.mergeClasses.contains(className) {
            let first = Self.takeFirst(&inputs)
            return try MergeKernels.merge(className, first, inputs.dropFirst(), path: path)
        }
        if ["ReLU", "LeakyReLU", "ELU", "PReLU", "Softmax", "Activation", "Rescaling", "BatchNormalization"].contains(
            className)
            || (LayerKinds.identityClasses.contains(className))
        {
            var y = Self.takeFirst(&inputs)
            try elementwise(&y)
            return y
        }
        let x = inputs[0]
        func window(_ kernel: [Int], strides: [Int], dilation: [Int]) -> Window2D {
            Window2D(
                inH: x.shape[1], inW: x.shape[2], kernel: kernel, strides: strides, dilation: dilation,
                padding: config["padding"]?.stringValue ?? "valid")
        }
        switch className {
        case "Conv2D":
            let k = ints("kernel_size", [1, 1])
            let y = ConvolutionKernels.conv2d(
                x, kernel: weights["kernel"]!, outChannels: weightShapes["kernel"]![3],
                groups: max(1, config["groups"]?.intValue ?? 1),
                window: window(k, strides: ints("strides", [1, 1]), dilation: ints("dilation_rate", [1, 1])))
            return y
        case "DepthwiseConv2D":
            let k = ints("kernel_size", [1, 1])
            let y = ConvolutionKernels.depthwise(
                x, kernel: weights["depthwise_kernel"]!, multiplier: weightShapes["depthwise_kernel"]![3],
                window: window(k, strides: ints("strides", [1, 1]), dilation: ints("dilation_rate", [1, 1])))
            return y
        case "SeparableConv2D":
            let k = ints("kernel_size", [1, 1])
            let mid = ConvolutionKernels.depthwise(
                x, kernel: weights["depthwise_kernel"]!, multiplier: weightShapes["depthwise_kernel"]![3],
                window: window(k, strides: ints("strides", [1, 1]), dilation: ints("dilation_rate", [1, 1])))
            let y = ConvolutionKernels.dense(
                mid, kernel: weights["pointwise_kernel"]!, units: weightShapes["pointwise_kernel"]![3])
            return y
        case "Conv2DTranspose":
            guard let oh = outputShape[0], let ow = outputShape[1] else {
                throw InterpreterError.badInput("\(path): unknown output size")
            }
            let y = ConvolutionKernels.transpose(
                x, kernel: weights["kernel"]!, outChannels: weightShapes["kernel"]![2],
                kernelSize: ints("kernel_size", [1, 1]), strides: ints("strides", [1, 1]),
                dilation: ints("dilation_rate", [1, 1]), outH: oh, outW: ow)
            return y
        case "Dense":
            let y = ConvolutionKernels.dense(x, kernel: weights["kernel"]!, units: weightShapes["kernel"]![1])
            return y
        case "MaxPooling2D", "AveragePooling2D":
            let pool = ints("pool_size", [2, 2])
            return PoolingKernels.pool(
                x, window: window(pool, strides: ints("strides", pool), dilation: [1, 1]),
                max: className == "MaxPooling2D")
        case "GlobalAveragePooling2D", "GlobalMaxPooling2D":
            return PoolingKernels.global(
                x, max: className == "GlobalMaxPooling2D", keepdims: config["keepdims"]?.boolValue == true)
        case "Flatten", "Reshape":
            return FloatArray(shape: [x.batch] + outputShape.map { $0 ?? 0 }, data: x.data)
        case "Permute":
            let dims = config["dims"]!.arrayValue!.compactMap { $0.intValue }.map { $0 - 1 }
            return ShapeKernels.permute(x, order: dims)
        case "ZeroPadding2D":
            let (t, b, l, r) = LayerKinds.pairs2D(config["padding"])!
            return ShapeKernels.pad(x, top: t, bottom: b, left: l, right: r)
        case "Cropping2D":
            let (t, b, l, r) = LayerKinds.pairs2D(config["cropping"])!
            return ShapeKernels.pad(x, top: -t, bottom: -b, left: -l, right: -r)
        case "UpSampling2D":
            return ShapeKernels.upsampleNearest(x, size: ints("size", [2, 2]))
        case "Concatenate":
            var axis = config["axis"]?.intValue ?? -1
            axis = axis < 0 ? x.shape.count + axis : axis
            return ShapeKernels.concatenate(inputs, axis: axis)
        default:
            throw InterpreterError.unsupported("layer '\(path)' (\(className))")
        }
    }

    /// Layers that change values one by one: they work on their input's storage when they own it.
    private func elementwise(_ y: inout FloatArray) throws {
        switch className {
        case "BatchNormalization":
            try batchNormalization(&y)
        case "ReLU":
            let slope = Float(config["negative_slope"]?.doubleValue ?? 0)
            let threshold = Float(config["threshold"]?.doubleValue ?? 0)
            let maxValue = config["max_value"]?.doubleValue.map(Float.init)
            let plain = maxValue == nil && slope == 0 && threshold == 0
            (plain
                ? ActivationFunction.relu : .reluLayer(maxValue: maxValue, negativeSlope: slope, threshold: threshold))
                .apply(&y.data, channels: 1)
            return
        case "LeakyReLU":
            // Keras 3 calls it negative_slope, Keras 2 alpha; both default to 0.3.
            let slope = Float(config["negative_slope"]?.doubleValue ?? config["alpha"]?.doubleValue ?? 0.3)
            ActivationFunction.leakyRelu(slope).apply(&y.data, channels: 1)
            return
        case "ELU":
            ActivationFunction.elu(Float(config["alpha"]?.doubleValue ?? 1)).apply(&y.data, channels: 1)
            return
        case "PReLU":
            let alpha = weights["alpha"]!
            let shape = weightShapes["alpha"]!
            let dims = Array(y.shape.dropFirst())
            let per = y.exampleSize
            for i in 0..<y.count where y.data[i] < 0 {
                // Broadcast alpha over shared axes (size 1) by index arithmetic.
                var rem = i % per
                var aIndex = 0
                var aStride = 1
                var coords = [Int](repeating: 0, count: dims.count)
                for d in stride(from: dims.count - 1, through: 0, by: -1) {
                    coords[d] = rem % dims[d]
                    rem /= dims[d]
                }
                for d in stride(from: dims.count - 1, through: 0, by: -1) {
                    aIndex += (shape[d] == 1 ? 0 : coords[d]) * aStride
                    aStride *= shape[d]
                }
                y.data[i] *= alpha[aIndex]
            }
            return
        case "Softmax":
            var axis = config["axis"]?.intValue ?? config["axis"]?[0]?.intValue ?? -1
            axis = axis < 0 ? y.shape.count + axis : axis
            guard axis >= 1, axis < y.shape.count else {
                throw InterpreterError.unsupported("Softmax axis \(axis) (layer '\(path)')")
            }
            ActivationFunction.softmax(
                &y.data, inner: y.shape[(axis + 1)...].reduce(1, *), axisLength: y.shape[axis], log: false)
            return
        case "Activation":
            return
        case let cls where LayerKinds.identityClasses.contains(cls) && cls != "Rescaling":
            return  // Dropout, noise and regularization layers do nothing at inference
        case "Rescaling":
            let scale =
                config["scale"]?.arrayValue?.compactMap { $0.doubleValue }.map(Float.init) ?? [
                    Float(config["scale"]?.doubleValue ?? 1)
                ]
            let offset =
                config["offset"]?.arrayValue?.compactMap { $0.doubleValue }.map(Float.init) ?? [
                    Float(config["offset"]?.doubleValue ?? 0)
                ]
            let c = y.shape.last ?? 1
            for i in 0..<y.count {
                y.data[i] = y.data[i] * scale[scale.count == 1 ? 0 : i % c] + offset[offset.count == 1 ? 0 : i % c]
            }
            return
        default:
            throw InterpreterError.unsupported("layer '\(path)' (\(className))")
        }
    }

    private func batchNormalization(_ y: inout FloatArray) throws {
        var axis = config["axis"]?.intValue ?? config["axis"]?[0]?.intValue ?? -1
        axis = axis < 0 ? y.shape.count + axis : axis
        let channels = y.shape[axis]
        let inner = y.shape[(axis + 1)...].reduce(1, *)
        let eps = Float(config["epsilon"]?.doubleValue ?? 1e-3)
        let mean = weights["moving_mean"]!
        let variance = weights["moving_variance"]!
        let gamma = weights["gamma"]
        let beta = weights["beta"]
        // y = gamma * (x - mean) / sqrt(var + eps) + beta, as Keras computes it.
        var scale = [Float](repeating: 0, count: channels)
        var shift = [Float](repeating: 0, count: channels)
        for c in 0..<channels {
            let inv = 1 / (variance[c] + eps).squareRoot()
            scale[c] = inv * (gamma?[c] ?? 1)
            shift[c] = (beta?[c] ?? 0) - mean[c] * scale[c]
        }
        let rows = y.count / max(1, channels * inner)
        y.data.withUnsafeMutableBufferPointer { p in
            Parallel.chunks(rows, minimumPerChunk: max(1, (1 << 16) / max(1, channels * inner))) { rowRange in
                var i = rowRange.lowerBound * channels * inner
                for _ in rowRange {
                    for c in 0..<channels {
                        let (a, b) = (scale[c], shift[c])
                        for j in 0..<inner { p[i + j] = p[i + j] * a + b }
                        i += inner
                    }
                }
            }
        }
    }
}

enum MergeKernels {
    static func merge(_ className: String, _ first: __owned FloatArray, _ rest: ArraySlice<FloatArray>, path: String)
        throws -> FloatArray
    {
        guard rest.allSatisfy({ $0.shape == first.shape }) else {
            throw InterpreterError.unsupported(
                "\(className) of differently shaped inputs \([first.shape] + rest.map(\.shape)) (layer '\(path)')")
        }
        var y = first
        let count = rest.count + 1
        y.data.withUnsafeMutableBufferPointer { p in
            for other in rest {
                other.data.withUnsafeBufferPointer { q in
                    Parallel.chunks(p.count, minimumPerChunk: 1 << 16) { r in
                        switch className {
                        case "Add", "Average": for i in r { p[i] += q[i] }
                        case "Subtract": for i in r { p[i] -= q[i] }
                        case "Multiply": for i in r { p[i] *= q[i] }
                        case "Maximum": for i in r { p[i] = propagatingMax(p[i], q[i]) }
                        case "Minimum": for i in r { p[i] = p[i].isNaN || q[i].isNaN ? .nan : min(p[i], q[i]) }
                        default: break
                        }
                    }
                }
            }
            if className == "Average" { for i in p.indices { p[i] /= Float(count) } }
        }
        return y
    }
}
