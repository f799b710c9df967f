import Foundation
import HTTPTypes
import HummingbirdCore
import Logging
import NIOCore
import NIOHTTP1
import NIOHTTPTypesHTTP1

/// `POST /notifications` and `POST /api/v1/pulls` answered on the connection's event loop, in
/// front of Hummingbird: its request task, its middlewares, the hops between the event loop and
/// the task pool and even the conversion of each request and answer to HTTP types cost more CPU
/// than everything the node does with a notification. Every other request — and an ingestion
/// request that arrives while an earlier one on its connection is still with the router, so that
/// answers keep their order — goes on to the router, which answers ingestion the same way
/// (`PullSketchNode.receive`).
///
/// What the router's middlewares do for a request, this does too: the concurrency limit, the
/// request metrics, the security headers, and `Date` and `Server`. The event-id claim is the one
/// wait: it goes out from this event loop (`ClaimLanes`; through `EventClaims` to a Redis
/// Cluster), the request's events are applied where its answer arrives, whatever became of the
/// connection, and the answer is written on the event loop. While a request waits,
/// the connection is read until something arrives behind it, then no more until it is answered: a
/// client that sends more behind it waits for its answer first.
final class EventLoopIngestion: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias InboundOut = HTTPServerRequestPart
    typealias OutboundIn = HTTPServerResponsePart
    typealias OutboundOut = HTTPServerResponsePart

    private enum State {
        case idle
        /// Passing a request on to the router, up to its end.
        case forwarding
        case reading(Reading)
        /// Read; the answer waits for the event-id claim.
        case answering(Reading)
    }

    /// A request answered here.
    private struct Reading {
        let route: PullSketchNode.IngestionRoute
        let started: UInt64
        let closeAfterAnswer: Bool
        /// Whether the request counts toward the concurrency limit (it was under it).
        let counted: Bool
        /// The answer when the head alone decided it: the body is read and dropped.
        let refusal: PullSketchNode.IngestionAnswer?
        /// Nil once it is larger than `max_body_bytes`.
        var body: ByteBuffer? = ByteBuffer()
    }

    private let node: PullSketchNode
    /// Where this loop's claims go, for a single Redis; the lane once taken.
    private let claimLanes: ClaimLanes?
    private var claimLane: ClaimLane?
    private var state = State.idle
    /// Requests passed on to the router whose answers have not been written to their end.
    private var unanswered = 0
    /// Parts that arrived while a request here was answered, read once it is.
    private var held = CircularBuffer<HTTPServerRequestPart>()
    /// Whether the channel asked for a read while a request here was answered.
    private var readWithheld = false
    private var date = HTTPDate()
    /// The last answer's head and what it was made from (`head(_:length:close:)`).
    private var lastHead: (date: String, length: Int, close: Bool, status: HTTPResponse.Status, retryAfter: String?, head: HTTPResponseHead)?
    /// Whether the connection is gone: an answer that comes later is not written.
    private var removed = false

    init(node: PullSketchNode, claimLanes: ClaimLanes?) {
        self.node = node
        self.claimLanes = claimLanes
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let part = unwrapInboundIn(data)
        if case .answering = state {
            held.append(part)
        } else if !held.isEmpty {
            held.append(part)
        } else {
            read(part, context: context)
        }
    }

    private func read(_ part: HTTPServerRequestPart, context: ChannelHandlerContext) {
        if case .body(var chunk) = part, case .reading(var reading) = state {
            state = .idle  // so that the body's storage is not shared while it grows
            if reading.refusal == nil, var body = reading.body.take(), body.readableBytes + chunk.readableBytes <= node.configuration.maxBodyBytes {
                body.writeBuffer(&chunk)
                reading.body = body
            }
            state = .reading(reading)
            return
        }
        switch (state, part) {
        case (.idle, .head(let head)):
            guard unanswered == 0, head.method == .POST, let route = PullSketchNode.IngestionRoute(path: head.uri.prefix { $0 != "?" }) else {
                unanswered += 1
                state = .forwarding
                return context.fireChannelRead(wrapInboundOut(part))
            }
            state = .reading(start(route, head))
        case (.forwarding, .end):
            state = .idle
            context.fireChannelRead(wrapInboundOut(part))
        case (.forwarding, _):
            context.fireChannelRead(wrapInboundOut(part))
        case (.reading(let reading), .end):
            state = .answering(reading)
            answer(reading, context: context)
        default:
            // A head inside a request, or a body or end outside one, which the decoder never
            // passes: the router's reader refuses them and closes the connection.
            context.fireChannelRead(wrapInboundOut(part))
        }
    }

    /// The head of a request answered here: counted in, and refused at once when it must be.
    private func start(_ route: PullSketchNode.IngestionRoute, _ head: HTTPRequestHead) -> Reading {
        let started = DispatchTime.now().uptimeNanoseconds
        let closeAfterAnswer = head.headers.first(name: "connection") == "close"  // in these words (`HTTP1Requests`)
        guard node.requestsInFlight.enter() else {
            let refusal = PullSketchNode.IngestionAnswer.error(.serviceUnavailable, node.requestsInFlight.refusal, retryAfter: "1")
            return Reading(route: route, started: started, closeAfterAnswer: closeAfterAnswer, counted: false, refusal: refusal)
        }
        node.requestSeries.inFlight(.post).increment()
        let refusal = node.refusal(route, authorization: onlyValue(of: "authorization", in: head.headers), contentType: onlyValue(of: "content-type", in: head.headers))
        return Reading(route: route, started: started, closeAfterAnswer: closeAfterAnswer, counted: true, refusal: refusal)
    }

    private func answer(_ reading: Reading, context: ChannelHandlerContext) {
        if let refusal = reading.refusal { return send(refusal, for: reading, context: context) }
        switch node.admit(reading.route, body: reading.body) {
        case .answered(let answer):
            send(answer, for: reading, context: context)
        case .admitted(let events):
            if let lane = claimLane ?? claimLanes?.lane(on: context.eventLoop) {
                claimLane = lane
                let node = node
                return lane.claim(events.fingerprints) { claims in
                    self.send(node.complete(events, claims: claims), for: reading, context: context)
                }
            }
            guard let claims = node.eventClaims else {
                return send(node.complete(events, claims: node.claimedHere(events.fingerprints)), for: reading, context: context)
            }
            let node = node
            let eventLoop = context.eventLoop
            let handler = NIOLoopBound((self, context), eventLoop: eventLoop)
            claims.claim(events.fingerprints) { outcomes in
                let answer = node.complete(events, claims: outcomes)
                eventLoop.execute {
                    let (ingestion, context) = handler.value
                    ingestion.send(answer, for: reading, context: context)
                }
            }
        }
    }

    private func send(_ answer: PullSketchNode.IngestionAnswer, for reading: Reading, context: ChannelHandlerContext) {
        guard !removed else { return leave(reading) }
        let body = ByteBuffer(string: answer.json)
        context.write(wrapOutboundOut(.head(head(answer, length: body.readableBytes, close: reading.closeAfterAnswer))), promise: nil)
        context.write(wrapOutboundOut(.body(.byteBuffer(body))), promise: nil)
        context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
        leave(reading)
        if reading.counted {
            let route = node.requestSeries.route(reading.route.path, .post, answer.status)
            route.requests.increment()
            route.duration.recordNanoseconds(Int64(DispatchTime.now().uptimeNanoseconds - reading.started))
        }
        state = .idle
        if reading.closeAfterAnswer {
            held.removeAll()
            return context.close(promise: nil)
        }
        if !held.isEmpty {
            while !held.isEmpty {
                if case .answering = state { break }
                read(held.removeFirst(), context: context)
            }
            // What was passed on reaches the router when a read completes.
            context.fireChannelReadComplete()
        }
        if readWithheld, held.isEmpty {
            readWithheld = false
            context.read()
        }
    }

    /// The head of an answer: the last one again while nothing in it changed (within the second
    /// of its `Date`), since building header fields costs more than the rest of the answer.
    private func head(_ answer: PullSketchNode.IngestionAnswer, length: Int, close: Bool) -> HTTPResponseHead {
        let now = date.now()
        if let last = lastHead, last.date == now, last.length == length, last.close == close, last.status == answer.status,
            last.retryAfter == answer.retryAfter
        {
            return last.head
        }
        var headers = HTTPHeaders.securityHeaders
        headers.add(name: "Content-Type", value: "application/json")
        headers.add(name: "Content-Length", value: String(length))
        if let retryAfter = answer.retryAfter { headers.add(name: "Retry-After", value: retryAfter) }
        headers.add(name: "Date", value: now)
        headers.add(name: "Server", value: PullSketchNode.serverName)
        if close { headers.add(name: "Connection", value: "close") }
        let head = HTTPResponseHead(version: .http1_1, status: HTTPResponseStatus(statusCode: answer.status.code), headers: headers)
        lastHead = (now, length, close, answer.status, answer.retryAfter, head)
        return head
    }

    /// When the connection is gone (its pipeline taken down), a request whose body never came in
    /// full gives its place back, nothing held is read, and a request waiting for its claim is
    /// still applied but not answered.
    func handlerRemoved(context: ChannelHandlerContext) {
        removed = true
        if case .reading(let reading) = state {
            leave(reading)
            state = .idle
        }
        held.removeAll()
    }

    private func leave(_ reading: Reading) {
        guard reading.counted else { return }
        node.requestsInFlight.leave()
        node.requestSeries.inFlight(.post).decrement()
    }

    /// A connection whose request waits for its claim is still read until something arrives
    /// behind that request: withholding every read would drop the socket's read interest and add
    /// it back, two `epoll_ctl` calls per request.
    func read(context: ChannelHandlerContext) {
        if case .answering = state, !held.isEmpty {
            readWithheld = true
        } else {
            context.read()
        }
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        if case .end = unwrapOutboundIn(data) { unanswered -= 1 }
        context.write(data, promise: promise)
    }
}

