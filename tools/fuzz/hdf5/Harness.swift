// libFuzzer harness for the HDF5 reading path: each input is a recipe for a Keras legacy .h5
// that is valid HDF5 (libhdf5 itself is not fuzzed: it crashes on corrupt metadata, which the CLI
// contains by probing in a child process), with attacker-chosen contents: the model_config text,
// layer_names, weight_names, dataset shapes and types, and links that point elsewhere or loop.
// The file is then read as every command reads it: the probe's walk, `check` (every tensor),
// inspection, the interpreter, and conversions to .h5 and .pare. See tools/fuzz/README.md.
//
// Recipe: byte 0 is a set of flags (below); the rest is UTF-8 text: the model_config JSON, an
// empty line, then one line per layer, `layer|weight=d,d,…|…`, a weight's dims optionally
// prefixed `h:` (float16), `d:` (float64) or `i:` (int32).
import CHDF5
import Foundation
import FuzzReplay
import HDF5
import Pare

struct Flags: OptionSet {
    let rawValue: UInt8
    static let hardLinkCycle = Flags(rawValue: 1)
    static let danglingSoftLink = Flags(rawValue: 2)
    static let externalLink = Flags(rawValue: 4)
    static let configArray = Flags(rawValue: 8)
    static let externalStorage = Flags(rawValue: 16)
    static let fixedLengthNames = Flags(rawValue: 32)
    static let unlistedDataset = Flags(rawValue: 64)
    static let softLinkToWeight = Flags(rawValue: 128)
}

struct Recipe {
    var flags: Flags
    var config: String
    var layers: [(name: String, weights: [(name: String, dtype: HDF5ElementType, shape: [Int])])]

    init?(_ bytes: [UInt8]) {
        guard let first = bytes.first else { return nil }
        flags = Flags(rawValue: first)
        let text = String(decoding: bytes.dropFirst(), as: UTF8.self)
        let parts = text.components(separatedBy: "\n\n")
        config = parts[0]
        layers = []
        for line in (parts.count > 1 ? parts[1] : "").split(separator: "\n").prefix(64) {
            let fields = line.split(separator: "|", omittingEmptySubsequences: false).map(String.init)
            var weights: [(String, HDF5ElementType, [Int])] = []
            for spec in fields.dropFirst().prefix(8) {
                let pair = spec.split(separator: "=", maxSplits: 1).map(String.init)
                guard pair.count == 2 else { continue }
                var dims = pair[1]
                var type = HDF5ElementType.float(bits: 32)
                for (prefix, t) in [
                    ("h:", HDF5ElementType.float(bits: 16)), ("d:", .float(bits: 64)), ("i:", .signed(bits: 32)),
                ]
                where dims.hasPrefix(prefix) {
                    type = t
                    dims = String(dims.dropFirst(2))
                }
                let shape = dims.split(separator: ",").prefix(6).compactMap { Int($0) }.map { min(max($0, 0), 4096) }
                // Keep each dataset small: the harness explores structure, not size.
                guard shape.reduce(1, *) <= 1 << 20 else { continue }
                weights.append((pair[0], type, shape))
            }
            layers.append((fields[0], weights))
        }
    }
}

/// PARE_FUZZ_VERBOSE=1 prints what `check` said of each replayed recipe (is a seed readable?).
let verbose = ProcessInfo.processInfo.environment["PARE_FUZZ_VERBOSE"] != nil

let scratch: String = {
    let dir = FileManager.default.fileExists(atPath: "/dev/shm") ? "/dev/shm" : NSTemporaryDirectory()
    return dir + "/pare-fuzz-hdf5-\(getpid())"
}()

