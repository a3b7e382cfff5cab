import ArgumentParser
import Foundation
import Pare

struct Sensitivity: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Accuracy and output drift as the K lowest-ranked channels of a layer are removed, K = 0, 1, …",
        discussion: """
            For every K the channels are removed physically through the pruning core (folding included) \
            and the pruned model runs on --input: its accuracy against --labels, and always its output 0 \
            against the unpruned model (max-abs, cosine, top-1 agreement). Several --layer give one curve \
            each. Prints a table and a terminal chart; --svg writes a plot with the knee marked, --csv the \
            numbers. The model is read once; scores are computed once per sweep.
            """
    )
    @Argument(help: "The model.") var model: String
    @Option(name: .long, help: "A layer whose output channels are removed (repeat for several curves).") var layer:
        [String] = []
    @Option(
        name: .long,
        help: "Ranking: l1, l2, bn-gamma, mean-activation or apoz (activation criteria measure on --input).")
    var criterion: String = "l1"
    @Option(name: .long, help: "Inputs (.npy, one per model input).") var input: [String] = []
    @Option(name: .long, help: "Labels .npy (class indices or one-hot): adds accuracy.") var labels: String?
    @Option(
        name: .long, parsing: .unconditional,
        help: ArgumentHelp(
            "K values: 'all', a count N of evenly spaced values, or a list 'K1,K2,…' (default: all up to 128 "
                + "channels, else 65 values).")
    )
    var steps: String?
    @Option(name: .long, help: "Write the curves as an SVG plot.") var svg: String?
    @Option(name: .long, help: "Write the numbers as CSV.") var csv: String?
    @Option(name: .long, help: "Write the numbers as JSON.") var json: String?
    @Flag(name: .long, help: "Do not fold removed channels' constant outputs into the next layer.") var noFold = false
    @OptionGroup var reading: ReadOptions

    func validate() throws {
        if layer.isEmpty { throw ValidationError("give at least one --layer") }
        if input.isEmpty { throw ValidationError("give --input (one .npy per model input)") }
        if PruneCriterion(rawValue: criterion) == nil {
            throw ValidationError(
                "--criterion must be one of \(PruneCriterion.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        if let steps, SensitivitySweep.Steps.parse(steps) == nil {
            throw ValidationError("--steps takes 'all', a count of at least 2, or a comma-separated list of K ≥ 0")
        }
    }

    func run() throws {
        try reading.run(reading: [model, labels] + input, writing: [svg, csv, json]) {
            let m = try reading.read(model, graphFor: "sensitivity")
            let inputs = try ModelInputs.load(input, for: m, file: model)
            let labelTensor = try labels.map { try NPY.read($0) }
            var options = SensitivitySweep.Options()
            options.criterion = PruneCriterion(rawValue: criterion)!
            options.steps = steps.flatMap(SensitivitySweep.Steps.parse) ?? .automatic
            options.fold = !noFold
            let tty = isatty(2) != 0
            let start = Date()
            let curves = try SensitivitySweep.run(
                m, layers: layer, inputs: inputs, labels: labelTensor, labelsFile: labels ?? "",
                options: options
            ) { done, total in
                if tty, Date().timeIntervalSince(start) > 1 {
                    FileHandle.standardError.write(Data("\rsensitivity: \(done)/\(total) prunes".utf8))
                }
            }
            if tty { FileHandle.standardError.write(Data("\r\u{1B}[K".utf8)) }
            print(SensitivityOutput.table(curves))
            print(SensitivityOutput.terminalChart(curves), terminator: "")
            let metric = curves.first.map { $0.metric == "accuracy" ? "accuracy" : "top-1 agreement" } ?? ""
            let title =
                "\(URL(fileURLWithPath: model).lastPathComponent): \(metric) as channels are removed (\(criterion))"
            if let svg { try writeText(SensitivityOutput.svg(curves, title: title), to: svg) }
            if let csv { try writeText(SensitivityOutput.csv(curves), to: csv) }
            if let json {
                let encoder = JSONEncoder()
                encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
                try writeText(String(decoding: try encoder.encode(curves), as: UTF8.self) + "\n", to: json)
            }
        }
    }
}

/// Writes a text file atomically (temporary file beside it, renamed when complete).
func writeText(_ text: String, to path: String) throws {
    try AtomicFile.write(to: path) { temporary in
        guard FileManager.default.createFile(atPath: temporary, contents: Data(text.utf8)) else {
            throw PareError(file: path, "cannot be written")
        }
    }
}
