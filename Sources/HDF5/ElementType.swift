import CHDF5

/// The numeric element types Pare reads and writes. All are stored little-endian in memory.
public enum HDF5ElementType: Equatable, Hashable, Sendable {
    case float(bits: Int)  // 16, 32, 64 (IEEE)
    case signed(bits: Int)  // 8, 16, 32, 64
    case unsigned(bits: Int)  // 8, 16, 32, 64
    /// Raw bytes with a tag, as h5py stores numpy void types (Keras 3 stores bfloat16 this way).
    case opaque(bytes: Int, tag: String)

    public var byteCount: Int {
        switch self {
        case .float(let bits), .signed(let bits), .unsigned(let bits): return bits / 8
        case .opaque(let bytes, _): return bytes
        }
    }

    /// A new HDF5 type id (caller closes) for this element type, little-endian.
    func makeTypeID() -> hid_t {
        switch self {
        case .float(16): return shim_T_IEEE_F16LE_make()
        case .float(32): return H5Tcopy(shim_T_IEEE_F32LE())
        case .float(64): return H5Tcopy(shim_T_IEEE_F64LE())
        case .signed(8): return H5Tcopy(shim_T_STD_I8LE())
        case .signed(16): return H5Tcopy(shim_T_STD_I16LE())
        case .signed(32): return H5Tcopy(shim_T_STD_I32LE())
        case .signed(64): return H5Tcopy(shim_T_STD_I64LE())
        case .unsigned(8): return H5Tcopy(shim_T_STD_U8LE())
        case .unsigned(16): return H5Tcopy(shim_T_STD_U16LE())
        case .unsigned(32): return H5Tcopy(shim_T_STD_U32LE())
        case .unsigned(64): return H5Tcopy(shim_T_STD_U64LE())
        case .opaque(let bytes, let tag):
            let t = H5Tcreate(H5T_OPAQUE, bytes)
            if t >= 0, !tag.isEmpty { H5Tset_tag(t, tag) }
            return t
        default: return -1
        }
    }

    /// Classifies an HDF5 file type; nil for strings, compounds and other non-numeric types.
    static func from(typeID t: hid_t) -> HDF5ElementType? {
        let size = Int(H5Tget_size(t))
        switch H5Tget_class(t) {
        case H5T_FLOAT:
            guard [2, 4, 8].contains(size) else { return nil }
            // Only IEEE layouts: a 16-bit float must be binary16 (not bfloat16, which HDF5 has no class for).
            var spos = 0
            var epos = 0
            var esize = 0
            var mpos = 0
            var msize = 0
            H5Tget_fields(t, &spos, &epos, &esize, &mpos, &msize)
            let expected: (Int, Int) = size == 2 ? (5, 10) : size == 4 ? (8, 23) : (11, 52)
            guard esize == expected.0, msize == expected.1 else { return nil }
            return .float(bits: size * 8)
        case H5T_INTEGER:
            guard [1, 2, 4, 8].contains(size) else { return nil }
            return H5Tget_sign(t) == H5T_SGN_NONE ? .unsigned(bits: size * 8) : .signed(bits: size * 8)
        case H5T_OPAQUE:
            guard size > 0, size <= 16 else { return nil }
            var tag = ""
            if let raw = H5Tget_tag(t) {
                tag = String(cString: raw)
                H5free_memory(raw)
            }
            return .opaque(bytes: size, tag: tag)
        case H5T_ENUM:
            // h5py stores numpy bool as an 8-bit enum {FALSE, TRUE}; treat it as uint8 storage.
            return nil
        default:
            return nil
        }
    }

    public var name: String {
        switch self {
        case .float(let bits): return "float\(bits)"
        case .signed(let bits): return "int\(bits)"
        case .unsigned(let bits): return "uint\(bits)"
        case .opaque(let bytes, let tag): return "opaque\(bytes * 8)" + (tag.isEmpty ? "" : "(\(tag))")
        }
    }
}

/// Describes an HDF5 type for error messages.
func describeType(_ t: hid_t) -> String {
    let size = H5Tget_size(t)
    switch H5Tget_class(t) {
    case H5T_FLOAT: return "float of \(size) bytes"
    case H5T_INTEGER: return "integer of \(size) bytes"
    case H5T_STRING: return "string"
    case H5T_COMPOUND: return "compound of \(size) bytes"
    case H5T_ENUM: return "enum of \(size) bytes"
    case H5T_ARRAY: return "array type"
    case H5T_OPAQUE: return "opaque of \(size) bytes"
    case H5T_VLEN: return "variable-length sequence"
    case H5T_REFERENCE: return "reference"
    case H5T_BITFIELD: return "bitfield"
    default: return "type class \(H5Tget_class(t).rawValue)"
    }
}