/// Writes the recipe's file; nil when libhdf5 refuses a name or shape (not Pare's code under test).
func build(_ recipe: Recipe, at path: String) -> Bool {
    do {
        let file = try HDF5File.create(path)
        let root = try file.root()
        let encoding: StringEncoding = recipe.flags.contains(.fixedLengthNames) ? .fixedASCII : .variableUTF8
        if recipe.flags.contains(.configArray) {
            try root.setAttribute(
                "model_config", .strings([recipe.config, recipe.config], shape: [2], encoding: .variableUTF8))
        } else if !recipe.config.isEmpty {
            try root.setAttribute("model_config", .string(recipe.config))
        }
        try root.setAttribute("keras_version", .string("3.15.1"))
        let weightsGroup = try root.createGroup("model_weights")
        try weightsGroup.setAttribute("layer_names", .stringArray(recipe.layers.map(\.name), encoding: encoding))
        for (index, layer) in recipe.layers.enumerated() {
            let group = try weightsGroup.requireGroup(layer.name)
            try group.setAttribute("weight_names", .stringArray(layer.weights.map(\.name), encoding: encoding))
            for (w, weight) in layer.weights.enumerated() {
                let count = weight.shape.reduce(1, *)
                var bytes = [UInt8](repeating: 0, count: count * weight.dtype.byteCount)
                for i in stride(from: 0, to: bytes.count, by: 7) {
                    bytes[i] = UInt8(truncatingIfNeeded: i &+ index &+ w)
                }
                try group.createDataset(weight.name, type: weight.dtype, shape: weight.shape, bytes: bytes)
            }
            if index == 0, recipe.flags.contains(.unlistedDataset) {
                try group.createDataset(
                    "unlisted:0", type: .float(bits: 32), shape: [2], bytes: [UInt8](repeating: 0, count: 8))
            }
        }
        try file.close()
    } catch {
        return false
    }
    addLinks(recipe, at: path)
    return true
}

/// Links that leave the file or loop, made with the C API (Pare's wrapper never writes them).
func addLinks(_ recipe: Recipe, at path: String) {
    let fid = H5Fopen(path, shim_F_ACC_RDWR(), shim_P_DEFAULT())
    guard fid >= 0 else {
        shim_clear_errors()
        return
    }
    defer { H5Fclose(fid) }
    let first = recipe.layers.first.map { "/model_weights/" + $0.name } ?? "/model_weights"
    if recipe.flags.contains(.hardLinkCycle) {
        H5Lcreate_hard(fid, "/model_weights", fid, first + "/loop", shim_P_DEFAULT(), shim_P_DEFAULT())
    }
    if recipe.flags.contains(.danglingSoftLink) {
        H5Lcreate_soft("/nowhere", fid, "/dangling", shim_P_DEFAULT(), shim_P_DEFAULT())
    }
    if recipe.flags.contains(.externalLink) {
        H5Lcreate_external("/etc/hostname", "/", fid, first + "/elsewhere", shim_P_DEFAULT(), shim_P_DEFAULT())
    }
    if recipe.flags.contains(.softLinkToWeight), let weight = recipe.layers.first?.weights.first {
        H5Lcreate_soft(first + "/" + weight.name, fid, "/model_weights/alias", shim_P_DEFAULT(), shim_P_DEFAULT())
    }
    if recipe.flags.contains(.externalStorage) {
        let dcpl = H5Pcreate(shim_P_DATASET_CREATE())
        H5Pset_external(dcpl, "/nonexistent-pare-fuzz", 0, 64)
        var dims: [hsize_t] = [16]
        let space = H5Screate_simple(1, &dims, nil)
        let d = H5Dcreate2(
            fid, first + "/outside", shim_T_IEEE_F32LE(), space, shim_P_DEFAULT(), dcpl, shim_P_DEFAULT())
        if d >= 0 { H5Dclose(d) }
        H5Sclose(space)
        H5Pclose(dcpl)
    }
    shim_clear_errors()
}

func fuzzOne(_ bytes: [UInt8]) {
    guard let recipe = Recipe(bytes) else { return }
    let path = scratch + ".h5"
    defer {
        unlink(path)
        unlink(scratch + "-out.h5")
        unlink(scratch + "-out.pare")
    }
    guard build(recipe, at: path) else { return }
    try? ModelFile.probeHDF5(path)
    let checked = Result { try ModelFile.check(path) }
    if verbose { print("check: \(checked)") }
    guard let model = try? ModelFile.read(path) else { return }
    _ = try? Inspection.of(model)
    if let interpreter = try? Interpreter(model) {
        var random = RandomInputs(seed: 1)
        if let inputs = try? interpreter.inputs.map({
            try random.array(batch: 2, shape: $0.shape, name: $0.name, file: path)
        }) {
            _ = try? interpreter.run(inputs, batchSize: 2)
        }
    }
    if (try? ModelFile.write(model, to: scratch + "-out.h5")) != nil { _ = try? ModelFile.check(scratch + "-out.h5") }
    if (try? ModelFile.write(model, to: scratch + "-out.pare")) != nil {
        _ = try? ModelFile.check(scratch + "-out.pare")
    }
}

@main struct Harness {
    static func main() {
        // libFuzzer's limit is 512 MB: anything an input asks beyond this is refused by Pare's budget.
        MemoryBudget.setLimit(256 << 20)
        FuzzMain.run(fuzzOne)
    }
}
