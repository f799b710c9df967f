/// The names of the tail keys a stripe saw in its window, sent with the window so the reconciler
/// can register and estimate keys its catalog does not know yet. Bounded: a key that does not fit
/// is not named, and the caller counts its pulls as unnamed.
struct TailNameTable {
    let capacity: Int
    private(set) var keys: [UInt64: PullKey] = [:]

    init(capacity: Int) {
        self.capacity = capacity
    }

    /// Names the key in this window. False when the table is full, or when another key has the same
    /// 64-bit hash: then the key stays unnamed rather than sharing a name.
    @inline(__always)
    mutating func insert(_ hash: KeyHash, _ key: borrowing PullKey) -> Bool {
        if let named = keys[hash.value] { return named == key }
        guard keys.count < capacity else { return false }
        keys[hash.value] = copy key
        return true
    }

    /// Names a key of a window that comes back (`PullTracker.restore`), whatever the room left: the
    /// window it came from fit, and a window with restored names takes new ones only below capacity.
    mutating func restore(_ hash: KeyHash, _ key: PullKey) {
        if keys[hash.value] == nil { keys[hash.value] = key }
    }

    /// Bytes the table holds: its hash storage plus the heap storage of the names in it.
    var byteCount: Int {
        keys.capacity * Self.entryByteCount + keys.values.reduce(0) { $0 + $1.repository.value.heapByteCount + $1.name.heapByteCount }
    }

    static var entryByteCount: Int { MemoryLayout<UInt64>.stride + MemoryLayout<PullKey>.stride + MemoryLayout<Int>.stride }
}
