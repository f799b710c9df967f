/// Whether Redis may evict PullSketch's keys: with a memory limit (`maxmemory` above 0), any
/// `maxmemory-policy` but `noeviction` deletes keys when memory runs out — a batch key's pulls
/// lost, a ledger entry or an event claim gone so a batch or an event counts twice. With
/// `noeviction` a full Redis refuses writes instead, and nodes keep their windows and retry.
public struct EvictionPolicy: Hashable, Sendable {
    /// `maxmemory` in bytes; 0 means no limit.
    public var maxMemory: Int64
    public var policy: String

    public var mayEvict: Bool { maxMemory > 0 && policy != "noeviction" }

    /// From the text of `INFO memory`; nil unless it names both fields.
    public init?(info: String) {
        var fields: [Substring: Substring] = [:]
        for line in info.split(whereSeparator: \.isNewline) {
            let parts = line.split(separator: ":", maxSplits: 1)
            if parts.count == 2 { fields[parts[0]] = parts[1] }
        }
        guard let maxMemory = fields["maxmemory"].flatMap({ Int64($0) }), let policy = fields["maxmemory_policy"] else { return nil }
        self.maxMemory = maxMemory
        self.policy = String(policy)
    }

    /// The policy of the Redis `redis` talks to, of every master for a cluster.
    public static func of(_ redis: any RedisCommands) throws(RedisError) -> [EvictionPolicy] {
        let replies = if let cluster = redis as? RedisCluster { try cluster.everyMaster(["INFO", "memory"]) } else { [try redis.command(["INFO", "memory"])] }
        return try replies.map { (reply) throws(RedisError) in
            guard case .bulk(let bytes) = reply, let policy = EvictionPolicy(info: String(decoding: bytes, as: UTF8.self)) else {
                throw RedisError(.unexpectedReply, "INFO memory answered without maxmemory and maxmemory_policy")
            }
            return policy
        }
    }
}
