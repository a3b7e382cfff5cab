import CHDF5

public enum StringPadding: Equatable, Sendable {
    case nullTerminated, nullPadded, spacePadded
}

/// How a string attribute is stored, kept so a rewrite stores it the same way
/// (h5py 2 wrote fixed-length NULLPAD arrays, h5py 3 writes variable-length UTF-8).
public struct StringEncoding: Equatable, Sendable {
    public var variableLength: Bool
    public var utf8: Bool
    /// Bytes per element of a fixed-length string (0 for variable length).
    public var fixedSize: Int
    public var padding: StringPadding

    public init(variableLength: Bool, utf8: Bool, fixedSize: Int = 0, padding: StringPadding = .nullTerminated) {
        self.variableLength = variableLength
        self.utf8 = utf8
        self.fixedSize = fixedSize
        self.padding = padding
    }

    /// What h5py 3 writes for a Python `str`.
    public static let variableUTF8 = StringEncoding(variableLength: true, utf8: true)
    /// What h5py writes for a numpy array of `bytes` (`np.asarray([b"a", b"bc"])`).
    public static let fixedASCII = StringEncoding(
        variableLength: false, utf8: false, fixedSize: 0, padding: .nullPadded)
}

/// The value of an HDF5 attribute: strings or numbers, with a shape ([] for a scalar).
public enum AttributeValue: Equatable, Sendable {
    case strings([String], shape: [Int], encoding: StringEncoding)
    case numbers(HDF5ElementType, shape: [Int], bytes: [UInt8])

    public var shape: [Int] {
        switch self {
        case .strings(_, let shape, _), .numbers(_, let shape, _): return shape
        }
    }

    /// The strings of a string attribute (one element for a scalar); nil for numbers.
    public var stringValues: [String]? {
        if case .strings(let values, _, _) = self { return values }
        return nil
    }

    /// The string of an attribute holding exactly one (a scalar or a one-element array); nil otherwise.
    public var singleString: String? {
        if case .strings(let values, _, _) = self, values.count == 1 { return values[0] }
        return nil
    }

    /// Numbers as Double, whatever their stored type; nil for strings.
    public var doubleValues: [Double]? {
        guard case .numbers(let type, _, let bytes) = self else { return nil }
        return decodeAsDoubles(type: type, bytes: bytes)
    }

    public static func string(_ s: String, encoding: StringEncoding = .variableUTF8) -> AttributeValue {
        .strings([s], shape: [], encoding: encoding)
    }

    public static func stringArray(_ s: [String], encoding: StringEncoding) -> AttributeValue {
        .strings(s, shape: [s.count], encoding: encoding)
    }
}

func decodeAsDoubles(type: HDF5ElementType, bytes: [UInt8]) -> [Double] {
    let n = bytes.count / type.byteCount
    return bytes.withUnsafeBytes { raw in
        (0..<n).map { i -> Double in
            switch type {
            case .float(32):
                return Double(Float(bitPattern: raw.loadUnaligned(fromByteOffset: i * 4, as: UInt32.self).littleEndian))
            case .float(64):
                return Double(bitPattern: raw.loadUnaligned(fromByteOffset: i * 8, as: UInt64.self).littleEndian)
            case .float(16):
                #if arch(x86_64) || arch(arm64)
                    return Double(
                        Float(
                            Float16(bitPattern: raw.loadUnaligned(fromByteOffset: i * 2, as: UInt16.self).littleEndian))
                    )
                #else
                    return .nan
                #endif
            case .signed(8): return Double(raw.load(fromByteOffset: i, as: Int8.self))
            case .signed(16): return Double(raw.loadUnaligned(fromByteOffset: i * 2, as: Int16.self).littleEndian)
            case .signed(32): return Double(raw.loadUnaligned(fromByteOffset: i * 4, as: Int32.self).littleEndian)
            case .signed(64): return Double(raw.loadUnaligned(fromByteOffset: i * 8, as: Int64.self).littleEndian)
            case .unsigned(8): return Double(raw.load(fromByteOffset: i, as: UInt8.self))
            case .unsigned(16): return Double(raw.loadUnaligned(fromByteOffset: i * 2, as: UInt16.self).littleEndian)
            case .unsigned(32): return Double(raw.loadUnaligned(fromByteOffset: i * 4, as: UInt32.self).littleEndian)
            case .unsigned(64): return Double(raw.loadUnaligned(fromByteOffset: i * 8, as: UInt64.self).littleEndian)
            default: return .nan
            }
        }
    }
}
