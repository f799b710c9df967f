import PullSketchCore
import PullSketchReport
import PullSketchRedis
import PullSketchTestSupport
import Testing

@Suite(.cpuBound) struct AccuracyRunTests {
    func run(
        _ shape: SyntheticWorkload.Shape = .zipf, pulls: Int = 60_000, hotCapacity: Int, tailRepositoriesPerStripe: Int = 1_024,
        tailNames: Int = 32_768, seed: UInt64 = 1
    ) throws -> AccuracyResult {
        try AccuracyRun(
            workload: .synthetic(SyntheticWorkload(shape: shape, pulls: pulls, keys: 5_000, repositories: 50, seed: seed)),
            nodes: 4,
            tracker: TrackerConfiguration(
                isEnabled: true, hotCapacity: hotCapacity, tailRepositoriesPerStripe: tailRepositoriesPerStripe, tailNameCapacity: tailNames,
                sketch: SketchParameters(width: 2_048, depth: 5)
            )
        ).run()
    }

    @Test func aHotTableThatHoldsEveryWindowsKeysMakesEveryKeyExact() throws {
        let summary = try run(hotCapacity: 10_000).summary
        #expect(summary.keysExactPercent == 100)
        #expect(summary.boundCoverage == 1 && summary.undercounts == 0 && summary.lastPulledEarlierThanTruth == 0)
        #expect(summary.falseRecentlyPulledRate == 0)
    }

    @Test(arguments: [SyntheticWorkload.Shape.zipf, .flood, .mix])
    func aTinyHotTableStillNeverUndercountsAndMeetsItsBound(shape: SyntheticWorkload.Shape) throws {
        let summary = try run(shape, hotCapacity: 16).summary
        #expect(summary.keysExactPercent < 100, "the tail was not used")
        #expect(summary.undercounts == 0)
        #expect(summary.lastPulledEarlierThanTruth == 0)
        #expect(summary.boundCoverage >= summary.oneMinusDelta)
    }

    /// Tail tables too small for the repositories and names of a window: most batches overflow
    /// the repositories (some windows keep a repository, others lose it) and leave keys unnamed.
    @Test(arguments: [SyntheticWorkload.Shape.zipf, .mix])
    func tailTablesThatOverflowStillNeverUndercountOrDateEarly(shape: SyntheticWorkload.Shape) throws {
        let summary = try run(shape, hotCapacity: 16, tailRepositoriesPerStripe: 2, tailNames: 64).summary
        #expect(summary.keysExactPercent < 100, "the tail was not used")
        #expect(summary.undercounts == 0)
        #expect(summary.lastPulledEarlierThanTruth == 0 && summary.lastUsedEarlierThanTruth == 0)
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

@Suite(.cpuBound, .postgresServer) struct LiveAccuracyRunTests {
    /// The in-process run keeps Redis's and PostgreSQL's arithmetic in memory; a live run through
    /// both must give the same accuracy figures (only memory and traffic are measured differently).
    @Test func aLiveRunThroughRedisAndPostgresGivesTheInProcessFigures() throws {
        let redis = try RedisServer()
        let run = AccuracyRun(
            workload: .synthetic(SyntheticWorkload(shape: .mix, pulls: 30_000, keys: 3_000, repositories: 30, seed: 3)),
            nodes: 3,
            tracker: TrackerConfiguration(isEnabled: true, hotCapacity: 32, sketch: SketchParameters(width: 1_024, depth: 4))
        )
        let inProcess = try run.run().summary
        let live = try run.run(on: .live(redis: RedisEndpoint(port: redis.port), database: PostgresServer.current!.makeDatabase())).summary
        #expect(live.redisMergeCommands > 0 && live.postgresRowsWritten > 0)
        #expect(inProcess.keysExactPercent < 100, "the tail was not used")
        #expect(Self.figures(live) == Self.figures(inProcess))
    }

    /// The same with name tables too small for the tail, through the reconciler's own writer: keys
    /// named and unnamed, each capped by its own figure of a sketch too small to tell them apart;
    /// and with tail repository tables too small as well, repositories kept by some windows and
    /// lost by others.
    @Test(arguments: [1_024, 2])
    func aLiveRunWithOverflowingTailTablesGivesTheInProcessFigures(tailRepositoriesPerStripe: Int) throws {
        let redis = try RedisServer()
        let run = AccuracyRun(
            workload: .synthetic(SyntheticWorkload(shape: .mix, pulls: 20_000, keys: 2_000, repositories: 30, seed: 4)),
            nodes: 3,
            tracker: TrackerConfiguration(
                isEnabled: true, hotCapacity: 16, tailRepositoriesPerStripe: tailRepositoriesPerStripe, tailNameCapacity: 64,
                sketch: SketchParameters(width: 16, depth: 4)
            )
        )
        let inProcess = try run.run().summary
        let live = try run.run(on: .live(redis: RedisEndpoint(port: redis.port), database: PostgresServer.current!.makeDatabase())).summary
        #expect(Self.figures(live) == Self.figures(inProcess))
        #expect(live.undercounts == 0 && live.lastPulledEarlierThanTruth == 0 && live.lastUsedEarlierThanTruth == 0)
    }

    /// The same for a replay, whose keys have arbitrary names.
    @Test func aLiveReplayGivesTheInProcessFigures() throws {
        let redis = try RedisServer()
        let file = try ReplayFile(lines: ReplayTests.skewedPulls())
        let run = AccuracyRun(
            workload: .replay(ReplayWorkload(path: file.path)), nodes: 3,
            tracker: TrackerConfiguration(isEnabled: true, hotCapacity: 32, sketch: SketchParameters(width: 1_024, depth: 4))
        )
        let inProcess = try run.run().summary
        let live = try run.run(on: .live(redis: RedisEndpoint(port: redis.port), database: PostgresServer.current!.makeDatabase())).summary
        #expect(inProcess.keysExactPercent < 100, "the tail was not used")
        #expect(Self.figures(live) == Self.figures(inProcess))
    }

    /// A summary without what the two ways measure differently.
    static func figures(_ summary: AccuracyResult.Summary) -> AccuracyResult.Summary {
        var figures = summary
        figures.peakNodeMemoryBytes = 0
        figures.redisMergeCommands = 0
        figures.redisPayloadBytes = 0
        return figures
    }
}
