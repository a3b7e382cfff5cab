// libFuzzer harness for the NPY reader (see tools/fuzz/README.md). Built with -DFUZZING and
// -sanitize=fuzzer it is a fuzzer; built plainly it replays the files given as arguments.
import Foundation
import FuzzReplay
import Pare

func fuzzOne(_ bytes: [UInt8]) {
    guard let tensor = try? NPY.decode(bytes, name: "fuzz.npy") else { return }
    // What a command does next with an input: widen it to float32 and encode it again.
    if let array = try? tensor.floatArray() { precondition(array.count == tensor.count, "floatArray lost elements") }
    if let again = try? NPY.encode(tensor) {
        precondition((try? NPY.decode(again, name: "again"))?.shape == tensor.shape, "NPY round trip changed the shape")
    }
}

@main struct Harness {
    static func main() { FuzzMain.run(fuzzOne) }
}
