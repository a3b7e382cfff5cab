/// Convolutions over 1, 2 or 3 spatial axes (`Conv1D`/`Conv2D`/`Conv3D` and their depthwise,
/// separable and transposed forms where Keras has them; one type each, the rank taken from the
/// class name). Keras stores kernels
/// channels-last whatever the data format (k… = the kernel's spatial size):
/// - `Conv` kernel `(k…, in / groups, out)`, bias `(out)`
/// - `DepthwiseConv` depthwise_kernel `(k…, in, multiplier)`: output channel `c·m + j`
/// - `SeparableConv` depthwise_kernel `(k…, in, m)`, pointwise_kernel `(1…, in·m, out)`
/// - `ConvTranspose` kernel `(k…, out, in)`: output channels on the axis before the last
///
/// The interpreter runs a 1-D convolution as a 2-D one of height 1: the kernels' memory layouts
/// are the same, so one set of kernels serves both. 3-D layers run through `VolumeKernels`.

/// Where the spatial axes and the channels sit in a shape of `rank` spatial axes (per example).
struct SpatialLayout: Sendable {
    let rank: Int
    let channelsFirst: Bool

    init(_ config: LayerConfig, rank: Int = 2) {
        self.rank = rank
        channelsFirst = config.channelsFirst
    }

    /// The spatial rank a class name states (`Conv1D`, `Conv1DTranspose` → 1, `MaxPooling2D` → 2).
    static func rank(of className: String) -> Int {
        className.contains("1D") ? 1 : className.contains("3D") ? 3 : 2
    }

    func split(_ s: Shape) -> (spatial: [Int?], c: Int?) {
        channelsFirst ? (Array(s.dropFirst()), s.first ?? nil) : (Array(s.dropLast()), s.last ?? nil)
    }

    func join(_ spatial: [Int?], _ c: Int?) -> Shape { channelsFirst ? [c] + spatial : spatial + [c] }

    /// The same for a shape whose dimensions are all known.
    func split(known s: [Int]) -> (spatial: [Int], c: Int) {
        channelsFirst ? (Array(s.dropFirst()), s[0]) : (Array(s.dropLast()), s[s.count - 1])
    }

    /// The single input, of this layout's rank (spatial axes and channels).
    func input(_ inputs: [Shape]) throws -> (spatial: [Int?], c: Int?) {
        split(try singleInput(inputs, rank: rank + 1))
    }

    /// The interpreter runs channels-last tensors only.
    var limitation: String? { channelsFirst ? "data_format channels_first" : nil }

    /// Pare follows channels on the last axis: in channels-first tensors nothing can be removed.
    func flow(_ channelsLast: ChannelFlow) -> ChannelFlow {
        channelsFirst ? ChannelFlow.mixes.blockingInputs("channels-first data format") : channelsLast
    }

    /// A channels-last value of rank 1 seen as an image of height 1 (the same memory).
    static func asImage(_ x: FloatArray) -> FloatArray {
        x.shape.count == 3 ? FloatArray(shape: [x.shape[0], 1, x.shape[1], x.shape[2]], data: x.data) : x
    }

    /// An image result back in this layout's rank.
    func fromImage(_ y: FloatArray) -> FloatArray {
        rank == 1 ? FloatArray(shape: [y.shape[0], y.shape[2], y.shape[3]], data: y.data) : y
    }
}

/// What every convolution's config has besides its own counts: the window, the bias, the data
/// format and the activation.
struct ConvBase: Sendable {
    let window: ConvWindow
    let useBias: Bool
    let layout: SpatialLayout
    let activation: JSON?
    let activationName: String?

    /// The output before the activation is linear in `kernel` and the bias.
    func linearOutput(_ key: String, kernel: String) -> [WeightSlice]? {
        key == "activation" ? [WeightSlice(kernel)] + (useBias ? [WeightSlice("bias")] : []) : nil
    }

    init(_ config: LayerConfig, causal: Bool = false) throws {
        let rank = SpatialLayout.rank(of: config.className)
        window = try ConvWindow(config, rank: rank, causal: causal && rank == 1)
        useBias = config.bool("use_bias", fallback: true)
        layout = SpatialLayout(config, rank: rank)
        activation = config.activation
        activationName = config.activationName
    }

    var rank: Int { layout.rank }

    /// The spatial axes of the output for an input's.
    func outputSpatial(_ spatial: [Int?]) -> [Int?] {
        spatial.indices.map { window.outputLength(spatial[$0], axis: $0) }
    }

