import CPareKernels
import XCTest

@testable import Pare

/// The C convolution kernels (Sources/CPareKernels/convolution.c) against the im2col GEMM and a plain
/// loop: every geometry the direct path can meet (padding on each side, strides, dilation, channel counts
/// that leave a partial block of sixteen or 32), and their AVX2, AVX-512 and scalar paths bit for bit.
final class ConvolutionKernelTests: XCTestCase {
    struct Case {
        var inH, inW, cin, cout, kH, kW, stride, dilation: Int
        var padding: String
    }

    let cases = [
        Case(inH: 7, inW: 9, cin: 1, cout: 5, kH: 3, kW: 3, stride: 1, dilation: 1, padding: "same"),
        Case(inH: 12, inW: 11, cin: 3, cout: 20, kH: 5, kW: 5, stride: 2, dilation: 1, padding: "same"),
        Case(inH: 9, inW: 10, cin: 2, cout: 16, kH: 3, kW: 2, stride: 1, dilation: 2, padding: "valid"),
        Case(inH: 6, inW: 13, cin: 7, cout: 33, kH: 3, kW: 3, stride: 2, dilation: 1, padding: "valid"),
        Case(inH: 5, inW: 5, cin: 16, cout: 8, kH: 3, kW: 3, stride: 1, dilation: 1, padding: "same"),
        Case(inH: 1, inW: 17, cin: 4, cout: 24, kH: 1, kW: 4, stride: 1, dilation: 1, padding: "causal"),
        Case(inH: 4, inW: 4, cin: 2, cout: 3, kH: 5, kW: 5, stride: 1, dilation: 1, padding: "same"),
        // AVX-512's blocks of 32 channels and what is left over 16 (or under it), rows of 20 in three
        // overlapping blocks of seven.
        Case(inH: 6, inW: 20, cin: 40, cout: 50, kH: 3, kW: 3, stride: 1, dilation: 1, padding: "same"),
        Case(inH: 5, inW: 9, cin: 50, cout: 32, kH: 2, kW: 3, stride: 1, dilation: 1, padding: "valid"),
        // Rows of one, two and three output pixels (AVX-512's shortest blocks), depthwise rows of three taps
        // over 18 and 37 channels (two registers, the second partial).
        Case(inH: 4, inW: 3, cin: 18, cout: 40, kH: 3, kW: 3, stride: 1, dilation: 1, padding: "valid"),
        Case(inH: 3, inW: 4, cin: 37, cout: 17, kH: 3, kW: 3, stride: 1, dilation: 1, padding: "valid"),
        Case(inH: 2, inW: 3, cin: 5, cout: 33, kH: 3, kW: 3, stride: 1, dilation: 1, padding: "same"),
    ]

    func randomFloats(_ count: Int, _ generator: inout SeededGenerator) -> [Float] {
        (0..<count).map { _ in Float.random(in: -1...1, using: &generator) }
    }

    /// `images` random images of case `c`'s input shape.
    func randomImages(_ images: Int, _ c: Case, _ generator: inout SeededGenerator) -> FloatArray {
        FloatArray(
            shape: [images, c.inH, c.inW, c.cin], data: randomFloats(images * c.inH * c.inW * c.cin, &generator))
    }

    func rectified(_ x: FloatArray) -> FloatArray {
        FloatArray(shape: x.shape, data: x.data.map { $0 < 0 ? 0 : $0 })
    }

    /// The SIMD results (those this CPU ran) have the scalar one's bits.
    func assertSameBits(_ paths: (simd: [FloatArray], scalar: FloatArray), _ what: String) {
        for (level, simd) in paths.simd.enumerated() {
            let name = level == 0 ? "AVX2" : "AVX-512"
            XCTAssertEqual(
                simd.data.map(\.bitPattern), paths.scalar.data.map(\.bitPattern), "\(name) vs scalar \(what)")
        }
    }

    func window(_ c: Case) -> Window2D {
        Window2D(
            inH: c.inH, inW: c.inW, kernel: [c.kH, c.kW], strides: [c.stride, c.stride],
            dilation: [c.dilation, c.dilation], padding: c.padding)
    }

