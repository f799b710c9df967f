import Logging
import NIOCore
import NIOPosix
import Prometheus
import PullSketchEvents
import PullSketchRESP
import PullSketchRedis
import ServiceLifecycle
import Synchronization

/// Event-id claims sent by the event loop that read their requests, on a connection to Redis of
/// that loop's own: no thread is woken to send a claim and none to hand its answer back. Through
/// `EventClaims`' thread, those wake-ups cost the node more CPU than the claims did, and each
/// request waited for them. For a single Redis; a Redis Cluster's claims, and those of requests the
/// router answers, go through `EventClaims`. Both send the same `ClaimCommand`.
///
/// A lane per event loop, made when a connection of that loop first needs one, closed when the
/// server stops (a service of the application).
final class ClaimLanes: Service, Sendable {
    private let redis: RedisEndpoint
    private let command: ClaimCommand
    private let lostClaims: LostClaims
    private let metrics: NodeMetrics
    private let logger: Logger
    private let lanes = Mutex<(open: [ObjectIdentifier: NIOLoopBound<ClaimLane>], closed: Bool)>(([:], false))

    init(redis: RedisEndpoint, command: ClaimCommand, lostClaims: LostClaims, metrics: NodeMetrics, logger: Logger) {
        self.redis = redis
        self.command = command
        self.lostClaims = lostClaims
        self.metrics = metrics
        self.logger = logger
    }

    /// The lane of `eventLoop`, the loop this is called on; nil once the server stopped.
    func lane(on eventLoop: any EventLoop) -> ClaimLane? {
        lanes.withLock { lanes in
            guard !lanes.closed else { return nil }
            if let lane = lanes.open[ObjectIdentifier(eventLoop)] { return lane.value }
            let lane = ClaimLane(redis: redis, command: command, lostClaims: lostClaims, eventLoop: eventLoop, metrics: metrics, logger: logger)
            lanes.open[ObjectIdentifier(eventLoop)] = NIOLoopBound(lane, eventLoop: eventLoop)
            return lane
        }
    }

    /// Waits for the server's shutdown, then closes every lane once its claims are answered.
    func run() async throws {
        try? await gracefulShutdown()
        let open = lanes.withLock { lanes in
            lanes.closed = true
            return lanes.open.values
        }
        for lane in open {
            lane.eventLoop.execute { lane.value.close() }
        }
    }
}

/// One event loop's claims: written as they come, flushed once per turn of the loop, pipelined
/// behind those still out. Redis runs a connection's commands in order, so each reply answers the
/// oldest claim waiting, and an id claimed twice is first once; an error reply refuses its id
/// alone. When Redis does not answer within the endpoint's timeout or cannot be reached, every
/// claim waiting is answered lost (or not sent, when it never left: the node answers 503, the
/// registry delivers again) and claims are skipped for `EventClaims.pauseAfterFailure`, and while
/// `LostClaims` holds requests, then the lane connects again. Only touched on its loop.
final class ClaimLane {
    private let redis: RedisEndpoint
    private let command: ClaimCommand
    private let lostClaims: LostClaims
    private let eventLoop: any EventLoop
    private let metrics: NodeMetrics
    private let logger: Logger
    private var state = State.idle
    /// The server stopped: no new claims, and the connection closes once none is out.
    private var closing = false
    /// Claims and handshake replies awaited, in the order Redis answers them.
    private var waiting = CircularBuffer<Waiter>()
    private var flushIsDue = false
    private var timeoutCheck: Scheduled<Void>?
    /// The reply line read so far, without its `\r` (its first 128 bytes: replies to `SET NX`,
    /// `AUTH` and `SELECT` are one short line each).
    private var line: [UInt8] = []

    private enum State {
        case idle
        /// Connecting; what to write once connected.
        case connecting(unsent: ByteBuffer)
        case open(any Channel)
        case paused(until: NIODeadline)
    }

    private struct Waiter {
        var replies: Int
        var outcomes: [ClaimOutcome] = []
        let since: NIODeadline
        /// What the claims write; nil for the handshake.
        let token: ClaimToken?
        /// Nil for the connection's handshake (`AUTH`, `SELECT`), whose replies must each be OK.
        let answer: ((ClaimReply) -> Void)?
    }

