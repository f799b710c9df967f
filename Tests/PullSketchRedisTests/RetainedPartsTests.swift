import PullSketchCore
@testable import PullSketchFlusher
import PullSketchRedis
import Testing

/// What a node keeps of what it merged, and what it sends again when a shard lost it.
@Suite struct RetainedPartsTests {
    /// A part of shard 0 with one hot key, so parts differ and have a size.
    func part(_ tag: String) -> ShardWindow {
        var part = ShardWindow(shard: 0)
        let key = try! PullKey(kind: .tag, repository: "team/app", reference: tag)
        part.hotEntries = [HotEntry(key: key, lastUsed: Timestamp(millisecondsSinceEpoch: 1))]
        return part
    }

    func applied(_ retained: inout RetainedParts, _ merges: [PartMerge], confirmed: UInt64 = 0) {
        for merge in merges {
            let accepted = retained.record(MergeReply(outcome: .applied, ledger: merge.sequence, confirmed: confirmed), for: merge, at: .now)
            #expect(accepted)
        }
    }

    @Test func aShardThatLostMergesGetsTheKeptPartsAfterItsLedgerAgainInOrder() {
        var retained = RetainedParts()
        for sequence in 1...4 as ClosedRange<UInt64> {
            let merges = retained.merges(shard: 0, new: (sequence, part("v\(sequence)")))
            #expect(merges.map(\.expected) == [sequence - 1], "each merge names what the shard acknowledged last")
            applied(&retained, merges, confirmed: sequence >= 3 ? 1 : 0)
        }
        // Redis went back: the ledger has 2, the node was told 4.
        let check = retained.merges(shard: 0, new: nil)
        #expect(check.map(\.sequence) == [0] && check[0].expected == 4, "nothing new: the node asks for the shard's state")
        let accepted = retained.record(MergeReply(outcome: .rewound, ledger: 2, confirmed: 1), for: check[0], at: .now)
        #expect(!accepted)
        let again = retained.merges(shard: 0, new: (5, part("v5")))
        #expect(again.map(\.sequence) == [3, 4, 5])
        #expect(again.map(\.expected) == [2, 3, 4])
        #expect(again.map { $0.part.hotEntries[0].key.name } == ["v3", "v4", "v5"])
        applied(&retained, again, confirmed: 5)
        #expect(retained.isEmpty, "PostgreSQL holds everything up to 5")
    }

    @Test func confirmedPartsAreForgottenAndBeyondTheByteBoundTheOldestGoFirst() {
        var retained = RetainedParts()
        for sequence in 1...6 as ClosedRange<UInt64> {
            applied(&retained, retained.merges(shard: 0, new: (sequence, part("v\(sequence)"))), confirmed: 2)
        }
        let size = part("v1").approximatePayloadBytes
        let forgotten = retained.keep(atMostBytes: 2 * size)
        #expect(forgotten == 2, "parts 3 and 4 go; 1 and 2 are confirmed")
        let check = retained.merges(shard: 0, new: nil)[0]
        let accepted = retained.record(MergeReply(outcome: .rewound, ledger: 2, confirmed: 2), for: check, at: .now)
        #expect(!accepted)
        #expect(retained.merges(shard: 0, new: nil).map(\.sequence) == [5, 6], "what was forgotten cannot be sent again")
        let old = retained.forget(mergedBefore: .now)
        #expect(old == 2)
        #expect(retained.isEmpty)
    }
}