    /// The input's channel count, nil if the input is not of this rank or the count is open.
    func inputChannels(_ input: Shape) -> Int? {
        input.count == rank + 1 ? layout.split(input).c : nil
    }

    /// The kernel's spatial size followed by `tail`.
    func kernelShape(_ tail: [Int?]) -> [Int?] { window.kernel.map(Optional.some) + tail }

    /// Output positions × kernel taps × `factors`, for MAC counts; nil if the shapes are not of this rank.
    func outputTaps(output: [Int], _ factors: [Int]) -> Int? {
        guard output.count == rank + 1 else { return nil }
        return ShapeMath.product(layout.split(known: output).spatial + window.kernel + factors)
    }
}

/// The window shared by every convolution: kernel, strides, dilation, padding.
struct ConvWindow: Sendable {
    let kernel: [Int]
    let strides: [Int]
    let dilation: [Int]
    let padding: String

    init(_ config: LayerConfig, rank: Int, causal: Bool) throws {
        let range = 1...LayerConfig.maxParameter
        let ones = [Int](repeating: 1, count: rank)
        kernel = try config.ints(
            "kernel_size", count: rank, range: range, what: "kernel_size missing or not positive")
        let what = "strides and dilation_rate must be positive"
        strides = try config.ints("strides", count: rank, range: range, fallback: ones, what: what)
        dilation = try config.ints("dilation_rate", count: rank, range: range, fallback: ones, what: what)
        padding = try config.padding(allowed: causal ? ["valid", "same", "causal"] : ["valid", "same"])
    }

    func outputLength(_ n: Int?, axis: Int) -> Int? {
        ShapeMath.convLength(n, kernel: kernel[axis], stride: strides[axis], dilation: dilation[axis], padding: padding)
    }

    /// The window over `x`, a channels-last value of any spatial rank (the 3-D kernels take it).
    func volume(_ x: FloatArray) -> WindowND {
        WindowND(
            input: Array(x.shape.dropFirst().dropLast()), kernel: kernel, strides: strides, dilation: dilation,
            padding: padding)
    }

    /// The window over `x`, an image (rank-1 layouts seen as height 1).
    func window(_ image: FloatArray) -> Window2D {
        let pad: ([Int]) -> [Int] = { kernel.count == 1 ? [1] + $0 : $0 }
        return Window2D(
            inH: image.shape[1], inW: image.shape[2], kernel: pad(kernel), strides: pad(strides),
            dilation: pad(dilation), padding: padding)
    }
}

/// im2col of a convolution: one row per output position, kernel area × input channels wide.
func im2colElements(macs: Int?, output: Shape) -> Int {
    (macs ?? 0) / max(1, output.last.flatMap { $0 } ?? 1)
}

/// The sum over kernel taps of `kernel[tap, p, o]` times each removed input's constant, per output
/// (the taps are the axes before the input and output axes).
func foldThroughTaps(
    _ constants: [ConstantInput], kernel t: Tensor, inputAxis: Int, outputAxis: Int
) throws -> [Float] {
    let w = try t.floats()
    let taps = t.shape[..<min(inputAxis, outputAxis)].reduce(1, *)
    let (cin, cout) = (t.shape[inputAxis], t.shape[outputAxis])
    let inputFirst = inputAxis < outputAxis
    var delta = [Float](repeating: 0, count: cout)
    for constant in constants {
        let p = constant.position
        for tap in 0..<taps {
            for o in 0..<cout {
                let index = inputFirst ? (tap * cin + p) * cout + o : (tap * cout + o) * cin + p
                delta[o] += constant.value * w[index]
            }
        }
    }
    return delta
}

/// Why a fold into a convolution's bias is not exact: zeros padded at the border (same or causal)
/// meet the kernel where the removed channel's constant would have been.
func paddingFold(_ window: ConvWindow) -> String? {
    window.padding == "valid"
        ? nil
        : "\(window.padding) padding: the constant is folded exactly inside, "
            + "the border positions differ"
}

/// `Conv1D`, `Conv2D`: kernel `(k…, in / groups, out)`.
struct Conv: LayerKind {
    static let classNames = ["Conv1D", "Conv2D", "Conv3D"]
    static let countsMACs = true
    let filters: Int
    let base: ConvBase
    let groups: Int

