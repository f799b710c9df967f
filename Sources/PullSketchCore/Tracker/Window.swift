/// An exactly counted key of a drained window.
public struct HotEntry: Hashable, Sendable {
    public var kind: KeyKind
    public var repository: RepositoryName
    /// The tag name for tag keys, the digest for manifest keys.
    public var reference: String
    public var fetches: UInt64
    public var checks: UInt64
    /// The latest pull event of the key in the window.
    public var lastSeen: Timestamp
    /// For tags: the digest served by the latest fetch, and when.
    public var currentDigest: Digest?
    public var currentDigestAt: Timestamp

    public init(
        kind: KeyKind,
        repository: RepositoryName,
        reference: String,
        fetches: UInt64 = 0,
        checks: UInt64 = 0,
        lastSeen: Timestamp,
        currentDigest: Digest? = nil,
        currentDigestAt: Timestamp = .distantPast
    ) {
        self.kind = kind
        self.repository = repository
        self.reference = reference
        self.fetches = fetches
        self.checks = checks
        self.lastSeen = lastSeen
        self.currentDigest = currentDigest
        self.currentDigestAt = currentDigestAt
    }

    /// Fetches plus checks: every counter update of the key.
    public var updates: UInt64 { fetches &+ checks }
}

/// Pulls of one repository that went to the sketch instead of the hot table.
public struct TailRepository: Hashable, Sendable {
    public var repository: RepositoryName
    public var pulls: UInt64
    public var lastPulled: Timestamp

    public init(repository: RepositoryName, pulls: UInt64, lastPulled: Timestamp) {
        self.repository = repository
        self.pulls = pulls
        self.lastPulled = lastPulled
    }
}

/// What one Redis shard receives of a window: the exact entries of its keys and its own tail
/// sketch, so that a sealed batch of the shard can be reconciled on its own.
public struct ShardWindow: Hashable, Sendable {
    public var shard: Int
    public var hotEntries: [HotEntry]
    /// The non-zero cells of the shard's tail sketch.
    public var sketchCells: [SketchCell]
    /// Counter updates that went into the sketch, N.
    public var tailMass: UInt64
    public var tailRepositories: [TailRepository]
    /// Some repository with tail pulls is missing from `tailRepositories`: estimate all of them.
    public var tailRepositoriesOverflowed: Bool
    /// The latest tail pull, for repositories lost to an overflow.
    public var tailLastPulled: Timestamp

    public init(
        shard: Int,
        hotEntries: [HotEntry] = [],
        sketchCells: [SketchCell] = [],
        tailMass: UInt64 = 0,
        tailRepositories: [TailRepository] = [],
        tailRepositoriesOverflowed: Bool = false,
        tailLastPulled: Timestamp = .distantPast
    ) {
        self.shard = shard
        self.hotEntries = hotEntries
        self.sketchCells = sketchCells
        self.tailMass = tailMass
        self.tailRepositories = tailRepositories
        self.tailRepositoriesOverflowed = tailRepositoriesOverflowed
        self.tailLastPulled = tailLastPulled
    }

    /// Every counter update of the part: exact ones plus the tail mass.
    public var counterUpdates: UInt64 {
        hotEntries.reduce(tailMass) { $0 &+ $1.updates }
    }

    public var isEmpty: Bool { hotEntries.isEmpty && tailMass == 0 }
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

    /// Every counter update of the window: exact ones plus the tail mass.
    public var counterUpdates: UInt64 { shards.reduce(0) { $0 &+ $1.counterUpdates } }

    public var isEmpty: Bool { shards.allSatisfy(\.isEmpty) }

    /// The exact entries of all shards.
    public var hotEntries: [HotEntry] { shards.flatMap(\.hotEntries) }

    /// The tail mass of all shards.
    public var tailMass: UInt64 { shards.reduce(0) { $0 &+ $1.tailMass } }

    /// The bytes of argument text a merge sends, roughly: names, numbers and cells.
    public var approximatePayloadBytes: Int {
        shards.reduce(0) { total, part in
            total + part.sketchCells.count * 16 + part.tailRepositories.reduce(0) { $0 + $1.repository.value.utf8.count + 24 }
                + part.hotEntries.reduce(0) { $0 + $1.repository.value.utf8.count + $1.reference.utf8.count + 100 }
        }
    }
}
