import CPareKernels

/// Pooling on NHWC input. Padded positions are ignored: max over the window's real pixels, and
/// the average divides by how many real pixels the window covers (TensorFlow's "same" rule).
enum PoolingKernels {
    static func pool(_ x: FloatArray, window w: Window2D, max isMax: Bool) -> FloatArray {
        if isMax { return maxPool(concatenating: [x], window: w) }
        let n = x.batch
        let c = x.shape[3]
        var out = uninitializedFloats(n * w.outH * w.outW * c)
        x.data.withUnsafeBufferPointer { xp in
            out.withUnsafeMutableBufferPointer { op in
                guard let input = xp.baseAddress, let output = op.baseAddress, c > 0 else { return }
                // Average pooling: each output pixel's channels accumulate in place, one row of `c` values
                // per tap.
                Parallel.chunks(n * w.outH) { rows in
                    for row in rows {
                        let (b, oh) = (row / w.outH, row % w.outH)
                        // Only the taps inside the input: a window far larger than the input (a config
                        // may say so) costs what the input holds.
                        let top = oh * w.strideH - w.padTop
                        let tapRows = Swift.max(0, top)..<Swift.max(0, Swift.min(w.inH, top + w.kH))
                        for ow in 0..<w.outW {
                            let left = ow * w.strideW - w.padLeft
                            let tapColumns = Swift.max(0, left)..<Swift.max(0, Swift.min(w.inW, left + w.kW))
                            let dst = output + ((b * w.outH + oh) * w.outW + ow) * c
                            dst.initialize(repeating: 0, count: c)
                            for ih in tapRows {
                                for iw in tapColumns {
                                    let src = input + ((b * w.inH + ih) * w.inW + iw) * c
                                    addRow(dst, src, count: c)
                                }
                            }
                            let covered = Float(Swift.max(tapRows.count * tapColumns.count, 1))
                            for k in 0..<c { dst[k] /= covered }
                        }
                    }
                }
            }
        }
        return FloatArray(shape: [n, w.outH, w.outW, c], data: out)
    }

    /// Max pooling of the channels-last concatenation of `parts` (images of one height and width, every
    /// window `w`'s): each part is pooled straight into its channels of the result, which is the pooling
    /// of the concatenated tensor (each channel pools on its own) without the concatenated tensor.
    static func maxPool(concatenating parts: [FloatArray], window w: Window2D) -> FloatArray {
        let n = parts[0].batch
        let total = parts.reduce(0) { $0 + $1.shape[3] }
        var out = uninitializedFloats(n * w.outH * w.outW * total)
        out.withUnsafeMutableBufferPointer { op in
            guard let output = op.baseAddress else { return }
            var offset = 0
            for x in parts {
                let c = x.shape[3]
                // In C (Sources/CPareKernels/pooling.c): the window's maximum in registers, NaN kept.
                var geometry = w.geometry(channels: c)
                x.data.withUnsafeBufferPointer { xp in
                    guard let input = xp.baseAddress, c > 0 else { return }
                    withUnsafePointer(to: &geometry) { g in
                        Parallel.chunks(n) { images in
                            pare_max_pool2d(
                                input + images.lowerBound * w.inH * w.inW * c, images.count, g,
                                output + images.lowerBound * w.outH * w.outW * total + offset, total)
                        }
                    }
                }
                offset += c
            }
        }
        return FloatArray(shape: [n, w.outH, w.outW, total], data: out)
    }

    /// dst[k] += src[k].
    @inline(__always) static func addRow(_ dst: UnsafeMutablePointer<Float>, _ src: UnsafePointer<Float>, count: Int) {
        for k in 0..<count { dst[k] += src[k] }
    }

    static func global(_ x: FloatArray, max isMax: Bool, keepdims: Bool) -> FloatArray {
        let n = x.batch
        let h = x.shape[1]
        let w = x.shape[2]
        let c = x.shape[3]
        var out = [Float](repeating: isMax ? -.infinity : 0, count: n * c)
        // Each channel's positions in order (the sums' order); through raw pointers and one loop per
        // reduction, which the compiler vectorizes across channels.
        if n * c > 0, h * w > 0 {
            x.data.withUnsafeBufferPointer { source in
                out.withUnsafeMutableBufferPointer { target in
                    for b in 0..<n {
                        let o = target.baseAddress! + b * c
                        for p in 0..<(h * w) {
                            let s = source.baseAddress! + (b * h * w + p) * c
                            if isMax {
                                for k in 0..<c { o[k] = propagatingMax(o[k], s[k]) }
                            } else {
                                for k in 0..<c { o[k] += s[k] }
                            }
                        }
                    }
                }
            }
        }
        if !isMax { for i in out.indices { out[i] /= Float(h * w) } }
        return FloatArray(shape: keepdims ? [n, 1, 1, c] : [n, c], data: out)
    }

