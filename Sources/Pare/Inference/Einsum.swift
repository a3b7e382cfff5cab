/// Two-operand einsum (`abc,cd->abd`) as one GEMM per combination of the letters both operands and
/// the output share: the operands are gathered into matrices (rows: the letters only the first
/// operand and the output have; inner: the summed letters; columns: the letters only the second
/// operand and the output have) and the product scattered into the output's order. EinsumDense
/// and MultiHeadAttention run through it.
struct EinsumPlan: Sendable, Equatable {
    /// Letters of each operand and of the output, one per axis, batch included.
    let x: [Character]
    let w: [Character]
    let out: [Character]

    /// Parses `x,w->out` with letters only; a `...` on the left of `x` and `out` stands for
    /// `ellipsisRank` axes (fresh letters). Throws on anything einsum would not accept.
    init(_ equation: String, ellipsisRank: Int = 0) throws {
        let parts = equation.replacingOccurrences(of: " ", with: "").split(
            separator: "-", omittingEmptySubsequences: false)
        guard parts.count == 2, parts[1].hasPrefix(">") else {
            throw LayerConfigError("equation '\(equation)' is not of the form 'x,w->out'")
        }
        let operands = parts[0].split(separator: ",", omittingEmptySubsequences: false)
        guard operands.count == 2 else { throw LayerConfigError("equation '\(equation)' needs two operands") }
        let fresh = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZ".prefix(max(0, min(ellipsisRank, 26))))
        func letters(_ s: Substring, ellipsisAllowed: Bool) throws -> [Character] {
            var text = s
            var lead: [Character] = []
            if text.hasPrefix("...") {
                guard ellipsisAllowed else {
                    throw LayerConfigError("equation '\(equation)': '...' where Pare does not take it")
                }
                text = text.dropFirst(3)
                lead = fresh
            }
            let chars = Array(text)
            guard chars.allSatisfy({ $0.isASCII && $0.isLowercase }), Set(chars).count == chars.count else {
                throw LayerConfigError("equation '\(equation)': operands must be distinct lowercase letters")
            }
            return lead + chars
        }
        x = try letters(operands[0], ellipsisAllowed: true)
        w = try letters(operands[1], ellipsisAllowed: false)
        out = try letters(parts[1].dropFirst(), ellipsisAllowed: true)
        guard out.allSatisfy({ x.contains($0) || w.contains($0) }) else {
            throw LayerConfigError("equation '\(equation)': an output letter is in neither operand")
        }
        guard x.count <= 16, w.count <= 16, out.count <= 16 else {
            throw LayerConfigError("equation '\(equation)' has too many axes")
        }
    }

    /// Whether the equation starts with `...` (its rank then follows the input's).
    static func hasEllipsis(_ equation: String) -> Bool {
        equation.replacingOccurrences(of: " ", with: "").hasPrefix("...")
    }

    /// Computes the einsum of `xData` (shape `xShape`) and `wData` (shape `wShape`).
    func apply(_ xData: UnsafeBufferPointer<Float>, xShape: [Int], _ wData: UnsafeBufferPointer<Float>, wShape: [Int])
        throws -> FloatArray
    {
        guard xShape.count == x.count, wShape.count == w.count else {
            throw InterpreterError.badInput("einsum operands of ranks \(xShape.count), \(wShape.count)")
        }
        var size: [Character: Int] = [:]
        for (c, d) in Array(zip(x, xShape)) + Array(zip(w, wShape)) {
            if let s = size[c], s != d { throw InterpreterError.badInput("einsum axis '\(c)' of sizes \(s) and \(d)") }
            size[c] = d
        }
        func strides(_ letters: [Character], _ shape: [Int]) -> [Character: Int] {
            var result: [Character: Int] = [:]
            var s = 1
            for i in stride(from: letters.count - 1, through: 0, by: -1) {
                result[letters[i]] = s
                s *= shape[i]
            }
            return result
        }
        let outShape = out.map { size[$0]! }
        let (xs, ws, os) = (strides(x, xShape), strides(w, wShape), strides(out, outShape))
        let shared = out.filter { x.contains($0) && w.contains($0) }
        let rows = out.filter { x.contains($0) && !w.contains($0) }
        let columns = out.filter { w.contains($0) && !x.contains($0) }
        let summed = (x + w.filter { !x.contains($0) }).filter { !out.contains($0) }
        /// Offsets into x, w and the output of every combination of `letters`, row-major.
        func offsets(_ letters: [Character]) -> (x: [Int], w: [Int], out: [Int]) {
            var result: (x: [Int], w: [Int], out: [Int]) = ([0], [0], [0])
            for c in letters {
                let n = size[c]!
                var next: (x: [Int], w: [Int], out: [Int]) = ([], [], [])
                for i in result.x.indices {
                    for k in 0..<n {
                        next.x.append(result.x[i] + k * (xs[c] ?? 0))
                        next.w.append(result.w[i] + k * (ws[c] ?? 0))
                        next.out.append(result.out[i] + k * (os[c] ?? 0))
                    }
                }
                result = next
            }
            return result
        }
        let (h, r, k, n) = (offsets(shared), offsets(rows), offsets(summed), offsets(columns))
        let (m, kk, nn) = (r.x.count, k.x.count, n.w.count)
        var a = [Float](repeating: 0, count: m * kk)
        var b = [Float](repeating: 0, count: kk * nn)
        var c = [Float](repeating: 0, count: m * nn)
        var y = [Float](repeating: 0, count: outShape.reduce(1, *))
        guard m > 0, nn > 0, kk > 0 else { return FloatArray(shape: outShape, data: y) }
        for hi in h.x.indices {
            for i in 0..<m { for j in 0..<kk { a[i * kk + j] = xData[h.x[hi] + r.x[i] + k.x[j]] } }
            for i in 0..<kk { for j in 0..<nn { b[i * nn + j] = wData[h.w[hi] + k.w[i] + n.w[j]] } }
            multiplyMatrices(a, rows: m, inner: kk, b, columns: nn, into: &c)
            for i in 0..<m { for j in 0..<nn { y[h.out[hi] + r.out[i] + n.out[j]] = c[i * nn + j] } }
        }
        return FloatArray(shape: outShape, data: y)
    }
}
