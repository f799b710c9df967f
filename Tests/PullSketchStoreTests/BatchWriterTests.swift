import Foundation
import PullSketchCore
import PullSketchPostgres
@testable import PullSketchStore
import PullSketchTestSupport
import Synchronization
import Testing

@Suite(.postgresServer) struct BatchWriterTests {
    let repository = try! RepositoryName("team/app")

    func migratedDatabase() throws -> PostgresConnection {
        let connection = try PostgresConnection(try PostgresServer.current!.makeDatabase())
        try Schema.migrate(connection)
        return connection
    }

    func pull(_ tag: Int, _ method: ManifestRequestMethod, at time: Int64) -> PullEvent {
        let hex = String(tag, radix: 16)
        return PullEvent(
            repository: repository,
            reference: .tag(try! TagName("v\(tag)")),
            method: method,
            servedDigest: try! Digest("sha256:" + String(repeating: "0", count: 64 - hex.count) + hex),
            time: Timestamp(millisecondsSinceEpoch: time)
        )
    }

    /// One shard, so the whole window is one sealed batch.
    func batch(_ events: [PullEvent], hotCapacity: Int, number: Int64 = 1) -> SealedBatch {
        let configuration = TrackerConfiguration(
            isEnabled: true, hotCapacity: hotCapacity, stripeCount: 1, shardCount: 1, sketch: SketchParameters(width: 2_048, depth: 5)
        )
        let tracker = PullTracker(configuration: configuration)
        for event in events { tracker.record(event) }
        let window = tracker.drain()
        return SealedBatch(number: number, parameters: window.parameters, content: window.shards[0])
    }

    struct Truth {
        var pulls: [String: (count: Int64, last: Int64)] = [:]

        init(_ events: [PullEvent]) {
            for event in events {
                for touch in CountingRule.resolutions.touches(for: event) where touch.effect.pulls > 0 {
                    let key = "\(touch.key.kind == .tag ? "tag" : "manifest")|\(touch.key.name)"
                    let old = pulls[key] ?? (0, .min)
                    pulls[key] = (old.count + 1, max(old.last, event.time.millisecondsSinceEpoch))
                }
            }
        }
    }

    /// Every stats row as key → (pull_count, error, last pulled ms, exact).
    func rows(_ connection: PostgresConnection) throws -> [String: (count: Int64, error: Int64, last: Int64, exact: Bool)] {
        var result: [String: (Int64, Int64, Int64, Bool)] = [:]
        for (table, column) in [("tag_stats", "tag"), ("manifest_stats", "digest")] {
            let query = "SELECT \(column), pull_count, pull_count_error, (extract(epoch from last_pulled_at) * 1000)::bigint, last_pulled_exact FROM \(table)"
            for row in try connection.query(query).rows {
                // A key used but never pulled has no last pull.
                result["\(table == "tag_stats" ? "tag" : "manifest")|\(row[0]!)"] = (Int64(row[1]!)!, Int64(row[2]!)!, Int64(row[3] ?? "") ?? .min, row[4] == "t")
            }
        }
        return result
    }

    @Test func aBatchHoldingANodeWindowPostgresHasAlreadyWritesNothing() throws {
        let connection = try migratedDatabase()
        let writer = BatchWriter(connection: connection, shardCount: 1)
        let events = [pull(1, .get, at: 1_800_000_000_000)]
        var first = batch(events, hotCapacity: 10, number: 1)
        first.windows = ["a": 1...3, "b": 7...7]
        #expect(try writer.write(first) == .applied(exactKeys: 2, estimatedKeys: 0))
        // The same windows again under a new number: a batch that came back with an older Redis.
        var copy = batch(events, hotCapacity: 10, number: 2)
        copy.windows = ["a": 3...5]
        #expect(try writer.write(copy) == .holdsReconciledWindows)
        #expect(try connection.query("SELECT sum(pull_count) FROM tag_stats").rows == [["1"]], "nothing written")
        #expect(try connection.query("SELECT count(*) FROM reconciled_batches").rows == [["1"]], "not in the ledger")
        var next = batch(events, hotCapacity: 10, number: 3)
        next.windows = ["a": 4...5, "c": 1...1]
        #expect(try writer.write(next) == .applied(exactKeys: 2, estimatedKeys: 0))
        #expect(try writer.reconciledWindows(shard: 0) == ["a": 5, "b": 7, "c": 1])
    }

