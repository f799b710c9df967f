import Logging
import PullSketchConfig
import PullSketchRedis

/// What a process that writes through Redis checks before it starts, on one connection: that Redis
/// may not evict keys, and (`shardCount`) that it holds no batches merged with another shard
/// count. When Redis cannot be asked, the process starts anyway: a batch of another count is still
/// refused when it is merged into or read, and the nodes keep what Redis does not take.
func refuseAnUnfitRedis(_ configuration: PullSketchConfiguration, logger: Logger, shardCount: Bool = true) throws {
    let redis: any RedisCommands
    do {
        redis = try connectRedis(configuration.redis)
    } catch {
        logger.warning("could not check redis before starting", metadata: ["error": "\(error)"])
        return
    }
    try refuseEviction(redis, logger: logger)
    if shardCount { try refuseBatchesOfAnotherShardCount(redis, configuration, logger: logger) }
}

/// Refuses a Redis that may evict keys (a memory limit with a `maxmemory-policy` other than
/// `noeviction`): an evicted key loses pulls or counts them twice, silently (docs/operations.md).
private func refuseEviction(_ redis: any RedisCommands, logger: Logger) throws {
    let policies: [EvictionPolicy]
    do {
        policies = try EvictionPolicy.of(redis)
    } catch {
        logger.warning("could not read redis's maxmemory-policy", metadata: ["error": "\(error)"])
        return
    }
    if let evicting = policies.first(where: \.mayEvict) {
        throw StartupRefusal(
            "Redis may evict PullSketch's keys (maxmemory \(evicting.maxMemory) bytes, maxmemory-policy \(evicting.policy)), "
                + "which loses pulls or counts them twice: set maxmemory-policy noeviction (or no maxmemory)"
        )
    }
}

/// Refuses Redis while it holds batches merged with another shard count: they must be drained by a
/// reconciler of that count first (docs/operations.md, "Changing the shard count").
private func refuseBatchesOfAnotherShardCount(_ redis: any RedisCommands, _ configuration: PullSketchConfiguration, logger: Logger) throws {
    let shards = configuration.tracker.shardCount
    let others: Set<Int>
    do {
        others = try BatchStore(connection: redis, shardCount: shards).otherLayoutsWaiting()
    } catch {
        logger.warning("could not look for batches of another shard count in redis", metadata: ["error": "\(error)"])
        return
    }
    guard others.isEmpty else {
        throw StartupRefusal(
            "Redis holds batches merged with \(others.sorted().map(String.init).joined(separator: " and ")) shards, and this process runs with \(shards): "
                + "stop the nodes, let a reconciler with the old shard count drain every shard, then start with the new count"
        )
    }
}
