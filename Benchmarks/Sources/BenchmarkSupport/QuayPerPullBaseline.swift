public import PullSketchCore
public import PullSketchRedis

/// The design PullSketch replaces (Quay upstream): one Redis EVAL per pull of a script that creates
/// or increments the pull's hash, here on a warm connection. Upstream also builds a client and
/// sends a PING per pull; leaving those out favours the baseline.
public enum QuayPerPullBaseline {
    static let script = Array("""
        if redis.call('EXISTS', KEYS[1]) == 1 then
          redis.call('HINCRBY', KEYS[1], 'pull_count', 1)
          redis.call('HSET', KEYS[1], 'last_pull_timestamp', ARGV[1])
        else
          redis.call('HSET', KEYS[1], 'repository', ARGV[2], 'tag_name', ARGV[3], 'manifest_digest', ARGV[4],
            'pull_count', 1, 'last_pull_timestamp', ARGV[1], 'pull_method', 'tag')
        end
        return 1
        """.utf8)

    /// Records one pull by tag the upstream way: one round trip.
    public static func record(_ event: PullEvent, on connection: RedisConnection) throws {
        guard case .tag(let tag) = event.reference, let digest = event.servedDigest else { return }
        let key = "pull_events:repo:\(event.repository):tag:\(tag):\(digest)"
        _ = try connection.command(bytes: [
            Array("EVAL".utf8), script, Array("1".utf8), Array(key.utf8),
            Array(String(event.time.millisecondsSinceEpoch / 1000).utf8),
            Array(event.repository.value.utf8), Array(tag.value.utf8), Array(digest.value.utf8),
        ])
    }
}
