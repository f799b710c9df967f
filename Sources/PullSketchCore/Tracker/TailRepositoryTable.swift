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

    mutating func add(_ repository: RepositoryName, pulls: UInt64, lastPulled: Timestamp, lastUsed: Timestamp) {
        if repositories[repository] == nil, repositories.count >= capacity {
            overflowed = true
            return
        }
        repositories[repository, default: TailRepository(repository: repository, lastUsed: lastUsed)]
            .absorb(pulls: pulls, lastPulled: lastPulled, lastUsed: lastUsed)
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
    mutating func absorb(pulls: UInt64, lastPulled: Timestamp, lastUsed: Timestamp) {
        self.pulls &+= pulls
        self.lastPulled = max(self.lastPulled, lastPulled)
        self.lastUsed = max(self.lastUsed, lastUsed)
    }
}
