/// The elements of a row-major array grouped by their coordinates outside a set of axes: each group
/// is what one reduction over those axes reads (a LayerNormalization's statistics, a softmax over
/// several axes). Element `j` of group `g` is at `outerBase[g] + innerOffset[j]`, with `j` counting
/// the reduced axes' coordinates in row-major order (the index into a weight shaped like them).
struct AxisGroups {
    let outerBase: [Int]
    let innerOffset: [Int]

    /// `shape` includes the batch axis; `axes` are indices into it, and must not include 0.
    init(shape: [Int], axes: Set<Int>) {
        var strides = [Int](repeating: 1, count: shape.count)
        for d in stride(from: shape.count - 2, through: 0, by: -1) { strides[d] = strides[d + 1] * shape[d + 1] }
        func offsets(_ dims: [Int]) -> [Int] {
            var result = [0]
            for d in dims {
                var next: [Int] = []
                next.reserveCapacity(result.count * shape[d])
                for base in result {
                    for k in 0..<shape[d] { next.append(base + k * strides[d]) }
                }
                result = next
            }
            return result
        }
        outerBase = offsets(shape.indices.filter { !axes.contains($0) })
        innerOffset = offsets(shape.indices.filter { axes.contains($0) })
    }

    var groupCount: Int { outerBase.count }
    var groupSize: Int { innerOffset.count }
}

/// Normalization axes as Keras configs give them (an int or a list, negative from the end,
/// positive counting the batch axis), resolved against a per-example rank.
struct NormalizedAxes: Sendable, Equatable {
    let raw: [Int]

    /// Reads `key` (default `axis`): an int or a non-empty list of distinct ints.
    init(config: LayerConfig, key: String = "axis", fallback: [Int] = [-1]) throws {
        guard let value = config[key], !value.isNull else {
            raw = fallback
            return
        }
        let list = value.arrayValue ?? [value]
        let ints = list.compactMap { $0.intValue }.filter { (-64...64).contains($0) }
        guard !ints.isEmpty, ints.count == list.count else { throw LayerConfigError("\(key) must be axes") }
        raw = ints
    }

    /// The axes as indices into a per-example shape of `rank` (batch excluded), sorted; throws if
    /// one is the batch axis, outside the input, or repeated.
    func resolved(rank: Int) throws -> [Int] {
        let axes = raw.map { $0 < 0 ? rank + 1 + $0 : $0 }
        guard rank >= 1, axes.allSatisfy({ $0 >= 1 && $0 <= rank }) else {
            throw LayerConfigError("axis \(raw) is outside a rank-\(rank + 1) input (or the batch axis)")
        }
        guard Set(axes).count == axes.count else { throw LayerConfigError("axis \(raw) repeats an axis") }
        return axes.sorted().map { $0 - 1 }
    }
}

/// For each element of an array shaped `target` (row-major), the index of the element of an array
/// shaped `source` that broadcasting gives it: axes aligned from the end, size-1 axes repeated.
/// `source` must broadcast to `target` (callers check).
func broadcastIndices(from source: [Int], to target: [Int]) -> [Int] {
    let aligned = [Int](repeating: 1, count: max(0, target.count - source.count)) + source.suffix(target.count)
    let total = target.reduce(1, *)
    var indices = [Int](repeating: 0, count: total)
    for flat in 0..<total {
        var rem = flat
        var index = 0
        var step = 1
        for d in stride(from: target.count - 1, through: 0, by: -1) {
            let coord = rem % target[d]
            rem /= target[d]
            index += (aligned[d] == 1 ? 0 : coord) * step
            step *= aligned[d]
        }
        indices[flat] = index
    }
    return indices
}