    @Test func anExactBatchGivesRowsEqualToTheTruthAndIsAppliedOnce() throws {
        let connection = try migratedDatabase()
        var generator = SeededGenerator(seed: 3)
        let events = (0..<5_000).map { pull(Int.random(in: 0..<300, using: &generator), Bool.random(using: &generator) ? .get : .head, at: 1_800_000_000_000 + Int64($0)) }
        let batch = batch(events, hotCapacity: 10_000)
        let writer = BatchWriter(connection: connection, shardCount: 1)
        #expect(try writer.write(batch) == .applied(exactKeys: batch.content.hotEntries.count, estimatedKeys: 0))
        let first = try rows(connection)
        #expect(try writer.write(batch) == .alreadyReconciled)
        let truth = Truth(events).pulls
        #expect(first.count == truth.count)
        for (key, expected) in truth {
            let row = try #require(first[key], "missing \(key)")
            #expect(row.count == expected.count && row.error == 0 && row.exact, "\(key)")
            #expect(row.last == expected.last, "\(key) last pulled")
        }
        let again = try rows(connection)
        #expect(again.mapValues { $0.count } == first.mapValues { $0.count })
    }

    /// Far below the share of rows where PostgreSQL reads a large table whole; one statement for
    /// small tables, or for keys that many.
    @Test func statementsOnALargeTableTakeAFewKeysEach() throws {
        #expect(StatisticsTableSizes.keysPerStatement(keys: 30_000, tableRows: 2_700_000) == 10_546)
        #expect(StatisticsTableSizes.keysPerStatement(keys: 30_000, tableRows: 504_000) == 1_968)
        #expect(StatisticsTableSizes.keysPerStatement(keys: 5_000, tableRows: 10_000_000) == 5_000, "fewer keys than one statement takes")
        #expect(StatisticsTableSizes.keysPerStatement(keys: 30_000, tableRows: 200_000) == 30_000, "a small table")
        #expect(StatisticsTableSizes.keysPerStatement(keys: 5_000, tableRows: 200_000) == 5_000, "a small table")
        #expect(StatisticsTableSizes.keysPerStatement(keys: 100_000, tableRows: 700_000) == 100_000, "keys of more than 1/8 of the rows")
        #expect(StatisticsTableSizes.keysPerStatement(keys: 30_000, tableRows: 0) == 30_000, "a table never analyzed")
        let sizes = StatisticsTableSizes(rows: [.tag: 2_700_000])
        #expect(try sizes.statementRanges(25_000, of: .tag) == [0..<10_546, 10_546..<21_092, 21_092..<25_000])
        #expect(try sizes.statementRanges(25_000, of: .manifest) == [0..<25_000], "a table not counted")
        #expect(try sizes.statementRanges(0, of: .tag).isEmpty)
    }

    @Test func aBatchSplitAcrossStatementsCountsEveryKeyOnce() throws {
        let connection = try migratedDatabase()
        try connection.execute(script: LargeStatisticsTables.script(rows: 300_000))
        let writer = BatchWriter(connection: connection, shardCount: 1)
        let unread = StatisticsTableSizes(connection)
        #expect(try unread.statementRanges(1_000, of: .tag) == [0..<1_000])
        #expect(unread.rows == nil, "too few keys to split: not read")
        let sizes = StatisticsTableSizes(connection)
        #expect(try sizes.statementRanges(3_000, of: .tag).count == 3)
        let counted = try #require(sizes.rows)
        #expect(counted.count == 2 && counted.values.allSatisfy { (290_000...310_000).contains($0) }, "\(counted)")
        let day: Int64 = 1_800_000_000_000
        let first = (0..<2_000).map { pull($0, .get, at: day + Int64($0)) }
        // 1,000 keys of each kind with rows, 2,000 without: three statements of about 1,170 keys, and
        // the keys they did not find inserted.
        let second = (1_000..<4_000).flatMap { [pull($0, .get, at: day + 10_000 + Int64($0)), pull($0, .head, at: day + 20_000)] }
        let split = batch(second, hotCapacity: 20_000, number: 2)
        #expect(try writer.write(batch(first, hotCapacity: 20_000, number: 1)) == .applied(exactKeys: 4_000, estimatedKeys: 0))
        #expect(try writer.write(split) == .applied(exactKeys: 6_000, estimatedKeys: 0))
        let written = try rows(connection).filter { !$0.key.hasPrefix("tag|f") && $0.value.count > 0 }
        let truth = Truth(first + second).pulls
        #expect(written.count == truth.count)
        for (key, expected) in truth {
            let row = try #require(written[key], "missing \(key)")
            #expect(row.count == expected.count && row.exact && row.last == expected.last, "\(key)")
        }
        let tagTouches = (first + second).flatMap { CountingRule.resolutions.touches(for: $0) }.filter { $0.key.kind == .tag }
        let requests = try connection.query("SELECT sum(fetches), sum(checks) FROM tag_stats").rows
        #expect(requests == [["\(tagTouches.map(\.effect.fetches).reduce(0, +))", "\(tagTouches.map(\.effect.checks).reduce(0, +))"]])
    }

