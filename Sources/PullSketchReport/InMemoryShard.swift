import PullSketchCore

/// One shard's live batch in memory, for accuracy runs that need no servers: parts merged with
/// `ShardWindow.merge`, the arithmetic the Redis merge script runs, and sealed whole.
struct InMemoryShard {
    let shard: Int
    let parameters: SketchParameters
    private var live: ShardWindow

    init(shard: Int, parameters: SketchParameters) {
        self.shard = shard
        self.parameters = parameters
        live = ShardWindow(shard: shard)
    }

    mutating func merge(_ part: ShardWindow) throws {
        try live.merge(part, parameters: parameters)
    }

    /// The live batch as a sealed batch's content, and an empty live batch after it; nil if empty.
    mutating func seal() -> ShardWindow? {
        guard !live.isEmpty else { return nil }
        defer { live = ShardWindow(shard: shard) }
        return live
    }
}
