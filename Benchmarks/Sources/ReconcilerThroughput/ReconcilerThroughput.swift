import BenchmarkSupport
import Foundation
import PullSketchCore
import PullSketchPostgres
import PullSketchStore
import PullSketchRedis

/// Key updates per second into PostgreSQL: the reconciler's bulk path (`BatchWriter`, one
/// transaction per batch, a few `unnest` statements) next to one upsert per key (the same rows,
/// one `INSERT … ON CONFLICT` statement per key, one transaction per batch: the upstream flush
/// worker's shape, given a transaction it does not have). Same batches, same server, one run;
/// each path writes into its own fresh database.
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
        let sealed = (0..<batches).map { index in
            let tracker = PullTracker(configuration: TrackerConfiguration(isEnabled: true, hotCapacity: 1 << 20, stripeCount: 1, shardCount: 1))
            for event in workload.events[index * pullsPerBatch..<(index + 1) * pullsPerBatch] { tracker.record(event) }
            let window = tracker.drain()
            return SealedBatch(number: Int64(index + 1), parameters: window.parameters, content: window.shards[0])
        }
        let bulk = try database(server, "bench_bulk")
        let writer = BatchWriter(connection: bulk, shardCount: 1)
        let perKey = try database(server, "bench_per_key")
        let bulkRates = try sealed.map { batch in try rate(batch) { _ = try writer.write(batch) } }
        let perKeyRates = try sealed.map { batch in try rate(batch) { try upsertEachKey(batch, perKey) } }
        let keys = sealed.map(\.content.hotEntries.count).sorted()
        let bulkMedian = median(bulkRates)
        let perKeyMedian = median(perKeyRates)
        print("""
            | key updates/s into PostgreSQL (\(batches) batches of \(pullsPerBatch) pulls, median \(keys[keys.count / 2]) keys each) | bulk (unnest) | one upsert per key | ratio |
            |---|---:|---:|---:|
            | median over batches | \(Int(bulkMedian)) | \(Int(perKeyMedian)) | \(String(format: "%.1f×", bulkMedian / perKeyMedian)) |
            | slowest batch | \(Int(bulkRates.min()!)) | \(Int(perKeyRates.min()!)) | \(String(format: "%.1f×", bulkRates.min()! / perKeyRates.min()!)) |
            """)
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
        return Double(batch.content.hotEntries.count) / (Double(elapsed.components.attoseconds) / 1e18 + Double(elapsed.components.seconds))
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

    static func median(_ values: [Double]) -> Double { values.sorted()[values.count / 2] }
}