    @Test func laterBatchesUpdateStatisticsRowsInPlaceAndRegisterOnlyNewKeys() throws {
        let database = try PostgresServer.current!.makeDatabase()
        let connection = try PostgresConnection(database)
        try Schema.migrate(connection)
        let writer = BatchWriter(connection: connection, shardCount: 1)
        let day: Int64 = 1_800_000_000_000
        let first = (0..<300).map { pull($0, .get, at: day + Int64($0)) }
        _ = try writer.write(batch(first, hotCapacity: 1_000, number: 1))
        // A key the catalog forgot (deleted by hand) is not registered again by an update.
        try connection.query("DELETE FROM catalog_tags WHERE tag = 'v0'")
        /// Updates and HOT updates of the tag and manifest statistics so far.
        func updates() throws -> [(all: Int, hot: Int)] {
            _ = try connection.query("SELECT pg_stat_force_next_flush()")
            return try connection.query(
                "SELECT n_tup_upd, n_tup_hot_upd FROM pg_stat_user_tables WHERE relname IN ('tag_stats', 'manifest_stats') ORDER BY relname"
            ).rows.map { (Int($0[0]!)!, Int($0[1]!)!) }
        }
        // A snapshot held open keeps every page from being pruned, whatever else the server runs: an
        // update is HOT only where the fillfactor left room on its row's page.
        let snapshot = try PostgresConnection(database)
        try snapshot.query("BEGIN ISOLATION LEVEL REPEATABLE READ")
        try snapshot.query("SELECT count(*) FROM tag_stats")
        var before = try updates()
        for number: Int64 in 2...6 {
            // HEADs by tag of the same 300 tags and 10 new ones.
            let events = (0..<310).map { pull($0, .head, at: day + 1_000 * number + Int64($0)) }
            _ = try writer.write(batch(events, hotCapacity: 1_000, number: number))
            let after = try updates()
            let batch = zip(before, after).map { (all: $1.all - $0.all, hot: $1.hot - $0.hot) }
            #expect(batch.allSatisfy { $0.all == (number == 2 ? 300 : 310) })
            // At least a seventh of each table's updates are HOT (84–87 of 300 in the first batch,
            // 58–70 of 310 in later ones); with an index on a counter, none of manifest_stats'.
            #expect(batch.allSatisfy { $0.hot * 7 >= $0.all }, "batch \(number), tag and manifest updates: \(batch)")
            before = after
        }
        try snapshot.query("ROLLBACK")
        // Only keys that gained a statistics row were registered: v0 stays forgotten.
        let catalog = try connection.query("SELECT (SELECT count(*) FROM catalog_tags), (SELECT count(*) FROM catalog_manifests)").rows
        #expect(catalog == [["309", "310"]])
        #expect(try connection.query("SELECT pull_count, checks FROM tag_stats WHERE tag = 'v7'").rows == [["6", "5"]])
    }

    /// Waits (a minute at most: the suite loads the machine) until `count` sessions of
    /// `connection`'s database wait for a lock; whether they do.
    static func sessionsWaitForALock(_ count: Int, seenBy connection: PostgresConnection) throws -> Bool {
        let waiting = "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'"
        let deadline = Date().addingTimeInterval(60)
        while try connection.query(waiting).rows != [[String(count)]] {
            guard Date() < deadline else { return false }
            Thread.sleep(forTimeInterval: 0.02)
        }
        return true
    }

