import Foundation
import Logging
import PullSketchBlocking
import PullSketchEvents
import PullSketchRedis

/// Event ids claimed in Redis, shared by every node, for the registry's retry horizon: a
/// redelivered notification counts once even when it reaches another node or a restarted one.
/// An id is claimed when it is received (`SET {ps:<shard>}:event:<hash> 1 NX PX <horizon>`), so a
/// node that crashes before merging loses the pulls it claimed — as it loses its unmerged window —
/// but no redelivery ever doubles them.
///
/// When Redis does not answer, the node answers 503 for a few seconds without trying again, and
/// the registry delivers the envelope later: counting it by one node's memory alone could count it
/// twice, and waiting on a Redis that is down would hold the registry's queue. Like the flusher,
/// an actor on its own `BlockingExecutor`, since hiredis blocks.
actor EventClaims {
    private let redis: RedisEndpoint
    private let shardCount: Int
    private let horizonMilliseconds: Int64
    private let logger: Logger
    private nonisolated let executor = BlockingExecutor(label: "pullsketch.event-claims")
    nonisolated var unownedExecutor: UnownedSerialExecutor { executor.asUnownedSerialExecutor() }
    private var connection: (any RedisCommands)?
    /// Until when claims are skipped after Redis failed to answer.
    private var pausedUntil: ContinuousClock.Instant?
    static let pauseAfterFailure: Duration = .seconds(2)

    init(redis: RedisEndpoint, shardCount: Int, horizon: Duration, logger: Logger) {
        self.redis = redis
        self.shardCount = shardCount
        let components = horizon.components
        horizonMilliseconds = components.seconds * 1_000 + components.attoseconds / 1_000_000_000_000_000
        self.logger = logger
    }

    /// Per fingerprint, whether this claim was the first within the horizon; nil, claiming nothing
    /// it can tell, when Redis did not answer (or claims are paused after it did not).
    func claim(_ fingerprints: [EventFingerprint]) -> [Bool]? {
        guard !fingerprints.isEmpty else { return [] }
        if let pausedUntil, ContinuousClock.now < pausedUntil { return nil }
        let commands = fingerprints.map { fingerprint in
            let shard = Int(fingerprint.low % UInt64(shardCount))
            return ["SET", "{ps:\(shard)}:event:\(fingerprint.hex)", "1", "NX", "PX", String(horizonMilliseconds)].map { Array($0.utf8) }
        }
        do {
            let connection = try self.connection ?? connectRedis(redis)
            self.connection = connection
            return try connection.pipeline(commands).map { reply in
                switch reply {
                case .status: return true
                case .null: return false
                default: throw RedisError(.unexpectedReply, "SET NX answered \(reply)")
                }
            }
        } catch {
            connection = nil
            pausedUntil = .now + Self.pauseAfterFailure
            logger.warning("event ids cannot be claimed in redis: deferring events for a while", metadata: ["error": "\(error)"])
            return nil
        }
    }
}
