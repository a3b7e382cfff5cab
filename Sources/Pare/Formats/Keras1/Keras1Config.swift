/// A Keras 1 (1.0.7 – 1.2.2) `model_config` rewritten into Keras 2's terms, as Keras 2's legacy
/// interfaces (`keras/legacy/interfaces.py`) renamed Keras 1 arguments when it loaded such a file,
/// and where Keras 2 failed or guessed, as Keras 1 computed:
/// - class names (`Convolution2D` → `Conv2D`, `AtrousConvolution1D` → `Conv1D` with a dilation rate, the
///   `Merge` layer → `Add`, `Multiply`, `Average`, `Maximum` or `Concatenate` by its mode);
/// - arguments (`output_dim` → `units`, `nb_filter` → `filters`, `nb_row`/`nb_col` → `kernel_size`,
///   `border_mode` → `padding`, `subsample` → `strides`, `dim_ordering` 'th'/'tf' → `data_format`,
///   `inner_activation` → `recurrent_activation`, `p` → `rate`, …);
/// - what Keras 1 never saved: the data format of padding, cropping, upsampling and spatial dropout
///   layers is the one the model's other layers record (Keras 2 took the loading machine's default);
///   a GRU's `reset_after` is false (Keras 1's GRU resets before the recurrent product);
/// - regularizers and constraints, which Keras 1 wrote in a form no later Keras reads, are dropped: they
///   act in training only.
/// What neither Keras 2 nor Pare can express (BatchNormalization modes 1 and 2, `Merge` modes dot, cos and
/// callables, Theano's `full` convolutions, layers Keras 2 removed) is refused by name.
enum Keras1Config {
    /// The rewritten config, or the first problem found.
    static func rewritten(_ config: JSON, path: String = "model_config") throws -> JSON {
        var rewriter = Rewriter(dataFormat: try modelDataFormat(config))
        return try rewriter.model(config, path: path)
    }

    /// Keras 1 class names Keras 2 knew by another name.
    static let classNames = [
        "Convolution1D": "Conv1D", "Convolution2D": "Conv2D", "Convolution3D": "Conv3D",
        "AtrousConvolution1D": "Conv1D", "AtrousConvolution2D": "Conv2D", "SeparableConvolution2D": "SeparableConv2D",
        "Deconvolution2D": "Conv2DTranspose",
    ]

    /// Keras 1 classes no later Keras has, with what became of them.
    static let removedClasses = [
        "Highway": "Keras 2 kept it only in its legacy module and Keras 3 has no such layer",
        "MaxoutDense": "Keras 2 kept it only in its legacy module and Keras 3 has no such layer",
        "TimeDistributedDense": "Keras 2 removed it (TimeDistributed(Dense) computes it)",
        "SReLU": "Keras 2 removed it", "ParametricSoftplus": "Keras 2 removed it",
        "Lambda": "its function is Python bytecode, which Pare does not run",
    ]

    /// Keras 1 `Merge` modes and the Keras 2 merge layer computing each.
    static let mergeModes = [
        "sum": "Add", "mul": "Multiply", "ave": "Average", "max": "Maximum", "concat": "Concatenate", "dot": "Dot",
    ]

    /// Keras 1 classes that took a `dim_ordering`.
    static let orderedClasses: Set<String> = [
        "Convolution2D", "Convolution3D", "AtrousConvolution2D", "SeparableConvolution2D", "Deconvolution2D",
        "MaxPooling2D", "AveragePooling2D", "MaxPooling3D", "AveragePooling3D", "GlobalMaxPooling2D",
        "GlobalAveragePooling2D", "GlobalMaxPooling3D", "GlobalAveragePooling3D", "ZeroPadding2D", "ZeroPadding3D",
        "Cropping2D", "Cropping3D", "UpSampling2D", "UpSampling3D", "SpatialDropout2D", "SpatialDropout3D",
        "LocallyConnected2D", "ConvLSTM2D",
    ]