    /// A key's row that another writer commits while a batch holding the key is written — after
    /// the batch looked for the rows that exist, before its insert of the ones that did not — is
    /// added to, not overwritten and not skipped.
    @Test func aNewKeysRowAnotherWriterInsertsMeanwhileGetsTheBatchsPullsToo() throws {
        let database = try PostgresServer.current!.makeDatabase()
        let setup = try PostgresConnection(database)
        try Schema.migrate(setup)
        try setup.query("INSERT INTO repositories (name) VALUES ('team/app')")
        let other = try PostgresConnection(database)
        try other.query("BEGIN")
        try other.query(
            "INSERT INTO tag_stats (repository_id, tag, pull_count, last_pulled_at) SELECT id, 'v1', 5, '2030-01-01Z' FROM repositories"
        )
        let written = Mutex<String?>(nil)
        let writing = DispatchGroup()
        let sealed = batch([pull(1, .get, at: 1_800_000_000_000), pull(1, .get, at: 1_800_000_000_001)], hotCapacity: 10)
        DispatchQueue.global().async(group: writing) {
            let outcome = Result { try BatchWriter(connection: try PostgresConnection(database), shardCount: 1).write(sealed) }
            written.withLock { $0 = "\(outcome)" }
        }
        // The batch's insert waits for the other writer's row to commit or roll back.
        #expect(try Self.sessionsWaitForALock(1, seenBy: setup), "the batch waits for the other writer's row")
        try other.query("COMMIT")
        #expect(writing.wait(timeout: .now() + 30) == .success)
        #expect(written.withLock { $0 } == "\(Result<BatchWriter.Outcome, any Error>.success(.applied(exactKeys: 2, estimatedKeys: 0)))")
        let row = try setup.query("SELECT pull_count, last_pulled_at = '2030-01-01Z', last_pulled_exact FROM tag_stats WHERE tag = 'v1'").rows
        #expect(row == [["7", "t", "t"]])
        #expect(try setup.query("SELECT count(*) FROM catalog_tags WHERE tag = 'v1'").rows == [["1"]])
    }

    @Test func statisticsSplitIntoPartitionsKeepEveryRowAndTakeLaterBatches() throws {
        let connection = try migratedDatabase()
        let writer = BatchWriter(connection: connection, shardCount: 1)
        let day: Int64 = 1_800_000_000_000
        let first = (0..<200).map { pull($0, .get, at: day + Int64($0)) }
        _ = try writer.write(batch(first, hotCapacity: 1_000, number: 1))
        let before = try rows(connection)
        #expect(try Schema.partitionStatistics(connection, partitions: 4))
        #expect(try !Schema.partitionStatistics(connection, partitions: 8), "once")
        let partitions = try connection.query(
            "SELECT c.relname, c.reloptions FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid WHERE i.inhparent = 'tag_stats'::regclass ORDER BY 1"
        ).rows
        #expect(partitions.map { $0[0] } == ["tag_stats_p0", "tag_stats_p1", "tag_stats_p2", "tag_stats_p3"])
        #expect(partitions.allSatisfy { $0[1] == "{fillfactor=80}" })
        #expect(try rows(connection).mapValues(\.count) == before.mapValues(\.count))
        // Updates of existing rows and inserts of new ones go to the partitions, each key found by
        // its own partition's primary key: no partition is read whole.
        func partitionsReadWhole() throws -> Int {
            try connection.query("SELECT pg_stat_force_next_flush()")
            return try connection.query(
                "SELECT coalesce(sum(seq_scan), 0)::bigint AS n FROM pg_stat_user_tables WHERE relname ~ '^(tag|manifest)_stats_p[0-9]+$'"
            ).namedRows[0].decode("n", as: Int.self)
        }
        let readWhole = try partitionsReadWhole()
        let second = (100..<300).map { pull($0, .get, at: day + 10_000 + Int64($0)) }
        _ = try writer.write(batch(second, hotCapacity: 1_000, number: 2))
        #expect(try partitionsReadWhole() == readWhole)
        let truth = Truth(first + second).pulls
        let after = try rows(connection)
        #expect(after.count == truth.count && truth.allSatisfy { after[$0.key]?.count == $0.value.count })
        // What splits a large batch's updates is counted over the partitions.
        try connection.execute(script: "ANALYZE tag_stats, manifest_stats")
        let sizes = StatisticsTableSizes(connection)
        _ = try sizes.statementRanges(2_000, of: .tag)
        #expect(sizes.rows == [.tag: 300, .manifest: 300])
        let queries = StatisticsQueries(connection: connection)
        #expect(try queries.tag(repository, try TagName("v150"))?.pullCount == 2)
        let now = Timestamp(millisecondsSinceEpoch: day + 40 * 86_400_000)
        #expect(try queries.pruneCandidates(repository, policy: PrunePolicy(notPulledDays: 30), now: now).count == 300)
    }

