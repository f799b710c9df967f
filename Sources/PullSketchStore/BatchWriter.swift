public import PullSketchCore
public import PullSketchPostgres

/// Statistics kept in step elsewhere (Quay's own tables): called inside each batch's transaction,
/// after the batch's rows were written, with every key the batch changed and the statistics
/// tables' sizes the batch's statements share. A projection that throws rolls the batch back, so
/// it is retried whole.
public protocol StatisticsProjection {
    func project(_ keys: [PullKey], statistics: PostgresConnection, sizes: StatisticsTableSizes) throws
}

/// Writes one sealed batch into PostgreSQL in one transaction: exact entries, the tail keys the
/// batch names registered in the catalog, tail estimates with their error bound, the pulls of
/// unnamed tail keys as unattributed, the projection if any, the ledger row and the last window
/// of each node the batch holds. A batch the ledger already has changes nothing, and so does
/// one holding a node window PostgreSQL already has (a copy that came back with an older Redis). Pulls arrive already counted by the tracker's rule; nothing
/// here knows it.
public struct BatchWriter {
    /// What became of a batch.
    public enum Outcome: Hashable, Sendable {
        case applied(exactKeys: Int, estimatedKeys: Int)
        case alreadyReconciled
        /// The batch holds node windows an earlier batch brought already: Redis went back to an
        /// older state after that batch was sealed. Nothing was written; its parts cannot be told
        /// apart, so the shard must be rewound (`BatchStore.rewind`) and the nodes send them again.
        case holdsReconciledWindows
    }

    /// The deployment's shard count: a shard's batch estimates only the keys of that shard.
    public let shardCount: Int
    let connection: PostgresConnection
    private let projection: (any StatisticsProjection)?

    public init(connection: PostgresConnection, shardCount: Int, projection: (any StatisticsProjection)? = nil) {
        self.connection = connection
        self.shardCount = shardCount
        self.projection = projection
    }

    /// `candidates`: the catalog keys read for this batch before its transaction
    /// (`catalogCandidates(for:)`); without them, or when they were read for another batch, the
    /// batch reads the catalog itself.
    public func write(_ batch: SealedBatch, candidates: CatalogCandidates? = nil) throws -> Outcome {
        let candidates = candidates.flatMap { $0.shard == batch.content.shard && $0.batch == batch.number ? $0 : nil }
        return try connection.transaction {
            let content = batch.content
            let epsilon = batch.parameters?.epsilon ?? 0
            let delta = batch.parameters?.delta ?? 0
            // The ledger row, and in the same round trip the start of live counting if this is its
            // first batch (`PullKnowledge`).
            let ledger = try connection.query(
                """
                WITH live AS (\(PullKnowledge.recordLiveCounting(when: "$7::boolean")))
                INSERT INTO reconciled_batches (shard, batch, pulls, tail_mass, epsilon, delta)
                VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING RETURNING 1
                """,
                [String(content.shard), String(batch.number), String(content.pulls), String(content.tailMass), String(epsilon), String(delta),
                 String(batch.holdsLivePulls)]
            )
            guard !ledger.rows.isEmpty else { return .alreadyReconciled }
            guard try recordWindows(batch) else {
                try connection.query("DELETE FROM reconciled_batches WHERE shard = $1 AND batch = $2", [String(content.shard), String(batch.number)])
                return .holdsReconciledWindows
            }
            try upsertRepositories(of: content)
            let sizes = StatisticsTableSizes(connection)
            try writeExact(content.hotEntries, sizes: sizes)
            try registerTailNames(content.tailNames)
            try recordUnattributed(content)
            let estimated = try writeEstimates(batch, candidates: candidates, keepingKeys: projection != nil)
            try projection?.project(content.hotEntries.map(\.key) + estimated.keys, statistics: connection, sizes: sizes)
            return .applied(exactKeys: content.hotEntries.count, estimatedKeys: estimated.count)
        }
    }

