import XCTest

@testable import Pare

/// Walks the layer registry over every model fixture Keras wrote: each registered class must be
/// exercised by one, and each layer of them must be known to every part of Pare at once.
final class LayerRegistryTests: XCTestCase {
    /// Every fixture with an architecture: the trained models and the layer zoo.
    var fixtureFiles: [String] {
        let zoo = Fixtures.root.appendingPathComponent("zoo")
        let zooFiles = ((try? FileManager.default.contentsOfDirectory(atPath: zoo.path)) ?? []).filter {
            $0.hasSuffix(".h5")
        }.sorted().map { zoo.appendingPathComponent($0).path }
        let sequence = Fixtures.sequenceModels.flatMap { model in
            ["keras3.h5", "tfkeras2.h5"].map { Fixtures.path("\(model)/\($0)") }
        }
        return Fixtures.legacyH5 + zooFiles + sequence
            + Fixtures.pretrained.map { Fixtures.path("pretrained/\($0).h5") }
            + Keras1Tests.converted.map { Fixtures.path("keras1/\($0).h5") }
    }

    /// The declared weight shapes (nil: any size) match the tensors.
    func assertShapes(_ specs: [WeightSpec], _ weights: [String: Tensor], _ what: String) {
        for spec in specs {
            guard let tensor = weights[spec.role] else {
                XCTFail("\(what): \(spec.role) missing after the edit")
                continue
            }
            let fits =
                tensor.shape.count == spec.shape.count
                && zip(tensor.shape, spec.shape).allSatisfy { have, want in want == nil || have == want }
            XCTAssertTrue(fits, "\(what): \(spec.role) is \(tensor.shape), the edited config needs \(spec.shape)")
        }
    }

    func testEveryRegisteredClassIsKnownToEveryPartOfPare() throws {
        var seen: [String: Int] = [:]
        for file in fixtureFiles {
            let model = try ModelFile.read(file)
            guard model.config != nil else { continue }
            let checked = try CheckedModel(model)
            let arch = try XCTUnwrap(checked.architecture)
            let analysis = try XCTUnwrap(checked.analysis)
            XCTAssertEqual(analysis.problems.map(\.description), [], file)
            _ = try Planner(model)  // the channel graph follows every layer
            for entry in arch.allLayers() where entry.layer.nested == nil {
                let (path, node) = (entry.path, entry.layer)
                let what =
                    "\(file.split(separator: "/").suffix(2).joined(separator: "/")) '\(path)' (\(node.className))"
                let kind = try node.kind.get()
                seen[node.className, default: 0] += 1
                guard !node.isInput else { continue }
                // Shape inference and MACs.
                let call = try XCTUnwrap(analysis.calls(of: path).first, what)
                let output = try XCTUnwrap(call.output, what)
                let input = try XCTUnwrap(call.inputs.first, what)
                if ShapeMath.known(input) != nil, ShapeMath.known(output) != nil {
                    let macs = try XCTUnwrap(call.macs, "\(what): MACs")
                    if kind.macsCounted {
                        XCTAssertGreaterThan(macs, 0, what)
                    } else {
                        XCTAssertEqual(macs, 0, what)
                    }
                }
                // The interpreter builds its op (it runs every fixture against Keras in InterpreterTests).
                // (A channels-first layer runs as its channels-last twin.)
                XCTAssertTrue(
                    kind.interpreterLimitation == nil || LayerOp.channelsLastTwin(kind, node: node) != nil, what)
                XCTAssertNoThrow(
                    try LayerOp(
                        path: path, node: node, weights: checked.weightsByRole(path), outputShape: output,
                        kerasMajor: 3, residentWeights: true), what)
                // The rewriter: removing channels leaves weights the edited config accepts.
                let flow = kind.channelFlow(input: input, output: output)
                let weights = Dictionary(
                    checked.specifiedWeights(path).map { ($0.spec.role, $0.weight.tensor) },
                    uniquingKeysWith: { a, _ in a })
                // A layer that blocks pruning says why; it is not edited.
                for reason in [flow.blocksInputs, flow.blocksOutputs].compactMap({ $0 }) {
                    XCTAssertFalse(reason.isEmpty, what)
                }
                // A producer's channels, repeated on its output as `outputCopies` says (Bidirectional).
                let copies = flow.outputCopies.first ?? 1
                if flow.kind == .produces, flow.blocksOutputs == nil,
                    let channels = output.last.flatMap({ $0 }).map({ $0 / copies }), channels > 1
                {
                    let keep = Array(0..<(channels / 2))
                    var edit = LayerEdit(weights: weights, config: node.config)
                    try kind.keepingOutputChannels(keep, &edit)
                    let edited = try reparsed(node, edit.config)
                    XCTAssertEqual(
                        try edited.outputShape(call.inputs).last, keep.count * copies, "\(what): output channels")
                    assertShapes(edited.weights(input: input), edit.weights, "\(what) without output channels")
                    XCTAssertNotNil(kind.outputKernel(input: input), "\(what): producers name their output kernel")
                }
                if flow.indexedByInputChannel, flow.blocksInputs == nil, let channels = input.last.flatMap({ $0 }),
                    channels > 1
                {
                    let keep = Array(0..<(channels / 2))
                    var edit = LayerEdit(weights: weights, config: node.config)
                    try kind.keepingInputChannels(keep, &edit)
                    // The first input narrows, and with it the inputs lined up with it (attention's value and key).
                    var narrower = call.inputs
                    for i in [0] + flow.alignedInputs where i < narrower.count {
                        narrower[i][narrower[i].count - 1] = keep.count
                    }
                    let edited = try reparsed(node, edit.config)
                    XCTAssertNoThrow(try edited.outputShape(narrower), what)
                    assertShapes(edited.weights(inputs: narrower), edit.weights, "\(what) without input channels")
                }
                if flow.kind == .mixes {
                    XCTAssertFalse(flow.indexedByInputChannel, "\(what): a layer that mixes channels cannot be edited")
                }
            }
        }
        for kind in LayerRegistry.kinds {
            for name in kind.classNames {
                XCTAssertGreaterThan(seen[name] ?? 0, 0, "\(name) is registered but no Keras fixture exercises it")
            }
        }
    }

