public import PullSketchCore
import PullSketchPostgres

/// A tag seen pointing at a manifest, by a catalog sync: `time` is when it was pushed if the
/// source knows (Quay's tag history), else when it was seen, which is never earlier than its push.
public struct ObservedTag: Hashable, Sendable {
    public var repository: RepositoryName
    public var tag: TagName
    public var digest: Digest
    public var time: Timestamp

    public init(repository: RepositoryName, tag: TagName, digest: Digest, time: Timestamp) {
        self.repository = repository
        self.tag = tag
        self.digest = digest
        self.time = time
    }
}

extension Catalog {
    /// Records tags a catalog sync found, with their manifests, in one transaction. Like a push at
    /// `time`, except that a tag already known to point at the same digest keeps its push time
    /// (the sync saw it later, it did not push it); a push or deletion newer than `time` wins, so a
    /// sync running beside live ingestion never undoes what the registry reported since. A row
    /// the observation leaves as it was is not written: a sync seeing the registry again, unchanged,
    /// writes no catalog or statistics row.
    public func observe(_ tags: [ObservedTag]) throws {
        guard !tags.isEmpty else { return }
        // One row per key: the latest observation.
        var latest: [CatalogKey: ObservedTag] = [:]
        for tag in tags {
            let key = CatalogKey(repository: tag.repository.value, name: tag.tag.value)
            if latest[key].map({ $0.time <= tag.time }) ?? true { latest[key] = tag }
        }
        let keys = latest.keys.sorted()
        let rows = keys.map { latest[$0]! }
        let parameters = [
            PostgresArray.literal(rows.map(\.repository.value)), PostgresArray.literal(rows.map(\.tag.value)),
            PostgresArray.literal(rows.map(\.digest.value)), PostgresArray.literal(rows.map(\.time.millisecondsSinceEpoch)),
        ]
        try connection.transaction {
            try connection.query(
                "INSERT INTO repositories (name) SELECT DISTINCT unnest($1::text[]) ORDER BY 1 ON CONFLICT (name) DO NOTHING",
                [parameters[0]]
            )
            // A row is left alone when something newer than the observation happened to it.
            let newer = "(c.deleted_at IS NOT NULL AND c.deleted_at >= EXCLUDED.pushed_at) OR c.pushed_at > EXCLUDED.pushed_at"
            try connection.query(
                """
                INSERT INTO catalog_tags AS c (repository_id, tag, digest, pushed_at)
                SELECT r.id, u.tag, u.digest, \(PostgresTime.timestamp(milliseconds: "u.ms"))
                FROM unnest($1::text[], $2::text[], $3::text[], $4::bigint[]) AS u(repository, tag, digest, ms)
                JOIN repositories r ON r.name = u.repository
                ON CONFLICT (repository_id, tag) \(Self.updateWhereChanged("c", [
                    "digest": "CASE WHEN \(newer) THEN c.digest ELSE EXCLUDED.digest END",
                    "pushed_at": """
                        CASE WHEN \(newer) THEN c.pushed_at
                            WHEN c.deleted_at IS NULL AND c.digest = EXCLUDED.digest THEN coalesce(c.pushed_at, EXCLUDED.pushed_at)
                            ELSE EXCLUDED.pushed_at END
                        """,
                    "deleted_at": "CASE WHEN \(newer) THEN c.deleted_at ELSE NULL END",
                ]))
                """,
                parameters
            )
            try connection.query(
                Self.withStatisticsRows(
                    """
                    INSERT INTO catalog_manifests AS c (repository_id, digest, pushed_at)
                    SELECT r.id, u.digest, min(\(PostgresTime.timestamp(milliseconds: "u.ms")))
                    FROM unnest($1::text[], $2::text[], $3::bigint[]) AS u(repository, digest, ms) JOIN repositories r ON r.name = u.repository
                    GROUP BY r.id, u.digest ORDER BY r.id, u.digest
                    ON CONFLICT (repository_id, digest) \(Self.updateWhereChanged("c", [
                        "pushed_at": """
                            CASE WHEN c.deleted_at IS NOT NULL AND c.deleted_at >= EXCLUDED.pushed_at THEN c.pushed_at
                                WHEN c.deleted_at IS NOT NULL THEN EXCLUDED.pushed_at
                                ELSE coalesce(LEAST(c.pushed_at, EXCLUDED.pushed_at), EXCLUDED.pushed_at) END
                            """,
                        "deleted_at": "CASE WHEN c.deleted_at IS NOT NULL AND c.deleted_at >= EXCLUDED.pushed_at THEN c.deleted_at ELSE NULL END",
                    ]))
                    """
                ),
                [parameters[0], parameters[2], parameters[3]]
            )
            // Statistics rows carry their tag's push and deletion times.
            try connection.query(
                """
                UPDATE tag_stats AS s SET pushed_at = c.pushed_at, deleted_at = c.deleted_at, updated_at = now()
                FROM unnest($1::text[], $2::text[]) AS u(repository, tag) JOIN repositories r ON r.name = u.repository
                JOIN catalog_tags c ON c.repository_id = r.id AND c.tag = u.tag
                WHERE s.repository_id = r.id AND s.tag = u.tag
                    AND (s.pushed_at IS DISTINCT FROM c.pushed_at OR s.deleted_at IS DISTINCT FROM c.deleted_at)
                """,
                [parameters[0], parameters[1]]
            )
        }
    }
}
