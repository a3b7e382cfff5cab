import COpenBLAS
import CPareKernels

/// Spatial geometry of one 2-D window operation (conv or pool) on NHWC input.
struct Window2D {
    var inH, inW, outH, outW: Int
    var kH, kW: Int
    var strideH, strideW: Int
    var dilationH, dilationW: Int
    /// Rows/columns of zero (or ignored) padding before the first input row/column.
    var padTop, padLeft: Int

    /// Keras/TensorFlow "same" padding puts the odd extra row/column at the bottom/right; "causal"
    /// pads the start of the width axis only.
    init(inH: Int, inW: Int, kernel: [Int], strides: [Int], dilation: [Int], padding: String) {
        self.inH = inH
        self.inW = inW
        kH = kernel[0]
        kW = kernel[1]
        strideH = strides[0]
        strideW = strides[1]
        dilationH = dilation[0]
        dilationW = dilation[1]
        let effH = (kH - 1) * dilationH + 1
        let effW = (kW - 1) * dilationW + 1
        if padding == "causal" {
            // Keras's 1-D causal padding: (k - 1)·dilation zeros before the sequence, none after
            // (a 1-D window is an image of height 1, the sequence along its width).
            outH = inH >= effH ? (inH - effH) / strideH + 1 : 0
            outW = (inW + strideW - 1) / strideW
            padTop = 0
            padLeft = effW - 1
        } else if padding == "same" {
            outH = (inH + strideH - 1) / strideH
            outW = (inW + strideW - 1) / strideW
            padTop = max((outH - 1) * strideH + effH - inH, 0) / 2
            padLeft = max((outW - 1) * strideW + effW - inW, 0) / 2
        } else {
            outH = inH >= effH ? (inH - effH) / strideH + 1 : 0
            outW = inW >= effW ? (inW - effW) / strideW + 1 : 0
            padTop = 0
            padLeft = 0
        }
    }
}

/// What a convolution does to its sums before it stores them (`pare_epilogue`), in this order: its bias;
/// its own ReLU (`rectifyFirst`); the per-channel affine map of a BatchNormalization that follows it
/// (`x · scale + shift`, as `BatchNormalization.compute` applies it); the values of another tensor of
/// the output's shape (`residual`: an Add of two tensors); ReLU (`rectify`). ReLU is `x < 0 ? 0 : x`,
/// NaN kept, as `ActivationFunction.relu`; each step is the same operation the layer would apply.
struct Epilogue {
    var bias: [Float]?
    var rectifyFirst = false
    var affine: ChannelAffine?
    var residual: [Float]?
    /// The residual is the Add's first input: `residual + x` (which NaN's payload a sum of NaNs keeps).
    var residualFirst = false
    var rectify = false

    var isEmpty: Bool { bias == nil && !rectifyFirst && affine == nil && residual == nil && !rectify }

    /// Whether each array holds one value per channel of `channels`, and the residual `values` values.
    func fits(_ channels: Int, values: Int) -> Bool {
        (bias.map { $0.count == channels } ?? true)
            && (affine.map { $0.scale.count == channels && $0.shift.count == channels } ?? true)
            && (residual.map { $0.count == values } ?? true)
    }

    /// Runs `body` with the C description of this epilogue, its residual from value `offset` on.
    func withC<R>(residualOffset offset: Int = 0, _ body: (UnsafePointer<pare_epilogue>) -> R) -> R {
        withOptionalFloats(bias) { b in
            withOptionalFloats(affine?.scale) { scale in
                withOptionalFloats(affine?.shift) { shift in
                    withOptionalFloats(residual) { r in
                        var e = pare_epilogue(
                            bias: b, reluFirst: rectifyFirst ? 1 : 0, scale: scale, shift: shift,
                            residual: r.map { $0 + offset }, residualFirst: residualFirst ? 1 : 0,
                            relu: rectify ? 1 : 0)
                        return withUnsafePointer(to: &e) { body($0) }
                    }
                }
            }
        }
    }
}

