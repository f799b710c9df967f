#if canImport(Glibc)
import Glibc
#endif
public import PullSketchCore

/// The bare operation under `record` for a GET by tag: two mutex round trips and two
/// read-modify-writes of 64-byte records, picked by the tag's and the manifest's key hashes in a
/// table as large as a warm tracker window. No name is compared, nothing is hashed at record time:
/// what the memory and the locks of this machine cost, and the floor under any exact, lock-striped
/// window of this size.
public final class HotPathFloor: @unchecked Sendable {
    private static let stripes = 8
    private static let recordWords = 8
    private let records: UnsafeMutablePointer<UInt64>
    private let recordMask: Int
    private let locks: UnsafeMutablePointer<pthread_mutex_t>
    /// Per event, the record of its tag and of its manifest, and its time.
    private let targets: [(tag: Int, manifest: Int, time: UInt64)]

    /// `recordCount` records (a power of two) for the events of `workload`, all GETs by tag.
    public init(_ workload: Workload, recordCount: Int = 1 << 17) {
        precondition(recordCount > 0 && recordCount & (recordCount - 1) == 0)
        precondition(workload.events.count & (workload.events.count - 1) == 0, "a power of two events")
        recordMask = recordCount - 1
        records = .allocate(capacity: recordCount * Self.recordWords)
        records.initialize(repeating: 0, count: recordCount * Self.recordWords)
        locks = .allocate(capacity: Self.stripes)
        for stripe in 0..<Self.stripes { pthread_mutex_init(locks + stripe, nil) }
        targets = workload.events.map { event in
            guard case .tag(let tag) = event.reference, let digest = event.servedDigest else { preconditionFailure("GETs by tag only") }
            let tagHash = PullKey(event.repository, .tag(tag)).hash(seed: 0).value
            let manifestHash = PullKey(event.repository, .manifest(digest)).hash(seed: 0).value
            let time = UInt64(event.time.millisecondsSinceEpoch)
            return (Int(truncatingIfNeeded: tagHash), Int(truncatingIfNeeded: manifestHash), time)
        }
    }

    deinit {
        for stripe in 0..<Self.stripes { pthread_mutex_destroy(locks + stripe) }
        locks.deallocate()
        records.deallocate()
    }

    /// The two updates of event `index` (modulo the workload's length).
    @inline(__always)
    public func record(_ index: Int) {
        let target = targets[index & (targets.count - 1)]
        update(target.tag, target.time)
        update(target.manifest, target.time)
    }

    @inline(__always)
    private func update(_ hash: Int, _ time: UInt64) {
        let lock = locks + (hash >> 56 & (Self.stripes - 1))
        let record = records + (hash & recordMask) * Self.recordWords
        pthread_mutex_lock(lock)
        record[0] &+= 1
        record[1] = max(record[1], time)
        pthread_mutex_unlock(lock)
    }
}

/// The textbook exact map: a `Dictionary` from key to pulls and last pull per stripe, behind a
/// mutex; a GET by tag updates its tag and its manifest, one lookup each, names compared.
public final class LockedDictionaryBaseline: @unchecked Sendable {
    private struct Counts {
        var pulls: UInt64 = 0
        var lastPulled = Timestamp.distantPast
    }

    private static let stripes = 8
    private var maps = [[PullKey: Counts]](repeating: [:], count: stripes)
    private let locks: UnsafeMutablePointer<pthread_mutex_t>

    public init() {
        locks = .allocate(capacity: Self.stripes)
        for stripe in 0..<Self.stripes { pthread_mutex_init(locks + stripe, nil) }
    }

    deinit {
        for stripe in 0..<Self.stripes { pthread_mutex_destroy(locks + stripe) }
        locks.deallocate()
    }

    public func record(_ event: PullEvent) {
        guard case .tag(let tag) = event.reference, let digest = event.servedDigest else { return }
        add(PullKey(event.repository, .tag(tag)), event.time)
        add(PullKey(event.repository, .manifest(digest)), event.time)
    }

    private func add(_ key: PullKey, _ time: Timestamp) {
        let stripe = key.hashValue & (Self.stripes - 1)
        pthread_mutex_lock(locks + stripe)
        Self.bump(&maps[stripe][key, default: Counts()], time)
        pthread_mutex_unlock(locks + stripe)
    }

    private static func bump(_ counts: inout Counts, _ time: Timestamp) {
        counts.pulls &+= 1
        counts.lastPulled = max(counts.lastPulled, time)
    }
}
