import PullSketchCore
import PullSketchPostgres
import PullSketchQuay
import PullSketchStore
import PullSketchTestSupport
import Testing

/// The projection inside the reconciler's transaction, on sealed batches built by a real tracker.
@Suite(.postgresServer) struct QuayProjectionTests {
    let repository = try! RepositoryName("team/app")

    /// A database with Quay's tables in `public` and PullSketch's schema beside them, where the
    /// node has seen Quay's repository 13 named `team/app`.
    func quayDatabase() throws -> (connectionString: String, connection: PostgresConnection) {
        let connectionString = try PostgresServer.current!.makeDatabase()
        let connection = try PostgresConnection(connectionString)
        try connection.execute(script: QuayTables.schema)
        try Schema.migrate(connection)
        try connection.query("INSERT INTO quay_repository_names (quay_repository_id, name) VALUES (13, 'team/app')")
        return (connectionString, connection)
    }

    func pull(_ tag: Int, at seconds: Int64, in repository: RepositoryName? = nil) -> PullEvent {
        PullEvent(repository: repository ?? self.repository, reference: .tag(try! TagName("v\(tag)")), method: .get,
                  servedDigest: try! Digest("sha256:" + String(repeating: String(tag % 10), count: 64)),
                  time: Timestamp(millisecondsSinceEpoch: seconds * 1_000))
    }

    func batch(_ events: [PullEvent], hotCapacity: Int = 1_000, number: Int64) -> SealedBatch {
        let tracker = PullTracker(configuration: TrackerConfiguration(
            isEnabled: true, hotCapacity: hotCapacity, stripeCount: 1, shardCount: 1, sketch: SketchParameters(width: 2_048, depth: 5)
        ))
        for event in events { tracker.record(event) }
        let window = tracker.drain()
        return SealedBatch(number: number, parameters: window.parameters, content: window.shards[0])
    }

    func quayTags(_ connection: PostgresConnection) throws -> [[String?]] {
        try connection.query("""
            SELECT tag_name, tag_pull_count::text, to_char(last_tag_pull_date, 'YYYY-MM-DD HH24:MI:SS'), current_manifest_digest
            FROM tagpullstatistics ORDER BY tag_name
            """).rows
    }

