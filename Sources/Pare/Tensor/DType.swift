import HDF5

/// Element types of weight tensors. Storage is always little-endian.
public enum DType: String, Sendable, CaseIterable, Codable {
    case float16, bfloat16, float32, float64
    case int8, int16, int32, int64, uint8, uint16, uint32, uint64

    public var byteCount: Int {
        switch self {
        case .int8, .uint8: return 1
        case .float16, .bfloat16, .int16, .uint16: return 2
        case .float32, .int32, .uint32: return 4
        case .float64, .int64, .uint64: return 8
        }
    }

    public var isFloatingPoint: Bool { [.float16, .bfloat16, .float32, .float64].contains(self) }

    /// The HDF5 element type used to store it; bfloat16 has none (Keras 3 stores it as uint16 + a `dtype` attribute).
    public var hdf5: HDF5ElementType {
        switch self {
        case .float16: return .float(bits: 16)
        case .float32: return .float(bits: 32)
        case .float64: return .float(bits: 64)
        case .bfloat16: return .opaque(bytes: 2, tag: "")
        case .uint16: return .unsigned(bits: 16)
        case .int8: return .signed(bits: 8)
        case .int16: return .signed(bits: 16)
        case .int32: return .signed(bits: 32)
        case .int64: return .signed(bits: 64)
        case .uint8: return .unsigned(bits: 8)
        case .uint32: return .unsigned(bits: 32)
        case .uint64: return .unsigned(bits: 64)
        }
    }

    /// The dtype of an HDF5 element type; nil for opaque types, which need more context
    /// (see `init(hdf5:dtypeAttribute:)`).
    public init?(hdf5 type: HDF5ElementType) {
        switch type {
        case .opaque: return nil
        case .float(16): self = .float16
        case .float(64): self = .float64
        case .float: self = .float32
        case .signed(8): self = .int8
        case .signed(16): self = .int16
        case .signed(32): self = .int32
        case .signed: self = .int64
        case .unsigned(8): self = .uint8
        case .unsigned(16): self = .uint16
        case .unsigned(32): self = .uint32
        case .unsigned: self = .uint64
        }
    }

    /// As Keras 3 stores bfloat16: a 2-byte opaque dataset with the attribute `dtype = "bfloat16"`.
    public init?(hdf5 type: HDF5ElementType, dtypeAttribute: String?) {
        if case .opaque(2, _) = type, dtypeAttribute == "bfloat16" {
            self = .bfloat16
            return
        }
        self.init(hdf5: type)
    }
}