    /// Runs `body` with the AVX2 path and the AVX-512 one (those this CPU has), then the scalar one.
    func bothPaths(_ body: () throws -> FloatArray) rethrows -> (simd: [FloatArray], scalar: FloatArray) {
        defer { _ = pare_kernels_allow_simd(2) }
        let best = pare_kernels_allow_simd(2)
        var simd: [FloatArray] = []
        for level in Int32(1)...Swift.max(1, best) where level <= best {
            _ = pare_kernels_allow_simd(level)
            simd.append(try body())
        }
        _ = pare_kernels_allow_simd(0)
        return (simd, try body())
    }

    func assertClose(_ a: FloatArray, _ b: FloatArray, _ what: String) {
        XCTAssertEqual(a.shape, b.shape, what)
        let scale = b.data.map(abs).max() ?? 0
        let worst = zip(a.data, b.data).map { abs($0 - $1) }.max() ?? 0
        XCTAssertLessThanOrEqual(worst, 1e-5 * Swift.max(scale, 1), what)
    }

    /// The steps after the bias, in the store (the convolution's own ReLU, a fused BatchNormalization's
    /// `x · scale + shift`, an added residual tensor, a fused ReLU), give on both paths the bits the separate
    /// pass (`ConvolutionKernels.finish`) gives on the biased result. `run` adds the bias to `epilogue`.
    func checkEpilogue(
        _ what: String, biased: FloatArray, channels: Int, _ generator: inout SeededGenerator,
        _ run: (Epilogue) -> FloatArray
    ) {
        let affine = ChannelAffine(scale: randomFloats(channels, &generator), shift: randomFloats(channels, &generator))
        let residual = randomFloats(biased.count, &generator)
        let epilogues = [
            Epilogue(rectify: true), Epilogue(rectifyFirst: true), Epilogue(affine: affine),
            Epilogue(affine: affine, rectify: true), Epilogue(residual: residual),
            Epilogue(residual: residual, residualFirst: true),
            Epilogue(rectifyFirst: true, affine: affine, residual: residual, rectify: true),
        ]
        for (i, epilogue) in epilogues.enumerated() {
            var expected = biased
            ConvolutionKernels.finish(&expected, epilogue)
            let fused = bothPaths { run(epilogue) }
            XCTAssertEqual(
                fused.scalar.data.map(\.bitPattern), expected.data.map(\.bitPattern), "\(what) epilogue \(i)")
            assertSameBits(fused, "\(what) epilogue \(i)")
            if epilogue.rectify || epilogue.rectifyFirst {
                XCTAssertTrue(fused.scalar.data.contains(0) && fused.scalar.data.contains { $0 > 0 }, what)
            }
        }
    }

    /// `run` with `bias` is close to `reference` and gives the same bits on both paths, and so do the
    /// epilogue's other steps.
    func checkKernel(
        _ what: String, reference: FloatArray, bias: [Float], _ generator: inout SeededGenerator,
        _ run: (Epilogue) -> FloatArray
    ) {
        let paths = bothPaths { run(Epilogue(bias: bias)) }
        assertClose(paths.scalar, reference, "scalar \(what)")
        assertSameBits(paths, what)
        checkEpilogue(what, biased: paths.scalar, channels: bias.count, &generator) { epilogue in
            var withBias = epilogue
            withBias.bias = bias
            return run(withBias)
        }
    }

    func testDirectConvolutionMatchesTheGEMMAndItsPathsAgreeBitForBit() {
        var generator = SeededGenerator(seed: 7)
        for c in cases {
            let w = window(c)
            let x = randomImages(3, c, &generator)
            let kernel = randomFloats(c.kH * c.kW * c.cin * c.cout, &generator)
            let bias = randomFloats(c.cout, &generator)
            var reference = ConvolutionKernels.gemmConv2d(x, kernel: kernel, outChannels: c.cout, groups: 1, window: w)
            ConvolutionKernels.addBias(&reference, bias)
            func direct(_ epilogue: Epilogue) -> FloatArray {
                ConvolutionKernels.directConv2d(x, kernel: kernel, outChannels: c.cout, window: w, epilogue: epilogue)
            }
            checkKernel("\(c)", reference: reference, bias: bias, &generator, direct)
            // Without a bias: the same sums, nothing added.
            let unbiased = ConvolutionKernels.gemmConv2d(x, kernel: kernel, outChannels: c.cout, groups: 1, window: w)
            assertClose(direct(Epilogue()), unbiased, "no bias \(c)")
        }
    }

