import Foundation
import XCTest

/// Runs the built `pare` binary as a user would.
final class CLITests: XCTestCase {
    static let repo = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent()

    var binary: String {
        let besideTests = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
            .appendingPathComponent("pare").path
        let candidates = [besideTests, Self.repo.appendingPathComponent(".build/debug/pare").path]
        return candidates.first { FileManager.default.isExecutableFile(atPath: $0) } ?? candidates.last!
    }

    func pare(_ arguments: String...) throws -> (status: Int32, stdout: String, stderr: String) {
        try pare(arguments)
    }

    func pare(_ arguments: [String]) throws -> (status: Int32, stdout: String, stderr: String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: binary)
        process.arguments = arguments
        let out = Pipe()
        let err = Pipe()
        process.standardOutput = out
        process.standardError = err
        try process.run()
        let stdout = out.fileHandleForReading.readDataToEndOfFile()
        let stderr = err.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return (
            process.terminationStatus, String(decoding: stdout, as: UTF8.self), String(decoding: stderr, as: UTF8.self)
        )
    }

    func fixture(_ p: String) -> String { Self.repo.appendingPathComponent("fixtures/" + p).path }

    /// A .keras whose weights pass the in-memory limit (a quarter of --max-memory) is probed and read
    /// through a temporary copy in TMPDIR: the command works, and no copy is left behind whether it
    /// succeeds, fails before reading, or meets a corrupt member.
    func testLargeArchiveWeightsLeaveNoTemporaryCopyBehind() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("pare-cli-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        func run(_ arguments: [String]) throws -> (status: Int32, stdout: String, stderr: String) {
            let process = Process()
            process.executableURL = URL(fileURLWithPath: binary)
            process.arguments = arguments + ["--max-memory", "4M"]
            process.environment = ProcessInfo.processInfo.environment.merging(["TMPDIR": dir.path]) { $1 }
            let (out, err) = (Pipe(), Pipe())
            (process.standardOutput, process.standardError) = (out, err)
            try process.run()
            let stdout = out.fileHandleForReading.readDataToEndOfFile()
            let stderr = err.fileHandleForReading.readDataToEndOfFile()
            process.waitUntilExit()
            return (
                process.terminationStatus, String(decoding: stdout, as: UTF8.self),
                String(decoding: stderr, as: UTF8.self)
            )
        }
        func leftovers() throws -> [String] {
            try FileManager.default.contentsOfDirectory(atPath: dir.path).filter { $0.hasPrefix("pare-weights-") }
        }
        // A copy left by a killed run (a pid that cannot exist: above pid_max) goes; one of a live
        // process (this test's), a name of another form and a directory stay.
        let dead = "pare-weights-\(Int32.max)-Ab3xY9"
        let live = "pare-weights-\(getpid())-Ab3xY9"
        let odd = "pare-weights-\(Int32.max)-toolongname"
        for name in [dead, live, odd] {
            XCTAssertTrue(
                FileManager.default.createFile(atPath: dir.appendingPathComponent(name).path, contents: Data()))
        }
        // A dead-looking pid whose copy is still locked (a run in another pid namespace sharing TMPDIR) stays.
        let locked = "pare-weights-\(Int32.max - 1)-Lck123"
        XCTAssertTrue(FileManager.default.createFile(atPath: dir.appendingPathComponent(locked).path, contents: Data()))
        let lockHolder = open(dir.appendingPathComponent(locked).path, O_RDONLY)
        XCTAssertGreaterThanOrEqual(lockHolder, 0)
        XCTAssertEqual(flock(lockHolder, LOCK_EX), 0)
        defer { close(lockHolder) }
        let deadDirectory = "pare-weights-\(Int32.max)-Dir123"
        try FileManager.default.createDirectory(
            at: dir.appendingPathComponent(deadDirectory), withIntermediateDirectories: false)
        let archive = fixture("mnist_cnn/model.keras")
        let inspected = try run(["inspect", archive])
        XCTAssertEqual(inspected.status, 0, inspected.stderr)
        XCTAssertTrue(inspected.stdout.contains("total parameters  643,594"), inspected.stdout)
        XCTAssertEqual(try leftovers().sorted(), [deadDirectory, live, locked, odd].sorted())
        for name in [live, odd, deadDirectory, locked] {
            try FileManager.default.removeItem(at: dir.appendingPathComponent(name))
        }
        XCTAssertEqual(try leftovers(), [])
        let sparsified = try run(["sparsify", archive, dir.appendingPathComponent("s.keras").path, "--sparsity", "0.5"])
        XCTAssertEqual(sparsified.status, 0, sparsified.stderr)
        XCTAssertEqual(try leftovers(), [])
        let refused = try run(["prune", archive, dir.appendingPathComponent("p.keras").path, "--keep", "nope=3"])
        XCTAssertEqual(refused.status, 2, refused.stderr)
        XCTAssertTrue(refused.stderr.contains("no layer named 'nope'"), refused.stderr)
        XCTAssertEqual(try leftovers(), [])
        // One byte of the stored weights changed: the copy's CRC check fails, and the copy goes.
        var bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: archive)))
        let signature: [UInt8] = [0x89, 0x48, 0x44, 0x46]
        let start = try XCTUnwrap((0..<(bytes.count - 4)).first { Array(bytes[$0..<($0 + 4)]) == signature })
        bytes[start + 100_000] ^= 0xFF
        let corrupt = dir.appendingPathComponent("corrupt.keras").path
        try Data(bytes).write(to: URL(fileURLWithPath: corrupt))
        let rejected = try run(["inspect", corrupt])
        XCTAssertEqual(rejected.status, 1, rejected.stderr)
        XCTAssertTrue(rejected.stderr.contains("model.weights.h5: CRC-32 mismatch"), rejected.stderr)
        XCTAssertEqual(try leftovers(), [])
    }

    func testInspectPrintsTheReportTotalsAndJSONForScripts() throws {
        let text = try pare("inspect", fixture("mnist_cnn/keras3.h5"))
        XCTAssertEqual(text.status, 0, text.stderr)
        XCTAssertTrue(text.stdout.contains("total parameters  643,594"), text.stdout)
        XCTAssertTrue(text.stdout.contains("(None, 2304)"))
        let json = try pare("inspect", "--json", fixture("siamese/tfkeras2.h5"))
        XCTAssertEqual(json.status, 0, json.stderr)
        let object = try JSONSerialization.jsonObject(with: Data(json.stdout.utf8)) as! [String: Any]
        XCTAssertEqual(object["totalParameters"] as? Int, 96_833)
        XCTAssertEqual(object["optimizerTensors"] as? Int, 21)
    }

    func testConvertWritesAFileThatReadsBackAndNeverTouchesItsInput() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("pare-cli-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let input = fixture("residual/keras3.h5")
        let before = try Data(contentsOf: URL(fileURLWithPath: input))
        let out = dir.appendingPathComponent("r.h5").path
        let run = try pare("convert", "--deflate", "6", "--drop-optimizer", input, out)
        XCTAssertEqual(run.status, 0, run.stderr)
        XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: input)), before)
        let check = try pare("inspect", "--json", out)
        let object = try JSONSerialization.jsonObject(with: Data(check.stdout.utf8)) as! [String: Any]
        XCTAssertEqual(object["totalParameters"] as? Int, 15_266)
        XCTAssertEqual(object["optimizerTensors"] as? Int, 0)
        XCTAssertEqual(
            try FileManager.default.contentsOfDirectory(atPath: dir.path), ["r.h5"], "no temporary file left")
    }

    func testBadInputGivesOneClearLineStatusOneAndNoOutput() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("pare-cli-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let garbage = dir.appendingPathComponent("garbage.h5").path
        try Data(repeating: 0x42, count: 2048).write(to: URL(fileURLWithPath: garbage))
        let out = dir.appendingPathComponent("out.h5").path
        for input in [garbage, dir.appendingPathComponent("absent.h5").path] {
            let run = try pare("convert", input, out)
            XCTAssertEqual(run.status, 1)
            XCTAssertTrue(run.stderr.hasPrefix("pare: error: \(input): "), run.stderr)
            XCTAssertEqual(run.stderr.split(separator: "\n").count, 1, run.stderr)
            XCTAssertFalse(FileManager.default.fileExists(atPath: out))
        }
        let nowhere = try pare("convert", fixture("mnist_cnn/keras3.h5"), "/nonexistent-dir/x.h5")
        XCTAssertEqual(nowhere.status, 1)
        XCTAssertTrue(nowhere.stderr.contains("does not exist"), nowhere.stderr)
    }

    func testUsageErrorsExitWithTwo() throws {
        XCTAssertEqual(try pare("convert").status, 2)
        XCTAssertEqual(try pare("convert", "--deflate", "12", "a.h5", "b.h5").status, 2)
        XCTAssertEqual(try pare("inspect", "--no-such-flag", "a.h5").status, 2)
        XCTAssertEqual(try pare("frobnicate").status, 2)
        // An allocation without a budget would do nothing, even when it names the default.
        for allocation in ["normalized", "sensitivity"] {
            let alone = try pare("prune", "a.h5", "b.h5", "--ratio", "0.5", "--allocation", allocation)
            XCTAssertEqual(alone.status, 2, alone.stderr)
            XCTAssertTrue(alone.stderr.contains("--allocation applies to a --target-params"), alone.stderr)
        }
    }
}

