/// Window operations over any number of spatial axes, for the 3-D layers (Conv3D, pooling,
/// Conv3DTranspose). The 1-D and 2-D layers keep the 2-D kernels, which are faster; these walk
/// index vectors instead of nested loops.

/// The geometry of one window operation over `spatial` axes of a channels-last input.
struct WindowND {
    var input: [Int]
    var output: [Int]
    var kernel: [Int]
    var strides: [Int]
    var dilation: [Int]
    /// Positions of padding before the first input position, per axis.
    var padBefore: [Int]

    /// Keras/TensorFlow padding: `same` puts the odd extra position at the end.
    init(input: [Int], kernel: [Int], strides: [Int], dilation: [Int], padding: String) {
        self.input = input
        self.kernel = kernel
        self.strides = strides
        self.dilation = dilation
        var output: [Int] = []
        var before: [Int] = []
        for a in input.indices {
            let effective = (kernel[a] - 1) * dilation[a] + 1
            if padding == "same" {
                let n = (input[a] + strides[a] - 1) / strides[a]
                output.append(n)
                before.append(max((n - 1) * strides[a] + effective - input[a], 0) / 2)
            } else {
                output.append(input[a] >= effective ? (input[a] - effective) / strides[a] + 1 : 0)
                before.append(0)
            }
        }
        self.output = output
        padBefore = before
    }

    var outputPositions: Int { output.reduce(1, *) }
    var inputPositions: Int { input.reduce(1, *) }

    /// The input position (flat) that output position `o` reads at kernel tap `tap`, nil in the padding.
    func source(output o: [Int], tap t: [Int]) -> Int? {
        var flat = 0
        for a in input.indices {
            let i = o[a] * strides[a] + t[a] * dilation[a] - padBefore[a]
            guard i >= 0, i < input[a] else { return nil }
            flat = flat * input[a] + i
        }
        return flat
    }
}

enum VolumeKernels {
    /// Every index vector of `shape` in row-major order (for kernel taps: as many as the kernel has).
    static func indices(_ shape: [Int]) -> [[Int]] {
        let count = shape.reduce(1, *)
        guard count > 0 else { return [] }
        var all: [[Int]] = []
        all.reserveCapacity(count)
        var index = [Int](repeating: 0, count: shape.count)
        for _ in 0..<count {
            all.append(index)
            FloatArray.advance(&index, shape: shape)
        }
        return all
    }

    /// Convolution, kernel `(k…, in / groups, out)`, through im2col and one GEMM per group and example.
    static func conv(_ x: FloatArray, kernel: [Float], outChannels: Int, groups: Int, window w: WindowND)
        -> FloatArray
    {
        let n = x.batch
        let cin = x.shape[x.shape.count - 1]
        let (cg, og) = (cin / groups, outChannels / groups)
        let rows = w.outputPositions
        let width = w.kernel.reduce(1, *) * cg
        let taps = indices(w.kernel)
        var out = [Float](repeating: 0, count: n * rows * outChannels)
        var cols = [Float](repeating: 0, count: rows * width)
        for b in 0..<n {
            let image = b * w.inputPositions * cin
            for g in 0..<groups {
                var o = [Int](repeating: 0, count: w.output.count)
                for r in 0..<rows {
                    defer { FloatArray.advance(&o, shape: w.output) }
                    for (t, tap) in taps.enumerated() {
                        let dst = r * width + t * cg
                        if let src = w.source(output: o, tap: tap) {
                            for c in 0..<cg { cols[dst + c] = x.data[image + src * cin + g * cg + c] }
                        } else {
                            for c in 0..<cg { cols[dst + c] = 0 }
                        }
                    }
                }
                cols.withUnsafeBufferPointer { a in
                    kernel.withUnsafeBufferPointer { k in
                        out.withUnsafeMutableBufferPointer { o in
                            sgemm(
                                m: rows, n: og, k: width, a: a.baseAddress!, lda: width, b: k.baseAddress! + g * og,
                                ldb: outChannels, c: o.baseAddress! + b * rows * outChannels + g * og,
                                ldc: outChannels)
                        }
                    }
                }
            }
        }
        return FloatArray(shape: [n] + w.output + [outChannels], data: out)
    }

