import Foundation
import XCTest

@testable import Pare

/// Magnitude sparsification ranks one kernel at a time with histograms and leaves deferred edits:
/// it must zero exactly the elements a full sort by (|w|, tensor, index) picks, and a model read
/// from a file must come out with the same bytes as the same model held in memory.
final class StreamedSparsityTests: XCTestCase {
    /// The reference: sort every (score, tensor, index) and take the first round(s·N).
    func sortedLowest(_ tensors: [[Float]], sparsity: Double) -> Set<[Int]> {
        var all: [(UInt32, Int, Int)] = []
        for (t, values) in tensors.enumerated() {
            for (i, v) in values.enumerated() { all.append((v.bitPattern & 0x7FFF_FFFF, t, i)) }
        }
        let k = Int((sparsity * Double(all.count)).rounded())
        return Set(all.sorted { ($0.0, $0.1, $0.2) < ($1.0, $1.1, $1.2) }.prefix(k).map { [$0.1, $0.2] })
    }

    /// Values with many ties (a few distinct magnitudes of both signs), exact and negative zeros.
    func values(_ n: Int, seed: UInt64) -> [Float] {
        var state = seed
        return (0..<n).map { _ in
            state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            let r = Int(state >> 33) % 23
            return r == 0 ? 0 : r == 1 ? -0.0 : Float(r % 7) * (r % 2 == 0 ? 0.25 : -0.25) + Float(r) * 1e-7
        }
    }

    func testPerTensorCutoffsZeroWhatASortPicks() throws {
        for (n, sparsity) in [(1, 0.6), (10, 0.5), (333, 0.1), (333, 0.5), (1000, 0.93), (1000, 0.0)] {
            let v = values(n, seed: UInt64(n))
            let tensor = Tensor(float32: v, shape: [n])
            let cutoff = LowestScores.perTensor(v, sparsity: sparsity)
            let after = try cutoff.map(tensor.zeroingLowest)?.floats() ?? v
            let expected = sortedLowest([v], sparsity: sparsity)
            for i in 0..<n {
                XCTAssertEqual(after[i] == 0, expected.contains([0, i]) || v[i] == 0, "n \(n) s \(sparsity) i \(i)")
                if !expected.contains([0, i]) { XCTAssertEqual(after[i].bitPattern, v[i].bitPattern) }
            }
            let zeros = after.filter { $0 == 0 }.count
            XCTAssertEqual(zeros, max(expected.count, v.filter { $0 == 0 }.count), "n \(n) s \(sparsity)")
        }
    }

    func testGlobalCutoffsSplitTiesInTensorOrder() throws {
        let tensors = [values(500, seed: 1), values(70, seed: 2), values(1200, seed: 3)]
        for sparsity in [0.05, 0.3, 0.61, 0.9] {
            let expected = sortedLowest(tensors, sparsity: sparsity)
            let cutoffs = try LowestScores.global(
                tensors.map { Tensor(float32: $0, shape: [$0.count]) }, sparsity: sparsity)
            XCTAssertEqual(cutoffs.count, 3)
            var chosen = 0
            for (t, v) in tensors.enumerated() {
                let after =
                    try cutoffs[t].map { try Tensor(float32: v, shape: [v.count]).zeroingLowest($0) }?
                    .floats() ?? v
                // Every changed element was picked; zeros stay zero (their bytes too).
                for i in v.indices where after[i] != v[i] {
                    XCTAssertTrue(expected.contains([t, i]), "s \(sparsity) t \(t) i \(i)")
                }
                for i in v.indices where expected.contains([t, i]) {
                    XCTAssertEqual(after[i], 0, "s \(sparsity) t \(t) i \(i)")
                    chosen += 1
                }
                for i in v.indices where v[i] == 0 { XCTAssertEqual(after[i].bitPattern, v[i].bitPattern) }
            }
            XCTAssertEqual(chosen, Int((sparsity * Double(tensors.map(\.count).reduce(0, +))).rounded()))
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
