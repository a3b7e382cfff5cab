/// 2-D convolutions. Keras stores kernels channels-last whatever the data format:
/// - `Conv2D` kernel `(kh, kw, in / groups, out)`, bias `(out)`
/// - `DepthwiseConv2D` depthwise_kernel `(kh, kw, in, multiplier)`: output channel `c·m + k`
/// - `SeparableConv2D` depthwise_kernel `(kh, kw, in, m)`, pointwise_kernel `(1, 1, in·m, out)`
/// - `Conv2DTranspose` kernel `(kh, kw, out, in)`: output channels on axis 2

/// Where height, width and channels sit in an image shape (per example, rank 3).
struct ImageLayout: Sendable {
    let channelsFirst: Bool

    init(_ config: LayerConfig) { channelsFirst = config.channelsFirst }

    func hwc(_ s: Shape) -> (h: Int?, w: Int?, c: Int?) {
        channelsFirst ? (s[1], s[2], s[0]) : (s[0], s[1], s[2])
    }

    func image(_ h: Int?, _ w: Int?, _ c: Int?) -> Shape { channelsFirst ? [c, h, w] : [h, w, c] }

    /// The same for a shape whose dimensions are all known (rank 3).
    func hwc(known s: [Int]) -> (h: Int, w: Int, c: Int) {
        channelsFirst ? (s[1], s[2], s[0]) : (s[0], s[1], s[2])
    }

    /// The interpreter runs channels-last tensors only.
    var limitation: String? { channelsFirst ? "data_format channels_first" : nil }

    /// Pare follows channels on the last axis: in channels-first tensors nothing can be removed.
    func flow(_ channelsLast: ChannelFlow) -> ChannelFlow {
        channelsFirst ? ChannelFlow.mixes.blockingInputs("channels-first data format") : channelsLast
    }
}

/// What every 2-D convolution's config has besides its own counts: the window, the bias, the data
/// format and the activation.
struct ConvBase: Sendable {
    let window: ConvWindow
    let useBias: Bool
    let layout: ImageLayout
    let activation: JSON?
    let activationName: String?

    init(_ config: LayerConfig) throws {
        window = try ConvWindow(config)
        useBias = config.bool("use_bias", fallback: true)
        layout = ImageLayout(config)
        activation = config.activation
        activationName = config.activationName
    }
}

/// The window shared by every 2-D convolution: kernel, strides, dilation, padding.
struct ConvWindow: Sendable {
    let kernel: [Int]
    let strides: [Int]
    let dilation: [Int]
    let padding: String

    init(_ config: LayerConfig) throws {
        let range = 1...LayerConfig.maxParameter
        kernel = try config.ints(
            "kernel_size", count: 2, range: range, what: "kernel_size missing or not positive")
        let what = "strides and dilation_rate must be positive"
        strides = try config.ints("strides", count: 2, range: range, fallback: [1, 1], what: what)
        dilation = try config.ints("dilation_rate", count: 2, range: range, fallback: [1, 1], what: what)
        padding = try config.padding()
    }

    func outputLength(_ n: Int?, axis: Int) -> Int? {
        ShapeMath.convLength(n, kernel: kernel[axis], stride: strides[axis], dilation: dilation[axis], padding: padding)
    }

    func window(_ x: FloatArray) -> Window2D {
        Window2D(
            inH: x.shape[1], inW: x.shape[2], kernel: kernel, strides: strides, dilation: dilation, padding: padding)
    }
}

/// im2col of a convolution: one row per output position, kernel area × input channels wide.
func im2colElements(macs: Int?, output: Shape) -> Int {
    (macs ?? 0) / max(1, output.last.flatMap { $0 } ?? 1)
}

