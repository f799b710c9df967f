public import PullSketchCore
public import PullSketchPostgres

/// The read side's queries, each one statement.
public struct StatisticsQueries {
    let connection: PostgresConnection

    public init(connection: PostgresConnection) {
        self.connection = connection
    }

    /// A tag's statistics; zeros for a known tag never pulled; nil for a tag the registry never
    /// reported (or deleted).
    public func tag(_ repository: RepositoryName, _ tag: TagName) throws -> TagStatistics? {
        try tags(of: repository, where: "c.tag = $2", [tag.value], order: { _, tag in tag }, limit: 1, offset: 0).first
    }

    /// One page of a repository's tags with their current manifests' statistics (zeros for a
    /// manifest never pulled).
    public func tags(_ repository: RepositoryName, order: TagOrder, descending: Bool, limit: Int, offset: Int) throws -> [TagStatistics] {
        try tags(
            of: repository, where: "true", [], order: { Self.orderBy(order, descending: descending, statistics: $0, name: $1) },
            limit: limit, offset: offset
        )
    }

    /// The `ORDER BY` of a sorted page: by last pull or pull count of statistics row `statistics`
    /// (never-pulled first when ascending), ties broken by `name`; or by `name` alone.
    static func orderBy(_ order: TagOrder, descending: Bool, statistics s: String, name: String) -> String {
        let direction = descending ? "DESC" : "ASC"
        return switch order {
        case .lastPulled: "\(s).last_pulled_at \(descending ? "DESC NULLS LAST" : "ASC NULLS FIRST"), \(name)"
        case .pullCount: "coalesce(\(s).pull_count, 0) \(direction), \(name)"
        case .name: "\(name) \(direction)"
        }
    }

    /// Up to `limit` live tags named after `name` (from the first when nil), by name: pages of
    /// an export, each as cheap as the first.
    public func tags(_ repository: RepositoryName, after name: String?, limit: Int) throws -> [TagStatistics] {
        try tags(of: repository, where: "c.tag > $2", [name ?? ""], order: { _, tag in tag }, limit: limit, offset: 0)
    }

    /// How many live tags the repository has.
    public func tagCount(_ repository: RepositoryName) throws -> Int {
        try connection.query(
            """
            SELECT count(*) AS tags FROM catalog_tags c JOIN repositories r ON r.id = c.repository_id
            WHERE r.name = $1 AND c.deleted_at IS NULL
            """,
            [repository.value]
        ).namedRows[0].decode("tags")
    }

    /// The live tags pointing at `digest` now, by name, with their statistics (at most 1,000).
    public func tags(_ repository: RepositoryName, pointingAt digest: Digest) throws -> [TagStatistics] {
        try tags(
            of: repository, where: "coalesce(c.digest, t.current_digest) = $2", [digest.value], order: { _, tag in tag }, limit: 1_000, offset: 0
        )
    }

    /// Repositories whose name contains `text` (all when empty) and, when `patterns` are given,
    /// matches one of them (`*` matching any characters, `/` included), by name, with their live tag
    /// count and latest tag pull. The repositories are picked first and only their tags are read:
    /// grouped after joining, every repository's tags were read, seconds on millions of rows.
    public func repositories(containing text: String, matchingAny patterns: [String]? = nil, limit: Int) throws -> [RepositorySummary] {
        try connection.query(
            """
            SELECT r.name, a.tags, \(Self.milliseconds("a.last_pulled_at", as: "last_pulled_ms"))
            FROM (
                SELECT id, name FROM repositories
                WHERE strpos(name, $1) > 0 AND ($3::text[] IS NULL OR name LIKE ANY ($3::text[]))
                ORDER BY name LIMIT $2
            ) r
            CROSS JOIN LATERAL (
                SELECT count(*) AS tags, max(t.last_pulled_at) AS last_pulled_at
                FROM catalog_tags c LEFT JOIN tag_stats t ON t.repository_id = r.id AND t.tag = c.tag
                WHERE c.repository_id = r.id AND c.deleted_at IS NULL
            ) a
            ORDER BY r.name
            """,
            [text, String(limit), patterns.map { PostgresArray.literal($0.map(Self.likePattern)) }]
        ).namedRows.map { row in
            RepositorySummary(name: try row.decode("name"), tags: try row.decode("tags"), lastPulledAt: try row.time("last_pulled_ms"))
        }
    }

