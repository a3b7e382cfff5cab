import ArgumentParser
import Foundation
import Pare

struct Report: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract:
            "Two versions of a model side by side: parameters, FLOPs, non-zero parameters and sparsity per "
            + "layer and in total, file sizes, accuracy.",
        discussion:
            "Layers are matched by name. Accuracy needs --input and --labels. Every figure is computed from the files."
    )
    @Argument(help: "The model before.") var before: String
    @Argument(help: "The model after (pruned, sparsified, packed …).") var after: String
    @Option(name: .long, help: "Inputs (.npy, one per model input), for accuracy.") var input: [String] = []
    @Option(name: .long, help: "Labels .npy, for accuracy.") var labels: String?
    @Option(name: .long, help: "Also write the report as Markdown.") var markdown: String?
    @Flag(name: .long, help: "Print the report as JSON.") var json = false
    @OptionGroup var reading: ReadOptions

    func validate() throws {
        if input.isEmpty != (labels == nil) { throw ValidationError("accuracy needs both --input and --labels") }
    }

    func run() throws {
        try reading.run(reading: [before, after, labels] + input, writing: [markdown]) {
            let a = try reading.read(before, graphFor: "report")
            let b = try reading.read(after, graphFor: "report")
            let inputs = input.isEmpty ? nil : try ModelInputs.load(input, for: a, file: before)
            let report = try ComparisonReport.make(
                before: a, after: b, inputs: inputs, labels: try labels.map { try NPY.read($0) },
                labelsFile: labels ?? "")
            if json {
                let encoder = JSONEncoder()
                encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
                print(String(decoding: try encoder.encode(report), as: UTF8.self))
            } else {
                print(report.text(), terminator: "")
            }
            if let markdown { try writeText(report.markdown(), to: markdown) }
        }
    }
}
