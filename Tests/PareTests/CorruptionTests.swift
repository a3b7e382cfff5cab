import Foundation
import HDF5
import XCTest

@testable import Pare

/// Every fixture, damaged in the ways files get damaged: each gives an error naming the file, or
/// (where the damage only changes weight values, which HDF5 does not checksum) a readable model —
/// never a crash. `CLITests.testCorruptFilesExitOneNeverCrash` checks the exit statuses.
final class CorruptionTests: XCTestCase {
    var dir: URL!
    override func setUpWithError() throws { dir = try temporaryDirectory() }
    override func tearDownWithError() throws { try? FileManager.default.removeItem(at: dir) }
    func path(_ name: String) -> String { dir.appendingPathComponent(name).path }

    /// Every model file of the fixtures, plus .pare packs of a few (the suite makes those).
    func corpus() throws -> [String] {
        var files = Fixtures.legacyH5 + (Fixtures.models + ["bf16"]).map { Fixtures.path("\($0)/model.keras") }
        files += [
            Fixtures.path("plain/state_dict.h5"), Fixtures.path("residual/model.weights.h5"),
            Fixtures.path("bf16/keras3.h5"),
        ]
        for (i, source) in ["residual/keras3.h5", "siamese/model.keras", "plain/state_dict.h5"].enumerated() {
            let out = path("packed\(i).pare")
            try ModelFile.write(
                try ModelFile.read(Fixtures.path(source)), to: out, options: .init(deflateLevel: i == 1 ? 6 : nil))
            files.append(out)
        }
        return files
    }

    /// Reads everything a command would read; returns the error, or nil if the file reads.
    func outcome(_ file: String) -> Error? {
        do {
            let model = try ModelFile.read(file)
            _ = try Inspection.of(model)
            for w in model.layers.flatMap(\.weights) { _ = try w.tensor.bytes() }
            for node in [model.optimizer].compactMap({ $0 }) + model.rootExtras {
                for dataset in node.datasets() { _ = try dataset.tensor.bytes() }
            }
            return nil
        } catch {
            return error
        }
    }

    func assertClearError(_ file: String, _ context: String, line: UInt = #line) {
        guard let error = outcome(file) else { return XCTFail("\(context): read without an error", line: line) }
        XCTAssertTrue(error is PareError, "\(context): \(type(of: error)): \(error)", line: line)
        XCTAssertTrue("\(error)".hasPrefix(file), "\(context): \(error)", line: line)
    }

    func testTruncationAtManyOffsetsIsAnErrorNamingTheFile() throws {
        for source in try corpus() {
            let bytes = try Data(contentsOf: URL(fileURLWithPath: source))
            let ext = URL(fileURLWithPath: source).pathExtension
            let cuts = Set(
                [0, 1, 7, 8, 64, 511, 512, 2048] + (1..<12).map { bytes.count * $0 / 12 } + [bytes.count - 1])
            for cut in cuts.sorted() where cut < bytes.count {
                let file = path("cut.\(ext)")
                try bytes.prefix(cut).write(to: URL(fileURLWithPath: file))
                assertClearError(file, "\(source) cut at \(cut) of \(bytes.count)")
            }
        }
    }

    /// In process, only for the formats with checksums: libhdf5 1.10 itself can crash on corrupt
    /// metadata, which the CLI survives by probing HDF5 inputs in a child process first
    /// (`CLITests.testCorruptFilesExitOneNeverCrash` flips bytes of HDF5 files).
    func testByteFlipsInChecksummedFormatsAreAlwaysNoticed() throws {
        var generator = SystemRandomNumberGenerator()
        let seed = UInt64.random(in: 0...UInt64.max, using: &generator)
        var rng = RandomInputs(seed: seed)
        var errors = 0
        var reads = 0
        for source in try corpus() where source.hasSuffix(".pare") || source.hasSuffix(".keras") {
            let original = [UInt8](try Data(contentsOf: URL(fileURLWithPath: source)))
            let ext = URL(fileURLWithPath: source).pathExtension
            for _ in 0..<16 {
                var bytes = original
                let at = min(bytes.count - 1, Int(rng.next() * Float(bytes.count)))
                bytes[at] ^= UInt8(1 << Int(rng.next() * 8))
                let file = path("flip.\(ext)")
                try Data(bytes).write(to: URL(fileURLWithPath: file))
                if let error = outcome(file) {
                    errors += 1
                    XCTAssertTrue(
                        error is PareError && "\(error)".hasPrefix(file),
                        "\(source) flip at \(at) (seed \(seed)): \(error)")
                } else {
                    reads += 1
                    // .pare checksums every byte: an unnoticed flip is a defect. (A .keras flip can land in
                    // a zip field nothing reads, such as a timestamp.)
                    XCTAssertFalse(ext == "pare", "\(source): flip at \(at) went unnoticed (seed \(seed))")
                }
            }
        }
        XCTAssertGreaterThan(errors, 0)
        print("byte flips: \(errors) errors, \(reads) files still read, seed \(seed)")
    }

