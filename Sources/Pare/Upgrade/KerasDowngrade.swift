/// Writing a Keras 3 model for tf.keras 2 (a legacy `.h5` that TensorFlow ≤ 2.15's Keras, or
/// tf_keras, loads): the reverse of `KerasUpgrade`, verified the same way.
///
/// - the config in tf.keras's dialect: layer entries without module, dtypes as names, InputLayer's
///   `batch_shape` as `batch_input_shape`, calls as `[[layer, node, tensor, {kwargs}], …]` with a
///   nested model's calls numbered from 1 again, arguments tf.keras does not take dropped only where
///   they hold the value that means what tf.keras does (`LegacyLayerRules`);
/// - Keras 3's mask operations (`NotEqual` …), which tf.keras computes inside its layers, left out;
/// - hard_sigmoid made Keras 2's: Keras 3's hard_sigmoid(x) is Keras 2's hard_sigmoid(x / 1.2);
/// - the weights of each layer group in tf.keras's order: trainable ones first.
public enum KerasDowngrade {
    public static func downgrade(_ model: Model) throws -> KerasUpgrade.Result {
        guard let config = model.config else {
            throw PareError(
                file: model.sourcePath,
                .needsArchitecture(
                    operation: "writing for tf.keras 2", plainTensors: model.kind == .tensors, keras3Weights: false))
        }
        let checked = try CheckedModel(model)
        guard let arch = checked.architecture, let analysis = checked.analysis else {
            throw PareError(file: model.sourcePath, "has no architecture to rewrite")
        }
        if let error = analysis.unsupportedError(
            file: model.sourcePath, consequence: "Pare cannot rewrite or verify what it does not know")
        {
            throw error
        }
        // h5py stores bfloat16 as an opaque type; tf.keras's legacy loader cannot cast it to a variable.
        if let layer = model.layers.first(where: { $0.weights.contains { $0.tensor.dtype == .bfloat16 } }) {
            throw PareError(
                file: model.sourcePath, object: "layer '\(layer.name)'",
                "holds bfloat16 weights, which tf.keras cannot load from a legacy .h5; nothing written")
        }
        var result = model
        let hardSigmoid = try WeightUpgrade.applyHardSigmoidFixes(
            &result, arch: arch, checked: checked, factor: 1 / WeightUpgrade.hardSigmoidFactor, symbol: "÷ 1.2")
        var rewrite = LegacyConfigRewrite(architecture: arch, analysis: analysis)
        rewrite.rescaledActivations = hardSigmoid.rescaled
        let newConfig: JSON
        do { newConfig = try rewrite.rewrite(config) } catch let error as ArchitectureError {
            throw PareError(file: model.sourcePath, object: "model_config", "\(error)")
        }
        result.config = newConfig
        result.source.originalConfigText = nil
        result.source.kerasMetadataText = nil
        result.source.rootAttributes = []
        result.source.weightsGroupAttributes = []
        result.kerasVersion = Keras3Serialization.legacyDialectVersion
        result.backend = "tensorflow"
        result.trainingConfig = nil
        result.layers = result.layers.filter { layer in arch.layer(layer.name).map { !$0.isKeras3Operation } ?? true }
        try orderTrainableFirst(&result, checked: checked, arch: arch)
        // tf.keras's legacy loader takes the weight groups in its own order of the model's layers.
        if let layers = newConfig["config"]?["layers"]?.arrayValue, newConfig["class_name"]?.stringValue != "Sequential"
        {
            let offsets = Dictionary(
                arch.layers.map { layer in
                    let skipsFirst =
                        layer.nested != nil
                        && (layer.className != LayerRegistry.sequential || layer.nested?.layers.first?.isInput == true)
                    return (layer.name, skipsFirst ? 1 : 0)
                },
                uniquingKeysWith: { a, _ in a })
            let order = Keras3LayerOrder.tfKerasOrder(
                layers,
                outputs: arch.outputs.map {
                    TensorRef(layer: $0.layer, node: $0.node + (offsets[$0.layer] ?? 0), tensor: $0.tensor)
                }, nodeOffsets: offsets)
            let rank = Dictionary(order.enumerated().map { ($1, $0) }, uniquingKeysWith: { a, _ in a })
            result.layers = result.layers.enumerated().sorted { a, b in
                (rank[a.element.name] ?? order.count + a.offset, a.offset) < (
                    rank[b.element.name] ?? order.count + b.offset, b.offset
                )
            }.map(\.element)
        }
        var notes = rewrite.notes
        if model.config?["compile_config"].map({ !$0.isNull }) == true || model.optimizer != nil {
            notes.append(
                "Keras 3's compile config and optimizer state have no tf.keras form: the result loads uncompiled")
            result.optimizer = nil
        }
        do { try result.validate() } catch let error as PareError {
            throw PareError(
                file: model.sourcePath, object: error.object,
                "the tf.keras config, rebuilt from this one, does not read back (\(error.problem)); "
                    + "the source config is likely not one Keras loads: nothing written")
        }
        return KerasUpgrade.Result(
            model: result, notes: notes, hardSigmoidFixes: hardSigmoid.fixes, approximations: hardSigmoid.approximations
        )
    }

    /// tf.keras loads a layer group's weights in the order of `trainable_weights + non_trainable_weights`
    /// (for a nested model: every inner layer's trainable weights, then the others); Keras 3 files
    /// list them layer by layer.
    static func orderTrainableFirst(_ model: inout Model, checked: CheckedModel, arch: Architecture) throws {
        var trainable: [String: Bool] = [:]
        for unit in checked.weightUnits {
            let parts = unit.path.split(separator: "/").map(String.init)
            var frozen = false
            var level: Architecture? = arch
            for part in parts {
                if level?.layer(part)?.config["trainable"]?.boolValue == false { frozen = true }
                level = level?.layer(part)?.nested
            }
            for specified in checked.specifiedWeights(unit.path) {
                trainable[specified.weight.name] = !frozen && specified.spec.trainable
            }
        }
        for i in model.layers.indices {
            let weights = model.layers[i].weights
            model.layers[i].weights =
                weights.filter { trainable[$0.name] ?? true } + weights.filter { !(trainable[$0.name] ?? true) }
        }
    }
}

extension LayerNode {
    var isKeras3Operation: Bool { LayerRegistry.isKeras3Operation(className) }
}
