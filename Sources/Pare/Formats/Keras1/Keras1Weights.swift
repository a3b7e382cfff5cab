/// Keras 1's stored weights in Keras 2's layout, as Keras 2's loader converted them
/// (`preprocess_weights_for_loading` for a file of version 1), and where it did not, as Keras 1
/// computed:
/// - names: Keras 1 names a weight `<layer>_W` (`:0` after it under TensorFlow); they become
///   `<layer>/<role>:0`, the role (`kernel`, `bias`, `moving_variance`, …) by position, as Keras 2
///   matched them;
/// - convolution kernels: a 'th' kernel `(filters, channels, rows, cols)` becomes `(rows, cols,
///   channels, filters)`; a Conv1D kernel `(length, 1, channels, filters)` loses its unit axis;
/// - Theano convolves (it flips the kernel) where TensorFlow and Keras 2 and 3 correlate: a kernel
///   trained under Theano (its weight names carry no `:0`) is flipped along its spatial axes, which
///   Keras 2 left to the user (`convert_all_kernels_in_model`);
/// - recurrent layers stored gate by gate (`W_i, U_i, b_i, W_c, …`) are joined in Keras 2's order:
///   LSTM i, f, c, o; GRU z, r, h;
/// - BatchNormalization's `running_std` holds the moving variance (since Keras 1.0.6): kept as is.
enum Keras1Weights {
    /// A layer's converted weights, plus config keys its weights decide (a PReLU's `shared_axes`).
    struct Converted {
        var weights: [Weight]
        var configUpdates: [(String, JSON)] = []
    }