    /// Raises each node's last reconciled window on the batch's shard to the batch's last; false,
    /// changing nothing, when a window of the batch is reconciled already.
    private func recordWindows(_ batch: SealedBatch) throws -> Bool {
        guard !batch.windows.isEmpty else { return true }
        let windows = batch.windows.sorted { $0.key < $1.key }
        let nodes = PostgresArray.literal(windows.map(\.key))
        let shard = String(batch.content.shard)
        let seen = try connection.query(
            """
            SELECT 1 FROM unnest($2::text[], $3::bigint[]) AS b(node, first)
            JOIN reconciled_windows w ON w.shard = $1 AND w.node = b.node AND w.sequence >= b.first LIMIT 1
            """,
            [shard, nodes, PostgresArray.literal(windows.map(\.value.lowerBound))]
        )
        guard seen.rows.isEmpty else { return false }
        try connection.query(
            """
            INSERT INTO reconciled_windows (shard, node, sequence) SELECT $1, node, last FROM unnest($2::text[], $3::bigint[]) AS b(node, last)
            ON CONFLICT (shard, node) DO UPDATE SET sequence = EXCLUDED.sequence, reconciled_at = now()
            """,
            [shard, nodes, PostgresArray.literal(windows.map(\.value.upperBound))]
        )
        return true
    }

    /// Node id → the last window sequence PostgreSQL holds on `shard`.
    public func reconciledWindows(shard: Int) throws -> [String: UInt64] {
        let rows = try connection.query("SELECT node, sequence FROM reconciled_windows WHERE shard = $1", [String(shard)]).namedRows
        return Dictionary(uniqueKeysWithValues: try rows.map { (try $0.decode("node", as: String.self), try $0.decode("sequence", as: UInt64.self)) })
    }

    /// Keeps a batch that could not be read or written — its keys as they were (`content`, JSON) and
    /// why — for an operator; a second call replaces it.
    public func recordQuarantine(shard: Int, batch: Int64, reason: String, content: [UInt8]) throws {
        try connection.query(
            """
            INSERT INTO quarantined_batches (shard, batch, reason, content) VALUES ($1, $2, $3, $4::jsonb)
            ON CONFLICT (shard, batch) DO UPDATE SET reason = EXCLUDED.reason, content = EXCLUDED.content, quarantined_at = now()
            """,
            [String(shard), String(batch), reason, String(decoding: content, as: UTF8.self)]
        )
    }

    /// The highest batch number the ledger (or the quarantine) has for each shard `0..<shardCount`
    /// (0 for none): the floor for the next seal, so a Redis that lost its data never reuses a
    /// reconciled or quarantined number.
    public func lastReconciledBatches() throws -> [Int64] {
        try connection.query(
            """
            SELECT greatest(
                coalesce((SELECT max(batch) FROM reconciled_batches WHERE shard = s), 0),
                coalesce((SELECT max(batch) FROM quarantined_batches WHERE shard = s), 0)) AS floor
            FROM generate_series(0, $1::integer - 1) AS s ORDER BY s
            """,
            [String(shardCount)]
        ).namedRows.map { try $0.decode("floor", as: Int64.self) }
    }

    /// Deletes ledger rows reconciled before `cutoff`, keeping each shard's newest (the seal floor),
    /// and the last windows of nodes that merged nothing since. A batch is deleted from Redis right
    /// after its commit and a node's windows are forgotten by Redis's ledger after a day, so an old
    /// row guards nothing. The windows of history imports (`import:` nodes) are kept: they are the
    /// ledger of what each source has imported, one row per shard and source.
    @discardableResult
    public func forgetLedger(reconciledBefore cutoff: Timestamp) throws -> Int {
        let cutoff = String(cutoff.millisecondsSinceEpoch)
        let batches = try connection.query(
            """
            DELETE FROM reconciled_batches l WHERE reconciled_at < \(PostgresTime.timestamp(milliseconds: "$1::bigint"))
                AND batch < (SELECT max(batch) FROM reconciled_batches m WHERE m.shard = l.shard)
            """,
            [cutoff]
        ).affected
        try connection.query(
            "DELETE FROM reconciled_windows WHERE reconciled_at < \(PostgresTime.timestamp(milliseconds: "$1::bigint")) AND node NOT LIKE '\(PullKnowledge.importNodePrefix)%'", [cutoff]
        )
        return batches
    }

