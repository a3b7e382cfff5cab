/// A failure of libhdf5, naming the file and the object it concerns.
public enum HDF5Error: Error, CustomStringConvertible, Equatable {
    case fileOpenFailed(file: String, reason: String)
    case fileCreateFailed(file: String, reason: String)
    case objectNotFound(file: String, object: String)
    case notAGroup(file: String, object: String)
    case notADataset(file: String, object: String)
    case readFailed(file: String, object: String, reason: String)
    case writeFailed(file: String, object: String, reason: String)
    case unsupportedType(file: String, object: String, detail: String)
    /// The file is well formed but asks for something Pare never does (read another file, loop).
    case refused(file: String, object: String, reason: String)

    public var description: String {
        switch self {
        case .fileOpenFailed(let file, let reason): return "\(file): cannot open as HDF5: \(reason)"
        case .fileCreateFailed(let file, let reason): return "\(file): cannot create HDF5 file: \(reason)"
        case .objectNotFound(let file, let object): return "\(file): \(object): no such object"
        case .notAGroup(let file, let object): return "\(file): \(object): is not a group"
        case .notADataset(let file, let object): return "\(file): \(object): is not a dataset"
        case .readFailed(let file, let object, let reason): return "\(file): \(object): read failed: \(reason)"
        case .writeFailed(let file, let object, let reason): return "\(file): \(object): write failed: \(reason)"
        case .unsupportedType(let file, let object, let detail):
            return "\(file): \(object): unsupported HDF5 type: \(detail)"
        case .refused(let file, let object, let reason): return "\(file): \(object): \(reason)"
        }
    }
}
