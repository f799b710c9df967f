public import PullSketchCore
public import PullSketchPostgres

/// The known tags and manifests, fed by push and delete events: what the reconciler
/// enumerates for tail estimates and what pruning compares against. Deleting marks rows deleted;
/// statistics are keyed by repository and name, so retargeting a tag or deleting its old
/// manifest never touches the tag's statistics.
///
/// Changes are ordered by their event time, not by their arrival, so several nodes receiving a
/// registry's events in any order agree: a push revives a deleted key only when it came after the
/// deletion, a deletion applies only when it came after the latest push (a deletion that arrives
/// before its key's push is kept as a tombstone), and a tag points at the digest of its latest
/// push.
public struct Catalog {
    private let connection: PostgresConnection

    public init(connection: PostgresConnection) {
        self.connection = connection
    }

    /// A tag now points at `digest` (a push, or a retarget), pushed at `time`.
    public func upsertTag(_ repository: RepositoryName, _ tag: TagName, digest: Digest, pushedAt time: Timestamp) throws {
        try connection.transaction {
            try upsertManifest(repository, digest, pushedAt: time)
            try connection.query(
                """
                INSERT INTO catalog_tags AS c (repository_id, tag, digest, pushed_at)
                SELECT id, $2, $3, to_timestamp($4::bigint / 1000.0) FROM repositories WHERE name = $1
                ON CONFLICT (repository_id, tag) DO UPDATE SET
                    digest = CASE WHEN c.pushed_at IS NULL OR EXCLUDED.pushed_at >= c.pushed_at THEN EXCLUDED.digest ELSE c.digest END,
                    \(Self.pushed("c"))
                """,
                [repository.value, tag.value, digest.value, String(time.millisecondsSinceEpoch)]
            )
            try connection.query(
                """
                UPDATE tag_stats AS s SET \(Self.pushed("s", at: "to_timestamp($3::bigint / 1000.0)")), updated_at = now()
                WHERE repository_id = (SELECT id FROM repositories WHERE name = $1) AND tag = $2
                """,
                [repository.value, tag.value, String(time.millisecondsSinceEpoch)]
            )
        }
    }

    /// A manifest was pushed (by digest, or as a tag's target).
    public func upsertManifest(_ repository: RepositoryName, _ digest: Digest, pushedAt time: Timestamp) throws {
        try connection.query("INSERT INTO repositories (name) VALUES ($1) ON CONFLICT (name) DO NOTHING", [repository.value])
        try connection.query(
            """
            INSERT INTO catalog_manifests AS c (repository_id, digest, pushed_at)
            SELECT id, $2, to_timestamp($3::bigint / 1000.0) FROM repositories WHERE name = $1
            ON CONFLICT (repository_id, digest) DO UPDATE SET \(Self.pushed("c"))
            """,
            [repository.value, digest.value, String(time.millisecondsSinceEpoch)]
        )
    }

    /// Registers keys the catalog lacks, with no push time: in bulk, one statement for the names
    /// and one for the keys.
    public func register(_ kind: KeyKind, repositories: [String], references: [String]) throws {
        let (table, column) = kind == .tag ? ("catalog_tags", "tag") : ("catalog_manifests", "digest")
        try connection.query(
            "INSERT INTO repositories (name) SELECT DISTINCT unnest($1::text[]) ON CONFLICT (name) DO NOTHING",
            [PostgresArray.literal(repositories)]
        )
        try connection.query(
            """
            INSERT INTO \(table) (repository_id, \(column))
            SELECT r.id, k.reference FROM unnest($1::text[], $2::text[]) AS k (repository, reference) JOIN repositories r ON r.name = k.repository
            ON CONFLICT DO NOTHING
            """,
            [PostgresArray.literal(repositories), PostgresArray.literal(references)]
        )
    }

    /// The registry deleted a tag: it leaves the catalog and pruning, its statistics are kept.
    public func deleteTag(_ repository: RepositoryName, _ tag: TagName, at time: Timestamp) throws {
        try markDeleted(table: "catalog_tags", statistics: "tag_stats", column: "tag", repository, tag.value, at: time)
    }

    /// The registry deleted a manifest; tags that pointed at it keep their statistics.
    public func deleteManifest(_ repository: RepositoryName, _ digest: Digest, at time: Timestamp) throws {
        try markDeleted(table: "catalog_manifests", statistics: "manifest_stats", column: "digest", repository, digest.value, at: time)
    }

    private func markDeleted(table: String, statistics: String, column: String, _ repository: RepositoryName, _ key: String, at time: Timestamp) throws {
        let parameters = [repository.value, key, String(time.millisecondsSinceEpoch)]
        try connection.transaction {
            try connection.query("INSERT INTO repositories (name) VALUES ($1) ON CONFLICT (name) DO NOTHING", [repository.value])
            try connection.query(
                """
                INSERT INTO \(table) AS c (repository_id, \(column), deleted_at)
                SELECT id, $2, to_timestamp($3::bigint / 1000.0) FROM repositories WHERE name = $1
                ON CONFLICT (repository_id, \(column)) DO UPDATE SET \(Self.deleted("c"))
                """,
                parameters
            )
            try connection.query(
                """
                UPDATE \(statistics) AS c SET \(Self.deleted("c", at: "to_timestamp($3::bigint / 1000.0)"))
                WHERE repository_id = (SELECT id FROM repositories WHERE name = $1) AND \(column) = $2
                """,
                parameters
            )
        }
    }

    /// The assignments of a push at `time` to row `row`: the latest push time, and no longer
    /// deleted when the push came after the deletion.
    private static func pushed(_ row: String, at time: String = "EXCLUDED.pushed_at") -> String {
        """
        deleted_at = CASE WHEN \(row).deleted_at IS NOT NULL AND \(time) > \(row).deleted_at THEN NULL ELSE \(row).deleted_at END,
        pushed_at = GREATEST(\(row).pushed_at, \(time))
        """
    }

    /// The assignment of a deletion at `time` to row `row`: deleted unless pushed after it.
    private static func deleted(_ row: String, at time: String = "EXCLUDED.deleted_at") -> String {
        """
        deleted_at = CASE WHEN \(row).pushed_at IS NULL OR \(time) >= \(row).pushed_at
            THEN GREATEST(\(row).deleted_at, \(time)) ELSE \(row).deleted_at END
        """
    }
}
