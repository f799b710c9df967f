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
        try manifests(
            of: repository, where: "true", [], order: { Self.orderBy(order, descending: descending, statistics: $0, name: $1) },
            limit: limit, offset: offset
        )
    }

    /// One manifest of the listing; nil for a digest the repository does not have.
    public func manifestListing(_ repository: RepositoryName, _ digest: Digest) throws -> ManifestListing? {
        try manifests(of: repository, where: "m.digest = $2", [digest.value], order: { _, digest in digest }, limit: 1, offset: 0).first
    }

    /// The manifests the image index `digest` lists, by platform, with their statistics (zeros for
    /// one never pulled); empty when it is no index PullSketch knows of.
    public func platforms(_ repository: RepositoryName, index digest: Digest) throws -> [PlatformManifest] {
        guard let id = try id(of: repository) else { return [] }
        return try connection.query(
            """
            SELECT x.child_digest AS p_digest, x.platform, \(Self.statisticsColumns("s", as: "p"))
            FROM manifest_children x
            LEFT JOIN manifest_stats s ON s.repository_id = \(Self.repositoryID) AND s.digest = x.child_digest
            WHERE x.repository_id = \(Self.repositoryID) AND x.index_digest = $2
            ORDER BY x.platform NULLS LAST, x.child_digest
            """,
            [String(id), digest.value]
        ).namedRows.map { row in
            PlatformManifest(platform: try row.decode("platform"), statistics: try Self.manifest(row, prefix: "p"))
        }
    }

    /// A page of the repository's live manifests meeting `condition` (over catalog row `m` and
    /// statistics row `s`, with `parameters` from `$2`) in the order `order(statistics, digest)`
    /// gives. As for tags, the page is cut first; its manifests' tags then come from one read of
    /// the repository's live tags, grouped by digest — looked up per manifest, each lookup read all
    /// of them, and a page deep in a large repository took seconds (docs/decisions.md).
    private func manifests(
        of repository: RepositoryName, where condition: String, _ parameters: [String], order: (_ statistics: String, _ digest: String) -> String,
        limit: Int, offset: Int
    ) throws -> [ManifestListing] {
        guard let id = try id(of: repository) else { return [] }
        return try connection.query(
            """
            WITH page AS MATERIALIZED (
                SELECT m.digest, m.pushed_at, s.last_pulled_at, s.pull_count
                FROM catalog_manifests m LEFT JOIN manifest_stats s ON s.repository_id = \(Self.repositoryID) AND s.digest = m.digest
                WHERE m.repository_id = \(Self.repositoryID) AND m.deleted_at IS NULL AND \(condition)
                ORDER BY \(order("s", "m.digest")) LIMIT \(max(0, limit)) OFFSET \(max(0, offset))
            )
            SELECT p.digest AS m_digest, \(Self.statisticsColumns("s", as: "m")), \(Self.milliseconds("p.pushed_at", as: "pushed_ms")),
                -- Tag names and digests hold no comma.
                coalesce(g.tags, '') AS tags,
                (
                    SELECT t.tag FROM tag_stats t
                    WHERE t.repository_id = \(Self.repositoryID) AND t.current_digest = p.digest AND t.last_pulled_at IS NOT NULL
                    ORDER BY t.last_pulled_at DESC, t.tag LIMIT 1
                ) AS last_tag_pulled,
                array_to_string(ARRAY(
                    SELECT x.index_digest FROM manifest_children x
                    JOIN catalog_manifests i ON i.repository_id = x.repository_id AND i.digest = x.index_digest
                    WHERE x.repository_id = \(Self.repositoryID) AND x.child_digest = p.digest AND i.deleted_at IS NULL
                    ORDER BY 1
                ), ',') AS indexes,
                (
                    SELECT x.platform FROM manifest_children x
                    WHERE x.repository_id = \(Self.repositoryID) AND x.child_digest = p.digest AND x.platform IS NOT NULL LIMIT 1
                ) AS platform
            FROM page p
            LEFT JOIN manifest_stats s ON s.repository_id = \(Self.repositoryID) AND s.digest = p.digest
            LEFT JOIN (
                SELECT d.digest, string_agg(c.tag, ',' ORDER BY c.tag) AS tags
                FROM catalog_tags c LEFT JOIN tag_stats t ON t.repository_id = \(Self.repositoryID) AND t.tag = c.tag
                CROSS JOIN LATERAL (SELECT coalesce(c.digest, t.current_digest) AS digest) d
                WHERE c.repository_id = \(Self.repositoryID) AND c.deleted_at IS NULL AND d.digest IN (SELECT digest FROM page)
                GROUP BY d.digest
            ) g ON g.digest = p.digest
            ORDER BY \(order("p", "p.digest"))
            """,
            [String(id)] + parameters
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
