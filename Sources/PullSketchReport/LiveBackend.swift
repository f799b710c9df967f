import PullSketchCore
import PullSketchPostgres
import PullSketchReconciler
import PullSketchRedis

/// An accuracy run against a real Redis and PostgreSQL: windows merged with `BatchStore.merge`,
/// batches sealed, read, written with `BatchWriter` (one transaction each, with the catalog knowing
/// every key) and deleted — the reconciler's steps without its leases and timer.
struct LiveBackend: Backend {
    private let store: BatchStore
    private let redis: RedisConnection
    private let connection: PostgresConnection
    private let writer: BatchWriter
    private let keys: KeySpace
    private let shardCount: Int
    private let before: (commands: Int64, bytes: Int64)
    private var counted = Traffic()

    init(redis endpoint: RedisEndpoint, database: String, keys: KeySpace, shardCount: Int) throws {
        redis = try RedisConnection(endpoint)
        guard try redis.command(["DBSIZE"]) == .integer(0) else {
            throw ReportError("Redis database \(endpoint.database) is not empty; --live needs an empty one")
        }
        store = BatchStore(connection: try RedisConnection(endpoint), shardCount: shardCount)
        connection = try PostgresConnection(database)
        try Schema.migrate(connection)
        guard try connection.query("SELECT count(*) FROM repositories").rows == [["0"]] else {
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
        switch keys {
        case .synthetic(let workload):
            try connection.execute(script: """
                INSERT INTO repositories (name) SELECT '\(SyntheticWorkload.repositoryPrefix)' || r FROM generate_series(0, \(workload.repositories - 1)) r;
                INSERT INTO catalog_tags (repository_id, tag, digest)
                    SELECT r.id, 't' || k, 'sha256:' || repeat('e', 48) || lpad(to_hex(k), 16, '0')
                    FROM generate_series(0, \(workload.catalogKeys - 1)) k
                    JOIN repositories r ON r.name = '\(SyntheticWorkload.repositoryPrefix)' || (k % \(workload.repositories));
                INSERT INTO catalog_manifests (repository_id, digest) SELECT repository_id, digest FROM catalog_tags;
                """)
        case .named(let named):
            _ = try connection.query("INSERT INTO repositories (name) SELECT unnest($1::text[])", [PostgresArray.literal(named.repositories)])
            for (kind, table, column) in [(KeyKind.tag, "catalog_tags", "tag"), (KeyKind.manifest, "catalog_manifests", "digest")] {
                let entries = named.keys[kind.slot]
                _ = try connection.query(
                    """
                    INSERT INTO \(table) (repository_id, \(column))
                    SELECT r.id, k.reference FROM unnest($1::text[], $2::text[]) AS k (repository, reference) JOIN repositories r ON r.name = k.repository
                    """,
                    [PostgresArray.literal(entries.map { named.repositories[$0.repository] }), PostgresArray.literal(entries.map(\.reference))]
                )
            }
        }
    }

    mutating func merge(_ window: Window, node: Int) throws {
        try store.merge(window, node: "report-node-\(node)")
    }

    mutating func reconcile() throws {
        let floors = try writer.lastReconciledBatches()
        for shard in 0..<shardCount {
            try store.seal(shard: shard, floor: floors[shard])
            for number in try store.sealedBatches(shard: shard) {
                guard let batch = try store.readBatch(shard: shard, number: number) else { continue }
                if case .applied(let exact, let estimated) = try writer.write(batch) {
                    counted.batches += 1
                    counted.rowsWritten += exact + estimated
                }
                try store.deleteBatch(shard: shard, number: number)
            }
        }
    }

    func stored() throws -> StoredTable {
        var table = StoredTable(keys: keys)
        for (kind, statistics, column) in [(KeyKind.tag, "tag_stats", "tag"), (KeyKind.manifest, "manifest_stats", "digest")] {
            let sql = """
                SELECT r.name, s.\(column), s.pull_count, s.pull_count_error, (extract(epoch FROM s.last_pulled_at) * 1000)::bigint,
                    (extract(epoch FROM s.last_used_at) * 1000)::bigint
                FROM \(statistics) s JOIN repositories r ON r.id = s.repository_id
                """
            for row in try connection.query(sql).rows {
                guard let key = keys.index(kind, repository: row[0] ?? "", reference: row[1] ?? "") else { continue }
                table.count[kind.slot][key] = UInt64(row[2] ?? "0") ?? 0
                table.error[kind.slot][key] = UInt64(row[3] ?? "0") ?? 0
                table.times.lastPulled[kind.slot][key] = row[4].flatMap(Int64.init) ?? .min
                table.times.lastUsed[kind.slot][key] = row[5].flatMap(Int64.init) ?? .min
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

    /// Commands processed and bytes received, from Redis's `INFO stats`.
    private static func info(_ redis: RedisConnection) throws -> (commands: Int64, bytes: Int64) {
        guard case .bulk(let bytes) = try redis.command(["INFO", "stats"]) else { return (0, 0) }
        var values: [String: Int64] = [:]
        for line in String(decoding: bytes, as: UTF8.self).split(whereSeparator: \.isNewline) {
            let parts = line.split(separator: ":", maxSplits: 1)
            if parts.count == 2, let value = Int64(parts[1]) { values[String(parts[0])] = value }
        }
        return (values["total_commands_processed"] ?? 0, values["total_net_input_bytes"] ?? 0)
    }
}

/// A run that cannot start, and why.
struct ReportError: Error, CustomStringConvertible {
    let description: String

    init(_ description: String) {
        self.description = description
    }
}
