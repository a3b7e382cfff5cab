/// A Keras 1 (1.0.7 – 1.2.2) model file, read in Keras 2's terms.
///
/// Keras 1 wrote the legacy HDF5 layout Keras 2 kept, but in its own dialect: other argument and
/// class names (`Keras1Config`) and other weight layouts (`Keras1Weights`). Pare converts both
/// when it reads the file, as Keras 2's loader did, so that everything else (inspect, run, prune,
/// `convert` to Keras 3) sees a Keras 2 model computing what Keras 1 computed. The model is then
/// one tf.keras 2 reads: what Pare writes of it is a Keras 2 file, never a Keras 1 file.
enum Keras1File {
    /// Keras 1 full models record `keras_version` 1.x at the root (and nothing on `model_weights`).
    static func isKeras1(_ model: Model) -> Bool {
        model.config != nil && (model.kerasVersion == "1" || (model.kerasVersion?.hasPrefix("1.") ?? false))
    }

    /// The model with its config and weights in Keras 2's terms.
    static func converted(_ model: Model) throws -> Model {
        guard let config = model.config else { return model }
        let original = model.kerasVersion ?? "1"
        var result = model
        let newConfig: JSON
        do {
            newConfig = try Keras1Config.rewritten(config)
        } catch let error as ArchitectureError {
            throw PareError(file: model.sourcePath, object: "model_config (Keras \(original))", error.description)
        }
        let entries = layerEntries(config: config, converted: newConfig)
        // Under TensorFlow, Keras 1's weight names end in ":0"; under Theano they carry no suffix.
        let allWeights = model.layers.flatMap(\.weights)
        let theano = !allWeights.isEmpty && allWeights.allSatisfy { !$0.name.hasSuffix(":0") }
        // One backend named every variable of a model: a mix says nothing about which one convolved.
        if !theano, let bare = allWeights.first(where: { !$0.name.hasSuffix(":0") }) {
            throw PareError(
                file: model.sourcePath, object: "weight '\(bare.name)'",
                "has no ':0' where others have it: a Keras \(original) file names all its weights one way (Theano: "
                    + "none, TensorFlow: all), and which says whether kernels are flipped")
        }
        var updates: [String: [(String, JSON)]] = [:]
        var flipped: [String] = []
        for (i, layer) in model.layers.enumerated() where !layer.weights.isEmpty {
            guard let entry = entries[layer.name] else {
                throw PareError(
                    file: model.sourcePath, object: "model_weights/\(layer.name)",
                    "holds weights of a layer the Keras \(original) config does not list (nested models' weights are "
                        + "not converted from Keras 1)")
            }
            do {
                let converted = try Keras1Weights.convert(
                    layer.weights, layer: layer.name, className: entry.keras1Class, config: entry.config,
                    theano: theano, path: layer.name)
                result.layers[i].weights = converted.weights
                if theano, Keras1Weights.flipsKernel(entry.keras1Class, config: entry.config) {
                    flipped.append(layer.name)
                }
                if !converted.configUpdates.isEmpty { updates[layer.name] = converted.configUpdates }
            } catch let error as ArchitectureError {
                throw PareError(file: model.sourcePath, object: "model_weights (Keras \(original))", error.description)
            }
        }
        result.config = applying(updates, to: newConfig)
        if theano {
            do {
                try checkTheanoPadding(in: newConfig, path: "model_config")
            } catch let error as ArchitectureError {
                throw PareError(file: model.sourcePath, object: "model_config (Keras \(original))", error.description)
            }
        }
        // A Keras 2 model from here on: written back, it must not be converted a second time.
        let version = Keras3Serialization.legacyDialectVersion
        result.kerasVersion = version
        result.backend = "tensorflow"
        result.source.originalConfigText = nil
        result.source.keras1Version = original
        result.source.rootAttributes =
            result.source.rootAttributes.filter { !["keras_version", "backend"].contains($0.0) }
            + [("keras_version", .string(version)), ("backend", .string("tensorflow"))]
        result.source.weightsGroupAttributes =
            result.source.weightsGroupAttributes.filter { !["keras_version", "backend"].contains($0.0) }
            + [("keras_version", .string(version)), ("backend", .string("tensorflow"))]
        // Said where the writer is described (inspect), not as a note on every command: a note would
        // stand beside every error message about the model.
        let flips =
            flipped.isEmpty
            ? "" : "; kernels of \(flipped.joined(separator: ", ")) flipped: Theano convolves, Keras 2 and 3 correlate"
        result.source.keras1Conversion =
            "Keras \(original)\(theano ? " on Theano" : "") (Keras 1 dialect, read in Keras 2's terms: arguments and "
            + "weight layouts converted\(flips))"
        return result
    }

