import Foundation
import PullSketchCore
import PullSketchPostgres
import PullSketchReconciler
import PullSketchRedis
import PullSketchStore
import PullSketchTestSupport
import Testing

/// A statistics row, or what it must be: counters, upper-bound count, its error, last pull (ms).
struct StatsRow: Hashable, CustomStringConvertible {
    var fetches: Int64 = 0
    var checks: Int64 = 0
    var count: Int64 = 0
    var error: Int64 = 0
    var last: Int64 = .min
    var used: Int64 = .min

    var description: String { "fetches \(fetches) checks \(checks) count \(count)±\(error) last \(last) used \(used)" }
}

/// The write side of a deployment for one test: a real Redis on its own port (or a given Redis
/// Cluster), a fresh migrated database on the suite's PostgreSQL, nodes that record pulls and
/// merge them like flushers do, and the exact truth of every pull recorded.
final class Pipeline {
    static let shardCount = 4
    /// The pipeline's own Redis; nil on a cluster.
    let redis: RedisServer!
    let endpoint: RedisEndpoint
    let shards: Int
    let database: String
    let store: BatchStore
    /// The store's connection, also for the reads of reconcilers' leases and announcements.
    private let commands: any RedisCommands
    /// key `tag|repository|tag` or `manifest|repository|digest` → expected row.
    private(set) var truth: [String: StatsRow] = [:]
    private var generator: SeededGenerator
    private var clock: Int64 = 1_800_000_000_000

    init(seed: UInt64, database: String? = nil, cluster: RedisEndpoint? = nil, shards: Int = Pipeline.shardCount) throws {
        redis = cluster == nil ? try RedisServer() : nil
        endpoint = cluster ?? RedisEndpoint(port: redis.port)
        self.shards = shards
        self.database = try database ?? PostgresServer.current!.makeDatabase()
        try Schema.migrate(try PostgresConnection(self.database))
        // The pipeline's own merges and seals wait as long as the whole suite on two cores may keep
        // Redis from answering: their timeout is not what these tests are about.
        var client = endpoint
        client.timeout = 60
        commands = try connectRedis(client)
        store = BatchStore(connection: commands, shardCount: shards)
        generator = SeededGenerator(seed: seed)
    }

    static let repositories = 3

    /// `count` pulls by tag and by digest, GET and HEAD, over `tags` tags in each of 3 repositories,
    /// recorded by one node whose window is merged into Redis; by default the hot table holds every
    /// key (with room to spare in each stripe), so every count is exact.
    func pull(_ count: Int, tags: Int = 200, hotCapacity: Int? = nil) throws {
        // Sized to the keys, not generously: a table of a million slots made allocating and
        // draining it most of these suites' CPU time in a debug build.
        let keys = Self.repositories * tags * 2  // a tag and its manifest
        let capacity = hotCapacity ?? 4 * keys
        let tracker = PullTracker(configuration: TrackerConfiguration(isEnabled: true, hotCapacity: capacity, stripeCount: 2 * shards, shardCount: shards))
        try record(count, into: tracker, tags: tags)
        try store.merge(tracker.drain(), node: UUID().uuidString)
    }

    /// Records `count` pulls (as `pull` makes them) into `tracker`, which a flusher merges.
    func record(_ count: Int, into tracker: PullTracker, tags: Int = 200) throws {
        let repositories = try (0..<Self.repositories).map { try RepositoryName("team/app\($0)") }
        let tagNames = try (0..<tags).map { try TagName("v\($0)") }
        let digests = (0..<tags).map(Self.digest)
        for _ in 0..<count {
            clock += Int64.random(in: 0...3, using: &generator)
            let repository = repositories[Int.random(in: 0..<Self.repositories, using: &generator)]
            let tag = Int.random(in: 0..<tags, using: &generator)
            let digest = digests[tag]
            let byDigest = Int.random(in: 0..<4, using: &generator) == 0
            let event = PullEvent(
                repository: repository,
                reference: byDigest ? .digest(digest) : .tag(tagNames[tag]),
                method: Bool.random(using: &generator) ? .get : .head,
                servedDigest: digest,
                time: Timestamp(millisecondsSinceEpoch: clock)
            )
            record(event, into: tracker)
        }
    }

