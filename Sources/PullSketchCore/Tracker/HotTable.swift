/// A bounded open-addressing table of exactly counted keys, keyed by `KeyHash` with the names
/// compared on a hash match, so two keys never share counts. Not synchronized: one per stripe.
///
/// A hit reads one slot — hash marker, counters, times and the key, compared in place, never
/// copied — and the names' bytes the comparison needs. A tag's current digest has an array of its
/// own, read only when the tag moves: the slot knows the digest by its hash.
struct HotTable {
    let capacity: Int
    private(set) var count = 0
    private var slots: [Slot]
    private var currentDigests: [Digest?]
    private let mask: Int

    private struct Slot {
        /// `hash | 1` of the key; 0 marks an empty slot.
        var marker: UInt64 = 0
        var counts = KeyEffect()
        var lastPulled = Timestamp.distantPast
        var lastUsed = Timestamp.distantPast
        var currentDigestAt = Timestamp.distantPast
        /// `nameHash | 1` of the current digest, 0 while there is none: a pull of a tag whose
        /// digest did not change then leaves `currentDigests` (a cache line elsewhere) unread.
        var currentDigestMarker: UInt64 = 0
        /// Beside the marker, so a hit finds it in the lines it already reads.
        var key: PullKey?
    }

    init(capacity: Int) {
        self.capacity = capacity
        let slots = Self.slotCount(forCapacity: capacity)
        mask = slots - 1
        self.slots = Array(repeating: Slot(), count: slots)
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
            let digestMarker = currentDigest.nameHash | 1
            if slots[index].currentDigestMarker != digestMarker {
                slots[index].currentDigestMarker = digestMarker
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
            // Through the buffer pointer: reading through the array's subscript measured slower.
            let (occupant, matches) = slots.withUnsafeBufferPointer { slots in
                let occupant = slots[index].marker
                return (occupant, occupant == marker && slots[index].key == key)
            }
            if matches { return index }
            if occupant == 0 {
                guard count < capacity else { return nil }
                count += 1
                slots.withUnsafeMutableBufferPointer { slots in
                    slots[index].marker = marker
                    slots[index].key = key
                }
                return index
            }
            index = (index &+ 1) & mask
        }
    }

    /// The keys in the table, in no particular order.
    var occupiedEntries: [HotEntry] {
        var result: [HotEntry] = []
        result.reserveCapacity(count)
        for (index, slot) in slots.enumerated() where slot.marker != 0 {
            guard let key = slot.key else { continue }
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
        var bytes = slots.capacity * MemoryLayout<Slot>.stride + currentDigests.capacity * MemoryLayout<Digest?>.stride
        for index in slots.indices where slots[index].marker != 0 {
            bytes += (slots[index].key.map { $0.repository.value.heapByteCount + $0.name.heapByteCount } ?? 0)
                + (currentDigests[index]?.value.heapByteCount ?? 0)
        }
        return bytes
    }

    /// Bytes of one slot, not counting the heap storage of long names.
    static var slotByteCount: Int {
        MemoryLayout<Slot>.stride + MemoryLayout<Digest?>.stride
    }
}