/// Hummingbird's HTTP/1 channel with the node's own handlers in front of the conversion to HTTP
/// types: `HTTP1Requests`, then `ConnectionLifetime` in place of Hummingbird's connection-state
/// handler (idle timeouts and graceful shutdown, for every request), then `EventLoopIngestion`.
struct IngestingHTTP1Channel: HTTPChannelHandler {
    typealias Value = HTTP1Channel.Value

    let http1: HTTP1Channel
    let idleTimeout: TimeAmount
    let node: PullSketchNode
    let claimLanes: ClaimLanes?

    var responder: Responder { http1.responder }

    func setup(channel: any Channel, logger: Logger) -> EventLoopFuture<Value> {
        http1.setup(channel: channel, logger: logger).flatMapThrowing { value in
            let operations = channel.pipeline.syncOperations
            let codec = try operations.handler(type: HTTP1ToHTTPServerCodec.self)
            try operations.addHandlers(
                [HTTP1Requests(), ConnectionLifetime(idleTimeout: idleTimeout), EventLoopIngestion(node: node, claimLanes: claimLanes)],
                position: .before(codec)
            )
            operations.removeHandler(try operations.handler(type: HTTPConnectionStateHandler.self), promise: nil)
            return value
        }
    }

    func handle(value: Value, logger: Logger) async {
        await http1.handle(value: value, logger: logger)
    }
}

/// `Date` header values (RFC 9110's IMF-fixdate, always GMT), made once a second.
struct HTTPDate {
    private var second = -1
    private var text = ""
    private static let days = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"]
    private static let months = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]

    mutating func now() -> String {
        var now = time(nil)
        guard now != second else { return text }
        var parts = tm()
        gmtime_r(&now, &parts)
        func twoDigits(_ value: Int32) -> String { value < 10 ? "0\(value)" : "\(value)" }
        text = "\(Self.days[Int(parts.tm_wday)]), \(twoDigits(parts.tm_mday)) \(Self.months[Int(parts.tm_mon)]) \(parts.tm_year + 1900) "
            + "\(twoDigits(parts.tm_hour)):\(twoDigits(parts.tm_min)):\(twoDigits(parts.tm_sec)) GMT"
        second = now
        return text
    }
}