/// A per-channel `x · scale + shift` (a BatchNormalization in inference).
public struct ChannelAffine {
    var scale: [Float]
    var shift: [Float]
}

extension Window2D {
    /// Whether the direct kernels' zero-padded copy of one image (`pare_window_padded_floats`) stays
    /// small: at most four times the image, plus 4,096 values for tiny images. A config can ask for a
    /// dilation that makes "same" padding reach millions of rows around a small image; such a window
    /// runs as im2col and a GEMM (whose memory the budget bounds) or the plain depthwise loop.
    func paddingFits(channels: Int) -> Bool {
        func reach(_ out: Int, _ stride: Int, _ taps: Int, _ dilation: Int) -> Int? {
            let (a, o1) = (out - 1).multipliedReportingOverflow(by: stride)
            let (b, o2) = (taps - 1).multipliedReportingOverflow(by: dilation)
            let (sum, o3) = a.addingReportingOverflow(b)
            return o1 || o2 || o3 || sum == .max ? nil : sum + 1
        }
        guard outH > 0, outW > 0 else { return true }
        guard let h = reach(outH, strideH, kH, dilationH), let w = reach(outW, strideW, kW, dilationW),
            let padded = ShapeMath.product([h, w, channels]), let image = ShapeMath.product([inH, inW, channels, 4])
        else { return false }
        return padded - 4096 <= image
    }

    /// The C kernels' description of this window over `channels` channels.
    func geometry(channels: Int) -> pare_window {
        pare_window(
            inH: inH, inW: inW, channels: channels, outH: outH, outW: outW, kH: kH, kW: kW, strideH: strideH,
            strideW: strideW, dilationH: dilationH, dilationW: dilationW, padTop: padTop, padLeft: padLeft)
    }
}

/// C[m×n] = A[m×k] · B[k×n] (+ C when `accumulate`), row-major, with leading dimensions.
func sgemm(
    m: Int, n: Int, k: Int, a: UnsafePointer<Float>, lda: Int, b: UnsafePointer<Float>, ldb: Int,
    c: UnsafeMutablePointer<Float>, ldc: Int, accumulate: Bool = false
) {
    guard m > 0, n > 0 else { return }
    guard k > 0 else {
        if !accumulate { for i in 0..<m { for j in 0..<n { c[i * ldc + j] = 0 } } }
        return
    }
    cblas_sgemm(
        CblasRowMajor, CblasNoTrans, CblasNoTrans, Int32(m), Int32(n), Int32(k), 1,
        a, Int32(lda), b, Int32(ldb), accumulate ? 1 : 0, c, Int32(ldc))
}

/// `out = a[rows × inner] · b[inner × columns]` over whole row-major arrays (`out` holds at least
/// `rows × columns`); a zero `inner` gives zeros.
func multiplyMatrices(_ a: [Float], rows: Int, inner: Int, _ b: [Float], columns: Int, into out: inout [Float]) {
    guard rows > 0, columns > 0 else { return }
    guard inner > 0 else {
        for i in 0..<(rows * columns) { out[i] = 0 }
        return
    }
    a.withUnsafeBufferPointer { pa in
        b.withUnsafeBufferPointer { pb in
            out.withUnsafeMutableBufferPointer { pc in
                sgemm(
                    m: rows, n: columns, k: inner, a: pa.baseAddress!, lda: inner, b: pb.baseAddress!, ldb: columns,
                    c: pc.baseAddress!, ldc: columns)
            }
        }
    }
}

