import ArgumentParser
import Foundation
import Pare

struct Sparsify: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract:
            "Zero the lowest-ranked kernel weights (magnitude, or Wanda on calibration data) to a target sparsity.",
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
    @Option(
        name: .customLong("input"),
        help: "Inputs to measure the cost on (.npy, one per model input); default: random inputs.")
    var costInput: [String] = []
    @OptionGroup var randomInputs: RandomInputOptions
    @Option(name: .long, help: "Labels of the --input examples (.npy): accuracy before and after is printed.")
    var labels: String?
    @Option(
        name: .long,
        help: """
            Ranking: magnitude (|w|, default) or wanda (|w| × the L2 norm of its input feature over --calibration; \
            each output keeps the same share of its inputs with --per-layer).
            """)
    var criterion: String = "magnitude"
    @Flag(
        name: .long,
        help: """
            SparseGPT-style, on --calibration data in graph order: each Dense and convolution is refitted to the \
            original's outputs, then zeroed block by block with each removed weight's error spread over the \
            weights left (inverse Hessian of the layer's inputs). Per-layer errors are printed.
            """)
    var reconstruct = false
    @Option(name: .long, help: "Calibration inputs (.npy, one per model input) for wanda and --reconstruct.")
    var calibration: [String] = []

    func validate() throws {
        if perLayer && global { throw ValidationError("--per-layer and --global exclude each other") }
        if !(0..<1).contains(sparsity) { throw ValidationError("--sparsity must be in [0, 1)") }
        if labels != nil && costInput.isEmpty { throw ValidationError("--labels needs the --input they label") }
        guard let parsed = SparsityCriterion(rawValue: criterion) else {
            throw ValidationError(
                "--criterion must be one of \(SparsityCriterion.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        if (parsed == .wanda || reconstruct) && calibration.isEmpty {
            throw ValidationError("--\(reconstruct ? "reconstruct" : "criterion wanda") needs --calibration inputs")
        }
        if parsed == .magnitude && !reconstruct && !calibration.isEmpty {
            throw ValidationError(
                "--calibration is used by --criterion wanda and --reconstruct only; magnitude ranks |w|")
        }
        if let empty = calibration.first(where: \.isEmpty) {
            throw ValidationError("--calibration '\(empty)': an empty path")
        }
    }

    func run() throws {
        try reading.run(
            reading: [input] + costInput + calibration + [labels].compactMap { $0 }, writing: [output]
        ) {
            let model = try reading.read(input)
            let names = layers.map { Set($0.split(separator: ",").map(String.init)) }
            let parsed = SparsityCriterion(rawValue: criterion) ?? .magnitude
            let sparsified: MagnitudeSparsifier.Sparsified
            if parsed == .magnitude && !reconstruct {
                sparsified = try MagnitudeSparsifier.sparsify(model, sparsity: sparsity, global: global, layers: names)
            } else {
                var options = DataAwareSparsifier.Options(sparsity: sparsity)
                (options.global, options.layers, options.criterion) = (global, names, parsed)
                options.reconstruct = reconstruct
                sparsified = try DataAwareSparsifier.sparsify(
                    model, options, calibration: try ModelInputs.loadCalibration(calibration, for: model, file: input))
            }
            let (sparse, rows) = (sparsified.model, sparsified.rows)
            // Measured before anything is written: bad --input or --labels leave no output behind.
            let cost = model.config != nil ? try costText(original: model, sparse: sparse) : ""
            printNotes(try ModelFile.write(sparse, to: output), output: output)
            // The criterion column (and the fit's errors) only when data chose the zeros.
            let detailed = parsed != .magnitude || reconstruct
            var table = [["layer", "weight", "zeros", "total", "sparsity"] + (detailed ? ["criterion"] : [])]
            if reconstruct { table[0].append("error (criterion alone → reconstructed)") }
            for r in rows {
                var line = [r.layer, r.weight, "\(r.zeros)", "\(r.count)", String(format: "%.4f", r.sparsity)]
                if detailed { line.append(r.criterion) }
                if reconstruct {
                    line.append(
                        r.errorBefore.map { b in
                            String(format: "%.4f → %.4f", b, r.errorAfter ?? .nan)
                        } ?? "")
                }
                table.append(line)
            }
            let zeros = rows.reduce(0) { $0 + $1.zeros }
            let total = rows.reduce(0) { $0 + $1.count }
            table.append(
                [
                    "total", "", "\(zeros)", "\(total)", String(format: "%.4f", Double(zeros) / Double(max(1, total))),
                ] + Array(repeating: "", count: table[0].count - 5))
            if reconstruct {
                print(
                    "reconstruction on \(calibration.joined(separator: ", ")) (error: relative, of each layer's "
                        + "pre-activation output against the original's):")
            }
            print(TextTable.render(table), terminator: "")
            print(cost, terminator: "")
        }
    }

    /// What zeroing cost: the sparse model against the original on the inputs. A model Pare's
    /// interpreter cannot run is still sparsified; the cost is then not measured, and said so,
    /// unless inputs were given to measure it on.
    func costText(original: Model, sparse: Model) throws -> String {
        let outputs: (before: [FloatArray], after: [FloatArray], names: [String])
        do {
            let inputs = try ModelInputs.loadOrGenerate(
                costInput, random: randomInputs.random, seed: randomInputs.seed, for: original, file: input)
            let before = try Interpreter(original)
            outputs = (
                try before.run(inputs, batchSize: 256), try Interpreter(sparse).run(inputs, batchSize: 256),
                before.outputNames
            )
        } catch  where costInput.isEmpty {
            return "note: the cost against the original model is not measured: \(error)\n"
        }
        let drift = zip(outputs.names, zip(outputs.before, outputs.after)).map { name, pair in
            Equivalence.compare(name: name, reference: pair.0, candidate: pair.1, atol: 0, rtol: 0)
        }
        var accuracy: (before: Evaluation, after: Evaluation)?
        if let labels {
            let truth = try NPY.read(labels)
            accuracy = (
                try Evaluation.of(predictions: outputs.before[0], labels: truth, file: labels),
                try Evaluation.of(predictions: outputs.after[0], labels: truth, file: labels)
            )
        }
        let source = costInput.isEmpty ? randomInputs.described : costInput.joined(separator: ", ")
        return PruneText.cost(drift, inputs: source, accuracy: accuracy, labels: labels)
    }
}
