import ArgumentParser
import Foundation
import Pare

struct Unpack: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Write a .pare file back as .h5, .keras or .weights.h5 (by the output's name).",
        discussion:
            "A packed plain tensor file comes back as plain HDF5 whatever the name. Any other input format is "
            + "converted the same way."
    )
    @Argument(help: "The .pare file.") var input: String
    @Argument(help: "Where to write.") var output: String
    @OptionGroup var reading: ReadOptions

    func validate() throws {
    }

    func run() throws {
        try reading.run(reading: [input], writing: [output]) {
            let tty = isatty(2) != 0
            var options = KerasLegacyH5.WriteOptions()
            if tty {
                options.progress = { done, total in
                    FileHandle.standardError.write(Data("\runpacking layer \(done)/\(total)".utf8))
                }
            }
            let notes = try ModelFile.write(try reading.read(input), to: output, options: options)
            if tty { FileHandle.standardError.write(Data("\r\u{1B}[K".utf8)) }
            printNotes(notes, output: output)
        }
    }
}