enum ConvolutionKernels {
    /// Whether a convolution runs directly rather than as im2col and a GEMM. With AVX-512 the direct
    /// kernel beats one core's sgemm on 3×3 convolutions of 16–64 channels (tools/bench/results/kernels.md)
    /// and skips im2col and the packing: it runs whenever the kernel's slice for one block of 32 output
    /// channels (kH·kW·C·32 values) stays within 256 KiB, so it is read from L2 for every block of pixels
    /// (the MNIST CNN and the residual net took 2–14% fewer cycles than with a GEMM for 3×3×32 → 64 and
    /// 3×3×40 → 32 in A/B runs, tools/bench/interpreter-notes.md). The choice follows the CPU (and the
    /// level tests allow), so another machine may take the GEMM and round the last bits differently.
    /// With AVX2 (eight pixels × sixteen channels at most) only when each output sums few input values
    /// (kH·kW·C ≤ 32: a first layer's taps over one or three channels) or there are few output channels
    /// (≤ 16): there, the MNIST CNN's first layer (K = 25) and the residual net's 3×3×16 → 16
    /// convolutions ran 1.4–2× faster directly, and 3×3×32 → 64 the same either way.
    static func runsDirectly(inputValues: Int, outChannels: Int) -> Bool {
        if pare_kernels_simd_level() >= 2, inputValues <= 2048 { return true }
        return inputValues <= 32 || outChannels <= 16
    }

    /// Conv2D, NHWC input, kernel `(kh, kw, in/groups, out)`, then the `epilogue` (bias, a following
    /// BatchNormalization, ReLU); directly for short sums, else through im2col and one GEMM per group.
    static func conv2d(
        _ x: FloatArray, kernel: [Float], outChannels: Int, groups: Int, window w: Window2D, epilogue: Epilogue
    ) -> FloatArray {
        let cin = x.shape[3]
        if groups == 1, runsDirectly(inputValues: w.kH * w.kW * cin, outChannels: outChannels),
            kernel.count == w.kH * w.kW * cin * outChannels, w.paddingFits(channels: cin),
            epilogue.fits(outChannels, values: x.batch * w.outH * w.outW * outChannels)
        {
            return directConv2d(x, kernel: kernel, outChannels: outChannels, window: w, epilogue: epilogue)
        }
        var out = gemmConv2d(x, kernel: kernel, outChannels: outChannels, groups: groups, window: w)
        finish(&out, epilogue)
        return out
    }

    /// Conv2D without groups by the C kernel (`kernel` holds kH·kW·C·outChannels values, the epilogue's
    /// arrays one per output channel).
    static func directConv2d(
        _ x: FloatArray, kernel: [Float], outChannels: Int, window w: Window2D, epilogue: Epilogue
    ) -> FloatArray {
        direct(x, window: w, outChannels: outChannels, epilogue: epilogue) { input, images, geometry, e, scratch, o in
            kernel.withUnsafeBufferPointer { k in
                pare_conv2d_direct(input, images, geometry, k.baseAddress!, outChannels, e, scratch, o)
            }
        }
    }

    /// Runs a C kernel over the batch on every core: `body(input, images, window, epilogue, scratch,
    /// output)`, with the scratch the kernel needs for one image.
    private static func direct(
        _ x: FloatArray, window w: Window2D, outChannels: Int, epilogue: Epilogue,
        _ body: (
            UnsafePointer<Float>, Int, UnsafePointer<pare_window>, UnsafePointer<pare_epilogue>,
            UnsafeMutablePointer<Float>?, UnsafeMutablePointer<Float>
        ) -> Void
    ) -> FloatArray {
        let n = x.batch
        let cin = x.shape[3]
        var out = uninitializedFloats(n * w.outH * w.outW * outChannels)
        var geometry = w.geometry(channels: cin)
        guard !out.isEmpty else { return FloatArray(shape: [n, w.outH, w.outW, outChannels], data: out) }
        x.data.withUnsafeBufferPointer { input in
            out.withUnsafeMutableBufferPointer { o in
                withUnsafePointer(to: &geometry) { g in
                    let scratchFloats = pare_window_padded_floats(g)
                    let outPerImage = w.outH * w.outW * outChannels
                    Parallel.chunks(n) { images in
                        // On a cache line's boundary: with sixteen channels (64 bytes) a pixel, no 64-byte
                        // load from the padded copy straddles two lines (a small gain, measured within the
                        // noise: depthwise samples −6 to −11%; unpadded inputs keep the array's alignment).
                        let scratch =
                            scratchFloats > 0
                            ? UnsafeMutableRawPointer.allocate(
                                byteCount: scratchFloats * MemoryLayout<Float>.stride, alignment: 64
                            ).bindMemory(to: Float.self, capacity: scratchFloats) : nil
                        defer { scratch?.deallocate() }
                        epilogue.withC(residualOffset: images.lowerBound * outPerImage) { e in
                            body(
                                input.baseAddress! + images.lowerBound * w.inH * w.inW * cin, images.count, g, e,
                                scratch, o.baseAddress! + images.lowerBound * outPerImage)
                        }
                    }
                }
            }
        }
        return FloatArray(shape: [n, w.outH, w.outW, outChannels], data: out)
    }

