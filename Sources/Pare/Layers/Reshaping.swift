/// Layers that move values without computing: Flatten, Reshape, Permute, padding, cropping, upsampling.

/// `Flatten`: every position's channels, one after another.
struct Flatten: LayerKind {
    static let classNames = ["Flatten"]
    let layout: ImageLayout

    init(config: LayerConfig) throws { layout = ImageLayout(config) }

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

    func channelFlow(input: Shape, output: Shape) -> ChannelFlow { .mixes }

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

/// ((top, bottom), (left, right)) from an int, a pair, or a pair of pairs, as padding and cropping take them.
struct Margins2D: Sendable {
    let top, bottom, left, right: Int

    init(_ config: LayerConfig, key: String) throws {
        let range = 0...LayerConfig.maxParameter
        let value = config[key]
        let fail = LayerConfigError("\(key) missing or out of range")
        if let v = value?.intValue {
            guard range.contains(v) else { throw fail }
            (top, bottom, left, right) = (v, v, v, v)
            return
        }
        guard let list = value?.arrayValue, list.count == 2 else { throw fail }
        if let a = list[0].intValue, let b = list[1].intValue {
            guard range.contains(a), range.contains(b) else { throw fail }
            (top, bottom, left, right) = (a, a, b, b)
            return
        }
        guard let t = LayerConfig.ints(list[0], count: 2, range: range),
            let l = LayerConfig.ints(list[1], count: 2, range: range)
        else { throw fail }
        (top, bottom, left, right) = (t[0], t[1], l[0], l[1])
    }
}

/// `ZeroPadding2D(padding)`.
struct ZeroPadding2D: LayerKind {
    static let classNames = ["ZeroPadding2D"]
    let margins: Margins2D
    let layout: ImageLayout

    init(config: LayerConfig) throws {
        margins = try Margins2D(config, key: "padding")
        layout = ImageLayout(config)
    }

    func outputShape(_ inputs: [Shape]) throws -> Shape {
        let (h, w, c) = layout.hwc(try singleInput(inputs, rank: 3))
        return layout.image(h.map { $0 + margins.top + margins.bottom }, w.map { $0 + margins.left + margins.right }, c)
    }

    func channelFlow(input: Shape, output: Shape) -> ChannelFlow { layout.flow(.perChannel()) }
    var interpreterLimitation: String? { layout.limitation }

    func compute(_ inputs: inout [FloatArray], _ context: RunContext) throws -> FloatArray {
        ShapeKernels.pad(
            inputs[0], top: margins.top, bottom: margins.bottom, left: margins.left, right: margins.right)
    }
}

/// `Cropping2D(cropping)`.
struct Cropping2D: LayerKind {
    static let classNames = ["Cropping2D"]
    let margins: Margins2D
    let layout: ImageLayout

    init(config: LayerConfig) throws {
        margins = try Margins2D(config, key: "cropping")
        layout = ImageLayout(config)
    }

    func outputShape(_ inputs: [Shape]) throws -> Shape {
        let (h, w, c) = layout.hwc(try singleInput(inputs, rank: 3))
        let (oh, ow) = (h.map { $0 - margins.top - margins.bottom }, w.map { $0 - margins.left - margins.right })
        if let oh, let ow, oh < 0 || ow < 0 { throw LayerConfigError("crops more than the input has") }
        return layout.image(oh, ow, c)
    }

    func channelFlow(input: Shape, output: Shape) -> ChannelFlow { layout.flow(.perChannel()) }
    var interpreterLimitation: String? { layout.limitation }

    func compute(_ inputs: inout [FloatArray], _ context: RunContext) throws -> FloatArray {
        ShapeKernels.pad(
            inputs[0], top: -margins.top, bottom: -margins.bottom, left: -margins.left, right: -margins.right)
    }
}

/// `UpSampling2D(size, interpolation)`: the interpreter runs `nearest`.
struct UpSampling2D: LayerKind {
    static let classNames = ["UpSampling2D"]
    let size: [Int]
    let interpolation: String
    let layout: ImageLayout

    init(config: LayerConfig) throws {
        size = try config.ints(
            "size", count: 2, range: 1...LayerConfig.maxParameter, fallback: [2, 2], what: "size must be positive")
        interpolation = config.string("interpolation", fallback: "nearest")
        layout = ImageLayout(config)
    }

    func outputShape(_ inputs: [Shape]) throws -> Shape {
        let (h, w, c) = layout.hwc(try singleInput(inputs, rank: 3))
        return layout.image(h.map { $0 * size[0] }, w.map { $0 * size[1] }, c)
    }

    func channelFlow(input: Shape, output: Shape) -> ChannelFlow { layout.flow(.perChannel()) }

    var interpreterLimitation: String? {
        layout.limitation ?? (interpolation != "nearest" ? "UpSampling2D interpolation '\(interpolation)'" : nil)
    }

    func compute(_ inputs: inout [FloatArray], _ context: RunContext) throws -> FloatArray {
        ShapeKernels.upsampleNearest(inputs[0], size: size)
    }
}
