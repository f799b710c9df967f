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

    /// The prefix of every key the script writes; the flush worker scans for it.
    public static let keyPrefix = "pull_events:"

    /// The EVAL of one pull by tag; nil for other pulls.
    public static func command(for event: PullEvent) -> [[UInt8]]? {
        guard case .tag(let tag) = event.reference, let digest = event.servedDigest else { return nil }
        let key = "\(keyPrefix)repo:\(event.repository):tag:\(tag):\(digest)"
        return [
            Array("EVAL".utf8), script, Array("1".utf8), Array(key.utf8),
            Array(String(event.time.millisecondsSinceEpoch / 1000).utf8),
            Array(event.repository.value.utf8), Array(tag.value.utf8), Array(digest.value.utf8),
        ]
    }

    /// Records one pull by tag the upstream way: one round trip.
    public static func record(_ event: PullEvent, on connection: RedisConnection) throws {
        guard let command = command(for: event) else { return }
        _ = try connection.command(bytes: command)
    }
}