extension CLITests {
    func scratch() throws -> URL {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("pare-cli-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        return dir
    }

    func testRunWritesOutputsThatMatchKeras() throws {
        let dir = try scratch()
        defer { try? FileManager.default.removeItem(at: dir) }
        let out = dir.appendingPathComponent("y.npy").path
        let run = try pare(
            "run", fixture("siamese/keras3.h5"), "--input", fixture("data/pairs_left.npy"),
            "--input", fixture("data/pairs_right.npy"), "--output", out, "--batch", "50")
        XCTAssertEqual(run.status, 0, run.stderr)
        XCTAssertTrue(run.stdout.contains("[128, 1]"), run.stdout)
        // verify compares files too: written outputs against Keras's, through the same metrics.
        let a = try Data(contentsOf: URL(fileURLWithPath: out))
        XCTAssertGreaterThan(a.count, 128 * 4)
        let zoo = dir.appendingPathComponent("zoo.npy").path
        let multi = try pare(
            "run", fixture("zoo/conv_zoo.h5"), "--input", fixture("zoo/conv_zoo_in0.npy"), "--output", zoo)
        XCTAssertEqual(multi.status, 0, multi.stderr)
        XCTAssertTrue(
            FileManager.default.fileExists(atPath: dir.appendingPathComponent("zoo_10.npy").path), "one file per output"
        )
    }

    func testVerifyPassesOnEqualModelsAndFailsOnDifferentOnes() throws {
        let same = try pare(
            "verify", fixture("mnist_cnn/keras3.h5"), fixture("mnist_cnn/keras22_h5py2.h5"), "--random", "8", "--seed",
            "3")
        XCTAssertEqual(same.status, 0, same.stdout + same.stderr)
        XCTAssertTrue(same.stdout.contains("ok"))
        let json = try pare(
            "verify", "--json", fixture("mnist_cnn/keras3.h5"), fixture("residual/keras3.h5"),
            "--input", fixture("data/mnist_x.npy"))
        XCTAssertEqual(json.status, 1)
        let rows = try JSONSerialization.jsonObject(with: Data(json.stdout.utf8)) as! [[String: Any]]
        XCTAssertEqual(rows.first?["withinTolerance"] as? Bool, false)
        XCTAssertLessThan(rows.first?["top1Agreement"] as? Double ?? 1, 1)
        XCTAssertTrue(json.stderr.contains("beyond tolerance"), json.stderr)
    }

    func testEvalAgreesWithKerasPredictions() throws {
        let run = try pare(
            "eval", "--json", fixture("mnist_cnn/keras3.h5"), "--input", fixture("data/mnist_x.npy"),
            "--labels", fixture("data/mnist_y.npy"))
        XCTAssertEqual(run.status, 0, run.stderr)
        let result = try JSONSerialization.jsonObject(with: Data(run.stdout.utf8)) as! [String: Any]
        // Independent figure: argmax of the predictions Keras saved, against the labels.
        let keras = try loadFloats(fixture("mnist_cnn/keras3_pred.npy"))
        let labels = try loadInt64(fixture("data/mnist_y.npy"))
        var correct = 0
        for (i, label) in labels.enumerated() {
            let row = keras[(i * 10)..<(i * 10 + 10)]
            if row.indices.max(by: { row[$0] < row[$1] })! - i * 10 == label { correct += 1 }
        }
        XCTAssertEqual(result["correct"] as? Int, correct)
        XCTAssertEqual((result["confusion"] as? [[Int]])?.flatMap { $0 }.reduce(0, +), 128)
    }

    func testBadInputsToRunAreClearErrors() throws {
        let dir = try scratch()
        defer { try? FileManager.default.removeItem(at: dir) }
        let model = fixture("mnist_cnn/keras3.h5")
        let wrongShape = try pare("run", model, "--input", fixture("data/mnist_flat.npy"))
        XCTAssertEqual(wrongShape.status, 1)
        XCTAssertTrue(
            wrongShape.stderr.contains("mnist_flat.npy: has shape [128, 784]")
                && wrongShape.stderr.contains("takes (None, 28, 28, 1)"), wrongShape.stderr)
        // Integers are numbers like any other (token ids): an int64 array is judged by its shape.
        let ints = try pare("run", model, "--input", fixture("data/mnist_y.npy"))
        XCTAssertEqual(ints.status, 1)
        XCTAssertTrue(ints.stderr.contains("mnist_y.npy: has shape [128]"), ints.stderr)
        let truncated = dir.appendingPathComponent("t.npy")
        try Data(try Data(contentsOf: URL(fileURLWithPath: fixture("data/mnist_x.npy"))).prefix(5000)).write(
            to: truncated)
        let cut = try pare("run", model, "--input", truncated.path)
        XCTAssertEqual(cut.status, 1)
        XCTAssertTrue(cut.stderr.contains("truncated"), cut.stderr)
        let twoInputs = try pare("run", fixture("siamese/keras3.h5"), "--input", fixture("data/pairs_left.npy"))
        XCTAssertEqual(twoInputs.status, 1)
        XCTAssertTrue(twoInputs.stderr.contains("2 input(s)"), twoInputs.stderr)
        let weightsOnly = try pare(
            "run", fixture("mnist_cnn/keras3_weights.h5"), "--input", fixture("data/mnist_x.npy"))
        XCTAssertEqual(weightsOnly.status, 1)
        XCTAssertTrue(
            weightsOnly.stderr.contains("needs a model graph") && weightsOnly.stderr.contains("--config"),
            weightsOnly.stderr)
        XCTAssertEqual(try pare("run", model).status, 2, "no --input is a usage error")
    }

    func testNaNInputsAreReportedNotFatal() throws {
        let dir = try scratch()
        defer { try? FileManager.default.removeItem(at: dir) }
        var bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: fixture("data/mnist_x.npy"))))
        let dataStart = bytes.count - 128 * 784 * 4
        for i in 0..<4 { bytes[dataStart + i] = [0x00, 0x00, 0xC0, 0x7F][i] }  // first pixel NaN
        let path = dir.appendingPathComponent("nan.npy")
        try Data(bytes).write(to: path)
        let run = try pare("run", fixture("mnist_cnn/keras3.h5"), "--input", path.path)
        XCTAssertEqual(run.status, 0, run.stderr)
        XCTAssertTrue(run.stderr.contains("NaN or infinite"), run.stderr)
        XCTAssertTrue(
            run.stdout.contains(" 10 ") || run.stdout.contains("  10"),
            "one example's 10 outputs are NaN:\n\(run.stdout)")
    }

    func loadFloats(_ path: String) throws -> [Float] {
        let data = [UInt8](try Data(contentsOf: URL(fileURLWithPath: path)))
        let headerEnd = Int(data[8]) | Int(data[9]) << 8
        return stride(from: 10 + headerEnd, to: data.count, by: 4).map { i in
            Float(
                bitPattern: UInt32(data[i]) | UInt32(data[i + 1]) << 8 | UInt32(data[i + 2]) << 16 | UInt32(data[i + 3])
                    << 24)
        }
    }

    func loadInt64(_ path: String) throws -> [Int] {
        let data = [UInt8](try Data(contentsOf: URL(fileURLWithPath: path)))
        let headerEnd = Int(data[8]) | Int(data[9]) << 8
        return stride(from: 10 + headerEnd, to: data.count, by: 8).map { i in
            (0..<8).reduce(0) { $0 | Int(data[i + $1]) << (8 * $1) }
        }
    }
}

