/// A layer's `config` object with typed, range-checked accessors. A config is untrusted input:
/// every number a kind keeps is checked here once, so that shape and cost arithmetic stay far
/// from overflow and kernels never index outside their weights (fuzzing found a stride of 0).
public struct LayerConfig: Sendable {
    public let json: JSON
    public let className: String
    /// The non-tensor positional arguments of the layer's calls (nil where a tensor goes), for
    /// Keras 3 operations recorded as layers (`NotEqual(ids, 0)`); empty for ordinary layers.
    public var callArguments: [JSON?] = []
    /// For kinds that name their tensor arguments: what the layer's calls pass (nil before the
    /// architecture has read the calls, or for a layer never called).
    public var call: CallSignature?

    /// Largest layer parameter (kernel size, stride, filters, units, padding …) Pare accepts.
    static let maxParameter = 1 << 24
    /// Largest tensor dimension Pare accepts.
    static let maxDimension = 1 << 32

    /// Keras's dtype policy names (and the plain dtypes an InputLayer may carry).
    static let knownDTypePolicies: Set<String> = [
        "float16", "float32", "float64", "bfloat16", "mixed_float16", "mixed_bfloat16", "int8", "int16", "int32",
        "int64", "uint8", "uint16", "uint32", "uint64", "bool", "string",
    ]

    public init(_ json: JSON, className: String) throws {
        self.json = json
        self.className = className
        if let dtype = json["dtype"], !dtype.isNull, dtypePolicy == nil {
            throw LayerConfigError("dtype \(dtype.serialized()) is neither a dtype name nor a policy with one")
        }
        if let policy = dtypePolicy, !Self.knownDTypePolicies.contains(policy) {
            throw LayerConfigError("dtype policy '\(policy)' is not one Keras has")
        }
    }

    public subscript(key: String) -> JSON? { json[key] }

    /// The dtype policy's name (`float32`, `mixed_float16`, …), nil if the config names none.
    var dtypePolicy: String? { Self.policyName(json["dtype"]) }

    /// The name of a dtype entry: a name, or a policy object (`{"class_name": "DTypePolicy", "config": {"name"}}`).
    static func policyName(_ value: JSON?) -> String? { value?["config"]?["name"]?.stringValue ?? value?.stringValue }

    /// Layers whose dtype policy computes in float16 round their inputs and outputs to it, as Keras does.
    var computesInFloat16: Bool { dtypePolicy == "float16" || dtypePolicy == "mixed_float16" }

    var channelsFirst: Bool { json["data_format"]?.stringValue == "channels_first" }

    /// `count` integers in `range` (a single one is repeated); `fallback` when the key is absent or null.
    func ints(_ key: String, count: Int, range: ClosedRange<Int>, fallback: [Int]? = nil, what: String? = nil)
        throws -> [Int]
    {
        let value = json[key]
        if value == nil || value?.isNull == true, let fallback { return fallback }
        guard let list = Self.ints(value, count: count, range: range) else {
            throw LayerConfigError(what ?? "\(key) missing or out of range")
        }
        return list
    }

    /// A positive parameter (filters, units, depth_multiplier, groups).
    func positive(_ key: String, fallback: Int? = nil, what: String? = nil) throws -> Int {
        if json[key] == nil, let fallback { return fallback }
        guard let v = json[key]?.intValue, (1...Self.maxParameter).contains(v) else {
            throw LayerConfigError(what ?? "\(key) missing or not positive")
        }
        return v
    }

    /// A finite number; `fallback` when absent or null.
    func number(_ key: String, fallback: Double) throws -> Double {
        guard let value = json[key], !value.isNull else { return fallback }
        guard let v = value.doubleValue, v.isFinite else { throw LayerConfigError("\(key) is not a finite number") }
        return v
    }

    func bool(_ key: String, fallback: Bool) -> Bool { json[key]?.boolValue ?? fallback }

    func string(_ key: String, fallback: String) -> String { json[key]?.stringValue ?? fallback }

    /// `padding` for convolutions and pooling: Keras has `valid` and `same` (and `causal` for 1-D).
    func padding(allowed: Set<String> = ["valid", "same"]) throws -> String {
        let pad = string("padding", fallback: "valid")
        guard allowed.contains(pad) else { throw LayerConfigError("padding '\(pad)' is not supported") }
        return pad
    }

