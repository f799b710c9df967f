/// Repositories whose pulls went to the sketch, with their tail pull count and latest tail pull.
/// Bounded: a repository that does not fit sets `overflowed` instead of being added.
struct TailRepositoryTable {
    let capacity: Int
    private(set) var repositories: [RepositoryName: TailRepository]
    private(set) var overflowed = false

    init(capacity: Int) {
        self.capacity = capacity
        repositories = Dictionary(minimumCapacity: capacity)
    }

    mutating func add(_ repository: RepositoryName, pulls: UInt64, lastPulled: Timestamp) {
        if repositories[repository] == nil, repositories.count >= capacity {
            overflowed = true
            return
        }
        repositories[repository, default: TailRepository(repository: repository, pulls: 0, lastPulled: lastPulled)]
            .absorb(pulls: pulls, lastPulled: lastPulled)
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
    mutating func absorb(pulls: UInt64, lastPulled: Timestamp) {
        self.pulls &+= pulls
        self.lastPulled = max(self.lastPulled, lastPulled)
    }
}