    /// Layers whose Keras 1 config omits the data format they ran in.
    static let formatlessLayers: Set<String> = [
        "ZeroPadding2D", "ZeroPadding3D", "Cropping2D", "Cropping3D", "UpSampling2D", "UpSampling3D",
        "SpatialDropout2D", "SpatialDropout3D",
    ]

    /// A Sequential that starts with a `Merge` of branch Sequentials (Keras 1's way to take several
    /// inputs) as the functional model Keras 2.0 built of it: one input per branch, named as Keras 1
    /// named it (`<first layer>_input`), each branch's layers in a chain, the merge, then the rest.
    /// The layers keep their names, so the weights (stored for the flattened layers) still match.
    static func functionalFromMerge(_ entries: [JSON], path: String) throws -> JSON {
        var layers: [JSON] = []
        var inputs: [JSON] = []
        func ref(_ name: String) -> JSON { .array([.string(name), .int(0), .int(0)]) }
        func add(_ entry: JSON, after inbound: [String], isTheMerge: Bool = false) throws -> String {
            guard let className = entry["class_name"]?.stringValue, var config = entry["config"],
                let name = config["name"]?.stringValue
            else { throw ArchitectureError(object: path, problem: "a layer entry without class_name or name") }
            if ["Sequential", "Model"].contains(className) || (className == "Merge" && !isTheMerge) {
                throw ArchitectureError(
                    object: path + "/" + name, problem: "a \(className) inside a Sequential Merge: not converted")
            }
            if className == "Merge" { config = .object((config.objectValue ?? []).filter { $0.0 != "layers" }) }
            guard !layers.contains(where: { $0["name"]?.stringValue == name }) else {
                throw ArchitectureError(object: path + "/" + name, problem: "a second layer named '\(name)'")
            }
            layers.append(
                .object([
                    ("name", .string(name)), ("class_name", .string(className)), ("config", config),
                    ("inbound_nodes", .array(inbound.isEmpty ? [] : [.array(inbound.map(ref))])),
                ]))
            return name
        }
        guard let merge = entries.first, let branches = merge["config"]?["layers"]?.arrayValue, branches.count >= 2
        else { throw ArchitectureError(object: path, problem: "a Merge of fewer than two branches") }
        var branchOutputs: [String] = []
        for branch in branches {
            guard branch["class_name"]?.stringValue == "Sequential",
                let branchLayers = branch["config"]?.arrayValue ?? branch["config"]?["layers"]?.arrayValue,
                let first = branchLayers.first?["config"], let firstName = first["name"]?.stringValue,
                let shape = first["batch_input_shape"]
            else {
                throw ArchitectureError(
                    object: path, problem: "a Merge branch that is not a Sequential with an input shape")
            }
            // A branch's own InputLayer is its input; otherwise Keras 1 made one named after its first layer.
            let ownInput = branchLayers.first?["class_name"]?.stringValue == "InputLayer"
            let input = ownInput ? firstName : firstName + "_input"
            inputs.append(ref(input))
            let madeInput: JSON = .object([
                ("class_name", .string("InputLayer")),
                (
                    "config",
                    .object([
                        ("batch_input_shape", shape), ("input_dtype", first["input_dtype"] ?? .string("float32")),
                        ("sparse", .bool(false)), ("name", .string(input)),
                    ])
                ),
            ])
            var previous = try add(ownInput ? branchLayers[0] : madeInput, after: [])
            for entry in branchLayers.dropFirst(ownInput ? 1 : 0) { previous = try add(entry, after: [previous]) }
            branchOutputs.append(previous)
        }
        var previous = try add(merge, after: branchOutputs, isTheMerge: true)
        for entry in entries.dropFirst() { previous = try add(entry, after: [previous]) }
        return .object([
            ("class_name", .string("Model")),
            (
                "config",
                .object([
                    ("name", .string("sequential_merge")), ("layers", .array(layers)), ("input_layers", .array(inputs)),
                    ("output_layers", .array([ref(previous)])),
                ])
            ),
        ])
    }