    /// Conv2D through im2col and one GEMM per group (no bias).
    static func gemmConv2d(_ x: FloatArray, kernel: [Float], outChannels: Int, groups: Int, window w: Window2D)
        -> FloatArray
    {
        let n = x.batch
        let cin = x.shape[3]
        let cg = cin / groups
        let og = outChannels / groups
        let rowsPerImage = w.outH * w.outW
        let colWidth = w.kH * w.kW * cg
        if groups == 1, w.kH == 1, w.kW == 1, w.strideH == 1, w.strideW == 1, w.padTop == 0, w.padLeft == 0,
            w.outH == w.inH, w.outW == w.inW
        {
            // A 1×1 convolution over every pixel: the NHWC input is already the GEMM's left matrix.
            return FloatArray(
                shape: [n, w.outH, w.outW, outChannels],
                data: dense(x, kernel: kernel, units: outChannels).data)
        }
        var out = uninitializedFloats(n * rowsPerImage * outChannels)
        // A few images at a time per core: the im2col block (≤ 1 M floats) stays small.
        let imagesPerStep = max(1, min(n, (1 << 20) / max(1, rowsPerImage * colWidth)))
        x.data.withUnsafeBufferPointer { input in
            kernel.withUnsafeBufferPointer { k in
                out.withUnsafeMutableBufferPointer { o in
                    Parallel.chunks(n) { images in
                        var cols = uninitializedFloats(min(imagesPerStep, images.count) * rowsPerImage * colWidth)
                        var start = images.lowerBound
                        while start < images.upperBound {
                            let count = min(imagesPerStep, images.upperBound - start)
                            for g in 0..<groups {
                                cols.withUnsafeMutableBufferPointer { c in
                                    for i in 0..<count {
                                        im2col(
                                            input.baseAddress! + (start + i) * w.inH * w.inW * cin, channels: cin,
                                            firstChannel: g * cg, groupChannels: cg, window: w,
                                            into: c.baseAddress! + i * rowsPerImage * colWidth)
                                    }
                                    sgemm(
                                        m: count * rowsPerImage, n: og, k: colWidth, a: c.baseAddress!, lda: colWidth,
                                        b: k.baseAddress! + g * og, ldb: outChannels,
                                        c: o.baseAddress! + start * rowsPerImage * outChannels + g * og,
                                        ldc: outChannels)
                                }
                            }
                            start += count
                        }
                    }
                }
            }
        }
        return FloatArray(shape: [n, w.outH, w.outW, outChannels], data: out)
    }

