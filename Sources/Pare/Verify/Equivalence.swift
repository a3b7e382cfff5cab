import Foundation

/// How far a candidate output is from a reference output.
public struct OutputComparison: Codable, Sendable {
    public var output: String
    public var shape: [Int]
    public var maxAbsError: Double
    /// max |candidate − reference| / max |reference|.
    public var maxRelativeError: Double
    public var cosineSimilarity: Double
    /// Fraction of examples whose top-1 class agrees (argmax, or > 0.5 for one unit); nil for one
    /// value per example… of rank < 2.
    public var top1Agreement: Double?
    public var nonFiniteReference: Int
    public var nonFiniteCandidate: Int
    public var withinTolerance: Bool
}

public enum Equivalence {
    /// Within tolerance when max |c − r| ≤ atol + rtol · max |r| and both are finite at the same places.
    public static func compare(
        name: String, reference r: FloatArray, candidate c: FloatArray, atol: Double, rtol: Double
    ) -> OutputComparison {
        guard r.shape == c.shape else {
            return OutputComparison(
                output: name, shape: c.shape, maxAbsError: .infinity, maxRelativeError: .infinity, cosineSimilarity: 0,
                top1Agreement: nil, nonFiniteReference: 0, nonFiniteCandidate: 0, withinTolerance: false)
        }
        var maxAbs = 0.0
        var scale = 0.0
        var dot = 0.0
        var nr = 0.0
        var nc = 0.0
        var badR = 0
        var badC = 0
        var mismatchedNonFinite = 0
        for i in 0..<r.count {
            let a = Double(r.data[i])
            let b = Double(c.data[i])
            if !a.isFinite { badR += 1 }
            if !b.isFinite { badC += 1 }
            guard a.isFinite, b.isFinite else {
                if !(a.isNaN && b.isNaN) && a != b { mismatchedNonFinite += 1 }
                continue
            }
            maxAbs = max(maxAbs, abs(a - b))
            scale = max(scale, abs(a))
            dot += a * b
            nr += a * a
            nc += b * b
        }
        let cosine = nr == 0 && nc == 0 ? 1 : dot / max((nr * nc).squareRoot(), .leastNormalMagnitude)
        let relative = scale == 0 ? (maxAbs == 0 ? 0 : .infinity) : maxAbs / scale
        return OutputComparison(
            output: name, shape: c.shape, maxAbsError: maxAbs, maxRelativeError: relative,
            cosineSimilarity: cosine, top1Agreement: topOneAgreement(r, c),
            nonFiniteReference: badR, nonFiniteCandidate: badC,
            withinTolerance: mismatchedNonFinite == 0 && maxAbs <= atol + rtol * scale)
    }

    /// Top-1 class per example: argmax over the last axis, or `> 0.5` for a single unit.
    public static func topOne(_ x: FloatArray) -> [Int]? {
        guard x.shape.count == 2, let classes = x.shape.last, classes >= 1 else { return nil }
        return (0..<x.batch).map { b in
            let row = x.data[(b * classes)..<((b + 1) * classes)]
            if classes == 1 { return row.first! > 0.5 ? 1 : 0 }
            var best = row.startIndex
            for i in row.indices where row[i] > row[best] { best = i }
            return best - row.startIndex
        }
    }

    static func topOneAgreement(_ r: FloatArray, _ c: FloatArray) -> Double? {
        guard let a = topOne(r), let b = topOne(c), !a.isEmpty else { return nil }
        return Double(zip(a, b).filter { $0 == $1 }.count) / Double(a.count)
    }
}

/// Summary of one output for `pare run`: range, mean, and how many values are NaN or infinite.
public struct OutputSummary: Codable, Sendable {
    public var output: String
    public var shape: [Int]
    public var min: Float
    public var max: Float
    public var mean: Double
    public var nan: Int
    public var infinite: Int

    public init(name: String, _ x: FloatArray) {
        output = name
        shape = x.shape
        var lo = Float.infinity
        var hi = -Float.infinity
        var sum = 0.0
        var nan = 0
        var inf = 0
        var finite = 0
        for v in x.data {
            if v.isNaN {
                nan += 1
                continue
            }
            if v.isInfinite {
                inf += 1
                continue
            }
            lo = Swift.min(lo, v)
            hi = Swift.max(hi, v)
            sum += Double(v)
            finite += 1
        }
        min = lo
        max = hi
        mean = finite == 0 ? .nan : sum / Double(finite)
        self.nan = nan
        infinite = inf
    }
}

