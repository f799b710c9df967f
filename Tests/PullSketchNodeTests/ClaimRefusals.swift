import PullSketchEvents
import PullSketchRedis

/// A Redis that answers some event-id claims with an error, as it refuses writes over its
/// `maxmemory`, but by key, so that which ones is known: while refusing, its default user may `SET`
/// only the claim keys of shard 0 whose fingerprint starts with a hex digit below 8 (a Redis 7 ACL
/// selector).
struct ClaimRefusals {
    let redis: any RedisCommands

    /// Whether Redis takes the claim of `id` while refusing.
    static func isTaken(_ id: EventFingerprint) -> Bool { id.high >> 60 < 8 }

    func start() throws {
        _ = try redis.command(["ACL", "SETUSER", "default", "-set", "(+set ~{ps:0}:event:[0-7]*)"])
    }

    func stop() throws {
        _ = try redis.command(["ACL", "SETUSER", "default", "+set", "clearselectors"])
    }
}