extension CLITests {
    func testPruneWritesTheSmallerModelAndPrintsTheTable() throws {
        let dir = try scratch()
        defer { try? FileManager.default.removeItem(at: dir) }
        let out = dir.appendingPathComponent("p.h5").path
        let run = try pare(
            "prune", fixture("mnist_cnn/keras3.h5"), out, "--keep", "conv2d=22,conv2d_1=38",
            "--input", fixture("data/mnist_x.npy"), "--labels", fixture("data/mnist_y.npy"))
        XCTAssertEqual(run.status, 0, run.stderr)
        XCTAssertTrue(run.stdout.contains("643,594 → 392,784"), run.stdout)
        // What it cost, against the original: the accuracies are `pare eval`'s of the two files.
        let accuracy = { (model: String) throws -> String in
            let eval = try self.pare(
                "eval", model, "--labels", self.fixture("data/mnist_y.npy"), "--input", self.fixture("data/mnist_x.npy")
            )
            return String(eval.stdout.split(separator: " ", omittingEmptySubsequences: true).dropFirst(2).first ?? "?")
        }
        let (before, after) = (try accuracy(fixture("mnist_cnn/keras3.h5")), try accuracy(out))
        XCTAssertNotEqual(before, after, "removing 26 and 26 filters changes some predictions")
        XCTAssertTrue(run.stdout.contains("cost against the original model"), run.stdout)
        XCTAssertTrue(
            run.stdout.contains("top-1 accuracy on \(fixture("data/mnist_y.npy")): \(before) → \(after)"), run.stdout)
        XCTAssertTrue(run.stdout.contains("2304 → 1368"), run.stdout)
        XCTAssertTrue(
            run.stdout.contains("dense_2: 10 of 10 channels"),
            "the output layer is reported as left alone:\n" + run.stdout)
        XCTAssertTrue(run.stdout.contains("ok"), run.stdout)
        let masked = dir.appendingPathComponent("m.h5").path
        XCTAssertEqual(
            try pare("mask", fixture("mnist_cnn/keras3.h5"), masked, "--keep", "conv2d=22,conv2d_1=38").status, 0)
        let verify = try pare("verify", masked, out, "--input", fixture("data/mnist_x.npy"))
        XCTAssertEqual(verify.status, 0, "mask and prune pick the same channels:\n" + verify.stdout + verify.stderr)
    }

