/// Repositories whose keys went to the tail, with their tail pulls, latest tail pull and latest
/// tail use. Bounded: a repository that does not fit sets `overflowed` instead of being added.
struct TailRepositoryTable {
    let capacity: Int
    private(set) var repositories: [RepositoryName: TailRepository]
    private(set) var overflowed = false

    init(capacity: Int) {
        self.capacity = capacity
        repositories = Dictionary(minimumCapacity: capacity)
    }

    /// Adds to the repository's figures; false, setting `overflowed`, when it does not fit.
    @discardableResult
    mutating func add(_ tail: TailRepository) -> Bool {
        if repositories[tail.repository] == nil, repositories.count >= capacity {
            overflowed = true
            return false
        }
        repositories[tail.repository, default: TailRepository(repository: tail.repository, lastUsed: tail.lastUsed)].absorb(tail)
        return true
    }

    /// Bytes the table holds: its hash storage plus the heap storage of the names in it.
    var byteCount: Int {
        let entry = MemoryLayout<RepositoryName>.stride + MemoryLayout<TailRepository>.stride + MemoryLayout<Int>.stride
        return repositories.capacity * entry + repositories.keys.reduce(0) { $0 + $1.value.heapByteCount }
    }

    mutating func markOverflowed() {
        overflowed = true
    }
}

extension TailRepository {
    /// Adds another repository's figures: pulls summed, times raised.
    mutating func absorb(_ other: TailRepository) {
        pulls &+= other.pulls
        unnamedPulls &+= other.unnamedPulls
        unnamedUses &+= other.unnamedUses
        lastPulled = max(lastPulled, other.lastPulled)
        lastUsed = max(lastUsed, other.lastUsed)
    }
}
