#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// What one lock stripe recorded since the last drain. A key always maps to the same stripe, so
/// its hot entry, sketch cells and tail repository change together under one lock.
struct StripeWindow {
    var hot: HotTable
    var sketch: CountMinSketch
    var usage: UsageFilter
    var tailRepositories: TailRepositoryTable
    var tailNames: TailNameTable
    /// Unnamed pulls of repositories the tail repository table had no room for.
    var unnamedPullsOfOverflow: UInt64 = 0
    var tailMass: UInt64 = 0
    var tailLastPulled = Timestamp.distantPast
    var tailLastUsed = Timestamp.distantPast

    init(_ configuration: TrackerConfiguration) {
        hot = HotTable(capacity: configuration.hotCapacityPerStripe)
        sketch = CountMinSketch(parameters: configuration.sketch)
        usage = UsageFilter(parameters: configuration.sketch)
        tailRepositories = TailRepositoryTable(capacity: configuration.tailRepositoriesPerStripe)
        tailNames = TailNameTable(capacity: configuration.tailNamesPerStripe)
    }

    var byteCount: Int {
        hot.byteCount + sketch.parameters.byteCount + UsageFilter.byteCount(sketch.parameters) + tailRepositories.byteCount
            + tailNames.byteCount
    }

    /// Counts a use of a key that is not in the hot table, with its pulls (none for a use that is
    /// not a pull), and names the key while the name table has room; a key it cannot name is marked
    /// in the usage filter instead, so the reconciler finds it among the catalog's keys.
    mutating func addToTail(_ hash: KeyHash, key: borrowing PullKey, pulls: UInt64, lastPulled: Timestamp, lastUsed: Timestamp) {
        let named = tailNames.insert(hash, key)
        var remaining = pulls
        while remaining > 0 {
            let step = UInt32(clamping: remaining)
            sketch.add(hash, count: step)
            remaining -= UInt64(step)
        }
        if !named { usage.mark(hash) }
        tailMass &+= pulls
        tailLastPulled = max(tailLastPulled, lastPulled)
        tailLastUsed = max(tailLastUsed, lastUsed)
        addRepository(
            TailRepository(
                repository: key.repository, pulls: pulls, lastPulled: lastPulled, lastUsed: lastUsed, unnamedPulls: named ? 0 : pulls,
                unnamedUses: named ? 0 : 1
            )
        )
    }

    /// Adds a repository's tail figures; unnamed pulls of one that does not fit are kept apart.
    mutating func addRepository(_ tail: TailRepository) {
        if !tailRepositories.add(tail) { unnamedPullsOfOverflow &+= tail.unnamedPulls }
    }
}

/// A stripe's window behind a glibc mutex.
///
/// Not `Synchronization.Mutex`: on Linux it makes a `gettid` system call on every lock (seen with
/// perf), which cost more than the whole update; an uncontended `pthread_mutex_t` stays in user
/// space. `@unchecked Sendable` is sound because `window` is only reached through `withLock`.
final class Stripe: @unchecked Sendable {
    private let mutex: UnsafeMutablePointer<pthread_mutex_t>
    @exclusivity(unchecked) private var window: StripeWindow

    init(_ configuration: TrackerConfiguration) {
        mutex = .allocate(capacity: 1)
        pthread_mutex_init(mutex, nil)
        window = StripeWindow(configuration)
    }

    deinit {
        pthread_mutex_destroy(mutex)
        mutex.deallocate()
    }

    @inline(__always)
    func withLock<Result>(_ body: (inout StripeWindow) throws(Never) -> Result) -> Result {
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        return body(&window)
    }
}
