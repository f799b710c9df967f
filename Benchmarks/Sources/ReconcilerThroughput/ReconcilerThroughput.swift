import BenchmarkSupport
import Foundation
import PullSketchCore
import PullSketchPostgres
import PullSketchStore
import PullSketchRedis
import Synchronization

/// Key updates per second into PostgreSQL: the reconciler's bulk path (`BatchWriter`, one
/// transaction per batch, a few `unnest` statements) next to one upsert per key (the same rows,
/// one `INSERT … ON CONFLICT` statement per key, one transaction per batch: the upstream flush
/// worker's shape, given a transaction it does not have), and next to the bare limit: an
/// `UPDATE` adding pulls to rows that exist. Same batches, same server, one run; each path writes
/// into its own fresh database. Then two reconcilers' share of the work: the same pulls in batches
/// of two shards, each shard's batch written on its own connection, both at once, next to the bare
/// `UPDATE` on two connections at once. Last, batches into tables of 1.5 M rows, where a batch's
/// keys are more than 1 % of a table's rows: `BatchWriter` next to the bare `UPDATE` in one
/// statement per kind (how the reconciler wrote before it split them) and split as it splits.
/// Usage: ReconcilerThroughput 'host=127.0.0.1 port=… user=postgres'
@main
struct ReconcilerThroughput {
    static let batches = 12
    /// Pulls per batch: twice what quay.io's 5,000 pulls/s bring in one 5 s reconcile interval.
    static let pullsPerBatch = 50_000

    static func main() throws {
        guard CommandLine.arguments.count == 2 else {
            print("usage: ReconcilerThroughput 'libpq connection string of the server (no dbname)'")
            exit(2)
        }
        let server = CommandLine.arguments[1]
        let workload = Workload(tags: 100_000, repositories: 100, length: batches * pullsPerBatch, method: .get, seed: 11)
        let sealed = sealedBatches(workload, shards: 1).map { $0[0] }
        let bulk = try database(server, "bench_bulk")
        let writer = BatchWriter(connection: bulk, shardCount: 1)
        let perKey = try database(server, "bench_per_key")
        let bare = try database(server, "bench_bare")
        let bulkRates = try sealed.map { batch in try rate(batch) { _ = try writer.write(batch) } }
        // The same batches again under new numbers: every key known, a running reconciler's state.
        let again = sealed.map { SealedBatch(number: $0.number + Int64(batches), parameters: $0.parameters, content: $0.content) }
        let steadyRates = try again.map { batch in try rate(batch) { _ = try writer.write(batch) } }
        let perKeyRates = try sealed.map { batch in try rate(batch) { try upsertEachKey(batch, perKey) } }
        for batch in sealed { _ = try BatchWriter(connection: bare, shardCount: 1).write(batch) }
        let bareRates = try sealed.map { batch in try rate(batch) { try addPullsInPlace(batch, bare) } }
        let keys = sealed.map(\.content.hotEntries.count).sorted()
        func row(_ name: String, _ rates: [Double]) -> String {
            "| \(name) | \(Int(median(rates))) | \(Int(rates.min()!)) | \(String(format: "%.2f×", median(rates) / median(bulkRates))) |"
        }
        print("""
            | key updates/s into PostgreSQL (\(batches) batches of \(pullsPerBatch) pulls, median \(keys[keys.count / 2]) keys each) | median batch | slowest batch | ÷ bulk, first pass |
            |---|---:|---:|---:|
            \(row("PullSketch bulk (`BatchWriter`), first pass: new keys inserted", bulkRates))
            \(row("PullSketch bulk, the same batches again: every key known", steadyRates))
            \(row("baseline: one upsert per key, first pass", perKeyRates))
            \(row("bare limit: one `UPDATE … FROM unnest` per kind adding pulls to existing rows", bareRates))
            """)
        try writeTwoShardsAtOnce(workload, server)
        try writeIntoMidSizeTables(server)
    }