    /// The assignments that raise a statistics row `s`'s time column `<time>_at` to the incoming
    /// row `n`'s (NULL: no time) and set `<time>_exact`: an exact time that wins is exact; an
    /// estimated time that is later than the stored one makes it inexact.
    private static func raise(_ time: String, exact: Bool, from n: String = "EXCLUDED") -> String {
        let marks = exact
            ? "WHEN s.\(time)_at IS NULL OR \(n).\(time)_at >= s.\(time)_at THEN true"
            : "WHEN s.\(time)_at IS NULL OR \(n).\(time)_at > s.\(time)_at THEN false"
        return """
            \(time)_exact = CASE WHEN \(n).\(time)_at IS NULL THEN s.\(time)_exact \(marks) ELSE s.\(time)_exact END,
            \(time)_at = GREATEST(s.\(time)_at, \(n).\(time)_at)
            """
    }

    /// The assignments that add a batch's exact counts in row `n` to a statistics row `s`, raise
    /// its times and, for a tag, move it to the newer current digest.
    private static func addExactCounts(_ kind: KeyKind, from n: String) -> String {
        let digest = kind == .manifest ? "" : """
            current_digest = CASE WHEN \(n).current_digest IS NOT NULL AND (s.current_digest_at IS NULL
                OR \(n).current_digest_at >= s.current_digest_at) THEN \(n).current_digest ELSE s.current_digest END,
            current_digest_at = GREATEST(s.current_digest_at, \(n).current_digest_at),
            """
        return """
            fetches = s.fetches + \(n).fetches, checks = s.checks + \(n).checks, pull_count = s.pull_count + \(n).pull_count,
            \(raise("last_pulled", exact: true, from: n)),
            \(raise("last_used", exact: true, from: n)),
            \(digest)
            updated_at = now()
            """
    }

    /// Adds exact counts and raises last-pulled and last-used times, per kind: `UPDATE`s of the
    /// rows that exist (most of them, once a deployment runs; in parts on a large table,
    /// `StatisticsTableSizes`), then, only for the keys they did not find, an upsert that
    /// registers them in the catalog too. A key with a statistics row has a catalog row already
    /// (schema version 7), so updated keys never touch the catalog.
    ///
    /// A partitioned table gets the upsert alone, for every key: it sends each row to its
    /// partition and finds it by that partition's primary key, where PostgreSQL 15 plans an
    /// `UPDATE` joining the keys as a hash join reading every partition whole — on 3 M rows a
    /// statement of 15,000 keys took 1.1–1.5 s that way and 0.3 s as this upsert (docs/decisions.md).
    private func writeExact(_ entries: [HotEntry], sizes: StatisticsTableSizes) throws {
        for kind in KeyKind.allCases {
            let entries = entries.filter { $0.key.kind == kind }
            guard !entries.isEmpty else { continue }
            if try sizes.isPartitioned(kind) {
                try upsertRows(ExactInput(entries, kind: kind))
                continue
            }
            var updated = Set<Int>()
            for part in try sizes.statementRanges(entries.count, of: kind) {
                updated.formUnion(try addToExistingRows(ExactInput(Array(entries[part]), kind: kind)).map { part.lowerBound + $0 })
            }
            guard updated.count < entries.count else { continue }
            try upsertRows(ExactInput(entries.indices.filter { !updated.contains($0) }.map { entries[$0] }, kind: kind))
        }
    }

    /// Adds the entries to the rows they have; returns the indexes of the entries it found a row for.
    private func addToExistingRows(_ input: ExactInput) throws -> Set<Int> {
        try connection.withBinaryResult(
            """
            UPDATE \(input.table) AS s SET \(Self.addExactCounts(input.kind, from: "n"))
            FROM (\(input.select)) AS n WHERE s.repository_id = n.repository_id AND s.\(input.column) = n.\(input.column)
            RETURNING n.entry
            """,
            input.arrays
        ) { rows in
            let entry = try rows.column("entry", .int8)
            return Set(try (0..<rows.count).map { Int(try rows.uint64($0, entry)) - 1 })
        }
    }

