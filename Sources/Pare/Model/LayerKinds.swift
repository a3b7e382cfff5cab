/// Shapes are per example, without the batch axis; nil marks an unknown dimension.
public typealias Shape = [Int?]

public struct UnsupportedLayerError: Error, CustomStringConvertible {
    public let layer: String
    public let className: String
    public let reason: String
    /// The class is one Pare does not know (a custom layer): the model may still be valid Keras.
    /// Otherwise the class is known and its config is not valid.
    public var unknownClass = false
    public var description: String { "layer '\(layer)' (\(className)): \(reason)" }

    init(layer: String, className: String, reason: String, unknownClass: Bool = false) {
        self.layer = layer
        self.className = className
        self.reason = reason
        self.unknownClass = unknownClass
    }
}

/// What Pare knows of each Keras layer class: the output shape, the weights it must have, and
/// its multiply-accumulate count. One entry per class family; adding a class touches one place.
enum LayerKinds {
    static let identityClasses: Set<String> = [
        "Activation", "ReLU", "LeakyReLU", "PReLU", "ELU", "Softmax", "ThresholdedReLU",
        "Dropout", "SpatialDropout1D", "SpatialDropout2D", "GaussianNoise", "GaussianDropout", "AlphaDropout",
        "BatchNormalization", "Rescaling", "ActivityRegularization", "Identity", "Masking",
    ]
    /// Layers with an `activation` argument applied after their own computation.
    static let activationCarriers: Set<String> = [
        "Conv2D", "DepthwiseConv2D", "SeparableConv2D", "Conv2DTranspose", "Dense",
    ]
    static let mergeClasses: Set<String> = ["Add", "Subtract", "Multiply", "Average", "Maximum", "Minimum"]
    static let knownClasses: Set<String> = identityClasses.union(mergeClasses).union([
        "InputLayer", "Conv2D", "DepthwiseConv2D", "SeparableConv2D", "Conv2DTranspose", "Dense",
        "MaxPooling2D", "AveragePooling2D", "GlobalAveragePooling2D", "GlobalMaxPooling2D",
        "Flatten", "Reshape", "Permute", "ZeroPadding2D", "Cropping2D", "UpSampling2D", "Concatenate",
        "Sequential", "Functional", "Model",
    ])

    /// Largest layer parameter (kernel size, stride, filters, units, padding …) and largest tensor
    /// dimension Pare accepts from a config: bounds that keep every shape and MAC computation far
    /// from integer overflow (a config is input, and fuzzing found a stride of 0).
    static let maxParameter = 1 << 24
    static let maxDimension = 1 << 32

    /// `count` integers (a single one is repeated) in `range`; nil if missing or out of range.
    static func ints(_ value: JSON?, count: Int, range: ClosedRange<Int> = 0...maxParameter) -> [Int]? {
        if let v = value?.intValue { return range.contains(v) ? Array(repeating: v, count: count) : nil }
        guard let list = value?.arrayValue, list.count == count else { return nil }
        let r = list.compactMap { $0.intValue }.filter(range.contains)
        return r.count == count ? r : nil
    }

    /// A positive layer parameter (filters, units, depth_multiplier, groups).
    static func positive(_ value: JSON?) -> Int? {
        value?.intValue.flatMap { (1...maxParameter).contains($0) ? $0 : nil }
    }

    /// The product of `factors`, nil if it overflows.
    /// The sum, or nil if a term is unknown or the sum overflows.
    static func sum(_ terms: [Int?]) -> Int? {
        var total = 0
        for term in terms {
            guard let term else { return nil }
            let (s, o) = total.addingReportingOverflow(term)
            if o { return nil }
            total = s
        }
        return total
    }

    static func product(_ factors: [Int]) -> Int? {
        var p = 1
        for f in factors {
            let (r, o) = p.multipliedReportingOverflow(by: f)
            if o { return nil }
            p = r
        }
        return p
    }

    static func channelsFirst(_ config: JSON) -> Bool { config["data_format"]?.stringValue == "channels_first" }

    /// (height, width, channels) of a rank-3 image shape in either data format.
    static func hwc(_ s: Shape, _ config: JSON) -> (Int?, Int?, Int?) {
        channelsFirst(config) ? (s[1], s[2], s[0]) : (s[0], s[1], s[2])
    }

