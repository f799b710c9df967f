public import PullSketchCore
import PullSketchPostgres

/// A manifest of a repository's listing: its statistics, the live tags pointing at it now, and
/// the tag it was last pulled through.
public struct ManifestListing: Hashable, Sendable {
    public var statistics: ManifestStatistics
    /// Live tags whose digest is this manifest, by name; empty for an untagged manifest.
    public var tags: [String]
    /// Of the tags last served this manifest, the one pulled most recently; nil when no tag
    /// pull of it is known (pulled by digest only, or its tags moved on since).
    public var lastTagPulled: String?
    public var pushedAt: Timestamp?
    /// The live image indexes listing this manifest, by digest; empty unless it is a platform
    /// manifest.
    public var indexes: [String]
    /// Its platform in an index listing it (`os/architecture[/variant]`), when known.
    public var platform: String?

    public init(statistics: ManifestStatistics, tags: [String], lastTagPulled: String?, pushedAt: Timestamp?, indexes: [String] = [], platform: String? = nil) {
        self.statistics = statistics
        self.tags = tags
        self.lastTagPulled = lastTagPulled
        self.pushedAt = pushedAt
        self.indexes = indexes
        self.platform = platform
    }
}

/// A manifest an image index lists, with its platform and statistics.
public struct PlatformManifest: Hashable, Sendable {
    /// `os/architecture[/variant]`; nil while unknown (the index was not read yet).
    public var platform: String?
    public var statistics: ManifestStatistics
}

extension StatisticsQueries {
    /// One page of a repository's live manifests, tagged or not, sorted like tags (by digest for
    /// `.name`).
    public func manifests(_ repository: RepositoryName, order: TagOrder, descending: Bool, limit: Int, offset: Int) throws -> [ManifestListing] {
        let sort = Self.orderBy(order, descending: descending, statistics: "s", name: "m.digest")
        return try manifests(where: "true", [repository.value], order: sort, limit: limit, offset: offset)
    }

    /// One manifest of the listing; nil for a digest the repository does not have.
    public func manifestListing(_ repository: RepositoryName, _ digest: Digest) throws -> ManifestListing? {
        try manifests(where: "m.digest = $2", [repository.value, digest.value], order: "m.digest", limit: 1, offset: 0).first
    }

    /// The manifests the image index `digest` lists, by platform, with their statistics (zeros for
    /// one never pulled); empty when it is no index PullSketch knows of.
    public func platforms(_ repository: RepositoryName, index digest: Digest) throws -> [PlatformManifest] {
        try connection.query(
            """
            SELECT x.child_digest AS p_digest, x.platform, \(Self.statisticsColumns("s", as: "p"))
            FROM manifest_children x JOIN repositories r ON r.id = x.repository_id
            LEFT JOIN manifest_stats s ON s.repository_id = x.repository_id AND s.digest = x.child_digest
            WHERE r.name = $1 AND x.index_digest = $2
            ORDER BY x.platform NULLS LAST, x.child_digest
            """,
            [repository.value, digest.value]
        ).namedRows.map { row in
            PlatformManifest(platform: try row.decode("platform"), statistics: try Self.manifest(row, prefix: "p"))
        }
    }

    private func manifests(where condition: String, _ parameters: [String], order: String, limit: Int, offset: Int) throws -> [ManifestListing] {
        try connection.query(
            """
            SELECT m.digest AS m_digest, \(Self.statisticsColumns("s", as: "m")), \(Self.milliseconds("m.pushed_at", as: "pushed_ms")),
                -- Tag names and digests hold no comma.
                array_to_string(ARRAY(
                    SELECT c.tag FROM catalog_tags c LEFT JOIN tag_stats t ON t.repository_id = c.repository_id AND t.tag = c.tag
                    WHERE c.repository_id = m.repository_id AND c.deleted_at IS NULL AND coalesce(c.digest, t.current_digest) = m.digest
                    ORDER BY c.tag
                ), ',') AS tags,
                (
                    SELECT t.tag FROM tag_stats t
                    WHERE t.repository_id = m.repository_id AND t.current_digest = m.digest AND t.last_pulled_at IS NOT NULL
                    ORDER BY t.last_pulled_at DESC, t.tag LIMIT 1
                ) AS last_tag_pulled,
                array_to_string(ARRAY(
                    SELECT x.index_digest FROM manifest_children x
                    JOIN catalog_manifests p ON p.repository_id = x.repository_id AND p.digest = x.index_digest
                    WHERE x.repository_id = m.repository_id AND x.child_digest = m.digest AND p.deleted_at IS NULL
                    ORDER BY 1
                ), ',') AS indexes,
                (
                    SELECT x.platform FROM manifest_children x
                    WHERE x.repository_id = m.repository_id AND x.child_digest = m.digest AND x.platform IS NOT NULL LIMIT 1
                ) AS platform
            FROM catalog_manifests m JOIN repositories r ON r.id = m.repository_id
            LEFT JOIN manifest_stats s ON s.repository_id = m.repository_id AND s.digest = m.digest
            WHERE r.name = $1 AND m.deleted_at IS NULL AND \(condition)
            ORDER BY \(order) LIMIT \(max(0, limit)) OFFSET \(max(0, offset))
            """,
            parameters
        ).namedRows.map { row in
            ManifestListing(
                statistics: try Self.manifest(row, prefix: "m"),
                tags: try row.decode("tags", as: String.self).split(separator: ",").map(String.init),
                lastTagPulled: try row.decode("last_tag_pulled"),
                pushedAt: try row.time("pushed_ms"),
                indexes: try row.decode("indexes", as: String.self).split(separator: ",").map(String.init),
                platform: try row.decode("platform")
            )
        }
    }
}
