import Foundation
import XCTest

@testable import Pare

/// Weights read from a file stream: masked and pruned models are deferred edits of the file's
/// tensors, and an interpreter that reads each layer's weights at its call computes exactly what one
/// holding them all does.
final class StreamingTests: XCTestCase {
    func load(_ p: String) throws -> Model { try ModelFile.read(Fixtures.path(p)) }
    func npy(_ p: String) throws -> FloatArray { try NPY.read(Fixtures.path(p)).floatArray() }

    func testStreamedWeightsComputeExactlyWhatResidentOnesDo() throws {
        for model in ["mnist_cnn", "residual"] {
            let m = try load("\(model)/keras3.h5")
            let x = [try npy("data/mnist_x.npy")]
            let resident = try Interpreter(m, streamingWeights: false)
            let streamed = try Interpreter(m, streamingWeights: true)
            XCTAssertFalse(resident.streamsWeights, model)
            XCTAssertTrue(streamed.streamsWeights, model)
            // A streamed model runs layer by layer (a tile would read every weight again); the resident one
            // does too here, so that both sum in the same order (a GEMM over a tile's rows may not).
            XCTAssertNil(streamed.tilePlan, model)
            resident.tilePlan = nil
            // Several batches: a streamed layer reads its weights again at every call.
            let a = try resident.run(x, batchSize: 50)
            let b = try streamed.run(x, batchSize: 50)
            XCTAssertEqual(a.map(\.shape), b.map(\.shape), model)
            XCTAssertEqual(a.map(\.data), b.map(\.data), model)
        }
    }

    /// Read into memory, and mapped from the file (as the command line reads).
    func testEditsOfFileTensorsAreDeferredAndEqualEditsOfBytesInMemory() throws {
        defer { MappedReads.enabled = false }
        for mapped in [false, true] {
            MappedReads.enabled = mapped
            try checkEditsOfFileTensors()
        }
    }

    /// Mapped bytes are the bytes read, and an edit's array is no larger than its result.
    func testMappedBytesAreTheBytesReadAndEditsHoldOnlyTheirResult() throws {
        defer { MappedReads.enabled = false }
        let model = try load("mnist_cnn/keras3.h5")
        let kernel = try XCTUnwrap(model.layer(named: "conv2d_1")?.weights.first?.tensor)
        let read = try kernel.bytes()
        MappedReads.enabled = true
        var lent: UnsafeRawPointer?
        XCTAssertEqual(
            try kernel.withBytes { raw in
                lent = raw.baseAddress
                return Array(raw)
            }, read)
        XCTAssertEqual(try kernel.withFloats { Array($0) }, try kernel.floats())
        // Not an array of this process's: the page cache's pages, mapped.
        let copy = try kernel.bytes()
        copy.withUnsafeBytes { XCTAssertNotEqual($0.baseAddress, lent) }
        for mapped in [false, true] {
            MappedReads.enabled = mapped
            let small = try kernel.sliced(axis: 3, keep: [0, 5]).sliced(axis: 2, keep: [1])
            let values = try small.floats()
            XCTAssertEqual(values.count, kernel.shape[0] * kernel.shape[1] * 1 * 2)
            XCTAssertLessThan(values.capacity, 1024, "mapped \(mapped)")
            XCTAssertLessThan(try small.bytes().capacity, 4096, "mapped \(mapped)")
        }
        XCTAssertThrowsError(try kernel.sliced(axis: 3, keep: [1, 1]))
    }

    func checkEditsOfFileTensors() throws {
        let kernel = try XCTUnwrap(try load("mnist_cnn/keras3.h5").layer(named: "conv2d")?.weights.first?.tensor)
        XCTAssertEqual(kernel.shape, [5, 5, 1, 32])
        XCTAssertTrue(kernel.isDeferred)
        let inMemory = Tensor(dtype: kernel.dtype, shape: kernel.shape, bytes: try kernel.bytes())
        XCTAssertFalse(inMemory.isDeferred)
        // Axis 3 copies single floats; axis 0 and 1 copy runs of bytes; zeroing covers both paths too.
        let edits: [(String, (Tensor) throws -> Tensor)] = [
            ("slice filters", { try $0.sliced(axis: 3, keep: [0, 3, 5, 31]) }),
            ("slice rows", { try $0.sliced(axis: 0, keep: [2, 0]) }),
            ("zero filters", { try $0.zeroed(axis: 3, indices: [1, 30, 99]) }),
            ("zero columns", { try $0.zeroed(axis: 1, indices: [1]) }),
            ("slice then zero", { try $0.sliced(axis: 3, keep: [4, 8, 9]).zeroed(axis: 3, indices: [1]) }),
            // A pruned kernel: output channels then input rows, both compacted in the buffer read into.
            ("slice filters then rows", { try $0.sliced(axis: 3, keep: [1, 2, 30]).sliced(axis: 0, keep: [0, 4]) }),
            ("zero then slice", { try $0.zeroed(axis: 3, indices: [2]).sliced(axis: 3, keep: [2, 3]) }),
        ]
        // A tensor whose loader returns its bytes (the third kind of source): edited in the loaded array.
        let kernelBytes = try kernel.bytes()
        let loaded = Tensor(dtype: kernel.dtype, shape: kernel.shape, load: { kernelBytes })
        for (name, edit) in edits {
            let deferred = try edit(kernel)
            let eager = try edit(inMemory)
            let fromLoader = try edit(loaded)
            XCTAssertTrue(deferred.isDeferred, name)
            XCTAssertFalse(eager.isDeferred, name)
            XCTAssertEqual(deferred.shape, eager.shape, name)
            XCTAssertEqual(try deferred.bytes(), try eager.bytes(), name)
            XCTAssertEqual(try deferred.floats(), try eager.floats(), name)
            XCTAssertEqual(try fromLoader.bytes(), try eager.bytes(), name)
            XCTAssertEqual(try fromLoader.floats(), try eager.floats(), name)
        }
        // Values checked against indexing, not only against the other path: kernel[r, c, 0, f] at
        // ((r * 5 + c) * 1 + 0) * 32 + f.
        let original = try kernel.floats()
        let pruned = try edits[5].1(kernel).floats()
        var expected: [Float] = []
        for r in [0, 4] { for c in 0..<5 { for f in [1, 2, 30] { expected.append(original[(r * 5 + c) * 32 + f]) } } }
        XCTAssertEqual(pruned, expected)
        // Zeroed filters really are zero, the others untouched.
        let zeroed = try kernel.zeroed(axis: 3, indices: [1]).floats()
        for (i, v) in zeroed.enumerated() { XCTAssertEqual(v, i % 32 == 1 ? 0 : original[i]) }
        XCTAssertThrowsError(try kernel.sliced(axis: 3, keep: [32]))
        XCTAssertThrowsError(try kernel.sliced(axis: 4, keep: [0]))
    }

