import PullSketchCore
import PullSketchReport
import Testing

@Suite struct AccuracyRunTests {
    func run(_ shape: ReportWorkload.Shape = .zipf, pulls: Int = 60_000, hotCapacity: Int, seed: UInt64 = 1) throws -> AccuracyResult {
        try AccuracyRun(
            workload: ReportWorkload(shape: shape, pulls: pulls, keys: 5_000, repositories: 50, seed: seed),
            nodes: 4,
            tracker: TrackerConfiguration(isEnabled: true, hotCapacity: hotCapacity, sketch: SketchParameters(width: 2_048, depth: 5))
        ).run()
    }

    @Test func aHotTableThatHoldsEveryWindowsKeysMakesEveryKeyExact() throws {
        let summary = try run(hotCapacity: 10_000).summary
        #expect(summary.keysExactPercent == 100)
        #expect(summary.boundCoverage == 1 && summary.undercounts == 0 && summary.lastPulledEarlierThanTruth == 0)
        #expect(summary.falseRecentlyPulledRate == 0)
    }

    @Test(arguments: [ReportWorkload.Shape.zipf, .flood, .mix])
    func aTinyHotTableStillNeverUndercountsAndMeetsItsBound(shape: ReportWorkload.Shape) throws {
        let summary = try run(shape, hotCapacity: 16).summary
        #expect(summary.keysExactPercent < 100, "the tail was not used")
        #expect(summary.undercounts == 0)
        #expect(summary.lastPulledEarlierThanTruth == 0)
        #expect(summary.boundCoverage >= summary.oneMinusDelta)
    }

    /// Every figure but memory, which is measured (container capacities), not computed.
    @Test func theSameSeedGivesTheSameRunAndAnotherSeedAnother() throws {
        func figures(seed: UInt64) throws -> AccuracyResult.Summary {
            var summary = try run(pulls: 20_000, hotCapacity: 16, seed: seed).summary
            summary.peakNodeMemoryBytes = 0
            return summary
        }
        let first = try figures(seed: 7)
        #expect(try figures(seed: 7) == first)
        #expect(try figures(seed: 8) != first)
    }
}