    func testReconstructRefitsOnCalibrationDataAndReportsEachLayer() throws {
        let dir = try scratch()
        defer { try? FileManager.default.removeItem(at: dir) }
        let out = dir.appendingPathComponent("r.h5").path
        let args = [
            "prune", fixture("mnist_cnn/keras3.h5"), out, "--keep", "conv2d=8,conv2d_1=8", "--input",
            fixture("data/mnist_x.npy"), "--labels", fixture("data/mnist_y.npy"),
        ]
        XCTAssertEqual(try pare(args + ["--reconstruct"]).status, 2, "--reconstruct needs --calibration")
        let run = try pare(args + ["--reconstruct", "--calibration", fixture("data/mnist_calibration.npy")])
        XCTAssertEqual(run.status, 0, run.stderr)
        XCTAssertTrue(run.stdout.contains("conv2d_1 (Conv2D): refit, error"), run.stdout)
        XCTAssertTrue(run.stdout.contains("verification against the zero-masked model"), "verified first")
        // The written file is the reconstructed one: its accuracy is the one printed after the arrow.
        let eval = try pare(
            "eval", out, "--labels", fixture("data/mnist_y.npy"), "--input", fixture("data/mnist_x.npy"))
        let accuracy = eval.stdout.split(separator: " ", omittingEmptySubsequences: true).dropFirst(2).first ?? "?"
        XCTAssertTrue(run.stdout.contains("→ \(accuracy) ("), run.stdout + eval.stdout)
    }

    func testBudgetsAndDataAwareSparsityFromTheCommandLine() throws {
        let dir = try scratch()
        defer { try? FileManager.default.removeItem(at: dir) }
        let model = fixture("mnist_cnn/keras3.h5")
        let (x, y, calibration) = (
            fixture("data/mnist_x.npy"), fixture("data/mnist_y.npy"), fixture("data/mnist_calibration.npy")
        )
        // Half the MACs: the written model's own count (inspect) is within 2% under 3,905,280 / 2.
        let macs = dir.appendingPathComponent("macs.h5").path
        let run = try pare("prune", model, macs, "--target-macs", "50%")
        XCTAssertEqual(run.status, 0, run.stderr)
        XCTAssertTrue(run.stdout.contains("budget: 1,952,640 MACs (normalized allocation)"), run.stdout)
        let inspect = try pare("inspect", macs, "--json")
        let json = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(inspect.stdout.utf8)) as? [String: Any])
        let total = try XCTUnwrap(json["totalMACs"] as? Int)
        XCTAssertLessThanOrEqual(total, 1_952_640)
        XCTAssertGreaterThanOrEqual(Double(total), 0.98 * 1_952_640)
        // 40% of the file: the written file is within 2% of 40% of the input's bytes.
        let small = dir.appendingPathComponent("small.h5").path
        let sized = try pare("prune", model, small, "--target-size", "40%")
        XCTAssertEqual(sized.status, 0, sized.stderr)
        let inputBytes = try XCTUnwrap(FileManager.default.attributesOfItem(atPath: model)[.size] as? Int)
        let written = try XCTUnwrap(FileManager.default.attributesOfItem(atPath: small)[.size] as? Int)
        XCTAssertEqual(Double(written), 0.4 * Double(inputBytes), accuracy: 0.02 * 0.4 * Double(inputBytes))
        XCTAssertTrue(sized.stdout.contains("--target-size 40%: \(small) is"), sized.stdout)
        // A packed .pare (int8) is smaller than its weights: half of it is half of the weights and headers,
        // not half of the packed bytes (which would remove most of the model).
        let packed = dir.appendingPathComponent("cnn.pare").path
        XCTAssertEqual(try pare("pack", "--int8", model, packed).status, 0)
        let fromPacked = try pare("prune", packed, dir.appendingPathComponent("p.h5").path, "--target-size", "50%")
        XCTAssertEqual(fromPacked.status, 0, fromPacked.stderr)
        let share = try XCTUnwrap(
            fromPacked.stdout.split(separator: "(").first { $0.contains("% of the original)") }?
                .split(separator: "%").first.flatMap { Double($0) }, fromPacked.stdout)
        XCTAssertEqual(share, 50, accuracy: 1.1, fromPacked.stdout)
        // Two budgets, or Wanda without calibration data: usage errors, nothing written.
        let never = dir.appendingPathComponent("never.h5").path
        for args in [
            ["prune", model, never, "--target-params", "50%", "--target-macs", "50%"],
            ["sparsify", model, never, "--sparsity", "0.8", "--criterion", "wanda"],
            ["sparsify", model, never, "--sparsity", "0.8", "--reconstruct"],
        ] {
            let refused = try pare(args)
            XCTAssertEqual(refused.status, 2, "\(args): \(refused.stderr)")
            XCTAssertFalse(FileManager.default.fileExists(atPath: never), "\(args)")
        }
        // 80% of two kernels: Wanda + reconstruction keeps more accuracy than magnitude alone.
        let accuracyAfter = { (args: [String]) throws -> Double in
            let out = dir.appendingPathComponent("s.h5").path
            let s = try self.pare(
                [
                    "sparsify", model, out, "--sparsity", "0.8", "--layers", "conv2d_1,dense_1", "--input", x,
                    "--labels", y,
                ] + args)
            XCTAssertEqual(s.status, 0, s.stderr)
            let line = try XCTUnwrap(s.stdout.split(separator: "\n").first { $0.contains("top-1 accuracy") })
            return try XCTUnwrap(Double(line.split(separator: " ").dropFirst(6).first ?? ""), String(line))
        }
        let magnitude = try accuracyAfter([])
        let wanda = try accuracyAfter(["--criterion", "wanda", "--reconstruct", "--calibration", calibration])
        // Measured: 0.8516 and 0.9531 (the original's 0.9531).
        XCTAssertGreaterThan(wanda, magnitude + 0.05)
    }

    func testBadSelectionsExitTwoAndBadDataOneWithoutOutput() throws {
        let dir = try scratch()
        defer { try? FileManager.default.removeItem(at: dir) }
        let out = dir.appendingPathComponent("p.h5").path
        let model = fixture("mnist_cnn/keras3.h5")
        for args in [
            ["--keep", "nope=3"], ["--keep", "conv2d=40"], ["--keep", "conv2d=0"], ["--drop", "conv2d=99"],
            ["--ratio", "conv2d=0.5", "--criterion", "apoz"], ["--criterion", "bogus", "--ratio", "0.5"], [],
        ] {
            let run = try pare(["prune", model, out] + args)
            XCTAssertEqual(run.status, 2, "\(args): \(run.stderr)")
            XCTAssertFalse(FileManager.default.fileExists(atPath: out), "\(args)")
        }
        let wrongCalibration = try pare([
            "prune", model, out, "--ratio", "conv2d=0.5", "--criterion", "mean-activation",
            "--calibration", fixture("data/mnist_flat.npy"),
        ])
        XCTAssertEqual(wrongCalibration.status, 1, wrongCalibration.stderr)
        XCTAssertTrue(
            wrongCalibration.stderr.contains("mnist_flat.npy: has shape")
                && wrongCalibration.stderr.contains("takes (None, 28, 28, 1)"), wrongCalibration.stderr)
        XCTAssertFalse(FileManager.default.fileExists(atPath: out))
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: dir.path), [])
    }
}