    /// `LIKE`'s pattern for a glob whose `*` matches any characters: `\`, `%` and `_` stand for
    /// themselves.
    static func likePattern(_ glob: String) -> String {
        var pattern = ""
        for character in glob {
            switch character {
            case "*": pattern.append("%")
            case "\\", "%", "_": pattern += "\\\(character)"
            default: pattern.append(character)
            }
        }
        return pattern
    }

    /// Pulls of the repository's keys that reached no key's count: tail pulls of keys whose names
    /// did not fit their window (docs/accuracy.md). Those keys' counts may be short by this much.
    public func unattributedPulls(_ repository: RepositoryName) throws -> Int64 {
        let rows = try connection.query(
            "SELECT a.pulls FROM unattributed_pulls a JOIN repositories r ON r.id = a.repository_id WHERE r.name = $1",
            [repository.value]
        ).namedRows
        return try rows.first?.decode("pulls", as: Int64.self) ?? 0
    }

    /// Whether any statistics or catalog row exists.
    public func isEmpty() throws -> Bool {
        try connection.query("SELECT NOT EXISTS (SELECT 1 FROM repositories) AS empty").namedRows[0].decode("empty")
    }

    /// Every statistics row of one kind that holds statistics, for comparisons with a known truth.
    public func allRows(_ kind: KeyKind) throws -> [StoredRow] {
        let (table, column) = kind == .tag ? ("tag_stats", "tag") : ("manifest_stats", "digest")
        return try connection.query(
            """
            SELECT r.name AS repository, s.\(column) AS reference, s.pull_count, s.pull_count_error,
                \(Self.milliseconds("s.last_pulled_at", as: "last_pulled_ms")), \(Self.milliseconds("s.last_used_at", as: "last_used_ms"))
            FROM \(table) s JOIN repositories r ON r.id = s.repository_id WHERE \(Self.holdsStatistics("s"))
            """
        ).namedRows.map { row in
            StoredRow(
                repository: try row.decode("repository"), reference: try row.decode("reference"), pullCount: try row.decode("pull_count"),
                pullCountError: try row.decode("pull_count_error"), lastPulledAt: try row.time("last_pulled_ms"),
                lastUsedAt: try row.time("last_used_ms")
            )
        }
    }

    /// Whether statistics row `row` holds statistics: a pushed manifest has a row from its push
    /// on (`Catalog.withStatisticsRows`), with zeros and no times until it is used.
    static func holdsStatistics(_ row: String) -> String {
        "(\(row).pull_count > 0 OR \(row).last_used_at IS NOT NULL)"
    }

