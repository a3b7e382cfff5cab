import ArgumentParser
import Foundation
import Pare

struct Run: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run a model on NPY inputs with Pare's interpreter.",
        discussion: """
            Inputs are .npy arrays of any numeric dtype (C order; integer token ids for an Embedding), \
            one --input per model input, in the model's input order. Prints each output's shape, range, \
            mean and NaN/Inf counts; with --output writes the outputs as float32 .npy (a model with \
            several outputs and one --output gets NAME_0.npy, NAME_1.npy, …).
            """
    )
    @Argument(help: "The model to run.") var model: String
    @Option(name: .long, help: "An input .npy (repeat for several inputs).") var input: [String] = []
    @Option(name: .long, help: "Where to write the output .npy (repeat for several outputs).") var output: [String] = []
    @Option(
        name: .long, parsing: .unconditional,
        help: "Examples per step (bounds memory); default: the whole batch at once.") var batch: Int?
    @Option(
        name: .long,
        help: ArgumentHelp(
            "Run the batch this many times and print the time per run to stderr (benchmarks).", visibility: .hidden))
    var repeatCount: Int = 1
    @Flag(
        name: .long,
        help: """
            Print the time spent in each layer to stderr (layers then run one by one over the whole batch: \
            no tiles, nothing fused).
            """) var profile = false
    @OptionGroup var reading: ReadOptions

    func validate() throws {
        if input.isEmpty { throw ValidationError("give at least one --input") }
        if let batch, batch < 1 { throw ValidationError("--batch must be at least 1") }
        if repeatCount < 1 { throw ValidationError("--repeat-count must be at least 1") }
    }

    func run() throws {
        try reading.run(reading: [model] + input, writing: output) {
            let interpreter = try Interpreter(try reading.read(model, graphFor: "run"))
            interpreter.profiling = profile
            let inputs = try ModelInputs.load(input, for: interpreter, file: model)
            guard output.isEmpty || output.count == 1 || output.count == interpreter.outputNames.count else {
                throw PareError(
                    file: model,
                    "the model has \(interpreter.outputNames.count) outputs; give one --output or one per output")
            }
            var outputs: [FloatArray] = []
            var seconds: [Double] = []
            for _ in 0..<repeatCount {
                let start = DispatchTime.now().uptimeNanoseconds
                outputs = try interpreter.run(inputs, batchSize: batch ?? Int.max)
                seconds.append(Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9)
            }
            if repeatCount > 1 {
                let warm = seconds.dropFirst().sorted()
                FileHandle.standardError.write(
                    Data("time per run: first \(seconds[0]) s, median of the rest \(warm[warm.count / 2]) s\n".utf8))
            }
            if profile {
                var rows = [["layer", "seconds"]]
                for (path, t) in interpreter.layerSeconds.sorted(by: { $0.value > $1.value }) {
                    rows.append([path, String(format: "%.4f", t)])
                }
                FileHandle.standardError.write(Data(TextTable.render(rows).utf8))
            }
            var rows = [["output", "shape", "min", "max", "mean", "NaN", "Inf"]]
            for (name, y) in zip(interpreter.outputNames, outputs) {
                let s = OutputSummary(name: name, y)
                rows.append([
                    name, "\(s.shape)", "\(s.min)", "\(s.max)", String(format: "%.6g", s.mean), "\(s.nan)",
                    "\(s.infinite)",
                ])
            }
            print(TextTable.render(rows), terminator: "")
            if outputs.contains(where: { y in y.data.contains { !$0.isFinite } }) {
                FileHandle.standardError.write(
                    Data("pare: warning: some outputs are NaN or infinite (see the table)\n".utf8))
            }
            guard let first = output.first else { return }
            let paths = outputs.indices.map {
                output.count == outputs.count ? output[$0] : Self.numbered(first, $0, of: outputs.count)
            }
            // Numbered names are known only now: they too must not be an input.
            try OutputPaths.check(outputs: paths, inputs: [model, reading.config].compactMap { $0 } + input)
            for (y, path) in zip(outputs, paths) { try NPY.write(y.tensor, to: path) }
        }
    }

    static func numbered(_ path: String, _ i: Int, of count: Int) -> String {
        guard count > 1 else { return path }
        let base = path.hasSuffix(".npy") ? String(path.dropLast(4)) : path
        return "\(base)_\(i).npy"
    }
}
