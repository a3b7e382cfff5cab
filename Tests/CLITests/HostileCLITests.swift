import Foundation
import XCTest

/// What a user sees when a file or a path is not what it should be: one line, the right exit
/// status, inputs untouched.
extension CLITests {
    /// Keras's `model.to_json()` text (a `.keras` archive's config.json) as `--config`, through every command.
    func testAJSONConfigWorksAsConfigForEveryCommand() throws {
        let dir = try scratch()
        defer { try? FileManager.default.removeItem(at: dir) }
        let config = Self.repo.appendingPathComponent("tools/fuzz/seeds/config/mnist_cnn_keras3.json").path
        let weights = fixture("mnist_cnn/model.weights.h5")
        let x = fixture("data/mnist_x.npy")
        let y = fixture("data/mnist_y.npy")
        let runs: [[String]] = [
            ["inspect", weights], ["check", weights], ["convert", weights, dir.appendingPathComponent("c.h5").path],
            ["run", weights, "--input", x], ["eval", weights, "--input", x, "--labels", y],
            ["verify", weights, fixture("mnist_cnn/model.keras"), "--input", x],
            ["prune", weights, dir.appendingPathComponent("p.h5").path, "--keep", "conv2d=22", "--input", x],
            ["pack", weights, dir.appendingPathComponent("w.pare").path],
        ]
        for arguments in runs {
            let result = try pare(arguments + ["--config", config])
            XCTAssertEqual(result.status, 0, "\(arguments[0]): \(result.stderr)")
        }
    }

    func testOutputsThatAreInputsOrSpecialFilesAreRefusedAndInputsKept() throws {
        let dir = try scratch()
        defer { try? FileManager.default.removeItem(at: dir) }
        let model = dir.appendingPathComponent("m.h5").path
        try FileManager.default.copyItem(atPath: fixture("mnist_cnn/keras3.h5"), toPath: model)
        let before = try Data(contentsOf: URL(fileURLWithPath: model))
        let labels = dir.appendingPathComponent("y.npy").path
        try FileManager.default.copyItem(atPath: fixture("data/mnist_y.npy"), toPath: labels)
        let fifo = dir.appendingPathComponent("fifo").path
        XCTAssertEqual(mkfifo(fifo, 0o600), 0)
        let x = fixture("data/mnist_x.npy")
        let cases: [[String]] = [
            ["prune", model, dir.path + "/./m.h5", "--ratio", "0.5"],
            ["convert", model, dir.path + "//m.h5"],
            ["run", model, "--input", x, "--output", model],
            ["report", model, model, "--markdown", model],
            [
                "sensitivity", model, "--layer", "conv2d", "--input", x, "--labels", labels, "--steps", "0,1", "--csv",
                labels,
            ],
            ["convert", model, fifo],
        ]
        for arguments in cases {
            let result = try pare(arguments)
            XCTAssertEqual(result.status, 2, "\(arguments): \(result.stderr)")
            XCTAssertEqual(result.stderr.split(separator: "\n").count, 1, result.stderr)
        }
        XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: model)), before)
        XCTAssertEqual(
            try Data(contentsOf: URL(fileURLWithPath: labels)),
            try Data(contentsOf: URL(fileURLWithPath: fixture("data/mnist_y.npy"))))
        var status = stat()
        XCTAssertEqual(stat(fifo, &status), 0)
        XCTAssertEqual(status.st_mode & S_IFMT, S_IFIFO, "the FIFO is still a FIFO")
        XCTAssertEqual(
            try FileManager.default.contentsOfDirectory(atPath: dir.path).sorted(), ["fifo", "m.h5", "y.npy"])
        // A FIFO as the model or as --config is refused before it is opened (it would block).
        for arguments in [["inspect", fifo], ["inspect", fixture("mnist_cnn/model.weights.h5"), "--config", fifo]] {
            let result = try pare(arguments)
            XCTAssertEqual(result.status, 1, result.stderr)
            XCTAssertTrue(result.stderr.contains("FIFO"), result.stderr)
        }
    }

    func testMessagesStateTheActualProblem() throws {
        let ratio = try pare("prune", fixture("mnist_cnn/keras3.h5"), "/tmp/unused.h5", "--ratio", "-0.5")
        XCTAssertEqual(ratio.status, 2)
        XCTAssertTrue(ratio.stderr.contains("-0.5") && ratio.stderr.contains("[0, 1)"), ratio.stderr)
        let memory = try pare("check", fixture("mnist_cnn/keras3.h5"), "--max-memory", "100K")
        XCTAssertEqual(memory.status, 1)
        XCTAssertTrue(memory.stderr.contains("over the memory budget of 100.0 KiB"), memory.stderr)
        XCTAssertEqual(try pare("check", fixture("mnist_cnn/keras3.h5"), "--max-memory", "lots").status, 2)
    }
}

extension CLITests {
    /// HDF5 may start 512 bytes in, behind a user block: a file whose first bytes look like JSON or
    /// NPY is still HDF5 to the reader, so it must still be probed (this one crashes libhdf5).
    func testAFileThatLooksLikeJSONIsStillProbed() throws {
        let result = try pare("inspect", fixture("hostile/userblock_brace_crash.h5"))
        XCTAssertEqual(result.status, 1, "no signal: \(result.stderr.prefix(300))")
        XCTAssertEqual(result.stderr.split(separator: "\n").count, 1, result.stderr)
        XCTAssertTrue(result.stderr.contains("userblock_brace_crash.h5"), result.stderr)
    }

    /// A stale temporary is removed only if it is no input: an input may be named like one.
    func testAnInputNamedLikeAStaleTemporaryIsKept() throws {
        let dir = try scratch()
        defer { try? FileManager.default.removeItem(at: dir) }
        let input = dir.appendingPathComponent(".out.h5.pare-tmp-4000000-1").path
        try FileManager.default.copyItem(atPath: fixture("mnist_cnn/keras3.h5"), toPath: input)
        let result = try pare("convert", input, dir.appendingPathComponent("out.h5").path)
        XCTAssertEqual(result.status, 0, result.stderr)
        XCTAssertTrue(FileManager.default.fileExists(atPath: input), "the input is still there")
    }
}
