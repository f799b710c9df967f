import BenchmarkSupport
import Foundation
import PullSketchCore
import PullSketchPostgres
import PullSketchRedis
import PullSketchStore
import Synchronization

/// Merge and reconcile throughput on a Redis Cluster next to a single Redis, same windows, same
/// PostgreSQL, one run. Each round, `nodes` threads merge a window of `pullsPerWindow` pulls each
/// at once (pulls merged per second, wall clock), then one reconciler seals, reads, writes and
/// deletes every shard's batch in turn, as `pullsketch reconcile` does (key updates per second).
/// Rounds alternate between the two backends; medians are reported.
/// Usage: ClusterThroughput REDIS_PORT CLUSTER_NODES(host:port,…) 'libpq connection string (no dbname)'
@main
struct ClusterThroughput {
    static let nodes = 4
    static let pullsPerWindow = 25_000
    static let rounds = 5
    static let shards = 12

    static func main() throws {
        guard CommandLine.arguments.count == 4, let port = Int(CommandLine.arguments[1]) else {
            print("usage: ClusterThroughput REDIS_PORT CLUSTER_NODES 'libpq connection string (no dbname)'")
            exit(2)
        }
        let clusterNodes = CommandLine.arguments[2].split(separator: ",").map(String.init)
        let backends = [
            ("one Redis", RedisEndpoint(port: port)),
            ("cluster, \(clusterNodes.count / 2) masters", RedisEndpoint(port: Int(clusterNodes[0].split(separator: ":")[1])!, clusterNodes: clusterNodes)),
        ]
        let workload = Workload(tags: 100_000, repositories: 100, length: rounds * nodes * pullsPerWindow, method: .get, seed: 17)
        var merged = backends.map { _ in [Double]() }, reconciled = backends.map { _ in [Double]() }
        let writers = try backends.indices.map { index in
            let connection = try freshDatabase(CommandLine.arguments[3], "bench_cluster_\(index)")
            try Schema.migrate(connection)
            return BatchWriter(connection: connection, shardCount: shards)
        }
        for round in 0..<rounds {
            for (index, (_, endpoint)) in backends.enumerated() {
                let windows = (0..<nodes).map { node in
                    let tracker = PullTracker(configuration: TrackerConfiguration(isEnabled: true, hotCapacity: 1 << 20, stripeCount: 2 * shards, shardCount: shards))
                    let start = (round * nodes + node) * pullsPerWindow
                    for event in workload.events[start..<(start + pullsPerWindow)] { tracker.record(event) }
                    return tracker.drain()
                }
                merged[index].append(try mergeRate(windows, endpoint, round: round))
                reconciled[index].append(try reconcileRate(endpoint, writers[index]))
            }
        }
        print("| \(rounds) rounds, \(nodes) nodes merging \(pullsPerWindow) pulls each at once, \(shards) shards, medians | pulls merged/s | key updates reconciled/s |")
        print("|---|---:|---:|")
        for (index, (name, _)) in backends.enumerated() {
            print("| \(name) | \(Int(median(merged[index]))) | \(Int(median(reconciled[index]))) |")
        }
        print("| ratio cluster / one Redis | \(String(format: "%.2f×", median(merged[1]) / median(merged[0]))) | \(String(format: "%.2f×", median(reconciled[1]) / median(reconciled[0]))) |")
    }

    /// Pulls per second of every node merging its window at once, each on its own connection (a
/// node of its own each round, so every merge is applied).
    static func mergeRate(_ windows: [Window], _ endpoint: RedisEndpoint, round: Int) throws -> Double {
        let failures = Mutex<[String]>([])
        let began = ContinuousClock.now
        DispatchQueue.concurrentPerform(iterations: windows.count) { node in
            do {
                let store = BatchStore(connection: try connectRedis(endpoint), shardCount: shards)
                try store.merge(windows[node], node: "bench-node-\(round)-\(node)")
            } catch {
                failures.withLock { $0.append("\(error)") }
            }
        }
        let elapsed = (ContinuousClock.now - began).inSeconds
        if let failure = failures.withLock({ $0.first }) { throw BenchmarkFailure(failure) }
        return Double(windows.count * pullsPerWindow) / elapsed
    }

    /// Key updates per second of sealing, reading, writing and deleting every shard's batch.
    static func reconcileRate(_ endpoint: RedisEndpoint, _ writer: BatchWriter) throws -> Double {
        let store = BatchStore(connection: try connectRedis(endpoint), shardCount: shards)
        var keys = 0
        let began = ContinuousClock.now
        for shard in 0..<shards {
            guard let number = try store.seal(shard: shard),
                let batch = try store.readBatch(shard: shard, number: number)
            else { continue }
            _ = try writer.write(batch)
            try store.deleteBatch(shard: shard, number: number)
            keys += batch.content.hotEntries.count
        }
        return Double(keys) / (ContinuousClock.now - began).inSeconds
    }

    static func median(_ values: [Double]) -> Double { values.sorted()[values.count / 2] }
}