    /// Per batch index, one sealed batch per shard of the same pulls.
    static func sealedBatches(_ workload: Workload, shards: Int) -> [[SealedBatch]] {
        (0..<batches).map { index in
            let tracker = PullTracker(configuration: TrackerConfiguration(isEnabled: true, hotCapacity: 1 << 20, stripeCount: shards, shardCount: shards))
            for event in workload.events[index * pullsPerBatch..<(index + 1) * pullsPerBatch] { tracker.record(event) }
            let window = tracker.drain()
            return window.shards.map { SealedBatch(number: Int64(index + 1), parameters: window.parameters, content: $0) }
        }
    }

    /// Two reconcilers each holding one of two shards: every batch's two shards written at once,
    /// each by its own `BatchWriter` on its own connection; the bare `UPDATE` likewise.
    static func writeTwoShardsAtOnce(_ workload: Workload, _ server: String) throws {
        let split = sealedBatches(workload, shards: 2)
        _ = try database(server, "bench_parallel")
        // Each writer and connection is used by its shard's thread only.
        nonisolated(unsafe) let writers = try (0..<2).map { _ in BatchWriter(connection: try PostgresConnection(server + " dbname=bench_parallel"), shardCount: 2) }
        let firstRates = try split.map { shards in try rateAtOnce(shards) { _ = try writers[$0].write(shards[$0]) } }
        let again = split.map { $0.map { SealedBatch(number: $0.number + Int64(batches), parameters: $0.parameters, content: $0.content) } }
        let steadyRates = try again.map { shards in try rateAtOnce(shards) { _ = try writers[$0].write(shards[$0]) } }
        let bare = try database(server, "bench_bare_parallel")
        for shards in split { for batch in shards { _ = try BatchWriter(connection: bare, shardCount: 2).write(batch) } }
        nonisolated(unsafe) let bareConnections = try (0..<2).map { _ in try PostgresConnection(server + " dbname=bench_bare_parallel") }
        let bareRates = try split.map { shards in try rateAtOnce(shards) { try addPullsInPlace(shards[$0], bareConnections[$0]) } }
        func row(_ name: String, _ rates: [Double]) -> String {
            "| \(name) | \(Int(median(rates))) | \(Int(rates.min()!)) | \(String(format: "%.2f×", median(rates) / median(bareRates))) |"
        }
        print("""
            | key updates/s, each batch's 2 shards written at once on 2 connections | median batch | slowest batch | ÷ bare, 2 connections |
            |---|---:|---:|---:|
            \(row("PullSketch bulk, 2 writers, first pass: new keys inserted", firstRates))
            \(row("PullSketch bulk, 2 writers, every key known", steadyRates))
            \(row("bare limit on 2 connections at once", bareRates))
            """)
    }

    static let midSizeTags = 1_500_000
    static let midSizeBatches = 8
    static let midSizePulls = 20_000