    /// Writes rows `(oh, ow)` × columns `(kh, kw, c)` for channels `firstChannel ..< firstChannel+groupChannels`.
    static func im2col(
        _ image: UnsafePointer<Float>, channels: Int, firstChannel: Int, groupChannels: Int,
        window w: Window2D, into cols: UnsafeMutablePointer<Float>
    ) {
        var p = cols
        if groupChannels == channels && w.dilationW == 1 {
            // All channels, taps side by side: a kernel row's taps inside the input are one run of the
            // image row (kW·C floats), copied at once, with zeros for the taps over the padding.
            let run = w.kW * channels
            for oh in 0..<w.outH {
                for ow in 0..<w.outW {
                    let left = ow * w.strideW - w.padLeft
                    let first = Swift.max(0, -left)
                    let last = Swift.min(w.kW, w.inW - left)
                    for kh in 0..<w.kH {
                        let ih = oh * w.strideH + kh * w.dilationH - w.padTop
                        if ih < 0 || ih >= w.inH || first >= last {
                            p.update(repeating: 0, count: run)
                        } else {
                            if first > 0 { p.update(repeating: 0, count: first * channels) }
                            (p + first * channels).update(
                                from: image + (ih * w.inW + left + first) * channels, count: (last - first) * channels)
                            if last < w.kW {
                                (p + last * channels).update(repeating: 0, count: (w.kW - last) * channels)
                            }
                        }
                        p += run
                    }
                }
            }
            return
        }
        for oh in 0..<w.outH {
            for ow in 0..<w.outW {
                for kh in 0..<w.kH {
                    let ih = oh * w.strideH + kh * w.dilationH - w.padTop
                    for kw in 0..<w.kW {
                        let iw = ow * w.strideW + kw * w.dilationW - w.padLeft
                        let inside = ih >= 0 && ih < w.inH && iw >= 0 && iw < w.inW
                        if groupChannels == 1 {
                            p.pointee = inside ? image[(ih * w.inW + iw) * channels + firstChannel] : 0
                        } else if inside {
                            p.update(from: image + (ih * w.inW + iw) * channels + firstChannel, count: groupChannels)
                        } else {
                            p.update(repeating: 0, count: groupChannels)
                        }
                        p += groupChannels
                    }
                }
            }
        }
    }

