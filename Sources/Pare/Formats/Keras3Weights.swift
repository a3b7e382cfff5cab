import Foundation
import HDF5

/// Keras 3's weights file (`model.save_weights("m.weights.h5")`, and `model.weights.h5` inside a
/// `.keras` archive), read into and written from Pare's `Model` with the help of the architecture
/// (see `Keras3Layout`). Weights are named as Keras 3's legacy writer names them (`stem/kernel`,
/// `encoder/enc_conv1/kernel`), so a model read here converts to a legacy .h5 Keras 3 loads.
public enum Keras3Weights {
    /// Root children Pare interprets; anything else at the root is kept as it is.
    static let layersKeys = ["layers", "_layer_checkpoint_dependencies"]

    /// Where Keras 3 keeps each layer's variables for this architecture (`layers/conv2d/vars`, …).
    public static func groupPaths(of config: JSON) throws -> [String] {
        try Keras3Layout.entries(config).map(\.varsPath)
    }

    /// True when the root looks like a Keras 3 weights file.
    static func looksLikeKeras3(_ root: HDF5Group) -> Bool {
        !KerasLegacyH5.hasNameList(root, "layer_names") && !root.contains("model_weights")
            && (root.contains("vars") || layersKeys.contains { root.contains($0) })
    }

    /// Reads the weights of `config` (a model config: `{"class_name", "config", …}`) from `root`.
    /// `label` names the file in messages (`m.keras: model.weights.h5`).
    static func read(root: HDF5Group, config: JSON, label: String, into model: inout Model) throws {
        let layersKey = layersKeys.first { root.contains($0) } ?? "layers"
        let entries: [Keras3Layout.Entry]
        do {
            entries = try Keras3Layout.entries(config, layersKey: layersKey)
        } catch let error as ArchitectureError {
            throw PareError(file: model.sourcePath, object: "config", "\(error)")
        }
        // Keras 3's legacy writer names variables by their path: a top-level Sequential's carry its name.
        let prefix: [String] =
            config["class_name"]?.stringValue == LayerRegistry.sequential
            ? [config["config"]?["name"]?.stringValue ?? "sequential"] : []
        var visited: Set<String> = []
        var objectNames: [String: String] = [:]
        var byEntry: [String: [Weight]] = [:]  // layer path → weights
        for entry in entries {
            let object =
                entry.layerPath.isEmpty
                ? "the model's own variables" : "layer '\(entry.layerPath.joined(separator: "/"))' (\(entry.className))"
            visited.insert(entry.groupPath)
            if entry.isModel, !entry.groupPath.isEmpty { visited.insert(entry.groupPath + "/" + layersKey) }
            var weights: [Weight] = []
            let specs = Keras3Layout.specs(entry)
            let subObjects = Keras3Layout.subObjects(entry)
            let groups = Keras3Layout.variableGroups(specs)
            for sub in subObjects {
                visited.insert(entry.groupPath + "/" + sub.group)
                let subVars = Keras3Layout.varsPath(entry.groupPath, group: sub.group)
                visited.insert(subVars)
                if root.contains(subVars) {
                    let vars = try root.group(subVars)
                    if vars.hasAttribute("name"), let stored = try vars.attribute("name").singleString,
                        stored != sub.name
                    {
                        objectNames[subVars] = stored
                    }
                }
                // An object that holds no variables of the layer (a Bidirectional's forward_layer
                // itself, around its cell) must hold none in the file either.
                if !groups.contains(sub.group), root.contains(subVars),
                    let stray = try root.group(subVars).children().first
                {
                    throw PareError(
                        file: label, object: "/\(subVars)/\(stray.name)",
                        "\(object) keeps no variables there: the weights do not match this config")
                }
            }
            if !groups.contains(""), root.contains(entry.varsPath) {
                // A layer whose variables all sit in its cell or wrapped layers has an empty `vars`.
                visited.insert(entry.varsPath)
                if let stray = try root.group(entry.varsPath).children().first {
                    throw PareError(
                        file: label, object: "/\(entry.varsPath)/\(stray.name)",
                        "\(object) keeps its variables elsewhere: the weights do not match this config")
                }
            }
            for group in groups {
                let varsPath = Keras3Layout.varsPath(entry.groupPath, group: group)
                let roles = specs?.filter { $0.keras3Group == group }.map { $0.keras3Name ?? $0.role }
                // Stored names follow Keras's paths: `bigru/forward_gru/gru_cell/kernel`.
                let owners = Self.ownerNames(of: group, in: subObjects)
                if root.contains(varsPath) {
                    visited.insert(varsPath)
                    let vars = try root.group(varsPath)
                    if group.isEmpty, vars.hasAttribute("name"), let stored = try vars.attribute("name").singleString,
                        !entry.layerPath.isEmpty, stored != entry.name
                    {
                        throw PareError(
                            file: label, object: "/" + varsPath,
                            "holds the variables of layer '\(stored)', but the architecture has '\(entry.name)' "
                                + "(\(entry.className)) there: the weights do not match this config"
                        )
                    }
                    let children = try vars.children()
                    let keys = children.map(\.name)
                    let indices = keys.compactMap { Int($0) }.sorted()
                    guard indices.count == keys.count, indices == Array(0..<indices.count),
                        children.allSatisfy({ $0.kind == .dataset })
                    else {
                        throw PareError(
                            file: label, object: "/" + varsPath,
                            "variables must be datasets named 0, 1, 2, …; found \(keys)")
                    }
                    if let roles, roles.count != indices.count {
                        throw PareError(
                            file: label, object: "/" + varsPath,
                            "\(object) has \(indices.count) variables, but its config needs \(roles.count) "
                                + "(\(roles.joined(separator: ", "))): the weights do not match this config"
                        )
                    }
                    for i in indices {
                        let dataset = try vars.dataset(String(i))
                        let role = roles?[i] ?? String(i)
                        let name = (prefix + entry.layerPath + owners + [role]).joined(separator: "/")
                        weights.append(
                            Weight(
                                name: name, tensor: try StoredNodeIO.tensor(of: dataset),
                                attributes: try StoredNodeIO.attributes(of: dataset)))
                    }
                } else if let roles, !roles.isEmpty {
                    throw PareError(
                        file: label, object: "/" + varsPath,
                        "missing: \(object) needs \(roles.joined(separator: ", ")): the weights do not match "
                            + "this config")
                }
            }
            if entry.isModel && !weights.isEmpty {
                throw PareError(
                    file: label, object: "/" + entry.varsPath,
                    "a model's own variables are not supported (\(weights.count) found)")
            }
            if !entry.groupPath.isEmpty, root.contains(entry.groupPath) {
                for child in try root.group(entry.groupPath).children().map(\.name)
                where child != "vars" && !(entry.isModel && child == layersKey)
                    && !visited.contains(entry.groupPath + "/" + child)
                {
                    throw PareError(
                        file: label, object: "/\(entry.groupPath)/\(child)",
                        "\(object) stores state Pare does not understand")
                }
            }
            byEntry[entry.layerPath.joined(separator: "/")] = weights
        }
        // Every group under layers/ must belong to a layer of the config.
        func checkVisited(_ group: HDF5Group, _ path: String) throws {
            for link in try group.children() {
                let (child, kind) = (link.name, link.kind)
                let p = path.isEmpty ? child : path + "/" + child
                if visited.contains(p) {
                    if kind == .group, !p.hasSuffix("/vars") && p != "vars" {
                        try checkVisited(try group.group(child), p)
                    }
                    continue
                }
                throw PareError(
                    file: label, object: "/" + p,
                    "belongs to no layer of the architecture: the weights do not match this config")
            }
        }
        if root.contains(layersKey) { try checkVisited(try root.group(layersKey), layersKey) }

        // Top-level layers in the order of the model's layer list; a nested model's weights are
        // its layers' trainable weights, then the non-trainable ones (as Keras's legacy writer orders them).
        var layers: [LayerWeights] = []
        for entry in entries where entry.layerPath.count == 1 {
            let path = entry.name
            var weights = byEntry[path] ?? []
            if entry.isModel {
                let inner = entries.filter { $0.layerPath.count > 1 && $0.layerPath[0] == path && !$0.isModel }
                var trainable: [Weight] = []
                var frozen: [Weight] = []
                for sub in inner {
                    for w in byEntry[sub.layerPath.joined(separator: "/")] ?? [] {
                        if Keras3Layout.isTrainable(role: w.role, in: sub) {
                            trainable.append(w)
                        } else {
                            frozen.append(w)
                        }
                    }
                }
                weights = trainable + frozen
            }
            layers.append(LayerWeights(name: path, weights: weights))
        }
        model.layers = layers
        model.layout = .keras3
        model.source.keras3ObjectNames = objectNames
        model.source.rootAttributes = try StoredNodeIO.attributes(of: root)
        for link in try root.children() where link.name != "vars" && link.name != layersKey {
            let (child, kind) = (link.name, link.kind)
            let node: StoredNode =
                kind == .dataset
                ? .dataset(
                    name: child, attributes: try StoredNodeIO.attributes(of: try root.dataset(child)),
                    tensor: try StoredNodeIO.tensor(of: try root.dataset(child)))
                : try StoredNodeIO.read(try root.group(child), name: child)
            if child == "optimizer" { model.optimizer = node } else { model.rootExtras.append(node) }
        }
    }

