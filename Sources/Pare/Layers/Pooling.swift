/// Pooling over 1, 2 or 3 spatial axes (the rank taken from the class name). Channels pass
/// through one by one; a 1-D pool runs as a 2-D one of height 1, a 3-D one through `VolumeKernels`.

/// `MaxPooling1D/2D` and `AveragePooling1D/2D`: `pool_size`, `strides` (default: the pool size), `padding`.
struct Pooling: LayerKind {
    static let classNames = [
        "MaxPooling1D", "AveragePooling1D", "MaxPooling2D", "AveragePooling2D", "MaxPooling3D", "AveragePooling3D",
    ]
    let isMax: Bool
    let pool: [Int]
    let strides: [Int]
    let padding: String
    let layout: SpatialLayout

    init(config: LayerConfig) throws {
        isMax = config.className.hasPrefix("Max")
        layout = SpatialLayout(config, rank: SpatialLayout.rank(of: config.className))
        let range = 1...LayerConfig.maxParameter
        let what = "pool_size and strides must be positive"
        let twos = [Int](repeating: 2, count: layout.rank)
        pool = try config.ints("pool_size", count: layout.rank, range: range, fallback: twos, what: what)
        strides = try config.ints("strides", count: layout.rank, range: range, fallback: pool, what: what)
        padding = try config.padding()
    }

    func outputShape(_ inputs: [Shape]) throws -> Shape {
        let (spatial, c) = try layout.input(inputs)
        return layout.join(
            spatial.indices.map {
                ShapeMath.convLength(spatial[$0], kernel: pool[$0], stride: strides[$0], dilation: 1, padding: padding)
            }, c)
    }

    func channelFlow(input: Shape, output: Shape) -> ChannelFlow { layout.flow(.perChannel()) }

    var interpreterLimitation: String? { layout.limitation }

    func compute(_ inputs: inout [FloatArray], _ context: RunContext) throws -> FloatArray {
        if layout.rank == 3 {
            let window = WindowND(
                input: Array(inputs[0].shape.dropFirst().dropLast()), kernel: pool, strides: strides,
                dilation: [1, 1, 1], padding: padding)
            return VolumeKernels.pool(inputs[0], window: window, max: isMax)
        }
        let x = SpatialLayout.asImage(inputs[0])
        return layout.fromImage(PoolingKernels.pool(x, window: window(x), max: isMax))
    }

    /// The window over `image` (NHWC; a 1-D pooling's steps as one row).
    private func window(_ image: FloatArray) -> Window2D {
        let pad: ([Int]) -> [Int] = { layout.rank == 1 ? [1] + $0 : $0 }
        return Window2D(
            inH: image.shape[1], inW: image.shape[2], kernel: pad(pool), strides: pad(strides), dilation: [1, 1],
            padding: padding)
    }

    /// For MaxPooling2D (channels-last): the pooling of the channels-last concatenation of `parts`, each
    /// part pooled into its channels of the result. Nil for other poolings or parts that are not images
    /// of one batch, height and width.
    func maxPooled(concatenating parts: [FloatArray]) -> FloatArray? {
        guard isMax, layout.rank == 2, !layout.channelsFirst, let first = parts.first, first.shape.count == 4,
            parts.allSatisfy({ $0.shape.count == 4 && $0.shape.prefix(3) == first.shape.prefix(3) })
        else { return nil }
        return PoolingKernels.maxPool(concatenating: parts, window: window(first))
    }
}

/// `GlobalAveragePooling1D/2D` and `GlobalMaxPooling1D/2D`, with or without `keepdims`.
/// GlobalAveragePooling1D averages over the steps its mask keeps, as Keras does
/// (`sum(x·mask) / sum(mask)`: 0/0, NaN, for an example whose steps are all masked).
struct GlobalPooling: LayerKind {
    static let classNames = [
        "GlobalAveragePooling1D", "GlobalMaxPooling1D", "GlobalAveragePooling2D", "GlobalMaxPooling2D",
        "GlobalAveragePooling3D", "GlobalMaxPooling3D",
    ]
    let isMax: Bool
    let keepdims: Bool
    let layout: SpatialLayout

    init(config: LayerConfig) throws {
        isMax = config.className.hasPrefix("GlobalMax")
        keepdims = config.bool("keepdims", fallback: false)
        layout = SpatialLayout(config, rank: SpatialLayout.rank(of: config.className))
    }

    func outputShape(_ inputs: [Shape]) throws -> Shape {
        let (_, c) = try layout.input(inputs)
        return keepdims ? layout.join([Int?](repeating: 1, count: layout.rank), c) : [c]
    }

    func channelFlow(input: Shape, output: Shape) -> ChannelFlow { layout.flow(.perChannel()) }

    var interpreterLimitation: String? { layout.limitation }

    // Keras's GlobalMaxPooling and 2-D pooling drop masks; only the 1-D average reads one, and
    // its output has none.
    func computeOutputs(_ inputs: inout [FloatArray], masks: [StepMask?], _ context: RunContext) throws
        -> LayerResult
    {
        let x = inputs[0]
        if !isMax, layout.rank == 1, let mask = masks.first ?? nil {
            guard mask.shape == [x.batch, x.shape[1]] else {
                throw InterpreterError.unsupported(
                    "a mask of shape \(mask.shape) on a sequence of shape \(x.shape) (layer '\(context.path)')")
            }
            return LayerResult(values: [PoolingKernels.maskedAverage(x, mask: mask, keepdims: keepdims)], masks: [nil])
        }
        // Every position at once: the spatial axes seen as one row of an image.
        let c = x.shape[x.shape.count - 1]
        let positions = x.exampleSize / max(c, 1)
        let pooled = PoolingKernels.global(
            FloatArray(shape: [x.batch, 1, positions, c], data: x.data), max: isMax, keepdims: false)
        let shape = keepdims ? [x.batch] + [Int](repeating: 1, count: layout.rank) + [c] : [x.batch, c]
        return LayerResult(values: [FloatArray(shape: shape, data: pooled.data)], masks: [nil])
    }
}
