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

    /// Swaps every stripe's window for an empty one and returns what they held, summed.
    public func drain() -> Window {
        nextSequence.withLock { sequence in
            var window = Window(sequence: sequence, parameters: configuration.sketch)
            sequence += 1
            var sketch = CountMinSketch(parameters: configuration.sketch)
            var tailRepositories: [RepositoryName: TailRepository] = [:]
            for stripe in stripes {
                var drained = StripeWindow(configuration)
                stripe.withLock { swap(&$0, &drained) }
                window.hotEntries += drained.hot.occupiedEntries
                if drained.tailMass > 0 {
                    try! sketch.merge(drained.sketch)  // same configuration, same parameters
                }
                window.tailMass &+= drained.tailMass
                window.tailLastPulled = max(window.tailLastPulled, drained.tailLastPulled)
                window.tailRepositoriesOverflowed = window.tailRepositoriesOverflowed || drained.tailRepositories.overflowed
                for (name, tail) in drained.tailRepositories.repositories {
                    tailRepositories[name, default: TailRepository(repository: name, pulls: 0, lastPulled: tail.lastPulled)]
                        .absorb(pulls: tail.pulls, lastPulled: tail.lastPulled)
                }
            }
            window.sketchCells = sketch.nonZeroCells()
            window.tailRepositories = tailRepositories.values.sorted { $0.repository.value < $1.repository.value }
            return window
        }
    }

    /// The bytes the tracker's current window holds, names included; at most
    /// `configuration.windowByteBound`, whatever the number of distinct keys recorded.
    public func memoryFootprint() -> Int {
        stripes.reduce(0) { total, stripe in total + stripe.withLock { $0.byteCount } }
    }

    /// Folds a window that could not be delivered back in, as if its pulls were recorded now: exact
    /// entries go back to the hot tables while there is room and to the sketch after that, so every
    /// count is conserved and memory stays within the configured bound. Refused, changing nothing,
    /// when the window's sketch parameters or cells do not fit this tracker.
    public func restore(_ window: Window) throws(SketchError) {
        guard window.parameters == configuration.sketch else {
            throw .parameterMismatch(configuration.sketch, window.parameters)
        }
        let cellCount = configuration.sketch.width * configuration.sketch.depth
        if let bad = window.sketchCells.first(where: { Int($0.index) >= cellCount }) {
            throw .cellOutOfRange(bad.index, configuration.sketch)
        }
        nextSequence.withLock { _ in
            for entry in window.hotEntries {
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
            stripes[0].withLock { stripe in
                try! stripe.sketch.add(cells: window.sketchCells)  // indices checked above
                stripe.tailMass &+= window.tailMass
                stripe.tailLastPulled = max(stripe.tailLastPulled, window.tailLastPulled)
                for tail in window.tailRepositories {
                    stripe.tailRepositories.add(tail.repository, pulls: tail.pulls, lastPulled: tail.lastPulled)
                }
                if window.tailRepositoriesOverflowed {
                    stripe.tailRepositories.markOverflowed()
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

    /// A stripe from the hash, remixed so that stripes do not correlate with hot-table slots or
    /// sketch columns, and reduced by multiply-shift.
    @inline(__always)
    private func stripeIndex(_ hash: KeyHash) -> Int {
        let mixed = (hash.value &* 0x9E37_79B9_7F4A_7C15) >> 32
        return Int((mixed &* UInt64(stripes.count)) >> 32)
    }
}
