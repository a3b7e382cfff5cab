import ArgumentParser
import Pare

struct Inspect: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Describe a model file.")
    @Argument(help: "The model to inspect.") var input: String
    @Flag(name: .long, help: "Print JSON for scripts.") var json = false
    func run() throws {
        try runReportingErrors {
            let model = try ModelFile.read(input)
            print(model.layers.map { "\($0.name) \($0.parameterCount)" }.joined(separator: "\n"))
            print(model.parameterCount)
        }
    }
}