    /// The tags `policy` would delete, with the reasons; deleted tags are never listed. A tag is
    /// listed only when it and the manifest it points to both meet the policy — for an image index,
    /// every platform manifest it lists too — and, for a tag that names another manifest (a
    /// signature, attestation or referrers tag), only when that manifest is not kept either
    /// (`withoutReferrersOfKeptSubjects`). A manifest's push time is read from its statistics
    /// row, which every pushed manifest has (`Catalog.withStatisticsRows`): joined from the
    /// catalog, it cost a sixth to a quarter of the dry run.
    public func pruneCandidates(_ repository: RepositoryName, policy: PrunePolicy, now: Timestamp) throws -> [PruneCandidate] {
        guard let id = try id(of: repository) else { return [] }
        var conditions = ["true"]
        var parameters = [String(id)]
        if let days = policy.notPulledDays {
            parameters.append(String(Self.cutoff(days: days, now: now).millisecondsSinceEpoch))
            let cutoff = PostgresTime.timestamp(milliseconds: "$\(parameters.count)::bigint")
            conditions.append("coalesce(greatest(tag_used, tag_pushed), '-infinity') < \(cutoff)")
            conditions.append("(digest IS NULL OR coalesce(greatest(manifest_used, platforms_used, manifest_pushed), '-infinity') < \(cutoff))")
        }
        if let maxPulls = policy.maxPulls {
            parameters.append(String(maxPulls))
            conditions.append(
                "coalesce(tag_pulls, 0) < $\(parameters.count)::bigint AND greatest(manifest_pulls, platforms_pulls, 0) < $\(parameters.count)::bigint"
            )
        }
        var tagConditions = ["true"]
        if let pattern = policy.tagPattern {
            parameters.append(pattern)
            tagConditions.append("c.tag ~ $\(parameters.count)")
        }
        if let pattern = policy.excludePattern {
            parameters.append(pattern)
            tagConditions.append("c.tag !~ $\(parameters.count)")
        }
        // The rank of each selected tag from the most recently active, in the order candidates are
        // listed in, reversed: computed only when asked, as it sorts every selected tag.
        var recency = ""
        if let keep = policy.keepMostRecent {
            parameters.append(String(keep))
            conditions.append("recency > $\(parameters.count)::bigint")
            recency = ", row_number() OVER (ORDER BY greatest(t.last_used_at, c.pushed_at, m.last_used_at, k.last_used_at, m.pushed_at) DESC NULLS LAST, c.tag DESC) AS recency"
        }
        var reasons = TagPruneReasons(policy)
        // Every live tag is joined first and the policy applied to the joined rows: behind the fence
        // (`OFFSET 0`) the planner sees all the repository's tags and reads each table's share once,
        // by primary-key range, into hash joins; with the policy inside, it guessed a third of them
        // and probed the manifest tables once per tag — 1.3–3× slower on 2 M rows (docs/decisions.md).
        // The rows, thousands of them, are read in binary: numbers and times as eight bytes, not text.
        let candidates = try connection.withBinaryResult(
            """
            SELECT tag, coalesce(tag_pulls, 0) AS pull_count, last_pulled_at, tag_used, tag_pushed, digest,
                coalesce(manifest_pulls, 0) AS manifest_pull_count, manifest_used, manifest_pushed, platforms_pulls
            FROM (
                SELECT c.tag, t.pull_count AS tag_pulls, t.last_pulled_at, t.last_used_at AS tag_used, c.pushed_at AS tag_pushed, d.digest,
                    m.pull_count AS manifest_pulls, m.last_used_at AS manifest_used, m.pushed_at AS manifest_pushed,
                    k.pull_count AS platforms_pulls, k.last_used_at AS platforms_used\(recency)
                FROM catalog_tags c
                LEFT JOIN tag_stats t ON t.repository_id = \(Self.repositoryID) AND t.tag = c.tag
                CROSS JOIN LATERAL (SELECT coalesce(c.digest, t.current_digest) AS digest) d
                LEFT JOIN manifest_stats m ON m.repository_id = \(Self.repositoryID) AND m.digest = d.digest
                \(Self.platformUse(index: "d.digest"))
                WHERE c.repository_id = \(Self.repositoryID) AND c.deleted_at IS NULL AND \(tagConditions.joined(separator: " AND "))
                OFFSET 0
            ) s
            WHERE \(conditions.joined(separator: " AND "))
            ORDER BY greatest(tag_used, tag_pushed, manifest_used, platforms_used, manifest_pushed) ASC NULLS FIRST, tag
            """,
            parameters
        ) { result in
            let tag = try result.column("tag", .text), pullCount = try result.column("pull_count", .int8)
            let lastPulled = try result.column("last_pulled_at", .timestamptz), used = try result.column("tag_used", .timestamptz)
            let pushed = try result.column("tag_pushed", .timestamptz), digest = try result.column("digest", .text)
            let manifestPullCount = try result.column("manifest_pull_count", .int8)
            let manifestUsed = try result.column("manifest_used", .timestamptz), manifestPushed = try result.column("manifest_pushed", .timestamptz)
            let platformsPulls = try result.column("platforms_pulls", .int8)
            func time(_ row: Int, _ column: PostgresBinaryResult.Column) throws -> Timestamp? {
                try result.milliseconds(row, column).map(Timestamp.init(millisecondsSinceEpoch:))
            }
            return try (0..<result.count).map { row in
                var candidate = PruneCandidate(
                    tag: try result.nonNullText(row, tag), pullCount: try result.uint64(row, pullCount), lastPulledAt: try time(row, lastPulled),
                    activity: Activity(lastUsedAt: try time(row, used), pushedAt: try time(row, pushed)), digest: try result.text(row, digest),
                    manifestPullCount: try result.uint64(row, manifestPullCount),
                    manifestActivity: Activity(lastUsedAt: try time(row, manifestUsed), pushedAt: try time(row, manifestPushed)),
                    reasons: []
                )
                candidate.reasons = reasons.of(candidate, isIndex: try result.int64(row, platformsPulls) != nil)
                return candidate
            }
        }
        return try withoutReferrersOfKeptSubjects(candidates, repositoryID: id, policy: policy, now: now)
    }

