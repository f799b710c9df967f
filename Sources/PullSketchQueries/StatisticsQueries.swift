public import PullSketchCore
public import PullSketchPostgres

/// The read side's queries, each one statement.
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
            SELECT r.name, count(c.tag), \(Self.milliseconds("max(t.last_pulled_at)"))
            FROM repositories r
            LEFT JOIN catalog_tags c ON c.repository_id = r.id AND c.deleted_at IS NULL
            LEFT JOIN tag_stats t ON t.repository_id = c.repository_id AND t.tag = c.tag
            WHERE strpos(r.name, $1) > 0
            GROUP BY r.name ORDER BY r.name LIMIT $2
            """,
            [text, String(limit)]
        ).rows.map { row in
            let row = Row(row)
            return RepositorySummary(name: try row.text(0), tags: Int(try row.count(1)), lastPulledAt: try row.time(2))
        }
    }

    /// A manifest's statistics; nil for a digest the repository never had.
    public func manifest(_ repository: RepositoryName, _ digest: Digest) throws -> ManifestStatistics? {
        let rows = try connection.query(
            """
            SELECT m.digest, \(Self.statisticsColumns("s"))
            FROM catalog_manifests m JOIN repositories r ON r.id = m.repository_id
            LEFT JOIN manifest_stats s ON s.repository_id = m.repository_id AND s.digest = m.digest
            WHERE r.name = $1 AND m.digest = $2 AND m.deleted_at IS NULL
            """,
            [repository.value, digest.value]
        ).rows
        return try rows.first.map { try Self.manifest(Row($0), from: 0) }
    }

    /// The tags `policy` would delete, with the reasons; deleted tags are never listed. A tag is
    /// listed only when it and the manifest it points to both meet the policy.
    public func pruneCandidates(_ repository: RepositoryName, policy: PrunePolicy, now: Timestamp) throws -> [PruneCandidate] {
        var conditions = ["true"]
        var parameters = [repository.value]
        if let days = policy.notPulledDays {
            parameters.append(String(Self.cutoff(days: days, now: now).millisecondsSinceEpoch))
            let cutoff = "to_timestamp($\(parameters.count)::bigint / 1000.0)"
            conditions.append("coalesce(greatest(t.last_used_at, c.pushed_at), '-infinity') < \(cutoff)")
            conditions.append("(d.digest IS NULL OR coalesce(greatest(m.last_used_at, cm.pushed_at), '-infinity') < \(cutoff))")
        }
        if let maxPulls = policy.maxPulls {
            parameters.append(String(maxPulls))
            conditions.append("coalesce(t.pull_count, 0) < $\(parameters.count)::bigint AND coalesce(m.pull_count, 0) < $\(parameters.count)::bigint")
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
            SELECT c.tag, coalesce(t.pull_count, 0), \(Self.milliseconds("t.last_pulled_at")), \(Self.milliseconds("t.last_used_at")),
                \(Self.milliseconds("c.pushed_at")), d.digest, coalesce(m.pull_count, 0), \(Self.milliseconds("m.last_used_at")),
                \(Self.milliseconds("cm.pushed_at"))
            FROM catalog_tags c JOIN repositories r ON r.id = c.repository_id
            LEFT JOIN tag_stats t ON t.repository_id = c.repository_id AND t.tag = c.tag
            CROSS JOIN LATERAL (SELECT coalesce(c.digest, t.current_digest) AS digest) d
            LEFT JOIN manifest_stats m ON m.repository_id = c.repository_id AND m.digest = d.digest
            LEFT JOIN catalog_manifests cm ON cm.repository_id = c.repository_id AND cm.digest = d.digest
            WHERE r.name = $1 AND c.deleted_at IS NULL AND \(conditions.joined(separator: " AND "))
            ORDER BY greatest(t.last_used_at, c.pushed_at, m.last_used_at, cm.pushed_at) ASC NULLS FIRST, c.tag
            """,
            parameters
        ).rows
        return try rows.map { row in
            let row = Row(row)
            var candidate = PruneCandidate(
                tag: try row.text(0), pullCount: try row.count(1), lastPulledAt: try row.time(2),
                activity: Activity(lastUsedAt: try row.time(3), pushedAt: try row.time(4)), digest: row.optionalText(5),
                manifestPullCount: try row.count(6), manifestActivity: Activity(lastUsedAt: try row.time(7), pushedAt: try row.time(8)),
                reasons: []
            )
            if let days = policy.notPulledDays {
                candidate.reasons.append("tag " + Self.inactivity(candidate.activity, days: days))
                if let digest = candidate.digest {
                    candidate.reasons.append("manifest \(digest) " + Self.inactivity(candidate.manifestActivity, days: days))
                    let manifestDecided = (candidate.manifestActivity.latest ?? .distantPast) > (candidate.activity.latest ?? .distantPast)
                    candidate.reasons.append("decided by the \(manifestDecided ? "manifest" : "tag"), the more recently active")
                } else {
                    candidate.reasons.append("the tag's manifest is not known")
                }
            }
            if let maxPulls = policy.maxPulls {
                candidate.reasons.append("tag \(candidate.pullCount) pulls and manifest \(candidate.manifestPullCount) pulls, fewer than \(maxPulls)")
            }
            if let pattern = policy.tagPattern { candidate.reasons.append("matches \(pattern)") }
            return candidate
        }
    }

    /// The untagged manifests `policy` would delete (no live tag points to them), by its day and
    /// pull criteria; empty when it has neither.
    public func manifestPruneCandidates(_ repository: RepositoryName, policy: PrunePolicy, now: Timestamp) throws -> [ManifestPruneCandidate] {
        guard policy.notPulledDays != nil || policy.maxPulls != nil else { return [] }
        var conditions: [String] = []
        var parameters = [repository.value]
        if let days = policy.notPulledDays {
            parameters.append(String(Self.cutoff(days: days, now: now).millisecondsSinceEpoch))
            conditions.append("coalesce(greatest(s.last_used_at, m.pushed_at), '-infinity') < to_timestamp($\(parameters.count)::bigint / 1000.0)")
        }
        if let maxPulls = policy.maxPulls {
            parameters.append(String(maxPulls))
            conditions.append("coalesce(s.pull_count, 0) < $\(parameters.count)::bigint")
        }
        let rows = try connection.query(
            """
            SELECT m.digest, coalesce(s.pull_count, 0), \(Self.milliseconds("s.last_pulled_at")), \(Self.milliseconds("s.last_used_at")),
                \(Self.milliseconds("m.pushed_at"))
            FROM catalog_manifests m JOIN repositories r ON r.id = m.repository_id
            LEFT JOIN manifest_stats s ON s.repository_id = m.repository_id AND s.digest = m.digest
            WHERE r.name = $1 AND m.deleted_at IS NULL AND \(conditions.joined(separator: " AND "))
                AND NOT EXISTS (
                    SELECT 1 FROM catalog_tags c LEFT JOIN tag_stats t ON t.repository_id = c.repository_id AND t.tag = c.tag
                    WHERE c.repository_id = m.repository_id AND c.deleted_at IS NULL AND coalesce(c.digest, t.current_digest) = m.digest
                )
            ORDER BY greatest(s.last_used_at, m.pushed_at) ASC NULLS FIRST, m.digest
            """,
            parameters
        ).rows
        return try rows.map { row in
            let row = Row(row)
            var candidate = ManifestPruneCandidate(
                digest: try row.text(0), pullCount: try row.count(1), lastPulledAt: try row.time(2),
                activity: Activity(lastUsedAt: try row.time(3), pushedAt: try row.time(4)), reasons: ["no tag points to it"]
            )
            if let days = policy.notPulledDays { candidate.reasons.append("manifest " + Self.inactivity(candidate.activity, days: days)) }
            if let maxPulls = policy.maxPulls { candidate.reasons.append("\(candidate.pullCount) pulls, fewer than \(maxPulls)") }
            return candidate
        }
    }

    /// `now` less `days` days; `days` is at most `PrunePolicy.maximumDays`, so nothing overflows.
    private static func cutoff(days: Int, now: Timestamp) -> Timestamp {
        let days = Int64(min(max(days, 0), PrunePolicy.maximumDays))
        return Timestamp(millisecondsSinceEpoch: now.millisecondsSinceEpoch.subtractingReportingOverflow(days * 86_400_000).partialValue)
    }

    /// Why a key counts as inactive for `days` days.
    private static func inactivity(_ activity: Activity, days: Int) -> String {
        switch (activity.lastUsedAt, activity.pushedAt) {
        case (nil, nil): "never used, push time unknown"
        case (nil, _?): "never used, pushed more than \(days) days ago"
        default: "not used or pushed for \(days) days"
        }
    }

    private func tags(where condition: String, _ parameters: [String], order: String, limit: Int, offset: Int) throws -> [TagStatistics] {
        let rows = try connection.query(
            """
            SELECT c.tag, \(Self.statisticsColumns("t")), coalesce(c.digest, t.current_digest), \(Self.milliseconds("c.pushed_at")),
                coalesce(c.digest, t.current_digest), \(Self.statisticsColumns("m"))
            FROM catalog_tags c JOIN repositories r ON r.id = c.repository_id
            LEFT JOIN tag_stats t ON t.repository_id = c.repository_id AND t.tag = c.tag
            LEFT JOIN manifest_stats m ON m.repository_id = c.repository_id AND m.digest = coalesce(c.digest, t.current_digest)
            WHERE r.name = $1 AND c.deleted_at IS NULL AND \(condition)
            ORDER BY \(order) LIMIT \(max(0, limit)) OFFSET \(max(0, offset))
            """,
            parameters
        ).rows
        return try rows.map { row in
            let row = Row(row)
            return TagStatistics(
                tag: try row.text(0), fetches: try row.optionalCount(1), checks: try row.optionalCount(2), pullCount: try row.count(3),
                pullCountError: try row.count(4), lastPulledAt: try row.time(5), lastPulledExact: try row.flag(6),
                lastUsedAt: try row.time(7), lastUsedExact: try row.flag(8), currentDigest: row.optionalText(9), pushedAt: try row.time(10),
                manifest: row.optionalText(11) == nil ? nil : try Self.manifest(row, from: 11)
            )
        }
    }

    /// The statistics columns of a (possibly absent) row `s`, zeros and exact when absent, raw
    /// counters NULL when incomplete, in the
    /// order `manifest(_:from:)` and `tags` read them after the name.
    private static func statisticsColumns(_ s: String) -> String {
        """
        CASE WHEN coalesce(\(s).counters_exact, true) THEN coalesce(\(s).fetches, 0) END,
        CASE WHEN coalesce(\(s).counters_exact, true) THEN coalesce(\(s).checks, 0) END,
        coalesce(\(s).pull_count, 0), coalesce(\(s).pull_count_error, 0),
        \(milliseconds("\(s).last_pulled_at")), coalesce(\(s).last_pulled_exact, true),
        \(milliseconds("\(s).last_used_at")), coalesce(\(s).last_used_exact, true)
        """
    }

    private static func manifest(_ row: Row, from start: Int) throws -> ManifestStatistics {
        ManifestStatistics(
            digest: try row.text(start), fetches: try row.optionalCount(start + 1), checks: try row.optionalCount(start + 2),
            pullCount: try row.count(start + 3), pullCountError: try row.count(start + 4),
            lastPulledAt: try row.time(start + 5), lastPulledExact: try row.flag(start + 6),
            lastUsedAt: try row.time(start + 7), lastUsedExact: try row.flag(start + 8)
        )
    }

    /// A timestamptz expression as milliseconds since the epoch.
    private static func milliseconds(_ expression: String) -> String {
        "(extract(epoch FROM \(expression)) * 1000)::bigint"
    }
}