    /// The `dim_ordering` the model's layers record: one for all, nil when none records one. Keras 1
    /// resolved 'default' when a layer was made, so a saved config holds 'th' or 'tf'.
    static func modelDataFormat(_ config: JSON) throws -> String? {
        var found = Set<String>()
        func visit(_ value: JSON) {
            switch value {
            case .object(let pairs):
                for (key, item) in pairs {
                    if key == "dim_ordering", let s = item.stringValue { found.insert(s) } else { visit(item) }
                }
            case .array(let items): items.forEach(visit)
            default: break
            }
        }
        visit(config)
        guard found.count <= 1 else {
            throw ArchitectureError(
                object: "model_config",
                problem: "layers in both dim_orderings (\(found.sorted().joined(separator: ", "))): the padding, "
                    + "cropping and upsampling layers Keras 1 saved without one cannot be placed")
        }
        return try found.first.map { try dataFormat($0, path: "model_config") }
    }

    static func dataFormat(_ ordering: String, path: String) throws -> String {
        switch ordering {
        case "th": return "channels_first"
        case "tf": return "channels_last"
        default:
            throw ArchitectureError(object: path, problem: "dim_ordering '\(ordering)' is not 'th' or 'tf'")
        }
    }

    struct Rewriter {
        /// The data format every layer of the model records (channels_first for 'th'), if any does.
        let dataFormat: String?

        mutating func model(_ config: JSON, path: String) throws -> JSON {
            guard let className = config["class_name"]?.stringValue else {
                throw ArchitectureError(object: path, problem: "no class_name")
            }
            var result = config
            switch className {
            case "Sequential":
                let entries = config["config"]?.arrayValue ?? config["config"]?["layers"]?.arrayValue ?? []
                if entries.first?["class_name"]?.stringValue == "Merge" {
                    return try model(try Keras1Config.functionalFromMerge(entries, path: path), path: path)
                }
                let layers = try entries.map { try layer($0, path: path) }
                result.set("config", .array(layers))
            case "Model":
                guard var inner = config["config"] else {
                    throw ArchitectureError(object: path, problem: "Model without config")
                }
                let layers = try (inner["layers"]?.arrayValue ?? []).map { try layer($0, path: path) }
                inner.set("layers", .array(layers))
                result.set("config", inner)
            case "Graph":
                throw ArchitectureError(
                    object: path, problem: "Keras 1's Graph container, which Keras 2 no longer read: not converted")
            default:
                throw ArchitectureError(object: path, problem: "model class '\(className)' is not one Keras 1 wrote")
            }
            return result
        }

        /// One `{"class_name", "config", …}` layer entry (a nested model is rewritten whole).
        mutating func layer(_ entry: JSON, path: String) throws -> JSON {
            guard let className = entry["class_name"]?.stringValue, let config = entry["config"] else {
                throw ArchitectureError(object: path, problem: "a layer entry without class_name or config")
            }
            let name = config["name"]?.stringValue ?? entry["name"]?.stringValue ?? "?"
            let object = path + "/" + name
            var result = entry
            if className == "Sequential" || className == "Model" {
                let nested = try model(entry, path: object)
                result.set("config", nested["config"] ?? .null)
                return result
            }
            if className == "Merge",
                let short = entry["inbound_nodes"]?.arrayValue?.first(where: { ($0.arrayValue?.count ?? 0) < 2 })
            {
                throw ArchitectureError(
                    object: object,
                    problem: "a Merge of \(short.arrayValue?.count ?? 0) input: Keras 1 merges two or more")
            }
            let (newClass, newConfig) = try layerConfig(className: className, config: config, path: object)
            result.set("class_name", .string(newClass))
            result.set("config", newConfig)
            return result
        }