    /// The untagged manifests `policy` would delete (no live tag points to them, no live image index
    /// lists them), by its day and pull criteria — an index with its platform manifests; empty when
    /// it has neither. Every table is read by the repository's id, a constant to the planner: joined
    /// by name instead, the check for live tags was planned as an anti-join of every repository's
    /// tags, seconds on millions of rows (docs/decisions.md).
    public func manifestPruneCandidates(_ repository: RepositoryName, policy: PrunePolicy, now: Timestamp) throws -> [ManifestPruneCandidate] {
        guard policy.notPulledDays != nil || policy.maxPulls != nil, let id = try id(of: repository) else { return [] }
        var parameters = [String(id)]
        let conditions = Self.manifestConditions(policy, now: now, used: "s.last_used_at", pushed: "m.pushed_at", pulls: "s.pull_count", &parameters)
        let rows = try connection.query(
            """
            SELECT m.digest, coalesce(s.pull_count, 0) AS pull_count, \(Self.milliseconds("s.last_pulled_at", as: "last_pulled_ms")),
                \(Self.milliseconds("s.last_used_at", as: "last_used_ms")), \(Self.milliseconds("m.pushed_at", as: "pushed_ms"))
            FROM catalog_manifests m
            LEFT JOIN manifest_stats s ON s.repository_id = \(Self.repositoryID) AND s.digest = m.digest
            \(Self.platformUse(index: "m.digest"))
            WHERE m.repository_id = \(Self.repositoryID) AND m.deleted_at IS NULL AND \(conditions.joined(separator: " AND "))
                AND NOT EXISTS (
                    SELECT 1 FROM catalog_tags c LEFT JOIN tag_stats t ON t.repository_id = \(Self.repositoryID) AND t.tag = c.tag
                    WHERE c.repository_id = \(Self.repositoryID) AND c.deleted_at IS NULL AND coalesce(c.digest, t.current_digest) = m.digest
                )
                -- A platform manifest goes with the live index listing it, never on its own.
                AND NOT EXISTS (
                    SELECT 1 FROM manifest_children x
                    JOIN catalog_manifests p ON p.repository_id = x.repository_id AND p.digest = x.index_digest AND p.deleted_at IS NULL
                    WHERE x.repository_id = \(Self.repositoryID) AND x.child_digest = m.digest
                )
            ORDER BY greatest(s.last_used_at, k.last_used_at, m.pushed_at) ASC NULLS FIRST, m.digest
            """,
            parameters
        ).namedRows
        let inactivity = policy.notPulledDays.map { InactivityReasons("manifest ", days: $0) }
        return try rows.map { row in
            var candidate = ManifestPruneCandidate(
                digest: try row.decode("digest"), pullCount: try row.decode("pull_count"), lastPulledAt: try row.time("last_pulled_ms"),
                activity: Activity(lastUsedAt: try row.time("last_used_ms"), pushedAt: try row.time("pushed_ms")), reasons: ["no tag points to it"]
            )
            if let inactivity { candidate.reasons.append(inactivity.reason(candidate.activity)) }
            if let maxPulls = policy.maxPulls { candidate.reasons.append("\(candidate.pullCount) pulls, fewer than \(maxPulls)") }
            return candidate
        }
    }

