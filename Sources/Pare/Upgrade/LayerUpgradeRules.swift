/// Each layer's arguments rewritten from Keras 2 / tf.keras 2 into Keras 3's terms.
///
/// A key Keras 3 does not take is dropped only when it cannot change what the layer computes at
/// inference (a training-time or performance switch), or when it holds the value Keras 3 assumes;
/// otherwise the upgrade is refused with the reason. Every rule is listed in README ("Upgrading
/// Keras 2 files").
enum LayerUpgradeRules {
    struct Upgraded {
        var className: String
        var config: JSON
        var notes: [String] = []
    }

    enum Action {
        /// Keras 3 has no such argument and it cannot change inference.
        case drop
        /// Keras 3 calls it something else.
        case rename(String)
        /// Keras 3 has no such argument; only this value (or its absence) means what Keras 3 does.
        case requireValue(JSON, meaning: String)
        /// Keras 3 has no such argument and no equal of it: dropped, and what it changes is left to
        /// the verification to measure (it fails the upgrade where it matters).
        case measured
    }

    /// Rules for every layer class.
    static let common: [String: Action] = [
        // The input shape moves to the InputLayer (ConfigUpgrade adds one where needed).
        "batch_input_shape": .drop, "input_dtype": .drop,
    ]

    /// Rules by Keras 2 class name.
    static let byClass: [String: [String: Action]] = [
        "InputLayer": ["batch_input_shape": .rename("batch_shape"), "input_dtype": .rename("dtype")],
        "LSTM": recurrent, "GRU": recurrent, "SimpleRNN": recurrent,
        "CuDNNLSTM": recurrent, "CuDNNGRU": recurrent,
        "Embedding": ["input_length": .drop],
        "BatchNormalization": [
            // Training-time switches: inference uses the moving statistics whatever they say.
            "fused": .drop, "renorm": .drop, "renorm_clipping": .drop, "renorm_momentum": .drop,
            "virtual_batch_size": .drop, "adjustment": .drop,
        ],
        "LeakyReLU": ["alpha": .rename("negative_slope")],
        "SpatialDropout1D": spatialDropout, "SpatialDropout2D": spatialDropout, "SpatialDropout3D": spatialDropout,
        "GaussianNoise": dropoutLike, "GaussianDropout": dropoutLike, "AlphaDropout": dropoutLike,
        "MultiHeadAttention": [
            // tf.keras records the shapes it was built with; Keras 3 keeps them in build_config.
            "query_shape": .drop, "key_shape": .drop, "value_shape": .drop,
            // How tf.keras fills masked scores (-1e9 added, or set): Keras 3 has one rule of its own.
            "softmax_robust_masking": .measured,
        ],
        // tf.keras's depthwise and separable layers inherit Conv's arguments and ignore these.
        "DepthwiseConv1D": depthwise, "DepthwiseConv2D": depthwise,
        "SeparableConv1D": separable, "SeparableConv2D": separable,
        "Conv1DTranspose": depthwise, "Conv2DTranspose": depthwise, "Conv3DTranspose": depthwise,
        "Attention": ["causal": .requireValue(.bool(false), meaning: "a causal mask (Keras 3 takes it per call)")],
        "AdditiveAttention": [
            "causal": .requireValue(.bool(false), meaning: "a causal mask (Keras 3 takes it per call)")
        ],
    ]

    static let recurrent: [String: Action] = [
        // cuDNN or not, and how the steps are batched, are compute modes: the arithmetic is the same.
        "implementation": .drop,
        "time_major": .requireValue(.bool(false), meaning: "time-major inputs, which Keras 3 does not take"),
    ]

