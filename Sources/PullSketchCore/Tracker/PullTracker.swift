import CCurrentCPU
import Synchronization

/// The per-process pull tracker a registry embeds (docs/tracker.md). `record` is the hot path: no I/O,
/// no throwing, no waiting on anything but a stripe lock held for a few dozen nanoseconds, and no
/// allocation for a key already in the window. Every merge interval the flusher calls `drain` and
/// sends the window to Redis; a window that certainly never arrived goes back in with `restore`.
public final class PullTracker: Sendable {
    public let configuration: TrackerConfiguration
    /// The stripes of every core window, one window's after another's.
    private let stripes: [Stripe]
    /// `stripeCount / shardCount`, kept so that `record` does not divide.
    private let stripesPerShard: Int
    /// The next window sequence; holding it also keeps drains and restores one at a time.
    private let nextSequence = Mutex<UInt64>(1)

    public init(configuration: TrackerConfiguration) {
        self.configuration = configuration
        stripesPerShard = configuration.stripeCount / configuration.shardCount
        stripes = (0..<configuration.coreWindowCount * configuration.stripeCount).map { _ in Stripe(configuration) }
    }

    /// Counts one manifest request under the configured `CountingRule`: every key it resolves is
    /// used, and gets the fetches, checks and pulls the rule says. Returns at once when the feature
    /// flag is off.
    public func record(_ event: borrowing PullEvent) {
        guard configuration.isEnabled else { return }
        record(event, inCoreWindow: currentCoreWindow())
    }

    /// `record` into one core window.
    func record(_ event: borrowing PullEvent, inCoreWindow window: Int) {
        let rule = configuration.countingRule
        let time = event.time
        let firstStripe = window * configuration.stripeCount
        switch event.reference {
        case .tag(let tag):
            let counts = rule.effect(of: event.method, on: .tag, byTag: true)
            add(PullKey(event.repository, .tag(tag)), counts, time, event.servedDigest, time, firstStripe)
            if let digest = event.servedDigest {
                let served = rule.effect(of: event.method, on: .manifest, byTag: true)
                add(PullKey(event.repository, .manifest(digest)), served, time, nil, time, firstStripe)
            }
        case .digest(let digest):
            let counts = rule.effect(of: event.method, on: .manifest, byTag: false)
            add(PullKey(event.repository, .manifest(digest)), counts, time, nil, time, firstStripe)
        }
    }

    /// The core window of the CPU the calling thread runs on (`sched_getcpu`, a read of the
    /// thread's restartable-sequence area on current glibc); the first where that is not known.
    @inline(__always)
    private func currentCoreWindow() -> Int {
        let count = configuration.coreWindowCount
        guard count > 1 else { return 0 }
        return Int(max(pullsketch_current_cpu(), 0)) % count
    }

    /// Swaps every stripe's window for an empty one and returns what they held, summed per shard;
    /// core windows are merged as parts of two nodes are.
    public func drain() -> Window {
        nextSequence.withLock { sequence in
            defer { sequence += 1 }
            let shards = (0..<configuration.shardCount).map { shard in
                var part = drainShard(shard, coreWindow: 0)
                for window in 1..<configuration.coreWindowCount {
                    // Same configuration, same parameters.
                    try! part.merge(drainShard(shard, coreWindow: window), parameters: configuration.sketch)
                }
                return part
            }
            return Window(sequence: sequence, parameters: configuration.sketch, shards: shards)
        }
    }

    private func drainShard(_ shard: Int, coreWindow: Int) -> ShardWindow {
        var part = ShardWindow(shard: shard)
        var sketch = CountMinSketch(parameters: configuration.sketch)
        var usage = UsageFilter(parameters: configuration.sketch)
        var tailRepositories: [RepositoryName: TailRepository] = [:]
        var names: [PullKey] = []
        for stripe in stripes[stripeRange(ofShard: shard, coreWindow: coreWindow)] {
            var drained = StripeWindow(configuration)
            stripe.withLock { swap(&$0, &drained) }
            part.hotEntries += drained.hot.occupiedEntries
            if drained.tailLastUsed != .distantPast {
                // Same configuration, same parameters.
                try! sketch.merge(drained.sketch)
                try! usage.merge(drained.usage)
            }
            part.tailMass &+= drained.tailMass
            part.tailLastPulled = max(part.tailLastPulled, drained.tailLastPulled)
            part.tailLastUsed = max(part.tailLastUsed, drained.tailLastUsed)
            part.tailRepositoriesOverflowed = part.tailRepositoriesOverflowed || drained.tailRepositories.overflowed
            part.unnamedPullsOfOverflow &+= drained.unnamedPullsOfOverflow
            for (name, tail) in drained.tailRepositories.repositories {
                tailRepositories[name, default: TailRepository(repository: name, lastUsed: tail.lastUsed)].absorb(tail)
            }
            names += drained.tailNames.keys.values
        }
        part.sketchCells = sketch.nonZeroCells()
        part.usageBits = usage.setBits()
        part.tailRepositories = tailRepositories.values.sorted { $0.repository.value < $1.repository.value }
        part.tailNames = names.sortedByName()
        return part
    }

