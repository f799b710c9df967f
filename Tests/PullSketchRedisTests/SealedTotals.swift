import PullSketchCore
import PullSketchRedis

/// Exact counts of one key, as the truth or as summed from sealed batches.
struct KeyTotals: Equatable {
    var fetches: UInt64 = 0
    var checks: UInt64 = 0
    var pulls: UInt64 = 0
    var lastPulled = Timestamp.distantPast
    var lastUsed = Timestamp.distantPast

    static func + (lhs: KeyTotals, rhs: KeyTotals) -> KeyTotals {
        KeyTotals(
            fetches: lhs.fetches + rhs.fetches, checks: lhs.checks + rhs.checks, pulls: lhs.pulls + rhs.pulls,
            lastPulled: max(lhs.lastPulled, rhs.lastPulled), lastUsed: max(lhs.lastUsed, rhs.lastUsed)
        )
    }
}

/// Key totals of hot entries, keyed `kind|repository|reference`.
func totals(_ entries: some Sequence<HotEntry>) -> [String: KeyTotals] {
    var result: [String: KeyTotals] = [:]
    for entry in entries {
        let key = "\(entry.key.kind)|\(entry.key.repository)|\(entry.key.name)"
        result[key, default: KeyTotals()] = result[key, default: KeyTotals()]
            + KeyTotals(fetches: entry.fetches, checks: entry.checks, pulls: entry.pulls, lastPulled: entry.lastPulled, lastUsed: entry.lastUsed)
    }
    return result
}

/// The true key totals of pull events under the default counting rule.
func totals(of events: some Sequence<PullEvent>) -> [String: KeyTotals] {
    var result: [String: KeyTotals] = [:]
    for event in events {
        for touch in CountingRule.resolutions.touches(for: event) {
            let key = "\(touch.key.kind)|\(touch.key.repository)|\(touch.key.name)"
            let one = KeyTotals(
                fetches: touch.effect.fetches, checks: touch.effect.checks, pulls: touch.effect.pulls,
                lastPulled: touch.effect.pulls > 0 ? event.time : .distantPast, lastUsed: event.time
            )
            result[key, default: KeyTotals()] = result[key, default: KeyTotals()] + one
        }
    }
    return result
}

/// Seals every shard and returns every sealed batch, read and deleted.
func drainSealed(_ store: BatchStore) throws -> [SealedBatch] {
    var batches: [SealedBatch] = []
    for shard in 0..<store.shardCount {
        _ = try store.seal(shard: shard)
        for number in try store.sealedBatches(shard: shard) {
            let batch = try store.readBatch(shard: shard, number: number)!
            batches.append(batch)
            try store.deleteBatch(shard: shard, number: number, confirming: batch.windows.mapValues(\.upperBound))
        }
    }
    return batches
}
