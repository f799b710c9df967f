import Synchronization

/// What one lock stripe recorded since the last drain. A key always maps to the same stripe, so
/// its hot entry, sketch cells and tail repository change together under one lock.
struct StripeWindow {
    var hot: HotTable
    var sketch: CountMinSketch
    var tailRepositories: TailRepositoryTable
    var tailMass: UInt64 = 0
    var tailLastPulled = Timestamp.distantPast

    init(_ configuration: TrackerConfiguration) {
        hot = HotTable(capacity: configuration.hotCapacityPerStripe)
        sketch = CountMinSketch(parameters: configuration.sketch)
        tailRepositories = TailRepositoryTable(capacity: configuration.tailRepositoriesPerStripe)
    }

    /// Counts a key exactly if the hot table has room for it, else in the tail.
    mutating func add(
        _ hash: KeyHash,
        kind: KeyKind,
        repository: RepositoryName,
        reference: String,
        fetches: UInt64,
        checks: UInt64,
        time: Timestamp,
        currentDigest: Digest?,
        currentDigestAt: Timestamp
    ) {
        let fitsHotTable = hot.add(
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
        if !fitsHotTable {
            addToTail(hash, repository: repository, updates: fetches &+ checks, time: time)
        }
    }

    mutating func addToTail(_ hash: KeyHash, repository: RepositoryName, updates: UInt64, time: Timestamp) {
        var remaining = updates
        while remaining > 0 {
            let step = UInt32(clamping: remaining)
            sketch.add(hash, count: step)
            remaining -= UInt64(step)
        }
        tailMass &+= updates
        tailLastPulled = max(tailLastPulled, time)
        tailRepositories.add(repository, pulls: updates, lastPulled: time)
    }
}

/// A stripe's window behind its lock. A class because `Mutex` cannot be copied.
final class Stripe: Sendable {
    let window: Mutex<StripeWindow>

    init(_ configuration: TrackerConfiguration) {
        window = Mutex(StripeWindow(configuration))
    }
}