    func testDepthwiseMatchesAPlainLoopAndItsPathsAgreeBitForBit() {
        var generator = SeededGenerator(seed: 11)
        for c in cases {
            let w = window(c)
            let x = randomImages(2, c, &generator)
            let kernel = randomFloats(c.kH * c.kW * c.cin, &generator)
            let bias = randomFloats(c.cin, &generator)
            // The definition: each channel sums its own taps inside the image, plus its bias.
            var expected = [Float](repeating: 0, count: 2 * w.outH * w.outW * c.cin)
            for b in 0..<2 {
                for oh in 0..<w.outH {
                    for ow in 0..<w.outW {
                        for ch in 0..<c.cin {
                            var sum: Float = 0
                            w.forEachTap(oh: oh, ow: ow) { tap, pixel in
                                sum += x.data[(b * c.inH * c.inW + pixel) * c.cin + ch] * kernel[tap * c.cin + ch]
                            }
                            expected[((b * w.outH + oh) * w.outW + ow) * c.cin + ch] = sum + bias[ch]
                        }
                    }
                }
            }
            let reference = FloatArray(shape: [2, w.outH, w.outW, c.cin], data: expected)
            func depthwise(_ epilogue: Epilogue, multiplier: Int = 1, kernel: [Float] = kernel) -> FloatArray {
                ConvolutionKernels.depthwise(x, kernel: kernel, multiplier: multiplier, window: w, epilogue: epilogue)
            }
            checkKernel("\(c)", reference: reference, bias: bias, &generator) { depthwise($0) }
            // The Swift loop for a depth multiplier above 1 applies the epilogue in a pass after it.
            let doubled = kernel.flatMap { [$0, -$0] }
            let twice = depthwise(Epilogue(), multiplier: 2, kernel: doubled)
            XCTAssertEqual(
                depthwise(Epilogue(rectify: true), multiplier: 2, kernel: doubled), rectified(twice),
                "multiplier 2 \(c)")
        }
    }

    func testMaxPoolingTakesEachWindowsLargestValueOrNaN() {
        var generator = SeededGenerator(seed: 13)
        for c in cases where c.dilation == 1 {
            let w = window(c)
            var x = randomImages(2, c, &generator)
            // A NaN in one window of each image must come out of every window holding it.
            for b in 0..<2 { x.data[(b * c.inH * c.inW + c.inH * c.inW / 2) * c.cin] = .nan }
            var expected = [Float](repeating: 0, count: 2 * w.outH * w.outW * c.cin)
            for b in 0..<2 {
                for oh in 0..<w.outH {
                    for ow in 0..<w.outW {
                        for ch in 0..<c.cin {
                            var m = -Float.infinity
                            w.forEachTap(oh: oh, ow: ow) { _, pixel in
                                m = propagatingMax(m, x.data[(b * c.inH * c.inW + pixel) * c.cin + ch])
                            }
                            expected[((b * w.outH + oh) * w.outW + ow) * c.cin + ch] = m
                        }
                    }
                }
            }
            let paths = bothPaths { PoolingKernels.pool(x, window: w, max: true) }
            XCTAssertEqual(paths.scalar.data.map(\.bitPattern), expected.map(\.bitPattern), "\(c)")
            XCTAssertTrue(paths.scalar.data.contains { $0.isNaN }, "\(c)")
            assertSameBits(paths, "\(c)")
        }
    }

