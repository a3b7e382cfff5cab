import ArgumentParser
import Foundation
import Pare

struct Eval: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Top-1 accuracy of a model on labelled inputs, with the confusion matrix.",
        discussion: """
            Labels are class indices (N,) or one-hot rows (N, classes). A model with one output unit is \
            scored as binary: prediction > 0.5, as Keras's binary accuracy.
            """
    )
    @Argument(help: "The model to evaluate.") var model: String
    @Option(name: .long, help: "An input .npy (repeat for several model inputs).") var input: [String] = []
    @Option(name: .long, help: "The labels .npy.") var labels: String
    @Option(name: .long, parsing: .unconditional, help: "Examples per step.") var batch: Int?
    @Flag(name: .long, help: "Print the result as JSON.") var json = false
    @OptionGroup var reading: ReadOptions

    func validate() throws {
        if input.isEmpty { throw ValidationError("give at least one --input") }
        if let batch, batch < 1 { throw ValidationError("--batch must be at least 1") }
    }

    func run() throws {
        try reading.run(reading: [model, labels] + input) {
            let interpreter = try Interpreter(try reading.read(model, graphFor: "eval"))
            let outputs = try interpreter.run(
                try ModelInputs.load(input, for: interpreter, file: model), batchSize: batch ?? Int.max)
            let result = try Evaluation.of(predictions: outputs[0], labels: try NPY.read(labels), file: labels)
            if json {
                let encoder = JSONEncoder()
                encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
                print(String(decoding: try encoder.encode(result), as: UTF8.self))
                return
            }
            print(
                "\(result.binary ? "binary accuracy" : "top-1 accuracy")  "
                    + "\(String(format: "%.4f", result.accuracy))  (\(result.correct) of \(result.examples))"
            )
            print("confusion matrix (rows: label, columns: predicted):")
            var rows = [["label"] + (0..<result.classes).map(String.init) + ["recall"]]
            for (label, row) in result.confusion.enumerated() {
                let total = row.reduce(0, +)
                rows.append(
                    ["\(label)"] + row.map(String.init) + [
                        total == 0 ? "-" : String(format: "%.3f", Double(row[label]) / Double(total))
                    ])
            }
            print(TextTable.render(rows), terminator: "")
        }
    }
}
