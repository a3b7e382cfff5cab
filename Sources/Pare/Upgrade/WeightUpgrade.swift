/// The weight changes an upgrade to Keras 3 needs: tf.keras 2's cuDNN layers in Keras's own
/// layout, and Keras 2's hard_sigmoid made Keras 3's.
///
/// Keras 2 computes hard_sigmoid(x) = clip(0.2·x + 0.5, 0, 1), Keras 3 relu6(x + 3) / 6 =
/// clip(x/6 + 0.5, 0, 1); so Keras 2's hard_sigmoid(x) is Keras 3's hard_sigmoid(1.2·x). Where the
/// activation's input is linear in the layer's weights (a Dense or Conv's kernel and bias, an RNN's
/// gate columns), 1.2 is multiplied into them. An `Activation('hard_sigmoid')` layer takes the factor
/// from its producer when that is such a layer with a linear activation and feeds nothing else,
/// and otherwise from a `Rescaling(1.2)` placed in front of it. Anything else (LSTM's cell
/// activation also squashes the cell state) cannot be made exact and is reported.
enum WeightUpgrade {
    static let hardSigmoid = "hard_sigmoid"
    /// Keras 2's slope over Keras 3's: 0.2 / (1/6).
    static let hardSigmoidFactor: Float = 1.2

    /// What becomes of one use of Keras 2's hard_sigmoid.
    enum HardSigmoidFix {
        /// Multiply these slices of the weights of the layer at `path` by 1.2.
        case scaleWeights(path: String, slices: [WeightSlice])
        /// Put a `Rescaling(1.2)` named `name` in front of the Activation layer.
        case rescaling(name: String)
        /// No exact rewrite: the outputs will differ (measured by the verification).
        case approximate(String)
    }

    struct HardSigmoidUse {
        var path: String
        var key: String
        var fix: HardSigmoidFix
    }

    /// Every use of hard_sigmoid in a Keras 2 model and how the upgrade makes it Keras 3's.
    static func hardSigmoidUses(_ arch: Architecture) -> [HardSigmoidUse] {
        var uses: [HardSigmoidUse] = []
        var taken = Set(arch.allLayers().map { String($0.path.split(separator: "/").last!) })
        func visit(_ arch: Architecture, prefix: String) {
            for layer in arch.layers {
                let path = prefix + layer.name
                if let nested = layer.nested {
                    visit(nested, prefix: path + "/")
                    continue
                }
                if layer.className == ActivationLayer.canonicalName {
                    guard activationName(layer.config["activation"]) == hardSigmoid else { continue }
                    if let (producer, slices) = foldableProducer(of: layer, in: arch) {
                        uses.append(
                            HardSigmoidUse(
                                path: path, key: "activation",
                                fix: .scaleWeights(path: prefix + producer, slices: slices)))
                    } else {
                        var name = layer.name + "_keras2_scale"
                        var n = 0
                        while taken.contains(name) {
                            n += 1
                            name = layer.name + "_keras2_scale_\(n)"
                        }
                        taken.insert(name)
                        uses.append(HardSigmoidUse(path: path, key: "activation", fix: .rescaling(name: name)))
                    }
                    continue
                }
                for key in ["activation", "recurrent_activation"] {
                    let wrapped = layer.config["layer"]?["config"]
                    let value = layer.config[key] ?? wrapped?[key]
                    guard activationName(value) == hardSigmoid else { continue }
                    if let backward = layer.config["backward_layer"]?["config"], !backward.isNull,
                        activationName(backward[key]) != hardSigmoid
                    {
                        uses.append(
                            HardSigmoidUse(
                                path: path, key: key,
                                fix: .approximate(
                                    "'\(path)': only one direction uses hard_sigmoid as its \(key); Pare folds "
                                        + "both directions or neither")))
                        continue
                    }
                    if let slices = layer.layerKind?.preActivationWeights(key) {
                        uses.append(
                            HardSigmoidUse(path: path, key: key, fix: .scaleWeights(path: path, slices: slices)))
                    } else {
                        uses.append(
                            HardSigmoidUse(
                                path: path, key: key,
                                fix: .approximate(
                                    "'\(path)' (\(layer.className)) applies hard_sigmoid as its \(key) to something "
                                        + "no weight scales (an LSTM's cell activation also squashes the cell state)"
                                )))
                    }
                }
            }
        }
        visit(arch, prefix: "")
        return uses
    }

