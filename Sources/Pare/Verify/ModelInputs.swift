/// Loading model inputs from .npy files.
public enum ModelInputs {
    /// NPY files as float32 batches, from any numeric dtype: integers keep their values (token ids
    /// for an Embedding, 0…255 pixels), exactly up to 2^24, as Keras's cast to float32 keeps them.
    public static func load(_ paths: [String]) throws -> [FloatArray] {
        try paths.map { path in
            let tensor = try NPY.read(path)
            guard tensor.shape.count >= 1 else { throw PareError(file: path, "a scalar is not a batch of inputs") }
            guard tensor.shape[0] > 0 else { throw PareError(file: path, "the batch is empty (shape \(tensor.shape))") }
            try MemoryBudget.require(
                ShapeMath.product([tensor.count, 4]), for: "its \(tensor.shape[0]) examples as float32", file: path)
            return try tensor.floatArray()
        }
    }

    /// `--input` files, or `count` random examples shaped for the interpreter's inputs.
    public static func loadOrGenerate(
        _ paths: [String], random count: Int, seed: UInt64, for interpreter: Interpreter, file: String
    ) throws -> [FloatArray] {
        try loadOrGenerate(paths, random: count, seed: seed, inputs: interpreter.inputs, file: file)
    }

    /// The same for a model, without building an interpreter (which would read every weight).
    public static func loadOrGenerate(
        _ paths: [String], random count: Int, seed: UInt64, for model: Model, file: String
    ) throws -> [FloatArray] {
        try loadOrGenerate(paths, random: count, seed: seed, inputs: try inputs(of: model, file: file), file: file)
    }

    /// `--input` or `--calibration` files for `model`, each checked against the model input it
    /// feeds, so that a wrong file is named as the culprit rather than the model.
    public static func load(_ paths: [String], for model: Model, file: String) throws -> [FloatArray] {
        try load(paths, matching: try inputs(of: model, file: file), model: file)
    }

    /// `--calibration` files for `model`: as `load`, and every value finite. Statistics and fits computed
    /// on a NaN or an infinity would be NaN too and written into the model without a word.
    public static func loadCalibration(_ paths: [String], for model: Model, file: String) throws -> [FloatArray] {
        let arrays = try load(paths, for: model, file: file)
        for (path, array) in zip(paths, arrays) {
            if let i = array.data.firstIndex(where: { !$0.isFinite }) {
                let perExample = array.count / max(array.batch, 1)
                throw PareError(
                    file: path,
                    "holds \(array.data[i]) (example \(i / max(perExample, 1))): calibration data must be finite, "
                        + "as what is computed on it is written into the model")
            }
        }
        return arrays
    }

    public static func load(_ paths: [String], for interpreter: Interpreter, file: String) throws -> [FloatArray] {
        try load(paths, matching: interpreter.inputs, model: file)
    }

    static func inputs(of model: Model, file: String) throws -> [ModelInput] {
        guard let config = model.config else { throw PareError(file: file, "has no architecture to make inputs for") }
        let arch: Architecture
        do { arch = try Architecture.parse(config) } catch {
            throw PareError(file: file, object: "model_config", "\(error)")
        }
        return ModelInput.of(arch)
    }

    static func load(_ paths: [String], matching inputs: [ModelInput], model: String) throws
        -> [FloatArray]
    {
        guard paths.count == inputs.count else {
            throw PareError(
                file: model,
                "has \(inputs.count) input(s) (\(inputs.map(\.name).joined(separator: ", "))), \(paths.count) "
                    + "file(s) given"
            )
        }
        let arrays = try load(paths)
        for ((path, array), input) in zip(zip(paths, arrays), inputs) {
            let fits =
                array.shape.count == input.shape.count + 1
                && zip(array.shape.dropFirst(), input.shape).allSatisfy { have, want in want == nil || want == have }
            guard fits else {
                throw PareError(
                    file: path,
                    "has shape \(array.shape); \(model)'s input '\(input.name)' takes \(describe(input.shape))")
            }
            guard array.batch == arrays[0].batch else {
                throw PareError(file: path, "holds \(array.batch) examples, \(paths[0]) holds \(arrays[0].batch)")
            }
        }
        return arrays
    }

    /// Random examples with padding, so that masks are exercised: along the second axis (a
    /// sequence's steps) example b of n keeps its first t − b·t/(n−1) steps and has zeros after
    /// them, from all steps down to none. Zeros are what Embedding(mask_zero) and Masking mask.
    /// Input k counts from example k (b + k mod n), so that two inputs of one example are padded
    /// differently: where masks merge (Keras 2 keeps a step both inputs keep, Keras 3 one either keeps)
    /// the lines then differ as they do on real data.
    public static func paddingSequences(_ arrays: [FloatArray]) -> [FloatArray] {
        arrays.enumerated().map { inputIndex, array in
            guard array.shape.count >= 3 || (array.shape.count == 2 && array.shape[1] >= 2) else { return array }
            var padded = array
            let (n, steps) = (array.shape[0], array.shape[1])
            let stride = array.shape.dropFirst(2).reduce(1, *)
            for b in 0..<n {
                let kept = steps - (((b + inputIndex) % n) * steps) / max(n - 1, 1)
                let start = (b * steps + kept) * stride
                let end = (b + 1) * steps * stride
                if start < end { for i in start..<end { padded.data[i] = 0 } }
            }
            return padded
        }
    }

    static func loadOrGenerate(
        _ paths: [String], random count: Int, seed: UInt64, inputs: [ModelInput], file: String
    ) throws -> [FloatArray] {
        if !paths.isEmpty { return try load(paths, matching: inputs, model: file) }
        var generator = RandomInputs(seed: seed)
        return try inputs.map { try generator.array(batch: count, input: $0, file: file) }
    }
}
