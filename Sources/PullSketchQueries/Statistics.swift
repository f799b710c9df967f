public import PullSketchCore

/// The statistics of one manifest.
public struct ManifestStatistics: Hashable, Sendable {
    public var digest: String
    public var fetches: UInt64
    public var checks: UInt64
    /// An upper bound: exact when `pullCountError` is 0.
    public var pullCount: UInt64
    /// The true count is at least `pullCount - pullCountError`.
    public var pullCountError: UInt64
    public var lastPulledAt: Timestamp?
    /// False when the last-pulled time comes from a tail estimate (never earlier than the truth).
    public var lastPulledExact: Bool

    public init(
        digest: String, fetches: UInt64, checks: UInt64, pullCount: UInt64, pullCountError: UInt64, lastPulledAt: Timestamp?,
        lastPulledExact: Bool
    ) {
        self.digest = digest
        self.fetches = fetches
        self.checks = checks
        self.pullCount = pullCount
        self.pullCountError = pullCountError
        self.lastPulledAt = lastPulledAt
        self.lastPulledExact = lastPulledExact
    }
}

/// The statistics of one tag, with those of the manifest it points at.
public struct TagStatistics: Hashable, Sendable {
    public var tag: String
    public var fetches: UInt64
    public var checks: UInt64
    public var pullCount: UInt64
    public var pullCountError: UInt64
    public var lastPulledAt: Timestamp?
    public var lastPulledExact: Bool
    public var currentDigest: String?
    public var pushedAt: Timestamp?
    public var manifest: ManifestStatistics?

    public init(
        tag: String, fetches: UInt64, checks: UInt64, pullCount: UInt64, pullCountError: UInt64, lastPulledAt: Timestamp?,
        lastPulledExact: Bool, currentDigest: String?, pushedAt: Timestamp?, manifest: ManifestStatistics?
    ) {
        self.tag = tag
        self.fetches = fetches
        self.checks = checks
        self.pullCount = pullCount
        self.pullCountError = pullCountError
        self.lastPulledAt = lastPulledAt
        self.lastPulledExact = lastPulledExact
        self.currentDigest = currentDigest
        self.pushedAt = pushedAt
        self.manifest = manifest
    }
}

extension ManifestStatistics {
    /// The count has no error bound and the last pull time came from an exact entry.
    public var isExact: Bool { pullCountError == 0 && lastPulledExact }
}

extension TagStatistics {
    /// The count has no error bound and the last pull time came from an exact entry.
    public var isExact: Bool { pullCountError == 0 && lastPulledExact }
}

/// How a repository's tag listing is ordered.
public enum TagOrder: String, Hashable, Sendable, CaseIterable {
    case lastPulled = "last_pulled"
    case pullCount = "pull_count"
    case name
}

/// A dry-run pruning policy: a tag is a candidate when it meets every criterion given.
public struct PrunePolicy: Hashable, Sendable {
    /// Not pulled for this many days (a tag never pulled is judged by its push time).
    public var notPulledDays: Int?
    /// Fewer pulls than this, counted by the upper bound so approximation never condemns a used tag.
    public var maxPulls: UInt64?
    /// Only tags matching this PostgreSQL regular expression.
    public var tagPattern: String?
    /// Never tags matching this PostgreSQL regular expression.
    public var excludePattern: String?

    public init(notPulledDays: Int? = nil, maxPulls: UInt64? = nil, tagPattern: String? = nil, excludePattern: String? = nil) {
        self.notPulledDays = notPulledDays
        self.maxPulls = maxPulls
        self.tagPattern = tagPattern
        self.excludePattern = excludePattern
    }
}

/// A tag a policy would delete, and why.
public struct PruneCandidate: Hashable, Sendable {
    public var tag: String
    public var pullCount: UInt64
    public var lastPulledAt: Timestamp?
    public var pushedAt: Timestamp?
    public var reasons: [String]
}

/// A repository as the search page lists it.
public struct RepositorySummary: Hashable, Sendable {
    public var name: String
    /// Tags the catalog knows and the registry has not deleted.
    public var tags: Int
    public var lastPulledAt: Timestamp?
}