    @Test func tailEstimatesNeverUndercountStayWithinTheirBoundAndNeverDateAPullEarly() throws {
        let connection = try migratedDatabase()
        var generator = SeededGenerator(seed: 4)
        let events = (0..<20_000).map { pull(Int.random(in: 0..<2_000, using: &generator), .head, at: 1_800_000_000_000 + Int64($0)) }
        // The catalog knows every tag (as pushes would have told it).
        try connection.query("INSERT INTO repositories (name) VALUES ($1)", [repository.value])
        try connection.query(
            "INSERT INTO catalog_tags (repository_id, tag) SELECT r.id, 'v' || n FROM repositories r, generate_series(0, 1999) n"
        )
        let batch = batch(events, hotCapacity: 0)
        #expect(batch.content.tailMass == 20_000)
        let outcome = try BatchWriter(connection: connection, shardCount: 1).write(batch)
        // Every tag, and the manifest each served (used, not pulled, by a HEAD): the batch names them.
        #expect(outcome == .applied(exactKeys: 0, estimatedKeys: 2 * Truth(events).pulls.count))
        let stored = try rows(connection)
        let bound = Int64(batch.parameters!.errorBound(tailMass: 20_000))
        var withinBound = 0
        for (key, expected) in Truth(events).pulls {
            let row = try #require(stored[key], "missing \(key)")
            #expect(row.count >= expected.count, "\(key) undercounted")
            #expect(row.error == bound && !row.exact)
            #expect(row.last >= expected.last, "\(key) dated before its last pull")
            if row.count - row.error <= expected.count { withinBound += 1 }
        }
        #expect(Double(withinBound) / Double(Truth(events).pulls.count) >= 1 - batch.parameters!.delta)
    }

    /// The catalog's keys are estimated only for a repository whose tail keys the batch could not
    /// all name: the batch names every other tail key, so reading the rest of the catalog would only
    /// add collisions (and, under a flood over a large catalog, made the reconciler fall behind).
    /// Uses of keys whose names did not fit count whether or not they were pulls (a HEAD by tag pulls
    /// the tag and only uses its manifest), and then every catalog key of the repository is dated.
    /// A batch of `events` all in the tail, with room for `tailNames` names. Eight cells: a few
    /// unnamed tail keys set every bit of the usage filter, so it says "maybe" of every key of the
    /// catalog.
    func tailBatch(_ events: [PullEvent], tailNames: Int) -> SealedBatch {
        let tracker = PullTracker(configuration: TrackerConfiguration(
            isEnabled: true, hotCapacity: 0, stripeCount: 1, shardCount: 1, tailNameCapacity: tailNames, sketch: SketchParameters(width: 8, depth: 1)
        ))
        for event in events { tracker.record(event) }
        let window = tracker.drain()
        return SealedBatch(number: 1, parameters: window.parameters, content: window.shards[0])
    }

    /// A database whose catalog holds tags `v0`… of the repository.
    func catalog(ofTags count: Int) throws -> PostgresConnection {
        let connection = try migratedDatabase()
        try connection.query("INSERT INTO repositories (name) VALUES ($1)", [repository.value])
        try connection.query("INSERT INTO catalog_tags (repository_id, tag) SELECT r.id, 'v' || n FROM repositories r, generate_series(0, $1::int - 1) n", [String(count)])
        return connection
    }