    /// Records one pull into `tracker` and into the truth.
    func record(_ event: PullEvent, into tracker: PullTracker) {
        tracker.record(event)
        let time = event.time.millisecondsSinceEpoch
        for touch in CountingRule.resolutions.touches(for: event) {
            let key = "\(touch.key.kind == .tag ? "tag" : "manifest")|\(event.repository)|\(touch.key.name)"
            var row = truth[key] ?? StatsRow()
            row.fetches += Int64(touch.effect.fetches)
            row.checks += Int64(touch.effect.checks)
            row.count += Int64(touch.effect.pulls)
            if touch.effect.pulls > 0 { row.last = max(row.last, time) }
            row.used = max(row.used, time)
            truth[key] = row
        }
    }

    /// A new connection to the test's database each time, so a PostgreSQL restart is no concern.
    var connection: PostgresConnection {
        get throws { try PostgresConnection(database) }
    }

    static func digest(_ tag: Int) -> Digest {
        let hex = String(tag, radix: 16)
        return try! Digest("sha256:" + String(repeating: "0", count: 64 - hex.count) + hex)
    }

    func reconciler(lease: Duration = .seconds(15), interval: Duration = .milliseconds(100)) -> Reconciler {
        Reconciler(
            redis: endpoint,
            database: database,
            shardCount: shards,
            configuration: ReconcilerConfiguration(interval: interval, leaseDuration: lease)
        )
    }

    /// Every statistics row, keyed like `truth`.
    func rows() throws -> [String: StatsRow] {
        var result: [String: StatsRow] = [:]
        for (table, column, kind) in [("tag_stats", "tag", "tag"), ("manifest_stats", "digest", "manifest")] {
            let query = """
                SELECT r.name, s.\(column), s.fetches, s.checks, s.pull_count, s.pull_count_error,
                    (extract(epoch from s.last_pulled_at) * 1000)::bigint, (extract(epoch from s.last_used_at) * 1000)::bigint
                FROM \(table) s JOIN repositories r ON r.id = s.repository_id
                """
            for row in try connection.query(query).rows {
                let values = row[2...].map { Int64($0 ?? "") ?? .min }
                result["\(kind)|\(row[0]!)|\(row[1]!)"] = StatsRow(
                    fetches: values[0], checks: values[1], count: values[2], error: values[3], last: values[4], used: values[5]
                )
            }
        }
        return result
    }

    /// Every key's row equals the truth, exactly; names the first keys that differ.
    func expectRowsEqualTruth(sourceLocation: SourceLocation = #_sourceLocation) throws {
        let stored = try rows()
        let wrong = truth.filter { stored[$0.key] != $0.value }.keys.sorted()
        #expect(stored.count == truth.count, "\(stored.count) rows for \(truth.count) keys", sourceLocation: sourceLocation)
        #expect(
            wrong.count == 0,
            "\(wrong.count) keys differ, e.g. \(wrong.prefix(3).map { "\($0): \(stored[$0].map(\.description) ?? "none") ≠ \(truth[$0]!)" })",
            sourceLocation: sourceLocation
        )
    }

    /// Sealed batches waiting in Redis, over all shards.
    func sealedBatchCount() throws -> Int {
        try (0..<shards).reduce(0) { $0 + (try store.sealedBatches(shard: $1)).count }
    }

    func ledgerCount() throws -> Int {
        Int(try connection.query("SELECT count(*) FROM reconciled_batches").rows[0][0]!)!
    }

    /// How many shards each reconciler holds the lease of, by owner.
    func leaseHolders() throws -> [String: Int] {
        var holders: [String: Int] = [:]
        for shard in 0..<shards {
            if case .bulk(let owner) = try commands.command(["GET", "{ps:\(shard)}:lease"]) { holders[String(decoding: owner, as: UTF8.self), default: 0] += 1 }
        }
        return holders
    }

    /// Reconcilers that announced themselves within their lease period.
    func announcedReconcilers() throws -> Int {
        guard case .integer(let count) = try commands.command(["ZCARD", "pullsketch:reconcilers"]) else { return 0 }
        return Int(count)
    }
}
