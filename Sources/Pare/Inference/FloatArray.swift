/// A float32 activation with its batch axis: row-major, channels last (NHWC for images).
public struct FloatArray: Sendable, Equatable {
    public var shape: [Int]
    public var data: [Float]

    public init(shape: [Int], data: [Float]) {
        precondition(shape.reduce(1, *) == data.count, "FloatArray: \(data.count) values for shape \(shape)")
        self.shape = shape
        self.data = data
    }

    public init(zeros shape: [Int]) {
        self.shape = shape
        self.data = [Float](repeating: 0, count: shape.reduce(1, *))
    }

    public var batch: Int { shape.first ?? 1 }
    public var count: Int { data.count }
    /// Elements per example.
    public var exampleSize: Int { shape.dropFirst().reduce(1, *) }

    /// Examples `range` of the batch.
    public func slice(_ range: Range<Int>) -> FloatArray {
        let n = exampleSize
        return FloatArray(
            shape: [range.count] + shape.dropFirst(), data: Array(data[(range.lowerBound * n)..<(range.upperBound * n)])
        )
    }

    /// Concatenates along the batch axis.
    public static func joined(_ parts: [FloatArray]) -> FloatArray {
        guard let first = parts.first else { return FloatArray(zeros: [0]) }
        return FloatArray(
            shape: [parts.reduce(0) { $0 + $1.batch }] + first.shape.dropFirst(), data: parts.flatMap(\.data))
    }
}

extension Tensor {
    /// An NPY array as model input: float32, float64, float16 and integers become float32.
    public func floatArray() throws -> FloatArray {
        FloatArray(shape: shape, data: try floats())
    }
}

extension FloatArray {
    public var tensor: Tensor { Tensor(float32: data, shape: shape) }
}
