/// The k lowest |w| among one or more tensors, ties broken by (tensor, element index), found without
/// sorting and holding one tensor's values at a time. |w| as float32 bits orders exactly as the values
/// do (NaN above +inf, −0 as +0), so two passes of 16-bit histograms find the k-th lowest score; a
/// third counts, per tensor, the elements equal to it when only some of those are to go.
enum LowestScores {
    /// What one tensor loses: every element scored below `threshold`, and of those scored exactly
    /// `threshold` the first `ties` by index.
    struct Cutoff: Sendable, Equatable {
        var threshold: UInt32
        var ties: Int
    }

    @inline(__always) static func score(_ v: Float) -> UInt32 { v.bitPattern & 0x7FFF_FFFF }

    /// The round(s·N) lowest of one tensor's values; nil when nothing goes.
    static func perTensor(_ values: [Float], sparsity: Double) -> Cutoff? {
        let k = Int((sparsity * Double(values.count)).rounded())
        // A pass over values already in memory cannot fail.
        return (try? select(k, tensors: 1) { visit in try visit(0, values) })?[0] ?? nil
    }

    /// The round(s·N) lowest of all the tensors together (N: their total size), read again per pass.
    static func global(_ tensors: [Tensor], sparsity: Double) throws -> [Cutoff?] {
        let total = tensors.reduce(0) { $0 + $1.count }
        let k = Int((sparsity * Double(total)).rounded())
        return try select(k, tensors: tensors.count) { visit in
            for (i, t) in tensors.enumerated() { try visit(i, try t.floats()) }
        }
    }

    /// `pass` calls its argument once per tensor, in order, with the tensor's index and values.
    static func select(
        _ k: Int, tensors count: Int, pass: (_ visit: (Int, [Float]) throws -> Void) throws -> Void
    ) throws -> [Cutoff?] {
        guard k > 0 else { return Array(repeating: nil, count: count) }
        var high = [Int](repeating: 0, count: 1 << 16)
        try pass { _, values in
            high.withUnsafeMutableBufferPointer { h in
                for v in values { h[Int(score(v) >> 16)] += 1 }
            }
        }
        var below = 0
        var bin = 0
        while bin < (1 << 16) - 1 && below + high[bin] < k {
            below += high[bin]
            bin += 1
        }
        var low = [Int](repeating: 0, count: 1 << 16)
        try pass { _, values in
            low.withUnsafeMutableBufferPointer { h in
                for v in values where Int(score(v) >> 16) == bin { h[Int(score(v) & 0xFFFF)] += 1 }
            }
        }
        var lowBin = 0
        while lowBin < (1 << 16) - 1 && below + low[lowBin] < k {
            below += low[lowBin]
            lowBin += 1
        }
        let threshold = UInt32(bin) << 16 | UInt32(lowBin)
        var ties = k - below
        if ties >= low[lowBin] || count == 1 {
            // Every equal element goes (or, for one tensor, the first `ties` of them).
            return Array(repeating: Cutoff(threshold: threshold, ties: count == 1 ? ties : .max), count: count)
        }
        var cutoffs = [Cutoff?](repeating: nil, count: count)
        try pass { i, values in
            let equal = values.reduce(0) { $0 + (score($1) == threshold ? 1 : 0) }
            let take = min(equal, ties)
            ties -= take
            cutoffs[i] = Cutoff(threshold: threshold, ties: take)
        }
        return cutoffs
    }
}

extension Tensor {
    /// Zeroes what a cutoff selects, scoring each element as `floats()` reads it; every other element
    /// keeps its bytes, and elements already zero (−0 included) are left as they are. Deferred like
    /// any edit: a kernel read from a file is cut when its bytes are needed.
    func zeroingLowest(_ cutoff: LowestScores.Cutoff) throws -> Tensor {
        let (dtype, n, size) = (self.dtype, count, dtype.byteCount)
        // In place: each element is scored before it is zeroed, and only it is written.
        return try edited(shape: shape) { buffer in
            guard n > 0 else { return }
            var ties = cutoff.ties
            if dtype == .float32 {
                // Little-endian float32 words: the score is the word without its sign bit.
                let words = buffer.baseAddress!.assumingMemoryBound(to: UInt32.self)
                for i in 0..<n {
                    let s = UInt32(littleEndian: words[i]) & 0x7FFF_FFFF
                    guard s < cutoff.threshold || (s == cutoff.threshold && ties > 0) else { continue }
                    if s == cutoff.threshold { ties -= 1 }
                    if s != 0 { words[i] = 0 }
                }
                return
            }
            for i in 0..<n {
                let s = LowestScores.score(Tensor.float(UnsafeRawBufferPointer(buffer), i, dtype))
                guard s < cutoff.threshold || (s == cutoff.threshold && ties > 0) else { continue }
                if s == cutoff.threshold { ties -= 1 }
                if !Tensor.isZero(UnsafeRawBufferPointer(buffer), i, dtype) {
                    (buffer.baseAddress! + i * size).initializeMemory(as: UInt8.self, repeating: 0, count: size)
                }
            }
        }
    }
}
