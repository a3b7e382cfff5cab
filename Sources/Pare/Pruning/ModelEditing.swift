/// Edits of a `Model` by layer path (`layer` or `nested_model/layer`), used by mask and prune.
extension Model {
    /// Replaces the stored weight called `name` of the top-level layer that holds `path`.
    mutating func setWeight(path: String, name: String, _ tensor: Tensor) {
        let top = String(path.split(separator: "/").first!)
        guard let l = layers.firstIndex(where: { $0.name == top }),
            let w = layers[l].weights.firstIndex(where: { $0.name == name })
        else { return }
        layers[l].weights[w].tensor = tensor
    }

    /// Inserts a weight after the one called `after` in the top-level layer that holds `path`.
    mutating func insertWeight(path: String, after: String, _ weight: Weight) {
        let top = String(path.split(separator: "/").first!)
        guard let l = layers.firstIndex(where: { $0.name == top }),
            let w = layers[l].weights.firstIndex(where: { $0.name == after })
        else { return }
        layers[l].weights.insert(weight, at: w + 1)
    }

    /// Changes the `config` of the layer at `path` inside `model_config`.
    @discardableResult
    mutating func editLayerConfig(path: String, _ edit: (inout JSON) -> Void) -> Bool {
        guard var root = config else { return false }
        guard Model.edit(&root, components: path.split(separator: "/").map(String.init)[...], edit) else {
            return false
        }
        config = root
        return true
    }

    private static func edit(_ modelEntry: inout JSON, components: ArraySlice<String>, _ edit: (inout JSON) -> Void)
        -> Bool
    {
        guard let name = components.first, var inner = modelEntry["config"] else { return false }
        let bareList = inner.arrayValue != nil
        guard var layers = bareList ? inner.arrayValue : inner["layers"]?.arrayValue else { return false }
        guard
            let i = layers.firstIndex(where: { ($0["config"]?["name"]?.stringValue ?? $0["name"]?.stringValue) == name }
            )
        else { return false }
        if components.count == 1 {
            guard var layerConfig = layers[i]["config"] else { return false }
            edit(&layerConfig)
            layers[i].set("config", layerConfig)
        } else if !Model.edit(&layers[i], components: components.dropFirst(), edit) {
            return false
        }
        if bareList { inner = .array(layers) } else { inner.set("layers", .array(layers)) }
        modelEntry.set("config", inner)
        return true
    }
}