    struct Entry {
        var keras1Class: String
        /// The layer's config in Keras 2's terms.
        var config: JSON
    }

    /// The top-level layers of the converted model by name, with their Keras 1 class (found anywhere in
    /// the original config: a Merge's branch layers are top-level layers once converted).
    static func layerEntries(config: JSON, converted: JSON) -> [String: Entry] {
        func list(_ model: JSON) -> [JSON] {
            model["config"]?.arrayValue ?? model["config"]?["layers"]?.arrayValue ?? []
        }
        // The top-level layers (a nested model's own layers are not looked into: its weights are not
        // converted), and the layers of a Sequential Merge's branches, which become top-level.
        var keras1Classes: [String: String] = [:]
        func record(_ entries: [JSON]) {
            for entry in entries {
                guard let name = entry["config"]?["name"]?.stringValue, let className = entry["class_name"]?.stringValue
                else { continue }
                if keras1Classes[name] == nil { keras1Classes[name] = className }
                if className == "Merge" {
                    for branch in entry["config"]?["layers"]?.arrayValue ?? [] {
                        record(branch["config"]?.arrayValue ?? branch["config"]?["layers"]?.arrayValue ?? [])
                    }
                }
            }
        }
        record(list(config))
        var entries: [String: Entry] = [:]
        for new in list(converted) {
            guard let name = new["config"]?["name"]?.stringValue ?? new["name"]?.stringValue,
                let keras1Class = keras1Classes[name]
            else { continue }
            entries[name] = Entry(keras1Class: keras1Class, config: new["config"] ?? .null)
        }
        return entries
    }

    /// The config with keys the weights decided set on the named top-level layers.
    static func applying(_ updates: [String: [(String, JSON)]], to config: JSON) -> JSON {
        guard !updates.isEmpty else { return config }
        func update(_ entry: JSON) -> JSON {
            guard let name = entry["config"]?["name"]?.stringValue, let keys = updates[name],
                var layerConfig = entry["config"], case .object(let pairs) = layerConfig
            else { return entry }
            layerConfig = .object(pairs.filter { key, _ in !keys.contains { $0.0 == key } } + keys)
            var result = entry
            result.set("config", layerConfig)
            return result
        }
        var result = config
        if let layers = config["config"]?.arrayValue {
            result.set("config", .array(layers.map(update)))
        } else if var inner = config["config"], let layers = inner["layers"]?.arrayValue {
            inner.set("layers", .array(layers.map(update)))
            result.set("config", inner)
        }
        return result
    }

    /// Theano pads 'same' convolutions k//2 on each side and pools 'same' its own way; TensorFlow (and so
    /// Keras 2 and 3) pads the total a stride needs, the odd one at the end. They agree for odd kernels
    /// at stride 1 only, so any other 'same' layer of a Theano model would compute other numbers.
    /// `checkTheanoPadding` on every layer of a converted config: nested models and wrapped layers too.
    static func checkTheanoPadding(in model: JSON, path: String) throws {
        let entries = model["config"]?.arrayValue ?? model["config"]?["layers"]?.arrayValue ?? []
        for entry in entries {
            guard let className = entry["class_name"]?.stringValue, let config = entry["config"] else { continue }
            let name = path + "/" + (config["name"]?.stringValue ?? "?")
            if className == "Sequential" || className == "Model" {
                try checkTheanoPadding(in: entry, path: name)
                continue
            }
            try checkTheanoPadding(config, className: className, path: name)
            if let inner = config["layer"], let innerClass = inner["class_name"]?.stringValue {
                try checkTheanoPadding(inner["config"] ?? .null, className: innerClass, path: name + "/layer")
            }
        }
    }

    static func checkTheanoPadding(_ config: JSON, className: String, path: String) throws {
        guard config["padding"]?.stringValue == "same" else { return }
        let pooling = className.contains("Pooling")
        let kernel = (config["kernel_size"]?.arrayValue ?? []).compactMap(\.intValue)
        let strides = (config["strides"]?.arrayValue ?? []).compactMap(\.intValue)
        let dilation = (config["dilation_rate"]?.arrayValue ?? []).compactMap(\.intValue)
        let stridesOne = strides.allSatisfy { $0 == 1 }
        let oddKernels = !kernel.isEmpty && kernel.allSatisfy { $0 % 2 == 1 }
        guard pooling || !stridesOne || !oddKernels || dilation.contains(where: { $0 != 1 }) else { return }
        throw ArchitectureError(
            object: path,
            problem: "\(className) with 'same' padding \(pooling ? "" : "and kernel \(kernel), strides \(strides) ")"
                + "was trained under Theano, which pads differently from Keras 2 and 3: not converted")
    }
}
