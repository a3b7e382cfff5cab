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
        case let .fileOpenFailed(file, reason): return "\(file): cannot open as HDF5: \(reason)"
        case let .fileCreateFailed(file, reason): return "\(file): cannot create HDF5 file: \(reason)"
        case let .objectNotFound(file, object): return "\(file): \(object): no such object"
        case let .notAGroup(file, object): return "\(file): \(object): is not a group"
        case let .notADataset(file, object): return "\(file): \(object): is not a dataset"
        case let .readFailed(file, object, reason): return "\(file): \(object): read failed: \(reason)"
        case let .writeFailed(file, object, reason): return "\(file): \(object): write failed: \(reason)"
        case let .unsupportedType(file, object, detail): return "\(file): \(object): unsupported HDF5 type: \(detail)"
        case let .refused(file, object, reason): return "\(file): \(object): \(reason)"
        }
    }
}
