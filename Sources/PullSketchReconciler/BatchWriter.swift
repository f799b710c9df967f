public import PullSketchCore
public import PullSketchPostgres
public import PullSketchRedis

/// Writes one sealed batch into PostgreSQL in one transaction (DESIGN §2.3 steps 2–4): exact
/// entries, tail estimates with their error bound, catalog registration and the ledger row.
/// A batch the ledger already has changes nothing.
public struct BatchWriter {
    /// What became of a batch.
    public enum Outcome: Hashable, Sendable {
        case applied(exactKeys: Int, estimatedKeys: Int)
        case alreadyReconciled
    }

    public let countingRule: CountingRule
    /// The deployment's shard count: a shard's batch estimates only the keys of that shard.
    public let shardCount: Int
    private let connection: PostgresConnection

    public init(connection: PostgresConnection, shardCount: Int, countingRule: CountingRule = .resolutions) {
        self.connection = connection
        self.shardCount = shardCount
        self.countingRule = countingRule
    }

    public func write(_ batch: SealedBatch) throws -> Outcome {
        try connection.transaction {
            let content = batch.content
            let epsilon = batch.parameters?.epsilon ?? 0
            let delta = batch.parameters?.delta ?? 0
            let ledger = try connection.query(
                """
                INSERT INTO reconciled_batches (shard, batch, pulls, tail_mass, epsilon, delta)
                VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING RETURNING 1
                """,
                [String(content.shard), String(batch.number), String(content.counterUpdates), String(content.tailMass), String(epsilon), String(delta)]
            )
            guard !ledger.rows.isEmpty else { return .alreadyReconciled }
            let exact = try writeExact(content.hotEntries)
            let estimated = try writeEstimates(batch)
            return .applied(exactKeys: exact, estimatedKeys: estimated)
        }
    }

    /// The highest batch number the ledger has for each shard `0..<shardCount` (0 for none): the
    /// floor for the next seal, so a Redis that lost its data never reuses a reconciled number.
    public func lastReconciledBatches() throws -> [Int64] {
        try connection.query(
            """
            SELECT coalesce((SELECT max(batch) FROM reconciled_batches WHERE shard = s), 0)
            FROM generate_series(0, $1::integer - 1) AS s ORDER BY s
            """,
            [String(shardCount)]
        ).rows.map { Int64($0[0] ?? "0") ?? 0 }
    }

    /// Deletes ledger rows reconciled before `cutoff`, keeping each shard's newest (the seal floor).
    /// A batch is deleted from Redis right after its commit, so an old row guards nothing.
    @discardableResult
    public func forgetLedger(reconciledBefore cutoff: Timestamp) throws -> Int {
        try connection.query(
            """
            DELETE FROM reconciled_batches l WHERE reconciled_at < to_timestamp($1::bigint / 1000.0)
                AND batch < (SELECT max(batch) FROM reconciled_batches m WHERE m.shard = l.shard)
            """,
            [String(cutoff.millisecondsSinceEpoch)]
        ).affected
    }

    /// The upsert assignments that add a batch's exact counts to a statistics row `s` and raise its
    /// last-pulled time; shared by tags and manifests.
    private static let addExactCounts = """
        fetches = s.fetches + EXCLUDED.fetches,
        checks = s.checks + EXCLUDED.checks,
        pull_count = s.pull_count + EXCLUDED.pull_count,
        last_pulled_exact = CASE WHEN s.last_pulled_at IS NULL OR EXCLUDED.last_pulled_at >= s.last_pulled_at
            THEN true ELSE s.last_pulled_exact END,
        last_pulled_at = GREATEST(s.last_pulled_at, EXCLUDED.last_pulled_at)
        """

