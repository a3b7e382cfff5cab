/// Which positions of a value are real, as a Keras mask says: one flag per example and position of
/// every axis but the last (batch × steps for a sequence). `Embedding(mask_zero=True)` and `Masking`
/// make masks; recurrent layers skip masked steps and GlobalAveragePooling1D leaves them out.
public struct StepMask: Sendable, Equatable {
    /// The value's shape without its last axis, batch first.
    public var shape: [Int]
    public var keep: [Bool]

    public init(shape: [Int], keep: [Bool]) {
        precondition(shape.reduce(1, *) == keep.count, "StepMask: \(keep.count) flags for shape \(shape)")
        self.shape = shape
        self.keep = keep
    }

    /// Every position kept, for a value of shape `valueShape` (batch first).
    init(allKept valueShape: [Int]) {
        let shape = Array(valueShape.dropLast())
        self.init(shape: shape, keep: [Bool](repeating: true, count: shape.reduce(1, *)))
    }

    /// tf.keras 2's and Keras 2's merge of masks: a position is kept where every input that has a
    /// mask keeps it; no mask if none has one.
    static func intersection(_ masks: [StepMask?]) -> StepMask? {
        let present = masks.compactMap { $0 }
        guard var merged = present.first else { return nil }
        for other in present.dropFirst() {
            // Unreachable: merged inputs have one shape, and LayerOp checks every mask against its value.
            guard other.shape == merged.shape else { return nil }
            for i in merged.keep.indices { merged.keep[i] = merged.keep[i] && other.keep[i] }
        }
        return merged
    }

    /// Keras 3's merge of masks (`Add`, `Multiply`, …): no mask unless every input has one, then a
    /// position is kept where any input keeps it. Masks of merged inputs have the same shape.
    static func union(_ masks: [StepMask?]) -> StepMask? {
        guard !masks.isEmpty, masks.allSatisfy({ $0 != nil }) else { return nil }
        var merged = masks[0]!
        for case let other? in masks.dropFirst() {
            // Unreachable: merged inputs have one shape, and LayerOp checks every mask against its value.
            guard other.shape == merged.shape else { return nil }
            for i in merged.keep.indices { merged.keep[i] = merged.keep[i] || other.keep[i] }
        }
        return merged
    }
}

/// What one layer call produces: its outputs and their masks (nil where there is none).
public struct LayerResult {
    public var values: [FloatArray]
    public var masks: [StepMask?]

    public init(values: [FloatArray], masks: [StepMask?]) {
        self.values = values
        self.masks = masks
    }
}
