/// A bounded open-addressing table of exactly counted keys, keyed by `KeyHash` with the names
/// compared on a hash match, so two keys never share counts. Not synchronized: one per stripe.
///
/// Storage is split so that a hit touches no reference-counted memory and few cache lines: the hash
/// and plain counters of a slot share one array, the keys (compared in place, never copied) and
/// the tag digests have their own.
struct HotTable {
    let capacity: Int
    private(set) var count = 0
    private var slots: [Slot]
    private var keys: [PullKey?]
    private var currentDigests: [Digest?]
    private let mask: Int

    private struct Slot {
        /// `hash | 1` of the key; 0 marks an empty slot.
        var marker: UInt64 = 0
        var counts = KeyEffect()
        var lastPulled = Timestamp.distantPast
        var lastUsed = Timestamp.distantPast
        var currentDigestAt = Timestamp.distantPast
    }

    init(capacity: Int) {
        self.capacity = capacity
        let slots = Self.slotCount(forCapacity: capacity)
        mask = slots - 1
        self.slots = Array(repeating: Slot(), count: slots)
        keys = Array(repeating: nil, count: slots)
        currentDigests = Array(repeating: nil, count: slots)
    }

    /// Slots for `capacity` keys at a load factor of at most 3/4, a power of two.
    static func slotCount(forCapacity capacity: Int) -> Int {
        let needed = capacity + capacity / 3 + 1
        return needed <= 2 ? 2 : 1 << (Int.bitWidth - (needed - 1).leadingZeroBitCount)
    }

    /// Adds counts to the key and raises its times, inserting it while there is room. Returns false
    /// when the table is full and the key is not in it.
    mutating func add(
        _ hash: KeyHash,
        key: PullKey,
        counts: KeyEffect,
        lastPulled: Timestamp,
        lastUsed: Timestamp,
        currentDigest: Digest?,
        currentDigestAt: Timestamp
    ) -> Bool {
        guard let index = index(of: hash, key) else { return false }
        slots.withUnsafeMutableBufferPointer { slots in
            slots[index].counts.fetches &+= counts.fetches
            slots[index].counts.checks &+= counts.checks
            slots[index].counts.pulls &+= counts.pulls
            slots[index].lastPulled = max(slots[index].lastPulled, lastPulled)
            slots[index].lastUsed = max(slots[index].lastUsed, lastUsed)
            guard let currentDigest, currentDigestAt >= slots[index].currentDigestAt else { return }
            slots[index].currentDigestAt = currentDigestAt
            // Digests are content hashes: equal name hashes mean the same digest, no string compare.
            if currentDigests[index]?.nameHash != currentDigest.nameHash {
                currentDigests[index] = currentDigest
            }
        }
        return true
    }

    /// The slot index holding the key, claiming an empty slot if the key is new and there is room.
    private mutating func index(of hash: KeyHash, _ key: PullKey) -> Int? {
        let marker = hash.value | 1
        var index = Int(truncatingIfNeeded: hash.value >> 1) & mask
        while true {
            let occupant = slots[index].marker
            if occupant == 0 {
                guard count < capacity else { return nil }
                count += 1
                slots[index].marker = marker
                keys[index] = key
                return index
            }
            if occupant == marker {
                let matches = keys.withUnsafeBufferPointer { $0[index] == key }
                if matches { return index }
            }
            index = (index &+ 1) & mask
        }
    }

    /// The keys in the table, in no particular order.
    var occupiedEntries: [HotEntry] {
        var result: [HotEntry] = []
        result.reserveCapacity(count)
        for (index, slot) in slots.enumerated() where slot.marker != 0 {
            guard let key = keys[index] else { continue }
            result.append(
                HotEntry(
                    key: key,
                    counts: slot.counts,
                    lastPulled: slot.lastPulled,
                    lastUsed: slot.lastUsed,
                    currentDigest: currentDigests[index],
                    currentDigestAt: slot.currentDigestAt
                )
            )
        }
        return result
    }

    /// Bytes the table holds: its buffers plus the heap storage of the names and digests in it.
    var byteCount: Int {
        var bytes = slots.capacity * MemoryLayout<Slot>.stride + keys.capacity * MemoryLayout<PullKey?>.stride
            + currentDigests.capacity * MemoryLayout<Digest?>.stride
        for index in slots.indices where slots[index].marker != 0 {
            bytes += (keys[index].map { $0.repository.value.heapByteCount + $0.name.heapByteCount } ?? 0)
                + (currentDigests[index]?.value.heapByteCount ?? 0)
        }
        return bytes
    }

    /// Bytes of one slot, not counting the heap storage of long names.
    static var slotByteCount: Int {
        MemoryLayout<Slot>.stride + MemoryLayout<PullKey?>.stride + MemoryLayout<Digest?>.stride
    }
}