    /// Adds exact counts and raises last-pulled times; registers keys the catalog lacks.
    private func writeExact(_ entries: [HotEntry]) throws -> Int {
        let tags = entries.filter { $0.kind == .tag }
        let manifests = entries.filter { $0.kind == .manifest }
        try upsertRepositories(entries.map(\.repository.value))
        if !tags.isEmpty {
            try connection.query(
                """
                WITH input AS (
                    SELECT r.id, u.* FROM unnest($1::text[], $2::text[], $3::bigint[], $4::bigint[], $5::bigint[],
                        $6::text[], $7::bigint[]) AS u(repository, tag, fetches, checks, seen_ms, digest, digest_ms)
                    JOIN repositories r ON r.name = u.repository
                ), stats AS (
                    INSERT INTO tag_stats AS s (repository_id, tag, fetches, checks, pull_count, last_pulled_at,
                        last_pulled_exact, current_digest, current_digest_at)
                    SELECT id, tag, fetches, checks, fetches + checks, to_timestamp(seen_ms / 1000.0), true, digest,
                        CASE WHEN digest IS NULL THEN NULL ELSE to_timestamp(digest_ms / 1000.0) END
                    FROM input ORDER BY id, tag
                    ON CONFLICT (repository_id, tag) DO UPDATE SET
                        \(Self.addExactCounts),
                        current_digest = CASE WHEN EXCLUDED.current_digest IS NOT NULL AND (s.current_digest_at IS NULL
                            OR EXCLUDED.current_digest_at >= s.current_digest_at) THEN EXCLUDED.current_digest ELSE s.current_digest END,
                        current_digest_at = GREATEST(s.current_digest_at, EXCLUDED.current_digest_at),
                        updated_at = now()
                )
                INSERT INTO catalog_tags (repository_id, tag, digest)
                SELECT id, tag, digest FROM input ON CONFLICT DO NOTHING
                """,
                [
                    PostgresArray.literal(tags.map(\.repository.value)), PostgresArray.literal(tags.map(\.reference)),
                    PostgresArray.literal(tags.map { String($0.fetches) }), PostgresArray.literal(tags.map { String($0.checks) }),
                    PostgresArray.literal(tags.map { String($0.lastSeen.millisecondsSinceEpoch) }),
                    PostgresArray.literal(tags.map { $0.currentDigest?.value }),
                    PostgresArray.literal(tags.map { String($0.currentDigestAt.millisecondsSinceEpoch) }),
                ]
            )
        }
        if !manifests.isEmpty {
            let quay = countingRule == .quayAuditLog
            try connection.query(
                """
                WITH input AS (
                    SELECT r.id, u.* FROM unnest($1::text[], $2::text[], $3::bigint[], $4::bigint[], $5::bigint[])
                        AS u(repository, digest, fetches, checks, seen_ms)
                    JOIN repositories r ON r.name = u.repository
                ), stats AS (
                    INSERT INTO manifest_stats AS s (repository_id, digest, fetches, checks, pull_count, last_pulled_at, last_pulled_exact)
                    SELECT id, digest, fetches, checks, fetches + CASE WHEN $6::boolean THEN checks ELSE 0 END,
                        to_timestamp(seen_ms / 1000.0), true
                    FROM input ORDER BY id, digest
                    ON CONFLICT (repository_id, digest) DO UPDATE SET
                        \(Self.addExactCounts),
                        updated_at = now()
                )
                INSERT INTO catalog_manifests (repository_id, digest)
                SELECT id, digest FROM input ON CONFLICT DO NOTHING
                """,
                [
                    PostgresArray.literal(manifests.map(\.repository.value)), PostgresArray.literal(manifests.map(\.reference)),
                    PostgresArray.literal(manifests.map { String($0.fetches) }), PostgresArray.literal(manifests.map { String($0.checks) }),
                    PostgresArray.literal(manifests.map { String($0.lastSeen.millisecondsSinceEpoch) }), quay ? "true" : "false",
                ]
            )
        }
        return entries.count
    }

    /// Estimates the catalog keys the batch's tail covers (`TailEstimator`) and adds those above
    /// zero as approximate counts with the batch's bound; last pulled never moves earlier.
    private func writeEstimates(_ batch: SealedBatch) throws -> Int {
        guard let estimator = try TailEstimator(batch.content, parameters: batch.parameters, shardCount: shardCount) else { return 0 }
        let filter = estimator.repositories == nil ? "true" : "r.name = ANY($1::text[])"
        let parametersList = estimator.repositories.map { [PostgresArray.literal($0)] } ?? []
        var estimated = 0
        for kind in KeyKind.allCases {
            let (table, column) = kind == .tag ? ("catalog_tags", "tag") : ("catalog_manifests", "digest")
            let keys = try connection.query(
                "SELECT r.name, c.\(column) FROM \(table) c JOIN repositories r ON r.id = c.repository_id WHERE c.deleted_at IS NULL AND \(filter)",
                parametersList
            ).rows
            var names: [String] = [], references: [String] = [], counts: [String] = [], times: [String] = []
            for row in keys {
                guard let repository = row[0], let reference = row[1] else { continue }
                let hash = KeyHash(kind: kind, repository: repository, reference: reference, seed: estimator.seed)
                guard let estimate = estimator.estimate(hash, repository: repository) else { continue }
                names.append(repository)
                references.append(reference)
                counts.append(String(estimate.pulls))
                times.append(String(estimate.lastPulled.millisecondsSinceEpoch))
            }
            guard !names.isEmpty else { continue }
            estimated += names.count
            try connection.query(
                """
                INSERT INTO \(kind == .tag ? "tag_stats" : "manifest_stats") AS s (repository_id, \(column), pull_count,
                    pull_count_error, last_pulled_at, last_pulled_exact)
                SELECT r.id, u.reference, u.estimate, $5::bigint, to_timestamp(u.seen_ms / 1000.0), false
                FROM unnest($1::text[], $2::text[], $3::bigint[], $4::bigint[]) AS u(repository, reference, estimate, seen_ms)
                JOIN repositories r ON r.name = u.repository
                ON CONFLICT (repository_id, \(column)) DO UPDATE SET
                    pull_count = s.pull_count + EXCLUDED.pull_count,
                    pull_count_error = s.pull_count_error + EXCLUDED.pull_count_error,
                    last_pulled_exact = CASE WHEN s.last_pulled_at IS NULL OR EXCLUDED.last_pulled_at > s.last_pulled_at
                        THEN false ELSE s.last_pulled_exact END,
                    last_pulled_at = GREATEST(s.last_pulled_at, EXCLUDED.last_pulled_at),
                    updated_at = now()
                """,
                [PostgresArray.literal(names), PostgresArray.literal(references), PostgresArray.literal(counts), PostgresArray.literal(times), String(estimator.bound)]
            )
        }
        return estimated
    }

    private func upsertRepositories(_ names: [String]) throws {
        guard !names.isEmpty else { return }
        try connection.query(
            "INSERT INTO repositories (name) SELECT DISTINCT unnest($1::text[]) ON CONFLICT (name) DO NOTHING",
            [PostgresArray.literal(names)]
        )
    }
}