    init(config: LayerConfig) throws {
        base = try ConvBase(config, causal: true)
        filters = try config.positive("filters", what: "filters missing or not positive")
        let g = config["groups"] == nil ? 1 : config["groups"]?.intValue ?? 0
        guard (1...LayerConfig.maxParameter).contains(g), filters % g == 0 else {
            throw LayerConfigError("groups \(g) must be positive and divide the filters (\(filters))")
        }
        groups = g
    }

    func outputShape(_ inputs: [Shape]) throws -> Shape {
        let (spatial, c) = try base.layout.input(inputs)
        if let c, c % groups != 0 {
            throw LayerConfigError(
                "groups \(groups) must be positive and divide the filters (\(filters)) and input channels (\(c))")
        }
        return base.layout.join(base.outputSpatial(spatial), filters)
    }

    func weights(input: Shape) -> [WeightSpec] {
        let cin = base.inputChannels(input)
        let r = base.rank
        return [WeightSpec("kernel", base.kernelShape([cin.map { $0 / groups }, filters]), outputAxes: r + 1..<r + 2)]
            + (base.useBias ? [WeightSpec("bias", [filters])] : [])
    }

    func preActivationWeights(_ key: String) -> [WeightSlice]? { base.linearOutput(key, kernel: "kernel") }

    func macs(input: [Int], output: [Int]) -> Int? {
        guard input.count == base.rank + 1 else { return nil }
        let cin = base.layout.split(known: input).c
        return base.outputTaps(output: output, [cin / groups, filters])
    }

    func scratchElements(input: Shape, output: Shape, macs: Int?) -> Int { im2colElements(macs: macs, output: output) }

    func channelFlow(input: Shape, output: Shape) -> ChannelFlow {
        var flow = ChannelFlow.producer(activation: base.activationName)
        if groups > 1 {
            flow.blocksInputs = "grouped convolution"
            flow.blocksOutputs = "is a grouped convolution"
        }
        return base.layout.flow(flow)
    }

    var activation: JSON? { base.activation }

    var interpreterLimitation: String? { base.layout.limitation }

    /// The bias goes in with the sums (the direct kernels add it while the values are in registers).
    var appliesOwnBias: Bool { true }
    /// Conv1D and Conv2D rectify as they store (Conv3D's kernels do not).
    var appliesEpilogue: Bool { base.rank < 3 }

    func compute(_ inputs: inout [FloatArray], _ context: RunContext) throws -> FloatArray {
        let bias = context.weights["bias"]
        var epilogue = context.epilogue
        epilogue.bias = bias
        if base.rank == 3 {
            var out = VolumeKernels.conv(
                inputs[0], kernel: try context.weight("kernel"), outChannels: filters, groups: groups,
                window: base.window.volume(inputs[0]))
            if let bias { ConvolutionKernels.addBias(&out, bias) }
            return out
        }
        let x = SpatialLayout.asImage(inputs[0])
        return base.layout.fromImage(
            ConvolutionKernels.conv2d(
                x, kernel: try context.weight("kernel"), outChannels: filters, groups: groups,
                window: base.window.window(x), epilogue: epilogue))
    }

    func keepingInputChannels(_ keep: [Int], _ edit: inout LayerEdit) throws {
        try edit.slice("kernel", axis: base.rank, keep: keep)
    }

    func keepingOutputChannels(_ keep: [Int], _ edit: inout LayerEdit) throws {
        try edit.keepOutputs(keep, kernel: "kernel", axis: base.rank + 1, count: "filters")
    }

    func foldedConstants(_ constants: [ConstantInput], _ weights: [String: Tensor]) throws -> FoldedBias? {
        guard let kernel = weights["kernel"] else { return nil }
        return FoldedBias(
            delta: try foldThroughTaps(constants, kernel: kernel, inputAxis: base.rank, outputAxis: base.rank + 1),
            kernelRole: "kernel", approximation: paddingFold(base.window))
    }
}

/// `DepthwiseConv1D`, `DepthwiseConv2D`: depthwise_kernel `(k…, in, multiplier)`.
struct DepthwiseConv: LayerKind {
    static let classNames = ["DepthwiseConv1D", "DepthwiseConv2D"]
    static let countsMACs = true
    let base: ConvBase
    let multiplier: Int

    init(config: LayerConfig) throws {
        base = try ConvBase(config, causal: true)
        multiplier = try config.positive("depth_multiplier", fallback: 1, what: "depth_multiplier must be positive")
    }

    func outputShape(_ inputs: [Shape]) throws -> Shape {
        let (spatial, c) = try base.layout.input(inputs)
        return base.layout.join(base.outputSpatial(spatial), c.map { $0 * multiplier })
    }

