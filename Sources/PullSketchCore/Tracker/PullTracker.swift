import Synchronization

/// The per-process pull tracker a registry embeds (DESIGN §2.1). `record` is the hot path: no I/O,
/// no throwing, no waiting on anything but a stripe lock held for a few dozen nanoseconds, and no
/// allocation for a key already in the window. Every merge interval the flusher calls `drain` and
/// sends the window to Redis; a window that certainly never arrived goes back in with `restore`.
public final class PullTracker: Sendable {
    public let configuration: TrackerConfiguration
    private let stripes: [Stripe]
    /// The next window sequence; holding it also keeps drains and restores one at a time.
    private let nextSequence = Mutex<UInt64>(1)

    public init(configuration: TrackerConfiguration) {
        self.configuration = configuration
        stripes = (0..<configuration.stripeCount).map { _ in Stripe(configuration) }
    }

    /// Counts one pull event, as `CountingRule.updates(for:)` says. Returns at once when the
    /// feature flag is off.
    public func record(_ event: borrowing PullEvent) {
        guard configuration.isEnabled else { return }
        let counter = CountingRule.counter(for: event.method)
        let fetches: UInt64 = counter == .fetch ? 1 : 0
        let checks = 1 &- fetches
        switch event.reference {
        case .tag(let tag):
            let servedDigest = counter == .fetch ? event.servedDigest : nil
            add(.tag, event.repository, tag.value, tag.nameHash, fetches, checks, event.time, servedDigest, event.time)
            if let digest = event.servedDigest, configuration.countingRule.countsServedManifest(of: counter) {
                add(.manifest, event.repository, digest.value, digest.nameHash, fetches, checks, event.time, nil, event.time)
            }
        case .digest(let digest):
            add(.manifest, event.repository, digest.value, digest.nameHash, fetches, checks, event.time, nil, event.time)
        }
    }

    /// Swaps every stripe's window for an empty one and returns what they held, summed per shard.
    public func drain() -> Window {
        nextSequence.withLock { sequence in
            defer { sequence += 1 }
            let shards = (0..<configuration.shardCount).map { shard in
                drainShard(shard)
            }
            return Window(sequence: sequence, parameters: configuration.sketch, shards: shards)
        }
    }

    private func drainShard(_ shard: Int) -> ShardWindow {
        var part = ShardWindow(shard: shard)
        var sketch = CountMinSketch(parameters: configuration.sketch)
        var tailRepositories: [RepositoryName: TailRepository] = [:]
        for stripe in stripes[stripeRange(ofShard: shard)] {
            var drained = StripeWindow(configuration)
            stripe.withLock { swap(&$0, &drained) }
            part.hotEntries += drained.hot.occupiedEntries
            if drained.tailMass > 0 {
                try! sketch.merge(drained.sketch)  // same configuration, same parameters
            }
            part.tailMass &+= drained.tailMass
            part.tailLastPulled = max(part.tailLastPulled, drained.tailLastPulled)
            part.tailRepositoriesOverflowed = part.tailRepositoriesOverflowed || drained.tailRepositories.overflowed
            for (name, tail) in drained.tailRepositories.repositories {
                tailRepositories[name, default: TailRepository(repository: name, pulls: 0, lastPulled: tail.lastPulled)]
                    .absorb(pulls: tail.pulls, lastPulled: tail.lastPulled)
            }
        }
        part.sketchCells = sketch.nonZeroCells()
        part.tailRepositories = tailRepositories.values.sorted { $0.repository.value < $1.repository.value }
        return part
    }

    /// The bytes the tracker's current window holds, names included; at most
    /// `configuration.windowByteBound`, whatever the number of distinct keys recorded.
    public func memoryFootprint() -> Int {
        stripes.reduce(0) { total, stripe in total + stripe.withLock { $0.byteCount } }
    }

    /// Folds a window that could not be delivered back in, as if its pulls were recorded now: exact
    /// entries go back to the hot tables while there is room and to the sketch after that, so every
    /// count is conserved and memory stays within the configured bound. Refused, changing nothing,
    /// when the window's sketch parameters, shards or cells do not fit this tracker.
    public func restore(_ window: Window) throws(SketchError) {
        guard window.parameters == configuration.sketch else {
            throw .parameterMismatch(configuration.sketch, window.parameters)
        }
        if let part = window.shards.first(where: { !(0..<configuration.shardCount).contains($0.shard) }) {
            throw .shardOutOfRange(part.shard, shardCount: configuration.shardCount)
        }
        let cellCount = configuration.sketch.width * configuration.sketch.depth
        for part in window.shards {
            if let bad = part.sketchCells.first(where: { Int($0.index) >= cellCount }) {
                throw .cellOutOfRange(bad.index, configuration.sketch)
            }
        }
        nextSequence.withLock { _ in
            for part in window.shards {
                for entry in part.hotEntries {
                    add(
                        entry.kind,
                        entry.repository,
                        entry.reference,
                        KeyHash.xxh3(entry.reference),
                        entry.fetches,
                        entry.checks,
                        entry.lastSeen,
                        entry.currentDigest,
                        entry.currentDigestAt
                    )
                }
                // A shard's tail belongs to that shard: fold it into the shard's first stripe.
                stripes[stripeRange(ofShard: part.shard).lowerBound].withLock { stripe in
                    try! stripe.sketch.add(cells: part.sketchCells)  // indices checked above
                    stripe.tailMass &+= part.tailMass
                    stripe.tailLastPulled = max(stripe.tailLastPulled, part.tailLastPulled)
                    for tail in part.tailRepositories {
                        stripe.tailRepositories.add(tail.repository, pulls: tail.pulls, lastPulled: tail.lastPulled)
                    }
                    if part.tailRepositoriesOverflowed {
                        stripe.tailRepositories.markOverflowed()
                    }
                }
            }
        }
    }

    @inline(__always)
    private func add(
        _ kind: KeyKind,
        _ repository: borrowing RepositoryName,
        _ reference: borrowing String,
        _ referenceHash: UInt64,
        _ fetches: UInt64,
        _ checks: UInt64,
        _ time: Timestamp,
        _ currentDigest: borrowing Digest?,
        _ currentDigestAt: Timestamp
    ) {
        let hash = KeyHash(
            kind: kind,
            repositoryHash: repository.nameHash,
            referenceHash: referenceHash,
            seed: configuration.sketch.seed
        )
        // The tracker owns its stripes for its whole life: borrow one without retaining it.
        let stripe = Unmanaged.passUnretained(stripes[stripeIndex(hash)])
        stripe._withUnsafeGuaranteedRef { stripe in
            stripe.withLock { window in
                let isHot = window.hot.add(
                    hash,
                    kind: kind,
                    repository: repository,
                    reference: reference,
                    fetches: fetches,
                    checks: checks,
                    time: time,
                    currentDigest: currentDigest,
                    currentDigestAt: currentDigestAt
                )
                if !isHot {
                    window.addToTail(hash, repository: repository, updates: fetches &+ checks, time: time)
                }
            }
        }
    }

    /// The stripes of one shard.
    private func stripeRange(ofShard shard: Int) -> Range<Int> {
        let perShard = configuration.stripeCount / configuration.shardCount
        return shard * perShard..<(shard + 1) * perShard
    }

    /// The key's shard picks a group of stripes; other bits of the hash pick one within it.
    @inline(__always)
    private func stripeIndex(_ hash: KeyHash) -> Int {
        let perShard = configuration.stripeCount / configuration.shardCount
        return hash.shard(count: configuration.shardCount) * perShard + hash.stripe(count: perShard)
    }
}
