public import PullSketchCore
public import PullSketchPostgres

/// The read side's queries (DESIGN §2.6), each one statement.
public struct StatisticsQueries {
    private let connection: PostgresConnection

    public init(connection: PostgresConnection) {
        self.connection = connection
    }

    /// A tag's statistics; zeros for a known tag never pulled; nil for a tag the registry never
    /// reported (or deleted).
    public func tag(_ repository: RepositoryName, _ tag: TagName) throws -> TagStatistics? {
        try tags(where: "c.tag = $2", [repository.value, tag.value], order: "c.tag", limit: 1, offset: 0).first
    }

    /// One page of a repository's tags with their current manifests' statistics (zeros for a
    /// manifest never pulled).
    public func tags(_ repository: RepositoryName, order: TagOrder, descending: Bool, limit: Int, offset: Int) throws -> [TagStatistics] {
        let direction = descending ? "DESC NULLS LAST" : "ASC NULLS FIRST"
        let sort = switch order {
        case .lastPulled: "t.last_pulled_at \(direction), c.tag"
        case .pullCount: "coalesce(t.pull_count, 0) \(descending ? "DESC" : "ASC"), c.tag"
        case .name: "c.tag \(descending ? "DESC" : "ASC")"
        }
        return try tags(where: "true", [repository.value], order: sort, limit: limit, offset: offset)
    }

    /// Repositories whose name contains `text` (all when empty), by name, with their live tag
    /// count and latest tag pull.
    public func repositories(containing text: String, limit: Int) throws -> [RepositorySummary] {
        try connection.query(
            """
            SELECT r.name, count(c.tag), (extract(epoch FROM max(t.last_pulled_at)) * 1000)::bigint
            FROM repositories r
            LEFT JOIN catalog_tags c ON c.repository_id = r.id AND c.deleted_at IS NULL
            LEFT JOIN tag_stats t ON t.repository_id = c.repository_id AND t.tag = c.tag
            WHERE strpos(r.name, $1) > 0
            GROUP BY r.name ORDER BY r.name LIMIT $2
            """,
            [text, String(limit)]
        ).rows.map { row in
            RepositorySummary(
                name: row[0] ?? "", tags: Int(row[1] ?? "0") ?? 0,
                lastPulledAt: row[2].flatMap(Int64.init).map(Timestamp.init(millisecondsSinceEpoch:))
            )
        }
    }

    /// A manifest's statistics; nil for a digest the repository never had.
    public func manifest(_ repository: RepositoryName, _ digest: Digest) throws -> ManifestStatistics? {
        let rows = try connection.query(
            """
            SELECT m.digest, coalesce(s.fetches, 0), coalesce(s.checks, 0), coalesce(s.pull_count, 0),
                coalesce(s.pull_count_error, 0), (extract(epoch FROM s.last_pulled_at) * 1000)::bigint, coalesce(s.last_pulled_exact, true)
            FROM catalog_manifests m JOIN repositories r ON r.id = m.repository_id
            LEFT JOIN manifest_stats s ON s.repository_id = m.repository_id AND s.digest = m.digest
            WHERE r.name = $1 AND m.digest = $2 AND m.deleted_at IS NULL
            """,
            [repository.value, digest.value]
        ).rows
        return rows.first.map { Self.manifest($0, from: 0) }
    }

