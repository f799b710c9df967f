import Foundation
import Logging
import Prometheus
import PullSketchBlocking
import PullSketchEvents
import PullSketchRedis
import Synchronization

/// Event ids claimed in Redis, shared by every node, for the registry's retry horizon: a
/// redelivered notification counts once even when it reaches another node or a restarted one.
/// An id is claimed when it is received (`SET {ps:<shard>}:event:<hash> <token> NX PX <horizon>`),
/// so a node that crashes before merging loses the pulls it claimed — as it loses its unmerged
/// window — but no redelivery ever doubles them.
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
/// twice, and waiting on a Redis that is down would hold the registry's queue. Claims sent whose
/// answer was lost go to `LostClaims`, which asks Redis again what became of them. A claim Redis
/// answers with an error (over its `maxmemory`, it refuses writes) is that id's alone: the ids it
/// did claim count. Like the flusher, an actor on its own `BlockingExecutor`, since hiredis blocks.
actor EventClaims {
    private let redis: RedisEndpoint
    private let command: ClaimCommand
    private nonisolated let lostClaims: LostClaims
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
        var claims: [(fingerprints: [EventFingerprint], token: ClaimToken, answer: @Sendable (ClaimReply) -> Void)] = []
        var sending = false
    }

    init(redis: RedisEndpoint, command: ClaimCommand, lostClaims: LostClaims, roundTrips: Counter, waitingRequests: Gauge, logger: Logger) {
        self.redis = redis
        self.command = command
        self.lostClaims = lostClaims
        self.roundTrips = roundTrips
        self.waitingRequests = waitingRequests
        self.logger = logger
    }

    /// What Redis made of the claims of `fingerprints`.
    nonisolated func claim(_ fingerprints: [EventFingerprint]) async -> ClaimReply {
        await withCheckedContinuation { continuation in
            claim(fingerprints) { continuation.resume(returning: $0) }
        }
    }

    /// `claim`, calling `answer` with what it returns: at once for no fingerprints, else on the
    /// claims' executor once the round trip that carried them is back. For callers on an event
    /// loop, which must not wait.
    nonisolated func claim(_ fingerprints: [EventFingerprint], then answer: @escaping @Sendable (ClaimReply) -> Void) {
        guard !fingerprints.isEmpty else { return answer(.answered([])) }
        waitingRequests.increment()
        let startSending = waiting.withLock { waiting in
            waiting.claims.append((fingerprints, ClaimToken.next(), answer))
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
            let (outcomes, sent) = firstClaims(claims.flatMap { claim in claim.fingerprints.map { ($0, claim.token) } })
            var next = 0
            for (fingerprints, token, answer) in claims {
                if let outcomes {
                    answer(.answered(Array(outcomes[next..<next + fingerprints.count])))
                } else {
                    answer(sent ? .lost(token) : .notSent)
                }
                next += fingerprints.count
            }
            waitingRequests.decrement(by: Double(claims.count))
        }
    }

    /// One pipeline of `SET NX`: per claim what became of it; nil when Redis did not answer, and
    /// whether the pipeline was sent.
    private func firstClaims(_ claims: [(EventFingerprint, ClaimToken)]) -> (outcomes: [ClaimOutcome]?, sent: Bool) {
        if let pausedUntil, ContinuousClock.now < pausedUntil { return (nil, false) }
        if lostClaims.areWaiting { return (nil, false) }
        var sent = false
        do {
            let connection = try self.connection ?? connectRedis(redis)
            self.connection = connection
            roundTrips.increment()
            sent = true
            return (try connection.pipeline(claims.map(command.arguments)).map { reply in
                switch reply {
                case .status: return .first
                case .null: return .repeated
                case .error: return .refused
                default: throw RedisError(.unexpectedReply, "SET NX answered \(reply)")
                }
            }, true)
        } catch {
            connection = nil
            pausedUntil = .now + Self.pauseAfterFailure
            logger.warning("event ids cannot be claimed in redis: deferring events for a while", metadata: ["error": "\(error)"])
            return (nil, sent)
        }
    }
}

/// What became of a request's event-id claims.
enum ClaimReply: Hashable, Sendable {
    /// Redis answered: per fingerprint, what became of its claim.
    case answered([ClaimOutcome])
    /// Nothing was sent (claims are paused after Redis failed to answer, or the node is stopping):
    /// nothing is claimed.
    case notSent
    /// Sent, but the answer was lost (none within the timeout, or the connection failed): Redis may
    /// have claimed any of them, with `token` (`LostClaims` asks it again).
    case lost(ClaimToken)
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

/// `SET {ps:<shard>}:event:<hash> <token> NX PX <horizon>`, an event id's claim: the same key from
/// every version of the node and every client that sends it, so that nodes share their claims
/// while a deployment rolls (whatever value it holds, a key that exists is a claim).
struct ClaimCommand: Sendable {
    /// `{ps:<shard>}:event:` per shard, and the horizon in milliseconds, as the bytes sent.
    private let keyPrefixes: [[UInt8]]
    private let horizon: [UInt8]
    private static let set = Array("SET".utf8), get = Array("GET".utf8), notExisting = Array("NX".utf8), expiresIn = Array("PX".utf8)

    init(shardCount: Int, horizon: Duration) {
        keyPrefixes = (0..<shardCount).map { Array("{ps:\($0)}:event:".utf8) }
        let components = horizon.components
        self.horizon = Array(String(components.seconds * 1_000 + components.attoseconds / 1_000_000_000_000_000).utf8)
    }

    func arguments(_ fingerprint: EventFingerprint, _ token: ClaimToken) -> [[UInt8]] {
        [Self.set, key(fingerprint), token.bytes, Self.notExisting, Self.expiresIn, horizon]
    }

    /// The claim once more, then `GET` of its key: whether the claim with `token` holds the key,
    /// whichever of its two sendings took it (`LostClaims`).
    func askAgain(_ fingerprint: EventFingerprint, _ token: ClaimToken) -> [[[UInt8]]] {
        [arguments(fingerprint, token), [Self.get, key(fingerprint)]]
    }

    private func key(_ fingerprint: EventFingerprint) -> [UInt8] {
        var key = keyPrefixes[Int(fingerprint.low % UInt64(keyPrefixes.count))]
        fingerprint.appendHex(to: &key)
        return key
    }
}

/// The value a request's claims write: a number no other request's claims write, so that a node
/// whose answer was lost can tell its own claims from another delivery's (`LostClaims`). Counted
/// up from a random start, so that nodes never meet, below 2⁶³ so that Redis keeps it as a
/// number (16 bytes a key).
struct ClaimToken: Hashable, Sendable {
    let bytes: [UInt8]

    private static let counter = Atomic<UInt64>(UInt64.random(in: 0..<(1 << 62)))

    static func next() -> ClaimToken {
        let value = counter.add(1, ordering: .relaxed).newValue & (1 << 62 - 1) | 1 << 62
        return ClaimToken(bytes: Array(String(value).utf8))
    }
}
