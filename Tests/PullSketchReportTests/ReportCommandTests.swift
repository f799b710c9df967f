import Foundation
import PullSketchReport
import PullSketchTestSupport
import Testing

/// `pullsketch report` runs the tracker the configuration describes, with its own hot capacity and
/// sketch: here the tail names, which decide whether keys nobody pulled get estimates.
@Suite(.cpuBound) struct ReportCommandTests {
    func summary(tailNames: Int) throws -> AccuracyResult.Summary {
        let output = FileManager.default.temporaryDirectory.appendingPathComponent("pullsketch-report-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: output) }
        try ChildProcess.run(
            builtProduct("pullsketch").path,
            [
                "report", "--pulls", "20000", "--keys", "2000", "--repositories", "20", "--hot-capacity", "0", "--width", "256",
                "--depth", "2", "--output", output.path,
            ],
            environment: ["PULLSKETCH_TAIL_NAMES": String(tailNames)]
        )
        return try JSONDecoder().decode(AccuracyResult.Summary.self, from: Data(contentsOf: output.appendingPathComponent("summary.json")))
    }

    @Test func theReportRunsTheConfiguredTailNames() throws {
        // Room for every name: only the named keys are estimated, no never-pulled key looks pulled.
        let named = try summary(tailNames: 32_768)
        #expect(named.falseRecentlyPulledRate == 0)
        // No names: the catalog's keys are found through a 256 × 2 usage filter that every unnamed
        // key marks, so never-pulled keys take estimates (within their bounds).
        let unnamed = try summary(tailNames: 0)
        #expect(unnamed.falseRecentlyPulledRate > 0)
        #expect(unnamed.undercounts == 0 && unnamed.boundCoverage >= unnamed.oneMinusDelta)
    }

    /// Shapes no deployment takes are refused with the limit they pass, never a crash on the way
    /// (each of these crashed: ⌈e/ε⌉ or ⌈ln 1/δ⌉ past `Int`, a sketch precondition, an overflow).
    @Test(arguments: [
        (["sizing", "--epsilon", "1e-300"], "that sketch is larger than a deployment takes"),
        (["sizing", "--epsilon", "0.001", "--delta", "4.9e-324"], "that sketch is larger than a deployment takes"),
        (["sizing", "--hot-capacity", "4611686018427387904"], "--hot-capacity must be within 0...16777216"),
        (["sizing", "--stripes", "4611686018427387904"], "--stripes must be within 1...1024"),
        (["report", "--depth", "40"], "--depth within 1...32"),
        (["report", "--width", "99999999999"], "--width must be within 1...67108864"),
        (["report", "--hot-capacity", "99999999999"], "--hot-capacity must be within 0...16777216"),
    ])
    func aShapeNoDeploymentTakesIsRefusedWithItsLimit(arguments: [String], message: String) {
        let error = #expect(throws: ChildProcessError.self) { try ChildProcess.run(builtProduct("pullsketch").path, arguments) }
        #expect(error?.output.hasPrefix("Error: ") == true && error?.output.contains(message) == true, "\(error?.output ?? "")")
    }
}