    /// Max or average pooling; padded positions are left out (the average divides by the real
    /// ones). Each window is clamped to the input first, so a pool far larger than its input (a
    /// config may say so) costs what the input holds, not what the pool size says.
    static func pool(_ x: FloatArray, window w: WindowND, max isMax: Bool) -> FloatArray {
        let n = x.batch
        let c = x.shape[x.shape.count - 1]
        let rank = w.input.count
        var out = [Float](repeating: 0, count: n * w.outputPositions * c)
        for b in 0..<n {
            let image = b * w.inputPositions * c
            var o = [Int](repeating: 0, count: rank)
            for r in 0..<w.outputPositions {
                defer { FloatArray.advance(&o, shape: w.output) }
                // The input positions this window covers, per axis.
                let first = (0..<rank).map { Swift.max(0, o[$0] * w.strides[$0] - w.padBefore[$0]) }
                let last = (0..<rank).map {
                    Swift.min(w.input[$0], o[$0] * w.strides[$0] - w.padBefore[$0] + w.kernel[$0])
                }
                let dst = (b * w.outputPositions + r) * c
                for k in 0..<c { out[dst + k] = isMax ? -.infinity : 0 }
                let extent = (0..<rank).map { Swift.max(0, last[$0] - first[$0]) }
                let covered = extent.reduce(1, *)
                var t = [Int](repeating: 0, count: rank)
                for _ in 0..<covered {
                    defer { FloatArray.advance(&t, shape: extent) }
                    var src = 0
                    for a in 0..<rank { src = src * w.input[a] + first[a] + t[a] }
                    for k in 0..<c {
                        let v = x.data[image + src * c + k]
                        out[dst + k] = isMax ? propagatingMax(out[dst + k], v) : out[dst + k] + v
                    }
                }
                if !isMax { for k in 0..<c { out[dst + k] /= Float(Swift.max(covered, 1)) } }
            }
        }
        return FloatArray(shape: [n] + w.output + [c], data: out)
    }

    /// Transposed convolution, kernel `(k…, out, in)`: input position i adds its contribution to
    /// output position `i·stride + tap·dilation − padBefore`, where `padBefore` makes the forward
    /// convolution of the output give back the input's size (Keras's rule, `output` given).
    static func transpose(
        _ x: FloatArray, kernel: [Float], outChannels: Int, kernelSize: [Int], strides: [Int], dilation: [Int],
        output: [Int]
    ) -> FloatArray {
        let n = x.batch
        let spatial = Array(x.shape.dropFirst().dropLast())
        let cin = x.shape[x.shape.count - 1]
        let pad = spatial.indices.map { a in
            max((spatial[a] - 1) * strides[a] + (kernelSize[a] - 1) * dilation[a] + 1 - output[a], 0) / 2
        }
        let inputPositions = spatial.reduce(1, *)
        let taps = indices(kernelSize)
        let outPositions = output.reduce(1, *)
        var out = [Float](repeating: 0, count: n * outPositions * outChannels)
        for b in 0..<n {
            var i = [Int](repeating: 0, count: spatial.count)
            for p in 0..<inputPositions {
                defer { FloatArray.advance(&i, shape: spatial) }
                let src = (b * inputPositions + p) * cin
                for (t, tap) in taps.enumerated() {
                    var flat = 0
                    var inside = true
                    for a in spatial.indices {
                        let o = i[a] * strides[a] + tap[a] * dilation[a] - pad[a]
                        if o < 0 || o >= output[a] {
                            inside = false
                            break
                        }
                        flat = flat * output[a] + o
                    }
                    guard inside else { continue }
                    let dst = (b * outPositions + flat) * outChannels
                    for f in 0..<outChannels {
                        var sum: Float = 0
                        let k = (t * outChannels + f) * cin
                        for c in 0..<cin { sum += x.data[src + c] * kernel[k + c] }
                        out[dst + f] += sum
                    }
                }
            }
        }
        return FloatArray(shape: [n] + output + [outChannels], data: out)
    }

    /// Zero padding (positive amounts) or cropping (negative) of every spatial axis.
    static func pad(_ x: FloatArray, before: [Int], after: [Int]) -> FloatArray {
        let spatial = Array(x.shape.dropFirst().dropLast())
        let output = spatial.indices.map { max(0, spatial[$0] + before[$0] + after[$0]) }
        return gather(x, output: output) { a, o in o - before[a] }
    }

    /// Nearest-neighbour upsampling: each position repeated `size` times along each axis.
    static func upsample(_ x: FloatArray, size: [Int]) -> FloatArray {
        let spatial = Array(x.shape.dropFirst().dropLast())
        return gather(x, output: zip(spatial, size).map { $0 * $1 }) { a, o in o / size[a] }
    }

    /// A value of spatial shape `output` whose position takes, on each axis `a`, the input position
    /// `source(a, o)`, or zeros where that falls outside the input.
    static func gather(_ x: FloatArray, output: [Int], source: (Int, Int) -> Int) -> FloatArray {
        let n = x.batch
        let spatial = Array(x.shape.dropFirst().dropLast())
        let inPositions = spatial.reduce(1, *)
        let c = x.shape[x.shape.count - 1]
        let outPositions = output.reduce(1, *)
        var out = [Float](repeating: 0, count: n * outPositions * c)
        var o = [Int](repeating: 0, count: output.count)
        for r in 0..<outPositions {
            defer { FloatArray.advance(&o, shape: output) }
            var flat = 0
            var inside = true
            for a in spatial.indices {
                let i = source(a, o[a])
                if i < 0 || i >= spatial[a] {
                    inside = false
                    break
                }
                flat = flat * spatial[a] + i
            }
            guard inside else { continue }
            for b in 0..<n {
                let src = (b * inPositions + flat) * c
                let dst = (b * outPositions + r) * c
                for k in 0..<c { out[dst + k] = x.data[src + k] }
            }
        }
        return FloatArray(shape: [n] + output + [c], data: out)
    }
}