/// One result row, decoded by position; a value of the wrong shape throws instead of trapping.
struct Row {
    let values: [String?]

    init(_ values: [String?]) {
        self.values = values
    }

    func optionalText(_ index: Int) -> String? {
        index < values.count ? values[index] : nil
    }

    func text(_ index: Int) throws -> String {
        guard let value = optionalText(index) else { throw RowError(column: index, value: nil) }
        return value
    }

    func count(_ index: Int) throws -> UInt64 {
        guard let value = UInt64(try text(index)) else { throw RowError(column: index, value: values[index]) }
        return value
    }

    func optionalCount(_ index: Int) throws -> UInt64? {
        try optionalText(index) == nil ? nil : count(index)
    }

    func time(_ index: Int) throws -> Timestamp? {
        guard let text = optionalText(index) else { return nil }
        guard let milliseconds = Int64(text) else { throw RowError(column: index, value: text) }
        return Timestamp(millisecondsSinceEpoch: milliseconds)
    }

    func flag(_ index: Int) throws -> Bool {
        switch try text(index) {
        case "t": return true
        case "f": return false
        case let other: throw RowError(column: index, value: other)
        }
    }
}

/// A result value that is not what the query selects: a schema out of step with the code.
struct RowError: Error, CustomStringConvertible {
    let column: Int
    let value: String?

    var description: String { "unexpected value \(value.map { "'\($0)'" } ?? "NULL") in result column \(column)" }
}
