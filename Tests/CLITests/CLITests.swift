import Foundation
import XCTest

/// Runs the built `pare` binary as a user would.
final class CLITests: XCTestCase {
    static let repo = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    var binary: String {
        let besideTests = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent("pare").path
        let candidates = [besideTests, Self.repo.appendingPathComponent(".build/debug/pare").path]
        return candidates.first { FileManager.default.isExecutableFile(atPath: $0) } ?? candidates.last!
    }

    func pare(_ arguments: String...) throws -> (status: Int32, stdout: String, stderr: String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: binary)
        process.arguments = arguments
        let out = Pipe(), err = Pipe()
        process.standardOutput = out
        process.standardError = err
        try process.run()
        let stdout = out.fileHandleForReading.readDataToEndOfFile()
        let stderr = err.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return (process.terminationStatus, String(decoding: stdout, as: UTF8.self), String(decoding: stderr, as: UTF8.self))
    }

    func fixture(_ p: String) -> String { Self.repo.appendingPathComponent("fixtures/" + p).path }

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
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: dir.path), ["r.h5"], "no temporary file left")
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
    }
}