    /// What `policy` asks of a manifest whose latest use, push time and pulls are the columns named,
    /// with `k` its platform manifests' (`platformUse`): one condition per criterion, its values
    /// appended to `parameters`.
    static func manifestConditions(
        _ policy: PrunePolicy, now: Timestamp, used: String, pushed: String, pulls: String, _ parameters: inout [String]
    ) -> [String] {
        var conditions: [String] = []
        if let days = policy.notPulledDays {
            parameters.append(String(Self.cutoff(days: days, now: now).millisecondsSinceEpoch))
            conditions.append("coalesce(greatest(\(used), k.last_used_at, \(pushed)), '-infinity') < \(PostgresTime.timestamp(milliseconds: "$\(parameters.count)::bigint"))")
        }
        if let maxPulls = policy.maxPulls {
            parameters.append(String(maxPulls))
            conditions.append("greatest(\(pulls), k.pull_count, 0) < $\(parameters.count)::bigint")
        }
        return conditions
    }

    /// `k`: the latest use and the most pulls of the platform manifests the index `index` lists
    /// (NULLs when it is no index): an index is in use while any of them is. Aggregated once for
    /// the repository `$1` and joined, not looked up per row (a lookup per tag cost 9 %
    /// of the dry run over 10,000 tags; this, 3 %).
    static func platformUse(index: String) -> String {
        """
        LEFT JOIN (
            SELECT x.index_digest, max(ps.last_used_at) AS last_used_at, max(ps.pull_count) AS pull_count
            FROM manifest_children x JOIN manifest_stats ps ON ps.repository_id = x.repository_id AND ps.digest = x.child_digest
            WHERE x.repository_id = \(repositoryID) GROUP BY x.index_digest
        ) k ON k.index_digest = \(index)
        """
    }

    /// The repository's id; nil for one PostgreSQL does not know. A read of one repository looks it
    /// up first and passes it as `$1` (`repositoryID`), which PostgreSQL plans as the constant it is:
    /// each table's rows of the repository are one primary-key range, and of partitioned statistics
    /// tables only the repository's partition is planned and read. Computed by a subquery inside
    /// the statement, the id was known only when the statement ran: the planner kept every
    /// partition, guessed their rows, and over 64 partitions a dry run took 17 times as long
    /// (docs/decisions.md).
    func id(of repository: RepositoryName) throws -> Int64? {
        try connection.query("SELECT id FROM repositories WHERE name = $1", [repository.value]).namedRows.first?.decode("id")
    }

    /// `$1` of a read of one repository: its id (`id(of:)`).
    static let repositoryID = "$1::bigint"

    /// `now` less `days` days; `days` is at most `PrunePolicy.maximumDays`, so nothing overflows.
    static func cutoff(days: Int, now: Timestamp) -> Timestamp {
        let days = Int64(min(max(days, 0), PrunePolicy.maximumDays))
        return Timestamp(millisecondsSinceEpoch: now.millisecondsSinceEpoch.subtractingReportingOverflow(days * 86_400_000).partialValue)
    }