        /// A layer's class and config in Keras 2's terms.
        func layerConfig(className: String, config: JSON, path: String) throws -> (String, JSON) {
            if let reason = removedClasses[className] {
                throw ArchitectureError(object: path, problem: "Keras 1's \(className): \(reason); not converted")
            }
            var c = Config(json: config, path: path, className: className)
            var newClass = classNames[className] ?? className
            try c.common()
            switch className {
            case "Dense":
                c.rename(["output_dim": "units"])
                c.weightArguments(kernel: "kernel")
            case "Convolution1D", "AtrousConvolution1D":
                c.rename(["nb_filter": "filters", "atrous_rate": "dilation_rate"])
                c.list("filter_length", as: "kernel_size")
                c.list("subsample_length", as: "strides")
                c.list("dilation_rate", as: "dilation_rate")
                try c.padding()
                c.weightArguments(kernel: "kernel")
            case "Convolution2D", "AtrousConvolution2D", "Convolution3D", "SeparableConvolution2D":
                c.rename(["nb_filter": "filters", "atrous_rate": "dilation_rate", "subsample": "strides"])
                c.combine(["nb_row", "nb_col"], as: "kernel_size")
                c.combine(["kernel_dim1", "kernel_dim2", "kernel_dim3"], as: "kernel_size")
                try c.padding()
                if className == "SeparableConvolution2D" {
                    c.copy("init", to: ["depthwise_initializer", "pointwise_initializer"])
                }
                c.weightArguments(kernel: "kernel")
            case "Deconvolution2D":
                throw ArchitectureError(
                    object: path,
                    problem: "Keras 1's Deconvolution2D records an output_shape Keras 2 recomputed differently: "
                        + "not converted")
            case "MaxPooling1D", "AveragePooling1D":
                c.list("pool_length", as: "pool_size")
                c.list("stride", as: "strides")
                try c.padding()
            case "MaxPooling2D", "AveragePooling2D", "MaxPooling3D", "AveragePooling3D":
                try c.padding()
            case "Flatten":
                // Keras 1 flattens in stored order; later Keras's Flatten moves channels last first when
                // its data_format (by default the loading machine's keras.json) says channels_first.
                c.set("data_format", .string("channels_last"))
            case "UpSampling1D":
                c.rename(["length": "size"])
            case "ZeroPadding2D":
                try c.zeroPadding2D()
            case "Embedding":
                c.rename([
                    "init": "embeddings_initializer", "W_regularizer": "embeddings_regularizer",
                    "W_constraint": "embeddings_constraint",
                ])
                // Keras 1's embedding dropout acts in training only; Keras 2 dropped it the same way.
                c.drop(["dropout"])
            case "SimpleRNN", "LSTM", "GRU":
                c.rename([
                    "output_dim": "units", "inner_init": "recurrent_initializer",
                    "inner_activation": "recurrent_activation", "U_regularizer": "recurrent_regularizer",
                    "U_constraint": "recurrent_constraint", "dropout_W": "dropout", "dropout_U": "recurrent_dropout",
                ])
                c.weightArguments(kernel: "kernel")
                if let mode = c.take("consume_less") {
                    // How the steps are batched, not what they compute.
                    c.set("implementation", .int(mode.stringValue == "gpu" ? 2 : 1))
                }
                if let forget = c.take("forget_bias_init") {
                    c.set("unit_forget_bias", .bool(forget.stringValue == "one"))
                }
                // Keras 1's GRU applies the reset gate before the recurrent product.
                if className == "GRU" { c.set("reset_after", .bool(false)) }
            case "BatchNormalization":
                // Keras 1 ran mode 0 for 0 (or false, Python's 0); anything else is another mode or none.
                let mode = c.take("mode")
                guard mode == nil || mode == .bool(false) || mode?.doubleValue == 0 else {
                    throw ArchitectureError(
                        object: path,
                        problem: "BatchNormalization mode \(config["mode"]?.serialized() ?? "?") normalizes with "
                            + "each batch's own statistics at inference; Keras 2 refused it, and so does Pare")
                }
                c.rename(["beta_init": "beta_initializer", "gamma_init": "gamma_initializer"])
            case "Dropout", "SpatialDropout1D", "SpatialDropout2D", "SpatialDropout3D", "GaussianDropout":
                c.rename(["p": "rate"])
            case "GaussianNoise":
                c.rename(["sigma": "stddev"])
            case "PReLU":
                c.rename(["init": "alpha_initializer"])
            case "Merge":
                newClass = try c.merge()
            case "TimeDistributed", "Bidirectional":
                guard let inner = config["layer"], let innerClass = inner["class_name"]?.stringValue else {
                    throw ArchitectureError(object: path, problem: "\(className) without a layer")
                }
                let (cls, cfg) = try layerConfig(
                    className: innerClass, config: inner["config"] ?? .object([]), path: path + "/layer")
                c.set("layer", .object([("class_name", .string(cls)), ("config", cfg)]))
            default: break
            }
            if className != "Embedding" { c.dropBuiltInputSize() }
            if formatlessLayers.contains(newClass), c.json["data_format"] == nil, let dataFormat {
                c.set("data_format", .string(dataFormat))
            }
            return (newClass, c.json)
        }
    }