    /// Inserts rows for entries that have none, with their keys into the catalog, and adds to the
    /// rows of those that have one (a row another writer inserted since `addToExistingRows`
    /// looked; every row, on a partitioned table).
    private func upsertRows(_ input: ExactInput) throws {
        let isTag = input.kind == .tag
        let digestColumns = isTag ? ", current_digest, current_digest_at" : ""
        let catalog = isTag ? "catalog_tags (repository_id, tag, digest)" : "catalog_manifests (repository_id, digest)"
        try connection.query(
            """
            WITH inserted AS (
                INSERT INTO \(input.table) AS s (repository_id, \(input.column), fetches, checks, pull_count, last_pulled_at, last_pulled_exact,
                    last_used_at, last_used_exact\(digestColumns))
                SELECT repository_id, \(input.column), fetches, checks, pull_count, last_pulled_at, true, last_used_at, true\(digestColumns)
                FROM (\(input.select)) AS n
                ORDER BY repository_id, \(input.column)
                ON CONFLICT (repository_id, \(input.column)) DO UPDATE SET \(Self.addExactCounts(input.kind, from: "EXCLUDED"))
                RETURNING repository_id, \(input.column)\(isTag ? ", current_digest" : "")
            )
            INSERT INTO \(catalog) SELECT * FROM inserted ON CONFLICT DO NOTHING
            """,
            input.arrays
        )
    }

    /// Exact entries of one kind as a statement's input: their arrays in binary, and the `SELECT`
    /// that turns them into rows of the statistics table's columns, each with its `entry` number
    /// (1 for the first entry).
    private struct ExactInput {
        let kind: KeyKind
        let arrays: [PostgresParameter]

        init(_ entries: [HotEntry], kind: KeyKind) {
            self.kind = kind
            var arrays = [
                PostgresArray.binary(entries.map(\.key.repository.value)), PostgresArray.binary(entries.map(\.key.name)),
                PostgresArray.binary(entries.map(\.fetches)), PostgresArray.binary(entries.map(\.checks)),
                PostgresArray.binary(entries.map(\.pulls)),
                PostgresArray.binary(entries.map { $0.lastPulled == .distantPast ? nil : $0.lastPulled.millisecondsSinceEpoch }),
                PostgresArray.binary(entries.map(\.lastUsed.millisecondsSinceEpoch)),
            ]
            if kind == .tag {
                // A tag also carries the digest it served and when.
                arrays += [
                    PostgresArray.binary(entries.map { $0.currentDigest?.value }),
                    PostgresArray.binary(entries.map(\.currentDigestAt.millisecondsSinceEpoch)),
                ]
            }
            self.arrays = arrays
        }

        var table: String { kind == .tag ? "tag_stats" : "manifest_stats" }
        var column: String { kind == .tag ? "tag" : "digest" }

        var select: String {
            let isTag = kind == .tag
            let digestArrays = isTag ? ", $8::text[], $9::bigint[]" : ""
            let digestFields = isTag ? ", digest, digest_ms" : ""
            let digestInput = isTag
                ? ", u.digest AS current_digest, CASE WHEN u.digest IS NULL THEN NULL ELSE \(PostgresTime.timestamp(milliseconds: "u.digest_ms")) END AS current_digest_at"
                : ""
            return """
                SELECT u.entry, r.id AS repository_id, u.reference AS \(column), u.fetches, u.checks, u.pulls AS pull_count,
                    \(PostgresTime.timestamp(milliseconds: "u.pulled_ms")) AS last_pulled_at, \(PostgresTime.timestamp(milliseconds: "u.used_ms")) AS last_used_at\(digestInput)
                FROM unnest($1::text[], $2::text[], $3::bigint[], $4::bigint[], $5::bigint[], $6::bigint[], $7::bigint[]\(digestArrays))
                    WITH ORDINALITY AS u(repository, reference, fetches, checks, pulls, pulled_ms, used_ms\(digestFields), entry)
                JOIN repositories r ON r.name = u.repository
                """
        }
    }

