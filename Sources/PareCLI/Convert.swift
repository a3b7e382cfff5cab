import ArgumentParser
import Foundation
import Pare

struct Convert: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Rewrite a model file in another format; upgrade Keras 2 files to Keras 3, verified.",
        discussion: """
            Writes by the destination's name: .keras (Keras 3 archive), .weights.h5 (Keras 3 weights), .pare, \
            anything else a Keras legacy .h5. Tensors are copied bit-identical, except when a Keras 2 / tf.keras \
            model is written as .keras or .weights.h5: then its config is rewritten in Keras 3's dialect and its \
            weights converted where Keras 3 computes differently (cuDNN layers, hard_sigmoid), and the result is \
            run with Keras 3's semantics against the source with Keras 2's, on --input data or random inputs. \
            Beyond tolerance nothing is written (exit 1) unless --accept-drift. With --keras 2, a Keras 3 model \
            is written as a legacy .h5 tf.keras 2 loads. The input is never modified; the output appears only \
            when complete.
            """
    )

    @Argument(help: "The model to read.") var input: String
    @Argument(help: "Where to write the result.") var output: String
    @Option(
        name: .long, parsing: .unconditional,
        help: "Compress datasets with zlib at this level (1-9), with the shuffle filter.")
    var deflate: Int?
    @Flag(name: .long, help: "Leave optimizer state out.") var dropOptimizer = false
    @Option(
        name: .long, parsing: .unconditional,
        help: ArgumentHelp(
            "Write for this Keras major version: 3 upgrades a Keras 2 model (the default for .keras and "
                + ".weights.h5), 2 writes a Keras 3 model as a legacy .h5 for tf.keras 2."))
    var keras: Int?
    @Option(
        name: .customLong("input"),
        help: "Inputs to verify an upgrade on (.npy, one per model input); default: random inputs.")
    var verifyInput: [String] = []
    @OptionGroup var randomInputs: RandomInputOptions
    @Option(name: .long, parsing: .unconditional, help: "Absolute tolerance of the upgrade's verification.")
    var atol: Double = 1e-6
    @Option(name: .long, parsing: .unconditional, help: "Relative tolerance (of max |source output|).")
    var rtol: Double = 1e-5
    @Flag(name: .long, help: "Write an upgrade whose outputs differ beyond tolerance (the drift is printed).")
    var acceptDrift = false
    @OptionGroup var reading: ReadOptions

    func validate() throws {
        if let deflate, !(1...9).contains(deflate) { throw ValidationError("--deflate takes a level from 1 to 9") }
        if let keras, ![2, 3].contains(keras) { throw ValidationError("--keras takes 2 or 3") }
        guard atol >= 0, rtol >= 0, atol.isFinite, rtol.isFinite else {
            throw ValidationError("tolerances must be finite numbers ≥ 0 (--atol \(atol), --rtol \(rtol))")
        }
        let keras3Destination = output.hasSuffix(".keras") || output.hasSuffix(".weights.h5")
        if keras == 2, keras3Destination || output.hasSuffix(".pare") {
            throw ValidationError("--keras 2 writes a legacy .h5; \(output) names a Keras 3 or .pare file")
        }
        if keras == 3, !keras3Destination {
            throw ValidationError("--keras 3 writes .keras or .weights.h5; \(output) names another format")
        }
    }

    func run() throws {
        try reading.run(reading: [input] + verifyInput, writing: [output]) {
            let model = try reading.read(input)
            let options = KerasLegacyH5.WriteOptions(deflateLevel: deflate, dropOptimizer: dropOptimizer)
            let keras3Destination = output.hasSuffix(".keras") || output.hasSuffix(".weights.h5")
            var written = model
            if keras3Destination, KerasUpgrade.isKeras2(model) {
                written = try upgrade(model)
            } else if keras == 2 {
                written = try downgrade(model)
            } else if !verifyInput.isEmpty || acceptDrift {
                throw PareError(
                    file: input,
                    "--input and --accept-drift apply to upgrades (a Keras 2 model written as .keras or "
                        + ".weights.h5) and --keras 2; this conversion copies every tensor as it is")
            }
            printNotes(try ModelFile.write(written, to: output, options: options), output: output)
        }
    }

    /// The Keras 3 form of a Keras 2 model, verified; throws (nothing written) beyond tolerance.
    private func upgrade(_ model: Model) throws -> Model {
        let result = try KerasUpgrade.upgrade(model)
        for line in result.notes + result.hardSigmoidFixes { print("upgrade: \(line)") }
        for line in result.approximations { print("upgrade: not exact: \(line)") }
        let comparisons = try verifyOutputs(original: model, candidate: result.model)
        if output.hasSuffix(".weights.h5"), !result.hardSigmoidFixes.isEmpty {
            printNotes(
                [
                    "these weights fit the upgraded architecture (hard_sigmoid rewritten), not the source's: write "
                        + ".keras to get both"
                ], output: output)
        }
        try requireWithinTolerance(comparisons, what: "the Keras 3 model")
        return result.model
    }

    /// The tf.keras 2 form of a Keras 3 model, verified the same way.
    private func downgrade(_ model: Model) throws -> Model {
        if KerasUpgrade.isKeras2(model) { return model }
        let result = try KerasDowngrade.downgrade(model)
        for line in result.notes + result.hardSigmoidFixes { print("downgrade: \(line)") }
        for line in result.approximations { print("downgrade: not exact: \(line)") }
        let comparisons = try verifyOutputs(original: model, candidate: result.model)
        try requireWithinTolerance(comparisons, what: "the tf.keras 2 model")
        return result.model
    }

    private func verifyOutputs(original: Model, candidate: Model) throws -> [OutputComparison] {
        var inputs = try ModelInputs.loadOrGenerate(
            verifyInput, random: randomInputs.random, seed: randomInputs.seed, for: original, file: input)
        // The two lines differ mostly where masks are: random sequences get padding to reach them.
        if verifyInput.isEmpty { inputs = ModelInputs.paddingSequences(inputs) }
        let comparisons = try KerasUpgrade.verify(
            original: original, upgraded: candidate, inputs: inputs, atol: atol, rtol: rtol)
        let source =
            verifyInput.isEmpty
            ? "\(randomInputs.described), sequences zero-padded" : verifyInput.joined(separator: ", ")
        let sourceSemantics = "Keras \(original.kerasVersion.map { $0.split(separator: ".").first ?? "?" } ?? "?")"
        print(
            PruneText.verification(
                comparisons, against: "the source run as \(sourceSemantics) computes it", inputs: source),
            terminator: "")
        return comparisons
    }

    private func requireWithinTolerance(_ comparisons: [OutputComparison], what: String) throws {
        guard let bad = comparisons.first(where: { !$0.withinTolerance }) else { return }
        if acceptDrift {
            print("drift accepted (--accept-drift): \(what) is written although '\(bad.output)' differs")
            return
        }
        throw PareError(
            file: input, object: "output '\(bad.output)'",
            "\(what) differs from the source beyond tolerance (max abs \(bad.maxAbsError), relative "
                + "\(bad.maxRelativeError); atol \(atol), rtol \(rtol)); nothing written (--accept-drift writes it)")
    }
}