    /// What applying the hard_sigmoid fixes did: sentences for the user, what stays inexact, and the
    /// Activation layers to give a Rescaling (by path, the new layer's name).
    struct HardSigmoidOutcome {
        var fixes: [String] = []
        var approximations: [String] = []
        var rescaled: [String: String] = [:]
    }

    /// Makes every hard_sigmoid of `arch` compute the other line's: weights multiplied by `factor`
    /// (1.2 upgrading, 1/1.2 for tf.keras, written `symbol`), Rescaling layers noted for the config.
    static func applyHardSigmoidFixes(
        _ model: inout Model, arch: Architecture, checked: CheckedModel, factor: Float, symbol: String
    ) throws -> HardSigmoidOutcome {
        var outcome = HardSigmoidOutcome()
        for use in hardSigmoidUses(arch) {
            switch use.fix {
            case .scaleWeights(let path, let slices):
                try scale(&model, path: path, slices: slices, by: factor, checked: checked)
                let target = path == use.path ? "its" : "its producer '\(path)'s"
                outcome.fixes.append(
                    "'\(use.path)': hard_sigmoid (\(use.key)) made exact: \(target) "
                        + "\(Set(slices.map(\.role)).sorted().joined(separator: ", ")) \(symbol)")
            case .rescaling(let name):
                outcome.rescaled[use.path] = name
                outcome.fixes.append(
                    "'\(use.path)': hard_sigmoid made exact by a Rescaling '\(name)' (\(symbol)) in front of it")
            case .approximate(let reason):
                outcome.approximations.append(reason)
            }
        }
        return outcome
    }

    /// The producer of an Activation layer's input when 1.2 can go into its weights: called once,
    /// a linear activation, weights that make its output linearly (not a recurrent layer, whose
    /// output feeds back), and its output read by this layer alone.
    static func foldableProducer(of layer: LayerNode, in arch: Architecture) -> (String, [WeightSlice])? {
        guard layer.calls.count == 1, layer.calls[0].count == 1 else { return nil }
        let ref = layer.calls[0][0]
        guard ref.tensor == 0, let producer = arch.layer(ref.layer), !producer.isInput, producer.nested == nil,
            producer.calls.count == 1, let kind = producer.layerKind, !(kind is Recurrent), !(kind is Bidirectional),
            [nil, "linear"].contains(activationName(producer.config["activation"])),
            // A wrapper's layer has its own activation (TimeDistributed(Dense(tanh))).
            [nil, "linear"].contains(activationName(producer.config["layer"]?["config"]?["activation"])),
            let slices = kind.preActivationWeights("activation")
        else { return nil }
        var readers = arch.outputs.filter { $0.layer == producer.name }.count
        for other in arch.layers {
            for call in other.calls { readers += call.filter { $0.layer == producer.name }.count }
            readers += other.callMasks.compactMap { $0 }.filter { $0.layer == producer.name }.count
        }
        return readers == 1 ? (producer.name, slices) : nil
    }

    /// An activation's name in a config: a string or Keras 3's serialized function.
    static func activationName(_ value: JSON?) -> String? {
        guard let value, !value.isNull else { return nil }
        return value.stringValue ?? value["config"]?.stringValue
    }

    /// Multiplies the slices of the layer's weights by `factor`, in `model`.
    static func scale(
        _ model: inout Model, path: String, slices: [WeightSlice], by factor: Float, checked: CheckedModel
    ) throws {
        let byRole = checked.weightsByRole(path)
        for slice in slices {
            guard let weight = byRole[slice.role],
                let current = model.layer(named: String(path.split(separator: "/").first!))?.weights.first(where: {
                    $0.name == weight.name
                })?.tensor
            else {
                throw PareError(file: model.sourcePath, object: "layer '\(path)'", "has no \(slice.role) to scale")
            }
            var values = try current.floats()
            let width = current.shape.last ?? 1
            let columns = slice.columns ?? 0..<width
            guard columns.upperBound <= width else {
                throw PareError(
                    file: model.sourcePath, object: "layer '\(path)' weight '\(weight.name)'",
                    "has \(width) columns, fewer than the activation's \(columns)")
            }
            for row in stride(from: 0, to: values.count, by: width) {
                for c in columns { values[row + c] *= factor }
            }
            model.setWeight(path: path, name: weight.name, try current.replacingValues(values))
        }
    }