    @Test func eachBatchIsProjectedOnceWithItsLedgerRowAndRowsHoldTotals() throws {
        let (_, connection) = try quayDatabase()
        let writer = BatchWriter(connection: connection, shardCount: 1, projection: try QuayProjection(quayDatabase: nil))
        let first = batch([pull(1, at: 1_800_000_000), pull(1, at: 1_800_000_010), pull(2, at: 1_800_000_005)], number: 1)
        _ = try writer.write(first)
        #expect(try writer.write(first) == .alreadyReconciled)
        _ = try writer.write(batch([pull(1, at: 1_800_000_020)], number: 2))
        let digest1 = "sha256:" + String(repeating: "1", count: 64), digest2 = "sha256:" + String(repeating: "2", count: 64)
        #expect(try quayTags(connection) == [
            ["v1", "3", "2027-01-15 08:00:20", digest1],
            ["v2", "1", "2027-01-15 08:00:05", digest2],
        ])
        #expect(try connection.query("SELECT manifest_digest, manifest_pull_count::text FROM manifestpullstatistics ORDER BY 1").rows == [
            [digest1, "3"], [digest2, "1"],
        ])
    }

    @Test func aBatchOnLargeStatisticsTablesIsProjectedInPartsWithEveryKey() throws {
        let (_, connection) = try quayDatabase()
        try connection.execute(script: LargeStatisticsTables.script(rows: 300_000))
        #expect(try StatisticsTableSizes(connection).statementRanges(3_000, of: .tag).count == 3)
        let writer = BatchWriter(connection: connection, shardCount: 1, projection: try QuayProjection(quayDatabase: nil))
        // 3,000 tags, read in three parts, and the 10 manifests they serve, in one.
        let events = (0..<3_000).map { pull($0, at: 1_800_000_000 + Int64($0)) }
        _ = try writer.write(batch(events, hotCapacity: 4_000, number: 1))
        #expect(try connection.query("SELECT count(*), sum(tag_pull_count), count(DISTINCT current_manifest_digest) FROM tagpullstatistics").rows
            == [["3000", "3000", "10"]])
        #expect(try connection.query("SELECT count(*), sum(manifest_pull_count) FROM manifestpullstatistics").rows == [["10", "3000"]])
    }

    @Test func aTailKeyIsProjectedWithItsUpperBound() throws {
        let (_, connection) = try quayDatabase()
        try connection.query("INSERT INTO repositories (name) VALUES ($1)", [repository.value])
        try connection.query("INSERT INTO catalog_tags (repository_id, tag) SELECT r.id, 'v' || n FROM repositories r, generate_series(0, 99) n")
        let events = (0..<2_000).map { pull($0 % 100, at: 1_800_000_000 + Int64($0)) }
        let tail = batch(events, hotCapacity: 0, number: 1)
        _ = try BatchWriter(connection: connection, shardCount: 1, projection: try QuayProjection(quayDatabase: nil)).write(tail)
        let stored = try connection.query("""
            SELECT t.tag, (t.pull_count + t.pull_count_error)::text, q.tag_pull_count::text
            FROM tag_stats t JOIN tagpullstatistics q ON q.tag_name = t.tag
            """).rows
        #expect(stored.count == 100)
        for row in stored {
            #expect(row[1] == row[2], "\(row[0]!): Quay holds the upper bound")
            #expect(Int(row[2]!)! >= 20, "\(row[0]!): never below the 20 pulls it had")
        }
    }

    @Test func aProjectionThatFailsRollsTheWholeBatchBack() throws {
        let connection = try PostgresConnection(try PostgresServer.current!.makeDatabase())
        try Schema.migrate(connection)  // no Quay tables: the projection's statement fails
        try connection.query("INSERT INTO quay_repository_names (quay_repository_id, name) VALUES (13, 'team/app')")
        let writer = BatchWriter(connection: connection, shardCount: 1, projection: try QuayProjection(quayDatabase: nil))
        #expect(throws: PostgresError.self) { try writer.write(batch([pull(1, at: 1_800_000_000)], number: 1)) }
        #expect(try connection.query("SELECT count(*) FROM tag_stats").rows == [["0"]])
        #expect(try connection.query("SELECT count(*) FROM reconciled_batches").rows == [["0"]])
    }

    @Test func quaysTablesInAnotherDatabaseAreWrittenBeforeTheBatchCommits() throws {
        let (quayConnectionString, quay) = try quayDatabase()
        let statistics = try PostgresConnection(try PostgresServer.current!.makeDatabase())
        try Schema.migrate(statistics)
        try statistics.query("INSERT INTO quay_repository_names (quay_repository_id, name) VALUES (13, 'team/app')")
        let writer = BatchWriter(connection: statistics, shardCount: 1, projection: try QuayProjection(quayDatabase: quayConnectionString))
        let once = batch([pull(3, at: 1_800_000_000), pull(3, at: 1_800_000_001)], number: 1)
        _ = try writer.write(once)
        _ = try writer.write(once)
        #expect(try quayTags(quay).map { $0[1] } == ["2"])
        #expect(try statistics.query("SELECT pull_count::text FROM tag_stats").rows == [["2"]])
    }

    @Test func aRenamedRepositorysRowSumsEveryNameItHad() throws {
        let (_, connection) = try quayDatabase()
        try connection.query("INSERT INTO quay_repository_names (quay_repository_id, name) VALUES (13, 'team/old')")
        let old = try RepositoryName("team/old")
        let writer = BatchWriter(connection: connection, shardCount: 1, projection: try QuayProjection(quayDatabase: nil))
        _ = try writer.write(batch([pull(1, at: 1_800_000_000, in: old), pull(1, at: 1_800_000_001, in: old)], number: 1))
        _ = try writer.write(batch([pull(1, at: 1_800_000_030)], number: 2))
        #expect(try quayTags(connection).map { [$0[1], $0[2]] } == [["3", "2027-01-15 08:00:30"]])
        try connection.query("DELETE FROM tagpullstatistics")
        #expect(try QuayProjection(quayDatabase: nil).sync(statistics: connection) == [.tag: 1, .manifest: 1])
        #expect(try quayTags(connection).map { [$0[1], $0[2]] } == [["3", "2027-01-15 08:00:30"]])
    }
}
