/// Writing a Keras 3 model for tf.keras 2 (legacy .h5).
public enum KerasDowngrade {
    public static func downgrade(_ model: Model) throws -> KerasUpgrade.Result {
        throw PareError(file: model.sourcePath, "writing for tf.keras 2 is not implemented yet")
    }
}
