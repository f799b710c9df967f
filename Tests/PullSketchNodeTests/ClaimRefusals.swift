import PullSketchEvents
import PullSketchRedis
import Testing

/// A Redis that answers some event-id claims with an error, as it refuses writes over its
/// `maxmemory`, but by key, so that which ones is known: while refusing, its default user may `SET`
/// only the claim keys of shard 0 whose fingerprint starts with a hex digit below 8 (a Redis 7 ACL
/// selector).
struct ClaimRefusals {
    let redis: any RedisCommands

    /// Per id, whether Redis takes its claim while refusing; the ids must hold both kinds.
    static func taken(_ ids: [EventFingerprint]) -> [Bool] {
        let taken = ids.map { $0.high >> 60 < 8 }
        #expect(taken.contains(true) && taken.contains(false), "ids Redis takes and ids it refuses")
        return taken
    }

    func start() throws {
        _ = try redis.command(["ACL", "SETUSER", "default", "-set", "(+set ~{ps:0}:event:[0-7]*)"])
    }

    func stop() throws {
        _ = try redis.command(["ACL", "SETUSER", "default", "+set", "clearselectors"])
    }
}