    /// tf.keras 2's CuDNNLSTM / CuDNNGRU weights (also inside a Bidirectional) as LSTM / GRU holds
    /// them: kernels as tf.keras converts them on load, the LSTM's two biases summed, the GRU's
    /// flat bias as rows (input, recurrent). Returns the paths converted.
    static func convertCuDNN(_ model: inout Model, checked: CheckedModel, arch: Architecture) throws -> [String] {
        var converted: [String] = []
        for entry in arch.allLayers() where entry.layer.nested == nil {
            let directions: [(Recurrent, String)]
            switch entry.layer.layerKind {
            case let r as Recurrent where r.cudnn: directions = [(r, "")]
            case let b as Bidirectional where b.forward.cudnn || b.backward.cudnn:
                directions = [(b.forward, "forward_"), (b.backward, "backward_")].filter { $0.0.cudnn }
            default: continue
            }
            let byRole = checked.weightsByRole(entry.path)
            for (layer, prefix) in directions {
                guard let kernel = byRole[prefix + "kernel"], let recurrent = byRole[prefix + "recurrent_kernel"],
                    let bias = byRole[prefix + "bias"]
                else {
                    throw PareError(
                        file: model.sourcePath, object: "layer '\(entry.path)'", "cuDNN weights missing")
                }
                let (k, r) = RecurrentRun.fromCuDNN(
                    try kernel.tensor.floats(), try recurrent.tensor.floats(), units: layer.units,
                    gates: layer.cell.gates)
                let b = try bias.tensor.floats()
                let width = layer.cell.gates * layer.units
                guard b.count == 2 * width else {
                    throw PareError(
                        file: model.sourcePath, object: "layer '\(entry.path)' weight '\(bias.name)'",
                        "holds \(b.count) values; a cuDNN bias holds \(2 * width)")
                }
                let newBias: Tensor
                if layer.cell == .lstm {
                    newBias = try Tensor(float32: (0..<width).map { b[$0] + b[width + $0] }, shape: [width])
                        .converted(to: bias.tensor.dtype)
                } else {
                    newBias = try Tensor(float32: b, shape: [2, width]).converted(to: bias.tensor.dtype)
                }
                model.setWeight(path: entry.path, name: kernel.name, try kernel.tensor.replacingValues(k))
                model.setWeight(path: entry.path, name: recurrent.name, try recurrent.tensor.replacingValues(r))
                model.setWeight(path: entry.path, name: bias.name, newBias)
            }
            converted.append(entry.path)
        }
        return converted
    }
}

extension WeightUpgrade {
    /// tf.keras's batch renormalization statistics, which only training reads and Keras 3 has no
    /// place for: removed (the config rule drops `renorm`). Returns the layers changed.
    static func dropRenormStatistics(_ model: inout Model, checked: CheckedModel, arch: Architecture) -> [String] {
        var changed: [String] = []
        for entry in arch.allLayers() where (entry.layer.layerKind as? BatchNormalization)?.renorm == true {
            let byRole = checked.weightsByRole(entry.path)
            let names = Set(BatchNormalization.renormRoles.compactMap { byRole[$0]?.name })
            let top = String(entry.path.split(separator: "/").first!)
            guard let index = model.layers.firstIndex(where: { $0.name == top }) else { continue }
            model.layers[index].weights.removeAll { names.contains($0.name) }
            changed.append(entry.path)
        }
        return changed
    }
}

extension Tensor {
    /// The same values in another floating-point dtype.
    func converted(to dtype: DType) throws -> Tensor {
        guard dtype != self.dtype else { return self }
        let template = Tensor(dtype: dtype, shape: shape, bytes: [UInt8](repeating: 0, count: count * dtype.byteCount))
        return try template.replacingValues(try floats())
    }
}