    /// Batches of `midSizePulls` GETs by tag of tags drawn from all `midSizeTags` of tables held in
    /// memory, where one statement per kind names 1.3 % of a table's rows: written alternately by
    /// `BatchWriter`, by the bare `UPDATE` in one statement per kind, and by the bare `UPDATE` in
    /// statements of `StatisticsTableSizes.keysPerStatement` keys; and the plan PostgreSQL chose for each.
    static func writeIntoMidSizeTables(_ server: String) throws {
        let connection = try database(server, "bench_mid")
        let loading = ContinuousClock.now
        try connection.execute(script: """
            SET maintenance_work_mem = '512MB';
            SELECT setseed(0.17);
            INSERT INTO repositories (name) SELECT 'mid/repo' || r FROM generate_series(1, 1000) r;
            INSERT INTO tag_stats (repository_id, tag, fetches, pull_count, last_pulled_at, current_digest)
                SELECT r.id, 't' || t, 1, 1, now() - interval '1 day' * random() * 365, 'sha256:' || md5(r.id || ':' || t) || md5(t || ':' || r.id)
                FROM repositories r CROSS JOIN generate_series(1, \(midSizeTags / 1_000)) t ORDER BY random();
            INSERT INTO manifest_stats (repository_id, digest, fetches, pull_count, last_pulled_at)
                SELECT repository_id, current_digest, 1, 1, last_pulled_at FROM tag_stats ORDER BY random();
            """)
        try connection.query("VACUUM ANALYZE repositories, tag_stats, manifest_stats")
        try connection.execute(script: """
            CREATE EXTENSION IF NOT EXISTS pg_prewarm;
            SELECT pg_prewarm(c.oid) FROM pg_class c WHERE c.relname IN ('tag_stats', 'manifest_stats', 'tag_stats_pkey', 'manifest_stats_pkey');
            """)
        let loaded = (ContinuousClock.now - loading).inSeconds
        let writer = BatchWriter(connection: connection, shardCount: 1)
        let split = { (keys: Int) in StatisticsTableSizes.keysPerStatement(keys: keys, tableRows: midSizeTags) }
        var writerRates: [Double] = [], oneRates: [Double] = [], splitRates: [Double] = []
        var plans: (one: String, split: String)?
        let sampleRate = String(format: "%.4f", Double(midSizePulls) * 105 / Double(midSizeTags))
        for number in 1...midSizeBatches * 3 {
            let batch = try sampledBatch(
                number: Int64(number),
                """
                SELECT r.name, t.tag, t.current_digest FROM tag_stats t TABLESAMPLE BERNOULLI (\(sampleRate))
                JOIN repositories r ON r.id = t.repository_id LIMIT \(midSizePulls)
                """,
                from: connection, pulls: midSizePulls, time: Timestamp(millisecondsSinceEpoch: 1_800_000_000_000)
            )
            if plans == nil {
                plans = (try planOfBareUpdate(batch, connection, keysPerStatement: nil), try planOfBareUpdate(batch, connection, keysPerStatement: split))
            }
            switch number % 3 {
            case 0: writerRates.append(try rate(batch) { _ = try writer.write(batch) })
            case 1: oneRates.append(try rate(batch) { try addPullsInPlace(batch, connection) })
            default: splitRates.append(try rate(batch) { try addPullsInPlace(batch, connection, keysPerStatement: split) })
            }
        }
        func row(_ name: String, _ rates: [Double], plan: String) -> String {
            "| \(name) | \(Int(median(rates))) | \(Int(rates.min()!)) | \(plan) | \(String(format: "%.2f×", median(rates) / median(oneRates))) |"
        }
        let keys = split(midSizePulls)
        print("""
            | key updates/s into \(Double(midSizeTags) / 1_000_000) M tag and as many manifest rows, held in memory (loaded in \(Int(loaded)) s), \(midSizeBatches) batches each of \(midSizePulls) GETs by tag | median batch | slowest batch | the tags' plan | ÷ one statement |
            |---|---:|---:|---|---:|
            \(row("PullSketch bulk (`BatchWriter`): statements of \(keys) keys", writerRates, plan: ""))
            \(row("bare `UPDATE … FROM unnest`, one statement per kind (how the reconciler wrote before)", oneRates, plan: plans!.one))
            \(row("the same bare `UPDATE` in statements of \(keys) keys", splitRates, plan: plans!.split))
            """)
    }

    /// The join PostgreSQL chose for the bare `UPDATE` of the batch's tags (its first statement when split).
    static func planOfBareUpdate(_ batch: SealedBatch, _ connection: PostgresConnection, keysPerStatement: ((Int) -> Int)?) throws -> String {
        let entries = batch.content.hotEntries.filter { $0.key.kind == .tag }
        let part = Array(entries.prefix(keysPerStatement?(entries.count) ?? entries.count))
        let plan = try connection.query("EXPLAIN " + bareUpdate(table: "tag_stats", column: "tag"), bareArrays(part)).rows.map { $0[0]! }
        let join = plan.first { $0.contains("Join") || $0.contains("Nested Loop") } ?? "?"
        return join.replacingOccurrences(of: "->", with: "").trimmingCharacters(in: .whitespaces).components(separatedBy: "  (")[0]
    }

    /// Key updates per second of writing every shard's batch at once, each on a thread of its own.
    static func rateAtOnce(_ shards: [SealedBatch], _ write: @Sendable (Int) throws -> Void) throws -> Double {
        let failures = Mutex<[String]>([])
        let began = ContinuousClock.now
        DispatchQueue.concurrentPerform(iterations: shards.count) { shard in
            do { try write(shard) } catch { failures.withLock { $0.append("\(error)") } }
        }
        let elapsed = ContinuousClock.now - began
        if let failure = failures.withLock({ $0.first }) { throw BenchmarkFailure(failure) }
        let keys = shards.map(\.content.hotEntries.count).reduce(0, +)
        return Double(keys) / elapsed.inSeconds
    }