    /// The names of the objects along `group` (`forward_layer/cell` → `forward_gru`, `gru_cell`).
    static func ownerNames(of group: String, in subObjects: [Keras3SubObject]) -> [String] {
        guard !group.isEmpty else { return [] }
        var names: [String] = []
        var path = ""
        for part in group.split(separator: "/") {
            path = path.isEmpty ? String(part) : path + "/" + part
            names.append(subObjects.first { $0.group == path }?.name ?? String(part))
        }
        return names
    }

    /// What a Keras 3 writer leaves out of `model`, for the user to hear about.
    static func notes(for model: Model, dropOptimizer: Bool) -> [String] {
        var notes: [String] = []
        if let o = model.optimizer, !dropOptimizer, model.layout != .keras3 {
            notes.append(
                "optimizer state (\(o.name)) is in Keras's legacy layout, which Keras 3 files cannot hold: not written")
        }
        return notes
    }

    /// Writes `model`'s weights into `root` in Keras 3's layout.
    static func write(_ model: Model, into root: HDF5Group, options: KerasLegacyH5.WriteOptions) throws {
        guard let config = model.config else {
            throw PareError(
                file: model.sourcePath,
                .needsArchitecture(
                    operation: "writing a Keras 3 weights file", plainTensors: false, keras3Weights: false))
        }
        let entries: [Keras3Layout.Entry]
        do {
            entries = try Keras3Layout.entries(config)
        } catch let error as ArchitectureError {
            throw PareError(file: model.sourcePath, object: "config", "\(error)")
        }
        let datasetOptions = DatasetOptions(deflateLevel: options.deflateLevel)
        if model.layout == .keras3 {
            for (key, value) in model.source.rootAttributes { try root.setAttribute(key, value) }
        }
        let byName = Dictionary(model.layers.map { ($0.name, $0) }, uniquingKeysWith: { a, _ in a })
        // The layer names inside each top-level nested model, which its weights' names are matched to.
        var nestedLayerNames: [String: Set<String>] = [:]
        for entry in entries where !entry.isModel && entry.layerPath.count > 1 {
            nestedLayerNames[entry.layerPath[0], default: []].insert(entry.name)
        }
        var written = Set<String>()
        for (done, entry) in entries.enumerated() {
            defer { options.progress?(done + 1, entries.count) }
            var weights: [Weight]
            if entry.isModel {
                weights = []
            } else if entry.layerPath.count == 1 {
                weights = byName[entry.name]?.weights ?? []
            } else {
                let names = nestedLayerNames[entry.layerPath[0]] ?? []
                weights = (byName[entry.layerPath[0]]?.weights ?? []).filter { $0.owner(among: names) == entry.name }
            }
            if let roles = Keras3Layout.roles(entry) {
                let names = Keras3Layout.variableNames(entry) ?? roles
                let order = weights.map { roles.firstIndex(of: $0.role) ?? names.firstIndex(of: $0.role) }
                // Reordered by name only when the names say where each weight goes (a Bidirectional's
                // two `kernel`s do not: its weights stay in stored order, forward first, as Keras keeps them).
                if order.allSatisfy({ $0 != nil }), Set(order.compactMap { $0 }).count == order.count {
                    weights = zip(weights, order).sorted { $0.1! < $1.1! }.map(\.0)
                }
                guard weights.count == roles.count else {
                    throw PareError(
                        file: model.sourcePath,
                        object: "layer '\(entry.layerPath.joined(separator: "/"))' (\(entry.className))",
                        "has \(weights.count) weights, but its config needs \(roles.count) "
                            + "(\(roles.joined(separator: ", ")))"
                    )
                }
            }
            written.formUnion(weights.map(\.name))
            let vars = try root.createGroup(entry.varsPath)
            let name = entry.layerPath.isEmpty ? (config["config"]?["name"]?.stringValue ?? "") : entry.name
            try vars.setAttribute("name", .string(name))
            // Cells and wrapped layers get their own `vars` group, named, as Keras 3 writes them.
            for sub in Keras3Layout.subObjects(entry) {
                let path = Keras3Layout.varsPath(entry.groupPath, group: sub.group)
                let subVars = try root.createGroup(path)
                try subVars.setAttribute("name", .string(model.source.keras3ObjectNames[path] ?? sub.name))
            }
            let specs = Keras3Layout.specs(entry)
            let groups = specs.map { $0.map(\.keras3Group) } ?? weights.map { _ in "" }
            var counters: [String: Int] = [:]
            for (weight, group) in zip(weights, groups) {
                let target = group.isEmpty ? vars : try root.group(Keras3Layout.varsPath(entry.groupPath, group: group))
                let index = counters[group, default: 0]
                counters[group] = index + 1
                let dataset = try target.createDataset(
                    String(index), type: weight.tensor.dtype.hdf5, shape: weight.tensor.shape,
                    bytes: try weight.tensor.bytes(), options: datasetOptions)
                var attributes = weight.attributes
                if weight.tensor.dtype == .bfloat16, !attributes.contains(where: { $0.0 == "dtype" }) {
                    attributes.append(("dtype", .string("bfloat16")))
                }
                for (key, value) in attributes { try dataset.setAttribute(key, value) }
            }
        }
        if let stray = model.layers.flatMap(\.weights).first(where: { !written.contains($0.name) }) {
            throw PareError(
                file: model.sourcePath, object: "weight '\(stray.name)'", "belongs to no layer of the architecture")
        }
        for extra in model.rootExtras { try StoredNodeIO.write(extra, into: root, options: datasetOptions) }
        if let optimizer = model.optimizer, !options.dropOptimizer, model.layout == .keras3 {
            try StoredNodeIO.write(optimizer, into: root, options: datasetOptions)
        }
    }

    /// Writes a `.weights.h5` file atomically.
    public static func writeFile(_ model: Model, to path: String, options: KerasLegacyH5.WriteOptions = .init()) throws
    {
        try AtomicFile.write(to: path) { temporary in
            let file = try HDF5File.create(temporary)
            do {
                try write(model, into: try file.root(), options: options)
                try file.close()
            } catch {
                try? file.close()
                throw error
            }
        }
    }
}