    static func image(_ h: Int?, _ w: Int?, _ c: Int?, _ config: JSON) -> Shape {
        channelsFirst(config) ? [c, h, w] : [h, w, c]
    }

    /// Keras's conv_output_length.
    /// Keras's dtype policy names (and the plain dtypes an InputLayer may carry).
    static let knownDTypePolicies: Set<String> = [
        "float16", "float32", "float64", "bfloat16", "mixed_float16", "mixed_bfloat16", "int8", "int16", "int32",
        "int64", "uint8", "uint16", "uint32", "uint64", "bool", "string",
    ]

    static func convLength(_ n: Int?, kernel: Int, stride: Int, dilation: Int, padding: String) -> Int? {
        guard let n else { return nil }
        let k = (kernel - 1) * dilation + 1
        return padding == "same" ? (n + stride - 1) / stride : max(0, (n - k) / stride + 1)
    }

    static func outputShape(_ layer: LayerNode, inputs: [Shape], path: String) throws -> Shape {
        let shape = try computedOutputShape(layer, inputs: inputs, path: path)
        if let bad = shape.compactMap({ $0 }).first(where: { !(0...maxDimension).contains($0) }) {
            throw UnsupportedLayerError(
                layer: path, className: layer.className,
                reason: "its output would have a dimension of \(bad), out of range")
        }
        return shape
    }

