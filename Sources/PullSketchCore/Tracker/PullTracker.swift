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

    /// Counts one pull event. Returns at once when the feature flag is off.
    public func record(_ event: PullEvent) {
        guard configuration.isEnabled else { return }
        configuration.countingRule.forEachUpdate(of: event) { kind, reference, counter in
            let isFetch = counter == .fetch
            let servesTagDigest = kind == .tag && isFetch
            add(
                kind: kind,
                repository: event.repository,
                reference: reference,
                fetches: isFetch ? 1 : 0,
                checks: isFetch ? 0 : 1,
                time: event.time,
                currentDigest: servesTagDigest ? event.servedDigest : nil
            )
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
                stripe.window.withLock { swap(&$0, &drained) }
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
                    kind: entry.kind,
                    repository: entry.repository,
                    reference: entry.reference,
                    fetches: entry.fetches,
                    checks: entry.checks,
                    time: entry.lastSeen,
                    currentDigest: entry.currentDigest,
                    currentDigestAt: entry.currentDigestAt
                )
            }
            stripes[0].window.withLock { stripe in
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

    private func add(
        kind: KeyKind,
        repository: RepositoryName,
        reference: String,
        fetches: UInt64,
        checks: UInt64,
        time: Timestamp,
        currentDigest: Digest?,
        currentDigestAt: Timestamp? = nil
    ) {
        let hash = KeyHash(kind: kind, repository: repository.value, reference: reference, seed: configuration.sketch.seed)
        stripes[stripeIndex(hash)].window.withLock { window in
            window.add(
                hash,
                kind: kind,
                repository: repository,
                reference: reference,
                fetches: fetches,
                checks: checks,
                time: time,
                currentDigest: currentDigest,
                currentDigestAt: currentDigestAt ?? time
            )
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