    func weights(input: Shape) -> [WeightSpec] {
        let cin = base.inputChannels(input)
        let r = base.rank
        // Keras 3 names the variable `kernel`; tf.keras and Pare's role say `depthwise_kernel`.
        return [
            WeightSpec(
                "depthwise_kernel", base.kernelShape([cin, multiplier]), outputAxes: r..<r + 2, keras3Name: "kernel")
        ] + (base.useBias ? [WeightSpec("bias", [cin.map { $0 * multiplier }])] : [])
    }

    func preActivationWeights(_ key: String) -> [WeightSlice]? { base.linearOutput(key, kernel: "depthwise_kernel") }

    func macs(input: [Int], output: [Int]) -> Int? {
        guard output.count == base.rank + 1 else { return nil }
        return base.outputTaps(output: output, [base.layout.split(known: output).c])
    }

    func channelFlow(input: Shape, output: Shape) -> ChannelFlow {
        base.layout.flow(.perChannel(multiplier: multiplier, indexed: true))
    }

    var activation: JSON? { base.activation }

    var interpreterLimitation: String? { base.layout.limitation }

    /// The bias goes in with the sums (the direct kernels add it while the values are in registers).
    var appliesOwnBias: Bool { true }
    var appliesEpilogue: Bool { true }

    func compute(_ inputs: inout [FloatArray], _ context: RunContext) throws -> FloatArray {
        let x = SpatialLayout.asImage(inputs[0])
        var epilogue = context.epilogue
        epilogue.bias = context.weights["bias"]
        return base.layout.fromImage(
            ConvolutionKernels.depthwise(
                x, kernel: try context.weight("depthwise_kernel"), multiplier: multiplier,
                window: base.window.window(x), epilogue: epilogue))
    }

    func keepingInputChannels(_ keep: [Int], _ edit: inout LayerEdit) throws {
        try edit.slice("depthwise_kernel", axis: base.rank, keep: keep)
        try edit.slice("bias", axis: 0, keep: expanded(keep, multiplier: multiplier))
    }

    func maskingInputChannels(_ removed: Set<Int>, _ edit: inout LayerEdit) throws {
        try edit.zero("depthwise_kernel", axis: base.rank, removed: removed)
        try edit.zero("bias", axis: 0, removed: Set(expanded(removed.sorted(), multiplier: multiplier)))
    }
}

/// `SeparableConv1D`, `SeparableConv2D`: a depthwise then a pointwise (1×…) convolution.
struct SeparableConv: LayerKind {
    static let classNames = ["SeparableConv1D", "SeparableConv2D"]
    static let countsMACs = true
    let filters: Int
    let base: ConvBase
    let multiplier: Int

    init(config: LayerConfig) throws {
        base = try ConvBase(config, causal: true)
        filters = try config.positive("filters", what: "filters missing or not positive")
        multiplier = try config.positive("depth_multiplier", fallback: 1, what: "depth_multiplier must be positive")
    }

    func outputShape(_ inputs: [Shape]) throws -> Shape {
        let (spatial, _) = try base.layout.input(inputs)
        return base.layout.join(base.outputSpatial(spatial), filters)
    }

    func weights(input: Shape) -> [WeightSpec] {
        let cin = base.inputChannels(input)
        let r = base.rank
        let ones = [Int?](repeating: 1, count: r)
        return [
            WeightSpec("depthwise_kernel", base.kernelShape([cin, multiplier]), outputAxes: r..<r + 2),
            WeightSpec("pointwise_kernel", ones + [cin.map { $0 * multiplier }, filters], outputAxes: r + 1..<r + 2),
        ] + (base.useBias ? [WeightSpec("bias", [filters])] : [])
    }

    /// The pointwise step is the last linear map: scaling it (not the depthwise one too) scales the output.
    func preActivationWeights(_ key: String) -> [WeightSlice]? { base.linearOutput(key, kernel: "pointwise_kernel") }

    func macs(input: [Int], output: [Int]) -> Int? {
        guard input.count == base.rank + 1, output.count == base.rank + 1 else { return nil }
        let cin = base.layout.split(known: input).c
        guard let depthwise = base.outputTaps(output: output, [cin, multiplier]),
            let pointwise = ShapeMath.product(base.layout.split(known: output).spatial + [cin, multiplier, filters])
        else { return nil }
        return ShapeMath.sum([depthwise, pointwise])
    }

