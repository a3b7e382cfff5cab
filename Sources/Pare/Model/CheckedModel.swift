/// A stored weight with the role and layout its layer's kind gives it.
struct SpecifiedWeight {
    var spec: WeightSpec
    var weight: Weight
}

/// A model whose stored weights were checked against its architecture: every layer that needs
/// weights has them, in the shapes its config and input imply.
struct CheckedModel {
    /// The weights of one layer (a top-level layer, or a layer inside a nested model).
    struct WeightUnit {
        var path: String
        var className: String?
        var weights: [Weight]
    }

    let model: Model
    let architecture: Architecture?
    let analysis: GraphAnalysis?
    let weightUnits: [WeightUnit]
    /// Every layer (nested ones too) and weight unit by path, built once: looking them up in lists
    /// made models of a thousand layers take seconds.
    private let layersByPath: [String: LayerNode]
    private let unitsByPath: [String: WeightUnit]

    /// `inputShapes` replaces the config's input shapes (without the batch axis) by the ones a batch
    /// has, so that dimensions the config leaves open (None) are known and the weights checked against them.
    init(_ model: Model, inputShapes: [String: [Int?]]? = nil) throws {
        self.model = model
        // Layers and weights are found by name: a repeated name would stand for two things.
        var layerNames = Set<String>()
        for layer in model.layers {
            guard layerNames.insert(layer.name).inserted else {
                throw PareError(file: model.sourcePath, object: "layer '\(layer.name)'", "is stored twice")
            }
            var weightNames = Set<String>()
            for weight in layer.weights where !weightNames.insert(weight.name).inserted {
                throw PareError(
                    file: model.sourcePath, object: "layer '\(layer.name)' weight '\(weight.name)'", "is stored twice")
            }
        }
        guard let config = model.config else {
            architecture = nil
            analysis = nil
            weightUnits = model.layers.filter { !$0.weights.isEmpty }.map {
                WeightUnit(path: $0.name, className: nil, weights: $0.weights)
            }
            layersByPath = [:]
            unitsByPath = Dictionary(weightUnits.map { ($0.path, $0) }, uniquingKeysWith: { a, _ in a })
            return
        }
        var arch: Architecture
        do {
            arch = try Architecture.parse(config)
            if let inputShapes { arch.inputShapes.merge(inputShapes) { _, given in given } }
        } catch let error as ArchitectureError {
            throw PareError(file: model.sourcePath, object: "model_config", "\(error)")
        }
        architecture = arch
        let analysis = GraphAnalysis.run(arch)
        self.analysis = analysis
        // A layer Pare does not know may be a custom layer of a valid model; a known layer whose
        // config is invalid (strides of 0, filters of 2.5, an unknown dtype) is not a model Keras loads.
        if let invalid = analysis.problems.first(where: { !$0.unknownClass }) {
            throw PareError(
                file: model.sourcePath, object: "layer '\(invalid.layer)' (\(invalid.className))",
                "\(invalid.reason): the config is not valid")
        }
        var units: [WeightUnit] = []
        let stored = Dictionary(model.layers.map { ($0.name, $0) }, uniquingKeysWith: { a, _ in a })
        for layer in model.layers where !layer.weights.isEmpty && arch.layer(layer.name) == nil {
            throw PareError(
                file: model.sourcePath, object: "layer '\(layer.name)'",
                "has weights in the file but is not in model_config")
        }
        for node in arch.layers {
            let own = stored[node.name]?.weights ?? []
            if let nested = node.nested {
                units += try CheckedModel.nestedUnits(
                    nested, weights: own, prefix: node.name + "/", model: model, analysis: analysis)
            } else {
                units.append(WeightUnit(path: node.name, className: node.className, weights: own))
            }
        }
        weightUnits = units.filter { !$0.weights.isEmpty || $0.className != nil }
        let byPath = Dictionary(arch.allLayers().map { ($0.path, $0.layer) }, uniquingKeysWith: { a, _ in a })
        layersByPath = byPath
        unitsByPath = Dictionary(weightUnits.map { ($0.path, $0) }, uniquingKeysWith: { a, _ in a })
        for unit in weightUnits {
            try CheckedModel.validate(unit, node: byPath[unit.path], analysis: analysis, model: model)
        }
    }