    /// The tags `policy` would delete, with the reasons; deleted tags are never listed.
    public func pruneCandidates(_ repository: RepositoryName, policy: PrunePolicy, now: Timestamp) throws -> [PruneCandidate] {
        var conditions = ["true"]
        var parameters = [repository.value]
        if let days = policy.notPulledDays {
            parameters.append(String(now.millisecondsSinceEpoch - Int64(days) * 86_400_000))
            conditions.append("coalesce(t.last_pulled_at, c.pushed_at, '-infinity') < to_timestamp($\(parameters.count)::bigint / 1000.0)")
        }
        if let maxPulls = policy.maxPulls {
            parameters.append(String(maxPulls))
            conditions.append("coalesce(t.pull_count, 0) < $\(parameters.count)::bigint")
        }
        if let pattern = policy.tagPattern {
            parameters.append(pattern)
            conditions.append("c.tag ~ $\(parameters.count)")
        }
        if let pattern = policy.excludePattern {
            parameters.append(pattern)
            conditions.append("c.tag !~ $\(parameters.count)")
        }
        let rows = try connection.query(
            """
            SELECT c.tag, coalesce(t.pull_count, 0), (extract(epoch FROM t.last_pulled_at) * 1000)::bigint,
                (extract(epoch FROM c.pushed_at) * 1000)::bigint
            FROM catalog_tags c JOIN repositories r ON r.id = c.repository_id
            LEFT JOIN tag_stats t ON t.repository_id = c.repository_id AND t.tag = c.tag
            WHERE r.name = $1 AND c.deleted_at IS NULL AND \(conditions.joined(separator: " AND "))
            ORDER BY coalesce(t.last_pulled_at, c.pushed_at) ASC NULLS FIRST, c.tag
            """,
            parameters
        ).rows
        return rows.map { row in
            var candidate = PruneCandidate(
                tag: row[0]!, pullCount: UInt64(row[1]!)!, lastPulledAt: Self.time(row[2]), pushedAt: Self.time(row[3]), reasons: []
            )
            if let days = policy.notPulledDays {
                candidate.reasons.append(candidate.lastPulledAt == nil ? "never pulled, pushed more than \(days) days ago" : "not pulled for \(days) days")
            }
            if let maxPulls = policy.maxPulls { candidate.reasons.append("\(candidate.pullCount) pulls, fewer than \(maxPulls)") }
            if let pattern = policy.tagPattern { candidate.reasons.append("matches \(pattern)") }
            return candidate
        }
    }

    private func tags(where condition: String, _ parameters: [String], order: String, limit: Int, offset: Int) throws -> [TagStatistics] {
        let rows = try connection.query(
            """
            SELECT c.tag, coalesce(t.fetches, 0), coalesce(t.checks, 0), coalesce(t.pull_count, 0), coalesce(t.pull_count_error, 0),
                (extract(epoch FROM t.last_pulled_at) * 1000)::bigint, coalesce(t.last_pulled_exact, true),
                coalesce(c.digest, t.current_digest), (extract(epoch FROM c.pushed_at) * 1000)::bigint,
                coalesce(c.digest, t.current_digest), coalesce(m.fetches, 0), coalesce(m.checks, 0), coalesce(m.pull_count, 0), coalesce(m.pull_count_error, 0),
                (extract(epoch FROM m.last_pulled_at) * 1000)::bigint, coalesce(m.last_pulled_exact, true)
            FROM catalog_tags c JOIN repositories r ON r.id = c.repository_id
            LEFT JOIN tag_stats t ON t.repository_id = c.repository_id AND t.tag = c.tag
            LEFT JOIN manifest_stats m ON m.repository_id = c.repository_id AND m.digest = coalesce(c.digest, t.current_digest)
            WHERE r.name = $1 AND c.deleted_at IS NULL AND \(condition)
            ORDER BY \(order) LIMIT \(max(0, limit)) OFFSET \(max(0, offset))
            """,
            parameters
        ).rows
        return rows.map { row in
            TagStatistics(
                tag: row[0]!, fetches: UInt64(row[1]!)!, checks: UInt64(row[2]!)!, pullCount: UInt64(row[3]!)!,
                pullCountError: UInt64(row[4]!)!, lastPulledAt: Self.time(row[5]), lastPulledExact: row[6] == "t",
                currentDigest: row[7], pushedAt: Self.time(row[8]), manifest: row[9] == nil ? nil : Self.manifest(row, from: 9)
            )
        }
    }

    private static func manifest(_ row: [String?], from start: Int) -> ManifestStatistics {
        ManifestStatistics(
            digest: row[start]!, fetches: UInt64(row[start + 1]!)!, checks: UInt64(row[start + 2]!)!,
            pullCount: UInt64(row[start + 3]!)!, pullCountError: UInt64(row[start + 4]!)!,
            lastPulledAt: time(row[start + 5]), lastPulledExact: row[start + 6] == "t"
        )
    }

    private static func time(_ text: String?) -> Timestamp? {
        text.flatMap(Int64.init).map { Timestamp(millisecondsSinceEpoch: $0) }
    }
}