    /// A file tensor's memory-budget check runs before its bytes are allocated, and so does an edit of it:
    /// the edit's output is not allocated (nor the source read) when the source may not be. The tensor
    /// claims 4 TiB: allocating an edit's output first would fail in the allocator, not with this error.
    func testAnEditRunsTheSourcesBudgetCheckBeforeAllocating() throws {
        final class Calls: @unchecked Sendable {
            private let lock = NSLock()
            private var count = 0
            func add() { lock.withLock { count += 1 } }
            var value: Int { lock.withLock { count } }
        }
        let fills = Calls()
        let refused = Tensor(
            dtype: .float32, shape: [1 << 38, 4], allow: { throw PareError(file: "big.h5", "over the memory budget") },
            fill: { _ in fills.add() })
        for edited in [try refused.sliced(axis: 1, keep: [0, 1]), try refused.zeroed(axis: 0, indices: [1])] {
            XCTAssertThrowsError(try edited.bytes()) { XCTAssertTrue("\($0)".contains("big.h5"), "\($0)") }
            XCTAssertThrowsError(try edited.floats())
        }
        XCTAssertEqual(fills.value, 0)
    }

    /// An archive's weights above the in-memory limit are read from a temporary copy, tensor by tensor:
    /// the same model as from memory, read after the copy's name is gone, and nothing left behind.
    func testLargeArchiveWeightsAreReadFromATemporaryCopyLeftNowhere() throws {
        let temporary = FileManager.default.temporaryDirectory.path
        func copies() throws -> Set<String> {
            Set(try FileManager.default.contentsOfDirectory(atPath: temporary).filter { $0.hasPrefix("pare-weights-") })
        }
        let before = try copies()
        let path = Fixtures.path("mnist_cnn/model.keras")
        let inMemory = try KerasArchive.read(path: path)
        let stagedReads = KerasArchive.stagedReads
        let staged = try KerasArchive.read(path: path, inMemoryLimit: 0)
        XCTAssertEqual(KerasArchive.stagedReads, stagedReads + 1)
        XCTAssertEqual(try copies(), before)
        XCTAssertEqual(staged.layers.map(\.name), inMemory.layers.map(\.name))
        var count = 0
        for (a, b) in zip(staged.layers, inMemory.layers) {
            for (wa, wb) in zip(a.weights, b.weights) {
                // Read from the file (the unlinked copy), not held: the deferred source.
                XCTAssertTrue(wa.tensor.isDeferred, wa.name)
                XCTAssertEqual(try wa.tensor.bytes(), try wb.tensor.bytes(), wa.name)
                count += 1
            }
        }
        XCTAssertEqual(count, 10)
        let x = [try npy("data/mnist_x.npy")]
        XCTAssertEqual(
            try Interpreter(staged).run(x, batchSize: 100).map(\.data),
            try Interpreter(inMemory).run(x, batchSize: 100).map(\.data))
    }

    /// The probe's copy: staged once for a path, reused by the read (which removes it), or discarded.
    func testAStagedCopyIsReadOnceOrDiscarded() throws {
        let path = Fixtures.path("mnist_cnn/model.keras")
        let copy = try XCTUnwrap(try KerasArchive.stagedWeights(path: path, inMemoryLimit: 0))
        XCTAssertTrue(FileManager.default.fileExists(atPath: copy))
        XCTAssertEqual(try KerasArchive.stagedWeights(path: path, inMemoryLimit: 0), copy)
        XCTAssertNil(try KerasArchive.stagedWeights(path: path))  // under the default limit: from memory
        KerasArchive.discardStaged(path: path)
        XCTAssertFalse(FileManager.default.fileExists(atPath: copy))
        let again = try XCTUnwrap(try KerasArchive.stagedWeights(path: path, inMemoryLimit: 0))
        let reads = KerasArchive.stagedReads
        let model = try KerasArchive.read(path: path, inMemoryLimit: 0)
        XCTAssertEqual(KerasArchive.stagedReads, reads + 1)
        XCTAssertFalse(FileManager.default.fileExists(atPath: again))
        XCTAssertEqual(model.layers.flatMap(\.weights).count, 10)
    }
}
