import ArgumentParser
import Foundation
import Pare

struct Mask: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Write the zero-masked model: same architecture, the selected channels' weights set to zero.",
        discussion: """
            Zeroes the selected channels' kernel slices and biases, and the BatchNormalization γ and β \
            (and depthwise slices) they pass through, as one does by hand to test a pruning. The same \
            selection and criterion pick the same channels as `pare prune`, whose result is verified \
            against this model.
            """
    )
    @Argument(help: "The model to mask.") var input: String
    @Argument(help: "Where to write the masked model.") var output: String
    @OptionGroup var selection: SelectionOptions
    @OptionGroup var reading: ReadOptions

    func validate() throws {
    }

    func run() throws {
        try reading.run(reading: [input] + selection.calibration, writing: [output]) {
            let model = try reading.read(input, graphFor: "mask")
            let calibration =
                selection.calibration.isEmpty
                ? nil : try ModelInputs.loadCalibration(selection.calibration, for: model, file: input)
            let job = try PruneJob.plan(
                model, selection: try selection.selection(for: model, file: input),
                criterion: selection.parsedCriterion,
                calibration: calibration)
            let plan = job.plan
            let masked = try Rewriter(planner: job.planner, plan: plan).mask()
            printNotes(try ModelFile.write(masked, to: output), output: output)
            var rows = [["layer", "channels", "masked", "indices"]]
            for space in plan.graph.spaces {
                let kept = plan.keptChannels[space.path] ?? []
                let gone = Set(0..<space.count).subtracting(kept).sorted()
                guard !gone.isEmpty else { continue }
                let list = gone.prefix(24).map(String.init).joined(separator: ",") + (gone.count > 24 ? ",…" : "")
                rows.append([space.path, "\(space.count)", "\(gone.count)", list])
            }
            // Attention layers' heads: the value projection of each masked head is zero.
            for space in job.planner.heads {
                let gone = Set(0..<space.count).subtracting(plan.keptHeads[space.path] ?? []).sorted()
                guard !gone.isEmpty else { continue }
                rows.append([
                    space.path, "\(space.count) heads", "\(gone.count)", gone.map(String.init).joined(separator: ","),
                ])
            }
            print(TextTable.render(rows), terminator: "")
            print(PruneText.sizes(input: input, output: output), terminator: "")
        }
    }
}
