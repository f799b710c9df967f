import Foundation
import PullSketchCore
import PullSketchFlusher
import PullSketchPostgres
import PullSketchReconciler
import PullSketchRedis
import PullSketchStore
import PullSketchTestSupport
import Testing

/// Faults of Redis and of batches that must neither double nor silently lose a pull.
extension ReconcilerTests {
    @Test func aRedisThatWentBackToAnOlderSnapshotCountsEveryPullOnce() async throws {
        let pipeline = try Pipeline(seed: 21)
        let reconciler = pipeline.reconciler()
        let tracker = PullTracker(configuration: TrackerConfiguration(isEnabled: true, shardCount: Pipeline.shardCount))
        let flusher = Flusher(tracker: tracker, redis: pipeline.endpoint)
        try pipeline.record(100, into: tracker)
        #expect(await flusher.flushOnce() != .nothingToMerge)
        let snapshot = try pipeline.redis.snapshot()
        try await reconciler.reconcileOnce()
        try pipeline.record(50, into: tracker)
        await flusher.flushOnce()  // also learns that PostgreSQL holds the first window
        try await reconciler.reconcileOnce()
        let reconciled = pipeline.truthTagPulls
        try pipeline.record(30, into: tracker)
        await flusher.flushOnce()  // merged, not reconciled yet
        #expect(try pipeline.storedTagPulls() == reconciled)

        // The snapshot holds the first window, live again and unsealed, as if never reconciled.
        try pipeline.redis.restart(from: snapshot)
        #expect(await flusher.flushOnce() == .failed(retained: true), "the restart broke the connection")
        #expect(await flusher.flushOnce() == .nothingToMerge, "nothing new; the node only sends its third window again")
        let reconciler2 = pipeline.reconciler()  // on a fresh connection
        let pass = try await reconciler2.reconcileOnce()
        #expect(pass.rewound > 0 && pass.applied < Pipeline.shardCount, "batches holding the first window again are discarded")
        #expect(try pipeline.storedTagPulls() == reconciled, "nothing counted twice")
        await flusher.flushOnce()  // the rewound shards' ledgers are behind: the third window again
        try await reconciler2.reconcileOnce()
        try pipeline.expectRowsEqualTruth()
    }

    @Test func unreadableAndUnwritableBatchesAreQuarantinedAndEveryOtherShardGoesOn() async throws {
        let pipeline = try Pipeline(seed: 22)
        try pipeline.pull(2_000)
        for shard in 0..<Pipeline.shardCount { try pipeline.store.seal(shard: shard) }
        let redis = try connectRedis(pipeline.endpoint)
        // Shard 0: a count that is no number; shard 1: one PostgreSQL's bigint cannot hold.
        var poisoned: [String] = []
        for (shard, value) in [(0, "many"), (1, String(UInt64.max))] {
            guard case .array(let fields) = try redis.command(["HKEYS", "{ps:\(shard)}:batch:1:pulls"]), case .bulk(let field) = fields.first else {
                Issue.record("shard \(shard) has no pulls")
                return
            }
            poisoned.append(String(decoding: field, as: UTF8.self))
            _ = try redis.command(["HSET", "{ps:\(shard)}:batch:1:pulls", poisoned[shard], value])
        }
        let reconciler = pipeline.reconciler()
        let pass = try await reconciler.reconcileOnce()
        #expect(pass.quarantined == 2 && pass.applied == Pipeline.shardCount - 2 && pass.shardsFailed == 0)
        let quarantined = try pipeline.connection.query(
            "SELECT shard, batch, reason, content->'pulls'->>$1, content->'pulls'->>$2 FROM quarantined_batches ORDER BY shard",
            [poisoned[0], poisoned[1]]
        ).rows
        #expect(quarantined.map { [$0[0]!, $0[1]!] } == [["0", "1"], ["1", "1"]])
        #expect(quarantined[0][2]?.contains("many") == true && quarantined[1][2]?.contains("22003") == true, "\(quarantined)")
        #expect(quarantined[0][3] == "many" && quarantined[1][4] == String(UInt64.max), "the batches are kept as they were")
        for shard in 0..<2 {
            #expect(try pipeline.store.sealedBatches(shard: shard).isEmpty)
            #expect(try redis.command(["EXISTS", "{ps:\(shard)}:batch:1:pulls"]) == .integer(0), "gone from Redis: kept in PostgreSQL")
        }

        // The shards go on: later pulls of every shard are counted.
        let before = try pipeline.ledgerCount()
        try pipeline.pull(500)
        let next = try await reconciler.reconcileOnce()
        #expect(next.applied == Pipeline.shardCount, "\(next)")
        #expect(try pipeline.ledgerCount() == before + Pipeline.shardCount)
    }

