import Foundation
import PullSketchConfig
import PullSketchCore
import PullSketchFlusher
import PullSketchRedis
import PullSketchTestSupport
import Synchronization
import Testing

/// The whole write side on a real Redis Cluster (3 masters, a replica each): three nodes merging,
/// `pullsketch reconcile` processes sharing the shards by their leases, and the faults a cluster
/// brings — a live reshard of busy shards' slots, a master killed and its replica promoted, a
/// reconciler killed — with every count exact in PostgreSQL at the end.
extension ReconcilerTests {
    @Test func everyPullIsCountedOnceOnAClusterThroughAReshardAFailoverAndALostReconciler() async throws {
        let cluster = try RedisClusterServer()
        let endpoint = RedisEndpoint(port: cluster.servers[0].port, clusterNodes: cluster.nodes)
        let (shards, stripes) = PullSketchConfiguration.clusterShards
        let pipeline = try Pipeline(seed: 61, cluster: endpoint, shards: shards)
        let trackers = (0..<3).map { _ in PullTracker(configuration: TrackerConfiguration(isEnabled: true, stripeCount: stripes, shardCount: shards)) }
        let flushers = trackers.map { Flusher(tracker: $0, redis: endpoint) }
        func round(_ pulls: Int = 300) async throws {
            for (tracker, flusher) in zip(trackers, flushers) {
                try pipeline.record(pulls, into: tracker)
                _ = await flusher.flushOnce()
            }
        }
        let lease = Duration.seconds(2)
        func startReconciler(_ name: String) throws -> ChildProcess {
            try ChildProcess(builtProduct("pullsketch"), ["reconcile"], environment: [
                "PULLSKETCH_DATABASE_URL": pipeline.database, "PULLSKETCH_REDIS_CLUSTER_NODES": cluster.nodes.joined(separator: ","),
                "PULLSKETCH_RECONCILE_INTERVAL_MS": "200", "PULLSKETCH_LEASE_MS": "2000",
            ], log: FileManager.default.temporaryDirectory.appendingPathComponent("pullsketch-cluster-\(name)-\(UUID().uuidString).log"))
        }

        // One reconciler works every shard; a second one takes its share within a lease period.
        // Each is timed from when it has announced itself: process start-up is not the
        // reconciler's doing, and the whole suite on two cores once kept the first from every
        // lease for 10 s. Then it holds its shards within a lease period and a pass or two: a
        // few lease periods at most (3 s was once missed by 7 ms there).
        let first = try startReconciler("first")
        try await round()
        try await until(within: .seconds(30)) { try pipeline.announcedReconcilers() == 1 }
        try await until(within: lease * 3 + .seconds(1)) { try pipeline.leaseHolders().values.sorted() == [shards] }
        let second = try startReconciler("second")
        try await until(within: .seconds(30)) { try pipeline.announcedReconcilers() == 2 }
        try await until(within: lease * 3 + .seconds(1)) { try pipeline.leaseHolders().values.sorted() == [shards / 2, shards / 2] }
        try await round()

        // A live reshard: the slots of four busy shards move to other masters while nodes merge.
        let moving = (0..<4).map(RedisCluster.slot(ofShard:))
        let owners = try moving.map { try cluster.master(of: $0).id }
        let resharded = Flag()
        let reshard = Task.detached {
            defer { resharded.raise() }
            try await onOwnThread {
                for slot in moving { try cluster.migrate(slot: slot, to: try cluster.masters().first { !$0.serves(slot) }!) }
            }
        }
        repeat {
            try await round(50)  // a moving shard's merges get TRYAGAIN until its slot has moved
        } while !resharded.isRaised
        try await reshard.value
        #expect(try zip(moving, owners).allSatisfy { slot, owner in try cluster.master(of: slot).id != owner }, "the slots moved")
        try await round()

        // A master killed: its replica is promoted; merges meanwhile fail, are retained and sent again.
        let slot = RedisCluster.slot(ofShard: 5)
        try await onOwnThread { try cluster.killMaster(of: slot) }
        for _ in 0..<5 { try await round() }

        // A reconciler killed: the other takes every shard once its leases expire.
        first.kill()
        try await until(within: lease * 3 + .seconds(3)) { try pipeline.leaseHolders().count == 1 && pipeline.leaseHolders().values.sorted() == [shards] }
        for _ in 0..<3 { try await round() }

        // Every node sends what it kept until PostgreSQL holds it; then every count is exact.
        try await until(within: .seconds(60)) {
            for flusher in flushers { _ = await flusher.flushOnce() }
            return try pipeline.rows() == pipeline.truth
        }
        try pipeline.expectRowsEqualTruth()
        #expect(second.isRunning)
    }

    /// Set once by one task, read by another.
    private final class Flag: Sendable {
        private let value = Atomic<Bool>(false)
        var isRaised: Bool { value.load(ordering: .acquiring) }
        func raise() { value.store(true, ordering: .releasing) }
    }

    /// Polls `condition` every 200 ms for up to `limit`.
    private func until(within limit: Duration, _ condition: () async throws -> Bool) async throws {
        let deadline = ContinuousClock.now + limit
        while try await !condition() {
            try #require(ContinuousClock.now < deadline, "not within \(limit)")
            try await Task.sleep(for: .milliseconds(200))
        }
    }
}
