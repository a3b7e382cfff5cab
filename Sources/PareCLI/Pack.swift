import ArgumentParser
import Foundation
import Pare

struct Pack: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Write a model as .pare: per tensor dense or bitmask + packed non-zero values (spec/pare-format.md).",
        discussion:
            "Every tensor stays bit-identical unless --int8 quantizes layer kernels, one scale per output "
            + "channel on the axis each layer kind keeps them (never biases, statistics or optimizer "
            + "state); pack then reports each one's max-abs error and SQNR."
    )
    @Argument(help: "The model to pack (any format Pare reads).") var input: String
    @Argument(help: "The .pare file to write.") var output: String
    @Flag(name: .long, help: "Quantize float kernels to int8, symmetric per output channel.") var int8 = false
    @Flag(name: .long, help: "Compress each stream with zlib where that saves space.") var deflate = false
    @Option(
        name: .long, parsing: .unconditional,
        help: "Store a tensor dense at or above this density (default: only when dense is smaller).")
    var denseAbove: Double = 1.0
    @OptionGroup var reading: ReadOptions

    func validate() throws {
        if !(0...1).contains(denseAbove) { throw ValidationError("--dense-above takes a density in [0, 1]") }
    }

    func run() throws {
        try reading.run(reading: [input], writing: [output]) {
            let model = try reading.read(input)
            let tty = isatty(2) != 0
            let packed = try PareFile.write(
                model, to: output, options: .init(int8: int8, deflate: deflate, denseAbove: denseAbove)
            ) { done, total in
                if tty { FileHandle.standardError.write(Data("\rpacking tensor \(done)/\(total)".utf8)) }
            }
            if tty { FileHandle.standardError.write(Data("\r\u{1B}[K".utf8)) }
            var rows = [
                ["tensor", "dtype", "shape", "encoding", "dense bytes", "stored bytes", "max abs error", "SQNR dB"]
            ]
            for t in packed {
                rows.append([
                    "\(t.index)", t.dtype.rawValue, "\(t.shape)", t.encoding, "\(t.denseBytes)", "\(t.storedBytes)",
                    t.maxAbsError.map { String(format: "%.3g", $0) } ?? "",
                    t.sqnr.map { String(format: "%.1f", $0) } ?? "",
                ])
            }
            print(TextTable.render(rows), terminator: "")
            let size = { (p: String) in (try? FileManager.default.attributesOfItem(atPath: p)[.size] as? Int) ?? 0 }
            print(
                "\(input) \(size(input)) bytes → \(output) \(size(output)) bytes; tensors "
                    + "\(packed.reduce(0) { $0 + $1.denseBytes }) → \(packed.reduce(0) { $0 + $1.storedBytes }) bytes"
            )
        }
    }
}