    /// A fresh, migrated database on `server`.
    static func database(_ server: String, _ name: String) throws -> PostgresConnection {
        let connection = try freshDatabase(server, name)
        try Schema.migrate(connection)
        return connection
    }

    /// Key updates per second of `write` for `batch`.
    static func rate(_ batch: SealedBatch, _ write: () throws -> Void) throws -> Double {
        let began = ContinuousClock.now
        try write()
        let elapsed = ContinuousClock.now - began
        return Double(batch.content.hotEntries.count) / elapsed.inSeconds
    }

    /// The baseline: every hot entry as its own upsert statement.
    static func upsertEachKey(_ batch: SealedBatch, _ connection: PostgresConnection) throws {
        try connection.transaction {
            for entry in batch.content.hotEntries {
                try connection.query("INSERT INTO repositories (name) VALUES ($1) ON CONFLICT (name) DO NOTHING", [entry.key.repository.value])
                let (table, column) = entry.key.kind == .tag ? ("tag_stats", "tag") : ("manifest_stats", "digest")
                try connection.query(
                    """
                    INSERT INTO \(table) AS s (repository_id, \(column), fetches, checks, pull_count, last_pulled_at, last_used_at)
                    SELECT id, $2, $3, $4, $5, to_timestamp($6::bigint / 1000.0), to_timestamp($7::bigint / 1000.0)
                    FROM repositories WHERE name = $1
                    ON CONFLICT (repository_id, \(column)) DO UPDATE SET
                        fetches = s.fetches + EXCLUDED.fetches, checks = s.checks + EXCLUDED.checks,
                        pull_count = s.pull_count + EXCLUDED.pull_count,
                        last_pulled_at = GREATEST(s.last_pulled_at, EXCLUDED.last_pulled_at),
                        last_used_at = GREATEST(s.last_used_at, EXCLUDED.last_used_at), updated_at = now()
                    """,
                    [
                        entry.key.repository.value, entry.key.name, String(entry.fetches), String(entry.checks), String(entry.pulls),
                        entry.pulls > 0 ? String(entry.lastPulled.millisecondsSinceEpoch) : nil, String(entry.lastUsed.millisecondsSinceEpoch),
                    ]
                )
            }
        }
    }

    /// The bare operation under any writer of these rows: one `UPDATE` per kind that finds each
    /// existing row by its primary key and adds the batch's pulls (no times, no catalog, no
    /// conflict handling), in one transaction, its arrays in binary as the reconciler sends them;
    /// or, given `keysPerStatement` (of a kind's keys), one per so many keys.
    static func addPullsInPlace(_ batch: SealedBatch, _ connection: PostgresConnection, keysPerStatement: ((Int) -> Int)? = nil) throws {
        try connection.transaction {
            for kind in KeyKind.allCases {
                let entries = batch.content.hotEntries.filter { $0.key.kind == kind }
                let perStatement = max(1, keysPerStatement?(entries.count) ?? entries.count)
                let statement = kind == .tag ? bareUpdate(table: "tag_stats", column: "tag") : bareUpdate(table: "manifest_stats", column: "digest")
                for first in stride(from: 0, to: entries.count, by: perStatement) {
                    try connection.query(statement, bareArrays(Array(entries[first..<min(first + perStatement, entries.count)])))
                }
            }
        }
    }

    static func bareUpdate(table: String, column: String) -> String {
        """
        UPDATE \(table) s SET pull_count = s.pull_count + u.pulls
        FROM unnest($1::text[], $2::text[], $3::bigint[]) AS u(repository, reference, pulls)
        JOIN repositories r ON r.name = u.repository
        WHERE s.repository_id = r.id AND s.\(column) = u.reference
        """
    }

    static func bareArrays(_ entries: [HotEntry]) -> [PostgresParameter] {
        [
            PostgresArray.binary(entries.map(\.key.repository.value)), PostgresArray.binary(entries.map(\.key.name)),
            PostgresArray.binary(entries.map(\.pulls)),
        ]
    }

    static func median(_ values: [Double]) -> Double { values.sorted()[values.count / 2] }
}