    /// Copies a legacy fixture and edits it with libhdf5.
    func edited(_ source: String, _ name: String, _ edit: (HDF5Group) throws -> Void) throws -> String {
        let file = path(name)
        try? FileManager.default.removeItem(atPath: file)
        try FileManager.default.copyItem(atPath: Fixtures.path(source), toPath: file)
        let h5 = try HDF5File.open(file, writable: true)
        try edit(try h5.root())
        try h5.close()
        return file
    }

    func testSwappedShapesWrongDtypesAndDeletedAttributesAreNamed() throws {
        // A kernel stored with its shape reversed (same bytes).
        let name = try XCTUnwrap(
            try ModelFile.read(Fixtures.path("mnist_cnn/keras3.h5")).layer(named: "conv2d_1")?.weights[0].name)
        let swapped = try edited("mnist_cnn/keras3.h5", "swapped.h5") { root in
            let group = try root.group("model_weights/conv2d_1")
            let d = try group.dataset(name)
            let (shape, bytes) = (try d.shape(), try d.readBytes())
            try group.deleteLink(name)
            try group.createDataset(name, type: .float(bits: 32), shape: shape.reversed(), bytes: bytes)
        }
        assertClearError(swapped, "reversed kernel shape")
        XCTAssertTrue("\(outcome(swapped)!)".contains("conv2d_1"), "\(outcome(swapped)!)")
        // A kernel stored as int32.
        let ints = try edited("residual/keras3.h5", "ints.h5") { root in
            let group = try root.group("model_weights/stem")
            let d = try group.dataset("stem/kernel")
            let (shape, bytes) = (try d.shape(), try d.readBytes())
            try group.deleteLink("stem/kernel")
            try group.createDataset("stem/kernel", type: .signed(bits: 32), shape: shape, bytes: bytes)
        }
        assertClearError(ints, "int32 kernel")
        XCTAssertTrue("\(outcome(ints)!)".contains("must be floating point"), "\(outcome(ints)!)")
        // A layer's weight_names deleted: its weights are gone for the architecture.
        let noNames = try edited("residual/keras3.h5", "nonames.h5") {
            try $0.group("model_weights/block_conv").deleteAttribute("weight_names")
        }
        assertClearError(noNames, "deleted weight_names")
        // layer_names deleted from a full model.
        let noLayers = try edited("siamese/keras3.h5", "nolayers.h5") {
            try $0.group("model_weights").deleteAttribute("layer_names")
        }
        assertClearError(noLayers, "deleted layer_names")
        // A dataset listed in weight_names but missing.
        let missing = try edited("siamese/tfkeras2.h5", "missing.h5") {
            try $0.group("model_weights/head").deleteLink("head/bias:0")
        }
        assertClearError(missing, "missing dataset")
        // model_config that is not JSON.
        let badConfig = try edited("mnist_cnn/keras3_weights.h5", "badconfig.h5") {
            try $0.setAttribute("model_config", .string("{\"class_name\": "))
        }
        XCTAssertNotNil(outcome(badConfig))
        // bfloat16 without its dtype attribute in a Keras 3 weights file: an opaque type Pare will not guess.
        let noDtype = try edited("bf16/model.weights.h5", "nodtype.weights.h5") {
            try $0.dataset("layers/conv2d/vars/0").deleteAttribute("dtype")
        }
        let config = try ModelFile.readArchitecture(Fixtures.path("bf16/model.keras"))
        XCTAssertThrowsError(try ModelFile.read(noDtype, architecture: config)) { error in
            XCTAssertTrue("\(error)".hasPrefix(noDtype) && "\(error)".contains("opaque"), "\(error)")
        }
        // A Keras 3 variable deleted: the weights no longer match the architecture.
        let fewer = try edited("residual/model.weights.h5", "fewer.weights.h5") {
            try $0.group("layers/batch_normalization/vars").deleteLink("3")
        }
        XCTAssertThrowsError(
            try ModelFile.read(
                fewer, architecture: try ModelFile.readArchitecture(Fixtures.path("residual/model.keras")))
        ) { error in
            XCTAssertTrue("\(error)".contains("layers/batch_normalization/vars"), "\(error)")
        }
    }
}