    /// A page of the repository's live tags meeting `condition` (over catalog row `c` and
    /// statistics row `t`, with `parameters` from `$2`) in
    /// the order `order(statistics, name)` gives. The page is cut before the rest is joined: only
    /// the columns that order the tags are joined for every tag of the repository (joining whole
    /// statistics rows took 40 % longer); the page's 50 statistics rows and manifests are looked up
    /// afterwards.
    private func tags(
        of repository: RepositoryName, where condition: String, _ parameters: [String], order: (_ statistics: String, _ name: String) -> String,
        limit: Int, offset: Int
    ) throws -> [TagStatistics] {
        guard let id = try id(of: repository) else { return [] }
        let rows = try connection.query(
            """
            SELECT p.tag, \(Self.statisticsColumns("t", as: "t")), coalesce(p.digest, t.current_digest) AS current_digest,
                \(Self.milliseconds("p.pushed_at", as: "pushed_ms")), coalesce(p.digest, t.current_digest) AS m_digest,
                \(Self.statisticsColumns("m", as: "m"))
            FROM (
                SELECT c.tag, c.digest, c.pushed_at, t.last_pulled_at, t.pull_count
                FROM catalog_tags c LEFT JOIN tag_stats t ON t.repository_id = \(Self.repositoryID) AND t.tag = c.tag
                WHERE c.repository_id = \(Self.repositoryID) AND c.deleted_at IS NULL AND \(condition)
                ORDER BY \(order("t", "c.tag")) LIMIT \(max(0, limit)) OFFSET \(max(0, offset))
            ) p
            LEFT JOIN tag_stats t ON t.repository_id = \(Self.repositoryID) AND t.tag = p.tag
            LEFT JOIN manifest_stats m ON m.repository_id = \(Self.repositoryID) AND m.digest = coalesce(p.digest, t.current_digest)
            ORDER BY \(order("p", "p.tag"))
            """,
            [String(id)] + parameters
        ).namedRows
        return try rows.map { row in
            TagStatistics(
                tag: try row.decode("tag"), fetches: try row.decode("t_fetches"), checks: try row.decode("t_checks"),
                pullCount: try row.decode("t_pull_count"), pullCountError: try row.decode("t_pull_count_error"),
                lastPulledAt: try row.time("t_last_pulled_ms"), lastPulledExact: try row.decode("t_last_pulled_exact"),
                lastUsedAt: try row.time("t_last_used_ms"), lastUsedExact: try row.decode("t_last_used_exact"),
                currentDigest: try row.decode("current_digest"), pushedAt: try row.time("pushed_ms"),
                manifest: try row.decode("m_digest", as: String?.self) == nil ? nil : try Self.manifest(row, prefix: "m")
            )
        }
    }

    /// The statistics columns of a (possibly absent) row `s`, named `<prefix>_<column>`: zeros and
    /// exact when absent, raw counters NULL when incomplete.
    static func statisticsColumns(_ s: String, as prefix: String) -> String {
        """
        CASE WHEN coalesce(\(s).counters_exact, true) THEN coalesce(\(s).fetches, 0) END AS \(prefix)_fetches,
        CASE WHEN coalesce(\(s).counters_exact, true) THEN coalesce(\(s).checks, 0) END AS \(prefix)_checks,
        coalesce(\(s).pull_count, 0) AS \(prefix)_pull_count, coalesce(\(s).pull_count_error, 0) AS \(prefix)_pull_count_error,
        \(milliseconds("\(s).last_pulled_at", as: "\(prefix)_last_pulled_ms")),
        coalesce(\(s).last_pulled_exact, true) AS \(prefix)_last_pulled_exact,
        \(milliseconds("\(s).last_used_at", as: "\(prefix)_last_used_ms")), coalesce(\(s).last_used_exact, true) AS \(prefix)_last_used_exact
        """
    }

    /// A manifest's statistics from the columns `statisticsColumns` named with `prefix`.
    static func manifest(_ row: PostgresRow, prefix: String) throws -> ManifestStatistics {
        ManifestStatistics(
            digest: try row.decode("\(prefix)_digest"), fetches: try row.decode("\(prefix)_fetches"), checks: try row.decode("\(prefix)_checks"),
            pullCount: try row.decode("\(prefix)_pull_count"), pullCountError: try row.decode("\(prefix)_pull_count_error"),
            lastPulledAt: try row.time("\(prefix)_last_pulled_ms"), lastPulledExact: try row.decode("\(prefix)_last_pulled_exact"),
            lastUsedAt: try row.time("\(prefix)_last_used_ms"), lastUsedExact: try row.decode("\(prefix)_last_used_exact")
        )
    }

    /// A timestamptz expression as milliseconds since the epoch, named `name`. `date_part` works
    /// in `float8`, exact to the millisecond within 30,000 years of 1970; `extract` works in
    /// `numeric`, which cost a seventh of a 7,800-row dry run's time in PostgreSQL. A time with
    /// microseconds (a registry's push time) rounds to the nearest millisecond either way.
    static func milliseconds(_ expression: String, as name: String) -> String {
        "(date_part('epoch', \(expression)) * 1000)::bigint AS \(name)"
    }
}

extension PostgresRow {
    /// A time selected as milliseconds since the epoch; nil for NULL.
    func time(_ column: String) throws(PostgresError) -> Timestamp? {
        try decode(column, as: Int64?.self).map(Timestamp.init(millisecondsSinceEpoch:))
    }
}

