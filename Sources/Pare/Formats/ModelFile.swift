import Foundation
import HDF5

/// Reads and writes models, choosing the format by content (reading) and by the model (writing).
public enum ModelFile {
    /// Reads a model and checks its weights against its architecture.
    public static func read(_ path: String) throws -> Model {
        let model = try readUnchecked(path)
        try model.validate()
        return model
    }

    static func readUnchecked(_ path: String) throws -> Model {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
            throw PareError(file: path, "no such file")
        }
        guard !isDirectory.boolValue else { throw PareError(file: path, "is a directory, not a model file") }
        guard FileManager.default.isReadableFile(atPath: path) else { throw PareError(file: path, "permission denied") }
        let head = (try? FileHandle(forReadingFrom: URL(fileURLWithPath: path)).read(upToCount: 8)) ?? Data()
        if PareFile.looksLikePare(head) { return try PareFile.read(path) }
        if head.starts(with: [0x89, 0x48, 0x44, 0x46, 0x0D, 0x0A, 0x1A, 0x0A]) {
            return try KerasLegacyH5.read(path: path)
        }
        if head.count < 8 { throw PareError(file: path, "is empty or too short to be a model file (\(head.count) bytes)") }
        // HDF5 allows a user block before the signature (at 512, 1024, …); let libhdf5 look for it.
        do {
            return try KerasLegacyH5.read(path: path)
        } catch let error as PareError where error.problem.contains("not an HDF5 file") {
            throw PareError(file: path, "not a model file Pare reads (not HDF5)")
        }
    }

    /// Writes by the destination's name: `.pare` packs, anything else is a Keras legacy .h5.
    public static func write(_ model: Model, to path: String, options: KerasLegacyH5.WriteOptions = .init()) throws {
        if path.hasSuffix(".pare") {
            let m = options.dropOptimizer ? model.copy() : model
            if options.dropOptimizer { m.optimizer = nil }
            try PareFile.write(m, to: path, options: .init(deflate: options.deflateLevel != nil), progress: options.progress)
        } else {
            try KerasLegacyH5.write(model, to: path, options: options)
        }
    }
}
