import PullSketchCore
import PullSketchPostgres
import PullSketchStore
import PullSketchTestSupport
import Testing

/// Since when PullSketch knows pulls, as a dry run reports it (`pull_knowledge`).
@Suite(.postgresServer) struct PullKnowledgeTests {
    static let day: Int64 = 86_400_000

    /// A one-shard batch of one pull, holding the windows given.
    func batch(_ number: Int64, windows: [String: ClosedRange<UInt64>]) throws -> SealedBatch {
        let tracker = PullTracker(configuration: TrackerConfiguration(isEnabled: true, shardCount: 1))
        tracker.record(
            PullEvent(
                repository: try RepositoryName("team/app"), reference: .tag(try TagName("v1")), method: .get,
                servedDigest: try Digest("sha256:" + String(repeating: "a", count: 64)), time: Timestamp(millisecondsSinceEpoch: 1_000)
            )
        )
        let window = tracker.drain()
        return SealedBatch(number: number, parameters: window.parameters, content: window.shards[0], windows: windows)
    }

    @Test func theFirstBatchOfLivePullsMarksWhenLiveCountingBeganAndImportsReachFurtherBack() throws {
        let connection = try PostgresConnection(try PostgresServer.current!.makeDatabase())
        try Schema.migrate(connection)
        let knowledge = PullKnowledge(connection: connection)
        let writer = BatchWriter(connection: connection, shardCount: 1)
        #expect(try knowledge.since() == nil, "nothing counted yet")

        _ = try writer.write(try batch(1, windows: ["import:audit": 1...1]))
        try knowledge.recordImport("import:audit", earliestPull: Timestamp(millisecondsSinceEpoch: 9 * Self.day))
        #expect(try knowledge.since() == nil, "an import's batch is no live counting, and without it pulls since the import are unknown")

        let before = Timestamp.now().millisecondsSinceEpoch
        _ = try writer.write(try batch(2, windows: ["import:audit": 2...2, "node-a": 1...1]))
        #expect(try knowledge.since() == Timestamp(millisecondsSinceEpoch: 9 * Self.day), "live counting began: the import's history counts")
        func liveSince() throws -> Int64? {
            try connection.query("SELECT (extract(epoch from since) * 1000)::bigint FROM pull_knowledge WHERE source = 'live'").rows.first?[0].flatMap { Int64($0) }
        }
        let live = try #require(try liveSince())
        // PostgreSQL's clock, on this machine: at the batch's commit, to the millisecond.
        #expect((before - 1_000...Timestamp.now().millisecondsSinceEpoch).contains(live))
        _ = try writer.write(try batch(3, windows: ["node-a": 2...2]))
        #expect(try liveSince() == live, "later batches move nothing")

        try knowledge.recordImport("import:audit", earliestPull: Timestamp(millisecondsSinceEpoch: 5 * Self.day))
        try knowledge.recordImport("import:audit", earliestPull: Timestamp(millisecondsSinceEpoch: 7 * Self.day))
        #expect(try knowledge.since() == Timestamp(millisecondsSinceEpoch: 5 * Self.day), "the earliest import of the source stays")
    }

    @Test func aPolicyIsJudgedOnKnownPullsOnlyWhenItsWindowBeginsAfterTheyAreKnown() {
        let now = Timestamp(millisecondsSinceEpoch: 100 * Self.day)
        let thirtyDays = PrunePolicy(notPulledDays: 30)
        #expect(thirtyDays.isJudgedOnKnownPulls(knownSince: Timestamp(millisecondsSinceEpoch: 70 * Self.day), now: now))
        #expect(!thirtyDays.isJudgedOnKnownPulls(knownSince: Timestamp(millisecondsSinceEpoch: 70 * Self.day + 1), now: now))
        #expect(!thirtyDays.isJudgedOnKnownPulls(knownSince: nil, now: now), "nothing known")
        #expect(PrunePolicy(maxPulls: 3).isJudgedOnKnownPulls(knownSince: nil, now: now), "counts are counts since pulls are known")
    }
}