    @Test func catalogKeysAreEstimatedOnlyForRepositoriesWhoseTailKeysWereNotAllNamed() throws {
        let checks = (1...10).map { pull($0, .head, at: 1_800_000_000_000 + Int64($0)) }
        // The repository's twenty keys take every name; another repository's keys, checked after,
        // go unnamed and set every bit of the usage filter.
        let other = try RepositoryName("team/other")
        let otherChecks = checks.map { PullEvent(repository: other, reference: $0.reference, method: .head, servedDigest: $0.servedDigest, time: $0.time) }
        let named = try catalog(ofTags: 100)
        let allNamed = tailBatch(checks + otherChecks, tailNames: 20)
        #expect(allNamed.content.usageBits.count == 8 && allNamed.content.tailNames.count == 20)
        #expect(allNamed.content.tailRepositories.map(\.unnamedUses) == [0, 20], "team/app, then team/other")
        #expect(try BatchWriter(connection: named, shardCount: 1).write(allNamed) == .applied(exactKeys: 0, estimatedKeys: 20))
        #expect(try named.query("SELECT count(*) FROM tag_stats").rows == [["10"]], "the ten tags checked, no other")

        let unnamed = try catalog(ofTags: 100)
        let oneNamed = tailBatch(checks, tailNames: 1)
        #expect(oneNamed.content.tailNames.count == 1)
        #expect(oneNamed.content.tailRepositories.map(\.unnamedUses) == [19] && oneNamed.content.tailRepositories.map(\.unnamedPulls) == [9])
        _ = try BatchWriter(connection: unnamed, shardCount: 1).write(oneNamed)
        let dated = try unnamed.query(
            "SELECT count(*) FROM tag_stats WHERE last_used_at >= to_timestamp(1800000000.010) AND NOT last_used_exact"
        ).rows
        #expect(dated == [["100"]], "every catalog tag dated no earlier than the last check, as inexact")
    }

    /// A tag pulled before PostgreSQL heard of its repository (its push not delivered yet): the
    /// batch's names bring the repository, the tag and its manifest into the catalog, estimated.
    @Test func tailKeysOfARepositoryPostgresHasNeverSeenAreRegisteredAndEstimated() throws {
        let connection = try migratedDatabase()
        let batch = tailBatch((1...5).map { pull($0, .get, at: 1_800_000_000_000 + Int64($0)) }, tailNames: 100)
        #expect(batch.content.tailNames.count == 10 && batch.content.tailRepositories.allSatisfy { $0.unnamedPulls == 0 })
        #expect(try BatchWriter(connection: connection, shardCount: 1).write(batch) == .applied(exactKeys: 0, estimatedKeys: 10))
        let catalog = try connection.query("SELECT (SELECT count(*) FROM catalog_tags), (SELECT count(*) FROM catalog_manifests)").rows
        #expect(catalog == [["5", "5"]])
        let pulled = try connection.query("SELECT count(*) FROM tag_stats WHERE pull_count >= 1").rows
        #expect(pulled == [["5"]], "every tag counted, none below its one pull")
    }

    @Test func aCatalogLargerThanOneEstimateBatchHasEveryKeyEstimatedOnce() throws {
        let tags = 2 * CatalogScan.keysPerStatement + 7
        let connection = try catalog(ofTags: tags)
        let batch = tailBatch((1...10).map { pull($0, .get, at: 1_800_000_000_000 + Int64($0)) }, tailNames: 4)
        let named = batch.content.tailNames.filter { $0.kind == .tag }
        #expect(named.count == 2 && named.allSatisfy { $0.name.hasPrefix("v") }, "named keys the catalog lists too")
        let estimator = try #require(try TailEstimator(batch.content, parameters: batch.parameters, shardCount: 1))
        let namedTags = Set(named.map(\.name))
        let expected = (0..<tags).reduce(UInt64(0)) { total, tag in
            let hash = KeyHash(kind: .tag, repository: repository.value, reference: "v\(tag)", seed: estimator.seed)
            return total + (estimator.estimate(hash, repository: repository.value, isNamed: namedTags.contains("v\(tag)"))?.pulls ?? 0)
        }
        _ = try BatchWriter(connection: connection, shardCount: 1).write(batch)
        let written = try connection.query("SELECT count(*), sum(pull_count) FROM tag_stats").rows
        #expect(written == [[String(tags), String(expected)]], "every catalog tag once, each with its own estimate, none twice")
    }

