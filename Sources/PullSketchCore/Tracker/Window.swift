/// An exactly counted key of a drained window.
public struct HotEntry: Hashable, Sendable {
    public var key: PullKey
    public var fetches: UInt64
    public var checks: UInt64
    /// Pulls under the counting rule the tracker applied.
    public var pulls: UInt64
    /// The latest pull of the key in the window; `.distantPast` when it was used but not pulled.
    public var lastPulled: Timestamp
    /// The latest request that resolved the key, pull or not.
    public var lastUsed: Timestamp
    /// For tags: the digest served by the latest request, and when.
    public var currentDigest: Digest?
    public var currentDigestAt: Timestamp

    public init(
        key: PullKey,
        fetches: UInt64 = 0,
        checks: UInt64 = 0,
        pulls: UInt64 = 0,
        lastPulled: Timestamp = .distantPast,
        lastUsed: Timestamp,
        currentDigest: Digest? = nil,
        currentDigestAt: Timestamp = .distantPast
    ) {
        self.key = key
        self.fetches = fetches
        self.checks = checks
        self.pulls = pulls
        self.lastPulled = lastPulled
        self.lastUsed = lastUsed
        self.currentDigest = currentDigest
        self.currentDigestAt = currentDigestAt
    }

    init(key: PullKey, counts: KeyEffect, lastPulled: Timestamp, lastUsed: Timestamp, currentDigest: Digest?, currentDigestAt: Timestamp) {
        self.init(
            key: key, fetches: counts.fetches, checks: counts.checks, pulls: counts.pulls,
            lastPulled: lastPulled, lastUsed: lastUsed, currentDigest: currentDigest, currentDigestAt: currentDigestAt
        )
    }

    /// The raw counters and pulls together.
    public var counts: KeyEffect { KeyEffect(fetches: fetches, checks: checks, pulls: pulls) }
}

/// Tail keys of one repository: their pulls and latest pull, and their latest use.
public struct TailRepository: Hashable, Sendable {
    public var repository: RepositoryName
    public var pulls: UInt64
    /// `.distantPast` when the repository's tail keys were used but not pulled.
    public var lastPulled: Timestamp
    public var lastUsed: Timestamp
    /// Of `pulls`, those of keys whose names did not fit the window's name table: counted to their
    /// key only if the catalog knows it already.
    public var unnamedPulls: UInt64
    /// Uses, pulls or not, of keys whose names did not fit: only then can a catalog key the window
    /// does not name have been used in the tail, so only then does the reconciler estimate the
    /// repository's catalog keys.
    public var unnamedUses: UInt64

    public init(
        repository: RepositoryName, pulls: UInt64 = 0, lastPulled: Timestamp = .distantPast, lastUsed: Timestamp, unnamedPulls: UInt64 = 0,
        unnamedUses: UInt64 = 0
    ) {
        self.repository = repository
        self.pulls = pulls
        self.lastPulled = lastPulled
        self.lastUsed = lastUsed
        self.unnamedPulls = unnamedPulls
        self.unnamedUses = unnamedUses
    }
}

/// What one Redis shard receives of a window: the exact entries of its keys and its own tail
/// sketch, so that a sealed batch of the shard can be reconciled on its own.
public struct ShardWindow: Hashable, Sendable {
    public var shard: Int
    public var hotEntries: [HotEntry]
    /// The non-zero cells of the shard's tail sketch: the tail keys' pulls.
    public var sketchCells: [SketchCell]
    /// The set bits of the shard's `UsageFilter`: every tail key used, pulled or not, that
    /// `tailNames` does not hold.
    public var usageBits: [UInt32]
    /// Pulls that went into the sketch, N.
    public var tailMass: UInt64
    public var tailRepositories: [TailRepository]
    /// Some repository with tail keys is missing from `tailRepositories`: estimate all of them.
    public var tailRepositoriesOverflowed: Bool
    /// The latest tail pull and tail use, for repositories lost to an overflow.
    public var tailLastPulled: Timestamp
    public var tailLastUsed: Timestamp
    /// The tail keys used in the window, as far as the tracker's name tables held them: the
    /// reconciler registers them before it estimates, so a key's pulls never wait for its push.
    public var tailNames: [PullKey]
    /// Unnamed pulls (`TailRepository.unnamedPulls`) of repositories missing from
    /// `tailRepositories`.
    public var unnamedPullsOfOverflow: UInt64