    /// Keras 3's noise and dropout layers take no `trainable` (they have nothing to train).
    static let dropoutLike: [String: Action] = ["trainable": .drop]
    /// SpatialDropout fixes its own noise shape: what tf.keras records is only its rate's shape.
    static let spatialDropout: [String: Action] = ["trainable": .drop, "noise_shape": .drop]
    /// Depthwise and transposed convolutions: Keras 3 has no groups for them.
    static let depthwise: [String: Action] = [
        "groups": .requireValue(.int(1), meaning: "grouped channels, which Keras 3 does not offer for this layer")
    ]
    static let separable: [String: Action] = [
        "groups": .requireValue(.int(1), meaning: "grouped channels, which a separable layer does not have"),
        "kernel_initializer": .drop, "kernel_regularizer": .drop, "kernel_constraint": .drop,
    ]

    /// The layer's class and config in Keras 3's dialect.
    static func upgrade(className: String, config: JSON, path: String) throws -> Upgraded {
        if KerasArguments.keras3[className] == nil, let known = KerasArguments.tfKeras[className] {
            // A class Keras 3 no longer has is rewritten key by key here: a key tf.keras would not have
            // taken either (a `threshold` beside ThresholdedReLU's `theta`) must not be overwritten.
            try checkArguments(config, of: className, known: known, line: "tf.keras 2", path: path)
        }
        var upgraded = try applying(
            common.merging(byClass[className] ?? [:]) { _, specific in specific }, className: className,
            config: try upgradedDtype(config, className: className, path: path), path: path, target: "Keras 3",
            value: upgradedValue)
        try renameLegacyClass(&upgraded, path: path)
        if upgraded.className == "Bidirectional" { upgraded.config = withBackwardLayer(upgraded.config) }
        if let known = KerasArguments.keras3[upgraded.className] {
            try checkArguments(upgraded.config, of: upgraded.className, known: known, line: "Keras 3", path: path)
        }
        return upgraded
    }

    /// Refuses a config key the Keras `line` does not take for `className`: that line would refuse
    /// to load the file ("Unrecognized keyword arguments"), and Pare cannot know what the key meant.
    static func checkArguments(
        _ config: JSON, of className: String, known: Set<String>, line: String, path: String
    ) throws {
        let unknown = (config.objectValue ?? []).map(\.0).filter { !known.contains($0) }
        guard unknown.isEmpty else {
            throw ArchitectureError(
                object: path,
                problem: "\(className) has argument\(unknown.count == 1 ? "" : "s") "
                    + unknown.map { "'\($0)'" }.joined(separator: ", ") + ", which \(line)'s \(className) does "
                    + "not take: the conversion is refused")
        }
    }

    /// The config with its dtype in Keras 3's terms. An InputLayer keeps its dtype (int32 token ids);
    /// Keras 2.0 wrote the model input's dtype on the first layer, so an Embedding's integer dtype is
    /// its input's and its own weights are float32; any other layer computing in integers is refused
    /// (neither Keras line builds a Dense of int32).
    static func upgradedDtype(_ config: JSON, className: String, path: String) throws -> JSON {
        guard let value = config["dtype"], !value.isNull else { return config }
        guard let name = LayerConfig.policyName(value) else {
            throw ArchitectureError(object: path, problem: "\(className) dtype \(value.serialized()) names no dtype")
        }
        let dtype = Keras3Serialization.computeDtype(ofPolicy: name)
        var result = config
        if LayerRegistry.isInput(className) {
            result.set("dtype", .string(dtype))
        } else if ["float16", "float32", "float64", "bfloat16"].contains(dtype) {
            result.set("dtype", Keras3Serialization.dtypePolicy(name))
        } else if className == "Embedding" {
            result.set("dtype", Keras3Serialization.dtypePolicy("float32"))
        } else {
            throw ArchitectureError(
                object: path,
                problem: "\(className) has dtype \(name): a layer computing in \(dtype) is not one Keras builds")
        }
        return result
    }

