import BenchmarkSupport
import Foundation
import PullSketchCore
import PullSketchPostgres
import PullSketchStore
import PullSketchRedis

/// PostgreSQL statements and database time per 1 M pulls for each way to keep pull statistics, on
/// the same pulls and the same server, each design in its own fresh database. Statements are
/// PostgreSQL's own count (`pg_stat_statements`, BEGIN and COMMIT included).
/// Usage: PostgresTraffic REDIS_PORT 'libpq connection string of the server (no dbname)'
@main
struct PostgresTraffic {
    static let pulls = 1_000_000
    static let nodes = 4
    static let shards = 4
    /// Pulls per merge and per reconcile pass at 5,000 pulls/s: 2 s and 5 s.
    static let mergeEvery = 10_000
    static let reconcileEvery = 25_000
    /// The per-pull designs cost the same for every pull; they run this many and are scaled to 1 M.
    static let sample = 20_000

    struct Row {
        var design: String
        var statements: Double
        var seconds: Double
        var note = ""
    }

    static func main() throws {
        guard CommandLine.arguments.count == 3, let port = Int(CommandLine.arguments[1]) else {
            print("usage: PostgresTraffic REDIS_PORT 'libpq connection string of the server (no dbname)'")
            exit(2)
        }
        let server = CommandLine.arguments[2]
        let redis = try RedisConnection(RedisEndpoint(port: port, timeout: 30))
        let workload = Workload(tags: 100_000, repositories: 100, length: pulls, method: .get, seed: 7)
        let repositories = Set(workload.events.map(\.repository.value)).sorted()
        var rows: [Row] = []

        // PullSketch: 4 nodes merge every 2 s, a reconciler seals and writes every 5 s.
        _ = try redis.command(["FLUSHALL"])
        let sketchDatabase = try database(server, "traffic_pullsketch")
        try Schema.migrate(sketchDatabase)
        let store = BatchStore(connection: redis, shardCount: shards)
        let writer = BatchWriter(connection: sketchDatabase, shardCount: shards)
        let trackers = (0..<nodes).map { _ in PullTracker(configuration: TrackerConfiguration(isEnabled: true, shardCount: shards)) }
        var writing = Duration.zero
        var batches = 0
        func reconcile() throws {
            for shard in 0..<shards {
                try store.seal(shard: shard)
                for number in try store.sealedBatches(shard: shard) {
                    guard let batch = try store.readBatch(shard: shard, number: number) else { continue }
                    let began = ContinuousClock.now
                    _ = try writer.write(batch)
                    writing += .now - began
                    batches += 1
                    try store.deleteBatch(shard: shard, number: number)
                }
            }
        }
        try reset(sketchDatabase)
        for (index, event) in workload.events.enumerated() {
            trackers[index % nodes].record(event)
            if (index + 1) % mergeEvery == 0 {
                for (node, tracker) in trackers.enumerated() { _ = try store.merge(tracker.drain(), node: "node-\(node)") }
            }
            if (index + 1) % reconcileEvery == 0 { try reconcile() }
        }
        try reconcile()
        rows.append(Row(
            design: "PullSketch: merge every 2 s, reconcile every 5 s", statements: Double(try statements(sketchDatabase)),
            seconds: writing.inSeconds, note: "\(batches) batches"
        ))
        try check(sketchDatabase, "SELECT sum(pull_count) FROM tag_stats", equals: pulls)

        // A database write per pull.
        let perPullDatabase = try database(server, "traffic_per_pull")
        try QuayTables.create(perPullDatabase, repositories: repositories)
        let perPull = try DatabasePerPullBaseline(connection: perPullDatabase)
        try reset(perPullDatabase)
        let perPullTime = try timed { for event in workload.events.prefix(sample) { try perPull.record(event) } }
        let scale = Double(pulls) / Double(sample)
        rows.append(Row(
            design: "a database write per pull (2 upserts)", statements: Double(try statements(perPullDatabase)) * scale,
            seconds: perPullTime.inSeconds * scale, note: "\(sample) pulls × \(Int(scale))"
        ))
        try check(perPullDatabase, "SELECT sum(tag_pull_count) FROM tagpullstatistics", equals: sample)

        // Quay upstream: the state 1 M EVALs leave in Redis (pipelined here; their per-pull cost is
        // RedisTraffic's), then flush-worker cycles until Redis is empty.
        _ = try redis.command(["FLUSHALL"])
        for start in stride(from: 0, to: pulls, by: 1_000) {
            _ = try redis.pipeline(workload.events[start..<min(start + 1_000, pulls)].compactMap(QuayPerPullBaseline.command(for:)))
        }
        let quayDatabase = try database(server, "traffic_quay")
        try QuayTables.create(quayDatabase, repositories: repositories)
        let worker = try QuayFlushWorkerBaseline(redis: redis, connection: quayDatabase)
        try reset(quayDatabase)
        var cycles = 0, flushed = 0
        let flushTime = try timed {
            while case let keys = try worker.cycle(), keys > 0 {
                cycles += 1
                flushed += keys
            }
        }
        let hours = Double(cycles * QuayFlushWorkerBaseline.cycleSeconds) / 3_600
        rows.append(Row(
            design: "Quay upstream: EVAL per pull, flush worker", statements: Double(try statements(quayDatabase)), seconds: flushTime.inSeconds,
            note: "\(flushed) keys in \(cycles) cycles of ≤ 1,000 = \(String(format: "%.1f", hours)) h at one cycle per 300 s"
        ))
        try check(quayDatabase, "SELECT sum(tag_pull_count) FROM tagpullstatistics", equals: pulls)

        // Audit log: one log row per pull, then the aggregation worker.
        let auditDatabase = try database(server, "traffic_audit")
        try QuayTables.create(auditDatabase, repositories: repositories)
        var audit = try AuditLogBaseline(connection: auditDatabase)
        try auditDatabase.transaction { for event in workload.events.prefix(sample) { try audit.log(event) } }
        try reset(auditDatabase)
        let auditTime = try timed { while try audit.aggregate() > 0 {} }
        rows.append(Row(
            design: "audit log: log row per pull, get-or-create worker", statements: (Double(try statements(auditDatabase)) + Double(sample)) * scale,
            seconds: auditTime.inSeconds * scale, note: "\(sample) pulls × \(Int(scale)); 1 log INSERT per pull counted, its time not"
        ))
        try check(auditDatabase, "SELECT sum(tag_pull_count) FROM tagpullstatistics", equals: sample)

        let ours = rows[0]
        print("""
            | per 1 M pulls (Zipf s = 1, 100,000 tags, 100 repositories, GET by tag) | PostgreSQL statements | database time, one client | statements ÷ PullSketch's | |
            |---|---:|---:|---:|---|
            """)
        for row in rows {
            print("| \(row.design) | \(Int(row.statements)) | \(String(format: "%.1f", row.seconds)) s | \(String(format: "%.0f", row.statements / ours.statements))× | \(row.note) |")
        }
    }

