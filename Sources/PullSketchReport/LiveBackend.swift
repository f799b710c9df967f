import PullSketchCore
import PullSketchPostgres
import PullSketchStore
import PullSketchRedis

/// An accuracy run against a real Redis and PostgreSQL: windows merged with `BatchStore.merge`,
/// batches sealed, read, written with `BatchWriter` (one transaction each, with the catalog knowing
/// every key) and deleted — the reconciler's steps without its leases and timer.
struct LiveBackend: Backend {
    private let store: BatchStore
    private let redis: any RedisCommands
    private let connection: PostgresConnection
    private let writer: BatchWriter
    private let keys: KeySpace
    private let shardCount: Int
    private let before: (commands: Int64, bytes: Int64)
    private var counted = Traffic()

    init(redis endpoint: RedisEndpoint, database: String, keys: KeySpace, shardCount: Int) throws {
        redis = try connectRedis(endpoint)
        guard try Self.everyNode(redis, ["DBSIZE"]).allSatisfy({ $0 == .integer(0) }) else {
            throw ReportError("Redis database \(endpoint.database) is not empty; --live needs an empty one")
        }
        store = BatchStore(connection: try connectRedis(endpoint), shardCount: shardCount)
        connection = try PostgresConnection(database)
        try Schema.migrate(connection)
        guard try StatisticsQueries(connection: connection).isEmpty() else {
            throw ReportError("the database already has statistics; --live needs an empty one")
        }
        try Self.fillCatalog(connection, keys: keys)
        writer = BatchWriter(connection: connection, shardCount: shardCount)
        self.keys = keys
        self.shardCount = shardCount
        before = try Self.info(redis)
    }

    /// Puts every key in the catalog, as push events would have.
    private static func fillCatalog(_ connection: PostgresConnection, keys: KeySpace) throws {
        let catalog = Catalog(connection: connection)
        for kind in KeyKind.allCases {
            var repositories: [String] = [], references: [String] = []
            keys.forEachKey(kind) { _, repository, reference in
                repositories.append(keys.repositoryName(repository))
                references.append(reference)
            }
            try catalog.register(kind, repositories: repositories, references: references)
        }
    }

    mutating func merge(_ window: Window, node: Int) throws {
        try store.merge(window, node: "report-node-\(node)")
    }

    mutating func reconcile() throws {
        let floors = try writer.lastReconciledBatches()
        for shard in 0..<shardCount { try store.seal(shard: shard, floor: floors[shard]) }
        // As the reconciler does: the shards' oldest batches first, the catalog read once for them.
        var oldest: [Int: SealedBatch] = [:]
        for shard in 0..<shardCount { oldest[shard] = try store.oldestBatch(shard: shard) }
        let candidates = try writer.catalogCandidates(for: Array(oldest.values))
        for shard in 0..<shardCount {
            for number in try store.sealedBatches(shard: shard) {
                guard let batch = try oldest[shard].flatMap({ $0.number == number ? $0 : nil }) ?? store.readBatch(shard: shard, number: number) else { continue }
                if case .applied(let exact, let estimated) = try writer.write(batch, candidates: candidates[shard]) {
                    counted.batches += 1
                    counted.rowsWritten += exact + estimated
                }
                try store.deleteBatch(shard: shard, number: number)
            }
        }
    }

    func stored() throws -> StoredTable {
        var table = StoredTable(keys: keys)
        let queries = StatisticsQueries(connection: connection)
        for kind in KeyKind.allCases {
            for row in try queries.allRows(kind) {
                guard let key = keys.index(kind, repository: row.repository, reference: row.reference) else { continue }
                table.count[kind.slot][key] = row.pullCount
                table.error[kind.slot][key] = row.pullCountError
                table.times.lastPulled[kind.slot][key] = row.lastPulledAt?.millisecondsSinceEpoch ?? .min
                table.times.lastUsed[kind.slot][key] = row.lastUsedAt?.millisecondsSinceEpoch ?? .min
            }
        }
        return table
    }

    func traffic() throws -> Traffic {
        let after = try Self.info(redis)
        var traffic = counted
        traffic.mergeCommands = Int(after.commands - before.commands)
        traffic.payloadBytes = Int(after.bytes - before.bytes)
        return traffic
    }

    /// Commands processed and bytes received, from `INFO stats` of every Redis (every master of a
    /// cluster).
    private static func info(_ redis: any RedisCommands) throws -> (commands: Int64, bytes: Int64) {
        var total: (commands: Int64, bytes: Int64) = (0, 0)
        for case .bulk(let bytes) in try everyNode(redis, ["INFO", "stats"]) {
            var values: [String: Int64] = [:]
            for line in String(decoding: bytes, as: UTF8.self).split(whereSeparator: \.isNewline) {
                let parts = line.split(separator: ":", maxSplits: 1)
                if parts.count == 2, let value = Int64(parts[1]) { values[String(parts[0])] = value }
            }
            total.commands += values["total_commands_processed"] ?? 0
            total.bytes += values["total_net_input_bytes"] ?? 0
        }
        return total
    }

    /// A command's reply from the one Redis, or from every master of a cluster.
    private static func everyNode(_ redis: any RedisCommands, _ command: [String]) throws -> [RedisReply] {
        if let cluster = redis as? RedisCluster { return try cluster.everyMaster(command) }
        return [try redis.command(command)]
    }
}

/// A run that cannot start, and why.
struct ReportError: Error, CustomStringConvertible {
    let description: String

    init(_ description: String) {
        self.description = description
    }
}
