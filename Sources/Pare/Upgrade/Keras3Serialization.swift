/// The pieces of Keras 3's serialized form (`serialization_lib.serialize_keras_object`) that an
/// upgraded config is made of: every object names the module Keras 3 finds its class in.
enum Keras3Serialization {
    /// The Keras version whose dialect Pare writes when it upgrades a file (and the one the
    /// cross-check loads the results with). metadata.json and the interpreter read it.
    static let dialectVersion = "3.15.1"
    /// The tf.keras version whose dialect Pare writes for `--keras 2` (the last Keras 2 line release
    /// bundled with TensorFlow, 2.15; tf_keras 2.21 reads the same).
    static let legacyDialectVersion = "2.15.0"

    static let layersModule = "keras.layers"

    /// `{"module", "class_name", "config", "registered_name"}`: how Keras 3 serializes a built-in object.
    static func object(module: String, className: String, config: JSON, registeredName: JSON = .null) -> JSON {
        .object([
            ("module", .string(module)), ("class_name", .string(className)), ("config", config),
            ("registered_name", registeredName),
        ])
    }

    /// A dtype policy as Keras 3 writes it in a layer's config.
    static func dtypePolicy(_ name: String) -> JSON {
        object(module: "keras", className: "DTypePolicy", config: .object([("name", .string(name))]))
    }

    /// A symbolic tensor in a node's arguments: Keras 3 takes the tensor `history` names (layer,
    /// node, output) and keeps shape and dtype for reading only.
    static func kerasTensor(shape: Shape?, dtype: String, layer: String, node: Int, tensor: Int) -> JSON {
        .object([
            ("class_name", .string("__keras_tensor__")),
            (
                "config",
                .object([
                    ("shape", shape.map(batchShape) ?? .null), ("dtype", .string(dtype)),
                    ("keras_history", .array([.string(layer), .int(node), .int(tensor)])),
                ])
            ),
        ])
    }

    /// A per-example shape with the batch axis in front, unknown dimensions as null.
    static func batchShape(_ shape: Shape) -> JSON { .array([.null] + shape.map { $0.map(JSON.int) ?? .null }) }

    /// The compute dtype of a Keras dtype policy name (`mixed_float16` computes in float16).
    static func computeDtype(ofPolicy name: String) -> String {
        name.hasPrefix("mixed_") ? String(name.dropFirst("mixed_".count)) : name
    }
}
