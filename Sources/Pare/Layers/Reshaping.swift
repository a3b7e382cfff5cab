/// Layers that move values without computing: Flatten, Reshape, Permute, padding, cropping, upsampling.

/// `Flatten`: every position's channels, one after another.
struct Flatten: LayerKind {
    static let classNames = ["Flatten"]
    let layout: SpatialLayout

    init(config: LayerConfig) throws { layout = SpatialLayout(config) }

    func outputShape(_ inputs: [Shape]) throws -> Shape {
        [ShapeMath.count(try singleInput(inputs))]
    }

    func channelFlow(input: Shape, output: Shape) -> ChannelFlow {
        input.count > 1 ? layout.flow(ChannelFlow(.flattens)) : ChannelFlow(.flattens)
    }

    var interpreterLimitation: String? { layout.channelsFirst ? layout.limitation : nil }

    func compute(_ inputs: inout [FloatArray], _ context: RunContext) throws -> FloatArray {
        let x = takeFirst(&inputs)
        return FloatArray(shape: [x.batch] + context.outputShape.map { $0 ?? 0 }, data: x.data)
    }
}

/// `Reshape(target_shape)`: relabels the values; at most one dimension is inferred (-1).
struct Reshape: LayerKind {
    static let classNames = ["Reshape"]
    let target: [Int?]

    init(config: LayerConfig) throws {
        guard let list = config["target_shape"]?.arrayValue else {
            throw LayerConfigError("target_shape missing or out of range")
        }
        let dims = list.map { $0.intValue }
        guard dims.allSatisfy({ $0 == nil || $0! == -1 || (0...LayerConfig.maxDimension).contains($0!) }) else {
            throw LayerConfigError("target_shape missing or out of range")
        }
        guard dims.filter({ $0 == nil || $0 == -1 }).count <= 1 else {
            throw LayerConfigError("target_shape has more than one unknown dimension")
        }
        target = dims.map { $0 == -1 ? nil : $0 }
    }

    func outputShape(_ inputs: [Shape]) throws -> Shape {
        let x = try singleInput(inputs)
        let known = ShapeMath.count(x)
        guard let fixed = ShapeMath.product(target.compactMap { $0 }) else {
            throw LayerConfigError("target_shape is too large")
        }
        let open = target.contains(nil)
        if let known {
            // The values are only relabelled: the count must come out the same.
            guard open ? fixed > 0 && known % fixed == 0 : known == fixed else {
                throw LayerConfigError(
                    "target_shape \(target.map { $0 ?? -1 }) does not hold the \(known) values of its input")
            }
        }
        return target.map { t in t ?? known.map { fixed == 0 ? 0 : $0 / fixed } }
    }

    /// A reshape that keeps the last axis as it is (`(4, 4, 32)` → `(16, 32)`, a ViT's patches) only
    /// regroups positions: each channel stays itself. Any other reshape mixes channels.
    func channelFlow(input: Shape, output: Shape) -> ChannelFlow {
        guard let channels = input.last ?? nil, output.last == channels, target.last == channels else { return .mixes }
        return ChannelFlow.perChannel(indexed: true, elementwise: true)
    }

    func keepingInputChannels(_ keep: [Int], _ edit: inout LayerEdit) throws {
        guard var list = edit.config["target_shape"]?.arrayValue, !list.isEmpty else {
            throw LayerConfigError("target_shape missing")
        }
        list[list.count - 1] = .int(keep.count)
        edit.config.set("target_shape", .array(list))
    }

    func compute(_ inputs: inout [FloatArray], _ context: RunContext) throws -> FloatArray {
        let x = takeFirst(&inputs)
        return FloatArray(shape: [x.batch] + context.outputShape.map { $0 ?? 0 }, data: x.data)
    }
}

/// `Permute(dims)`: a permutation of the axes after the batch (counted from 1).
struct Permute: LayerKind {
    static let classNames = ["Permute"]
    let dims: [Int]

    init(config: LayerConfig) throws {
        let list = config["dims"]?.arrayValue ?? []
        let d = list.compactMap { $0.intValue }
        guard !d.isEmpty, d.count == list.count, Set(d) == Set(1...d.count) else {
            throw LayerConfigError("dims must be a permutation of 1…\(list.count)")
        }
        dims = d
    }

    func outputShape(_ inputs: [Shape]) throws -> Shape {
        guard inputs.count == 1, dims.count == inputs[0].count else {
            throw LayerConfigError("dims must be a permutation of 1…\(inputs.first?.count ?? 0)")
        }
        return dims.map { inputs[0][$0 - 1] }
    }

    func channelFlow(input: Shape, output: Shape) -> ChannelFlow { .mixes }

    func compute(_ inputs: inout [FloatArray], _ context: RunContext) throws -> FloatArray {
        ShapeKernels.permute(inputs[0], order: dims.map { $0 - 1 })
    }
}

/// The (before, after) amounts of padding or cropping for each spatial axis, from an int, a pair
/// or a pair of pairs as Keras takes them: `ZeroPadding1D((1, 2))` is 1 before and 2 after,
/// `ZeroPadding2D((1, 2))` is 1 above and below and 2 left and right.
struct Margins: Sendable {
    let amounts: [(before: Int, after: Int)]

