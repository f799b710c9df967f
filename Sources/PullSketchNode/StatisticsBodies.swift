import Hummingbird
import PullSketchCore
import PullSketchEvents
import PullSketchQueries

/// A string or JSON `null`: the API spells out every field, where synthesized encoding would
/// leave a nil one out.
struct Nullable: Encodable {
    let value: String?

    init(_ value: String?) {
        self.value = value
    }

    func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        if let value { try container.encode(value) } else { try container.encodeNil() }
    }
}

/// `GET …/tag/<tag>/pull_statistics`: upstream Quay's field names, then the raw counters, the
/// error bounds and whether each figure is exact. Dates are ISO 8601 UTC or null.
struct TagStatisticsBody: Encodable {
    let tag_name: String
    let tag_pull_count: UInt64
    let last_tag_pull_date: Nullable
    let current_manifest_digest: Nullable
    let manifest_pull_count: UInt64
    let last_manifest_pull_date: Nullable
    let tag_fetches: UInt64
    let tag_checks: UInt64
    let tag_pull_count_error: UInt64
    let tag_exact: Bool
    let manifest_fetches: UInt64
    let manifest_checks: UInt64
    let manifest_pull_count_error: UInt64
    let manifest_exact: Bool
    let pushed_at: Nullable

    init(_ statistics: TagStatistics) {
        let manifest = statistics.manifest ?? .neverPulled(statistics.currentDigest ?? "")
        tag_name = statistics.tag
        tag_pull_count = statistics.pullCount
        last_tag_pull_date = Nullable(statistics.lastPulledAt.map(RFC3339.format))
        current_manifest_digest = Nullable(statistics.currentDigest)
        manifest_pull_count = manifest.pullCount
        last_manifest_pull_date = Nullable(manifest.lastPulledAt.map(RFC3339.format))
        tag_fetches = statistics.fetches
        tag_checks = statistics.checks
        tag_pull_count_error = statistics.pullCountError
        tag_exact = statistics.isExact
        manifest_fetches = manifest.fetches
        manifest_checks = manifest.checks
        manifest_pull_count_error = manifest.pullCountError
        manifest_exact = manifest.isExact
        pushed_at = Nullable(statistics.pushedAt.map(RFC3339.format))
    }
}

/// `GET …/manifest/<digest>/pull_statistics`.
struct ManifestStatisticsBody: Encodable {
    let manifest_digest: String
    let manifest_pull_count: UInt64
    let last_manifest_pull_date: Nullable
    let fetches: UInt64
    let checks: UInt64
    let pull_count_error: UInt64
    let exact: Bool

    init(_ statistics: ManifestStatistics) {
        manifest_digest = statistics.digest
        manifest_pull_count = statistics.pullCount
        last_manifest_pull_date = Nullable(statistics.lastPulledAt.map(RFC3339.format))
        fetches = statistics.fetches
        checks = statistics.checks
        pull_count_error = statistics.pullCountError
        exact = statistics.isExact
    }
}

/// `GET …/pull_statistics`: one page of the repository's tags.
struct RepositoryStatisticsBody: Encodable {
    let repository: String
    let sort: String
    let order: String
    let page: Int
    let limit: Int
    let has_more: Bool
    let tags: [TagStatisticsBody]

    init(repository: String, page: TagPage, rows: [TagStatistics]) {
        self.repository = repository
        sort = page.order.rawValue
        order = page.descending ? "desc" : "asc"
        self.page = page.page
        limit = page.limit
        has_more = rows.count > page.limit
        tags = rows.prefix(page.limit).map(TagStatisticsBody.init)
    }
}

/// `GET …/prune_candidates`: the tags the policy would delete, each with its reasons.
struct PruneCandidatesBody: Encodable {
    struct Candidate: Encodable {
        let tag_name: String
        let tag_pull_count: UInt64
        let last_tag_pull_date: Nullable
        let pushed_at: Nullable
        let reasons: [String]
    }

    let repository: String
    let dry_run = true
    let candidates: [Candidate]

    init(repository: String, candidates: [PruneCandidate]) {
        self.repository = repository
        self.candidates = candidates.map {
            Candidate(
                tag_name: $0.tag, tag_pull_count: $0.pullCount, last_tag_pull_date: Nullable($0.lastPulledAt.map(RFC3339.format)),
                pushed_at: Nullable($0.pushedAt.map(RFC3339.format)), reasons: $0.reasons
            )
        }
    }
}

/// A page of a tag listing, from `?sort=last_pulled|pull_count|name&order=asc|desc&limit=&page=`.
struct TagPage {
    var order = TagOrder.lastPulled
    var descending = true
    var limit = 50
    var page = 1

    init?(_ query: Parameters) {
        if let text = query.get("sort") {
            guard let order = TagOrder(rawValue: text) else { return nil }
            self.order = order
            descending = order != .name
        }
        if let text = query.get("order") {
            guard text == "asc" || text == "desc" else { return nil }
            descending = text == "desc"
        }
        if let text = query.get("limit") {
            guard let limit = Int(text), (1...500).contains(limit) else { return nil }
            self.limit = limit
        }
        if let text = query.get("page") {
            guard let page = Int(text), (1...1_000_000).contains(page) else { return nil }
            self.page = page
        }
    }
}

extension PrunePolicy {
    /// From `?not_pulled_days=N&max_pulls=K&tag_pattern=…&exclude_pattern=…`; nil when a number
    /// is malformed or no criterion is given.
    init?(_ query: Parameters) {
        self.init()
        if let text = query.get("not_pulled_days") {
            guard let days = Int(text), days >= 0 else { return nil }
            notPulledDays = days
        }
        if let text = query.get("max_pulls") {
            guard let pulls = UInt64(text) else { return nil }
            maxPulls = pulls
        }
        tagPattern = query.get("tag_pattern")
        excludePattern = query.get("exclude_pattern")
        guard notPulledDays != nil || maxPulls != nil || tagPattern != nil else { return nil }
    }
}

extension TagStatistics {
    static func neverPulled(_ tag: String) -> TagStatistics {
        TagStatistics(
            tag: tag, fetches: 0, checks: 0, pullCount: 0, pullCountError: 0, lastPulledAt: nil, lastPulledExact: true,
            currentDigest: nil, pushedAt: nil, manifest: nil
        )
    }
}

extension ManifestStatistics {
    static func neverPulled(_ digest: String) -> ManifestStatistics {
        ManifestStatistics(digest: digest, fetches: 0, checks: 0, pullCount: 0, pullCountError: 0, lastPulledAt: nil, lastPulledExact: true)
    }
}