    /// Converts one layer's weights. `className` is the Keras 1 class, `config` the Keras 2 config.
    static func convert(
        _ weights: [Weight], layer: String, className: String, config: JSON, theano: Bool, path: String
    ) throws -> Converted {
        // Arrays are read only for the layers whose layout changes (kernels, gates): the others keep
        // their stored tensors, renamed (a large embedding is not copied).
        func load() throws -> [Stored] {
            try weights.map { try Stored(name: $0.name, shape: $0.tensor.shape, values: $0.tensor.floats()) }
        }
        func renamed(_ roles: [String], prefix: String? = nil) -> [Weight] {
            zip(weights, roles).map { w, role in Weight(name: "\(prefix ?? layer)/\(role):0", tensor: w.tensor) }
        }
        func named(_ stored: [Stored], _ roles: [String], prefix: String? = nil) -> [Weight] {
            zip(stored, roles).map { s, role in
                Weight(name: "\(prefix ?? layer)/\(role):0", tensor: Tensor(float32: s.values, shape: s.shape))
            }
        }
        func expect(_ counts: [Int], _ what: String) throws {
            guard counts.contains(weights.count) else {
                throw ArchitectureError(
                    object: path,
                    problem: "\(className) stores \(weights.count) weights; Keras 1 stored \(what)")
            }
        }
        let useBias = config["use_bias"]?.boolValue ?? true
        switch className {
        case "Dense":
            try expect([useBias ? 2 : 1], "W\(useBias ? " and b" : "")")
            return Converted(weights: renamed(["kernel", "bias"]))
        case _ where convolutions.contains(className):
            try expect([useBias ? 2 : 1], "W\(useBias ? " and b" : "")")
            let values = try load()
            var kernel = try convolutionKernel(
                values[0], className: className, channelsFirst: config["data_format"]?.stringValue == "channels_first",
                path: path)
            if theano { kernel = kernel.flippingSpatialAxes() }
            return Converted(weights: named([kernel] + values.dropFirst(), ["kernel", "bias"]))
        case "SeparableConvolution2D":
            try expect([useBias ? 3 : 2], "depthwise and pointwise kernels\(useBias ? " and b" : "")")
            let channelsFirst = config["data_format"]?.stringValue == "channels_first"
            let values = try load()
            let kernels = try values.prefix(2).map {
                channelsFirst ? try $0.permuted([2, 3, 1, 0], rank: 4, path: path) : $0
            }
            return Converted(
                weights: named(kernels + values.dropFirst(2), ["depthwise_kernel", "pointwise_kernel", "bias"]))
        case "Embedding":
            try expect([1], "W")
            return Converted(weights: renamed(["embeddings"]))
        case "BatchNormalization":
            try expect([4], "gamma, beta, running_mean and running_std (the moving variance)")
            return Converted(weights: renamed(["gamma", "beta", "moving_mean", "moving_variance"]))
        case "PReLU":
            // Keras 1's alphas have the input's shape (it has no shared axes); the model check holds
            // them to it.
            try expect([1], "alphas")
            return Converted(weights: renamed(["alpha"]))
        case "SimpleRNN", "LSTM", "GRU":
            let gates = ["SimpleRNN": 1, "LSTM": 4, "GRU": 3][className]!
            try expect(gates == 1 ? [3] : [3, 3 * gates], "W, U and b, together or gate by gate")
            let units = config["units"]?.intValue ?? -1
            let values = try load()
            if values.count == 3 * gates, gates > 1 {
                // Each gate is (in, units), (units, units), (units): joined gates of other widths would
                // still add up to the width the config needs, and compute something else.
                let inputs = values[0].shape.first ?? -1
                for g in 0..<gates {
                    let expected = [[inputs, units], [units, units], [units]]
                    for part in 0..<3 where values[g * 3 + part].shape != expected[part] {
                        throw values[g * 3 + part].badShape(path, expected: "\(expected[part]) (one gate of \(units))")
                    }
                }
            }
            var joined = values
            if values.count == 3 * gates, gates > 1 {
                // Stored gate by gate: LSTM i, c, f, o; GRU z, r, h. Keras 2 concatenates LSTM's as i, f, c, o.
                let order = gates == 4 ? [0, 2, 1, 3] : [0, 1, 2]
                joined = try (0..<3).map { part in
                    try Stored.concatenatingLastAxis(order.map { values[$0 * 3 + part] }, path: path)
                }
            }
            return Converted(weights: named(joined, ["kernel", "recurrent_kernel", "bias"]))
        case "TimeDistributed", "Bidirectional":
            guard let inner = config["layer"], let innerClass = inner["class_name"]?.stringValue else {
                throw ArchitectureError(object: path, problem: "\(className) without a layer")
            }
            // The wrapped layer's class in Keras 1's terms, for the rules above.
            let keras1Class = Keras1Config.classNames.first { $0.value == innerClass }?.key ?? innerClass
            let innerName = inner["config"]?["name"]?.stringValue ?? "layer"
            if className == "TimeDistributed" {
                var converted = try convert(
                    weights, layer: "\(layer)/\(innerName)", className: keras1Class, config: inner["config"] ?? .null,
                    theano: theano, path: path + "/layer")
                converted.configUpdates = []
                return converted
            }
            guard weights.count % 2 == 0 else {
                throw ArchitectureError(object: path, problem: "Bidirectional stores an odd number of weights")
            }
            let half = weights.count / 2
            var out: [Weight] = []
            for (direction, part) in [("forward", weights.prefix(half)), ("backward", weights.suffix(half))] {
                out += try convert(
                    Array(part), layer: "\(layer)/\(direction)_\(innerName)", className: keras1Class,
                    config: inner["config"] ?? .null, theano: theano, path: path + "/\(direction)"
                ).weights
            }
            return Converted(weights: out)
        default:
            throw ArchitectureError(
                object: path, problem: "Keras 1's \(className) stores weights Pare does not convert")
        }
    }

    /// Whether `convert` flips the layer's kernels when the model was trained under Theano.
    static func flipsKernel(_ className: String, config: JSON) -> Bool {
        if convolutions.contains(className) { return true }
        if ["TimeDistributed", "Bidirectional"].contains(className),
            let inner = config["layer"]?["class_name"]?.stringValue
        {
            return convolutions.contains(Keras1Config.classNames.first { $0.value == inner }?.key ?? inner)
        }
        return false
    }

    static let convolutions: Set<String> = [
        "Convolution1D", "AtrousConvolution1D", "Convolution2D", "AtrousConvolution2D", "Convolution3D",
    ]