    public init(
        shard: Int,
        hotEntries: [HotEntry] = [],
        sketchCells: [SketchCell] = [],
        usageBits: [UInt32] = [],
        tailMass: UInt64 = 0,
        tailRepositories: [TailRepository] = [],
        tailRepositoriesOverflowed: Bool = false,
        tailLastPulled: Timestamp = .distantPast,
        tailLastUsed: Timestamp = .distantPast,
        tailNames: [PullKey] = [],
        unnamedPullsOfOverflow: UInt64 = 0
    ) {
        self.shard = shard
        self.hotEntries = hotEntries
        self.sketchCells = sketchCells
        self.usageBits = usageBits
        self.tailMass = tailMass
        self.tailRepositories = tailRepositories
        self.tailRepositoriesOverflowed = tailRepositoriesOverflowed
        self.tailLastPulled = tailLastPulled
        self.tailLastUsed = tailLastUsed
        self.tailNames = tailNames
        self.unnamedPullsOfOverflow = unnamedPullsOfOverflow
    }

    /// Every pull of the part: exact ones plus the tail mass.
    public var pulls: UInt64 {
        hotEntries.reduce(tailMass) { $0 &+ $1.pulls }
    }

    /// No key was used: a tail key that was used is named or sets usage bits.
    public var isEmpty: Bool { hotEntries.isEmpty && usageBits.isEmpty && tailNames.isEmpty }

    /// Tail pulls of keys the part does not name.
    public var unnamedPulls: UInt64 {
        tailRepositories.reduce(unnamedPullsOfOverflow) { $0 &+ $1.unnamedPulls }
    }

    /// The bytes of argument text a merge of the part sends, roughly: names, numbers and cells.
    public var approximatePayloadBytes: Int {
        sketchCells.count * 16 + usageBits.count * 8 + tailRepositories.reduce(0) { $0 + $1.repository.value.utf8.count + 32 }
            + tailNames.reduce(0) { $0 + $1.repository.value.utf8.count + $1.name.utf8.count + 4 }
            + hotEntries.reduce(0) { $0 + $1.key.repository.value.utf8.count + $1.key.name.utf8.count + 100 }
    }
}

/// Everything a tracker recorded between two drains, one part per shard: what the flusher sends
/// to Redis.
public struct Window: Hashable, Sendable {
    /// Increases by one at every drain of a tracker; with the node id it makes merges idempotent.
    public var sequence: UInt64
    public var parameters: SketchParameters
    /// One part per shard, in shard order.
    public var shards: [ShardWindow]

    public init(sequence: UInt64, parameters: SketchParameters, shards: [ShardWindow]) {
        self.sequence = sequence
        self.parameters = parameters
        self.shards = shards
    }

    /// Every pull of the window: exact ones plus the tail mass.
    public var pulls: UInt64 { shards.reduce(0) { $0 &+ $1.pulls } }

    public var isEmpty: Bool { shards.allSatisfy(\.isEmpty) }

    /// The exact entries of all shards.
    public var hotEntries: [HotEntry] { shards.flatMap(\.hotEntries) }

    /// The tail mass of all shards.
    public var tailMass: UInt64 { shards.reduce(0) { $0 &+ $1.tailMass } }

    /// Tail pulls of keys the window does not name.
    public var unnamedPulls: UInt64 { shards.reduce(0) { $0 &+ $1.unnamedPulls } }

    /// The bytes of argument text a merge sends, roughly: names, numbers and cells.
    public var approximatePayloadBytes: Int {
        shards.reduce(0) { $0 + $1.approximatePayloadBytes }
    }
}
