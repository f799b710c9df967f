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

/// The bare operation under an exact `record` of a GET by tag: `HotPathFloor`'s two lock round
/// trips and read-modify-writes, with each key's record found by its hash and the names it holds
/// (a copy of their own, as a tracker window keeps them) compared with the event's, which an
/// exact table must do so that two keys never share counts. Keys are built and hashed before the
/// measurement; nothing else a tracker does (three counters, two times, the current digest, the
/// tail) is done: the floor under any exact, lock-striped window of this size.
public final class NamedHotPathFloor: @unchecked Sendable {
    private struct Record {
        var marker: UInt64 = 0
        var pulls: UInt64 = 0
        var lastPulled: UInt64 = 0
        var key: PullKey?
    }

    /// An event's two keys and their hashes, and its time.
    private struct Target {
        let tag: PullKey
        let tagHash: UInt64
        let manifest: PullKey
        let manifestHash: UInt64
        let time: UInt64
    }

    private static let stripes = 8
    private let records: UnsafeMutablePointer<Record>
    private let recordCount: Int
    private let locks: UnsafeMutablePointer<pthread_mutex_t>
    private let targets: [Target]

    /// A table of `recordCount` records (a power of two) holding every key of `workload`, all GETs by tag.
    public init(_ workload: Workload, recordCount: Int = 1 << 17) {
        precondition(recordCount > 0 && recordCount & (recordCount - 1) == 0)
        precondition(workload.events.count & (workload.events.count - 1) == 0, "a power of two events")
        self.recordCount = recordCount
        records = .allocate(capacity: recordCount)
        records.initialize(repeating: Record(), count: recordCount)
        locks = .allocate(capacity: Self.stripes)
        for stripe in 0..<Self.stripes { pthread_mutex_init(locks + stripe, nil) }
        targets = workload.events.map { event in
            guard case .tag(let tag) = event.reference, let digest = event.servedDigest else { preconditionFailure("GETs by tag only") }
            let tagKey = PullKey(event.repository, .tag(tag))
            let manifestKey = PullKey(event.repository, .manifest(digest))
            return Target(
                tag: tagKey, tagHash: tagKey.hash(seed: 0).value, manifest: manifestKey, manifestHash: manifestKey.hash(seed: 0).value,
                time: UInt64(event.time.millisecondsSinceEpoch)
            )
        }
        for target in targets {
            insert(target.tag, target.tagHash)
            insert(target.manifest, target.manifestHash)
        }
    }

    deinit {
        for stripe in 0..<Self.stripes { pthread_mutex_destroy(locks + stripe) }
        locks.deallocate()
        records.deinitialize(count: recordCount)
        records.deallocate()
    }

    /// The two updates of event `index` (modulo the workload's length).
    @inline(__always)
    public func record(_ index: Int) {
        targets.withUnsafeBufferPointer { targets in
            let target = targets[index & (targets.count - 1)]
            update(target.tag, target.tagHash, target.time)
            update(target.manifest, target.manifestHash, target.time)
        }
    }

    @inline(__always)
    private func update(_ key: PullKey, _ hash: UInt64, _ time: UInt64) {
        let lock = locks + Int(truncatingIfNeeded: hash >> 56) & (Self.stripes - 1)
        pthread_mutex_lock(lock)
        let record = records + slot(of: key, hash)
        record.pointee.pulls &+= 1
        record.pointee.lastPulled = max(record.pointee.lastPulled, time)
        pthread_mutex_unlock(lock)
    }

    /// The record holding the key, or the empty one where it belongs.
    @inline(__always)
    private func slot(of key: PullKey, _ hash: UInt64) -> Int {
        var index = Int(truncatingIfNeeded: hash) & (recordCount - 1)
        while records[index].marker != 0, records[index].marker != hash | 1 || records[index].key != key {
            index = (index &+ 1) & (recordCount - 1)
        }
        return index
    }

    /// Stores a copy of the key's names that shares no storage with the events'.
    private func insert(_ key: PullKey, _ hash: UInt64) {
        let index = slot(of: key, hash)
        guard records[index].marker == 0 else { return }
        func copy(_ name: String) -> String { String(decoding: Array(name.utf8), as: UTF8.self) }
        records[index].marker = hash | 1
        records[index].key = try! PullKey(kind: key.kind, repository: copy(key.repository.value), reference: copy(key.name))
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