    func scratchElements(input: Shape, output: Shape, macs: Int?) -> Int { im2colElements(macs: macs, output: output) }

    func channelFlow(input: Shape, output: Shape) -> ChannelFlow {
        base.layout.flow(.producer(activation: base.activationName))
    }

    var activation: JSON? { base.activation }

    var interpreterLimitation: String? { base.layout.limitation }

    /// The bias (and a ReLU) go in with the pointwise step's store.
    var appliesOwnBias: Bool { true }
    var appliesEpilogue: Bool { true }

    func compute(_ inputs: inout [FloatArray], _ context: RunContext) throws -> FloatArray {
        let x = SpatialLayout.asImage(inputs[0])
        let mid = ConvolutionKernels.depthwise(
            x, kernel: try context.weight("depthwise_kernel"), multiplier: multiplier,
            window: base.window.window(x), epilogue: Epilogue())
        // The pointwise step is a 1×1 convolution (direct when its sums are short, else one GEMM).
        let pointwise = Window2D(
            inH: mid.shape[1], inW: mid.shape[2], kernel: [1, 1], strides: [1, 1], dilation: [1, 1], padding: "valid")
        var epilogue = context.epilogue
        epilogue.bias = context.weights["bias"]
        return base.layout.fromImage(
            ConvolutionKernels.conv2d(
                mid, kernel: try context.weight("pointwise_kernel"), outChannels: filters, groups: 1, window: pointwise,
                epilogue: epilogue))
    }

    func keepingInputChannels(_ keep: [Int], _ edit: inout LayerEdit) throws {
        try edit.slice("depthwise_kernel", axis: base.rank, keep: keep)
        try edit.slice("pointwise_kernel", axis: base.rank, keep: expanded(keep, multiplier: multiplier))
    }

    func keepingOutputChannels(_ keep: [Int], _ edit: inout LayerEdit) throws {
        try edit.keepOutputs(keep, kernel: "pointwise_kernel", axis: base.rank + 1, count: "filters")
    }

    func foldedConstants(_ constants: [ConstantInput], _ weights: [String: Tensor]) throws -> FoldedBias? {
        guard let dwT = weights["depthwise_kernel"], let pwT = weights["pointwise_kernel"] else { return nil }
        let dw = try dwT.floats()
        let pw = try pwT.floats()
        let r = base.rank
        let taps = dwT.shape[..<r].reduce(1, *)
        let (cin, m, cout) = (dwT.shape[r], dwT.shape[r + 1], pwT.shape[r + 1])
        var delta = [Float](repeating: 0, count: cout)
        for constant in constants {
            let p = constant.position
            for j in 0..<m {
                var tapSum: Float = 0
                for tap in 0..<taps { tapSum += dw[(tap * cin + p) * m + j] }
                for o in 0..<cout { delta[o] += constant.value * tapSum * pw[(p * m + j) * cout + o] }
            }
        }
        return FoldedBias(delta: delta, kernelRole: "pointwise_kernel", approximation: paddingFold(base.window))
    }
}

/// `Conv1DTranspose`, `Conv2DTranspose`: kernel `(k…, out, in)`.
struct ConvTranspose: LayerKind {
    static let classNames = ["Conv1DTranspose", "Conv2DTranspose", "Conv3DTranspose"]
    static let countsMACs = true
    let filters: Int
    let base: ConvBase
    let outputPadding: [Int]?

    init(config: LayerConfig) throws {
        base = try ConvBase(config)
        filters = try config.positive("filters", what: "kernel_size or filters missing or not positive")
        let padding = config["output_padding"]
        outputPadding =
            padding == nil || padding?.isNull == true
            ? nil : try config.ints("output_padding", count: base.rank, range: 0...LayerConfig.maxParameter)
        if let outputPadding, zip(outputPadding, base.window.strides).contains(where: { $0 >= $1 }) {
            throw LayerConfigError("output_padding \(outputPadding) must be smaller than the strides")
        }
    }

    /// Keras's `deconv_output_length`.
    func length(_ n: Int?, _ i: Int) -> Int? {
        guard let n else { return nil }
        let (k, s) = ((base.window.kernel[i] - 1) * base.window.dilation[i] + 1, base.window.strides[i])
        if let op = outputPadding?[i] {
            let p = base.window.padding == "same" ? k / 2 : 0
            return (n - 1) * s + k - 2 * p + op
        }
        return base.window.padding == "same" ? n * s : n * s + max(k - s, 0)
    }