    /// A convolution kernel in Keras 2's `(spatial…, channels, filters)` layout.
    static func convolutionKernel(_ w: Stored, className: String, channelsFirst: Bool, path: String) throws -> Stored {
        switch className {
        case "Convolution1D", "AtrousConvolution1D":
            // (length, 1, channels, filters) since Keras 1.1; (filters, channels, length, 1) before.
            guard w.shape.count == 4 else { throw w.badShape(path, expected: "4 axes") }
            let kernel = w.shape[1] == 1 ? w : try w.permuted([2, 3, 1, 0], rank: 4, path: path)
            guard kernel.shape[1] == 1 else { throw w.badShape(path, expected: "a unit second axis") }
            return Stored(
                name: w.name, shape: [kernel.shape[0], kernel.shape[2], kernel.shape[3]], values: kernel.values)
        case "Convolution2D", "AtrousConvolution2D":
            return channelsFirst ? try w.permuted([2, 3, 1, 0], rank: 4, path: path) : w
        default:
            return channelsFirst ? try w.permuted([2, 3, 4, 1, 0], rank: 5, path: path) : w
        }
    }

    /// One stored array, as float32 values.
    struct Stored {
        var name: String
        var shape: [Int]
        var values: [Float]

        func badShape(_ path: String, expected: String) -> ArchitectureError {
            ArchitectureError(object: path, problem: "weight '\(name)' has shape \(shape), not \(expected)")
        }

        /// Axes reordered: output axis i is input axis `order[i]` (the interpreter's transpose, on a
        /// batch of one).
        func permuted(_ order: [Int], rank: Int, path: String) throws -> Stored {
            guard shape.count == rank else { throw badShape(path, expected: "\(rank) axes") }
            // 'th' kernels move their first two axes (filters, channels) last: (f, c, s…) → (s…, c, f).
            // A direct loop over (f, c) blocks of spatial taps: a kernel of 64 M values takes a second.
            if order == Array(2..<rank) + [1, 0] {
                let (f, c) = (shape[0], shape[1])
                let taps = shape.dropFirst(2).reduce(1, *)
                var out = [Float](repeating: 0, count: values.count)
                values.withUnsafeBufferPointer { src in
                    out.withUnsafeMutableBufferPointer { dst in
                        for o in 0..<f {
                            for i in 0..<c {
                                let base = (o * c + i) * taps
                                for t in 0..<taps { dst[(t * c + i) * f + o] = src[base + t] }
                            }
                        }
                    }
                }
                return Stored(name: name, shape: Array(shape.dropFirst(2)) + [c, f], values: out)
            }
            let moved = ShapeKernels.permute(FloatArray(shape: [1] + shape, data: values), order: order)
            return Stored(name: name, shape: Array(moved.shape.dropFirst()), values: moved.data)
        }

        /// Reversed along every axis but the last two (a kernel's spatial axes): convolution as correlation.
        func flippingSpatialAxes() -> Stored {
            let spatial = Array(shape.dropLast(2))
            let inner = shape.suffix(2).reduce(1, *)
            let positions = spatial.reduce(1, *)
            var out = [Float](repeating: 0, count: values.count)
            var index = [Int](repeating: 0, count: spatial.count)
            for p in 0..<positions {
                var rest = p
                for i in stride(from: spatial.count - 1, through: 0, by: -1) {
                    index[i] = rest % spatial[i]
                    rest /= spatial[i]
                }
                var flipped = 0
                for i in 0..<spatial.count { flipped = flipped * spatial[i] + (spatial[i] - 1 - index[i]) }
                values.withUnsafeBufferPointer { src in
                    out.withUnsafeMutableBufferPointer { dst in
                        (dst.baseAddress! + flipped * inner).update(from: src.baseAddress! + p * inner, count: inner)
                    }
                }
            }
            return Stored(name: name, shape: shape, values: out)
        }

        /// Arrays of equal leading axes joined along their last.
        static func concatenatingLastAxis(_ parts: [Stored], path: String) throws -> Stored {
            let lead = Array(parts[0].shape.dropLast())
            guard parts.allSatisfy({ Array($0.shape.dropLast()) == lead && !$0.shape.isEmpty }) else {
                throw ArchitectureError(
                    object: path, problem: "gate weights of shapes \(parts.map(\.shape)) do not join")
            }
            let rows = lead.reduce(1, *)
            var out: [Float] = []
            out.reserveCapacity(parts.reduce(0) { $0 + $1.values.count })
            for r in 0..<rows {
                for part in parts {
                    let width = part.shape.last!
                    out += part.values[(r * width)..<((r + 1) * width)]
                }
            }
            return Stored(name: parts[0].name, shape: lead + [parts.reduce(0) { $0 + $1.shape.last! }], values: out)
        }
    }
}
