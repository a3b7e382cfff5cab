import Foundation
import XCTest

@testable import Pare

/// Magnitude sparsification ranks one kernel at a time with histograms and leaves deferred edits:
/// it must zero exactly the elements a full sort by (|w|, tensor, index) picks, and a model read
/// from a file must come out with the same bytes as the same model held in memory.
final class StreamedSparsityTests: XCTestCase {
    /// The reference: sort every (score, tensor, index) by the values `floats()` reads and take the first
    /// round(s·N).
    func sortedLowest(_ tensors: [[Float]], sparsity: Double) -> [Set<Int>] {
        var all: [(UInt32, Int, Int)] = []
        for (t, values) in tensors.enumerated() {
            for (i, v) in values.enumerated() { all.append((v.bitPattern & 0x7FFF_FFFF, t, i)) }
        }
        let k = Int((sparsity * Double(all.count)).rounded())
        var chosen = [Set<Int>](repeating: [], count: tensors.count)
        for e in all.sorted(by: { ($0.0, $0.1, $0.2) < ($1.0, $1.1, $1.2) }).prefix(k) { chosen[e.1].insert(e.2) }
        return chosen
    }

    /// Values with many ties, equal magnitudes of both signs, exact and negative zeros, and (unless
    /// `finite`) NaN and infinities: all exactly representable in float16 and bfloat16.
    func values(_ n: Int, seed: UInt64, finite: Bool = false) -> [Float] {
        var state = seed
        return (0..<n).map { _ in
            state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            let r = Int(state >> 33) % 31
            switch r {
            case 0: return 0
            case 1: return -0.0
            case 2: return finite ? 0.5 : .nan
            case 3: return finite ? 2 : .infinity
            case 4: return finite ? -2 : -.infinity
            default: return Float(r % 5) * 0.25 * (r / 5 % 2 == 0 ? 1 : -1) + Float(r % 3) * 0.0078125
            }
        }
    }

    func tensor(_ v: [Float], _ dtype: DType) -> Tensor {
        var bytes: [UInt8] = []
        for x in v {
            switch dtype {
            case .float16: withUnsafeBytes(of: Float16(x).bitPattern.littleEndian) { bytes += $0 }
            case .bfloat16: withUnsafeBytes(of: UInt16(x.bitPattern >> 16).littleEndian) { bytes += $0 }
            case .float64: withUnsafeBytes(of: Double(x).bitPattern.littleEndian) { bytes += $0 }
            default: withUnsafeBytes(of: x.bitPattern.littleEndian) { bytes += $0 }
            }
        }
        return Tensor(dtype: dtype, shape: [v.count], bytes: bytes)
    }

    /// Exactly the chosen elements that were not zero become zero bytes; every other byte is kept.
    func assertZeroes(_ t: Tensor, _ cutoff: LowestScores.Cutoff?, chosen: Set<Int>, _ label: String) throws {
        let before = try t.bytes()
        let after = try cutoff.map(t.zeroingLowest)?.bytes() ?? before
        let size = t.dtype.byteCount
        var expected = before
        before.withUnsafeBytes { raw in
            for i in chosen where !Tensor.isZero(raw, i, t.dtype) {
                for k in 0..<size { expected[i * size + k] = 0 }
            }
        }
        XCTAssertEqual(after, expected, label)
    }

    func testPerTensorCutoffsZeroWhatASortPicksInEveryFloatType() throws {
        let cases: [(Int, Double)] = [(0, 0.5), (1, 0.6), (10, 0.5), (10, 0.97), (333, 0.1), (333, 0.5), (1000, 0.93)]
        for dtype in [DType.float32, .float16, .bfloat16, .float64] {
            for (n, sparsity) in cases {
                let t = tensor(values(n, seed: UInt64(n)), dtype)
                let read = try t.floats()
                let cutoff = LowestScores.perTensor(read, sparsity: sparsity)
                let chosen = sortedLowest([read], sparsity: sparsity)[0]
                XCTAssertEqual(chosen.count, Int((sparsity * Double(n)).rounded()))
                try assertZeroes(t, cutoff, chosen: chosen, "\(dtype) n \(n) s \(sparsity)")
            }
        }
    }

    /// Without NaN (whose order the sort it replaces left undefined), the zeros are those of the sort
    /// by (|w|, index) that magnitude sparsification used before it streamed.
    func testTheZerosAreThoseOfTheSortItReplaced() throws {
        let v = values(2000, seed: 9, finite: true)
        for sparsity in [0.2, 0.5, 0.8] {
            let before = MagnitudeSparsifier.lowest(v.map(abs), shape: [2000], sparsity: sparsity, perOutput: false)
            try assertZeroes(
                tensor(v, .float32), LowestScores.perTensor(v, sparsity: sparsity), chosen: Set(before), "s \(sparsity)"
            )
        }
    }

    func testGlobalCutoffsSplitTiesInTensorOrder() throws {
        for dtype in [DType.float32, .float16, .float64] {
            let tensors = [values(500, seed: 1), [], values(70, seed: 2), values(1200, seed: 3)].map {
                tensor($0, dtype)
            }
            let read = try tensors.map { try $0.floats() }
            for sparsity in [0.05, 0.3, 0.61, 0.9, 0.9999] {
                let chosen = sortedLowest(read, sparsity: sparsity)
                let cutoffs = try LowestScores.global(tensors, sparsity: sparsity)
                XCTAssertEqual(cutoffs.count, tensors.count)
                for t in tensors.indices {
                    try assertZeroes(tensors[t], cutoffs[t], chosen: chosen[t], "\(dtype) s \(sparsity) tensor \(t)")
                }
            }
        }
    }

    func testFileModelsSparsifyIntoDeferredEditsWithTheBytesOfInMemoryOnes() throws {
        let model = try ModelFile.read(Fixtures.path("mnist_cnn/keras3.h5"))
        var resident = model
        for l in resident.layers.indices {
            for w in resident.layers[l].weights.indices {
                let t = resident.layers[l].weights[w].tensor
                resident.layers[l].weights[w].tensor = Tensor(dtype: t.dtype, shape: t.shape, bytes: try t.bytes())
            }
        }
        for global in [false, true] {
            let streamed = try MagnitudeSparsifier.sparsify(model, sparsity: 0.7, global: global, layers: nil)
            let held = try MagnitudeSparsifier.sparsify(resident, sparsity: 0.7, global: global, layers: nil)
            XCTAssertEqual(streamed.rows.map(\.zeros), held.rows.map(\.zeros))
            XCTAssertEqual(streamed.rows.count, 5)
            for (a, b) in zip(streamed.model.layers, held.model.layers) {
                for (wa, wb) in zip(a.weights, b.weights) {
                    XCTAssertTrue(wa.tensor.isDeferred, "\(global) \(wa.name)")
                    XCTAssertEqual(try wa.tensor.bytes(), try wb.tensor.bytes(), "\(global) \(wa.name)")
                }
            }
            let zeros = streamed.rows.reduce(0) { $0 + $1.zeros }
            let total = streamed.rows.reduce(0) { $0 + $1.count }
            XCTAssertEqual(Double(zeros) / Double(total), 0.7, accuracy: global ? 1e-5 : 1e-3)
        }
    }
}
