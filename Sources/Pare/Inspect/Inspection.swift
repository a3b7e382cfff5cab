import Foundation

/// Everything `pare inspect` reports about a model file.
public struct Inspection: Codable, Sendable {
    public struct LayerRow: Codable, Sendable {
        public var path: String
        public var className: String
        /// Output shape per call site, batch axis included as None.
        public var outputShapes: [String]
        /// Inbound tensors per call site (`layer[call][tensor]`); several entries for a shared layer.
        public var inbound: [[String]]
        public var parameters: Int
        public var macs: Int?
    }

    public struct WeightRow: Codable, Sendable {
        public var layer: String
        public var name: String
        public var shape: [Int]
        public var dtype: String
        public var parameters: Int
        public var zeros: Int
        public var sparsity: Double
    }

    public struct DeadChannels: Codable, Sendable {
        public var layer: String
        public var channels: Int
        public var dead: [Int]
    }

    public var file: String
    public var format: String
    public var kind: String
    public var writer: String
    public var kerasVersion: String?
    public var backend: String?
    public var modelName: String?
    public var modelClass: String?
    public var layers: [LayerRow]
    public var weights: [WeightRow]
    public var deadChannels: [DeadChannels]
    public var totalParameters: Int
    public var totalMACs: Int?
    public var macsNote: String
    public var optimizerTensors: Int
    public var optimizerParameters: Int
    public var unsupportedLayers: [String]
    /// Every class in the architecture that Pare does not know (custom layers), once each.
    public var unknownClasses: [String] = []

    public static var macsDefinition: String { LayerRegistry.macsDefinition }
}

extension Inspection {
    /// With `tensorStatistics: false` no tensor is read: zeros, sparsity and dead channels are
    /// left out (parameters, shapes and MACs come from the architecture and the stored shapes).
    public static func of(_ model: Model, tensorStatistics: Bool = true) throws -> Inspection {
        let checked = try CheckedModel(model)
        var weightRows: [WeightRow] = []
        var deadRows: [DeadChannels] = []
        // One layer's bytes at a time: each tensor is read once, for its zeros and its dead channels.
        for node in model.kind == .tensors && tensorStatistics ? model.rootExtras : [] {
            for dataset in node.datasets() {
                let (path, tensor) = (dataset.path, dataset.tensor)
                let zeros = TensorStats.zeroCount(tensor, bytes: try tensor.bytes())
                let parts = path.split(separator: "/").map(String.init)
                weightRows.append(
                    WeightRow(
                        layer: parts.dropLast().joined(separator: "/"), name: parts.last ?? path, shape: tensor.shape,
                        dtype: tensor.dtype.rawValue, parameters: tensor.count, zeros: zeros,
                        sparsity: tensor.count == 0 ? 0 : Double(zeros) / Double(tensor.count)))
            }
        }
        for layer in model.layers where tensorStatistics && !layer.weights.isEmpty {
            var bytes: [String: [UInt8]] = [:]
            for weight in layer.weights {
                let b = try weight.tensor.bytes()
                bytes[weight.name] = b
                let zeros = TensorStats.zeroCount(weight.tensor, bytes: b)
                weightRows.append(
                    WeightRow(
                        layer: layer.name, name: weight.name, shape: weight.tensor.shape,
                        dtype: weight.tensor.dtype.rawValue, parameters: weight.tensor.count, zeros: zeros,
                        sparsity: weight.tensor.count == 0 ? 0 : Double(zeros) / Double(weight.tensor.count)))
            }
            for unit in checked.weightUnits where unit.path == layer.name || unit.path.hasPrefix(layer.name + "/") {
                if let dead = deadChannels(unit, checked: checked, bytes: { bytes[$0.name] ?? [] }) {
                    deadRows.append(dead)
                }
            }
        }
        var rows: [LayerRow] = []
        if let arch = checked.architecture, let analysis = checked.analysis {
            for entry in arch.allLayers() {
                let (path, node) = (entry.path, entry.layer)
                let calls = analysis.calls(of: path)
                let shapes =
                    node.isInput
                    ? [describe(checked.inputShape(path) ?? [])]
                    : calls.map { call in
                        // A call with several outputs (states, both directions) lists them all.
                        call.outputs.count > 1
                            ? "[" + call.outputs.map { $0.map(describe) ?? "?" }.joined(separator: ", ") + "]"
                            : call.output.map(describe) ?? "?"
                    }
                let inbound = node.calls.map { $0.map(\.description) }
                let macs: Int? =
                    node.nested != nil
                    ? ShapeMath.sum(analysis.calls.filter { $0.path.hasPrefix(path + "/") }.map(\.macs))
                    : ShapeMath.sum(calls.map(\.macs))
                rows.append(
                    LayerRow(
                        path: path, className: node.className, outputShapes: shapes, inbound: inbound,
                        parameters: checked.parameters(of: path), macs: macs))
            }
        } else {
            rows = model.layers.map {
                LayerRow(
                    path: $0.name, className: "?", outputShapes: [], inbound: [], parameters: $0.parameterCount,
                    macs: nil)
            }
        }
        let topMacs = rows.filter { !$0.path.contains("/") }.map(\.macs)
        let optimizerTensors = model.optimizer?.datasets() ?? []
        return Inspection(
            file: model.sourcePath, format: model.format.rawValue, kind: model.kind.rawValue,
            writer: writerDescription(model), kerasVersion: model.kerasVersion, backend: model.backend,
            modelName: checked.architecture?.name, modelClass: checked.architecture?.className,
            layers: rows, weights: weightRows, deadChannels: deadRows, totalParameters: model.parameterCount,
            totalMACs: checked.architecture == nil ? nil : ShapeMath.sum(topMacs),
            macsNote: macsDefinition, optimizerTensors: optimizerTensors.count,
            optimizerParameters: optimizerTensors.reduce(0) { $0 + $1.tensor.count },
            unsupportedLayers: checked.analysis?.problems.map(\.description) ?? [],
            unknownClasses: Array(Set(checked.analysis?.problems.filter(\.unknownClass).map(\.className) ?? []))
                .sorted())
    }

