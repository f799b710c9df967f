import Foundation
import Logging
import Prometheus
import PullSketchBlocking
import PullSketchEvents
import PullSketchRedis
import Synchronization

/// Event ids claimed in Redis, shared by every node, for the registry's retry horizon: a
/// redelivered notification counts once even when it reaches another node or a restarted one.
/// An id is claimed when it is received (`SET {ps:<shard>}:event:<hash> 1 NX PX <horizon>`), so a
/// node that crashes before merging loses the pulls it claimed — as it loses its unmerged window —
/// but no redelivery ever doubles them.
///
/// This sends the claims of a Redis Cluster's nodes, and those of requests the router answers;
/// `ClaimLanes` sends the rest from the event loops, with the same `ClaimCommand`. Claims of
/// concurrent requests share round trips: while one pipeline is out, the claims that arrive wait
/// together and go in the next one. A round trip per request cost Redis four times the CPU of
/// everything else the node sends it, and each request waited for those before it. Within a
/// pipeline Redis runs the `SET NX`s in order, so an id claimed twice in one is first once.
///
/// When Redis does not answer, the node answers 503 for a few seconds without trying again, and
/// the registry delivers the envelope later: counting it by one node's memory alone could count it
/// twice, and waiting on a Redis that is down would hold the registry's queue. A claim Redis
/// answers with an error (over its `maxmemory`, it refuses writes) is that id's alone: the ids it
/// did claim count. Like the flusher, an actor on its own `BlockingExecutor`, since hiredis blocks.
actor EventClaims {
    private let redis: RedisEndpoint
    private let command: ClaimCommand
    private let roundTrips: Counter
    private nonisolated let waitingRequests: Gauge
    private let logger: Logger
    private nonisolated let executor = BlockingExecutor(label: "pullsketch.event-claims")
    nonisolated var unownedExecutor: UnownedSerialExecutor { executor.asUnownedSerialExecutor() }
    private var connection: (any RedisCommands)?
    /// Until when claims are skipped after Redis failed to answer.
    private var pausedUntil: ContinuousClock.Instant?
    static let pauseAfterFailure: Duration = .seconds(2)
    /// Ids sent in one round trip at most (a request's claim is never split).
    static let idsPerRoundTrip = 4_096
    private nonisolated let waiting = Mutex(Waiting())

    /// Claims that arrived since the last round trip left, and whether one is being sent.
    private struct Waiting {
        var claims: [(fingerprints: [EventFingerprint], answer: @Sendable ([ClaimOutcome]?) -> Void)] = []
        var sending = false
    }

    init(redis: RedisEndpoint, command: ClaimCommand, roundTrips: Counter, waitingRequests: Gauge, logger: Logger) {
        self.redis = redis
        self.command = command
        self.roundTrips = roundTrips
        self.waitingRequests = waitingRequests
        self.logger = logger
    }

    /// Per fingerprint, what became of its claim; nil, claiming nothing it can tell, when Redis did
    /// not answer (or claims are paused after it did not).
    nonisolated func claim(_ fingerprints: [EventFingerprint]) async -> [ClaimOutcome]? {
        await withCheckedContinuation { continuation in
            claim(fingerprints) { continuation.resume(returning: $0) }
        }
    }

    /// `claim`, calling `answer` with what it returns: at once for no fingerprints, else on the
    /// claims' executor once the round trip that carried them is back. For callers on an event
    /// loop, which must not wait.
    nonisolated func claim(_ fingerprints: [EventFingerprint], then answer: @escaping @Sendable ([ClaimOutcome]?) -> Void) {
        guard !fingerprints.isEmpty else { return answer([]) }
        waitingRequests.increment()
        let startSending = waiting.withLock { waiting in
            waiting.claims.append((fingerprints, answer))
            defer { waiting.sending = true }
            return !waiting.sending
        }
        if startSending {
            // Immediate: its first step, the hop to this actor's executor, happens here, so
            // sending never waits for a thread of the cooperative pool that busy requests hold.
            Task.immediate { await self.sendWaitingClaims() }
        }
    }

    /// Sends what waits, one round trip after another, until nothing does.
    private func sendWaitingClaims() {
        while true {
            let claims = waiting.withLock { waiting in
                var ids = 0
                let taken = waiting.claims.prefix { claim in
                    defer { ids += claim.fingerprints.count }
                    return ids == 0 || ids + claim.fingerprints.count <= Self.idsPerRoundTrip
                }
                waiting.claims.removeFirst(taken.count)
                if taken.isEmpty { waiting.sending = false }
                return taken
            }
            guard !claims.isEmpty else { return }
            let answers = firstClaims(claims.flatMap(\.fingerprints))
            var next = 0
            for (fingerprints, answer) in claims {
                answer(answers.map { Array($0[next..<next + fingerprints.count]) })
                next += fingerprints.count
            }
            waitingRequests.decrement(by: Double(claims.count))
        }
    }

    /// One pipeline of `SET NX`: per fingerprint what became of its claim; nil when Redis did not answer.
    private func firstClaims(_ fingerprints: [EventFingerprint]) -> [ClaimOutcome]? {
        if let pausedUntil, ContinuousClock.now < pausedUntil { return nil }
        let commands = fingerprints.map(command.arguments)
        do {
            let connection = try self.connection ?? connectRedis(redis)
            self.connection = connection
            roundTrips.increment()
            return try connection.pipeline(commands).map { reply in
                switch reply {
                case .status: return .first
                case .null: return .repeated
                case .error: return .refused
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

/// What became of one event id's claim.
enum ClaimOutcome: Hashable, Sendable {
    /// The id's first claim within the horizon: its event counts.
    case first
    /// Claimed before within the horizon: its event is a duplicate.
    case repeated
    /// Redis answered with an error, so nothing was claimed: its event waits for the next delivery.
    case refused
}

/// `SET {ps:<shard>}:event:<hash> 1 NX PX <horizon>`, an event id's claim: the same key from every
/// version of the node and every client that sends it, so that nodes share their claims while a
/// deployment rolls.
struct ClaimCommand: Sendable {
    /// `{ps:<shard>}:event:` per shard, and the horizon in milliseconds, as the bytes sent.
    private let keyPrefixes: [[UInt8]]
    private let horizon: [UInt8]
    private static let set = Array("SET".utf8), one = Array("1".utf8), notExisting = Array("NX".utf8), expiresIn = Array("PX".utf8)

    init(shardCount: Int, horizon: Duration) {
        keyPrefixes = (0..<shardCount).map { Array("{ps:\($0)}:event:".utf8) }
        let components = horizon.components
        self.horizon = Array(String(components.seconds * 1_000 + components.attoseconds / 1_000_000_000_000_000).utf8)
    }

    func arguments(_ fingerprint: EventFingerprint) -> [[UInt8]] {
        var key = keyPrefixes[Int(fingerprint.low % UInt64(keyPrefixes.count))]
        fingerprint.appendHex(to: &key)
        return [Self.set, key, Self.one, Self.notExisting, Self.expiresIn, horizon]
    }
}