    /// `config` with `rules` applied to its keys and `value` to the values no rule names; refuses
    /// a value a `requireValue` rule does not allow, naming `target` (the Keras line written for).
    static func applying(
        _ rules: [String: Action], className: String, config: JSON, path: String, target: String,
        value: (String, JSON, String) throws -> JSON
    ) throws -> Upgraded {
        guard case .object(let pairs) = config else {
            throw ArchitectureError(object: path, problem: "\(className) config is not an object")
        }
        var result = Upgraded(className: className, config: config)
        var out: [(String, JSON)] = []
        for (key, item) in pairs {
            switch rules[key] {
            case nil: out.append((key, try value(key, item, path)))
            case .drop: continue
            case .measured:
                result.notes.append(
                    "'\(path)': \(className)'s \(key)=\(item.serialized()) has no \(target) equal: dropped (the "
                        + "verification measures the difference)")
            case .rename(let name):
                // A config holding both names (`alpha` and `negative_slope`) would leave the key twice.
                guard !pairs.contains(where: { $0.0 == name }) else {
                    throw ArchitectureError(
                        object: path, problem: "\(className) has both \(key) and \(name); \(target) takes one")
                }
                out.append((name, item))
            case .requireValue(let expected, let meaning):
                guard item == expected || item.isNull else {
                    throw ArchitectureError(
                        object: path,
                        problem: "\(className) has \(key)=\(item.serialized()): \(meaning); \(target) has no "
                            + "equivalent, so the conversion is refused")
                }
            }
        }
        result.config = .object(out)
        return result
    }

    /// A Bidirectional's config with its backward layer written out, as Keras 3 writes it: the forward
    /// layer's config with `go_backwards` flipped, named `backward_<name>`. Given none, Keras 3.15 rebuilds
    /// it from the forward layer at load by a serialize–deserialize round trip that now and then hands back
    /// a layer going forwards and refuses the model ("Forward layer and backward layer should have
    /// different `go_backwards` value"): seen in 1 of about 25 loads of one file, each in a new process.
    static func withBackwardLayer(_ config: JSON) -> JSON {
        guard config["backward_layer"]?.isNull ?? true, var backward = config["layer"],
            var inner = backward["config"], let name = inner["name"]?.stringValue
        else { return config }
        inner.set("go_backwards", .bool(!(inner["go_backwards"]?.boolValue ?? false)))
        inner.set("name", .string("backward_" + (name.hasPrefix("backward_") ? String(name.dropFirst(9)) : name)))
        backward.set("config", inner)
        var out = config
        out.set("backward_layer", backward)
        return out
    }

    /// A value in Keras 3's form (dtypes are `upgradedDtype`'s): initializers, regularizers and constraints
    /// with their module, wrapped layers upgraded.
    static func upgradedValue(key: String, _ value: JSON, path: String) throws -> JSON {
        if key == "layer" || key == "backward_layer", value["class_name"] != nil {
            let className = value["class_name"]?.stringValue ?? ""
            let inner = try upgrade(
                className: className, config: value["config"] ?? .object([]), path: path + "/" + key)
            return Keras3Serialization.object(
                module: Keras3Serialization.layersModule, className: inner.className, config: inner.config)
        }
        for (suffix, module) in [
            ("_initializer", "keras.initializers"), ("_regularizer", "keras.regularizers"),
            ("_constraint", "keras.constraints"),
        ] where key.hasSuffix(suffix) {
            return try serializedObject(value, module: module, path: path + " " + key)
        }
        return value
    }

    /// `{"class_name", "config"}` of an initializer, regularizer or constraint, with the module
    /// and registered name Keras 3 finds the class by; names Keras 3 dropped become their equals.
    static func serializedObject(_ value: JSON, module: String, path: String) throws -> JSON {
        guard var className = value["class_name"]?.stringValue, value["module"]?.isNull ?? true else { return value }
        var config = value["config"] ?? .object([])
        if module == "keras.initializers", case .object(let pairs) = config {
            // Older tf.keras wrote the dtype into initializer configs; Keras 3's take none.
            config = .object(pairs.filter { $0.0 != "dtype" })
        }
        if module == "keras.constraints", trainingOnlyConstraints.contains(className) { return .null }
        className = legacyAliases[className] ?? className
        let known = [
            "keras.initializers": KerasArguments.keras3Initializers,
            "keras.regularizers": KerasArguments.keras3Regularizers,
            "keras.constraints": KerasArguments.keras3Constraints,
        ][module]
        guard known?.contains(className) ?? true else {
            throw ArchitectureError(object: path, problem: "class '\(className)' is not one of \(module)")
        }
        return Keras3Serialization.object(module: module, className: className, config: config)
    }