    /// An axis given as an int or a one-element list (BatchNormalization, Softmax), default -1.
    func axis(_ key: String = "axis") throws -> Int {
        guard let value = json[key], !value.isNull else { return -1 }
        guard let a = value.intValue ?? value[0]?.intValue, value.arrayValue.map({ $0.count == 1 }) ?? true,
            (-64...64).contains(a)
        else {
            throw LayerConfigError("\(key) must be one axis")
        }
        return a
    }

    /// The one axis a normalization works along (`axis`, default −1), never the batch axis.
    func channelAxis() throws -> Int {
        let a = try axis()
        guard a != 0 else { throw LayerConfigError("axis 0 is the batch axis") }
        return a
    }

    /// `axis` as Keras writes it (negative from the end, positive counting the batch axis) as an
    /// index into a per-example shape of `rank`; nil if out of range.
    static func axisIndex(_ axis: Int, rank: Int) -> Int? {
        let a = axis < 0 ? rank + axis : axis - 1
        return (0..<rank).contains(a) ? a : nil
    }

    /// The activation argument as the interpreter parses it (a name, or a serialized object).
    var activation: JSON? { json["activation"] }

    /// The activation's name when it is given by name.
    var activationName: String? {
        json["activation"]?.stringValue ?? json["activation"]?["config"]?.stringValue
    }

    /// `count` integers (a single one is repeated) in `range`; nil if missing or out of range.
    static func ints(_ value: JSON?, count: Int, range: ClosedRange<Int> = 0...maxParameter) -> [Int]? {
        if let v = value?.intValue { return range.contains(v) ? Array(repeating: v, count: count) : nil }
        guard let list = value?.arrayValue, list.count == count else { return nil }
        let r = list.compactMap { $0.intValue }.filter(range.contains)
        return r.count == count ? r : nil
    }
}

/// What a layer's calls pass: the parameter of each input tensor, in order, and the keyword
/// arguments that are not tensors (`use_causal_mask: true`).
public struct CallSignature: Sendable, Equatable {
    public var inputNames: [String]
    public var keywords: JSON

    public init(inputNames: [String], keywords: JSON) {
        self.inputNames = inputNames
        self.keywords = keywords
    }

    /// The position of parameter `name` among the call's inputs, nil if the call does not pass it.
    public func index(of name: String) -> Int? { inputNames.firstIndex(of: name) }

    /// A flag passed to the call (`use_causal_mask`): absent or null is false; anything but a
    /// boolean is refused (Python would take `"yes"` or `1` as true).
    public func flag(_ key: String) throws -> Bool {
        guard let value = keywords[key], !value.isNull else { return false }
        guard let b = value.boolValue else {
            throw LayerConfigError("is called with \(key)=\(value.serialized().prefix(40)), not true or false")
        }
        return b
    }
}

/// Checked arithmetic for shapes and costs built from config values.
enum ShapeMath {
    /// The product of `factors`, nil if it overflows.
    static func product(_ factors: [Int]) -> Int? {
        var p = 1
        for f in factors {
            let (r, o) = p.multipliedReportingOverflow(by: f)
            if o { return nil }
            p = r
        }
        return p
    }

    /// The sum, or nil if a term is unknown or the sum overflows.
    static func sum(_ terms: [Int?]) -> Int? {
        var total = 0
        for term in terms {
            guard let term else { return nil }
            let (s, o) = total.addingReportingOverflow(term)
            if o { return nil }
            total = s
        }
        return total
    }

    /// Keras's `conv_output_length`.
    static func convLength(_ n: Int?, kernel: Int, stride: Int, dilation: Int, padding: String) -> Int? {
        guard let n else { return nil }
        let k = (kernel - 1) * dilation + 1
        // Causal padding (1-D) keeps the length before striding, as `same` does.
        if padding == "same" || padding == "causal" { return (n + stride - 1) / stride }
        // A window larger than the input has no position (Keras: 0, not 1 from truncation).
        return n >= k ? (n - k) / stride + 1 : 0
    }

    /// The dimensions of a shape with every dimension known.
    static func known(_ shape: Shape) -> [Int]? {
        shape.contains(where: { $0 == nil }) ? nil : shape.map { $0! }
    }

    /// The element count of a shape with every dimension known, nil otherwise or on overflow.
    static func count(_ shape: Shape) -> Int? {
        shape.contains(where: { $0 == nil }) ? nil : product(shape.map { $0! })
    }
}