    /// Stops the run unless a design's tag counts add up to the pulls it was given.
    static func check(_ connection: PostgresConnection, _ sql: String, equals expected: Int) throws {
        let total = try connection.query(sql).rows.first?.first?.flatMap { Int($0) } ?? 0
        guard total == expected else {
            print("\(sql) gives \(total), expected \(expected)")
            exit(1)
        }
    }

    /// A fresh database on `server` with `pg_stat_statements` (the server must preload it).
    static func database(_ server: String, _ name: String) throws -> PostgresConnection {
        let connection = try freshDatabase(server, name)
        _ = try connection.query("CREATE EXTENSION pg_stat_statements")
        return connection
    }

    static func reset(_ connection: PostgresConnection) throws {
        _ = try connection.query("SELECT pg_stat_statements_reset()")
    }

    /// Statements run in this connection's database since the last reset, bookkeeping excluded.
    static func statements(_ connection: PostgresConnection) throws -> Int {
        let rows = try connection.query("""
            SELECT coalesce(sum(calls), 0) FROM pg_stat_statements
            WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database()) AND query NOT LIKE '%pg_stat_statements%'
            """).rows
        return Int(rows[0][0]!)!
    }

    static func timed(_ body: () throws -> Void) rethrows -> Duration {
        let began = ContinuousClock.now
        try body()
        return .now - began
    }
}