    func testConcatenationInterleavesRowsOnBothPaths() {
        var generator = SeededGenerator(seed: 17)
        // Rows shorter than a register, exactly one, and longer with a partial last one.
        let parts = [3, 8, 13].map { FloatArray(shape: [2, 5, $0], data: randomFloats(10 * $0, &generator)) }
        var expected: [Float] = []
        for row in 0..<10 {
            for part in parts {
                let c = part.shape[2]
                expected += part.data[(row * c)..<((row + 1) * c)]
            }
        }
        let paths = bothPaths { ShapeKernels.concatenate(parts, axis: 2) }
        XCTAssertEqual(paths.scalar.shape, [2, 5, 24])
        XCTAssertEqual(paths.scalar.data, expected)
        assertSameBits(paths, "concatenate")
    }

    /// Pooling each part of a channel concatenation into its channels of the result gives the bits of
    /// pooling the concatenated tensor, on every path: channel counts with partial registers, "same"
    /// windows at the edges, a NaN in one part.
    func testMaxPoolingAConcatenationPartByPartEqualsPoolingItWhole() {
        var generator = SeededGenerator(seed: 19)
        var parts = [3, 16, 21].map { FloatArray(shape: [2, 7, 5, $0], data: randomFloats(70 * $0, &generator)) }
        parts[1].data[40] = .nan
        let joined = ShapeKernels.concatenate(parts, axis: 3)
        for (kernel, stride, padding) in [(2, 2, "valid"), (3, 2, "same"), (2, 1, "same")] {
            let w = Window2D(
                inH: 7, inW: 5, kernel: [kernel, kernel], strides: [stride, stride], dilation: [1, 1],
                padding: padding)
            let whole = PoolingKernels.pool(joined, window: w, max: true)
            let paths = bothPaths { PoolingKernels.maxPool(concatenating: parts, window: w) }
            XCTAssertEqual(paths.scalar.shape, whole.shape)
            XCTAssertEqual(paths.scalar.data.map(\.bitPattern), whole.data.map(\.bitPattern), "\(kernel) \(padding)")
            XCTAssertTrue(whole.data.contains { $0.isNaN })
            assertSameBits(paths, "pooled parts \(kernel) \(padding)")
        }
    }

    /// A config may ask for a dilation that puts every tap but the centre millions of rows outside a small
    /// image: no padded copy of that size is made (the GEMM or the plain loop runs), and the result is the
    /// centre tap's product plus the bias.
    func testHugeDilationsRunWithoutAPaddedCopy() {
        var generator = SeededGenerator(seed: 19)
        let c = Case(inH: 5, inW: 6, cin: 3, cout: 4, kH: 3, kW: 3, stride: 1, dilation: 1 << 28, padding: "same")
        let w = window(c)
        XCTAssertEqual([w.outH, w.outW], [5, 6])
        XCTAssertFalse(w.paddingFits(channels: c.cin))
        XCTAssertTrue(window(cases[0]).paddingFits(channels: cases[0].cin))
        let x = randomImages(2, c, &generator)
        let kernel = randomFloats(9 * c.cin * c.cout, &generator)
        let bias = randomFloats(c.cout, &generator)
        let y = ConvolutionKernels.conv2d(
            x, kernel: kernel, outChannels: c.cout, groups: 1, window: w, epilogue: Epilogue(bias: bias))
        var expected = [Float]()
        for pixel in 0..<(2 * c.inH * c.inW) {
            for o in 0..<c.cout {
                var sum: Float = 0
                for ci in 0..<c.cin { sum += x.data[pixel * c.cin + ci] * kernel[(4 * c.cin + ci) * c.cout + o] }
                expected.append(sum + bias[o])
            }
        }
        assertClose(y, FloatArray(shape: [2, 5, 6, c.cout], data: expected), "conv")
        let depthwiseKernel = randomFloats(9 * c.cin, &generator)
        let d = ConvolutionKernels.depthwise(
            x, kernel: depthwiseKernel, multiplier: 1, window: w, epilogue: Epilogue(bias: Array(bias.prefix(c.cin))))
        let centre = x.data.indices.map { i in x.data[i] * depthwiseKernel[4 * c.cin + i % c.cin] + bias[i % c.cin] }
        assertClose(d, FloatArray(shape: [2, 5, 6, c.cin], data: centre), "depthwise")
    }
}
