import ArgumentParser
import Pare

struct Convert: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Rewrite a model file, every tensor bit-identical.",
        discussion: """
            Reads a Keras legacy .h5 (full model or weights only, any Keras writer) and writes the same \
            kind of file, which Keras loads. The input is never modified; the output appears only when \
            complete.
            """
    )

    @Argument(help: "The model to read.") var input: String
    @Argument(help: "Where to write the result.") var output: String
    @Option(
        name: .long, parsing: .unconditional,
        help: "Compress datasets with zlib at this level (1-9), with the shuffle filter.")
    var deflate: Int?
    @Flag(name: .long, help: "Leave optimizer state out.") var dropOptimizer = false
    @OptionGroup var reading: ReadOptions

    func validate() throws {
        if let deflate, !(1...9).contains(deflate) { throw ValidationError("--deflate takes a level from 1 to 9") }
    }

    func run() throws {
        try reading.run(reading: [input], writing: [output]) {
            let model = try reading.read(input)
            printNotes(
                try ModelFile.write(
                    model, to: output, options: .init(deflateLevel: deflate, dropOptimizer: dropOptimizer)),
                output: output)
        }
    }
}