/// Top-1 accuracy against labels (class indices, or one-hot rows), with the confusion matrix.
public struct Evaluation: Codable, Sendable {
    public var examples: Int
    public var classes: Int
    public var correct: Int
    public var accuracy: Double
    /// `confusion[label][predicted]`.
    public var confusion: [[Int]]
    public var binary: Bool

    public static func of(predictions y: FloatArray, labels: Tensor, file: String) throws -> Evaluation {
        guard let predicted = Equivalence.topOne(y) else {
            throw PareError(file: file, "eval needs a model output of shape (N, classes); this one is \(y.shape)")
        }
        let classesOut = y.shape[1]
        let classes = classesOut == 1 ? 2 : classesOut
        try MemoryBudget.require(
            ShapeMath.product([classes, classes, 8]), for: "a confusion matrix of \(classes) classes", file: file)
        let truth = try classIndices(labels, outputs: classesOut, classes: classes, file: file)
        guard truth.count == predicted.count else {
            throw PareError(file: file, "\(truth.count) labels for \(predicted.count) predictions")
        }
        var confusion = [[Int]](repeating: [Int](repeating: 0, count: classes), count: classes)
        for (t, p) in zip(truth, predicted) { confusion[t][p] += 1 }
        let correct = zip(truth, predicted).filter { $0 == $1 }.count
        return Evaluation(
            examples: truth.count, classes: classes, correct: correct,
            accuracy: truth.isEmpty ? 0 : Double(correct) / Double(truth.count), confusion: confusion,
            binary: classesOut == 1)
    }
}

extension Evaluation {
    /// The class of each example, read exactly: one-hot rows (N, classes) by their largest entry,
    /// class indices (N,) or (N, 1) as whole numbers below `classes` (0 or 1 for a one-unit output,
    /// as Keras's binary accuracy compares them). NaN, infinity, fractions such as 3.5 and indices
    /// out of range are errors naming the example, never a trap or a silent truncation.
    static func classIndices(_ labels: Tensor, outputs classesOut: Int, classes: Int, file: String) throws -> [Int] {
        let values = try labels.doubles()
        if labels.shape.count == 2, labels.shape[1] == classesOut, classesOut > 1 {
            return try (0..<labels.shape[0]).map { b in
                let row = values[(b * classesOut)..<((b + 1) * classesOut)]
                guard row.allSatisfy(\.isFinite) else {
                    throw PareError(file: file, object: "example \(b)", "its one-hot label holds NaN or infinity")
                }
                var best = row.startIndex
                for i in row.indices where row[i] > row[best] { best = i }
                return best - row.startIndex
            }
        }
        guard labels.shape.count == 1 || (labels.shape.count == 2 && labels.shape[1] == 1) else {
            throw PareError(
                file: file,
                "labels of shape \(labels.shape) fit neither class indices (N,) nor one-hot rows (N, \(classesOut))")
        }
        return try values.enumerated().map { b, value in
            guard value.isFinite, value.rounded() == value else {
                throw PareError(file: file, object: "example \(b)", "label \(value) is not a whole class index")
            }
            guard value >= 0, value < Double(classes) else {
                let what =
                    classesOut == 1
                    ? "a one-unit (binary) output takes labels 0 and 1" : "the model has \(classes) classes"
                throw PareError(file: file, object: "example \(b)", "label \(value) is out of range: \(what)")
            }
            return Int(value)
        }
    }
}

/// Reproducible uniform [0, 1) inputs (SplitMix64), for checks without data.
public struct RandomInputs {
    private var state: UInt64
    public init(seed: UInt64) { state = seed }

    mutating func next() -> Float {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        z ^= z >> 31
        return Float(z >> 40) / Float(1 << 24)
    }

    /// `batch` random examples for `input`: uniform in [0, 1), or whole ids below its `idLimit`.
    public mutating func array(batch: Int, input: ModelInput, file: String) throws -> FloatArray {
        var x = try array(batch: batch, shape: input.shape, name: input.name, file: file)
        if let limit = input.idLimit {
            for i in x.data.indices { x.data[i] = min((x.data[i] * Float(limit)).rounded(.down), Float(limit - 1)) }
        }
        return x
    }

    public mutating func array(batch: Int, shape: Shape, name: String, file: String) throws -> FloatArray {
        guard shape.allSatisfy({ $0 != nil }) else {
            throw PareError(file: file, object: "input '\(name)'", .openInputShape(describe(shape)))
        }
        let full = [batch] + shape.map { $0! }
        let count = ShapeMath.product(full)
        try MemoryBudget.require(
            count.flatMap { ShapeMath.product([$0, 4]) }, for: "\(batch) random examples of input '\(name)'",
            file: file)
        return FloatArray(shape: full, data: (0..<(count ?? 0)).map { _ in next() })
    }
}
