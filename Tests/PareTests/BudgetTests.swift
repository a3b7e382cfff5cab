import XCTest

@testable import Pare

/// `--target-params` and friends: the channels removed across layers meet the budget within 2%,
/// never empty a layer, and `--round-to` keeps narrowed widths multiples.
final class BudgetTests: XCTestCase {
    func testParameterBudgetsAreMetWithinTwoPercentAndNoLayerIsEmptied() throws {
        let model = try ModelFile.read(Fixtures.path("mnist_cnn/keras3.h5"))
        for fraction in [0.75, 0.5, 0.3] {
            var selection = PruneSelection()
            selection.budget = PruneBudget(.parameters, .fraction(fraction))
            let job = try PruneJob.plan(model, selection: selection, criterion: .l1, calibration: nil)
            let outcome = try XCTUnwrap(job.budget)
            let target = Int((fraction * Double(model.parameterCount)).rounded(.down))
            XCTAssertEqual(outcome.target, target)
            let pruned = try Rewriter(planner: job.planner, plan: job.plan).prune(constants: nil).model
            // The outcome reports what the rewritten model really has, within 2% under the target.
            XCTAssertEqual(outcome.reached, pruned.parameterCount)
            XCTAssertLessThanOrEqual(pruned.parameterCount, target)
            XCTAssertGreaterThanOrEqual(Double(pruned.parameterCount), 0.98 * Double(target), "\(fraction)")
            XCTAssertTrue(outcome.met)
            for (path, kept) in job.plan.keptChannels { XCTAssertFalse(kept.isEmpty, path) }
        }
    }

    func testRoundToKeepsEveryNarrowedWidthAMultiple() throws {
        let model = try ModelFile.read(Fixtures.path("mnist_cnn/keras3.h5"))
        var selection = PruneSelection()
        selection.budget = PruneBudget(.parameters, .fraction(0.4))
        selection.roundTo = 8
        let job = try PruneJob.plan(model, selection: selection, criterion: .l2, calibration: nil)
        var narrowed = 0
        for space in job.plan.graph.spaces {
            let kept = job.plan.keptChannels[space.path]!.count
            guard kept < space.count else { continue }
            narrowed += 1
            XCTAssertEqual(kept % 8, 0, "\(space.path) keeps \(kept)")
        }
        XCTAssertGreaterThan(narrowed, 0)
        XCTAssertLessThanOrEqual(try XCTUnwrap(job.budget).reached, try XCTUnwrap(job.budget).target)
    }

    func testAnUnreachableBudgetIsRefusedByName() throws {
        let model = try ModelFile.read(Fixtures.path("mnist_cnn/keras3.h5"))
        var selection = PruneSelection()
        selection.budget = PruneBudget(.parameters, .count(10))
        XCTAssertThrowsError(try PruneJob.plan(model, selection: selection, criterion: .l1, calibration: nil)) {
            XCTAssertTrue("\($0)".contains("target-params"), "\($0)")
        }
    }
}
