import ArgumentParser
import Foundation
import Pare

struct Verify: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run two models on the same inputs and report how far apart their outputs are.",
        discussion: """
            Per output: max-abs error, max relative error (max-abs / max |A|), cosine similarity and top-1 \
            agreement, with A as the reference. Exit 0 only if every output is within tolerance: \
            max-abs ≤ atol + rtol · max |A|, and NaN/Inf in the same places.
            """
    )
    @Argument(help: "The reference model.") var reference: String
    @Argument(help: "The model to check against it.") var candidate: String
    @Option(name: .long, help: "An input .npy (repeat for several model inputs).") var input: [String] = []
    @OptionGroup var randomInputs: RandomInputOptions
    @Option(name: .long, parsing: .unconditional, help: "Absolute tolerance.") var atol: Double = 1e-6
    @Option(name: .long, parsing: .unconditional, help: "Relative tolerance (of max |A|).") var rtol: Double = 1e-5
    @Option(
        name: .long, parsing: .unconditional,
        help: "Examples per step (bounds memory); default: as many as fit the memory budget.")
    var batch: Int?
    @Flag(name: .long, help: "Print the comparison as JSON.") var json = false
    @OptionGroup var reading: ReadOptions

    func validate() throws {
        guard atol >= 0, rtol >= 0, atol.isFinite, rtol.isFinite else {
            throw ValidationError("tolerances must be finite numbers ≥ 0 (--atol \(atol), --rtol \(rtol))")
        }
        if let batch, batch < 1 { throw ValidationError("--batch must be at least 1") }
    }

    func run() throws {
        try reading.run(reading: [reference, candidate] + input) {
            let a = try Interpreter(try reading.read(reference, graphFor: "verify"))
            let b = try Interpreter(try reading.read(candidate, graphFor: "verify"))
            guard a.inputs.count == b.inputs.count, zip(a.inputs, b.inputs).allSatisfy({ $0.shape == $1.shape }) else {
                throw PareError(
                    file: candidate,
                    "its inputs \(b.inputs.map(\.shape)) differ from \(reference)'s \(a.inputs.map(\.shape))")
            }
            guard a.outputNames.count == b.outputNames.count else {
                throw PareError(
                    file: candidate, "has \(b.outputNames.count) outputs, \(reference) has \(a.outputNames.count)")
            }
            if input.isEmpty {
                try a.requireFits(examples: randomInputs.random)
                try b.requireFits(examples: randomInputs.random)
            }
            let inputs = try ModelInputs.loadOrGenerate(
                input, random: randomInputs.random, seed: randomInputs.seed, for: a, file: reference)
            let ya = try a.run(inputs, batchSize: batch ?? .max)
            let yb = try b.run(inputs, batchSize: batch ?? .max)
            let results = zip(a.outputNames, zip(ya, yb)).map { name, pair in
                Equivalence.compare(name: name, reference: pair.0, candidate: pair.1, atol: atol, rtol: rtol)
            }
            if json {
                let encoder = JSONEncoder()
                encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
                print(String(decoding: try encoder.encode(results), as: UTF8.self))
            } else {
                var rows = [["output", "shape", "max abs", "max rel", "cosine", "top-1 agree", "verdict"]]
                for r in results {
                    rows.append([
                        r.output, "\(r.shape)", String(format: "%.3g", r.maxAbsError),
                        String(format: "%.3g", r.maxRelativeError),
                        String(format: "%.9f", r.cosineSimilarity),
                        r.top1Agreement.map { String(format: "%.4f", $0) } ?? "-",
                        r.withinTolerance ? "ok" : "DIFFERENT",
                    ])
                }
                print(TextTable.render(rows), terminator: "")
                let source = input.isEmpty ? randomInputs.described : input.joined(separator: ", ")
                print("inputs: \(source); tolerance: max abs ≤ \(atol) + \(rtol) · max |reference|")
            }
            if let bad = results.first(where: { !$0.withinTolerance }) {
                throw PareError(
                    file: candidate, object: "output '\(bad.output)'",
                    "differs from \(reference) beyond tolerance (max abs \(bad.maxAbsError), relative "
                        + "\(bad.maxRelativeError))"
                )
            }
        }
    }
}
