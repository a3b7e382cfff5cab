// libFuzzer harness for the .pare reader: structure, offsets, checksums, every tensor decoded,
// the model section parsed. The reader works on files, so each input is written to one file in
// /dev/shm (memory) first. See tools/fuzz/README.md.
import Foundation
import FuzzReplay
import Pare

let scratch: String = {
    let dir = FileManager.default.fileExists(atPath: "/dev/shm") ? "/dev/shm" : NSTemporaryDirectory()
    return dir + "/pare-fuzz-\(getpid()).pare"
}()

func fuzzOne(_ bytes: [UInt8]) {
    guard FileManager.default.createFile(atPath: scratch, contents: Data(bytes)) else { return }
    _ = try? PareFile.check(scratch)
    if let model = try? ModelFile.read(scratch) { _ = try? Inspection.of(model) }
}

@main struct Harness {
    static func main() {
        FuzzMain.run(fuzzOne)
        unlink(scratch)
    }
}