    /// Estimates the keys the batch's tail covers (`TailEstimator`), those it names and the
    /// catalog's keys of repositories whose tail keys it could not all name: adds their pulls with
    /// the error bound and raises their times as inexact, never earlier than the truth. A key used
    /// without pulls gets only its last-used time. The sketch counts pulls, not requests: fetches
    /// and checks keep what exact batches counted, and `counters_exact` says they are incomplete.
    /// The catalog keys are `candidates` when they were read before the transaction, else read
    /// here (`CatalogScan`); the estimates are written `CatalogScan.keysPerStatement` keys at a time,
    /// so the catalog is never held whole, however many keys a repository (or, on a tail-table
    /// overflow, the registry) holds. Returns how many keys were estimated, and which when
    /// `keepingKeys` (for the projection, which then holds the estimated keys, not the catalog's).
    private func writeEstimates(_ batch: SealedBatch, candidates: CatalogCandidates?, keepingKeys: Bool) throws -> (count: Int, keys: [PullKey]) {
        guard let estimator = try TailEstimator(batch.content, parameters: batch.parameters, shardCount: shardCount) else { return (0, []) }
        let scan = candidates == nil ? try CatalogScan([batch.content.shard: estimator], shardCount: shardCount, connection: connection) : nil
        var estimated = 0
        var estimatedKeys: [PullKey] = []
        for kind in KeyKind.allCases {
            var pending = PendingEstimates()
            func estimate(_ key: CatalogKey, _ hash: KeyHash, isNamed: Bool) throws {
                guard let estimate = estimator.estimate(hash, repository: key.repository, isNamed: isNamed) else { return }
                if keepingKeys, let key = try? PullKey(kind: kind, repository: key.repository, reference: key.name) { estimatedKeys.append(key) }
                pending.append(key, estimate)
                estimated += 1
                if pending.count == CatalogScan.keysPerStatement { try write(&pending, kind: kind) }
            }
            // A named key was used in the batch, whatever the catalog says of it; it is estimated
            // once, with the named keys, not again when the catalog lists it.
            let namedKeys = Set(batch.content.tailNames.filter { $0.kind == kind }.map { CatalogKey(repository: $0.repository.value, name: $0.name) })
            if let scan {
                try scan.forEachCandidate(kind) { _, key, hash in
                    if !namedKeys.contains(key) { try estimate(key, hash, isNamed: false) }
                }
            } else if let candidates {
                var unnamed = Set<CatalogKey>()
                for (key, hash) in candidates.keys[kind] ?? [] where !namedKeys.contains(key) && unnamed.insert(key).inserted {
                    try estimate(key, hash, isNamed: false)
                }
                // The batch's exact keys new to the catalog came after the read.
                let read = estimator.catalogRepositories.map(Set.init)
                for entry in batch.content.hotEntries where entry.key.kind == kind && read?.contains(entry.key.repository.value) != false {
                    let key = CatalogKey(repository: entry.key.repository.value, name: entry.key.name)
                    let hash = KeyHash(kind: kind, repository: key.repository, reference: key.name, seed: estimator.seed)
                    if estimator.mayHaveUsedUnnamed(hash), !namedKeys.contains(key), unnamed.insert(key).inserted {
                        try estimate(key, hash, isNamed: false)
                    }
                }
            }
            for key in namedKeys.sorted() {
                try estimate(key, KeyHash(kind: kind, repository: key.repository, reference: key.name, seed: estimator.seed), isNamed: true)
            }
            try write(&pending, kind: kind)
        }
        return (estimated, estimatedKeys)
    }

    /// Estimates waiting to be written, as the arrays of one statement.
    private struct PendingEstimates {
        var names: [String] = [], references: [String] = [], counts: [UInt64] = [], errors: [UInt64] = []
        var pulled: [Int64?] = [], used: [Int64] = []

        var count: Int { names.count }

        mutating func append(_ key: CatalogKey, _ estimate: TailEstimator.Estimate) {
            names.append(key.repository)
            references.append(key.name)
            counts.append(estimate.pulls)
            errors.append(estimate.error)
            pulled.append(estimate.lastPulled?.millisecondsSinceEpoch)
            used.append(estimate.lastUsed.millisecondsSinceEpoch)
        }
    }