    fileprivate init(redis: RedisEndpoint, command: ClaimCommand, lostClaims: LostClaims, eventLoop: any EventLoop, metrics: NodeMetrics, logger: Logger) {
        self.redis = redis
        self.command = command
        self.lostClaims = lostClaims
        self.eventLoop = eventLoop
        self.metrics = metrics
        self.logger = logger
    }

    /// Claims `fingerprints` and calls `answer`, on this loop, with what Redis made of them.
    func claim(_ fingerprints: [EventFingerprint], then answer: @escaping (ClaimReply) -> Void) {
        eventLoop.preconditionInEventLoop()
        guard !fingerprints.isEmpty else { return answer(.answered([])) }
        guard !closing, !lostClaims.areWaiting else { return answer(.notSent) }
        if case .paused(let until) = state {
            guard .now() >= until else { return answer(.notSent) }
            state = .idle
        }
        let token = ClaimToken.next()
        var request: [UInt8] = []
        request.reserveCapacity(fingerprints.count * 100)
        for fingerprint in fingerprints { RESPCommand.encode(command.arguments(fingerprint, token), into: &request) }
        if case .idle = state { connect() }
        waiting.append(Waiter(replies: fingerprints.count, since: .now(), token: token, answer: answer))
        metrics.eventClaimsWaiting.increment()
        write(ByteBuffer(bytes: request))
        if timeoutCheck == nil { scheduleTimeoutCheck(at: .now() + timeout) }
    }

    /// Answers later claims not sent and closes the connection once the claims out are answered: a
    /// claim Redis applied but the node did not hear of would make its redelivery a duplicate.
    func close() {
        closing = true
        closeIfIdle()
    }

    private func closeIfIdle() {
        guard closing, waiting.isEmpty else { return }
        fail(because: nil)
    }

    private var timeout: TimeAmount { .milliseconds(Int64(redis.timeout * 1_000)) }

