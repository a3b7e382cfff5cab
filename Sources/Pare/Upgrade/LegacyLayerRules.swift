/// Each layer's arguments rewritten from Keras 3 into tf.keras 2's terms (the reverse of
/// `LayerUpgradeRules`). A Keras 3 argument tf.keras does not take is dropped only when it holds
/// the value that means what tf.keras computes; otherwise the rewrite is refused with the reason.
enum LegacyLayerRules {
    typealias Action = LayerUpgradeRules.Action

    /// Rules for every layer class.
    static let common: [String: Action] = [
        // Keras 3.13+ quantization and LoRA: only their absence has a tf.keras form.
        "quantization_config": .requireValue(.null, meaning: "a quantized layer"),
        "lora_rank": .requireValue(.null, meaning: "a LoRA adapter"),
        "lora_alpha": .drop,
    ]

    /// Rules by Keras 3 class name.
    static let byClass: [String: [String: Action]] = [
        "InputLayer": [
            "batch_shape": .rename("batch_input_shape"),
            "optional": .requireValue(
                .bool(false),
                meaning: "an optional input"),
        ],
        "LeakyReLU": ["negative_slope": .rename("alpha")],
        "LayerNormalization": ["rms_scaling": .requireValue(.bool(false), meaning: "RMS scaling")],
        // tf.keras's one-dimensional padding, cropping and upsampling work on channels-last inputs only.
        "ZeroPadding1D": channelsLastOnly, "Cropping1D": channelsLastOnly, "UpSampling1D": channelsLastOnly,
        "LSTM": ["use_cudnn": .drop], "GRU": ["use_cudnn": .drop], "SimpleRNN": ["use_cudnn": .drop],
        "MultiHeadAttention": [
            "use_gate": .requireValue(.bool(false), meaning: "a gated attention output"),
            "sliding_window": .requireValue(.null, meaning: "sliding-window attention"),
            "flash_attention": .drop, "seed": .drop,
        ],
    ]

    static let channelsLastOnly: [String: Action] = [
        "data_format": .requireValue(.string("channels_last"), meaning: "channels-first data")
    ]

    /// Classes only Keras 3 has.
    static let keras3Only: Set<String> = ["RMSNormalization"]

    /// Activations tf.keras 2 cannot name.
    static let keras3OnlyActivations: Set<String> = [
        "celu", "glu", "hard_shrink", "hard_silu", "hard_swish", "hard_tanh", "log_sigmoid", "soft_shrink",
        "sparse_plus", "sparse_sigmoid", "sparsemax", "squareplus", "tanh_shrink", "threshold",
    ]

    static func rewrite(className: String, config: JSON, path: String) throws -> LayerUpgradeRules.Upgraded {
        guard !keras3Only.contains(className) else {
            throw ArchitectureError(
                object: path, problem: "\(className) exists only in Keras 3: tf.keras cannot load it")
        }
        let result = try LayerUpgradeRules.applying(
            common.merging(byClass[className] ?? [:]) { _, specific in specific }, className: className,
            config: config, path: path, target: "tf.keras", value: legacyValue)
        for key in ["activation", "recurrent_activation"] {
            if let name = WeightUpgrade.activationName(config[key]), keras3OnlyActivations.contains(name) {
                throw ArchitectureError(
                    object: path, problem: "activation '\(name)' exists only in Keras 3: tf.keras cannot load it")
            }
        }
        if let known = KerasArguments.tfKeras[result.className] {
            try LayerUpgradeRules.checkArguments(
                result.config, of: result.className, known: known, line: "tf.keras 2", path: path)
        }
        return result
    }

    /// A value in tf.keras's form: dtype policies as names, wrapped layers rewritten, Keras 3's
    /// serialized functions as their names.
    static func legacyValue(key: String, _ value: JSON, path: String) throws -> JSON {
        if key == "dtype", let name = LayerConfig.policyName(value) {
            return name.hasPrefix("mixed_")
                ? .object([("class_name", .string("Policy")), ("config", .object([("name", .string(name))]))])
                : .string(name)
        }
        if key == "layer" || key == "backward_layer", let className = value["class_name"]?.stringValue {
            let inner = try rewrite(
                className: className, config: value["config"] ?? .object([]), path: path + "/" + key)
            return .object([("class_name", .string(inner.className)), ("config", inner.config)])
        }
        if key.hasSuffix("activation"), value["class_name"]?.stringValue == "function",
            let name = value["config"]?.stringValue
        {
            return .string(name)
        }
        if key.hasSuffix("_initializer"), var config = value["config"], case .object(let pairs) = config {
            // Keras 3's initializers record the axes they fan over; tf.keras's take no such argument.
            config = .object(pairs.filter { !(["input_axes", "output_axes"].contains($0.0) && $0.1.isNull) })
            var object = value
            object.set("config", config)
            return object
        }
        return value
    }
}