/// Why tags are candidates under one policy. Reasons name no key, so candidates with the same ones
/// share one array (copy-on-write): a dry run makes thousands of candidates and at most 48 distinct
/// lists, and building a list per candidate was a fifth of its time in Swift.
private struct TagPruneReasons {
    private let inactivity: (tag: InactivityReasons, manifest: InactivityReasons, platforms: String)?
    private let maxPulls: UInt64?
    private let notAmongMostRecent: String?
    private let match: String?
    /// The lists built so far, by the key `sharedReasons` computes.
    private var built: [[String]?] = Array(repeating: nil, count: 3 * 16)

    init(_ policy: PrunePolicy) {
        inactivity = policy.notPulledDays.map { days in
            (
                tag: InactivityReasons("tag ", days: days), manifest: InactivityReasons("manifest ", days: days),
                platforms: "an image index: none of its platform manifests used for \(days) days either"
            )
        }
        maxPulls = policy.maxPulls
        notAmongMostRecent = policy.keepMostRecent.map { "not among the \($0) most recently used or pushed tags" }
        match = policy.tagPattern.map { "matches \($0)" }
    }

    /// Why `candidate` is one; `isIndex` when its manifest is an image index.
    mutating func of(_ candidate: PruneCandidate, isIndex: Bool) -> [String] {
        let shared = sharedReasons(candidate, isIndex: isIndex)
        guard let maxPulls else { return shared }
        var reasons = shared
        reasons.reserveCapacity(shared.count + 2)
        reasons.append("tag \(candidate.pullCount) pulls and manifest \(candidate.manifestPullCount) pulls, fewer than \(maxPulls)")
        if let match { reasons.append(match) }
        return reasons
    }

    /// The reasons that name no count: what the tag and its manifest last did and which decided,
    /// then the pattern matched when no count reason comes between.
    private mutating func sharedReasons(_ candidate: PruneCandidate, isIndex: Bool) -> [String] {
        let manifestDecided = (candidate.manifestActivity.latest ?? .distantPast) > (candidate.activity.latest ?? .distantPast)
        // The tag's phrase, then the manifest's, whether it decided and whether it is an index.
        let key: Int
        if inactivity == nil {
            key = 0
        } else if candidate.digest == nil {
            key = InactivityReasons.phrase(candidate.activity) << 4 | 15
        } else {
            key = InactivityReasons.phrase(candidate.activity) << 4 | InactivityReasons.phrase(candidate.manifestActivity) << 2
                | (manifestDecided ? 2 : 0) | (isIndex ? 1 : 0)
        }
        if let reasons = built[key] { return reasons }
        var reasons: [String] = []
        if let inactivity {
            reasons.append(inactivity.tag.reason(candidate.activity))
            if candidate.digest != nil {
                reasons.append(inactivity.manifest.reason(candidate.manifestActivity))
                reasons.append(manifestDecided ? "decided by the manifest, the more recently active" : "decided by the tag, the more recently active")
                if isIndex { reasons.append(inactivity.platforms) }
            } else {
                reasons.append("the tag's manifest is not known")
            }
        }
        if let notAmongMostRecent { reasons.append(notAmongMostRecent) }
        if maxPulls == nil, let match { reasons.append(match) }
        built[key] = reasons
        return reasons
    }
}

/// Why a key counts as inactive for `days` days, by what is known of it, after `subject`: each
/// phrase built once per query, not once per candidate (thousands of them in a dry run).
private struct InactivityReasons {
    /// Never used and push time unknown; never used; neither used nor pushed lately.
    private let phrases: [String]

    init(_ subject: String, days: Int) {
        phrases = [
            subject + "never used, push time unknown", subject + "never used, pushed more than \(days) days ago",
            subject + "not used or pushed for \(days) days",
        ]
    }

    func reason(_ activity: Activity) -> String { phrases[Self.phrase(activity)] }

    /// Which of the three phrases fits `activity`.
    static func phrase(_ activity: Activity) -> Int {
        switch (activity.lastUsedAt, activity.pushedAt) {
        case (nil, nil): 0
        case (nil, _?): 1
        default: 2
        }
    }
}
