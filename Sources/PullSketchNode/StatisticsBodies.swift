import Hummingbird
import PullSketchCore
import PullSketchEvents
import PullSketchStore

/// A value or JSON `null`: the API spells out every field, where synthesized encoding would
/// leave a nil one out.
struct Nullable<Value: Encodable>: Encodable {
    let value: Value?

    init(_ value: Value?) {
        self.value = value
    }

    func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        if let value { try container.encode(value) } else { try container.encodeNil() }
    }
}

/// A time as the API writes it: RFC 3339 UTC, or null.
func date(_ time: Timestamp?) -> Nullable<String> {
    Nullable(time.map(RFC3339.format))
}

/// `GET …/tag/<tag>/pull_statistics`: upstream Quay's field names, the names the requirement
/// documents used for the same figures (`manifest_digest`, `manifest_total_pull_count`,
/// `manifest_last_pull_date`), then last used, the raw counters (null once the key was counted in
/// a tail, where only pulls are kept), the error bounds and whether each figure is exact. Dates
/// are ISO 8601 UTC or null.
struct TagStatisticsBody: Encodable {
    let tag_name: String
    let tag_pull_count: UInt64
    let last_tag_pull_date: Nullable<String>
    let current_manifest_digest: Nullable<String>
    let manifest_pull_count: UInt64
    let last_manifest_pull_date: Nullable<String>
    let manifest_digest: Nullable<String>
    let manifest_total_pull_count: UInt64
    let manifest_last_pull_date: Nullable<String>
    let last_tag_used_date: Nullable<String>
    let last_manifest_used_date: Nullable<String>
    let tag_fetches: Nullable<UInt64>
    let tag_checks: Nullable<UInt64>
    let tag_pull_count_error: UInt64
    let tag_exact: Bool
    let manifest_fetches: Nullable<UInt64>
    let manifest_checks: Nullable<UInt64>
    let manifest_pull_count_error: UInt64
    let manifest_exact: Bool
    let pushed_at: Nullable<String>

    init(_ statistics: TagStatistics) {
        let manifest = statistics.manifest ?? .neverPulled(statistics.currentDigest ?? "")
        tag_name = statistics.tag
        tag_pull_count = statistics.pullCount
        last_tag_pull_date = date(statistics.lastPulledAt)
        current_manifest_digest = Nullable(statistics.currentDigest)
        manifest_pull_count = manifest.pullCount
        last_manifest_pull_date = date(manifest.lastPulledAt)
        manifest_digest = current_manifest_digest
        manifest_total_pull_count = manifest_pull_count
        manifest_last_pull_date = last_manifest_pull_date
        last_tag_used_date = date(statistics.lastUsedAt)
        last_manifest_used_date = date(manifest.lastUsedAt)
        tag_fetches = Nullable(statistics.fetches)
        tag_checks = Nullable(statistics.checks)
        tag_pull_count_error = statistics.pullCountError
        tag_exact = statistics.isExact
        manifest_fetches = Nullable(manifest.fetches)
        manifest_checks = Nullable(manifest.checks)
        manifest_pull_count_error = manifest.pullCountError
        manifest_exact = manifest.isExact
        pushed_at = date(statistics.pushedAt)
    }
}

/// A manifest as the API shows it: PullSketch's names, the names of the requirement documents
/// (`total_pull_count`, `last_pull_date`, `last_tag_pulled`), last used, the bound, whether it is
/// exact, the live tags pointing at it (none: untagged), its push time, and for a platform
/// manifest the image indexes listing it and its platform.
struct ManifestBody: Encodable {
    let manifest_digest: String
    let manifest_pull_count: UInt64
    let last_manifest_pull_date: Nullable<String>
    let total_pull_count: UInt64
    let last_pull_date: Nullable<String>
    let last_tag_pulled: Nullable<String>
    let last_manifest_used_date: Nullable<String>
    let fetches: Nullable<UInt64>
    let checks: Nullable<UInt64>
    let pull_count_error: UInt64
    let exact: Bool
    let tags: [String]
    let untagged: Bool
    let pushed_at: Nullable<String>
    let index_digests: [String]
    let platform: Nullable<String>

    init(_ listing: ManifestListing) {
        let statistics = listing.statistics
        manifest_digest = statistics.digest
        manifest_pull_count = statistics.pullCount
        last_manifest_pull_date = date(statistics.lastPulledAt)
        total_pull_count = statistics.pullCount
        last_pull_date = last_manifest_pull_date
        last_tag_pulled = Nullable(listing.lastTagPulled)
        last_manifest_used_date = date(statistics.lastUsedAt)
        fetches = Nullable(statistics.fetches)
        checks = Nullable(statistics.checks)
        pull_count_error = statistics.pullCountError
        exact = statistics.isExact
        tags = listing.tags
        untagged = listing.tags.isEmpty
        pushed_at = date(listing.pushedAt)
        index_digests = listing.indexes
        platform = Nullable(listing.platform)
    }
}

