/// Everything one call to `Model.pruned(_:)` needs: what to remove, how to rank, how to verify.
public struct PruneOptions: Sendable {
    public var selection: PruneSelection
    public var criterion: PruneCriterion = .l1
    /// Inputs the activation criteria (mean activation, APoZ) rank channels on, one array per model input.
    public var calibration: [FloatArray]?
    /// Inputs the pruned model is verified on; nil: the calibration inputs, else `randomExamples` in [0, 1).
    public var verifyInputs: [FloatArray]?
    public var randomExamples = 16
    public var seed: UInt64 = 0
    /// Fold removed channels' constant outputs into consumers' biases.
    public var fold = true
    /// Verification tolerances: absolute, and relative to the reference's largest magnitude.
    public var atol = 1e-6
    public var rtol = 1e-5

    public init(selection: PruneSelection, criterion: PruneCriterion = .l1) {
        self.selection = selection
        self.criterion = criterion
    }
}

extension Model {
    /// Plans, removes and folds the selected channels, and verifies the result by running it
    /// against the zero-masked model (the original, when only dead channels go): the whole of
    /// `pare prune` but writing. Check `verified` before using `pruned`.
    public func pruned(_ options: PruneOptions) throws -> PruneResult {
        let job = try PruneJob.plan(
            self, selection: options.selection, criterion: options.criterion, calibration: options.calibration)
        let inputs =
            try options.verifyInputs ?? options.calibration
            ?? ModelInputs.loadOrGenerate(
                [], random: options.randomExamples, seed: options.seed, for: self, file: sourcePath)
        let s = options.selection
        return try PruneJob.prune(
            job, fold: options.fold, verifyInputs: inputs,
            referenceIsOriginal: s.dropDead && !s.usesCriterion && s.drop.isEmpty, atol: options.atol,
            rtol: options.rtol)
    }
}
