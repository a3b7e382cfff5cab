import ArgumentParser
import Foundation
import Pare

struct Inspect: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Describe a model file: writer, layer graph, weights, parameters, MACs, sparsity, dead channels.",
        discussion: """
            Parameters count every stored weight of the model, trainable or not (BatchNormalization's \
            moving statistics included), as Keras's count_params does; optimizer state is listed apart. \
            Exit status 1 if the file cannot be read, or holds layers Pare does not know (they are \
            still listed).
            """
    )
    @Argument(help: "The model to inspect.") var input: String
    @Flag(name: .long, help: "Print the report as JSON.") var json = false
    @OptionGroup var reading: ReadOptions

    func run() throws {
        try reading.run(reading: [input]) {
            let model = try reading.read(input)
            let report = try Inspection.of(model)
            print(json ? try report.json() : report.text(), terminator: json ? "\n" : "")
            if !report.unsupportedLayers.isEmpty {
                throw PareError(file: input, "unsupported layers: " + report.unsupportedLayers.joined(separator: "; "))
            }
        }
    }
}