/// A platform manifest under its image index: the platform (null while unknown) and its pulls.
struct PlatformBody: Encodable {
    let platform: Nullable<String>
    let manifest_digest: String
    let total_pull_count: UInt64
    let last_pull_date: Nullable<String>
    let last_manifest_used_date: Nullable<String>
    let pull_count_error: UInt64
    let exact: Bool

    init(_ manifest: PlatformManifest) {
        let statistics = manifest.statistics
        platform = Nullable(manifest.platform)
        manifest_digest = statistics.digest
        total_pull_count = statistics.pullCount
        last_pull_date = date(statistics.lastPulledAt)
        last_manifest_used_date = date(statistics.lastUsedAt)
        pull_count_error = statistics.pullCountError
        exact = statistics.isExact
    }
}

/// `GET …/manifest/<digest>/pull_statistics`: the manifest, and each tag pointing at it now with
/// its own pulls (`current_tags`); for an image index, each platform manifest it lists with its
/// pulls (`platforms`, empty otherwise).
struct ManifestStatisticsBody: Encodable {
    let manifest: ManifestBody
    let current_tags: [TagStatisticsBody]
    let platforms: [PlatformBody]

    init(_ listing: ManifestListing, currentTags: [TagStatistics], platforms: [PlatformManifest]) {
        manifest = ManifestBody(listing)
        current_tags = currentTags.map(TagStatisticsBody.init)
        self.platforms = platforms.map(PlatformBody.init)
    }

    func encode(to encoder: any Encoder) throws {
        try manifest.encode(to: encoder)
        var container = encoder.container(keyedBy: Key.self)
        try container.encode(current_tags, forKey: .current_tags)
        try container.encode(platforms, forKey: .platforms)
    }

    private enum Key: CodingKey {
        case current_tags, platforms
    }
}

/// `GET …/pull_statistics`: one page of the repository's tags and one of its manifests (tagged or
/// not), in the same order; `tag_statistics` and `manifest_statistics` as the requirement
/// documents name them (`tag_statistics` repeats `tags`).
struct RepositoryStatisticsBody: Encodable {
    let repository: String
    let sort: String
    let order: String
    let page: Int
    let limit: Int
    let has_more: Bool
    let has_more_manifests: Bool
    /// Pulls that reached no tag's or manifest's count (docs/accuracy.md); usually 0.
    let unattributed_pull_count: Int64
    let tags: [TagStatisticsBody]
    let tag_statistics: [TagStatisticsBody]
    let manifest_statistics: [ManifestBody]

    /// `rows` and `manifests` hold up to one more than the page, which says whether more follow.
    init(repository: String, page: TagPage, rows: [TagStatistics], manifests: [ManifestListing], unattributedPulls: Int64) {
        self.repository = repository
        unattributed_pull_count = unattributedPulls
        sort = page.order.rawValue
        order = page.descending ? "desc" : "asc"
        self.page = page.page
        limit = page.limit
        has_more = rows.count > page.limit
        has_more_manifests = manifests.count > page.limit
        tags = rows.prefix(page.limit).map(TagStatisticsBody.init)
        tag_statistics = tags
        manifest_statistics = manifests.prefix(page.limit).map(ManifestBody.init)
    }
}

/// `GET …/prune_candidates`: the tags the policy would delete and the untagged manifests it would
/// garbage-collect, each with its reasons.
struct PruneCandidatesBody: Encodable {
    struct Candidate: Encodable {
        let tag_name: String
        let tag_pull_count: UInt64
        let last_tag_pull_date: Nullable<String>
        let last_tag_used_date: Nullable<String>
        let pushed_at: Nullable<String>
        let manifest_digest: Nullable<String>
        let manifest_pull_count: UInt64
        let last_manifest_used_date: Nullable<String>
        let manifest_pushed_at: Nullable<String>
        let reasons: [String]
    }

    struct ManifestCandidate: Encodable {
        let manifest_digest: String
        let manifest_pull_count: UInt64
        let last_manifest_pull_date: Nullable<String>
        let last_manifest_used_date: Nullable<String>
        let pushed_at: Nullable<String>
        let reasons: [String]
    }

    let repository: String
    let dry_run = true
    /// Since when PullSketch knows pulls (live counting or imported history); null before any.
    let pulls_known_since: Nullable<String>
    /// When the latest batch still quarantined was set aside (its pulls are counted nowhere);
    /// null when none is.
    let latest_quarantined_batch_at: Nullable<String>
    /// False when the policy's "not pulled" window reaches back before `pulls_known_since`, or a
    /// quarantined batch may hold pulls the policy judges: a candidate may have been pulled unseen.
    let history_complete: Bool
    let candidates: [Candidate]
    let manifest_candidates: [ManifestCandidate]

