/// Loading model inputs from .npy files.
public enum ModelInputs {
    /// NPY files as float32 batches; float32, float64 and uint8 are accepted (uint8 keeps its 0…255 values).
    public static func load(_ paths: [String]) throws -> [FloatArray] {
        try paths.map { path in
            let tensor = try NPY.read(path)
            guard [.float32, .float64, .uint8].contains(tensor.dtype) else {
                throw PareError(file: path, "input dtype \(tensor.dtype) is not accepted (float32, float64 or uint8)")
            }
            guard tensor.shape.count >= 1 else { throw PareError(file: path, "a scalar is not a batch of inputs") }
            guard tensor.shape[0] > 0 else { throw PareError(file: path, "the batch is empty (shape \(tensor.shape))") }
            return try tensor.floatArray()
        }
    }

    /// `--input` files, or `count` random examples shaped for the interpreter's inputs.
    public static func loadOrGenerate(_ paths: [String], random count: Int, seed: UInt64, for interpreter: Interpreter, file: String) throws -> [FloatArray] {
        if !paths.isEmpty { return try load(paths) }
        var generator = RandomInputs(seed: seed)
        return try interpreter.inputs.map { try generator.array(batch: count, shape: $0.shape, name: $0.name, file: file) }
    }
}