    func outputShape(_ inputs: [Shape]) throws -> Shape {
        let (spatial, _) = try base.layout.input(inputs)
        return base.layout.join(spatial.indices.map { length(spatial[$0], $0) }, filters)
    }

    func weights(input: Shape) -> [WeightSpec] {
        let r = base.rank
        return [WeightSpec("kernel", base.kernelShape([filters, base.inputChannels(input)]), outputAxes: r..<r + 1)]
            + (base.useBias ? [WeightSpec("bias", [filters])] : [])
    }

    func preActivationWeights(_ key: String) -> [WeightSlice]? { base.linearOutput(key, kernel: "kernel") }

    func macs(input: [Int], output: [Int]) -> Int? {
        guard input.count == base.rank + 1, output.count == base.rank + 1 else { return nil }
        let (spatial, cin) = base.layout.split(known: input)
        return ShapeMath.product(spatial + base.window.kernel + [cin, base.layout.split(known: output).c])
    }

    /// Every input position's contribution to every kernel tap and output channel, before they are
    /// added up (ConvolutionKernels.transpose).
    func scratchElements(input: Shape, output: Shape, macs: Int?) -> Int {
        guard input.count == base.rank + 1, output.count == base.rank + 1,
            let spatial = ShapeMath.known(base.layout.split(input).spatial), let cout = base.layout.split(output).c
        else { return 0 }
        return ShapeMath.product(spatial + base.window.kernel + [cout]) ?? Int.max
    }

    func channelFlow(input: Shape, output: Shape) -> ChannelFlow {
        base.layout.flow(.producer(activation: base.activationName))
    }

    var activation: JSON? { base.activation }

    /// With output_padding the output is longer than the input implies; the kernel takes the
    /// padding before the first position from the output length, as Keras does
    /// (`⌊max((L−1)·s + k_eff − L_out, 0) / 2⌋`), so the same kernel runs both.
    var interpreterLimitation: String? { base.layout.limitation }

    func compute(_ inputs: inout [FloatArray], _ context: RunContext) throws -> FloatArray {
        let spatial = base.layout.split(context.outputShape).spatial
        guard let known = ShapeMath.known(spatial) else {
            throw InterpreterError.badInput("\(context.path): unknown output size")
        }
        if base.rank == 3 {
            return VolumeKernels.transpose(
                inputs[0], kernel: try context.weight("kernel"), outChannels: filters, kernelSize: base.window.kernel,
                strides: base.window.strides, dilation: base.window.dilation, output: known)
        }
        let (outH, outW) = base.rank == 1 ? (1, known[0]) : (known[0], known[1])
        let pad: ([Int]) -> [Int] = { base.rank == 1 ? [1] + $0 : $0 }
        return base.layout.fromImage(
            ConvolutionKernels.transpose(
                SpatialLayout.asImage(inputs[0]), kernel: try context.weight("kernel"), outChannels: filters,
                kernelSize: pad(base.window.kernel), strides: pad(base.window.strides),
                dilation: pad(base.window.dilation), outH: outH, outW: outW))
    }

    func keepingInputChannels(_ keep: [Int], _ edit: inout LayerEdit) throws {
        try edit.slice("kernel", axis: base.rank + 1, keep: keep)
    }

    func keepingOutputChannels(_ keep: [Int], _ edit: inout LayerEdit) throws {
        try edit.keepOutputs(keep, kernel: "kernel", axis: base.rank, count: "filters")
    }

    /// A transposed convolution spreads a constant unevenly (each output position gets a different
    /// number of taps): the interior average, one tap per stride cell, is folded.
    func foldedConstants(_ constants: [ConstantInput], _ weights: [String: Tensor]) throws -> FoldedBias? {
        guard let kernel = weights["kernel"] else { return nil }
        var delta = try foldThroughTaps(constants, kernel: kernel, inputAxis: base.rank + 1, outputAxis: base.rank)
        let share = Float(base.window.strides.reduce(1, *))
        for o in delta.indices { delta[o] /= share }
        return FoldedBias(
            delta: delta, kernelRole: "kernel",
            approximation: "a transposed convolution spreads a constant unevenly over its output; "
                + "folded the interior average")
    }
}

/// Channel positions expanded to the depth-multiplied positions `c·m + k`.
func expanded(_ positions: [Int], multiplier m: Int) -> [Int] {
    positions.flatMap { c in (0..<m).map { c * m + $0 } }
}