    /// Four shards' batches whose tails used catalog keys unnamed: the catalog read once for all
    /// of them before their transactions gives every row that each batch's own read gives,
    /// including a key the batch counts exactly and inserts into the catalog, whose tail uses went
    /// unnamed too (hot in one core window, in the tail of another).
    @Test func theCatalogReadOnceForEveryShardGivesTheRowsEachBatchsOwnReadGives() throws {
        func window(hotCapacity: Int, _ events: [PullEvent]) -> Window {
            let tracker = PullTracker(configuration: TrackerConfiguration(
                isEnabled: true, hotCapacity: hotCapacity, stripeCount: 4, shardCount: 4, tailNameCapacity: 0, sketch: SketchParameters(width: 8, depth: 1)
            ))
            for event in events { tracker.record(event) }
            return tracker.drain()
        }
        let tail = window(hotCapacity: 0, (0..<50).map { pull($0, .get, at: 1_800_000_000_000 + Int64($0)) } + [pull(1_000, .get, at: 1_800_000_000_100)])
        let hot = window(hotCapacity: 100, (1_000..<1_010).map { pull($0, .get, at: 1_800_000_000_200) })
        let batches = try (0..<4).map { shard in
            var content = tail.shards[shard]
            try content.merge(hot.shards[shard], parameters: tail.parameters)
            return SealedBatch(number: 1, parameters: tail.parameters, content: content)
        }
        let ownReads = try catalog(ofTags: 200), sharedRead = try catalog(ofTags: 200)
        for batch in batches { _ = try BatchWriter(connection: ownReads, shardCount: 4).write(batch) }
        let writer = BatchWriter(connection: sharedRead, shardCount: 4)
        let candidates = try writer.catalogCandidates(for: batches)
        #expect(candidates.count == 4 && candidates.values.allSatisfy { !($0.keys[.tag] ?? []).isEmpty })
        for batch in batches { _ = try writer.write(batch, candidates: candidates[batch.content.shard]) }
        let everyRow = """
            SELECT 'tag', tag, pull_count, pull_count_error, last_pulled_at, last_pulled_exact, last_used_at, counters_exact FROM tag_stats
            UNION ALL SELECT 'manifest', digest, pull_count, pull_count_error, last_pulled_at, last_pulled_exact, last_used_at, counters_exact FROM manifest_stats
            ORDER BY 1, 2
            """
        let rows = try sharedRead.query(everyRow).rows, ownRows = try ownReads.query(everyRow).rows
        // The catalog's 200 tags, the 10 new ones counted exactly and their manifests; the tail's
        // manifests the catalog lacks went unnamed and are counted as unattributed pulls.
        #expect(rows.count == 200 + 10 + 10 && rows == ownRows)
        let exactAndTail = try sharedRead.query("SELECT pull_count, pull_count_error > 0 FROM tag_stats WHERE tag = 'v1000'").rows
        #expect(exactAndTail.first?.last == "t", "the exact key's unnamed tail uses estimated too")

        // Holding at most 100 keys, the read leaves the batches holding the most to read their own.
        let limitedRead = try catalog(ofTags: 200)
        let limitedWriter = BatchWriter(connection: limitedRead, shardCount: 4)
        let limited = try limitedWriter.catalogCandidates(for: batches, holdingAtMost: 100)
        #expect((1..<4).contains(limited.count) && limited.values.reduce(0) { $0 + $1.count } <= 100)
        #expect(try limitedWriter.catalogCandidates(for: batches, holdingAtMost: 0).isEmpty)
        for batch in batches { _ = try limitedWriter.write(batch, candidates: limited[batch.content.shard]) }
        #expect(try limitedRead.query(everyRow).rows == ownRows)
    }