    /// Keras 2's lower-case aliases of regularizer and constraint classes, as Keras 3 names them.
    static let legacyAliases = [
        "l1_l2": "L1L2", "maxnorm": "MaxNorm", "max_norm": "MaxNorm", "nonneg": "NonNeg", "non_neg": "NonNeg",
        "unitnorm": "UnitNorm", "unit_norm": "UnitNorm", "min_max_norm": "MinMaxNorm",
    ]
    /// Constraints Keras 3 does not have; a constraint acts in training only, so the upgrade drops it.
    static let trainingOnlyConstraints: Set<String> = ["RadialConstraint"]

    /// The Keras 3 class `renameLegacyClass` makes of each class Keras 3 no longer has.
    static let keras3ClassNames = ["CuDNNLSTM": "LSTM", "CuDNNGRU": "GRU", "ThresholdedReLU": "ReLU"]

    /// tf.keras 2's classes Keras 3 no longer has, as the Keras 3 layer that computes the same.
    static func renameLegacyClass(_ upgraded: inout Upgraded, path: String) throws {
        switch upgraded.className {
        case "CuDNNLSTM", "CuDNNGRU":
            // cuDNN's cell is LSTM / GRU (reset_after) with tanh and sigmoid and a bias; the weights
            // are converted to Keras's layout by WeightUpgrade.
            let lstm = upgraded.className == "CuDNNLSTM"
            upgraded.className = lstm ? "LSTM" : "GRU"
            upgraded.config.set("activation", .string("tanh"))
            upgraded.config.set("recurrent_activation", .string("sigmoid"))
            upgraded.config.set("use_bias", .bool(true))
            if !lstm { upgraded.config.set("reset_after", .bool(true)) }
            upgraded.notes.append(
                "'\(path)': \(lstm ? "CuDNNLSTM" : "CuDNNGRU") became \(upgraded.className) (tanh, sigmoid"
                    + "\(lstm ? "" : ", reset_after") — what cuDNN computes), its weights in Keras's layout")
        case "GRU":
            // Before Keras 2.1.3 GRU had no reset_after and computed the reset-before form; Keras 3's
            // default is reset_after=True.
            if upgraded.config["reset_after"] == nil { upgraded.config.set("reset_after", .bool(false)) }
        case "ThresholdedReLU":
            // ReLU(threshold=θ) computes x·(x > θ), ThresholdedReLU's rule, θ cast to float32 both times.
            let theta = upgraded.config["theta"] ?? .number("1.0")
            var pairs = (upgraded.config.objectValue ?? []).filter {
                !["theta", "max_value", "negative_slope", "threshold"].contains($0.0)
            }
            pairs += [("max_value", .null), ("negative_slope", .number("0.0")), ("threshold", theta)]
            upgraded.className = "ReLU"
            upgraded.config = .object(pairs)
            upgraded.notes.append("'\(path)': ThresholdedReLU (removed in Keras 3) became ReLU(threshold=θ)")
        case "BatchNormalization":
            // tf.keras writes the axis as a list; Keras 3 normalizes over one axis, given as a number.
            if let axes = upgraded.config["axis"]?.arrayValue {
                guard axes.count == 1 else {
                    throw ArchitectureError(
                        object: path,
                        problem: "BatchNormalization over several axes \(axes.count): Keras 3 takes one axis")
                }
                upgraded.config.set("axis", axes[0])
            }
        default: break
        }
    }
}
