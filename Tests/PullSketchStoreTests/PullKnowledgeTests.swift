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
        try knowledge.recordImport("import:audit", earliestPull: Timestamp(millisecondsSinceEpoch: 9 * Self.day), until: .now())
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

        try knowledge.recordImport("import:audit", earliestPull: Timestamp(millisecondsSinceEpoch: 5 * Self.day), until: Timestamp(millisecondsSinceEpoch: 6 * Self.day))
        try knowledge.recordImport("import:audit", earliestPull: Timestamp(millisecondsSinceEpoch: 7 * Self.day), until: Timestamp(millisecondsSinceEpoch: 8 * Self.day))
        #expect(try knowledge.since() == Timestamp(millisecondsSinceEpoch: 5 * Self.day), "the earliest start and the latest end of the source stay")
    }

    /// An import that ends well before live counting began (a log kept only until some months
    /// ago) leaves a hole: pulls are known only from live counting, or from an import that bridges
    /// the hole. A day without pulls at either side of a cutover is a quiet spell, not a hole.
    @Test func pullsAreKnownOnlyAsFarBackAsNoHoleLies() throws {
        let connection = try PostgresConnection(try PostgresServer.current!.makeDatabase())
        try Schema.migrate(connection)
        let knowledge = PullKnowledge(connection: connection)
        _ = try BatchWriter(connection: connection, shardCount: 1).write(try batch(1, windows: ["node-a": 1...1]))
        let live = try #require(try knowledge.since()).millisecondsSinceEpoch
        func at(_ milliseconds: Int64) -> Timestamp { Timestamp(millisecondsSinceEpoch: milliseconds) }

        try knowledge.recordImport("import:old", earliestPull: at(live - 100 * Self.day), until: at(live - 40 * Self.day))
        #expect(try knowledge.since() == at(live), "40 days between the log's end and live counting are unknown")
        try knowledge.recordImport("import:bridge", earliestPull: at(live - 41 * Self.day), until: at(live - PullKnowledge.longestQuietSpell - 1))
        #expect(try knowledge.since() == at(live), "a day and a millisecond without a pull is a hole")
        try knowledge.recordImport("import:bridge", earliestPull: at(live - 41 * Self.day), until: at(live - PullKnowledge.longestQuietSpell))
        #expect(try knowledge.since() == at(live - 100 * Self.day), "a day is a quiet spell, and the bridge reaches the old log")

        _ = try connection.query("INSERT INTO pull_knowledge (source, since) VALUES ('import:by-hand', $1)", ["2000-01-01T00:00:00Z"])
        #expect(try knowledge.since() == at(946_684_800_000), "a row written without its end is taken to reach live counting")
    }

    @Test func aPolicyIsJudgedOnKnownPullsOnlyWhenItsWindowBeginsAfterTheyAreKnown() {
        let now = Timestamp(millisecondsSinceEpoch: 100 * Self.day)
        let thirtyDays = PrunePolicy(notPulledDays: 30)
        func judged(_ policy: PrunePolicy, since: Int64?) -> Bool {
            policy.isJudgedOnKnownPulls(knownSince: since.map(Timestamp.init(millisecondsSinceEpoch:)), latestQuarantine: nil, now: now)
        }
        #expect(judged(thirtyDays, since: 70 * Self.day))
        #expect(!judged(thirtyDays, since: 70 * Self.day + 1))
        #expect(!judged(thirtyDays, since: nil), "nothing known")
        #expect(judged(PrunePolicy(maxPulls: 3), since: nil), "counts are counts since pulls are known")
    }

    /// A quarantined batch's pulls all happened before it was set aside: a window that begins
    /// later is whole, an earlier one is not, and counts and the order of use never are.
    @Test func aQuarantinedBatchLeavesOnlyALaterWindowWhole() {
        let now = Timestamp(millisecondsSinceEpoch: 100 * Self.day)
        let known = Timestamp(millisecondsSinceEpoch: 10 * Self.day)
        func judged(_ policy: PrunePolicy, quarantinedOnDay day: Int64) -> Bool {
            policy.isJudgedOnKnownPulls(knownSince: known, latestQuarantine: Timestamp(millisecondsSinceEpoch: day * Self.day - 1), now: now)
        }
        #expect(judged(PrunePolicy(notPulledDays: 30), quarantinedOnDay: 70), "set aside before the window began")
        #expect(!judged(PrunePolicy(notPulledDays: 30), quarantinedOnDay: 71), "set aside within the window")
        #expect(!judged(PrunePolicy(notPulledDays: 30, maxPulls: 3), quarantinedOnDay: 20), "its pulls count towards every count")
        #expect(!judged(PrunePolicy(notPulledDays: 30, keepMostRecent: 5), quarantinedOnDay: 20), "its pulls may change which tags were used last")
    }

    @Test func theLatestQuarantinedBatchIsTheOneSetAsideLast() throws {
        let connection = try PostgresConnection(try PostgresServer.current!.makeDatabase())
        try Schema.migrate(connection)
        let knowledge = PullKnowledge(connection: connection)
        let writer = BatchWriter(connection: connection, shardCount: 2)
        #expect(try knowledge.latestQuarantine() == nil)
        try writer.recordQuarantine(shard: 0, batch: 4, reason: "unreadable", content: Array("{}".utf8))
        try writer.recordQuarantine(shard: 1, batch: 9, reason: "unreadable", content: Array("{}".utf8))
        _ = try connection.query("UPDATE quarantined_batches SET quarantined_at = to_timestamp(shard * 1000 + 5)")
        #expect(try knowledge.latestQuarantine() == Timestamp(millisecondsSinceEpoch: 1_005_000))
        _ = try connection.query("DELETE FROM quarantined_batches")
        #expect(try knowledge.latestQuarantine() == nil, "an operator dealt with them")
    }
}