    /// DepthwiseConv2D, kernel `(kh, kw, in, multiplier)`, then the `epilogue`; output channel
    /// `c * multiplier + m`. Multiplier 1 (the common case) runs in C.
    static func depthwise(
        _ x: FloatArray, kernel: [Float], multiplier: Int, window w: Window2D, epilogue: Epilogue
    ) -> FloatArray {
        let n = x.batch
        let cin = x.shape[3]
        let cout = cin * multiplier
        if multiplier == 1, kernel.count == w.kH * w.kW * cin, w.paddingFits(channels: cin),
            epilogue.fits(cout, values: n * w.outH * w.outW * cout)
        {
            return direct(x, window: w, outChannels: cout, epilogue: epilogue) {
                input, images, geometry, e, scratch, o in
                kernel.withUnsafeBufferPointer { k in
                    pare_depthwise2d(input, images, geometry, k.baseAddress!, e, scratch, o)
                }
            }
        }
        // Every output pixel is written whole (zeroed first: it accumulates in memory).
        var out = uninitializedFloats(n * w.outH * w.outW * cout)
        guard !out.isEmpty, cout > 0 else { return FloatArray(shape: [n, w.outH, w.outW, cout], data: out) }
        x.data.withUnsafeBufferPointer { input in
            kernel.withUnsafeBufferPointer { k in
                out.withUnsafeMutableBufferPointer { o in
                    Parallel.chunks(n) { batch in
                        for b in batch {
                            let image = input.baseAddress! + b * w.inH * w.inW * cin
                            for oh in 0..<w.outH {
                                for ow in 0..<w.outW {
                                    let dst = o.baseAddress! + ((b * w.outH + oh) * w.outW + ow) * cout
                                    dst.initialize(repeating: 0, count: cout)
                                    w.forEachTap(oh: oh, ow: ow) { tap, pixel in
                                        let src = image + pixel * cin
                                        let kr = k.baseAddress! + tap * cout
                                        for c in 0..<cin {
                                            for m in 0..<multiplier {
                                                dst[c * multiplier + m] += src[c] * kr[c * multiplier + m]
                                            }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
        var result = FloatArray(shape: [n, w.outH, w.outW, cout], data: out)
        finish(&result, epilogue)
        return result
    }

    /// Conv2DTranspose, kernel `(kh, kw, out, in)`: the gradient of a Conv2D with the same window,
    /// mapping input pixel (ih, iw) to output rows `ih*stride + kh*dilation - pad`.
    static func transpose(
        _ x: FloatArray, kernel: [Float], outChannels: Int, kernelSize: [Int], strides: [Int],
        dilation: [Int], outH: Int, outW: Int
    ) -> FloatArray {
        let n = x.batch
        let inH = x.shape[1]
        let inW = x.shape[2]
        let cin = x.shape[3]
        let (kH, kW) = (kernelSize[0], kernelSize[1])
        let effH = (kH - 1) * dilation[0] + 1
        let effW = (kW - 1) * dilation[1] + 1
        let padTop = max((inH - 1) * strides[0] + effH - outH, 0) / 2
        let padLeft = max((inW - 1) * strides[1] + effW - outW, 0) / 2
        // Wt[cin, kh*kw*cout] from (kh, kw, cout, cin), so one GEMM gives every kernel tap's contribution.
        let taps = kH * kW * outChannels
        var wt = [Float](repeating: 0, count: cin * taps)
        for t in 0..<(kH * kW) {
            for o in 0..<outChannels {
                for i in 0..<cin { wt[i * taps + t * outChannels + o] = kernel[(t * outChannels + o) * cin + i] }
            }
        }
        var out = [Float](repeating: 0, count: n * outH * outW * outChannels)
        var contributions = [Float](repeating: 0, count: inH * inW * taps)
        for b in 0..<n {
            x.data.withUnsafeBufferPointer { input in
                wt.withUnsafeBufferPointer { w in
                    contributions.withUnsafeMutableBufferPointer { c in
                        sgemm(
                            m: inH * inW, n: taps, k: cin, a: input.baseAddress! + b * inH * inW * cin, lda: cin,
                            b: w.baseAddress!, ldb: taps, c: c.baseAddress!, ldc: taps)
                    }
                }
            }
            for ih in 0..<inH {
                for iw in 0..<inW {
                    for kh in 0..<kH {
                        let oh = ih * strides[0] + kh * dilation[0] - padTop
                        guard oh >= 0, oh < outH else { continue }
                        for kw in 0..<kW {
                            let ow = iw * strides[1] + kw * dilation[1] - padLeft
                            guard ow >= 0, ow < outW else { continue }
                            let src = ((ih * inW + iw) * kH * kW + kh * kW + kw) * outChannels
                            let dst = ((b * outH + oh) * outW + ow) * outChannels
                            out.withUnsafeMutableBufferPointer { o in
                                contributions.withUnsafeBufferPointer { c in
                                    for k in 0..<outChannels { o[dst + k] += c[src + k] }
                                }
                            }
                        }
                    }
                }
            }
        }
        return FloatArray(shape: [n, outH, outW, outChannels], data: out)
    }

    /// y[rows, units] = x[rows, in] · W[in, units] over the last axis, for inputs of any rank.
    static func dense(_ x: FloatArray, kernel: [Float], units: Int) -> FloatArray {
        let inner = x.shape.last ?? 1
        let rows = x.count / max(1, inner)
        var out = inner > 0 ? uninitializedFloats(rows * units) : [Float](repeating: 0, count: rows * units)
        x.data.withUnsafeBufferPointer { a in
            kernel.withUnsafeBufferPointer { b in
                out.withUnsafeMutableBufferPointer { c in
                    Parallel.chunks(rows, minimumPerChunk: 16) { r in
                        sgemm(
                            m: r.count, n: units, k: inner, a: a.baseAddress! + r.lowerBound * inner, lda: inner,
                            b: b.baseAddress!, ldb: units, c: c.baseAddress! + r.lowerBound * units, ldc: units)
                    }
                }
            }
        }
        return FloatArray(shape: Array(x.shape.dropLast()) + [units], data: out)
    }

    static func addBias(_ x: inout FloatArray, _ bias: [Float]) { finish(&x, Epilogue(bias: bias)) }

    /// Applies `epilogue` to every row of its channels, in one pass: the steps the C kernels take, in
    /// their order.
    static func finish(_ x: inout FloatArray, _ epilogue: Epilogue) {
        let c = epilogue.bias?.count ?? epilogue.affine?.scale.count ?? x.shape.last ?? 1
        guard c > 0, !epilogue.isEmpty else { return }
        precondition(epilogue.residual.map { $0.count == x.count } ?? true, "a residual of another shape")
        let (affine, rectifyFirst, rectify) = (epilogue.affine, epilogue.rectifyFirst, epilogue.rectify)
        let residualFirst = epilogue.residualFirst
        withOptionalFloats(epilogue.bias) { biases in
            withOptionalFloats(affine?.scale) { scale in
                withOptionalFloats(affine?.shift) { shift in
                    withOptionalFloats(epilogue.residual) { residual in
                        x.data.withUnsafeMutableBufferPointer { p in
                            // Rows of `c` values, over every core (a batch of feature maps is millions of
                            // values). Plain pointers: the loop over a row then vectorizes.
                            guard let values = p.baseAddress else { return }
                            Parallel.chunks(p.count / c, minimumPerChunk: Swift.max(1, (1 << 16) / c)) { rows in
                                for row in rows {
                                    let line = values + row * c
                                    if let biases { for k in 0..<c { line[k] += biases[k] } }
                                    if rectifyFirst { for k in 0..<c { line[k] = line[k] < 0 ? 0 : line[k] } }
                                    if let scale, let shift {
                                        for k in 0..<c { line[k] = line[k] * scale[k] + shift[k] }
                                    }
                                    if let residual {
                                        let r = residual + row * c
                                        if residualFirst {
                                            for k in 0..<c { line[k] = r[k] + line[k] }
                                        } else {
                                            for k in 0..<c { line[k] += r[k] }
                                        }
                                    }
                                    if rectify { for k in 0..<c { line[k] = line[k] < 0 ? 0 : line[k] } }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// dst[i] += a[i] * b[i], eight lanes at a time.
@inline(__always) func multiplyAdd(
    _ dst: UnsafeMutablePointer<Float>, _ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, count: Int
) {
    var i = 0
    while i + 8 <= count {
        let d = UnsafeMutableRawPointer(dst + i)
        let x = UnsafeRawPointer(a + i)
        let y = UnsafeRawPointer(b + i)
        let v =
            d.loadUnaligned(as: SIMD8<Float>.self) + x.loadUnaligned(as: SIMD8<Float>.self)
            * y.loadUnaligned(as: SIMD8<Float>.self)
        d.storeBytes(of: v, as: SIMD8<Float>.self)
        i += 8
    }
    while i < count {
        dst[i] += a[i] * b[i]
        i += 1
    }
}

/// Calls `body` with the address of `values`' elements, or nil without them.
func withOptionalFloats<R>(_ values: [Float]?, _ body: (UnsafePointer<Float>?) -> R) -> R {
    guard let values else { return body(nil) }
    return values.withUnsafeBufferPointer { body($0.baseAddress) }
}

/// An array whose every element the caller overwrites (saves the zero fill on large outputs).
func uninitializedFloats(_ count: Int) -> [Float] {
    [Float](unsafeUninitializedCapacity: count) { _, initialized in initialized = count }
}

extension Window2D {
    /// Calls `body` for each kernel tap of output pixel (oh, ow) that falls inside the input, in (kh, kw)
    /// order, with the tap's index (kh·kW + kw) and the input pixel's (ih·inW + iw).
    @inline(__always) func forEachTap(oh: Int, ow: Int, _ body: (_ tap: Int, _ pixel: Int) -> Void) {
        for kh in 0..<kH {
            let ih = oh * strideH + kh * dilationH - padTop
            guard ih >= 0, ih < inH else { continue }
            for kw in 0..<kW {
                let iw = ow * strideW + kw * dilationW - padLeft
                guard iw >= 0, iw < inW else { continue }
                body(kh * kW + kw, ih * inW + iw)
            }
        }
    }
}