    /// Splits a nested model's weights among its layers by owner name (`…/enc_conv1/kernel`).
    static func nestedUnits(
        _ arch: Architecture, weights: [Weight], prefix: String, model: Model, analysis: GraphAnalysis
    ) throws -> [WeightUnit] {
        var remaining = weights
        var units: [WeightUnit] = []
        let leaves = arch.allLayers(prefix: prefix).filter { $0.layer.nested == nil }
        let names = Set(leaves.map { String($0.path.split(separator: "/").last!) })
        func owner(_ weight: Weight) -> String? { weight.owner(among: names) }
        for entry in leaves {
            let (path, node) = (entry.path, entry.layer)
            let name = String(path.split(separator: "/").last!)
            let mine = remaining.filter { owner($0) == name }
            remaining.removeAll { owner($0) == name }
            units.append(WeightUnit(path: path, className: node.className, weights: mine))
        }
        if let stray = remaining.first {
            throw PareError(
                file: model.sourcePath, object: "weight '\(stray.name)'",
                "belongs to no layer of nested model '\(prefix.dropLast())'")
        }
        return units
    }

    static func validate(_ unit: WeightUnit, node: LayerNode?, analysis: GraphAnalysis, model: Model) throws {
        guard let node, let call = analysis.calls(of: unit.path).first, !call.inputs.isEmpty,
            let expected = node.layerKind?.weights(inputs: call.inputs)
        else { return }
        let object = "layer '\(unit.path)' (\(node.className))"
        guard expected.count == unit.weights.count else {
            throw PareError(
                file: model.sourcePath, object: object,
                "has \(unit.weights.count) weights in the file, but its config needs \(expected.count) "
                    + "(\(expected.map(\.role).joined(separator: ", ")))"
            )
        }
        for (weight, want) in zip(unit.weights, expected) {
            guard weight.tensor.dtype.isFloatingPoint else {
                throw PareError(
                    file: model.sourcePath, object: "\(object) weight '\(weight.name)'",
                    "is stored as \(weight.tensor.dtype); \(want.role) must be floating point (float16, "
                        + "bfloat16, float32, float64)"
                )
            }
            let matches =
                weight.tensor.shape.count == want.shape.count
                && zip(weight.tensor.shape, want.shape).allSatisfy { have, need in need == nil || have == need }
            guard matches else {
                throw PareError(
                    file: model.sourcePath, object: "\(object) weight '\(weight.name)'",
                    "shape \(weight.tensor.shape) contradicts the config, which needs \(want.role) of shape "
                        + "\(want.shape.map { $0.map(String.init) ?? "?" })"
                )
            }
        }
    }

    /// A layer's weights keyed by the role its config gives each position (`kernel`, `bias`, `gamma`, …).
    func weightsByRole(_ path: String) -> [String: Weight] {
        Dictionary(specifiedWeights(path).map { ($0.spec.role, $0.weight) }, uniquingKeysWith: { a, _ in a })
    }

    /// A layer's stored weights, each with what its kind says of it (role, layout), in order.
    func specifiedWeights(_ path: String) -> [SpecifiedWeight] {
        guard let unit = unitsByPath[path], let analysis, let kind = layersByPath[path]?.layerKind,
            let inputs = analysis.calls(of: path).first?.inputs, !inputs.isEmpty
        else { return [] }
        return zip(kind.weights(inputs: inputs), unit.weights).map { SpecifiedWeight(spec: $0, weight: $1) }
    }

    /// The kind of the layer at `path`, nil if unknown (or a nested model).
    func kind(_ path: String) -> (any LayerKind)? { layersByPath[path]?.layerKind }

    /// The first call's input and output shapes of the layer at `path`.
    func shapes(_ path: String) -> (input: Shape, output: Shape)? {
        guard let call = analysis?.calls(of: path).first, let input = call.inputs.first, let output = call.output
        else { return nil }
        return (input, output)
    }

    func inputShape(_ path: String) -> Shape? {
        let parts = path.split(separator: "/").map(String.init)
        var arch = architecture
        for part in parts.dropLast() { arch = arch?.layer(part)?.nested }
        return arch?.inputShapes[parts.last!]
    }

    func parameters(of path: String) -> Int {
        if !path.contains("/"), let layer = model.layer(named: path) { return layer.parameterCount }
        return weightUnits.filter { $0.path == path || $0.path.hasPrefix(path + "/") }
            .reduce(0) { $0 + $1.weights.reduce(0) { $0 + $1.tensor.count } }
    }
}

extension Model {
    /// Checks the stored weights against the architecture (count and shape of every layer's
    /// weights); throws a `PareError` naming the layer and weight on the first contradiction.
    public func validate() throws {
        _ = try CheckedModel(self)
    }
}
