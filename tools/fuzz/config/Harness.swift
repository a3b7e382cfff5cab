// libFuzzer harness for the Keras config parser: JSON, architecture, shape inference, MACs,
// the Keras 3 weights layout and the channel graph. See tools/fuzz/README.md.
import Foundation
import FuzzReplay
import Pare

func fuzzOne(_ bytes: [UInt8]) {
    guard let text = String(bytes: bytes, encoding: .utf8), let json = try? JSON.parse(text) else { return }
    _ = json.serialized()
    guard let arch = try? Architecture.parse(json) else { return }
    let analysis = GraphAnalysis.run(arch)
    _ = analysis.calls.map(\.macs)
    _ = try? Keras3Weights.groupPaths(of: json)
    // A model with this architecture and no weights: inspection and channel analysis must not trap.
    var model = Model(format: .kerasLegacyH5, kind: .fullModel, sourcePath: "fuzz.json", layers: [])
    model.config = json
    _ = try? Inspection.of(model)
    _ = try? Planner(model)
}

@main struct Harness {
    static func main() { FuzzMain.run(fuzzOne) }
}