extension CLITests {
    func testPackCheckUnpackAndSparsifyFromTheCommandLine() throws {
        let dir = try scratch()
        defer { try? FileManager.default.removeItem(at: dir) }
        let sparse = dir.appendingPathComponent("s.h5").path
        let s = try pare("sparsify", fixture("mnist_cnn/keras3.h5"), sparse, "--sparsity", "0.6")
        XCTAssertEqual(s.status, 0, s.stderr)
        XCTAssertTrue(s.stdout.contains("0.6000"), s.stdout)
        let packed = dir.appendingPathComponent("s.pare").path
        let p = try pare("pack", "--deflate", sparse, packed)
        XCTAssertEqual(p.status, 0, p.stderr)
        XCTAssertTrue(p.stdout.contains("bitmask"), p.stdout)
        let c = try pare("check", packed)
        XCTAssertEqual(c.status, 0, c.stderr)
        XCTAssertTrue(c.stdout.contains("every checksum verified"))
        let back = dir.appendingPathComponent("back.h5").path
        XCTAssertEqual(try pare("unpack", packed, back).status, 0)
        XCTAssertEqual(
            try pare("verify", sparse, back, "--random", "4", "--atol", "0", "--rtol", "0").status, 0,
            "bit-exact round trip")
        // convert picks the format by the output's name.
        let converted = dir.appendingPathComponent("c.pare").path
        XCTAssertEqual(try pare("convert", fixture("residual/keras3.h5"), converted).status, 0)
        XCTAssertEqual(try pare("check", converted).status, 0)
        // A corrupted file: one clear line, status 1, nothing written.
        var bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: packed)))
        bytes[bytes.count / 2] ^= 0x10
        let corrupt = dir.appendingPathComponent("bad.pare").path
        try Data(bytes).write(to: URL(fileURLWithPath: corrupt))
        let bad = try pare("check", corrupt)
        XCTAssertEqual(bad.status, 1)
        XCTAssertTrue(bad.stderr.hasPrefix("pare: error: \(corrupt)"), bad.stderr)
        let out = dir.appendingPathComponent("never.h5").path
        XCTAssertEqual(try pare("unpack", corrupt, out).status, 1)
        XCTAssertFalse(FileManager.default.fileExists(atPath: out))
        XCTAssertEqual(try pare("sparsify", sparse, out, "--sparsity", "1.5").status, 2)
        XCTAssertEqual(try pare("sparsify", sparse, out, "--sparsity", "0.5", "--per-layer", "--global").status, 2)
        XCTAssertEqual(try pare("sparsify", sparse, out, "--sparsity", "0.5", "--labels", sparse).status, 2)
    }

    func testSparsifySaysWhatItCostAgainstTheOriginal() throws {
        let dir = try scratch()
        defer { try? FileManager.default.removeItem(at: dir) }
        let sparse = dir.appendingPathComponent("s.h5").path
        let (x, y) = (fixture("data/mnist_x.npy"), fixture("data/mnist_y.npy"))
        let s = try pare(
            "sparsify", fixture("mnist_cnn/keras3.h5"), sparse, "--sparsity", "0.8", "--input", x, "--labels", y)
        XCTAssertEqual(s.status, 0, s.stderr)
        let accuracy = { (model: String) throws -> String in
            let eval = try self.pare("eval", model, "--labels", y, "--input", x)
            return String(eval.stdout.split(separator: " ", omittingEmptySubsequences: true).dropFirst(2).first ?? "?")
        }
        let (before, after) = (try accuracy(fixture("mnist_cnn/keras3.h5")), try accuracy(sparse))
        XCTAssertNotEqual(before, after, "80% of every kernel zeroed changes predictions")
        XCTAssertTrue(s.stdout.contains("cost against the original model on \(x)"), s.stdout)
        XCTAssertTrue(s.stdout.contains("top-1 accuracy on \(y): \(before) → \(after)"), s.stdout)
        // Labels that do not match the inputs: nothing is written.
        let never = dir.appendingPathComponent("never.h5").path
        let bad = try pare(
            "sparsify", fixture("mnist_cnn/keras3.h5"), never, "--sparsity", "0.8", "--input", x, "--labels",
            fixture("data/pairs_left.npy"))
        XCTAssertEqual(bad.status, 1, bad.stdout)
        XCTAssertFalse(FileManager.default.fileExists(atPath: never))
    }

    /// An upgrade whose outputs would differ is refused (nothing written) unless the drift is
    /// accepted; options that only apply to upgrades and rewrites are usage errors elsewhere.
    func testUpgradesRefuseDriftUnlessAccepted() throws {
        let dir = try scratch()
        defer { try? FileManager.default.removeItem(at: dir) }
        func out(_ name: String) -> String { dir.appendingPathComponent(name).path }
        let zoo = fixture("upgrade/hard_sigmoid_zoo.h5")
        let inputs = [
            "--input", fixture("upgrade/hard_sigmoid_zoo_in0.npy"), "--input",
            fixture("upgrade/hard_sigmoid_zoo_in1.npy"),
        ]
        let refused = try pare(["convert", zoo, out("z.keras")] + inputs)
        XCTAssertEqual(refused.status, 1, refused.stderr)
        XCTAssertTrue(refused.stderr.contains("output 'lstm_act_hs'"), refused.stderr)
        XCTAssertTrue(refused.stderr.contains("nothing written"), refused.stderr)
        XCTAssertTrue(refused.stdout.contains("not exact: 'lstm_act_hs'"), refused.stdout)
        XCTAssertFalse(FileManager.default.fileExists(atPath: out("z.keras")))
        let accepted = try pare(["convert", zoo, out("z.keras"), "--accept-drift"] + inputs)
        XCTAssertEqual(accepted.status, 0, accepted.stderr)
        XCTAssertTrue(accepted.stdout.contains("lstm_act_hs: max abs") && accepted.stdout.contains("DIFFERENT"))
        XCTAssertTrue(FileManager.default.fileExists(atPath: out("z.keras")))
        XCTAssertEqual(try pare("convert", fixture("mnist_cnn/model.keras"), out("x.keras"), "--keras", "2").status, 2)
        XCTAssertEqual(try pare("convert", fixture("mnist_cnn/keras3.h5"), out("x.h5"), "--keras", "3").status, 2)
        let copy = try pare("convert", fixture("mnist_cnn/keras3.h5"), out("x.h5"), "--accept-drift")
        XCTAssertEqual(copy.status, 1)
        XCTAssertTrue(copy.stderr.contains("apply to upgrades"), copy.stderr)
        let back = try pare("convert", fixture("mnist_cnn/model.keras"), out("tf2.h5"), "--keras", "2")
        XCTAssertEqual(back.status, 0, back.stderr)
        XCTAssertTrue(back.stdout.contains("as Keras 3 computes it"), back.stdout)
    }

    func testKeras3FilesWorkWithEveryCommand() throws {
        let dir = try scratch()
        defer { try? FileManager.default.removeItem(at: dir) }
        func out(_ name: String) -> String { dir.appendingPathComponent(name).path }
        let keras = fixture("residual/model.keras")
        let weights = fixture("residual/model.weights.h5")
        let x = fixture("data/mnist_x.npy")
        // A weights file with its architecture from the .keras, and without: a set of tensors.
        let withConfig = try pare("inspect", weights, "--config", keras)
        XCTAssertEqual(withConfig.status, 0, withConfig.stderr)
        XCTAssertTrue(withConfig.stdout.contains("total parameters  15,266"), withConfig.stdout)
        let bare = try pare("inspect", weights)
        XCTAssertEqual(bare.status, 0, bare.stderr)
        XCTAssertTrue(bare.stdout.contains("read as plain tensors"), bare.stdout)
        let noGraph = try pare("run", weights, "--input", x)
        XCTAssertEqual(noGraph.status, 1)
        XCTAssertTrue(noGraph.stderr.contains("--config"), noGraph.stderr)
        XCTAssertEqual(try pare("run", weights, "--config", keras, "--input", x, "--output", out("w.npy")).status, 0)
        XCTAssertEqual(try pare("run", keras, "--input", x, "--output", out("k.npy")).status, 0)
        XCTAssertEqual(
            try Data(contentsOf: URL(fileURLWithPath: out("w.npy"))),
            try Data(contentsOf: URL(fileURLWithPath: out("k.npy"))))
        // Prune a .keras into a .keras; the result runs, verifies and checks.
        let pruned = try pare("prune", keras, out("p.keras"), "--ratio", "0.5")
        XCTAssertEqual(pruned.status, 0, pruned.stderr)
        let params = try pare("inspect", "--json", out("p.keras"))
        let object = try JSONSerialization.jsonObject(with: Data(params.stdout.utf8)) as! [String: Any]
        XCTAssertLessThan(try XCTUnwrap(object["totalParameters"] as? Int), 15_266)
        XCTAssertEqual(try pare("check", out("p.keras")).status, 0)
        XCTAssertEqual(try pare("verify", keras, weights, "--config", keras).status, 0)
        // Conversions: notes for what a format cannot hold; a Keras 2 config becomes a .keras by an
        // upgrade that verifies itself.
        let legacy = try pare("convert", keras, out("r.h5"))
        XCTAssertEqual(legacy.status, 0, legacy.stderr)
        XCTAssertTrue(legacy.stderr.contains("note:") && legacy.stderr.contains("optimizer"), legacy.stderr)
        let keras2 = try pare("convert", fixture("residual/tfkeras2.h5"), out("r2.keras"))
        XCTAssertEqual(keras2.status, 0, keras2.stderr)
        XCTAssertTrue(
            keras2.stdout.contains("verification against the source run as Keras 2 computes it on 16 random inputs"),
            keras2.stdout)
        XCTAssertTrue(keras2.stdout.contains("classifier: max abs") && keras2.stdout.contains(": ok"), keras2.stdout)
        XCTAssertTrue(FileManager.default.fileExists(atPath: out("r2.keras")))
        XCTAssertEqual(try pare("convert", fixture("residual/tfkeras2.h5"), out("r2.weights.h5")).status, 0)
        let missingConfig = try pare("inspect", weights, "--config", out("absent.json"))
        XCTAssertEqual(missingConfig.status, 1)
        XCTAssertTrue(missingConfig.stderr.contains("absent.json: no such file"), missingConfig.stderr)
        // A plain tensor file: pack, check, unpack, sparsify; run says it needs a graph.
        let plain = fixture("plain/state_dict.h5")
        XCTAssertEqual(try pare("pack", plain, out("s.pare")).status, 0)
        XCTAssertEqual(try pare("check", out("s.pare")).status, 0)
        XCTAssertEqual(try pare("unpack", out("s.pare"), out("s.h5")).status, 0)
        XCTAssertEqual(try pare("sparsify", plain, out("sp.h5"), "--sparsity", "0.5").status, 0)
        let runPlain = try pare("run", plain, "--input", x)
        XCTAssertEqual(runPlain.status, 1)
        XCTAssertTrue(runPlain.stderr.contains("needs a model graph"), runPlain.stderr)
        XCTAssertEqual(
            try FileManager.default.contentsOfDirectory(atPath: dir.path).filter { $0.contains("pare-tmp") }, [])
    }

    func testSensitivityAndReportWriteTheirFiles() throws {
        let dir = try scratch()
        defer { try? FileManager.default.removeItem(at: dir) }
        func out(_ name: String) -> String { dir.appendingPathComponent(name).path }
        let cnn = fixture("mnist_cnn/keras3.h5")
        let x = fixture("data/mnist_x.npy")
        let y = fixture("data/mnist_y.npy")
        let sweep = try pare(
            "sensitivity", cnn, "--layer", "conv2d", "--layer", "conv2d_1", "--input", x, "--labels", y,
            "--steps", "0,8,16", "--svg", out("c.svg"), "--csv", out("c.csv"), "--json", out("c.json"))
        XCTAssertEqual(sweep.status, 0, sweep.stderr)
        XCTAssertTrue(sweep.stdout.contains("layer conv2d_1 (64 channels)"), sweep.stdout)
        XCTAssertTrue(sweep.stdout.contains("accuracy (y, 0 to 1)"), sweep.stdout)
        let csv = try String(contentsOfFile: out("c.csv"), encoding: .utf8).split(separator: "\n")
        XCTAssertEqual(csv.count, 1 + 2 * 3)
        XCTAssertTrue(try String(contentsOfFile: out("c.svg"), encoding: .utf8).hasPrefix("<?xml"))
        let points =
            try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: out("c.json"))))
            as! [[String: Any]]
        XCTAssertEqual(points.count, 2)
        // Usage mistakes exit 2; a K beyond what the layer allows is a selection error (2) too.
        XCTAssertEqual(try pare("sensitivity", cnn, "--input", x).status, 2, "no --layer")
        XCTAssertEqual(try pare("sensitivity", cnn, "--layer", "conv2d", "--input", x, "--steps", "x").status, 2)
        let tooMany = try pare("sensitivity", cnn, "--layer", "conv2d", "--input", x, "--steps", "0,40")
        XCTAssertEqual(tooMany.status, 2)
        XCTAssertTrue(tooMany.stderr.contains("K = 40"), tooMany.stderr)
        let unknown = try pare("sensitivity", cnn, "--layer", "nope", "--input", x)
        XCTAssertEqual(unknown.status, 2)
        XCTAssertTrue(unknown.stderr.contains("nope"), unknown.stderr)
        // The report of a pruned model.
        XCTAssertEqual(try pare("prune", cnn, out("p.h5"), "--keep", "conv2d=22,conv2d_1=38").status, 0)
        let report = try pare("report", cnn, out("p.h5"), "--input", x, "--labels", y, "--markdown", out("r.md"))
        XCTAssertEqual(report.status, 0, report.stderr)
        XCTAssertTrue(report.stdout.contains("392,784") && report.stdout.contains("accuracy"), report.stdout)
        XCTAssertTrue(try String(contentsOfFile: out("r.md"), encoding: .utf8).contains("| total |"))
        XCTAssertEqual(try pare("report", cnn, out("p.h5"), "--input", x).status, 2, "accuracy needs labels too")
        let plain = try pare("report", cnn, fixture("plain/state_dict.h5"))
        XCTAssertEqual(plain.status, 1)
        XCTAssertTrue(plain.stderr.contains("report needs a model graph"), plain.stderr)
    }

    func testCorruptFilesExitOneNeverCrash() throws {
        let dir = try scratch()
        defer { try? FileManager.default.removeItem(at: dir) }
        var rng = SystemRandomNumberGenerator()
        for source in [
            "residual/keras3.h5", "siamese/model.keras", "mnist_cnn/tfkeras2_weights.h5", "plain/state_dict.h5",
        ] {
            let original = [UInt8](try Data(contentsOf: URL(fileURLWithPath: fixture(source))))
            let ext = URL(fileURLWithPath: source).pathExtension
            for trial in 0..<12 {
                var bytes = original
                if trial < 3 {
                    bytes = Array(bytes.prefix(Int.random(in: 0..<bytes.count, using: &rng)))
                } else {
                    for _ in 0..<4 {
                        bytes[Int.random(in: 0..<bytes.count, using: &rng)] ^= UInt8.random(in: 1...255, using: &rng)
                    }
                }
                let file = dir.appendingPathComponent("bad\(trial).\(ext)").path
                try Data(bytes).write(to: URL(fileURLWithPath: file))
                let commands =
                    trial < 6
                    ? [
                        ["inspect", file], ["check", file],
                        ["convert", file, dir.appendingPathComponent("out.h5").path],
                    ] : [["check", file]]
                for command in commands {
                    let r = try pare(command)
                    XCTAssertTrue(
                        r.status == 0 || r.status == 1, "\(command): status \(r.status) (a signal?) \(r.stderr)")
                    if r.status == 1 {
                        XCTAssertTrue(r.stderr.hasPrefix("pare: error: \(file)"), "\(command): \(r.stderr)")
                        XCTAssertEqual(r.stderr.split(separator: "\n").count, 1, "one line: \(r.stderr)")
                    }
                }
                try? FileManager.default.removeItem(atPath: dir.appendingPathComponent("out.h5").path)
            }
        }
        XCTAssertEqual(
            try FileManager.default.contentsOfDirectory(atPath: dir.path).filter { $0.contains("pare-tmp") }, [])
    }

    func start(_ arguments: [String]) throws -> Process {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: binary)
        process.arguments = arguments
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        return process
    }

    func testKilledWritersLeaveNoFileOrAWholeOneAndNeverTouchTheInput() throws {
        let dir = try scratch()
        defer { try? FileManager.default.removeItem(at: dir) }
        let cnn = fixture("mnist_cnn/keras3.h5")
        let keras = fixture("residual/model.keras")
        let inputs = [
            cnn: try Data(contentsOf: URL(fileURLWithPath: cnn)),
            keras: try Data(contentsOf: URL(fileURLWithPath: keras)),
        ]
        let jobs: [(String, [String])] = [
            ("out.h5", ["convert", cnn]), ("out.keras", ["convert", keras]),
            ("out.pare", ["pack", "--deflate", cnn]), ("pruned.h5", ["prune", cnn, "--keep", "conv2d=22,conv2d_1=38"]),
        ]
        var killed = 0
        var completed = 0
        var absent = 0
        for (name, command) in jobs {
            let out = dir.appendingPathComponent(name).path
            // How long a whole run takes, then kills at random points within it.
            let t0 = Date()
            XCTAssertEqual(try pare(command + [out]).status, 0)
            let duration = Date().timeIntervalSince(t0)
            for _ in 0..<8 {
                try? FileManager.default.removeItem(atPath: out)
                let process = try start(command + [out])
                usleep(UInt32(Double.random(in: 0..<duration) * 1_000_000))
                kill(process.processIdentifier, SIGKILL)
                process.waitUntilExit()
                if process.terminationReason == .uncaughtSignal { killed += 1 }
                if FileManager.default.fileExists(atPath: out) {
                    completed += 1
                    let check = try pare("check", out)
                    XCTAssertEqual(check.status, 0, "\(name) after a kill: \(check.stderr)")
                } else {
                    absent += 1
                }
            }
            // The next writer of the same destination removes what the killed ones left.
            XCTAssertEqual(try pare(command + [out]).status, 0)
            let leftovers = try FileManager.default.contentsOfDirectory(atPath: dir.path).filter {
                $0.hasPrefix(".\(name).pare-tmp-")
            }
            XCTAssertEqual(leftovers, [], "temporary files of killed writers")
        }
        XCTAssertGreaterThan(
            killed, 8, "most runs were killed mid-way (\(killed) killed, \(completed) complete, \(absent) absent)")
        XCTAssertGreaterThan(absent, 0)
        for (path, bytes) in inputs {
            XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: path)), bytes, "input \(path) touched")
        }
    }

    func testAFullDiskIsAClearErrorWithNoPartialFile() throws {
        let dir = try scratch()
        defer { try? FileManager.default.removeItem(at: dir) }
        for (name, command) in [("out.h5", "convert"), ("out.keras", "convert"), ("out.pare", "pack")] {
            let out = dir.appendingPathComponent(name).path
            let process = Process()
            process.executableURL = URL(fileURLWithPath: "/bin/bash")
            // A 100 KiB file-size limit: the 2.6 MB model cannot be written.
            process.arguments = [
                "-c", "ulimit -f 100; exec \"$0\" \(command) \"$1\" \"$2\"", binary, fixture("mnist_cnn/keras3.h5"),
                out,
            ]
            let err = Pipe()
            process.standardError = err
            process.standardOutput = FileHandle.nullDevice
            try process.run()
            let stderr = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
            process.waitUntilExit()
            XCTAssertEqual(process.terminationStatus, 1, "\(name): \(stderr)")
            XCTAssertTrue(stderr.hasPrefix("pare: error: \(out): ") && stderr.contains("File too large"), stderr)
            XCTAssertFalse(stderr.contains("pare-tmp"), "the message names the destination: \(stderr)")
            XCTAssertEqual(
                try FileManager.default.contentsOfDirectory(atPath: dir.path), [], "no partial or temporary file")
        }
    }

    func testTwoWritersOfOneDestinationNeverTearIt() throws {
        let dir = try scratch()
        defer { try? FileManager.default.removeItem(at: dir) }
        let out = dir.appendingPathComponent("same.h5").path
        let a = fixture("mnist_cnn/keras3.h5")
        let b = fixture("mnist_cnn/tfkeras2.h5")
        let versions = try [a, b].map { f -> String in
            let object =
                try JSONSerialization.jsonObject(with: Data(try pare("inspect", "--json", f).stdout.utf8))
                as! [String: Any]
            return object["kerasVersion"] as! String
        }
        for _ in 0..<6 {
            let p1 = try start(["convert", a, out])
            let p2 = try start(["convert", b, out])
            p1.waitUntilExit()
            p2.waitUntilExit()
            XCTAssertEqual([p1.terminationStatus, p2.terminationStatus], [0, 0])
            XCTAssertEqual(try pare("check", out).status, 0)
            let object =
                try JSONSerialization.jsonObject(with: Data(try pare("inspect", "--json", out).stdout.utf8))
                as! [String: Any]
            XCTAssertTrue(versions.contains(object["kerasVersion"] as! String), "one writer's whole file")
            XCTAssertEqual(object["totalParameters"] as? Int, 643_594)
        }
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: dir.path), ["same.h5"])
    }
}