    @Test func aRetargetedTagKeepsItsStatisticsWhenItsOldManifestIsDeleted() throws {
        let connection = try migratedDatabase()
        let old = pull(1, .get, at: 1_800_000_000_000)
        _ = try BatchWriter(connection: connection, shardCount: 1).write(batch([old, old], hotCapacity: 100))
        let catalog = Catalog(connection: connection)
        let v1 = try TagName("v1")
        let newDigest = try Digest("sha256:" + String(repeating: "b", count: 64))
        try catalog.upsertTag(repository, v1, digest: newDigest, pushedAt: Timestamp(millisecondsSinceEpoch: 1_800_000_100_000))
        try catalog.deleteManifest(repository, old.servedDigest!, at: Timestamp(millisecondsSinceEpoch: 1_800_000_200_000))
        let tag = try connection.query("SELECT pull_count, deleted_at IS NULL FROM tag_stats WHERE tag = 'v1'").rows
        #expect(tag == [["2", "t"]])
        let catalogTag = try connection.query("SELECT digest, deleted_at IS NULL FROM catalog_tags WHERE tag = 'v1'").rows
        #expect(catalogTag == [[newDigest.value, "t"]])
        let oldManifest = try connection.query("SELECT pull_count, deleted_at IS NOT NULL FROM manifest_stats WHERE digest = $1", [old.servedDigest!.value]).rows
        #expect(oldManifest == [["2", "t"]])
        try catalog.deleteTag(repository, v1, at: Timestamp(millisecondsSinceEpoch: 1_800_000_300_000))
        #expect(try connection.query("SELECT deleted_at IS NOT NULL FROM catalog_tags WHERE tag = 'v1'").rows == [["t"]])
        #expect(try connection.query("SELECT pull_count FROM tag_stats WHERE tag = 'v1'").rows == [["2"]])
    }

    /// Two reconcilers' batches that both name two new repositories, each one's exact keys in the
    /// repository of the other's tail keys: inserting names statement by statement, each took its
    /// exact keys' repository and then waited for the other's, and PostgreSQL aborted one as a
    /// deadlock. A lock on `tag_stats` holds both writers between their first statements and the
    /// rest, so the two always meet there.
    @Test func twoWritersNamingTheSameNewRepositoriesInOppositeRolesBothCommit() throws {
        let database = try PostgresServer.current!.makeDatabase()
        try Schema.migrate(try PostgresConnection(database))
        func batch(hot: String, tail: String, number: Int64) -> SealedBatch {
            let tracker = PullTracker(configuration: TrackerConfiguration(isEnabled: true, hotCapacity: 2, stripeCount: 1, shardCount: 1))
            for (index, name) in [hot, tail].enumerated() {
                let hex = String(index + 1, radix: 16)
                tracker.record(PullEvent(
                    repository: try! RepositoryName(name), reference: .tag(try! TagName("v1")), method: .get,
                    servedDigest: try! Digest("sha256:" + String(repeating: "0", count: 64 - hex.count) + hex),
                    time: Timestamp(millisecondsSinceEpoch: 1_800_000_000_000)
                ))
            }
            let window = tracker.drain()
            return SealedBatch(number: number, parameters: window.parameters, content: window.shards[0])
        }
        let batches = [batch(hot: "team/b", tail: "team/a", number: 1), batch(hot: "team/a", tail: "team/b", number: 2)]
        for (batch, (hot, tail)) in zip(batches, [("team/b", "team/a"), ("team/a", "team/b")]) {
            #expect(Set(batch.content.hotEntries.map(\.key.repository.value)) == [hot])
            #expect(Set(batch.content.tailNames.map(\.repository.value)) == [tail])
        }
        let blocker = try PostgresConnection(database)
        try blocker.query("BEGIN")
        try blocker.query("LOCK TABLE tag_stats IN SHARE MODE")
        let outcomes = Mutex<[String]>([])
        let writing = DispatchGroup()
        for batch in batches {
            DispatchQueue.global().async(group: writing) {
                let outcome = Result { try BatchWriter(connection: try PostgresConnection(database), shardCount: 1).write(batch) }
                outcomes.withLock { $0.append("\(outcome)") }
            }
        }
        let observer = try PostgresConnection(database)
        #expect(try Self.sessionsWaitForALock(2, seenBy: observer), "both writers wait, one behind the lock on tag_stats")
        try blocker.query("COMMIT")
        #expect(writing.wait(timeout: .now() + 30) == .success)
        #expect(outcomes.withLock { $0 } == Array(repeating: "\(Result<BatchWriter.Outcome, any Error>.success(.applied(exactKeys: 2, estimatedKeys: 2)))", count: 2))
        #expect(try observer.query("SELECT name FROM repositories ORDER BY name").rows == [["team/a"], ["team/b"]])
    }
}