    /// Adds the pending estimates to their keys' statistics and empties `pending`.
    private func write(_ pending: inout PendingEstimates, kind: KeyKind) throws {
        guard pending.count > 0 else { return }
        defer { pending = PendingEstimates() }
        let column = kind == .tag ? "tag" : "digest"
        try connection.query(
            """
            INSERT INTO \(kind == .tag ? "tag_stats" : "manifest_stats") AS s (repository_id, \(column), pull_count,
                pull_count_error, last_pulled_at, last_pulled_exact, last_used_at, last_used_exact, counters_exact)
            SELECT r.id, u.reference, u.estimate, u.error, \(PostgresTime.timestamp(milliseconds: "u.pulled_ms")), u.pulled_ms IS NULL,
                \(PostgresTime.timestamp(milliseconds: "u.used_ms")), false, false
            FROM unnest($1::text[], $2::text[], $3::bigint[], $4::bigint[], $5::bigint[], $6::bigint[])
                AS u(repository, reference, estimate, error, pulled_ms, used_ms)
            JOIN repositories r ON r.name = u.repository
            ON CONFLICT (repository_id, \(column)) DO UPDATE SET
                pull_count = s.pull_count + EXCLUDED.pull_count,
                pull_count_error = s.pull_count_error + EXCLUDED.pull_count_error,
                \(Self.raise("last_pulled", exact: false)),
                \(Self.raise("last_used", exact: false)),
                counters_exact = false,
                updated_at = now()
            """,
            [
                PostgresArray.binary(pending.names), PostgresArray.binary(pending.references), PostgresArray.binary(pending.counts),
                PostgresArray.binary(pending.errors), PostgresArray.binary(pending.pulled), PostgresArray.binary(pending.used),
            ]
        )
    }

    /// Registers the tail keys the batch names and the catalog lacks, so that later batches and
    /// pruning enumerate them.
    private func registerTailNames(_ keys: [PullKey]) throws {
        let catalog = Catalog(connection: connection)
        for kind in KeyKind.allCases {
            let named = keys.filter { $0.kind == kind }
            guard !named.isEmpty else { continue }
            // `upsertRepositories` put their repositories in first.
            try catalog.registerKeys(kind, repositories: named.map(\.repository.value), references: named.map(\.name))
        }
    }

    /// Adds the pulls of tail keys the batch could not name to their repository's unattributed
    /// figure, and those of repositories lost to an overflow to the figure without a repository.
    private func recordUnattributed(_ content: ShardWindow) throws {
        let repositories = content.tailRepositories.filter { $0.unnamedPulls > 0 }
        if !repositories.isEmpty {
            try connection.query(
                """
                INSERT INTO unattributed_pulls AS a (repository_id, pulls)
                SELECT r.id, u.pulls FROM unnest($1::text[], $2::bigint[]) AS u(repository, pulls) JOIN repositories r ON r.name = u.repository
                ORDER BY r.id
                ON CONFLICT (repository_id) DO UPDATE SET pulls = a.pulls + EXCLUDED.pulls, updated_at = now()
                """,
                [PostgresArray.literal(repositories.map(\.repository.value)), PostgresArray.literal(repositories.map(\.unnamedPulls))]
            )
        }
        if content.unnamedPullsOfOverflow > 0 {
            try connection.query(
                """
                INSERT INTO unattributed_pulls AS a (repository_id, pulls) VALUES (NULL, $1)
                ON CONFLICT (repository_id) DO UPDATE SET pulls = a.pulls + EXCLUDED.pulls, updated_at = now()
                """,
                [String(content.unnamedPullsOfOverflow)]
            )
        }
    }

    /// Inserts every repository the batch names that PostgreSQL lacks, first and in one statement
    /// in name order, as the catalog's writers do. Two transactions that share new names — two
    /// reconcilers' shards, a reconciler and a node's catalog writer — then take them in the same
    /// order, so one waits for the other where inserting them statement by statement could make
    /// each wait for the other (a deadlock: PostgreSQL aborts one, and its shard waits a pass).
    /// The names are made distinct here: sorting a batch's 30,000 names in PostgreSQL to find its
    /// hundred repositories took twice as long as the insert without order.
    private func upsertRepositories(of content: ShardWindow) throws {
        var names = Set(content.hotEntries.map(\.key.repository.value))
        names.formUnion(content.tailNames.map(\.repository.value))
        names.formUnion(content.tailRepositories.filter { $0.unnamedPulls > 0 }.map(\.repository.value))
        guard !names.isEmpty else { return }
        try connection.query(
            "INSERT INTO repositories (name) SELECT unnest($1::text[]) ORDER BY 1 ON CONFLICT (name) DO NOTHING",
            [PostgresArray.binary(Array(names))]
        )
    }
}