    @Test func aRedisAtItsMemoryLimitIsDrainedByTheReconcilerAndTakesMergesAgain() async throws {
        let pipeline = try Pipeline(seed: 23)
        let redis = try connectRedis(pipeline.endpoint)
        let tracker = PullTracker(configuration: TrackerConfiguration(isEnabled: true, shardCount: Pipeline.shardCount))
        let flusher = Flusher(tracker: tracker, redis: pipeline.endpoint)
        let empty = try Self.usedMemory(redis)
        try pipeline.record(20_000, into: tracker, tags: 2_000)
        #expect(await flusher.flushOnce() != .nothingToMerge)
        let full = try Self.usedMemory(redis)
        // The limit falls between Redis without the live batch and Redis with it: Redis is over it.
        let limit = (empty + full) / 2
        _ = try redis.command(["CONFIG", "SET", "maxmemory", String(limit)])

        try pipeline.record(500, into: tracker, tags: 2_000)
        #expect(await flusher.flushOnce() == .failed(retained: false), "Redis refuses a merge past its limit; the window goes back into the tracker")
        // A fresh reconciler: it announces itself, takes the leases, seals, writes, deletes and
        // confirms, every step past the limit, and so frees what the batches held.
        let reconciler = pipeline.reconciler()
        let pass = try await reconciler.reconcileOnce()
        #expect(pass.applied == Pipeline.shardCount && pass.shardsFailed == 0, "\(pass)")
        #expect(try Self.usedMemory(redis) < limit)
        let retried = await flusher.flushOnce()
        #expect(retried != .nothingToMerge && retried != .failed(retained: false), "the kept pulls go in once Redis has room")
        try await reconciler.reconcileOnce()
        try pipeline.expectRowsEqualTruth()
    }

    /// A Redis that refuses writes: over its memory limit, or turned into a read-only replica (a
    /// failover that demoted the host the nodes name), with the commands that turn it back.
    enum Refusal: CaseIterable, Sendable {
        case memoryLimit, readOnlyReplica

        func begin(_ redis: any RedisCommands) throws {
            switch self {
            case .memoryLimit: _ = try redis.command(["CONFIG", "SET", "maxmemory", "1"])  // below what Redis holds empty
            case .readOnlyReplica: _ = try redis.command(["REPLICAOF", "127.0.0.1", String(try freeLoopbackPort())])  // no master there
            }
        }

        func end(_ redis: any RedisCommands) throws {
            switch self {
            case .memoryLimit: _ = try redis.command(["CONFIG", "SET", "maxmemory", "0"])
            case .readOnlyReplica: _ = try redis.command(["REPLICAOF", "NO", "ONE"])
            }
        }
    }

    /// What Redis refuses before writing it never wrote: the window's parts go back into the
    /// tracker and wait there, however long Redis refuses — past half the ledger's memory, when a
    /// window whose outcome is unknown is dropped — and go in once it takes writes, each pull once.
    @Test(arguments: Refusal.allCases)
    func partsRedisRefusesWaitInTheTrackerForAsLongAsItRefuses(refusal: Refusal) async throws {
        let pipeline = try Pipeline(seed: 29)
        let redis = try connectRedis(pipeline.endpoint)
        let tracker = PullTracker(configuration: TrackerConfiguration(isEnabled: true, shardCount: Pipeline.shardCount))
        // A minute to answer: a merge a loaded machine timed out would be an unknown outcome, not this.
        var endpoint = pipeline.endpoint
        endpoint.timeout = 60
        let flusher = Flusher(tracker: tracker, redis: endpoint, configuration: FlusherConfiguration(ledgerMemory: .seconds(2)))
        try pipeline.record(2_000, into: tracker, tags: 500)
        try refusal.begin(redis)
        #expect(await flusher.flushOnce() == .failed(retained: false), "refused: back into the tracker")
        try await Task.sleep(for: .seconds(1.5))  // past half the ledger's memory
        #expect(await flusher.flushOnce() == .failed(retained: false), "still refused, still kept")
        try refusal.end(redis)
        let retried = await flusher.flushOnce()
        #expect(retried != .nothingToMerge && retried != .failed(retained: false), "the kept pulls go in once Redis takes writes")
        try await pipeline.reconciler().reconcileOnce()
        try pipeline.expectRowsEqualTruth()
    }

    private static func usedMemory(_ redis: any RedisCommands) throws -> Int {
        guard case .bulk(let info) = try redis.command(["INFO", "memory"]),
            let line = String(decoding: info, as: UTF8.self).split(separator: "\r\n").first(where: { $0.hasPrefix("used_memory:") }),
            let bytes = Int(line.dropFirst("used_memory:".count))
        else { throw RedisError(.unexpectedReply, "INFO memory without used_memory") }
        return bytes
    }
}

extension Pipeline {
    /// Pulls by tag, as the truth has them.
    var truthTagPulls: Int64 {
        truth.filter { $0.key.hasPrefix("tag|") }.values.reduce(0) { $0 + $1.count }
    }

    /// Pulls by tag, as PostgreSQL has them.
    func storedTagPulls() throws -> Int64 {
        try connection.query("SELECT coalesce(sum(pull_count), 0) FROM tag_stats").rows[0][0].flatMap { Int64($0) } ?? -1
    }
}
