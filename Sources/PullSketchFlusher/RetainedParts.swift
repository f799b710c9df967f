import PullSketchCore
import PullSketchRedis

/// The window parts a node merged that PostgreSQL does not hold yet, per shard, and what each
/// shard last acknowledged. Redis acknowledges a merge before it is durable (and a failover or a
/// restored snapshot can take it back), so a node keeps what it merged until the reconciler
/// confirms it, and sends the parts again, in order, when a shard's ledger turns out to be behind
/// what it acknowledged.
struct RetainedParts {
    struct Part {
        let sequence: UInt64
        let part: ShardWindow
        let mergedAt: ContinuousClock.Instant
        let bytes: Int
    }

    /// Per shard, in sequence order.
    private var parts: [Int: [Part]] = [:]
    /// Per shard, the last sequence its ledger acknowledged for this node.
    private var acknowledged: [Int: UInt64] = [:]
    private var count = 0
    /// The parts' approximate size (`ShardWindow.approximatePayloadBytes`).
    private var bytes = 0

    var isEmpty: Bool { count == 0 }

    /// The merges to send for `shard`, in order: retained parts the shard no longer has (after a
    /// rewind), then `new` if the shard has not acknowledged it; with nothing to send but parts
    /// kept, an empty sequence-0 part that asks for the shard's state.
    func merges(shard: Int, new: (sequence: UInt64, part: ShardWindow)?) -> [PartMerge] {
        var expected = acknowledged[shard] ?? 0
        var merges: [PartMerge] = []
        for kept in parts[shard] ?? [] where kept.sequence > expected {
            merges.append(PartMerge(sequence: kept.sequence, expected: expected, part: kept.part))
            expected = kept.sequence
        }
        if let new, new.sequence > expected {
            merges.append(PartMerge(sequence: new.sequence, expected: expected, part: new.part))
        }
        if merges.isEmpty, parts[shard]?.isEmpty == false {
            merges.append(PartMerge(sequence: 0, expected: expected, part: ShardWindow(shard: shard)))
        }
        return merges
    }

    /// Takes a shard's reply to `merge`. Returns false when the shard rewound: its ledger went
    /// back, and the parts after it must be sent again.
    mutating func record(_ reply: MergeReply, for merge: PartMerge, at instant: ContinuousClock.Instant) -> Bool {
        let shard = merge.part.shard
        switch reply.outcome {
        case .refused:
            return true  // Redis wrote nothing: a kept part goes again with the next merge
        case .rewound:
            acknowledged[shard] = reply.ledger
        case .applied, .alreadyApplied:
            if merge.sequence > 0 {
                acknowledged[shard] = max(acknowledged[shard] ?? 0, merge.sequence)
                if merge.sequence > parts[shard]?.last?.sequence ?? 0 {
                    let kept = Part(sequence: merge.sequence, part: merge.part, mergedAt: instant, bytes: merge.part.approximatePayloadBytes)
                    parts[shard, default: []].append(kept)
                    count += 1
                    bytes += kept.bytes
                }
            }
        }
        confirm(shard: shard, upTo: reply.confirmed)
        return reply.outcome != .rewound
    }

    /// Forgets parts merged before `instant`: after that long a re-send could reach a ledger that
    /// forgot the node. Returns how many.
    mutating func forget(mergedBefore instant: ContinuousClock.Instant) -> Int {
        removeAll { $0.mergedAt < instant }
    }

    /// Forgets the oldest parts until the rest take at most `limit` bytes. Returns how many.
    mutating func keep(atMostBytes limit: Int) -> Int {
        var removed = 0
        while bytes > limit, let shard = parts.filter({ !$0.value.isEmpty }).min(by: { $0.value[0].mergedAt < $1.value[0].mergedAt })?.key {
            let forgotten = parts[shard]!.removeFirst()
            count -= 1
            bytes -= forgotten.bytes
            removed += 1
        }
        return removed
    }

    private mutating func confirm(shard: Int, upTo sequence: UInt64) {
        guard parts[shard]?.first.map({ $0.sequence <= sequence }) == true else { return }
        _ = removeAll(inShard: shard) { $0.sequence <= sequence }
    }

    private mutating func removeAll(where shouldRemove: (Part) -> Bool) -> Int {
        parts.keys.reduce(0) { $0 + removeAll(inShard: $1, where: shouldRemove) }
    }

    private mutating func removeAll(inShard shard: Int, where shouldRemove: (Part) -> Bool) -> Int {
        let kept = parts[shard] ?? []
        let remaining = kept.filter { !shouldRemove($0) }
        parts[shard] = remaining
        count -= kept.count - remaining.count
        bytes -= kept.reduce(0) { $0 + $1.bytes } - remaining.reduce(0) { $0 + $1.bytes }
        return kept.count - remaining.count
    }
}