    static func writerDescription(_ model: Model) -> String {
        let version = model.kerasVersion ?? "unknown version"
        let family: String
        switch model.layout {
        case .tensors:
            return model.format == .keras3WeightsH5
                ? "a Keras 3 weights file read as plain tensors (it holds no architecture; with one it reads as "
                    + "a model)"
                : "plain HDF5 datasets (not a Keras model)"
        case .keras3: return "Keras 3 saving_lib layout (layers/…/vars), keras_version \(version)"
        case .kerasLegacy: break
        }
        if let conversion = model.source.keras1Conversion { return conversion }
        if let v = model.kerasVersion, v.hasPrefix("3.") {
            family = "Keras 3 (legacy .h5)"
        } else if let v = model.kerasVersion, v.hasPrefix("2.") {
            family =
                model.source.nameListEncoding.variableLength
                ? "Keras 2 / tf.keras 2, h5py 3" : "Keras 2 / tf.keras 2, h5py 2 layout (fixed-length strings)"
        } else {
            family = "Keras"
        }
        return "\(family), keras_version \(version), backend \(model.backend ?? "unknown")"
    }

    /// Output channels whose kernel slice and bias are all exactly zero. The layer's kind says
    /// which weight and axes hold its output channels; without an architecture, a `kernel`'s last axis.
    static func deadChannels(_ unit: CheckedModel.WeightUnit, checked: CheckedModel, bytes: (Weight) -> [UInt8])
        -> DeadChannels?
    {
        let byRole = Dictionary(unit.weights.map { ($0.role, $0) }, uniquingKeysWith: { a, _ in a })
        let kernel: Weight
        let axes: Range<Int>
        if let input = checked.shapes(unit.path)?.input, let spec = checked.kind(unit.path)?.outputKernel(input: input),
            let specAxes = spec.outputAxes, let weight = checked.weightsByRole(unit.path)[spec.role]
        {
            (kernel, axes) = (weight, specAxes)
        } else if unit.className == nil, let k = byRole["kernel"], k.tensor.shape.count >= 2 {
            (kernel, axes) = (k, (k.tensor.shape.count - 1)..<k.tensor.shape.count)
        } else {
            return nil
        }
        let kernelBytes = bytes(kernel)
        guard axes.upperBound <= kernel.tensor.shape.count else { return nil }
        var zero = TensorStats.zeroChannels(kernel.tensor, bytes: kernelBytes, axes: axes)
        if let bias = byRole["bias"], bias.tensor.count == zero.count {
            let b = TensorStats.zeroChannels(bias.tensor, bytes: bytes(bias), axis: 0)
            zero = zip(zero, b).map { $0 && $1 }
        }
        return DeadChannels(layer: unit.path, channels: zero.count, dead: zero.indices.filter { zero[$0] })
    }
}