    init(_ config: LayerConfig, key: String, rank: Int) throws {
        let range = 0...LayerConfig.maxParameter
        let value = config[key]
        let fail = LayerConfigError("\(key) missing or out of range")
        if let v = value?.intValue {
            guard range.contains(v) else { throw fail }
            amounts = Array(repeating: (v, v), count: rank)
            return
        }
        if rank == 1 {
            guard let pair = LayerConfig.ints(value, count: 2, range: range) else { throw fail }
            amounts = [(pair[0], pair[1])]
            return
        }
        guard let list = value?.arrayValue, list.count == rank else { throw fail }
        amounts = try list.map { item in
            if let v = item.intValue {
                guard range.contains(v) else { throw fail }
                return (v, v)
            }
            guard let pair = LayerConfig.ints(item, count: 2, range: range) else { throw fail }
            return (pair[0], pair[1])
        }
    }

    /// The image kernel's (top, bottom, left, right), signed: negative amounts crop.
    func imageMargins(sign: Int) -> (Int, Int, Int, Int) {
        let h: (before: Int, after: Int) = amounts.count == 1 ? (0, 0) : amounts[0]
        let w = amounts[amounts.count - 1]
        return (sign * h.before, sign * h.after, sign * w.before, sign * w.after)
    }
}

/// `ZeroPadding1D/2D/3D(padding)` and `Cropping1D/2D/3D(cropping)`.
struct PaddingOrCropping: LayerKind {
    static let classNames = [
        "ZeroPadding1D", "ZeroPadding2D", "ZeroPadding3D", "Cropping1D", "Cropping2D", "Cropping3D",
    ]
    let margins: Margins
    let crops: Bool
    let layout: SpatialLayout

    init(config: LayerConfig) throws {
        crops = config.className.hasPrefix("Cropping")
        layout = SpatialLayout(config, rank: SpatialLayout.rank(of: config.className))
        margins = try Margins(config, key: crops ? "cropping" : "padding", rank: layout.rank)
    }

    func outputShape(_ inputs: [Shape]) throws -> Shape {
        let (spatial, c) = try layout.input(inputs)
        let sign = crops ? -1 : 1
        let out = zip(spatial, margins.amounts).map { n, m in n.map { $0 + sign * (m.before + m.after) } }
        if out.contains(where: { ($0 ?? 0) < 0 }) { throw LayerConfigError("crops more than the input has") }
        return layout.join(out, c)
    }

    func channelFlow(input: Shape, output: Shape) -> ChannelFlow { layout.flow(.perChannel()) }
    var interpreterLimitation: String? { layout.limitation }

    func compute(_ inputs: inout [FloatArray], _ context: RunContext) throws -> FloatArray {
        let sign = crops ? -1 : 1
        if layout.rank == 3 {
            return VolumeKernels.pad(
                inputs[0], before: margins.amounts.map { sign * $0.before },
                after: margins.amounts.map { sign * $0.after })
        }
        let (top, bottom, left, right) = margins.imageMargins(sign: sign)
        return layout.fromImage(
            ShapeKernels.pad(SpatialLayout.asImage(inputs[0]), top: top, bottom: bottom, left: left, right: right))
    }
}

/// `UpSampling1D(size)` (each step repeated), `UpSampling2D(size, interpolation)` and
/// `UpSampling3D(size)`: the interpreter runs `nearest`.
struct UpSampling: LayerKind {
    static let classNames = ["UpSampling1D", "UpSampling2D", "UpSampling3D"]
    let size: [Int]
    let interpolation: String
    let layout: SpatialLayout

    init(config: LayerConfig) throws {
        layout = SpatialLayout(config, rank: SpatialLayout.rank(of: config.className))
        size = try config.ints(
            "size", count: layout.rank, range: 1...LayerConfig.maxParameter,
            fallback: [Int](repeating: 2, count: layout.rank), what: "size must be positive")
        interpolation = config.string("interpolation", fallback: "nearest")
    }

    func outputShape(_ inputs: [Shape]) throws -> Shape {
        let (spatial, c) = try layout.input(inputs)
        return layout.join(zip(spatial, size).map { n, s in n.map { $0 * s } }, c)
    }

    func channelFlow(input: Shape, output: Shape) -> ChannelFlow { layout.flow(.perChannel()) }

    var interpreterLimitation: String? {
        layout.limitation ?? (interpolation != "nearest" ? "UpSampling2D interpolation '\(interpolation)'" : nil)
    }

    func compute(_ inputs: inout [FloatArray], _ context: RunContext) throws -> FloatArray {
        if layout.rank == 3 { return VolumeKernels.upsample(inputs[0], size: size) }
        return layout.fromImage(
            ShapeKernels.upsampleNearest(SpatialLayout.asImage(inputs[0]), size: layout.rank == 1 ? [1] + size : size))
    }
}

/// `RepeatVector(n)`: a vector `(features)` repeated into a sequence `(n, features)`.
struct RepeatVector: LayerKind {
    static let classNames = ["RepeatVector"]
    let times: Int

    init(config: LayerConfig) throws {
        times = try config.positive("n", what: "n missing or not positive")
    }

    func outputShape(_ inputs: [Shape]) throws -> Shape {
        let x = try singleInput(inputs, rank: 1)
        return [times, x[0]]
    }

    func channelFlow(input: Shape, output: Shape) -> ChannelFlow { .perChannel() }

    func compute(_ inputs: inout [FloatArray], _ context: RunContext) throws -> FloatArray {
        let x = inputs[0]
        let c = x.shape[1]
        var out = [Float]()
        out.reserveCapacity(x.batch * times * c)
        for b in 0..<x.batch {
            let row = x.data[(b * c)..<((b + 1) * c)]
            for _ in 0..<times { out += row }
        }
        return FloatArray(shape: [x.batch, times, c], data: out)
    }
}
