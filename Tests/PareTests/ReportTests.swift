import Foundation
import XCTest

@testable import Pare

#if canImport(FoundationXML)
    import FoundationXML
#endif

/// Sensitivity sweeps and before/after reports, against independent computations.
final class ReportTests: XCTestCase {
    func labels(_ name: String) throws -> Tensor { try NPY.read(Fixtures.path("data/\(name).npy")) }

    /// Accuracy of Keras's own saved predictions (argmax, or > 0.5 for one unit) against the labels.
    func kerasAccuracy(_ predictions: String, _ labelFile: String) throws -> Double {
        let p = try NPY.read(Fixtures.path(predictions)).floats()
        let y = try labels(labelFile).floats()
        let classes = p.count / y.count
        var correct = 0
        for i in y.indices {
            let predicted =
                classes == 1 ? (p[i] > 0.5 ? 1 : 0) : (0..<classes).max { p[i * classes + $0] < p[i * classes + $1] }!
            if predicted == Int(y[i]) { correct += 1 }
        }
        return Double(correct) / Double(y.count)
    }

    func testSweepOfTheCNNMatchesHandZeroedModelsAndHandCountedParameters() throws {
        let model = try ModelFile.read(Fixtures.path("mnist_cnn/keras3.h5"))
        let x = try NPY.read(Fixtures.path("data/mnist_x.npy")).floatArray()
        var options = SensitivitySweep.Options()
        options.steps = .list([0, 5, 30, 63])
        let curves = try SensitivitySweep.run(
            model, layers: ["conv2d_1"], inputs: [x], labels: try labels("mnist_y"),
            labelsFile: "mnist_y", options: options)
        XCTAssertEqual(curves.count, 1)
        let points = curves[0].points
        XCTAssertEqual(points.map(\.removed), [0, 5, 30, 63])
        // K = 0 is the model itself: Keras's own accuracy on these digits.
        XCTAssertEqual(
            try XCTUnwrap(points[0].accuracy), try kerasAccuracy("mnist_cnn/keras3_pred.npy", "mnist_y"), accuracy: 1e-9
        )
        // Independently: rank conv2d_1's filters by L1 norm here, zero the K smallest by hand, run.
        let layer = try XCTUnwrap(model.layer(named: "conv2d_1"))
        let kernel = try layer.weights[0].tensor.floats()
        let out = 64
        let norms = (0..<out).map { c in
            stride(from: c, to: kernel.count, by: out).reduce(0.0) { $0 + Double(abs(kernel[$1])) }
        }
        let baseline = try Interpreter(model).run([x])[0]
        for p in points.dropFirst() {
            let k = p.removed
            let gone = Set((0..<out).sorted { (norms[$0], $0) < (norms[$1], $1) }.prefix(k))
            var w = kernel
            var b = try layer.weights[1].tensor.floats()
            for i in w.indices where gone.contains(i % out) { w[i] = 0 }
            for c in gone { b[c] = 0 }
            var zeroed = model
            zeroed.setWeight(
                path: "conv2d_1", name: layer.weights[0].name, Tensor(float32: w, shape: layer.weights[0].tensor.shape))
            zeroed.setWeight(path: "conv2d_1", name: layer.weights[1].name, Tensor(float32: b, shape: [out]))
            let y = try Interpreter(zeroed).run([x])[0]
            let accuracy = try Evaluation.of(predictions: y, labels: try labels("mnist_y"), file: "").accuracy
            XCTAssertEqual(try XCTUnwrap(p.accuracy), accuracy, accuracy: 1e-9, "K = \(k)")
            let agreement = Equivalence.compare(name: "", reference: baseline, candidate: y, atol: 0, rtol: 0)
            XCTAssertEqual(try XCTUnwrap(p.top1Agreement), try XCTUnwrap(agreement.top1Agreement), accuracy: 1e-9)
            XCTAssertEqual(p.maxAbsError, agreement.maxAbsError, accuracy: 1e-5)
            // conv2d_1 loses K filters (3·3·32 + 1 each); Dense loses the 6·6 Flatten rows of each
            // (256 weights per row).
            XCTAssertEqual(p.parameters, 643_594 - k * (3 * 3 * 32 + 1) - k * 36 * 256, "K = \(k)")
            XCTAssertEqual(p.kept, 64 - k)
            XCTAssertLessThan(p.prunedVersusMasked, 1e-5)
        }
    }

