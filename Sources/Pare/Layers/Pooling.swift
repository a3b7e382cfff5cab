/// 2-D pooling. Channels pass through one by one.

/// `MaxPooling2D` and `AveragePooling2D`: `pool_size`, `strides` (default: the pool size), `padding`.
struct Pooling2D: LayerKind {
    static let classNames = ["MaxPooling2D", "AveragePooling2D"]
    let isMax: Bool
    let pool: [Int]
    let strides: [Int]
    let padding: String
    let layout: ImageLayout

    init(config: LayerConfig) throws {
        isMax = config.className.hasPrefix("Max")
        let range = 1...LayerConfig.maxParameter
        let what = "pool_size and strides must be positive"
        pool = try config.ints("pool_size", count: 2, range: range, fallback: [2, 2], what: what)
        strides = try config.ints("strides", count: 2, range: range, fallback: pool, what: what)
        padding = try config.padding()
        layout = ImageLayout(config)
    }

    func outputShape(_ inputs: [Shape]) throws -> Shape {
        let (h, w, c) = layout.hwc(try singleInput(inputs, rank: 3))
        return layout.image(
            ShapeMath.convLength(h, kernel: pool[0], stride: strides[0], dilation: 1, padding: padding),
            ShapeMath.convLength(w, kernel: pool[1], stride: strides[1], dilation: 1, padding: padding), c)
    }

    func channelFlow(input: Shape, output: Shape) -> ChannelFlow { layout.flow(.perChannel()) }

    var interpreterLimitation: String? { layout.limitation }

    func compute(_ inputs: inout [FloatArray], _ context: RunContext) throws -> FloatArray {
        let x = inputs[0]
        let window = Window2D(
            inH: x.shape[1], inW: x.shape[2], kernel: pool, strides: strides, dilation: [1, 1], padding: padding)
        return PoolingKernels.pool(x, window: window, max: isMax)
    }
}

/// `GlobalAveragePooling2D` and `GlobalMaxPooling2D`, with or without `keepdims`.
struct GlobalPooling2D: LayerKind {
    static let classNames = ["GlobalAveragePooling2D", "GlobalMaxPooling2D"]
    let isMax: Bool
    let keepdims: Bool
    let layout: ImageLayout

    init(config: LayerConfig) throws {
        isMax = config.className.hasPrefix("GlobalMax")
        keepdims = config.bool("keepdims", fallback: false)
        layout = ImageLayout(config)
    }

    func outputShape(_ inputs: [Shape]) throws -> Shape {
        let (_, _, c) = layout.hwc(try singleInput(inputs, rank: 3))
        return keepdims ? layout.image(1, 1, c) : [c]
    }

    func channelFlow(input: Shape, output: Shape) -> ChannelFlow { layout.flow(.perChannel()) }

    var interpreterLimitation: String? { layout.limitation }

    func compute(_ inputs: inout [FloatArray], _ context: RunContext) throws -> FloatArray {
        PoolingKernels.global(inputs[0], max: isMax, keepdims: keepdims)
    }
}
