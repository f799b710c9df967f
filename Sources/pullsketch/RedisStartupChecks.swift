import ArgumentParser
import Logging
import PullSketchConfig
import PullSketchRedis

/// Refuses to start a node or reconciler while Redis holds batches merged with another shard
/// count: they must be drained by a reconciler of that count first (docs/operations.md, "Changing
/// the shard count"). When Redis cannot be asked, the process starts anyway: a batch of another
/// count is still refused when it is merged into or read.
func refuseBatchesOfAnotherShardCount(_ configuration: PullSketchConfiguration, logger: Logger) throws {
    let shards = configuration.tracker.shardCount
    let others: Set<Int>
    do {
        others = try BatchStore(connection: try connectRedis(configuration.redis), shardCount: shards).otherLayoutsWaiting()
    } catch {
        logger.warning("could not look for batches of another shard count in redis", metadata: ["error": "\(error)"])
        return
    }
    guard others.isEmpty else {
        throw ValidationError(
            "Redis holds batches merged with \(others.sorted().map(String.init).joined(separator: " and ")) shards, and this process runs with \(shards): "
                + "stop the nodes, let a reconciler with the old shard count drain every shard, then start with the new count"
        )
    }
}

/// Refuses to start a node, reconciler or import on a Redis that may evict keys (a memory limit with a
/// `maxmemory-policy` other than `noeviction`): an evicted key loses pulls or counts them twice,
/// silently (docs/operations.md). When Redis cannot be asked, the process starts anyway, as above.
func refuseAnEvictingRedis(_ configuration: PullSketchConfiguration, logger: Logger) throws {
    let policies: [EvictionPolicy]
    do {
        policies = try EvictionPolicy.of(try connectRedis(configuration.redis))
    } catch {
        logger.warning("could not read redis's maxmemory-policy", metadata: ["error": "\(error)"])
        return
    }
    if let evicting = policies.first(where: \.mayEvict) {
        throw ValidationError(
            "Redis may evict PullSketch's keys (maxmemory \(evicting.maxMemory) bytes, maxmemory-policy \(evicting.policy)), "
                + "which loses pulls or counts them twice: set maxmemory-policy noeviction (or no maxmemory)"
        )
    }
}