    func testSiameseCurveIsFlatThenCollapsesAndTheKneeIsMarked() throws {
        let model = try ModelFile.read(Fixtures.path("siamese/keras3.h5"))
        let inputs = [
            try NPY.read(Fixtures.path("data/pairs_left.npy")).floatArray(),
            try NPY.read(Fixtures.path("data/pairs_right.npy")).floatArray(),
        ]
        var options = SensitivitySweep.Options()
        options.criterion = .meanActivation
        options.steps = .count(7)
        let curves = try SensitivitySweep.run(
            model, layers: ["enc_conv3", "enc_conv2"], inputs: inputs, labels: try labels("pairs_y"),
            labelsFile: "pairs_y", options: options)
        XCTAssertEqual(curves.map(\.layer), ["enc_conv3", "enc_conv2"])
        let c3 = curves[0]
        XCTAssertEqual(c3.points.map(\.removed), [0, 21, 42, 64, 85, 106, 127])
        XCTAssertEqual(
            try XCTUnwrap(c3.points[0].accuracy), try kerasAccuracy("siamese/keras3_pred.npy", "pairs_y"),
            accuracy: 1e-9)
        XCTAssertEqual(
            c3.points[1].accuracy, c3.points[0].accuracy, "removing the 21 least active channels changes nothing")
        XCTAssertLessThan(
            try XCTUnwrap(c3.points.last?.accuracy), try XCTUnwrap(c3.points[0].accuracy) - 0.2,
            "one channel left collapses")
        let knee = try XCTUnwrap(c3.knee)
        XCTAssertGreaterThan(knee, 21)
        XCTAssertLessThan(knee, 127)

        let svg = SensitivityOutput.svg(curves, title: "siamese <enc> & more")
        let parser = XMLParser(data: Data(svg.utf8))
        final class Counter: NSObject, XMLParserDelegate {
            var curves: [String] = [], knees = 0, elements = 0
            func parser(
                _ parser: XMLParser, didStartElement name: String, namespaceURI: String?, qualifiedName: String?,
                attributes: [String: String] = [:]
            ) {
                elements += 1
                if name == "path", attributes["class"] == "curve" { curves.append(attributes["data-layer"] ?? "") }
                if name == "circle", attributes["class"] == "knee" { knees += 1 }
            }
        }
        let counter = Counter()
        parser.delegate = counter
        XCTAssertTrue(parser.parse(), "SVG is well-formed XML: \(parser.parserError.map { "\($0)" } ?? "")")
        XCTAssertEqual(counter.curves, ["enc_conv3", "enc_conv2"], "one path per layer")
        XCTAssertEqual(counter.knees, curves.filter { $0.knee != nil }.count)
        let csv = SensitivityOutput.csv(curves).split(separator: "\n")
        XCTAssertEqual(csv.count, 1 + curves.reduce(0) { $0 + $1.points.count })
        XCTAssertTrue(csv[1].hasPrefix("enc_conv3,0,128,96833,"), String(csv[1]))
        let chart = SensitivityOutput.terminalChart(curves)
        XCTAssertTrue(chart.contains("* enc_conv3") && chart.contains("+ enc_conv2"), chart)
    }

    func testSweepReadsEveryTensorOnceWhateverTheNumberOfSteps() throws {
        final class Reads: @unchecked Sendable {
            let lock = NSLock()
            var count = 0
            func add() {
                lock.lock()
                count += 1
                lock.unlock()
            }
        }
        let reads = Reads()
        var model = try ModelFile.read(Fixtures.path("residual/keras3.h5"))
        var tensors = 0
        for l in model.layers.indices {
            for w in model.layers[l].weights.indices {
                let t = model.layers[l].weights[w].tensor
                let bytes = try t.bytes()
                model.layers[l].weights[w].tensor = Tensor(dtype: t.dtype, shape: t.shape) {
                    reads.add()
                    return bytes
                }
                tensors += 1
            }
        }
        let x = try NPY.read(Fixtures.path("data/mnist_x.npy")).floatArray()
        var options = SensitivitySweep.Options()
        options.steps = .all
        let curves = try SensitivitySweep.run(
            model, layers: ["head_conv"],
            inputs: [FloatArray(shape: [8, 28, 28, 1], data: Array(x.data.prefix(8 * 784)))],
            labels: nil, labelsFile: "", options: options)
        XCTAssertEqual(curves[0].points.count, 32)
        XCTAssertEqual(curves[0].metric, "top1Agreement")
        XCTAssertEqual(reads.count, tensors, "each stored tensor is read once for 32 prunes")
    }

    func testKneeOfSyntheticCurves() {
        typealias Point = SensitivitySweep.CurveValue
        let flatThenDrop = (0...20).map { k in Point(k: k, value: k < 12 ? 1.0 : max(0, 1.0 - Double(k - 12) * 0.2)) }
        XCTAssertEqual(SensitivitySweep.knee(flatThenDrop), 12, "the last K before the fall")
        XCTAssertNil(SensitivitySweep.knee((0...10).map { Point(k: $0, value: 0.9) }), "a flat curve has no knee")
        XCTAssertNil(
            SensitivitySweep.knee([Point(k: 0, value: 1), Point(k: 5, value: 0)]), "two points make no knee")
    }

    func testStepsParse() {
        XCTAssertEqual(SensitivitySweep.Steps.parse("all"), .all)
        XCTAssertEqual(SensitivitySweep.Steps.parse("5"), .count(5))
        XCTAssertEqual(SensitivitySweep.Steps.parse("0,4,2"), .list([0, 4, 2]))
        XCTAssertNil(SensitivitySweep.Steps.parse("a,b"))
        XCTAssertNil(SensitivitySweep.Steps.parse("-1,2"))
        XCTAssertEqual(SensitivitySweep.Steps.count(5).values(maxRemovable: 8), [0, 2, 4, 6, 8])
        XCTAssertEqual(SensitivitySweep.Steps.automatic.values(maxRemovable: 200).count, 65)
    }