    init(
        repository: String, knownSince: Timestamp?, latestQuarantine: Timestamp?, historyComplete: Bool, candidates: [PruneCandidate],
        manifests: [ManifestPruneCandidate]
    ) {
        self.repository = repository
        pulls_known_since = date(knownSince)
        latest_quarantined_batch_at = date(latestQuarantine)
        history_complete = historyComplete
        self.candidates = candidates.map {
            Candidate(
                tag_name: $0.tag, tag_pull_count: $0.pullCount, last_tag_pull_date: date($0.lastPulledAt),
                last_tag_used_date: date($0.activity.lastUsedAt), pushed_at: date($0.activity.pushedAt), manifest_digest: Nullable($0.digest),
                manifest_pull_count: $0.manifestPullCount, last_manifest_used_date: date($0.manifestActivity.lastUsedAt),
                manifest_pushed_at: date($0.manifestActivity.pushedAt), reasons: $0.reasons
            )
        }
        manifest_candidates = manifests.map {
            ManifestCandidate(
                manifest_digest: $0.digest, manifest_pull_count: $0.pullCount, last_manifest_pull_date: date($0.lastPulledAt),
                last_manifest_used_date: date($0.activity.lastUsedAt), pushed_at: date($0.activity.pushedAt), reasons: $0.reasons
            )
        }
    }
}

/// A query parameter out of range or malformed: a 400 naming the parameter.
struct InvalidParameter: Error {
    let message: String

    init(_ name: String, _ rule: String) {
        message = "\(name): \(rule)"
    }
}

extension Parameters {
    /// A whole number in `range`, nil when absent.
    func integer<Number: FixedWidthInteger>(_ name: String, in range: ClosedRange<Number>) throws(InvalidParameter) -> Number? {
        guard let text = get(name) else { return nil }
        guard let value = Number(text), range.contains(value) else { throw InvalidParameter(name, "a whole number in \(range.lowerBound)...\(range.upperBound)") }
        return value
    }

    /// Text of at most `maximumLength` characters, nil when absent. A NUL (`%00`) is refused:
    /// PostgreSQL text cannot hold one, and a pattern cut short there would mean something else.
    func text(_ name: String, maximumLength: Int) throws(InvalidParameter) -> String? {
        guard let text = get(name) else { return nil }
        guard text.count <= maximumLength else { throw InvalidParameter(name, "at most \(maximumLength) characters") }
        guard !text.utf8.contains(0) else { throw InvalidParameter(name, "must not contain a NUL character") }
        return text
    }
}

/// A page of a tag listing, from `?sort=last_pulled|pull_count|name&order=asc|desc&limit=&page=`.
struct TagPage {
    static let maximumLimit = 500
    static let maximumPage = 1_000_000

    var order = TagOrder.lastPulled
    var descending = true
    var limit = 50
    var page = 1

    init(_ query: Parameters) throws(InvalidParameter) {
        if let text = query.get("sort") {
            guard let order = TagOrder(rawValue: text) else { throw InvalidParameter("sort", "one of last_pulled, pull_count, name") }
            self.order = order
            descending = order != .name
        }
        if let text = query.get("order") {
            guard text == "asc" || text == "desc" else { throw InvalidParameter("order", "asc or desc") }
            descending = text == "desc"
        }
        limit = try query.integer("limit", in: 1...Self.maximumLimit) ?? limit
        page = try query.integer("page", in: 1...Self.maximumPage) ?? page
    }

    /// Rows before this page; at most 500 × 1,000,000, far from overflow.
    var offset: Int { (page - 1) * limit }
}

extension PrunePolicy {
    /// From `?not_pulled_days=N&max_pulls=K&tag_pattern=…&exclude_pattern=…&keep_most_recent=M`; at
    /// least one of days, pulls, tag pattern or tags to keep must be given.
    init(_ query: Parameters) throws(InvalidParameter) {
        self.init()
        notPulledDays = try query.integer("not_pulled_days", in: 0...Self.maximumDays)
        maxPulls = try query.integer("max_pulls", in: 0...Self.maximumPulls)
        tagPattern = try query.text("tag_pattern", maximumLength: Self.maximumPatternLength)
        excludePattern = try query.text("exclude_pattern", maximumLength: Self.maximumPatternLength)
        keepMostRecent = try query.integer("keep_most_recent", in: 0...Self.maximumKeep)
        guard notPulledDays != nil || maxPulls != nil || tagPattern != nil || keepMostRecent != nil else {
            throw InvalidParameter("not_pulled_days, max_pulls, tag_pattern or keep_most_recent", "give at least one criterion")
        }
    }
}

extension TagStatistics {
    static func neverPulled(_ tag: String) -> TagStatistics {
        TagStatistics(
            tag: tag, fetches: 0, checks: 0, pullCount: 0, pullCountError: 0, lastPulledAt: nil, lastPulledExact: true, lastUsedAt: nil,
            lastUsedExact: true, currentDigest: nil, pushedAt: nil, manifest: nil
        )
    }
}

extension ManifestStatistics {
    static func neverPulled(_ digest: String) -> ManifestStatistics {
        ManifestStatistics(
            digest: digest, fetches: 0, checks: 0, pullCount: 0, pullCountError: 0, lastPulledAt: nil, lastPulledExact: true, lastUsedAt: nil,
            lastUsedExact: true
        )
    }
}
