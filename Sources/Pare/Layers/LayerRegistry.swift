/// The one map from Keras class names to the layer kinds Pare knows.
///
/// A class name not here is unknown everywhere at once: shape inference, the interpreter, the
/// channel graph and the rewriter all see the same `LayerRegistry.parse` failure.
public enum LayerRegistry {
    /// Every kind, by family (one file each under `Layers/`).
    static let kinds: [any LayerKind.Type] = [
        // Core
        InputLayerKind.self, InferenceNoOp.self, Rescaling.self, Masking.self,
        // Embedding
        Embedding.self,
        // Convolution
        Conv.self, DepthwiseConv.self, SeparableConv.self, ConvTranspose.self,
        // Dense
        Dense.self, EinsumDense.self,
        // Attention
        MultiHeadAttention.self, DotAttention.self,
        // Normalization
        BatchNormalization.self, LayerNormalization.self, RMSNormalization.self, GroupNormalization.self,
        UnitNormalization.self,
        // Activation
        ActivationLayer.self, ReLU.self, LeakyReLU.self, PReLU.self, ELU.self, Softmax.self, ThresholdedReLU.self,
        // Pooling
        Pooling.self, GlobalPooling.self,
        // Reshaping
        Flatten.self, Reshape.self, Permute.self, PaddingOrCropping.self, UpSampling.self, RepeatVector.self,
        // Merging
        Merge.self, Concatenate.self, Dot.self,
        // Recurrent
        Recurrent.self, Bidirectional.self, TimeDistributed.self,
        // Operations (Keras 3 records mask computations as these)
        Comparison.self, ZerosLike.self, Reduction.self, ExpandDims.self,
    ]

    /// What the reported MACs count, naming the kinds that have them.
    public static var macsDefinition: String {
        var counted: [String] = []
        for kind in kinds where kind.countsMACs { counted += kind.classNames }
        return "MACs = multiply-accumulates of \(counted.joined(separator: ", ")) per example, summed over call sites; "
            + "bias adds, normalization, activations, pooling and merges are not counted. FLOPs ≈ 2 × MACs."
    }

    /// Operations Keras 3 records in a functional graph (`keras.src.ops.numpy`), not layers.
    static let keras3Operations: Set<String> = Set(
        Comparison.classNames + ZerosLike.classNames + Reduction.classNames + ExpandDims.classNames)

    static func isKeras3Operation(_ className: String) -> Bool { keras3Operations.contains(className) }

    /// Class names of models that nest layers (they are architectures, not layer kinds).
    static let modelClassNames: Set<String> = [sequential, "Functional", "Model"]
    /// A model whose layers run one after another (configs list them without call sites).
    static let sequential = "Sequential"

    private static let byName: [String: any LayerKind.Type] = {
        var map: [String: any LayerKind.Type] = [:]
        for kind in kinds {
            for name in kind.classNames {
                precondition(map[name] == nil, "class name \(name) registered twice")
                map[name] = kind
            }
        }
        return map
    }()

    /// The kind registered for a class name, nil for a class Pare does not know.
    public static func kind(named className: String) -> (any LayerKind.Type)? { byName[className] }

    /// Every class name Pare knows, layer kinds and model containers.
    public static var classNames: [String] { Array(byName.keys) + modelClassNames.sorted() }

    public static func isModel(_ className: String) -> Bool { modelClassNames.contains(className) }

    public static func isInput(_ className: String) -> Bool { InputLayerKind.classNames.contains(className) }

    /// Parses a layer's config into its kind; `callArguments` are the non-tensor positional
    /// arguments of its calls, for the kinds that take them (Keras 3 operations).
    public static func parse(
        className: String, config: JSON, callArguments: [JSON?] = [], call: CallSignature? = nil
    ) -> Result<any LayerKind, LayerProblem> {
        guard let kind = byName[className] else {
            return .failure(.unknownClass)
        }
        do {
            var parsed = try LayerConfig(config, className: className)
            parsed.callArguments = callArguments
            parsed.call = call
            return .success(try kind.init(config: parsed))
        } catch let error as LayerConfigError {
            return .failure(.invalidConfig(error.reason))
        } catch {
            return .failure(.invalidConfig("\(error)"))
        }
    }
}

/// Why a layer has no kind: Pare does not know its class (a custom layer of a possibly valid
/// model), or its class is known and its config is not one Keras accepts.
public enum LayerProblem: Error, Sendable, Equatable {
    case unknownClass
    case invalidConfig(String)

    public var reason: String {
        switch self {
        case .unknownClass: return "is not a layer Pare knows"
        case .invalidConfig(let reason): return reason
        }
    }
}
