import PullSketchCore

/// One shard's live batch as the Redis merge script keeps it (BatchScripts.merge), in memory, for
/// accuracy runs that need no servers: exact entries summed per key with last-seen raised, sketch
/// cells summed (saturating), usage bits set, tail mass and tail repositories summed, overflow kept.
struct InMemoryShard {
    let shard: Int
    let parameters: SketchParameters
    private var hot: [String: HotEntry] = [:]
    private var sketch: CountMinSketch
    private var usage: UsageFilter
    private var tailMass: UInt64 = 0
    private var tailRepositories: [String: TailRepository] = [:]
    private var overflowed = false
    private var tailLastPulled = Timestamp.distantPast
    private var tailLastUsed = Timestamp.distantPast

    init(shard: Int, parameters: SketchParameters) {
        self.shard = shard
        self.parameters = parameters
        sketch = CountMinSketch(parameters: parameters)
        usage = UsageFilter(parameters: parameters)
    }

    mutating func merge(_ part: ShardWindow) throws {
        for entry in part.hotEntries {
            let field = "\(entry.kind.rawValue)|\(entry.repository.value)|\(entry.reference)"
            if var known = hot[field] {
                known.fetches += entry.fetches
                known.checks += entry.checks
                known.pulls += entry.pulls
                known.lastPulled = max(known.lastPulled, entry.lastPulled)
                known.lastUsed = max(known.lastUsed, entry.lastUsed)
                hot[field] = known
            } else {
                hot[field] = entry
            }
        }
        try sketch.add(cells: part.sketchCells)
        try usage.add(bits: part.usageBits)
        tailMass += part.tailMass
        for tail in part.tailRepositories {
            var known = tailRepositories[tail.repository.value] ?? TailRepository(repository: tail.repository, lastUsed: tail.lastUsed)
            known.pulls += tail.pulls
            known.lastPulled = max(known.lastPulled, tail.lastPulled)
            known.lastUsed = max(known.lastUsed, tail.lastUsed)
            tailRepositories[tail.repository.value] = known
        }
        overflowed = overflowed || part.tailRepositoriesOverflowed
        tailLastPulled = max(tailLastPulled, part.tailLastPulled)
        tailLastUsed = max(tailLastUsed, part.tailLastUsed)
    }

    /// The live batch as a sealed batch's content, and an empty live batch after it; nil if empty.
    mutating func seal() -> ShardWindow? {
        guard !hot.isEmpty || !usage.isEmpty else { return nil }
        defer { self = InMemoryShard(shard: shard, parameters: parameters) }
        return ShardWindow(
            shard: shard, hotEntries: Array(hot.values), sketchCells: sketch.nonZeroCells(), usageBits: usage.setBits(), tailMass: tailMass,
            tailRepositories: Array(tailRepositories.values), tailRepositoriesOverflowed: overflowed, tailLastPulled: tailLastPulled,
            tailLastUsed: tailLastUsed
        )
    }
}