    private func connect() {
        var handshake: [UInt8] = []
        var replies = 0
        if let authentication = redis.authentication {
            RESPCommand.encode(authentication.map { Array($0.utf8) }, into: &handshake)
            replies += 1
        }
        if redis.database != 0 {
            RESPCommand.encode([Array("SELECT".utf8), Array(String(redis.database).utf8)], into: &handshake)
            replies += 1
        }
        if replies > 0 { waiting.append(Waiter(replies: replies, since: .now(), token: nil, answer: nil)) }
        state = .connecting(unsent: ByteBuffer(bytes: handshake))
        let lane = NIOLoopBound(self, eventLoop: eventLoop)
        ClientBootstrap(group: eventLoop)
            .connectTimeout(timeout)
            .channelOption(.socketOption(.tcp_nodelay), value: 1)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(ClaimReplies(lane: lane))
                }
            }
            .connect(host: redis.host, port: redis.port)
            .assumeIsolated()
            .whenComplete { result in
                guard case .connecting(let unsent) = self.state else {
                    // Closed or failed meanwhile.
                    if case .success(let channel) = result { channel.close(promise: nil) }
                    return
                }
                switch result {
                case .success(let channel):
                    self.state = .open(channel)
                    self.write(unsent)
                case .failure(let error):
                    self.fail(because: "\(error)")
                }
            }
    }

    private func write(_ buffer: ByteBuffer) {
        switch state {
        case .connecting(var unsent):
            state = .idle  // so that the buffer's storage is not shared while it grows
            unsent.writeImmutableBuffer(buffer)
            state = .connecting(unsent: unsent)
        case .open(let channel):
            guard buffer.readableBytes > 0 else { return }
            channel.write(buffer, promise: nil)
            guard !flushIsDue else { return }
            flushIsDue = true
            // Once this turn of the loop has read what was ready: its requests' claims go together.
            eventLoop.assumeIsolated().execute {
                self.flushIsDue = false
                guard case .open(let channel) = self.state else { return }
                self.metrics.eventClaimRoundTrips.increment()
                channel.flush()
            }
        case .idle, .paused:
            break
        }
    }

    /// Bytes from Redis on `channel`: every complete reply line answers the oldest waiter.
    fileprivate func read(_ buffer: ByteBuffer, from channel: any Channel) {
        guard case .open(let current) = state, current === channel else { return }
        for byte in buffer.readableBytesView {
            guard byte == UInt8(ascii: "\n") else {
                if line.count < 128, byte != UInt8(ascii: "\r") { line.append(byte) }
                continue
            }
            let reply = line
            line.removeAll(keepingCapacity: true)
            guard take(reply) else { return }
        }
    }

    /// One reply line for the oldest waiter; false when it failed the lane.
    private func take(_ reply: [UInt8]) -> Bool {
        guard var waiter = waiting.first else {
            fail(because: "a reply no claim waited for: \(String(decoding: reply, as: UTF8.self))")
            return false
        }
        let outcome: ClaimOutcome? = switch reply.first {
        case UInt8(ascii: "+"): .first
        case UInt8(ascii: "$") where reply.elementsEqual("$-1".utf8), UInt8(ascii: "_"): .repeated
        case UInt8(ascii: "-"): .refused
        default: nil
        }
        guard let outcome, outcome == .first || waiter.answer != nil else {
            fail(because: "Redis answered \(String(decoding: reply, as: UTF8.self))")
            return false
        }
        waiter.outcomes.append(outcome)
        waiter.replies -= 1
        guard waiter.replies == 0 else {
            waiting[waiting.startIndex] = waiter
            return true
        }
        waiting.removeFirst()
        if let answer = waiter.answer {
            metrics.eventClaimsWaiting.decrement()
            answer(.answered(waiter.outcomes))
        }
        closeIfIdle()
        return true
    }

    /// The connection closed or failed: what waits is answered lost (not sent, when the connection
    /// never opened), and claims pause. `reason` nil: closed on purpose, nothing to log or pause.
    fileprivate func fail(because reason: String?, channel: (any Channel)? = nil) {
        if let channel {
            guard case .open(let current) = state, current === channel else { return }
        }
        let open: (any Channel)? = if case .open(let channel) = state { channel } else { nil }
        state = reason == nil ? .idle : .paused(until: .now() + TimeAmount(EventClaims.pauseAfterFailure))
        open?.close(promise: nil)  // after the state changed: its end arrives from inside the close
        timeoutCheck?.cancel()
        timeoutCheck = nil
        line.removeAll()
        let failed = waiting
        waiting.removeAll()
        if let reason {
            logger.warning("event ids cannot be claimed in redis: deferring events for a while", metadata: ["error": "\(reason)"])
        }
        for waiter in failed {
            guard let answer = waiter.answer, let token = waiter.token else { continue }
            metrics.eventClaimsWaiting.decrement()
            answer(open == nil ? .notSent : .lost(token))
        }
    }

    /// Fails the lane when its oldest waiter has waited longer than the timeout; else checks again
    /// when it will have.
    private func scheduleTimeoutCheck(at deadline: NIODeadline) {
        timeoutCheck = eventLoop.assumeIsolated().scheduleTask(deadline: deadline) {
            self.timeoutCheck = nil
            guard let oldest = self.waiting.first else { return }
            if oldest.since + self.timeout <= .now() {
                self.fail(because: "no reply within \(self.redis.timeout) s")
            } else {
                self.scheduleTimeoutCheck(at: oldest.since + self.timeout)
            }
        }
    }
}

/// Passes a claim connection's bytes and its end to its lane.
private final class ClaimReplies: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer

    private let lane: NIOLoopBound<ClaimLane>

    init(lane: NIOLoopBound<ClaimLane>) {
        self.lane = lane
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        lane.value.read(unwrapInboundIn(data), from: context.channel)
    }

    func channelInactive(context: ChannelHandlerContext) {
        lane.value.fail(because: "the connection closed", channel: context.channel)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        lane.value.fail(because: "\(error)", channel: context.channel)
    }
}