    /// The bytes the tracker's current window holds, names included; at most
    /// `configuration.windowByteBound`, whatever the number of distinct keys recorded.
    public func memoryFootprint() -> Int {
        stripes.reduce(0) { total, stripe in total + stripe.withLock { $0.byteCount } }
    }

    /// Folds a window that could not be delivered back in, into the first core window, as if its
    /// pulls were recorded now: exact entries go back to the hot tables while there is room and to
    /// the sketch after that (named while names fit), tail names go back with the tail, so every
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
            if let bad = part.sketchCells.map(\.index).first(where: { Int($0) >= cellCount })
                ?? part.usageBits.first(where: { Int($0) >= cellCount })
            {
                throw .cellOutOfRange(bad, configuration.sketch)
            }
        }
        nextSequence.withLock { _ in
            for part in window.shards {
                for entry in part.hotEntries {
                    add(
                        entry.key,
                        entry.counts,
                        lastPulled: entry.lastPulled,
                        lastUsed: entry.lastUsed,
                        entry.currentDigest,
                        entry.currentDigestAt,
                        0
                    )
                }
                // A shard's tail belongs to that shard: fold it into the shard's first stripe.
                stripes[stripeRange(ofShard: part.shard).lowerBound].withLock { stripe in
                    // Indices checked above.
                    try! stripe.sketch.add(cells: part.sketchCells)
                    try! stripe.usage.add(bits: part.usageBits)
                    stripe.tailMass &+= part.tailMass
                    stripe.tailLastPulled = max(stripe.tailLastPulled, part.tailLastPulled)
                    stripe.tailLastUsed = max(stripe.tailLastUsed, part.tailLastUsed)
                    for tail in part.tailRepositories {
                        stripe.addRepository(tail)
                    }
                    stripe.unnamedPullsOfOverflow &+= part.unnamedPullsOfOverflow
                    if part.tailRepositoriesOverflowed {
                        stripe.tailRepositories.markOverflowed()
                    }
                }
                // A name goes back to its own stripe, where the key's next tail use finds it.
                for key in part.tailNames {
                    let hash = key.hash(seed: configuration.sketch.seed)
                    stripes[stripeIndex(hash)].withLock { $0.tailNames.restore(hash, key) }
                }
            }
        }
    }

    /// One request's effect on one key, at `time`: a pull raises last pulled, any use last used.
    /// `firstStripe` is the first stripe of the core window recorded into.
    @inline(__always)
    private func add(
        _ key: borrowing PullKey,
        _ counts: KeyEffect,
        _ time: Timestamp,
        _ currentDigest: borrowing Digest?,
        _ currentDigestAt: Timestamp,
        _ firstStripe: Int
    ) {
        add(key, counts, lastPulled: counts.pulls > 0 ? time : .distantPast, lastUsed: time, currentDigest, currentDigestAt, firstStripe)
    }

    @inline(__always)
    private func add(
        _ key: borrowing PullKey,
        _ counts: KeyEffect,
        lastPulled: Timestamp,
        lastUsed: Timestamp,
        _ currentDigest: borrowing Digest?,
        _ currentDigestAt: Timestamp,
        _ firstStripe: Int
    ) {
        let hash = key.hash(seed: configuration.sketch.seed)
        // The tracker owns its stripes for its whole life: borrow one without retaining it.
        let stripe = Unmanaged.passUnretained(stripes[firstStripe + stripeIndex(hash)])
        stripe._withUnsafeGuaranteedRef { stripe in
            stripe.withLock { window in
                let isHot = window.hot.add(
                    hash,
                    key: key,
                    counts: counts,
                    lastPulled: lastPulled,
                    lastUsed: lastUsed,
                    currentDigest: currentDigest,
                    currentDigestAt: currentDigestAt
                )
                if !isHot {
                    window.addToTail(hash, key: key, pulls: counts.pulls, lastPulled: lastPulled, lastUsed: lastUsed)
                }
            }
        }
    }

    /// The stripes of one shard in one core window.
    private func stripeRange(ofShard shard: Int, coreWindow: Int = 0) -> Range<Int> {
        let first = coreWindow * configuration.stripeCount + shard * stripesPerShard
        return first..<first + stripesPerShard
    }

    /// The key's shard picks a group of stripes; other bits of the hash pick one within it.
    @inline(__always)
    private func stripeIndex(_ hash: KeyHash) -> Int {
        hash.shard(count: configuration.shardCount) * stripesPerShard + hash.stripe(count: stripesPerShard)
    }
}
