extension ShardWindow {
    /// Adds another part of the same shard, as merging both into one live batch does: counters
    /// added, times raised, a tag's digest taken from the later request, sketch cells added with
    /// saturation, usage bits joined, tail repositories summed, tail names joined. Redis runs the same arithmetic in
    /// its merge script (`BatchScripts.merge`), and a test holds the two to the same result; the
    /// accuracy report runs this one in memory. Refused, changing nothing, when a cell or bit does
    /// not fit `parameters`.
    public mutating func merge(_ other: ShardWindow, parameters: SketchParameters) throws(SketchError) {
        var sketch = try CountMinSketch(parameters: parameters, cells: sketchCells)
        try sketch.add(cells: other.sketchCells)
        var usage = try UsageFilter(parameters: parameters, bits: usageBits)
        try usage.add(bits: other.usageBits)
        sketchCells = sketch.nonZeroCells()
        usageBits = usage.setBits()

        var positions = Dictionary(uniqueKeysWithValues: hotEntries.enumerated().map { ($1.key, $0) })
        for entry in other.hotEntries {
            guard let position = positions[entry.key] else {
                positions[entry.key] = hotEntries.count
                hotEntries.append(entry)
                continue
            }
            hotEntries[position].absorb(entry)
        }

        var tails = Dictionary(uniqueKeysWithValues: tailRepositories.map { ($0.repository, $0) })
        for tail in other.tailRepositories {
            tails[tail.repository, default: TailRepository(repository: tail.repository, lastUsed: tail.lastUsed)].absorb(tail)
        }
        tailRepositories = tails.values.sorted { $0.repository.value < $1.repository.value }
        tailMass &+= other.tailMass
        tailRepositoriesOverflowed = tailRepositoriesOverflowed || other.tailRepositoriesOverflowed
        tailLastPulled = max(tailLastPulled, other.tailLastPulled)
        tailLastUsed = max(tailLastUsed, other.tailLastUsed)
        tailNames = Set(tailNames).union(other.tailNames).sortedByName()
        unnamedPullsOfOverflow &+= other.unnamedPullsOfOverflow
    }
}

extension Sequence<PullKey> {
    /// The keys by repository, kind (tags first) and name: the order parts and batches list tail
    /// names in. Sorted as an array of keys, not by `Sequence.sorted`: called from another module,
    /// that ran the standard library's unspecialized sort, which copied every key through value
    /// witnesses on each comparison (a quarter of the reconciler's CPU under a flood of tail names).
    public func sortedByName() -> [PullKey] {
        var keys = Array(self)
        keys.sort { ($0.repository.value, $0.kind.rawValue, $0.name) < ($1.repository.value, $1.kind.rawValue, $1.name) }
        return keys
    }
}

extension HotEntry {
    /// Adds another entry of the same key.
    mutating func absorb(_ other: HotEntry) {
        fetches &+= other.fetches
        checks &+= other.checks
        pulls &+= other.pulls
        lastPulled = max(lastPulled, other.lastPulled)
        lastUsed = max(lastUsed, other.lastUsed)
        if let digest = other.currentDigest, currentDigest == nil || other.currentDigestAt >= currentDigestAt {
            currentDigest = digest
            currentDigestAt = other.currentDigestAt
        }
    }
}