    /// A layer config being rewritten, key by key.
    struct Config {
        var json: JSON
        let path: String
        /// The Keras 1 class.
        let className: String

        func has(_ key: String) -> Bool { json[key] != nil }

        mutating func take(_ key: String) -> JSON? {
            guard case .object(let pairs) = json, let value = json[key] else { return nil }
            json = .object(pairs.filter { $0.0 != key })
            return value
        }

        mutating func set(_ key: String, _ value: JSON) {
            if json[key] == nil, case .object(let pairs) = json {
                json = .object(pairs + [(key, value)])
            } else {
                json.set(key, value)
            }
        }

        mutating func drop(_ keys: [String]) { for key in keys { _ = take(key) } }

        /// Renames keys present, in place of the old (a config with both names keeps the new one's value
        /// and loses the old: Keras 2 refused such a call, and no Keras 1 config holds both).
        mutating func rename(_ names: [String: String]) {
            guard case .object(let pairs) = json else { return }
            var seen = Set<String>()
            var out: [(String, JSON)] = []
            for (key, value) in pairs {
                let name = names[key] ?? key
                if seen.insert(name).inserted { out.append((name, value)) }
            }
            json = .object(out)
        }

        /// A number under `key` as the one-element list Keras 2 keeps (`filter_length: 3` → `kernel_size: [3]`).
        mutating func list(_ key: String, as name: String) {
            guard let value = take(key) else { return }
            set(name, value.isNull || value.arrayValue != nil ? value : .array([value]))
        }

        /// Several numbers (`nb_row`, `nb_col`) as one list.
        mutating func combine(_ keys: [String], as name: String) {
            guard keys.allSatisfy(has) else { return }
            set(name, .array(keys.map { take($0)! }))
        }

        mutating func copy(_ key: String, to names: [String]) {
            guard let value = take(key) else { return }
            for name in names { set(name, value) }
        }

        /// Arguments every Keras 1 layer may carry.
        mutating func common() throws {
            if has("dim_ordering"), !Keras1Config.orderedClasses.contains(className) {
                throw ArchitectureError(
                    object: path, problem: "\(className) has a dim_ordering, which Keras 1's \(className) did not take")
            }
            if let ordering = take("dim_ordering") {
                guard let s = ordering.stringValue else {
                    throw ArchitectureError(object: path, problem: "dim_ordering \(ordering.serialized())")
                }
                set("data_format", .string(try Keras1Config.dataFormat(s, path: path)))
            }
            rename(["bias": "use_bias"])
            // Keras 1 wrote the model input's dtype on the layer that declared the input; Keras 2 calls it
            // `dtype`. On a first layer that is not an InputLayer it is the layer's own dtype in later
            // Keras, so only a float one carries over (an Embedding's int32 ids make float32 weights).
            if let dtype = take("input_dtype") {
                if className == "InputLayer" || ["float16", "float32", "float64"].contains(dtype.stringValue ?? "") {
                    set("dtype", dtype)
                }
            }
        }

