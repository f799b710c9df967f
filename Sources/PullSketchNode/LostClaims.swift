import Logging
import Prometheus
import PullSketchBlocking
import PullSketchEvents
import PullSketchRedis
import ServiceLifecycle
import Synchronization

/// Requests whose event-id claims were sent but whose answer never came: Redis stalled past the
/// timeout (a long script, a fork, a stalled host) or the connection broke. Redis may still have
/// run those claims, and then the registry's redelivery would find the ids claimed and count
/// nothing: pulls lost with no node dying. So each such request is asked again, on a connection of
/// this actor's own, until Redis answers: its claims once more with the request's own token, each
/// followed by a `GET` of its key. The key holding the request's token means its claim holds the id,
/// whichever sending took it, and the event counts; another value means another delivery's claim
/// holds it, and that delivery counts the event. No value (Redis refusing the claim over its
/// `maxmemory`) is not an answer yet. Once every claim of a request is known, its claimed events
/// count.
///
/// While any request waits here, claims are not sent (their requests are answered 503), so what
/// this holds stays within what was out when Redis stopped answering. A node that stops gives them
/// a grace period after its server stopped (`run`); one that dies loses them. Like `EventClaims`,
/// an actor on its own `BlockingExecutor`, since hiredis blocks.
actor LostClaims: Service {
    private let redis: RedisEndpoint
    private let command: ClaimCommand
    private nonisolated let waitingRequests: Gauge
    private let logger: Logger
    private nonisolated let executor = BlockingExecutor(label: "pullsketch.lost-claims")
    nonisolated var unownedExecutor: UnownedSerialExecutor { executor.asUnownedSerialExecutor() }
    private var connection: (any RedisCommands)?
    private var requests: [Request] = []
    private var asking = false
    /// Whether the last round failed to reach Redis: its warning is logged once until one does.
    private var unreachable = false
    private nonisolated let waiting = Atomic<Int>(0)
    /// How long after a round that left requests unanswered the next starts.
    static let retryInterval: Duration = .seconds(1)
    /// How long a stopping node waits for the requests still here to be answered.
    static let shutdownGracePeriod: Duration = .seconds(5)

    private struct Request {
        let fingerprints: [EventFingerprint]
        let token: ClaimToken
        let apply: @Sendable ([ClaimOutcome]) -> Void
    }

    init(redis: RedisEndpoint, command: ClaimCommand, waitingRequests: Gauge, logger: Logger) {
        self.redis = redis
        self.command = command
        self.waitingRequests = waitingRequests
        self.logger = logger
    }

    /// Whether requests wait to be asked again: claims are not sent meanwhile.
    nonisolated var areWaiting: Bool { waiting.load(ordering: .relaxed) > 0 }

    /// Asks Redis again, until it answers, about the claims of `fingerprints` sent with `token`;
    /// then calls `apply`, on this actor's executor, with what became of each: first or repeated.
    nonisolated func askAgain(_ fingerprints: [EventFingerprint], token: ClaimToken, then apply: @escaping @Sendable ([ClaimOutcome]) -> Void) {
        waiting.add(1, ordering: .relaxed)
        waitingRequests.increment()
        let request = Request(fingerprints: fingerprints, token: token, apply: apply)
        Task.immediate { await self.add(request) }
    }

    /// Waits for the server's graceful shutdown (it stops before this: a service of its
    /// application, after `ClaimLanes`), then for the requests still here to be answered, for at
    /// most `shutdownGracePeriod`: what Redis claimed for them then counts in the node's last merge.
    nonisolated func run() async throws {
        try? await gracefulShutdown()
        let deadline = ContinuousClock.now + Self.shutdownGracePeriod
        while areWaiting, !Task.isCancelled, ContinuousClock.now < deadline {
            try? await Task.sleep(for: .milliseconds(50))
        }
        let left = waiting.load(ordering: .relaxed)
        if left > 0 {
            logger.error("requests whose claims' answer was lost were not answered before the node stopped", metadata: ["requests": "\(left)"])
        }
    }

    /// Adds `request`, and asks rounds until none waits, unless a round is already being asked.
    private func add(_ request: Request) async {
        requests.append(request)
        guard !asking else { return }
        asking = true
        defer { asking = false }
        while true {
            askEveryRequest()
            guard !requests.isEmpty else { return }
            try? await Task.sleep(for: Self.retryInterval)
        }
    }

    /// One round: each waiting request asked once, until the connection fails.
    private func askEveryRequest() {
        let asked = requests
        requests = []
        var counted = 0, elsewhere = 0
        defer {
            if counted + elsewhere > 0 {
                logger.info(
                    "redis answered again about event ids whose claims' answer was lost",
                    metadata: ["counted": "\(counted)", "claimed by another delivery": "\(elsewhere)"]
                )
            }
        }
        for (index, request) in asked.enumerated() {
            do {
                guard let outcomes = try ask(request) else {
                    requests.append(request)
                    continue
                }
                request.apply(outcomes)
                counted += outcomes.count { $0 == .first }
                elsewhere += outcomes.count { $0 == .repeated }
                waiting.subtract(1, ordering: .relaxed)
                waitingRequests.decrement()
            } catch {
                connection = nil
                requests += asked[index...]
                if !unreachable {
                    logger.warning(
                        "cannot ask redis yet about event ids whose claims' answer was lost; their requests wait",
                        metadata: ["error": "\(error)", "requests": "\(requests.count)"]
                    )
                }
                unreachable = true
                return
            }
            unreachable = false
        }
    }

    /// What became of each claim of `request`; nil while one has no value yet.
    private func ask(_ request: Request) throws -> [ClaimOutcome]? {
        let connection = try self.connection ?? connectRedis(redis)
        self.connection = connection
        let replies = try connection.pipeline(request.fingerprints.flatMap { command.askAgain($0, request.token) })
        var outcomes: [ClaimOutcome] = []
        for claim in stride(from: 0, to: replies.count, by: 2) {
            switch (replies[claim], replies[claim + 1]) {
            case (.status, _): outcomes.append(.first)
            case (_, .bulk(let value)): outcomes.append(value == request.token.bytes ? .first : .repeated)
            default: return nil
            }
        }
        return outcomes
    }
}
