/// A bounded open-addressing table of exactly counted keys, keyed by `KeyHash` with the names
/// compared on a hash match, so two keys never share counts. Not synchronized: one per stripe.
struct HotTable {
    let capacity: Int
    private(set) var count = 0
    /// `hash | 1` of the key in each slot; 0 marks an empty slot.
    private var slotHashes: [UInt64]
    private var entries: [HotEntry]
    private let mask: Int

    init(capacity: Int) {
        self.capacity = capacity
        let slots = Self.slotCount(forCapacity: capacity)
        mask = slots - 1
        slotHashes = Array(repeating: 0, count: slots)
        entries = Array(repeating: HotEntry.vacant, count: slots)
    }

    /// Slots for `capacity` keys at a load factor of at most 3/4, a power of two.
    static func slotCount(forCapacity capacity: Int) -> Int {
        max(2, (capacity + capacity / 3 + 1).nextPowerOfTwo)
    }

    /// Adds counts to the key, inserting it while there is room. Returns false when the table is
    /// full and the key is not in it.
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
    ) -> Bool {
        let marker = hash.value | 1
        var slot = Int(truncatingIfNeeded: hash.value >> 1) & mask
        while true {
            let occupant = slotHashes[slot]
            if occupant == 0 {
                guard count < capacity else { return false }
                count += 1
                slotHashes[slot] = marker
                entries[slot] = HotEntry(kind: kind, repository: repository, reference: reference, lastSeen: time)
            } else if occupant != marker || !entries[slot].matches(kind, repository, reference) {
                slot = (slot &+ 1) & mask
                continue
            }
            entries[slot].absorb(
                fetches: fetches,
                checks: checks,
                lastSeen: time,
                currentDigest: currentDigest,
                currentDigestAt: currentDigestAt
            )
            return true
        }
    }

    /// The keys in the table, in no particular order.
    var occupiedEntries: [HotEntry] {
        var result: [HotEntry] = []
        result.reserveCapacity(count)
        for slot in slotHashes.indices where slotHashes[slot] != 0 {
            result.append(entries[slot])
        }
        return result
    }

    /// Bytes of the table itself, not counting the heap storage of long names.
    var fixedByteCount: Int {
        slotHashes.count * (MemoryLayout<UInt64>.stride + MemoryLayout<HotEntry>.stride)
    }
}

extension HotEntry {
    /// The placeholder in empty slots; never exported.
    fileprivate static let vacant = HotEntry(
        kind: .tag,
        repository: RepositoryName(unchecked: ""),
        reference: "",
        lastSeen: .distantPast
    )

    @inline(__always)
    fileprivate func matches(_ kind: KeyKind, _ repository: RepositoryName, _ reference: String) -> Bool {
        self.kind == kind && self.reference == reference && self.repository == repository
    }
}

extension Int {
    fileprivate var nextPowerOfTwo: Int { self <= 1 ? 1 : 1 << (Int.bitWidth - (self - 1).leadingZeroBitCount) }
}