    static func computedOutputShape(_ layer: LayerNode, inputs: [Shape], path: String) throws -> Shape {
        let c = layer.config
        let cls = layer.className
        func fail(_ reason: String) -> UnsupportedLayerError {
            UnsupportedLayerError(layer: path, className: cls, reason: reason)
        }
        if let policy = c["dtype"]?["config"]?["name"]?.stringValue ?? c["dtype"]?.stringValue,
            !knownDTypePolicies.contains(policy)
        {
            throw fail("dtype policy '\(policy)' is not one Keras has")
        }
        func rank(_ r: Int) throws -> Shape {
            guard inputs.count == 1 else { throw fail("expects 1 input, got \(inputs.count)") }
            guard inputs[0].count == r else {
                throw fail("expects a rank-\(r + 1) input (batch included), got shape \(describe(inputs[0]))")
            }
            return inputs[0]
        }
        if identityClasses.contains(cls) {
            guard inputs.count == 1 else { throw fail("expects 1 input, got \(inputs.count)") }
            return inputs[0]
        }
        if mergeClasses.contains(cls) {
            guard inputs.count >= 2 || (cls == "Subtract" && inputs.count == 2) else {
                throw fail("merges need at least 2 inputs")
            }
            guard inputs.allSatisfy({ $0.count == inputs[0].count }) else {
                throw fail("inputs of different ranks: \(inputs.map(describe))")
            }
            return (0..<inputs[0].count).map { axis in
                inputs.compactMap { $0[axis] }.filter { $0 != 1 }.first ?? inputs[0][axis]
            }
        }
        switch cls {
        case "Conv2D", "DepthwiseConv2D", "SeparableConv2D":
            let s = try rank(3)
            let (h, w, ch) = hwc(s, c)
            guard let k = ints(c["kernel_size"], count: 2, range: 1...maxParameter) else {
                throw fail("kernel_size missing or not positive")
            }
            guard let st = c["strides"] == nil ? [1, 1] : ints(c["strides"], count: 2, range: 1...maxParameter),
                let d = c["dilation_rate"] == nil
                    ? [1, 1] : ints(c["dilation_rate"], count: 2, range: 1...maxParameter)
            else {
                throw fail("strides and dilation_rate must be positive")
            }
            let pad = c["padding"]?.stringValue ?? "valid"
            guard pad == "same" || pad == "valid" else { throw fail("padding '\(pad)' is not supported") }
            let oh = convLength(h, kernel: k[0], stride: st[0], dilation: d[0], padding: pad)
            let ow = convLength(w, kernel: k[1], stride: st[1], dilation: d[1], padding: pad)
            let out: Int?
            if cls == "DepthwiseConv2D" {
                guard let m = c["depth_multiplier"] == nil ? 1 : positive(c["depth_multiplier"]) else {
                    throw fail("depth_multiplier must be positive")
                }
                out = ch.map { $0 * m }
            } else {
                guard let f = positive(c["filters"]) else { throw fail("filters missing or not positive") }
                // Grouped convolutions split input and output channels evenly; anything else reads past the kernel.
                let groups = c["groups"] == nil ? 1 : c["groups"]?.intValue ?? 0
                guard
                    cls != "Conv2D"
                        || (1...maxParameter).contains(groups) && f % groups == 0
                            && (ch.map { $0 % groups == 0 } ?? true)
                else {
                    throw fail(
                        "groups \(groups) must be positive and divide the filters (\(f)) and input channels (\(ch.map(String.init) ?? "?"))"
                    )
                }
                out = f
            }
            return image(oh, ow, out, c)
        case "Conv2DTranspose":
            let s = try rank(3)
            let (h, w, _) = hwc(s, c)
            guard let k = ints(c["kernel_size"], count: 2, range: 1...maxParameter), let f = positive(c["filters"])
            else {
                throw fail("kernel_size or filters missing or not positive")
            }
            guard let st = c["strides"] == nil ? [1, 1] : ints(c["strides"], count: 2, range: 1...maxParameter),
                let d = c["dilation_rate"] == nil
                    ? [1, 1] : ints(c["dilation_rate"], count: 2, range: 1...maxParameter)
            else {
                throw fail("strides and dilation_rate must be positive")
            }
            let pad = c["padding"]?.stringValue ?? "valid"
            let outPad = ints(c["output_padding"], count: 2)
            func length(_ n: Int?, _ i: Int) -> Int? {
                guard let n else { return nil }
                let k2 = (k[i] - 1) * d[i] + 1
                if let op = outPad?[i] {
                    let p = pad == "same" ? k2 / 2 : 0
                    return (n - 1) * st[i] + k2 - 2 * p + op
                }
                return pad == "same" ? n * st[i] : n * st[i] + max(k2 - st[i], 0)
            }
            return image(length(h, 0), length(w, 1), f, c)
        case "Dense":
            guard inputs.count == 1, !inputs[0].isEmpty else { throw fail("expects 1 input of rank ≥ 2") }
            guard let units = positive(c["units"]) else { throw fail("units missing or not positive") }
            return Array(inputs[0].dropLast()) + [units]
        case "MaxPooling2D", "AveragePooling2D":
            let s = try rank(3)
            let (h, w, ch) = hwc(s, c)
            guard let pool = c["pool_size"] == nil ? [2, 2] : ints(c["pool_size"], count: 2, range: 1...maxParameter),
                let st = c["strides"] == nil || c["strides"]?.isNull == true
                    ? pool : ints(c["strides"], count: 2, range: 1...maxParameter)
            else {
                throw fail("pool_size and strides must be positive")
            }
            let pad = c["padding"]?.stringValue ?? "valid"
            return image(
                convLength(h, kernel: pool[0], stride: st[0], dilation: 1, padding: pad),
                convLength(w, kernel: pool[1], stride: st[1], dilation: 1, padding: pad), ch, c)
        case "GlobalAveragePooling2D", "GlobalMaxPooling2D":
            let s = try rank(3)
            let (_, _, ch) = hwc(s, c)
            return c["keepdims"]?.boolValue == true ? image(1, 1, ch, c) : [ch]
        case "Flatten":
            guard inputs.count == 1 else { throw fail("expects 1 input") }
            let dims = inputs[0]
            return [dims.contains(where: { $0 == nil }) ? nil : product(dims.map { $0! })]
        case "Reshape":
            guard inputs.count == 1, let target = c["target_shape"]?.arrayValue?.map({ $0.intValue }),
                target.allSatisfy({ $0 == nil || $0! == -1 || (0...maxDimension).contains($0!) })
            else { throw fail("target_shape missing or out of range") }
            let known = inputs[0].contains(where: { $0 == nil }) ? nil : product(inputs[0].map { $0! })
            guard let fixed = product(target.compactMap { $0 }.filter { $0 != -1 }) else {
                throw fail("target_shape is too large")
            }
            let open = target.filter { $0 == nil || $0 == -1 }.count
            guard open <= 1 else { throw fail("target_shape has more than one unknown dimension") }
            if let known {
                // The values are only relabelled: the count must come out the same.
                guard open == 1 ? fixed > 0 && known % fixed == 0 : known == fixed else {
                    throw fail("target_shape \(target.map { $0 ?? -1 }) does not hold the \(known) values of its input")
                }
            }
            return target.map { t in t == -1 || t == nil ? known.map { fixed == 0 ? 0 : $0 / fixed } : t }
        case "Permute":
            guard inputs.count == 1, let dims = c["dims"]?.arrayValue?.compactMap({ $0.intValue }), !dims.isEmpty,
                dims.count == inputs[0].count, Set(dims) == Set(1...dims.count)
            else { throw fail("dims must be a permutation of 1…\(inputs.first?.count ?? 0)") }
            return dims.map { inputs[0][$0 - 1] }
        case "ZeroPadding2D", "Cropping2D":
            let s = try rank(3)
            let (h, w, ch) = hwc(s, c)
            let key = cls == "ZeroPadding2D" ? "padding" : "cropping"
            guard let (t, b, l, r) = pairs2D(c[key]) else { throw fail("\(key) missing or out of range") }
            let sign = cls == "ZeroPadding2D" ? 1 : -1
            let (oh, ow) = (h.map { $0 + sign * (t + b) }, w.map { $0 + sign * (l + r) })
            if let oh, let ow, oh < 0 || ow < 0 { throw fail("crops more than the input has") }
            return image(oh, ow, ch, c)
        case "UpSampling2D":
            let s = try rank(3)
            let (h, w, ch) = hwc(s, c)
            guard let size = c["size"] == nil ? [2, 2] : ints(c["size"], count: 2, range: 1...maxParameter) else {
                throw fail("size must be positive")
            }
            return image(h.map { $0 * size[0] }, w.map { $0 * size[1] }, ch, c)
        case "Concatenate":
            guard inputs.count >= 1, inputs.allSatisfy({ $0.count == inputs[0].count }) else {
                throw fail("inputs of different ranks")
            }
            var axis = c["axis"]?.intValue ?? -1
            let r = inputs[0].count
            axis = axis < 0 ? r + axis : axis - 1  // Keras counts the batch axis
            guard axis >= 0, axis < r else { throw fail("axis out of range") }
            for other in inputs.dropFirst() {
                for d in 0..<r where d != axis {
                    if let a = inputs[0][d], let b = other[d], a != b {
                        throw fail("inputs \(inputs.map(describe)) differ off the axis")
                    }
                }
            }
            var out = inputs[0]
            out[axis] = inputs.contains(where: { $0[axis] == nil }) ? nil : inputs.map { $0[axis]! }.reduce(0, +)
            return out
        default:
            throw UnsupportedLayerError(
                layer: path, className: cls, reason: "is not a layer Pare knows", unknownClass: true)
        }
    }