    func testReportOfTheReportCNNHasHandDerivedCounts() throws {
        let before = try ModelFile.read(Fixtures.path("mnist_cnn/keras3.h5"))
        var selection = PruneSelection()
        selection.keep = ["conv2d": 22, "conv2d_1": 38]
        let job = try PruneJob.plan(before, selection: selection, criterion: .l1, calibration: nil)
        let pruned = try Rewriter(planner: job.planner, plan: job.plan).prune(constants: nil).model
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let path = dir.appendingPathComponent("p.h5").path
        try ModelFile.write(pruned, to: path)
        let after = try ModelFile.read(path)
        let x = try NPY.read(Fixtures.path("data/mnist_x.npy")).floatArray()
        let report = try ComparisonReport.make(
            before: before, after: after, inputs: [x], labels: try labels("mnist_y"), labelsFile: "")
        let rows = Dictionary(uniqueKeysWithValues: report.rows.map { ($0.layer, $0) })
        // Parameters: kh·kw·in·out + out; FLOPs = 2 · output pixels · kh·kw·in·out (Dense: 2 · in · out).
        let expected: [(String, Int, Int, Int, Int)] = [
            ("conv2d", 5 * 5 * 1 * 32 + 32, 5 * 5 * 1 * 22 + 22, 2 * 28 * 28 * 25 * 32, 2 * 28 * 28 * 25 * 22),
            (
                "conv2d_1", 3 * 3 * 32 * 64 + 64, 3 * 3 * 22 * 38 + 38, 2 * 12 * 12 * 9 * 32 * 64,
                2 * 12 * 12 * 9 * 22 * 38
            ),
            ("dense", 2304 * 256 + 256, 1368 * 256 + 256, 2 * 2304 * 256, 2 * 1368 * 256),
            ("dense_1", 256 * 128 + 128, 256 * 128 + 128, 2 * 256 * 128, 2 * 256 * 128),
            ("dense_2", 128 * 10 + 10, 128 * 10 + 10, 2 * 128 * 10, 2 * 128 * 10),
        ]
        for (layer, pb, pa, fb, fa) in expected {
            let r = try XCTUnwrap(rows[layer], layer)
            XCTAssertEqual([r.parametersBefore, r.parametersAfter], [pb, pa], layer)
            XCTAssertEqual([r.flopsBefore, r.flopsAfter], [fb, fa], layer)
        }
        XCTAssertEqual(rows["flatten"]?.channelsBefore, 2304)
        XCTAssertEqual(rows["flatten"]?.channelsAfter, 1368)
        XCTAssertEqual(report.before.parameters, 643_594)
        XCTAssertEqual(report.after.parameters, 392_784)
        XCTAssertEqual(report.after.flops, 2 * 1_898_912)
        XCTAssertEqual(
            try XCTUnwrap(report.before.accuracy), try kerasAccuracy("mnist_cnn/keras3_pred.npy", "mnist_y"),
            accuracy: 1e-9)
        XCTAssertEqual(
            report.before.fileBytes, try FileManager.default.attributesOfItem(atPath: before.sourcePath)[.size] as? Int)
        // Non-zero parameters: an independent scan of every stored weight.
        let nonZero = try after.layers.flatMap(\.weights).reduce(0) {
            $0 + (try $1.tensor.floats()).filter { $0 != 0 }.count
        }
        XCTAssertEqual(report.after.nonZero, nonZero)
        XCTAssertTrue(report.text().contains("392,784"))
        let markdown = report.markdown()
        XCTAssertTrue(markdown.contains("| conv2d_1 | Conv2D | 64 → 38 | 18,496 | 7,562 | -59.1% |"), markdown)
    }

    func testReportCountsZerosOfASparsifiedModel() throws {
        let before = try ModelFile.read(Fixtures.path("residual/keras3.h5"))
        let sparsified = try MagnitudeSparsifier.sparsify(before, sparsity: 0.5, global: false, layers: nil)
        let (sparse, rows) = (sparsified.model, sparsified.rows)
        let report = try ComparisonReport.make(before: before, after: sparse, inputs: nil, labels: nil, labelsFile: "")
        XCTAssertEqual(report.before.parameters, report.after.parameters)
        let zerosAdded =
            rows.reduce(0) { $0 + $1.zeros }
            - (try before.layers.flatMap(\.weights).filter { MagnitudeSparsifier.kernelRoles.contains($0.role) }
                .reduce(0) { $0 + (try $1.tensor.floats()).filter { $0 == 0 }.count })
        XCTAssertEqual(report.before.nonZero - report.after.nonZero, zerosAdded)
        XCTAssertEqual(report.rows.first { $0.layer == "head_conv" }?.nonZeroAfter, 3 * 3 * 40 * 32 / 2 + 32)
    }
}
