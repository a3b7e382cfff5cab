import ArgumentParser
import Foundation
import Pare

struct Sparsify: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Zero the smallest-magnitude kernel weights to a target sparsity (magnitude pruning).",
        discussion:
            "Kernels only (Conv, Dense, depthwise and pointwise); never biases or normalization "
            + "statistics. Sparsity = zeros / total."
    )
    @Argument(help: "The model to sparsify.") var input: String
    @Argument(help: "Where to write it (.h5, or .pare to pack it).") var output: String
    @Option(name: .long, parsing: .unconditional, help: "Target fraction of zeros, in [0, 1).") var sparsity: Double
    @Flag(name: .long, help: "Each kernel reaches the target (default).") var perLayer = false
    @Flag(name: .long, help: "One magnitude threshold across all selected kernels.") var global = false
    @Option(
        name: .long, help: "Only these layers (comma-separated names; in a plain tensor file, tensor or group paths).")
    var layers: String?
    @OptionGroup var reading: ReadOptions

    func validate() throws {
        if perLayer && global { throw ValidationError("--per-layer and --global exclude each other") }
        if !(0..<1).contains(sparsity) { throw ValidationError("--sparsity must be in [0, 1)") }
    }

    func run() throws {
        try reading.run(reading: [input], writing: [output]) {
            let model = try reading.read(input)
            let names = layers.map { Set($0.split(separator: ",").map(String.init)) }
            let sparsified = try MagnitudeSparsifier.sparsify(
                model, sparsity: sparsity, global: global, layers: names)
            let (sparse, rows) = (sparsified.model, sparsified.rows)
            printNotes(try ModelFile.write(sparse, to: output), output: output)
            var table = [["layer", "weight", "zeros", "total", "sparsity"]]
            for r in rows {
                table.append([r.layer, r.weight, "\(r.zeros)", "\(r.count)", String(format: "%.4f", r.sparsity)])
            }
            let zeros = rows.reduce(0) { $0 + $1.zeros }
            let total = rows.reduce(0) { $0 + $1.count }
            table.append([
                "total", "", "\(zeros)", "\(total)", String(format: "%.4f", Double(zeros) / Double(max(1, total))),
            ])
            print(TextTable.render(table), terminator: "")
        }
    }
}