    /// ((top, bottom), (left, right)) from an int, a pair, or a pair of pairs.
    static func pairs2D(_ value: JSON?) -> (Int, Int, Int, Int)? {
        let range = 0...maxParameter
        if let v = value?.intValue { return range.contains(v) ? (v, v, v, v) : nil }
        guard let list = value?.arrayValue, list.count == 2 else { return nil }
        if let a = list[0].intValue, let b = list[1].intValue {
            return range.contains(a) && range.contains(b) ? (a, a, b, b) : nil
        }
        guard let t = ints(list[0], count: 2, range: range), let l = ints(list[1], count: 2, range: range) else {
            return nil
        }
        return (t[0], t[1], l[0], l[1])
    }

    /// The weights a layer must have, by role, in Keras's order; nil where Pare cannot say.
    static func expectedWeights(_ layer: LayerNode, input: Shape) -> [(role: String, shape: [Int?])]? {
        let c = layer.config
        let bias = c["use_bias"]?.boolValue ?? true
        let channelAxisValue: Int? = {
            guard !input.isEmpty else { return nil }
            return channelsFirst(c) ? input[0] : input[input.count - 1]
        }()
        switch layer.className {
        case "Conv2D":
            guard let k = ints(c["kernel_size"], count: 2), let f = c["filters"]?.intValue else { return nil }
            let groups = c["groups"]?.intValue ?? 1
            return [("kernel", [k[0], k[1], channelAxisValue.map { $0 / max(1, groups) }, f])]
                + (bias ? [("bias", [f])] : [])
        case "DepthwiseConv2D":
            guard let k = ints(c["kernel_size"], count: 2) else { return nil }
            let m = positive(c["depth_multiplier"]) ?? 1
            return [("depthwise_kernel", [k[0], k[1], channelAxisValue, m])]
                + (bias ? [("bias", [channelAxisValue.map { $0 * m }])] : [])
        case "SeparableConv2D":
            guard let k = ints(c["kernel_size"], count: 2), let f = c["filters"]?.intValue else { return nil }
            let m = positive(c["depth_multiplier"]) ?? 1
            return [
                ("depthwise_kernel", [k[0], k[1], channelAxisValue, m]),
                ("pointwise_kernel", [1, 1, channelAxisValue.map { $0 * m }, f]),
            ] + (bias ? [("bias", [f])] : [])
        case "Conv2DTranspose":
            guard let k = ints(c["kernel_size"], count: 2), let f = c["filters"]?.intValue else { return nil }
            return [("kernel", [k[0], k[1], f, channelAxisValue])] + (bias ? [("bias", [f])] : [])
        case "Dense":
            guard let units = c["units"]?.intValue else { return nil }
            return [("kernel", [input.last ?? nil, units])] + (bias ? [("bias", [units])] : [])
        case "BatchNormalization":
            var axis = c["axis"]?.intValue ?? c["axis"]?[0]?.intValue ?? -1
            axis = axis < 0 ? input.count + axis : axis - 1
            let n: Int? = input.indices.contains(axis) ? input[axis] : nil
            var list: [(String, [Int?])] = []
            if c["scale"]?.boolValue ?? true { list.append(("gamma", [n])) }
            if c["center"]?.boolValue ?? true { list.append(("beta", [n])) }
            return list + [("moving_mean", [n]), ("moving_variance", [n])]
        case "PReLU":
            var shape: [Int?] = input
            for a in c["shared_axes"]?.arrayValue?.compactMap({ $0.intValue }) ?? [] where a >= 1 && a <= shape.count {
                shape[a - 1] = 1
            }
            return [("alpha", shape)]
        case let cls where identityClasses.contains(cls) || mergeClasses.contains(cls):
            return []
        case "InputLayer", "MaxPooling2D", "AveragePooling2D", "GlobalAveragePooling2D", "GlobalMaxPooling2D",
            "Flatten",
            "Reshape", "Permute", "ZeroPadding2D", "Cropping2D", "UpSampling2D", "Concatenate":
            return []
        default:
            return nil
        }
    }

