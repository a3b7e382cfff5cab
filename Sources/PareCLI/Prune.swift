import ArgumentParser
import Foundation
import Pare

struct Prune: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Remove channels physically, rewire every consumer, and verify against the zero-masked model.",
        discussion: """
            Coupled channels (residual merges, concatenations, shared layers, depthwise convolutions) are \
            found from the graph and removed together. A removed channel that emits a non-zero constant \
            (bias, BatchNormalization β, sigmoid(0), …) has its contribution folded into the next layer's \
            bias: exact for Dense consumers and valid-padded convolutions, approximate at the borders of \
            same-padded ones (reported). The result is checked by running both models; exit 1 and no \
            output if they differ beyond tolerance.
            """
    )
    @Argument(help: "The model to prune.") var input: String
    @Argument(help: "Where to write the pruned model.") var output: String
    @OptionGroup var selection: SelectionOptions
    @OptionGroup var reading: ReadOptions
    @Flag(name: .long, help: "Do not fold removed channels' constant outputs into consumers' biases.") var noFold =
        false
    @Flag(
        name: .long,
        help: """
            Remove channels through LayerNormalization / RMSNormalization over the channel axis (a \
            transformer's residual width). Their statistics then cover fewer channels, so the result is \
            approximate: it is compared with the original model, the error printed, and written anyway.
            """)
    var approximateNorm = false
    @Option(
        name: .customLong("input"),
        help: "Inputs to verify on (.npy, one per model input); default: --calibration, else random.")
    var verifyInput: [String] = []
    @OptionGroup var randomInputs: RandomInputOptions
    @Flag(
        name: .long,
        help: """
            After removal, fit the layers whose inputs changed to the original on --calibration data: \
            BatchNormalization statistics recomputed, Dense and convolution weights refitted by ridge least \
            squares, in graph order. The rewrite is verified first; the refit's cost is reported after.
            """)
    var reconstruct = false
    @Flag(
        name: .long,
        help: """
            Only recompute the BatchNormalization statistics downstream of the removal on --calibration data \
            (adaptive BN); --reconstruct does this and refits the weights too.
            """)
    var recalibrateBn = false
    @Option(
        name: .long,
        help: "Labels of the verification inputs (.npy): the accuracy of the original and the pruned model is printed.")
    var labels: String?
    @Option(name: .long, parsing: .unconditional, help: "Absolute tolerance of the verification.") var atol: Double =
        1e-6
    @Option(name: .long, parsing: .unconditional, help: "Relative tolerance of the verification (of max |reference|).")
    var rtol: Double = 1e-5

    func validate() throws {
        guard atol >= 0, rtol >= 0, atol.isFinite, rtol.isFinite else {
            throw ValidationError("tolerances must be finite numbers ≥ 0 (--atol \(atol), --rtol \(rtol))")
        }
        if (reconstruct || recalibrateBn) && selection.calibration.isEmpty {
            throw ValidationError(
                "--\(reconstruct ? "reconstruct" : "recalibrate-bn") needs --calibration (the data it fits on)")
        }
        if reconstruct && recalibrateBn {
            throw ValidationError("--reconstruct already recomputes BatchNormalization statistics; give one")
        }
    }

    func run() throws {
        try reading.run(
            reading: [input] + verifyInput + selection.calibration + [labels].compactMap { $0 }, writing: [output]
        ) {
            let model = try reading.read(input, graphFor: "prune")
            let s = try selection.selection(for: model, file: input)
            let calibration =
                selection.calibration.isEmpty
                ? nil : try ModelInputs.loadCalibration(selection.calibration, for: model, file: input)
            let verifyPaths = verifyInput.isEmpty ? selection.calibration : verifyInput
            let loadInputs = {
                try ModelInputs.loadOrGenerate(
                    verifyPaths, random: randomInputs.random, seed: randomInputs.seed, for: model, file: input)
            }
            // The sensitivity allocation measures on the verification inputs (without calibration data);
            // otherwise they are made after planning, which refuses what it cannot prune before a large
            // input is generated.
            let early = s.budget?.allocation == .sensitivity && calibration == nil ? try loadInputs() : nil
            let job = try PruneJob.plan(
                model, selection: s, criterion: selection.parsedCriterion, calibration: calibration,
                approximateNormalization: approximateNorm, sensitivityInputs: early)
            let inputs = try early ?? loadInputs()
            let onlyDead = s.dropDead && !s.usesCriterion && s.drop.isEmpty
            // Channels removed through a normalization change its statistics: the masked model is no
            // reference then; the drift from the original is measured and reported instead.
            let approximate = approximateNorm && job.passesNormalization
            // Removed residual channels carry no constant to fold: folding applies to the exact path only.
            let result = try PruneJob.prune(
                job, fold: !noFold && !approximate, verifyInputs: inputs, referenceIsOriginal: onlyDead || approximate,
                atol: atol,
                rtol: rtol)
            if let budget = job.budget { print(PruneText.budget(budget), terminator: "") }
            print(PruneText.table(result), terminator: "")
            print(PruneText.leftAlone(job.plan.graph), terminator: "")
            for name in job.plan.leftWholeByRounding {
                print(
                    "  --round-to \(selection.roundTo ?? 1) left \(name) whole: its share of --ratio rounds to no step")
            }
            print(PruneText.folds(result.folds), terminator: "")
            let against =
                approximate
                ? "the original model (approximate: channels removed through a normalization change its statistics)"
                : onlyDead ? "the original model (its dead channels were already zero)" : "the zero-masked model"
            let source =
                verifyPaths.isEmpty ? randomInputs.described : verifyPaths.joined(separator: ", ")
            print(
                PruneText.verification(result.comparisons, against: against, inputs: source, measuredOnly: approximate),
                terminator: "")
            guard result.verified || approximate else {
                throw PareError(
                    file: input,
                    "the pruned model differs from \(against) beyond tolerance (atol \(atol), rtol \(rtol)); "
                        + "nothing written"
                )
            }
            var written = result.pruned!
            var (outputs, drift) = (result.outputs, result.drift)
            if reconstruct || recalibrateBn, let calibration {
                // A depthwise layer's kept input channels: the plan's kept positions of its input.
                let keptInputs = job.plan.graph.inputMaps.keys.reduce(into: [String: [Int]]()) { kept, path in
                    kept[path] = job.plan.keptPositions(path)
                }
                let rebuilt = try Reconstruction.reconstruct(
                    original: model, pruned: written, keptOutputs: job.plan.keptChannels, keptInputs: keptInputs,
                    calibration: calibration, refit: reconstruct)
                print(PruneText.reconstruction(rebuilt, calibration: selection.calibration), terminator: "")
                written = rebuilt.model
                outputs = try Interpreter(written).run(inputs, batchSize: 256)
                drift = zip(drift, zip(result.originalOutputs, outputs)).map { old, pair in
                    Equivalence.compare(name: old.output, reference: pair.0, candidate: pair.1, atol: 0, rtol: 0)
                }
            }
            var accuracy: (before: Evaluation, after: Evaluation)?
            if let labels {
                let truth = try NPY.read(labels)
                accuracy = (
                    try Evaluation.of(predictions: result.originalOutputs[0], labels: truth, file: labels),
                    try Evaluation.of(predictions: outputs[0], labels: truth, file: labels)
                )
            }
            print(PruneText.cost(drift, inputs: source, accuracy: accuracy, labels: labels), terminator: "")
            printNotes(try ModelFile.write(written, to: output), output: output)
            print(PruneText.sizes(input: input, output: output), terminator: "")
            if let target = selection.targetSize, let budget = job.budget {
                // The budget counted weight bytes plus the input's other bytes; the writer's own headers
                // differ a little from the input's, so the file is measured and compared here.
                let size = (try? FileManager.default.attributesOfItem(atPath: output)[.size] as? Int) ?? 0
                let wanted = budget.target + max(SelectionOptions.fileSize(input) - model.weightBytes, 0)
                print(PruneText.sizeTarget(target, file: output, size: size, wanted: wanted), terminator: "")
            }
        }
    }

}
