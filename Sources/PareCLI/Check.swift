import ArgumentParser
import Foundation
import Pare

struct Check: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract:
            "Validate a file: every tensor read, weights against the architecture; for .pare also structure, "
            + "offsets, checksums and bitmasks. Writes nothing."
    )
    @Argument(help: "The file to check (.pare, .h5, .keras, .weights.h5).") var input: String
    @OptionGroup var reading: ReadOptions

    func run() throws {
        try reading.run(reading: [input]) {
            let config = try reading.architectureJSON()
            try Probe.isolate(input)
            print(try ModelFile.check(input, architecture: config))
        }
    }
}
