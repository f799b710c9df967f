import PullSketchCore
import PullSketchRedis
import PullSketchTestSupport
import Testing

/// `RedisCluster` against a real cluster of 3 masters with a replica each, the cluster's answers
/// provoked one at a time: a slot in the middle of a migration (`ASK`, `TRYAGAIN`), a slot whose
/// owner changed after the client read the map (`MOVED`), a master killed (lost connection, then the promoted
/// replica).
@Suite struct RedisClusterTests {
    @Test func mergesSealsAndReadsFollowAskMovedAndAFailover() throws {
        let cluster = try RedisClusterServer()
        // The slots the client computes are the server's, hash tags and their edge cases included.
        for key in ["{ps:0}:live:pulls", "{ps:11}:sealed", "plain", "{}braces", "a{b}c{d}", "{user1000}.following", "x{"] {
            #expect(RedisCluster.slot(ofKey: key) == (try cluster.keySlot(key)), "\(key)")
        }
        let endpoint = RedisEndpoint(port: cluster.servers[0].port, clusterNodes: cluster.nodes)
        let shards = 4
        let store = BatchStore(connection: try connectRedis(endpoint), shardCount: shards)
        let tracker = PullTracker(configuration: TrackerConfiguration(isEnabled: true, shardCount: shards))
        let repository = try RepositoryName("team/app")
        var time: Int64 = 0
        var expected: UInt64 = 0
        /// A window of `pulls` pulls by tag over 40 tags, spread over every shard.
        func window(_ pulls: Int) throws -> Window {
            for index in 0..<pulls {
                time += 1
                tracker.record(PullEvent(repository: repository, reference: .tag(try TagName("v\(index % 40)")), method: .get,
                                         servedDigest: try Digest("sha256:" + String(repeating: "a", count: 64)), time: Timestamp(millisecondsSinceEpoch: time)))
            }
            expected += UInt64(pulls)
            return tracker.drain()
        }
        func merge(_ pulls: Int) throws {
            let outcomes = try store.merge(try window(pulls), node: "node")
            #expect(outcomes.values.allSatisfy { $0 == .applied }, "\(outcomes)")
        }
        try merge(200)

        // Shard 0's slot in the middle of a migration: its keys already moved, the slot still the
        // source's. One-key commands follow ASK; the merge script, whose keys are not all at the
        // target yet, gets TRYAGAIN until the migration ends and fails without writing anything.
        let slot = RedisCluster.slot(ofShard: 0)
        let source = try cluster.master(of: slot)
        let target = try cluster.masters().first { $0.id != source.id }!
        try cluster.beginMigration(slot: slot, from: source, to: target)
        try cluster.moveKeys(slot: slot, from: source, to: target)
        #expect(try store.lease(shard: 0, owner: "reconciler", duration: .seconds(5)), "ASK: the lease key is taken at the target")
        #expect(try store.sealedBatches(shard: 0).isEmpty)
        let deferred = try window(200)
        #expect(throws: RedisError.self) { try store.merge(deferred, node: "node") }
        // Once every master knows the new owner, the client's old map gets MOVED and follows it.
        try cluster.finishMigration(slot: slot, to: target)
        #expect(try store.merge(deferred, node: "node")[0] == .applied, "nothing of shard 0 was written while it was deferred")
        try merge(200)
        #expect(try cluster.master(of: slot).id == target.id)

        // The master of shard 1 dies: the next merge fails on its lost connection, after reaching
        // the other masters perhaps; sent again, the promoted replica takes the rest, once. It dies
        // once its replica has what it acknowledged: losing acknowledged merges is the flusher's
        // to repair (it keeps them and sends them again), which this store-level test has not.
        try cluster.waitUntilReplicated(slot: RedisCluster.slot(ofShard: 1))
        try cluster.killMaster(of: RedisCluster.slot(ofShard: 1))
        let lost = try window(200)
        #expect(throws: RedisError.self) { try store.merge(lost, node: "node") }
        #expect(try store.merge(lost, node: "node").values.allSatisfy { $0 == .applied || $0 == .alreadyApplied })
        try merge(200)

        var counted: UInt64 = 0
        for shard in 0..<shards {
            guard let number = try store.seal(shard: shard) else { continue }
            let batch = try #require(try store.readBatch(shard: shard, number: number))
            counted += batch.content.hotEntries.filter { $0.key.kind == .tag }.reduce(0) { $0 + $1.pulls }
            try store.deleteBatch(shard: shard, number: number)
            #expect(try store.sealedBatches(shard: shard).isEmpty)
        }
        #expect(counted == expected, "every merge applied once, whichever node took it")
    }
}
