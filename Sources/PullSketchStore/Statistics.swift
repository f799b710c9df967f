public import PullSketchCore

/// The statistics of one manifest.
public struct ManifestStatistics: Hashable, Sendable {
    public var digest: String
    /// The raw counters; nil once the manifest was in a tail, where only pulls are counted.
    public var fetches: UInt64?
    public var checks: UInt64?
    /// An upper bound: exact when `pullCountError` is 0.
    public var pullCount: UInt64
    /// The true count is at least `pullCount - pullCountError`.
    public var pullCountError: UInt64
    public var lastPulledAt: Timestamp?
    /// False when the last-pulled time comes from a tail estimate (never earlier than the truth).
    public var lastPulledExact: Bool
    /// The latest request that resolved the manifest, pull or not.
    public var lastUsedAt: Timestamp?
    public var lastUsedExact: Bool

    public init(
        digest: String, fetches: UInt64?, checks: UInt64?, pullCount: UInt64, pullCountError: UInt64, lastPulledAt: Timestamp?,
        lastPulledExact: Bool, lastUsedAt: Timestamp?, lastUsedExact: Bool
    ) {
        self.digest = digest
        self.fetches = fetches
        self.checks = checks
        self.pullCount = pullCount
        self.pullCountError = pullCountError
        self.lastPulledAt = lastPulledAt
        self.lastPulledExact = lastPulledExact
        self.lastUsedAt = lastUsedAt
        self.lastUsedExact = lastUsedExact
    }
}

/// The statistics of one tag, with those of the manifest it points at.
public struct TagStatistics: Hashable, Sendable {
    public var tag: String
    /// The raw counters; nil once the tag was in a tail, where only pulls are counted.
    public var fetches: UInt64?
    public var checks: UInt64?
    public var pullCount: UInt64
    public var pullCountError: UInt64
    public var lastPulledAt: Timestamp?
    public var lastPulledExact: Bool
    public var lastUsedAt: Timestamp?
    public var lastUsedExact: Bool
    public var currentDigest: String?
    public var pushedAt: Timestamp?
    public var manifest: ManifestStatistics?

    public init(
        tag: String, fetches: UInt64?, checks: UInt64?, pullCount: UInt64, pullCountError: UInt64, lastPulledAt: Timestamp?,
        lastPulledExact: Bool, lastUsedAt: Timestamp?, lastUsedExact: Bool, currentDigest: String?, pushedAt: Timestamp?,
        manifest: ManifestStatistics?
    ) {
        self.tag = tag
        self.fetches = fetches
        self.checks = checks
        self.pullCount = pullCount
        self.pullCountError = pullCountError
        self.lastPulledAt = lastPulledAt
        self.lastPulledExact = lastPulledExact
        self.lastUsedAt = lastUsedAt
        self.lastUsedExact = lastUsedExact
        self.currentDigest = currentDigest
        self.pushedAt = pushedAt
        self.manifest = manifest
    }
}

extension ManifestStatistics {
    /// The count has no error bound and both times came from exact entries.
    public var isExact: Bool { pullCountError == 0 && lastPulledExact && lastUsedExact }
}

extension TagStatistics {
    /// The count has no error bound and both times came from exact entries.
    public var isExact: Bool { pullCountError == 0 && lastPulledExact && lastUsedExact }
}

/// How a repository's tag listing is ordered.
public enum TagOrder: String, Hashable, Sendable, CaseIterable {
    case lastPulled = "last_pulled"
    case pullCount = "pull_count"
    case name
}

/// A dry-run pruning policy: a tag is a candidate when it meets every criterion given, judged
/// together with the manifest it points to, so that a tag whose manifest is in use by digest is
/// never listed. Untagged manifests are judged by the same day and pull criteria.
public struct PrunePolicy: Hashable, Sendable {
    /// Not used for this many days: the tag and its manifest were neither requested (GET or HEAD)
    /// nor pushed in that time. At most `maximumDays`.
    public var notPulledDays: Int?
    /// Fewer pulls than this, for the tag and for its manifest, counted by the upper bound so that
    /// approximation never condemns a used tag.
    public var maxPulls: UInt64?
    /// Only tags matching this PostgreSQL regular expression (at most `maximumPatternLength`).
    public var tagPattern: String?
    /// Never tags matching this PostgreSQL regular expression.
    public var excludePattern: String?
    /// Never the this-many most recently active tags of those the patterns select: latest used
    /// (by tag, or through their manifest or its platforms) or pushed, the order the dry run lists
    /// its candidates in. At most `maximumKeep`.
    public var keepMostRecent: Int?

    /// A century: any longer window is a mistake, and day arithmetic stays far from overflow.
    public static let maximumDays = 36_500
    /// PostgreSQL's bigint, where pull counts live.
    public static let maximumPulls = UInt64(Int64.max)
    public static let maximumPatternLength = 256
    /// More tags than any repository holds.
    public static let maximumKeep = 100_000_000

    public init(
        notPulledDays: Int? = nil, maxPulls: UInt64? = nil, tagPattern: String? = nil, excludePattern: String? = nil, keepMostRecent: Int? = nil
    ) {
        self.notPulledDays = notPulledDays
        self.maxPulls = maxPulls
        self.tagPattern = tagPattern
        self.excludePattern = excludePattern
        self.keepMostRecent = keepMostRecent
    }
}

/// What last kept a tag or manifest active: its latest use, or its push when that came later or
/// it was never used.
public struct Activity: Hashable, Sendable {
    public var lastUsedAt: Timestamp?
    public var pushedAt: Timestamp?

    public init(lastUsedAt: Timestamp?, pushedAt: Timestamp?) {
        self.lastUsedAt = lastUsedAt
        self.pushedAt = pushedAt
    }

    /// The later of the two; nil when neither is known.
    public var latest: Timestamp? {
        guard let lastUsedAt else { return pushedAt }
        guard let pushedAt else { return lastUsedAt }
        return max(lastUsedAt, pushedAt)
    }
}

/// A tag a policy would delete, and why.
public struct PruneCandidate: Hashable, Sendable {
    public var tag: String
    public var pullCount: UInt64
    public var lastPulledAt: Timestamp?
    public var activity: Activity
    /// The manifest the tag points to (the catalog's, else the one last served), if known.
    public var digest: String?
    public var manifestPullCount: UInt64
    public var manifestActivity: Activity
    public var reasons: [String]
}

/// An untagged manifest a policy would delete, and why.
public struct ManifestPruneCandidate: Hashable, Sendable {
    public var digest: String
    public var pullCount: UInt64
    public var lastPulledAt: Timestamp?
    public var activity: Activity
    public var reasons: [String]
}

/// A repository as the search page lists it.
public struct RepositorySummary: Hashable, Sendable {
    public var name: String
    /// Tags the catalog knows and the registry has not deleted.
    public var tags: Int
    public var lastPulledAt: Timestamp?
}

/// One statistics row as stored, for comparisons with a known truth.
public struct StoredRow: Hashable, Sendable {
    public var repository: String
    /// The tag or the digest.
    public var reference: String
    public var pullCount: UInt64
    public var pullCountError: UInt64
    public var lastPulledAt: Timestamp?
    public var lastUsedAt: Timestamp?
}
