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
    let connection: PostgresConnection

    public init(connection: PostgresConnection) {
        self.connection = connection
    }

    /// Applies a batch of changes in one transaction with a few statements, however many changes it
    /// holds: pushes, then deletions, each kind in bulk. Changes are ordered by event time, so the
    /// result is the same as applying them one by one in any order.
    public func apply(_ batch: CatalogBatch) throws {
        guard !batch.isEmpty else { return }
        try connection.transaction {
            try connection.query(
                "INSERT INTO repositories (name) SELECT DISTINCT unnest($1::text[]) ORDER BY 1 ON CONFLICT (name) DO NOTHING",
                [PostgresArray.literal(batch.repositories)]
            )
            try pushManifests(batch.manifestPushes)
            try pushTags(batch.tagPushes)
            try link(batch.indexLinks)
            try delete(batch.tagDeletions, table: "catalog_tags", statistics: "tag_stats", column: "tag")
            try delete(batch.manifestDeletions, table: "catalog_manifests", statistics: "manifest_stats", column: "digest")
        }
    }

    private func pushManifests(_ pushes: [CatalogKey: Timestamp]) throws {
        guard !pushes.isEmpty else { return }
        let keys = pushes.keys.sorted()
        try connection.query(
            Self.withStatisticsRows(
                """
                INSERT INTO catalog_manifests AS c (repository_id, digest, pushed_at)
                SELECT r.id, u.digest, \(PostgresTime.timestamp(milliseconds: "u.ms"))
                FROM unnest($1::text[], $2::text[], $3::bigint[]) AS u(repository, digest, ms) JOIN repositories r ON r.name = u.repository
                ORDER BY r.id, u.digest
                ON CONFLICT (repository_id, digest) DO UPDATE SET \(Self.pushed("c"))
                """
            ),
            [PostgresArray.literal(keys.map(\.repository)), PostgresArray.literal(keys.map(\.name)),
             PostgresArray.literal(keys.map { pushes[$0]!.millisecondsSinceEpoch })]
        )
    }

    private func pushTags(_ pushes: [CatalogKey: (digest: Digest, time: Timestamp)]) throws {
        guard !pushes.isEmpty else { return }
        let keys = pushes.keys.sorted()
        let parameters = [
            PostgresArray.literal(keys.map(\.repository)), PostgresArray.literal(keys.map(\.name)),
            PostgresArray.literal(keys.map { pushes[$0]!.digest.value }), PostgresArray.literal(keys.map { pushes[$0]!.time.millisecondsSinceEpoch }),
        ]
        try connection.query(
            """
            INSERT INTO catalog_tags AS c (repository_id, tag, digest, pushed_at)
            SELECT r.id, u.tag, u.digest, \(PostgresTime.timestamp(milliseconds: "u.ms"))
            FROM unnest($1::text[], $2::text[], $3::text[], $4::bigint[]) AS u(repository, tag, digest, ms) JOIN repositories r ON r.name = u.repository
            ON CONFLICT (repository_id, tag) DO UPDATE SET
                digest = CASE WHEN c.pushed_at IS NULL OR EXCLUDED.pushed_at >= c.pushed_at THEN EXCLUDED.digest ELSE c.digest END,
                \(Self.pushed("c"))
            """,
            parameters
        )
        try connection.query(
            """
            UPDATE tag_stats AS s SET \(Self.pushed("s", at: PostgresTime.timestamp(milliseconds: "u.ms"))), updated_at = now()
            FROM unnest($1::text[], $2::text[], $3::text[], $4::bigint[]) AS u(repository, tag, digest, ms) JOIN repositories r ON r.name = u.repository
            WHERE s.repository_id = r.id AND s.tag = u.tag
            """,
            parameters
        )
    }

    /// Records which platform manifests image indexes list. An index's list never changes (its
    /// digest is its content), so links are only added; a platform learned later (from reading the
    /// index) fills in one unknown before (from a push event's references). Indexes and children the
    /// catalog lacks are added without a push time.
    public func link(_ links: [IndexLink]) throws {
        var unique: [IndexLink.Key: String?] = [:]
        for link in links { unique.updateValue((unique[link.key] ?? nil) ?? link.platform, forKey: link.key) }
        guard !unique.isEmpty else { return }
        let keys = unique.keys.sorted()
        let repositories = PostgresArray.literal(keys.map(\.repository))
        let indexes = PostgresArray.literal(keys.map(\.index)), children = PostgresArray.literal(keys.map(\.child))
        try connection.query(
            "INSERT INTO repositories (name) SELECT DISTINCT unnest($1::text[]) ORDER BY 1 ON CONFLICT (name) DO NOTHING", [repositories]
        )
        try connection.query(
            """
            INSERT INTO catalog_manifests (repository_id, digest)
            SELECT DISTINCT r.id, u.digest
            FROM unnest($1::text[] || $1::text[], $2::text[] || $3::text[]) AS u(repository, digest) JOIN repositories r ON r.name = u.repository
            ORDER BY 1, 2 ON CONFLICT DO NOTHING
            """,
            [repositories, indexes, children]
        )
        try connection.query(
            """
            INSERT INTO manifest_children AS x (repository_id, index_digest, child_digest, platform)
            SELECT r.id, u.index, u.child, u.platform
            FROM unnest($1::text[], $2::text[], $3::text[], $4::text[]) AS u(repository, index, child, platform)
            JOIN repositories r ON r.name = u.repository
            ON CONFLICT (repository_id, index_digest, child_digest) DO UPDATE SET platform = coalesce(EXCLUDED.platform, x.platform)
            """,
            [repositories, indexes, children, PostgresArray.literal(keys.map { unique[$0]! })]
        )
    }

    /// Registers keys the catalog lacks, with no push time: in bulk, one statement for the names
    /// and one for the keys.
    public func register(_ kind: KeyKind, repositories: [String], references: [String]) throws {
        try connection.query(
            "INSERT INTO repositories (name) SELECT DISTINCT unnest($1::text[]) ON CONFLICT (name) DO NOTHING",
            [PostgresArray.literal(repositories)]
        )
        try registerKeys(kind, repositories: repositories, references: references)
    }

    /// `register` for keys whose repositories are all in `repositories` already (a key of another
    /// repository is not registered): the keys' statement alone.
    public func registerKeys(_ kind: KeyKind, repositories: [String], references: [String]) throws {
        let (table, column) = kind == .tag ? ("catalog_tags", "tag") : ("catalog_manifests", "digest")
        try connection.query(
            """
            INSERT INTO \(table) (repository_id, \(column))
            SELECT r.id, k.reference FROM unnest($1::text[], $2::text[]) AS k (repository, reference) JOIN repositories r ON r.name = k.repository
            ON CONFLICT DO NOTHING
            """,
            [PostgresArray.literal(repositories), PostgresArray.literal(references)]
        )
    }

    private func delete(_ deletions: [CatalogKey: Timestamp], table: String, statistics: String, column: String) throws {
        guard !deletions.isEmpty else { return }
        let keys = deletions.keys.sorted()
        let parameters = [
            PostgresArray.literal(keys.map(\.repository)), PostgresArray.literal(keys.map(\.name)),
            PostgresArray.literal(keys.map { deletions[$0]!.millisecondsSinceEpoch }),
        ]
        try connection.query(
            """
            INSERT INTO \(table) AS c (repository_id, \(column), deleted_at)
            SELECT r.id, u.key, \(PostgresTime.timestamp(milliseconds: "u.ms"))
            FROM unnest($1::text[], $2::text[], $3::bigint[]) AS u(repository, key, ms) JOIN repositories r ON r.name = u.repository
            ON CONFLICT (repository_id, \(column)) DO UPDATE SET \(Self.deleted("c"))
            """,
            parameters
        )
        try connection.query(
            """
            UPDATE \(statistics) AS c SET \(Self.deleted("c", at: PostgresTime.timestamp(milliseconds: "u.ms")))
            FROM unnest($1::text[], $2::text[], $3::bigint[]) AS u(repository, key, ms) JOIN repositories r ON r.name = u.repository
            WHERE c.repository_id = r.id AND c.\(column) = u.key
            """,
            parameters
        )
    }

    /// `upsert`, an upsert of `catalog_manifests` rows `c`, followed by the copy of each row's push
    /// and deletion times into its manifest's statistics row, made (with zero counts) when the
    /// manifest has none: a pushed manifest's push time is read beside its statistics, from one
    /// table (schema version 11). The reconciler never writes these two columns, so whichever of
    /// the two writes a new manifest's statistics row first, the row ends with the catalog's times.
    /// A statistics row whose times are already its catalog row's is left as it is (a push of a
    /// manifest pushed before, at no later time, writes no new version of it).
    static func withStatisticsRows(_ upsert: String) -> String {
        """
        WITH pushed AS (
            \(upsert)
            RETURNING c.repository_id, c.digest, c.pushed_at, c.deleted_at
        )
        INSERT INTO manifest_stats AS s (repository_id, digest, pushed_at, deleted_at)
        SELECT repository_id, digest, pushed_at, deleted_at FROM pushed ORDER BY repository_id, digest
        ON CONFLICT (repository_id, digest) \(updateWhereChanged("s", ["pushed_at": "EXCLUDED.pushed_at", "deleted_at": "EXCLUDED.deleted_at"]))
        """
    }

    /// The `DO UPDATE` of an `ON CONFLICT` giving row `row`'s columns their new values, made only
    /// when one of them changes: a row that would be written as it is keeps its version (no new
    /// row version, no WAL) and is not returned.
    static func updateWhereChanged(_ row: String, _ assignments: KeyValuePairs<String, String>) -> String {
        let settings = assignments.map { "\($0.key) = \($0.value)" }.joined(separator: ", ")
        let columns = assignments.map { "\(row).\($0.key)" }.joined(separator: ", ")
        let values = assignments.map(\.value).joined(separator: ", ")
        return "DO UPDATE SET \(settings) WHERE (\(columns)) IS DISTINCT FROM (\(values))"
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

/// A repository and a tag or digest, as catalog rows key them.
public struct CatalogKey: Hashable, Comparable, Sendable {
    public let repository: String
    public let name: String

    public static func < (lhs: Self, rhs: Self) -> Bool { (lhs.repository, lhs.name) < (rhs.repository, rhs.name) }
}

/// An image index listing a platform manifest: `platform` is `os/architecture[/variant]`, nil
/// while unknown.
public struct IndexLink: Hashable, Sendable {
    public var repository: RepositoryName
    public var index: Digest
    public var child: Digest
    public var platform: String?

    public init(repository: RepositoryName, index: Digest, child: Digest, platform: String?) {
        self.repository = repository
        self.index = index
        self.child = child
        self.platform = platform
    }

    struct Key: Hashable, Comparable {
        let repository: String, index: String, child: String

        static func < (lhs: Self, rhs: Self) -> Bool { (lhs.repository, lhs.index, lhs.child) < (rhs.repository, rhs.index, rhs.child) }
    }

    var key: Key { Key(repository: repository.value, index: index.value, child: child.value) }
}

/// Catalog changes to apply together (`Catalog.apply`), collapsed per key as they are added: a
/// key's latest push (with the digest a tag then pointed at) and its latest deletion. Since the
/// catalog orders changes by event time, that is all a batch needs to keep.
public struct CatalogBatch: Sendable {
    private(set) var tagPushes: [CatalogKey: (digest: Digest, time: Timestamp)] = [:]
    private(set) var manifestPushes: [CatalogKey: Timestamp] = [:]
    private(set) var tagDeletions: [CatalogKey: Timestamp] = [:]
    private(set) var manifestDeletions: [CatalogKey: Timestamp] = [:]
    private(set) var indexLinks: [IndexLink] = []

    public init() {}

    public var isEmpty: Bool {
        tagPushes.isEmpty && manifestPushes.isEmpty && tagDeletions.isEmpty && manifestDeletions.isEmpty && indexLinks.isEmpty
    }

    /// Every repository a change names, without repeats.
    var repositories: [String] {
        let keys = Array(tagPushes.keys) + manifestPushes.keys + tagDeletions.keys + manifestDeletions.keys
        return Set(keys.map(\.repository) + indexLinks.map(\.repository.value)).sorted()
    }

    /// Platform manifests an index lists.
    public mutating func link(_ links: [IndexLink]) {
        indexLinks += links
    }

    /// A tag pushed (or retargeted) to `digest` at `time`; its manifest is pushed with it.
    public mutating func pushTag(_ repository: RepositoryName, _ tag: TagName, digest: Digest, at time: Timestamp) {
        let key = CatalogKey(repository: repository.value, name: tag.value)
        if tagPushes[key].map({ $0.time <= time }) ?? true { tagPushes[key] = (digest, time) }
        pushManifest(repository, digest, at: time)
    }

    public mutating func pushManifest(_ repository: RepositoryName, _ digest: Digest, at time: Timestamp) {
        Self.keepLatest(&manifestPushes, CatalogKey(repository: repository.value, name: digest.value), time)
    }

    public mutating func deleteTag(_ repository: RepositoryName, _ tag: TagName, at time: Timestamp) {
        Self.keepLatest(&tagDeletions, CatalogKey(repository: repository.value, name: tag.value), time)
    }

    public mutating func deleteManifest(_ repository: RepositoryName, _ digest: Digest, at time: Timestamp) {
        Self.keepLatest(&manifestDeletions, CatalogKey(repository: repository.value, name: digest.value), time)
    }

    private static func keepLatest(_ times: inout [CatalogKey: Timestamp], _ key: CatalogKey, _ time: Timestamp) {
        times[key] = max(times[key] ?? time, time)
    }
}