    /// GlobalAveragePooling1D with a mask, as Keras computes it: `sum(x·mask) / sum(mask)` over
    /// the steps of `x` (batch, steps, channels); an example whose steps are all masked gets 0/0.
    static func maskedAverage(_ x: FloatArray, mask: StepMask, keepdims: Bool) -> FloatArray {
        let (n, t, c) = (x.shape[0], x.shape[1], x.shape[2])
        var out = [Float](repeating: 0, count: n * c)
        for b in 0..<n {
            var kept: Float = 0
            for s in 0..<t where mask.keep[b * t + s] {
                kept += 1
                for k in 0..<c { out[b * c + k] += x.data[(b * t + s) * c + k] }
            }
            for k in 0..<c { out[b * c + k] /= kept }
        }
        return FloatArray(shape: keepdims ? [n, 1, c] : [n, c], data: out)
    }
}

/// The larger value, or NaN if either is NaN (a NaN input must not vanish in a max pool).
@inline(__always) func propagatingMax(_ a: Float, _ b: Float) -> Float {
    a.isNaN || b.isNaN ? .nan : (b > a ? b : a)
}

/// Layers that move values without arithmetic.
enum ShapeKernels {
    /// Transposes the non-batch axes: output axis i takes input axis `order[i]` (0-based, batch excluded).
    static func permute(_ x: FloatArray, order: [Int]) -> FloatArray {
        let inShape = Array(x.shape.dropFirst())
        let outShape = order.map { inShape[$0] }
        var inStrides = [Int](repeating: 1, count: inShape.count)
        for i in stride(from: inShape.count - 2, through: 0, by: -1) {
            inStrides[i] = inStrides[i + 1] * inShape[i + 1]
        }
        let per = x.exampleSize
        var out = [Float](repeating: 0, count: x.count)
        var index = [Int](repeating: 0, count: outShape.count)
        for b in 0..<x.batch {
            for o in 0..<per {
                var rem = o
                for i in stride(from: outShape.count - 1, through: 0, by: -1) {
                    index[i] = rem % outShape[i]
                    rem /= outShape[i]
                }
                var src = 0
                for i in 0..<outShape.count { src += index[i] * inStrides[order[i]] }
                out[b * per + o] = x.data[b * per + src]
            }
        }
        return FloatArray(shape: [x.batch] + outShape, data: out)
    }

    /// Zero padding (positive amounts) or cropping (negative) of the two spatial axes.
    static func pad(_ x: FloatArray, top: Int, bottom: Int, left: Int, right: Int) -> FloatArray {
        let n = x.batch
        let h = x.shape[1]
        let w = x.shape[2]
        let c = x.shape[3]
        let oh = h + top + bottom
        let ow = w + left + right
        var out = [Float](repeating: 0, count: n * max(0, oh) * max(0, ow) * c)
        for b in 0..<n {
            for y in 0..<max(0, oh) {
                let iy = y - top
                guard iy >= 0, iy < h else { continue }
                for xx in 0..<max(0, ow) {
                    let ix = xx - left
                    guard ix >= 0, ix < w else { continue }
                    let src = ((b * h + iy) * w + ix) * c
                    let dst = ((b * oh + y) * ow + xx) * c
                    for k in 0..<c { out[dst + k] = x.data[src + k] }
                }
            }
        }
        return FloatArray(shape: [n, oh, ow, c], data: out)
    }

    static func upsampleNearest(_ x: FloatArray, size: [Int]) -> FloatArray {
        let n = x.batch
        let h = x.shape[1]
        let w = x.shape[2]
        let c = x.shape[3]
        let oh = h * size[0]
        let ow = w * size[1]
        var out = [Float](repeating: 0, count: n * oh * ow * c)
        for b in 0..<n {
            for y in 0..<oh {
                for xx in 0..<ow {
                    let src = ((b * h + y / size[0]) * w + xx / size[1]) * c
                    let dst = ((b * oh + y) * ow + xx) * c
                    for k in 0..<c { out[dst + k] = x.data[src + k] }
                }
            }
        }
        return FloatArray(shape: [n, oh, ow, c], data: out)
    }

    /// Concatenates along `axis` (an axis of the full shape, batch = 0).
    static func concatenate(_ xs: [FloatArray], axis: Int) -> FloatArray {
        let outer = xs[0].shape[..<axis].reduce(1, *)
        let inners = xs.map { $0.shape[axis...].reduce(1, *) }
        let rowLength = inners.reduce(0, +)
        var out = uninitializedFloats(outer * rowLength)
        out.withUnsafeMutableBufferPointer { o in
            var offset = 0
            for (x, inner) in zip(xs, inners) {
                x.data.withUnsafeBufferPointer { src in
                    guard let source = src.baseAddress, let target = o.baseAddress else { return }
                    // Rows of a few channels each (a pixel's), over every core for large tensors.
                    Parallel.chunks(outer, minimumPerChunk: Swift.max(1, (1 << 16) / Swift.max(1, inner))) { rows in
                        pare_copy_rows(
                            source + rows.lowerBound * inner, inner, target + rows.lowerBound * rowLength + offset,
                            rowLength, rows.count, inner)
                    }
                }
                offset += inner
            }
        }
        var shape = xs[0].shape
        shape[axis] = xs.reduce(0) { $0 + $1.shape[axis] }
        return FloatArray(shape: shape, data: out)
    }
}
