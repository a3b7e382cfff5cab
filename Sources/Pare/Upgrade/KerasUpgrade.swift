/// Upgrading a Keras 2 / tf.keras 2 model to Keras 3: the config in Keras 3's dialect
/// (`ConfigUpgrade`, `LayerUpgradeRules`), the weights in Keras 3's terms (`WeightUpgrade`), and
/// the verification that runs the source with Keras 2's semantics and the result with Keras 3's.
public enum KerasUpgrade {
    public struct Result: Sendable {
        /// The upgraded model: a Keras 3 config over the converted weights.
        public var model: Model
        /// Rewrites beyond the dialect (inputs added, classes replaced), one sentence each.
        public var notes: [String]
        /// How each Keras 2 hard_sigmoid was made Keras 3's.
        public var hardSigmoidFixes: [String]
        /// What could not be made exact: the verification measures it.
        public var approximations: [String]
    }

    /// Whether the model's config is in Keras 2's dialect (Keras 2.x or tf.keras 2).
    public static func isKeras2(_ model: Model) -> Bool {
        model.config.map { !Keras3Layout.isKeras3Config($0) } ?? false
    }

    /// The model in Keras 3's dialect. Throws when the model cannot be upgraded (a layer Pare does
    /// not know, an argument Keras 3 cannot express); never drops what it does not understand.
    public static func upgrade(_ model: Model) throws -> Result {
        guard let config = model.config else {
            throw PareError(
                file: model.sourcePath,
                .needsArchitecture(
                    operation: "upgrading to Keras 3", plainTensors: model.kind == .tensors,
                    keras3Weights: false))
        }
        let checked = try CheckedModel(model)
        guard let arch = checked.architecture, let analysis = checked.analysis else {
            throw PareError(file: model.sourcePath, "has no architecture to upgrade")
        }
        if let error = analysis.unsupportedError(
            file: model.sourcePath, consequence: "Pare cannot upgrade or verify what it does not know")
        {
            throw error
        }
        var upgraded = model
        var notes: [String] = []
        // The config rewrite's notes say what became of each cuDNN layer.
        _ = try WeightUpgrade.convertCuDNN(&upgraded, checked: checked, arch: arch)
        for path in WeightUpgrade.dropRenormStatistics(&upgraded, checked: checked, arch: arch) {
            notes.append(
                "'\(path)': batch renormalization (renorm) is training-only and Keras 3 has none: its three "
                    + "training statistics are left out; inference reads the moving mean and variance as before")
        }
        let hardSigmoid = try WeightUpgrade.applyHardSigmoidFixes(
            &upgraded, arch: arch, checked: checked, factor: WeightUpgrade.hardSigmoidFactor, symbol: "× 1.2")
        var rewrite = ConfigUpgrade(architecture: arch, analysis: analysis)
        rewrite.rescaledActivations = hardSigmoid.rescaled
        let newConfig: JSON
        do { newConfig = try rewrite.upgrade(config) } catch let error as ArchitectureError {
            throw PareError(file: model.sourcePath, object: "model_config", "\(error)")
        }
        notes += rewrite.notes
        upgraded.config = newConfig
        upgraded.source.originalConfigText = nil
        upgraded.source.kerasMetadataText = nil
        upgraded.kerasVersion = Keras3Serialization.dialectVersion
        if upgraded.trainingConfig != nil {
            notes.append(
                "the training config (Keras 2's optimizer and loss) is not carried over: the result loads "
                    + "uncompiled")
            upgraded.trainingConfig = nil
        }
        // The result must be a model Pare reads back with the same weights.
        do { try upgraded.validate() } catch let error as PareError {
            throw PareError(
                file: model.sourcePath, object: error.object,
                "the upgraded config, rebuilt from this one, does not read back (\(error.problem)); "
                    + "the source config is likely not one Keras loads: nothing written")
        }
        return Result(
            model: upgraded, notes: notes, hardSigmoidFixes: hardSigmoid.fixes,
            approximations: hardSigmoid.approximations)
    }

    /// Runs `original` with its writer's semantics and `upgraded` with Keras 3's on `inputs`;
    /// one comparison per output.
    public static func verify(
        original: Model, upgraded: Model, inputs: [FloatArray], atol: Double, rtol: Double
    ) throws -> [OutputComparison] {
        let before = try Interpreter(original)
        let after = try Interpreter(upgraded)
        let expected = try before.run(inputs, batchSize: 256)
        let got = try after.run(inputs, batchSize: 256)
        guard expected.count == got.count else {
            throw PareError(
                file: original.sourcePath, "the upgraded model has \(got.count) outputs, the original \(expected.count)"
            )
        }
        return zip(before.outputNames, zip(expected, got)).map { name, pair in
            Equivalence.compare(name: name, reference: pair.0, candidate: pair.1, atol: atol, rtol: rtol)
        }
    }
}