/// The sum over kernel taps of `kernel[tap, p, o]` times each removed input's constant, per output.
func foldThroughTaps(
    _ constants: [ConstantInput], kernel t: Tensor, inputAxis: Int, outputAxis: Int
) throws -> [Float] {
    let w = try t.floats()
    let taps = t.shape[..<2].reduce(1, *)
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

let samePaddingFold = "same padding: the constant is folded exactly inside, the border pixels differ"

struct Conv2D: LayerKind {
    static let classNames = ["Conv2D"]
    static let countsMACs = true
    let filters: Int
    let base: ConvBase
    let groups: Int

    init(config: LayerConfig) throws {
        base = try ConvBase(config)
        filters = try config.positive("filters", what: "filters missing or not positive")
        let g = config["groups"] == nil ? 1 : config["groups"]?.intValue ?? 0
        guard (1...LayerConfig.maxParameter).contains(g), filters % g == 0 else {
            throw LayerConfigError("groups \(g) must be positive and divide the filters (\(filters))")
        }
        groups = g
    }

    func outputShape(_ inputs: [Shape]) throws -> Shape {
        let (h, w, c) = base.layout.hwc(try singleInput(inputs, rank: 3))
        if let c, c % groups != 0 {
            throw LayerConfigError(
                "groups \(groups) must be positive and divide the filters (\(filters)) and input channels (\(c))")
        }
        return base.layout.image(base.window.outputLength(h, axis: 0), base.window.outputLength(w, axis: 1), filters)
    }

    func weights(input: Shape) -> [WeightSpec] {
        let cin = input.count == 3 ? base.layout.hwc(input).c : nil
        return [
            WeightSpec(
                "kernel", [base.window.kernel[0], base.window.kernel[1], cin.map { $0 / groups }, filters],
                outputAxes: 3..<4)
        ]
            + (base.useBias ? [WeightSpec("bias", [filters])] : [])
    }

    func macs(input: [Int], output: [Int]) -> Int? {
        guard input.count == 3, output.count == 3 else { return nil }
        let (_, _, cin) = base.layout.hwc(known: input)
        let (oh, ow, cout) = base.layout.hwc(known: output)
        return ShapeMath.product([oh, ow, base.window.kernel[0], base.window.kernel[1], cin / groups, cout])
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

    func compute(_ inputs: inout [FloatArray], _ context: RunContext) throws -> FloatArray {
        let x = inputs[0]
        return ConvolutionKernels.conv2d(
            x, kernel: try context.weight("kernel"), outChannels: filters, groups: groups, window: base.window.window(x)
        )
    }

    func keepingInputChannels(_ keep: [Int], _ edit: inout LayerEdit) throws {
        try edit.slice("kernel", axis: 2, keep: keep)
    }

    func keepingOutputChannels(_ keep: [Int], _ edit: inout LayerEdit) throws {
        try edit.keepOutputs(keep, kernel: "kernel", axis: 3, count: "filters")
    }

    func foldedConstants(_ constants: [ConstantInput], _ weights: [String: Tensor]) throws -> FoldedBias? {
        guard let kernel = weights["kernel"] else { return nil }
        return FoldedBias(
            delta: try foldThroughTaps(constants, kernel: kernel, inputAxis: 2, outputAxis: 3), kernelRole: "kernel",
            approximation: base.window.padding == "same" ? samePaddingFold : nil)
    }
}

struct DepthwiseConv2D: LayerKind {
    static let classNames = ["DepthwiseConv2D"]
    static let countsMACs = true
    let base: ConvBase
    let multiplier: Int

    init(config: LayerConfig) throws {
        base = try ConvBase(config)
        multiplier = try config.positive("depth_multiplier", fallback: 1, what: "depth_multiplier must be positive")
    }

    func outputShape(_ inputs: [Shape]) throws -> Shape {
        let (h, w, c) = base.layout.hwc(try singleInput(inputs, rank: 3))
        return base.layout.image(
            base.window.outputLength(h, axis: 0), base.window.outputLength(w, axis: 1), c.map { $0 * multiplier })
    }

    func weights(input: Shape) -> [WeightSpec] {
        let cin = input.count == 3 ? base.layout.hwc(input).c : nil
        // Keras 3 names the variable `kernel`; tf.keras and Pare's role say `depthwise_kernel`.
        return [
            WeightSpec(
                "depthwise_kernel", [base.window.kernel[0], base.window.kernel[1], cin, multiplier], outputAxes: 2..<4,
                keras3Name: "kernel")
        ] + (base.useBias ? [WeightSpec("bias", [cin.map { $0 * multiplier }])] : [])
    }

    func macs(input: [Int], output: [Int]) -> Int? {
        guard input.count == 3, output.count == 3 else { return nil }
        let (oh, ow, cout) = base.layout.hwc(known: output)
        return ShapeMath.product([oh, ow, base.window.kernel[0], base.window.kernel[1], cout])
    }

    func channelFlow(input: Shape, output: Shape) -> ChannelFlow {
        base.layout.flow(.perChannel(multiplier: multiplier, indexed: true))
    }

    var activation: JSON? { base.activation }

    var interpreterLimitation: String? { base.layout.limitation }

    func compute(_ inputs: inout [FloatArray], _ context: RunContext) throws -> FloatArray {
        let x = inputs[0]
        return ConvolutionKernels.depthwise(
            x, kernel: try context.weight("depthwise_kernel"), multiplier: multiplier, window: base.window.window(x))
    }

    func keepingInputChannels(_ keep: [Int], _ edit: inout LayerEdit) throws {
        try edit.slice("depthwise_kernel", axis: 2, keep: keep)
        try edit.slice("bias", axis: 0, keep: expanded(keep, multiplier: multiplier))
    }

    func maskingInputChannels(_ removed: Set<Int>, _ edit: inout LayerEdit) throws {
        try edit.zero("depthwise_kernel", axis: 2, removed: removed)
        try edit.zero("bias", axis: 0, removed: Set(expanded(removed.sorted(), multiplier: multiplier)))
    }
}

struct SeparableConv2D: LayerKind {
    static let classNames = ["SeparableConv2D"]
    static let countsMACs = true
    let filters: Int
    let base: ConvBase
    let multiplier: Int

    init(config: LayerConfig) throws {
        base = try ConvBase(config)
        filters = try config.positive("filters", what: "filters missing or not positive")
        multiplier = try config.positive("depth_multiplier", fallback: 1, what: "depth_multiplier must be positive")
    }

    func outputShape(_ inputs: [Shape]) throws -> Shape {
        let (h, w, _) = base.layout.hwc(try singleInput(inputs, rank: 3))
        return base.layout.image(base.window.outputLength(h, axis: 0), base.window.outputLength(w, axis: 1), filters)
    }

    func weights(input: Shape) -> [WeightSpec] {
        let cin = input.count == 3 ? base.layout.hwc(input).c : nil
        return [
            WeightSpec(
                "depthwise_kernel", [base.window.kernel[0], base.window.kernel[1], cin, multiplier], outputAxes: 2..<4),
            WeightSpec("pointwise_kernel", [1, 1, cin.map { $0 * multiplier }, filters], outputAxes: 3..<4),
        ] + (base.useBias ? [WeightSpec("bias", [filters])] : [])
    }

    func macs(input: [Int], output: [Int]) -> Int? {
        guard input.count == 3, output.count == 3 else { return nil }
        let (_, _, cin) = base.layout.hwc(known: input)
        let (oh, ow, cout) = base.layout.hwc(known: output)
        guard
            let depthwise = ShapeMath.product([
                oh, ow, base.window.kernel[0], base.window.kernel[1], cin, multiplier,
            ]),
            let pointwise = ShapeMath.product([oh, ow, cin, multiplier, cout])
        else { return nil }
        return ShapeMath.sum([depthwise, pointwise])
    }

    func scratchElements(input: Shape, output: Shape, macs: Int?) -> Int { im2colElements(macs: macs, output: output) }

    func channelFlow(input: Shape, output: Shape) -> ChannelFlow {
        base.layout.flow(.producer(activation: base.activationName))
    }

    var activation: JSON? { base.activation }

    var interpreterLimitation: String? { base.layout.limitation }

    func compute(_ inputs: inout [FloatArray], _ context: RunContext) throws -> FloatArray {
        let x = inputs[0]
        let mid = ConvolutionKernels.depthwise(
            x, kernel: try context.weight("depthwise_kernel"), multiplier: multiplier, window: base.window.window(x))
        return ConvolutionKernels.dense(mid, kernel: try context.weight("pointwise_kernel"), units: filters)
    }

    func keepingInputChannels(_ keep: [Int], _ edit: inout LayerEdit) throws {
        try edit.slice("depthwise_kernel", axis: 2, keep: keep)
        try edit.slice("pointwise_kernel", axis: 2, keep: expanded(keep, multiplier: multiplier))
    }

    func keepingOutputChannels(_ keep: [Int], _ edit: inout LayerEdit) throws {
        try edit.keepOutputs(keep, kernel: "pointwise_kernel", axis: 3, count: "filters")
    }

    func foldedConstants(_ constants: [ConstantInput], _ weights: [String: Tensor]) throws -> FoldedBias? {
        guard let dwT = weights["depthwise_kernel"], let pwT = weights["pointwise_kernel"] else { return nil }
        let dw = try dwT.floats()
        let pw = try pwT.floats()
        let taps = dwT.shape[0] * dwT.shape[1]
        let (cin, m, cout) = (dwT.shape[2], dwT.shape[3], pwT.shape[3])
        var delta = [Float](repeating: 0, count: cout)
        for constant in constants {
            let p = constant.position
            for j in 0..<m {
                var tapSum: Float = 0
                for tap in 0..<taps { tapSum += dw[(tap * cin + p) * m + j] }
                for o in 0..<cout { delta[o] += constant.value * tapSum * pw[(p * m + j) * cout + o] }
            }
        }
        return FoldedBias(
            delta: delta, kernelRole: "pointwise_kernel",
            approximation: base.window.padding == "same" ? samePaddingFold : nil)
    }
}

struct Conv2DTranspose: LayerKind {
    static let classNames = ["Conv2DTranspose"]
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
            ? nil : try config.ints("output_padding", count: 2, range: 0...LayerConfig.maxParameter)
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
        let (h, w, _) = base.layout.hwc(try singleInput(inputs, rank: 3))
        return base.layout.image(length(h, 0), length(w, 1), filters)
    }

    func weights(input: Shape) -> [WeightSpec] {
        let cin = input.count == 3 ? base.layout.hwc(input).c : nil
        return [WeightSpec("kernel", [base.window.kernel[0], base.window.kernel[1], filters, cin], outputAxes: 2..<3)]
            + (base.useBias ? [WeightSpec("bias", [filters])] : [])
    }

    func macs(input: [Int], output: [Int]) -> Int? {
        guard input.count == 3, output.count == 3 else { return nil }
        let (ih, iw, cin) = base.layout.hwc(known: input)
        let (_, _, cout) = base.layout.hwc(known: output)
        return ShapeMath.product([ih, iw, base.window.kernel[0], base.window.kernel[1], cin, cout])
    }

    /// Every input pixel's contribution to every kernel tap and output channel, before they are
    /// added up (ConvolutionKernels.transpose).
    func scratchElements(input: Shape, output: Shape, macs: Int?) -> Int {
        guard input.count == 3, output.count == 3 else { return 0 }
        let (ih, iw, _) = base.layout.hwc(input)
        let (_, _, cout) = base.layout.hwc(output)
        guard let ih, let iw, let cout else { return 0 }
        return ShapeMath.product([ih, iw, base.window.kernel[0], base.window.kernel[1], cout]) ?? Int.max
    }

    func channelFlow(input: Shape, output: Shape) -> ChannelFlow {
        base.layout.flow(.producer(activation: base.activationName))
    }

    var activation: JSON? { base.activation }

    var interpreterLimitation: String? {
        base.layout.limitation ?? (outputPadding != nil ? "Conv2DTranspose output_padding" : nil)
    }

    func compute(_ inputs: inout [FloatArray], _ context: RunContext) throws -> FloatArray {
        guard let oh = context.outputShape[0], let ow = context.outputShape[1] else {
            throw InterpreterError.badInput("\(context.path): unknown output size")
        }
        return ConvolutionKernels.transpose(
            inputs[0], kernel: try context.weight("kernel"), outChannels: filters, kernelSize: base.window.kernel,
            strides: base.window.strides, dilation: base.window.dilation, outH: oh, outW: ow)
    }

    func keepingInputChannels(_ keep: [Int], _ edit: inout LayerEdit) throws {
        try edit.slice("kernel", axis: 3, keep: keep)
    }

    func keepingOutputChannels(_ keep: [Int], _ edit: inout LayerEdit) throws {
        try edit.keepOutputs(keep, kernel: "kernel", axis: 2, count: "filters")
    }

    /// A transposed convolution spreads a constant unevenly (each output pixel gets a different
    /// number of taps): the interior average, one tap per stride cell, is folded.
    func foldedConstants(_ constants: [ConstantInput], _ weights: [String: Tensor]) throws -> FoldedBias? {
        guard let kernel = weights["kernel"] else { return nil }
        var delta = try foldThroughTaps(constants, kernel: kernel, inputAxis: 3, outputAxis: 2)
        let share = Float(base.window.strides[0] * base.window.strides[1])
        for o in delta.indices { delta[o] /= share }
        return FoldedBias(
            delta: delta, kernelRole: "kernel",
            approximation: "Conv2DTranspose spreads a constant unevenly over its output; folded the interior average")
    }
}

/// Channel positions expanded to the depth-multiplied positions `c·m + k`.
func expanded(_ positions: [Int], multiplier m: Int) -> [Int] {
    positions.flatMap { c in (0..<m).map { c * m + $0 } }
}