    /// Multiply-accumulates of one call: Conv/Dense only (bias, BN, activations and pooling are not counted).
    static func macs(_ layer: LayerNode, input: Shape, output: Shape) -> Int? {
        let c = layer.config
        func known(_ s: Shape) -> [Int]? { s.contains(where: { $0 == nil }) ? nil : s.map { $0! } }
        guard let i = known(input), let o = known(output) else { return nil }
        let k = ints(c["kernel_size"], count: 2, range: 1...maxParameter) ?? [1, 1]
        let convolutional = ["Conv2D", "DepthwiseConv2D", "SeparableConv2D", "Conv2DTranspose"].contains(
            layer.className)
        if convolutional, i.count != 3 || o.count != 3 { return nil }
        switch layer.className {
        case "Conv2D":
            let (_, _, cin) = hwc(input, c)
            let (oh, ow, cout) = hwc(output, c)
            let groups = positive(c["groups"]) ?? 1
            return product([oh!, ow!, k[0], k[1], cin! / groups, cout!])
        case "DepthwiseConv2D":
            let (oh, ow, cout) = hwc(output, c)
            return product([oh!, ow!, k[0], k[1], cout!])
        case "SeparableConv2D":
            let (_, _, cin) = hwc(input, c)
            let (oh, ow, cout) = hwc(output, c)
            let m = positive(c["depth_multiplier"]) ?? 1
            guard let a = product([oh!, ow!, k[0], k[1], cin!, m]), let b = product([oh!, ow!, cin!, m, cout!]) else {
                return nil
            }
            let (sum, overflow) = a.addingReportingOverflow(b)
            return overflow ? nil : sum
        case "Conv2DTranspose":
            let (ih, iw, cin) = hwc(input, c)
            let (_, _, cout) = hwc(output, c)
            return product([ih!, iw!, k[0], k[1], cin!, cout!])
        case "Dense":
            guard let last = o.last else { return nil }
            return product(i + [last])
        default:
            return 0
        }
    }
}

func describe(_ shape: Shape) -> String {
    "(None, " + shape.map { $0.map(String.init) ?? "None" }.joined(separator: ", ") + ")"
}