    func testClassNamesAreRegisteredOnce() {
        var names: [String] = []
        for kind in LayerRegistry.kinds { names += kind.classNames }
        XCTAssertEqual(names.count, Set(names).count)
        XCTAssertTrue(Set(names).isDisjoint(with: LayerRegistry.modelClassNames))
    }

    func testEveryUnknownClassIsReportedAtOnce() throws {
        // Two custom classes, the second downstream of the first: both are named, by inspect too.
        let config = try JSON.parse(
            """
            {"class_name": "Functional", "config": {"name": "m", "layers": [
              {"class_name": "InputLayer", "name": "x", "inbound_nodes": [],
               "config": {"name": "x", "batch_input_shape": [null, 4]}},
              {"class_name": "MyScale", "name": "s", "inbound_nodes": [[["x", 0, 0, {}]]], "config": {"name": "s"}},
              {"class_name": "MyShift", "name": "t", "inbound_nodes": [[["s", 0, 0, {}]]], "config": {"name": "t"}}],
             "input_layers": [["x", 0, 0]], "output_layers": [["t", 0, 0]]}}
            """)
        var model = Model(format: .kerasLegacyH5, kind: .fullModel, sourcePath: "custom.h5", layers: [])
        model.config = config
        let report = try Inspection.of(model)
        XCTAssertEqual(report.unsupportedLayers.count, 2, "\(report.unsupportedLayers)")
        XCTAssertEqual(report.unknownClasses, ["MyScale", "MyShift"])
        XCTAssertThrowsError(try Interpreter(model)) { error in
            XCTAssertTrue("\(error)".contains("MyScale"), "\(error)")
        }
    }

    /// The kind of `node` parsed again from an edited config, with the arguments its calls pass.
    func reparsed(_ node: LayerNode, _ config: JSON) throws -> any LayerKind {
        let call = node.callInputNames.first.map {
            CallSignature(inputNames: $0, keywords: node.callKeywords.first ?? .object([]))
        }
        let hasNames = !(LayerRegistry.kind(named: node.className)?.tensorParameters.isEmpty ?? true)
        return try LayerRegistry.parse(className: node.className, config: config, call: hasNames ? call : nil).get()
    }
}