        /// Every Keras 1 Dense, convolution and recurrent layer records the input size it was built for
        /// (`input_dim`, `input_length`); the model's input shape is the `batch_input_shape` its first
        /// layer carries, so these say nothing more (an Embedding's `input_dim` is its vocabulary: kept).
        mutating func dropBuiltInputSize() { drop(["input_dim", "input_length"]) }

        /// Keras 1's weight arguments: `init`, `W_regularizer`, `b_constraint`, …; regularizers and
        /// constraints are dropped (training only, and in a form no later Keras reads).
        mutating func weightArguments(kernel: String) {
            rename(["init": "\(kernel)_initializer"])
            guard case .object(let pairs) = json else { return }
            json = .object(
                pairs.filter { key, _ in
                    !(key.hasSuffix("_regularizer") || key.hasSuffix("_constraint") || key == "activity_regularizer")
                        || key.hasSuffix("_initializer")
                })
        }

        /// `border_mode` as `padding`: 'same' and 'valid' as they are; Theano's 'full' has no Keras 2 equal.
        mutating func padding() throws {
            guard let mode = take("border_mode") else { return }
            guard let s = mode.stringValue, s == "same" || s == "valid" else {
                throw ArchitectureError(
                    object: path, problem: "border_mode \(mode.serialized()), which Keras 2 and 3 do not have")
            }
            set("padding", mode)
        }

        /// ZeroPadding2D's padding as `[[top, bottom], [left, right]]`: Keras 1 also took a dict of the
        /// four and a flat four-tuple, which Keras 2 no longer reads.
        mutating func zeroPadding2D() throws {
            guard let padding = json["padding"] else { return }
            if let sides = padding.objectValue {
                let known: Set<String> = ["top_pad", "bottom_pad", "left_pad", "right_pad"]
                if let unknown = sides.first(where: { !known.contains($0.0) }) {
                    throw ArchitectureError(object: path, problem: "ZeroPadding2D padding key '\(unknown.0)'")
                }
                let value = { (key: String) in sides.first { $0.0 == key }?.1 ?? .int(0) }
                set(
                    "padding",
                    .array([
                        .array([value("top_pad"), value("bottom_pad")]),
                        .array([value("left_pad"), value("right_pad")]),
                    ]))
            } else if let flat = padding.arrayValue, flat.count == 4, flat.allSatisfy({ $0.intValue != nil }) {
                set("padding", .array([.array([flat[0], flat[1]]), .array([flat[2], flat[3]])]))
            }
        }

        /// Keras 1's Merge layer as the Keras 2 merge layer of its mode.
        mutating func merge() throws -> String {
            let mode = json["mode"] == nil ? "sum" : json["mode"]?.stringValue ?? "not a name"
            guard json["mode_type"]?.stringValue ?? "raw" == "raw", let newClass = Keras1Config.mergeModes[mode] else {
                throw ArchitectureError(
                    object: path,
                    problem: "Keras 1's Merge in mode \(json["mode"]?.serialized() ?? "?"): sum, mul, ave, max, "
                        + "concat and dot are converted (cos reshapes its result in a way Keras 2 does not)")
            }
            let axis = json["concat_axis"] ?? .int(-1)
            let name = json["name"] ?? .string("merge")
            var pairs: [(String, JSON)] = [("name", name), ("trainable", json["trainable"] ?? .bool(true))]
            if newClass == "Concatenate" { pairs.append(("axis", axis)) }
            if newClass == "Dot" {
                // Keras 1 saved the axes normalized, counting the batch axis, as Keras 2's Dot counts them.
                pairs += [("axes", json["dot_axes"] ?? .int(-1)), ("normalize", .bool(false))]
            }
            json = .object(pairs)
            return newClass
        }
    }
}
