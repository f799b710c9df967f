import NIOCore
import NIOHTTP1

/// What an HTTP/1 request asks of its connection, honoured in front of the conversion to HTTP
/// types, which drops the request's version; neither Hummingbird nor NIO does it. For every route:
///
/// - `Expect: 100-continue` is answered `100 Continue`: a client that asks waits for it before
///   sending its body (curl gives up after a second and sends anyway; others wait longer). The
///   body is always asked for, even of a request that will be refused — the node answers a
///   request once it has read it whole, a refused body read and dropped — so a client never waits
///   for a `100` that does not come. While an earlier request on the connection is unanswered,
///   the `100` waits until that one's answer is written: answers keep the requests' order. An
///   HTTP/1.0 request's expectation is ignored (RFC 9110, 10.1.1).
/// - A request that closes its connection says so as the router and `EventLoopIngestion` read it,
///   `Connection: close`: an HTTP/1.0 request without `keep-alive` (HTTP/1.0 connections close
///   after each answer unless asked not to), and one whose `Connection` lists `close` in any case
///   or among other options.
/// - An HTTP/1.0 request is answered in HTTP/1.0, whose client reads neither chunks nor a
///   connection kept open unless told: an answer of unknown length (the streamed CSV export) is
///   sent as it comes and ends its connection; one of known length to a request that keeps its
///   connection says `Connection: keep-alive`.
/// - A request the decoder cannot read is answered with a JSON error and its connection closed,
///   since nothing behind it can be read: `431` when its head is larger than the decoder takes,
///   else `400`. Behind an unanswered request the error goes on to Hummingbird, which answers an
///   empty `400` after that request's answer.
final class HTTP1Requests: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias InboundOut = HTTPServerRequestPart
    typealias OutboundIn = HTTPServerResponsePart
    typealias OutboundOut = HTTPServerResponsePart

    /// What a request's answer must do for its client's HTTP version.
    private enum Answering {
        case http11
        case http10KeepingConnection
        case http10
    }

    /// The requests read whose answers have not been written to their end, oldest first.
    private var unanswered = CircularBuffer<Answering>()
    /// Whether the answer being written ends the connection (an HTTP/1.0 answer of unknown length).
    private var closesAfterAnswer = false
    /// Whether the newest request waits for its `100` until those before it are answered (only
    /// the newest can: a client that waits sends nothing behind its request).
    private var continueOwed = false

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard case .head(var head) = unwrapInboundIn(data) else { return context.fireChannelRead(data) }
        let isHTTP10 = head.version.major == 1 && head.version.minor == 0
        // Most requests have neither field: looked up once each, read only when there.
        let connection = head.headers.contains(name: "connection") ? head.headers[canonicalForm: "connection"].map { $0.lowercased() } : []
        let closes = connection.contains("close") || (isHTTP10 && !connection.contains("keep-alive"))
        if closes {
            head.headers.replaceOrAdd(name: "connection", value: "close")
        }
        unanswered.append(isHTTP10 ? (closes ? .http10 : .http10KeepingConnection) : .http11)
        if !isHTTP10, head.headers.contains(name: "expect"), head.headers[canonicalForm: "expect"].contains(where: { $0.lowercased() == "100-continue" }) {
            if unanswered.count == 1 { sendContinue(context: context) } else { continueOwed = true }
        }
        context.fireChannelRead(wrapInboundOut(.head(head)))
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        switch unwrapOutboundIn(data) {
        case .head(var head) where unanswered.first.map({ $0 != .http11 }) == true:
            head.version = .http1_0
            if unanswered.first == .http10KeepingConnection {
                closesAfterAnswer = !head.headers.contains(name: "content-length")
                head.headers.replaceOrAdd(name: "connection", value: closesAfterAnswer ? "close" : "keep-alive")
            }
            context.write(wrapOutboundOut(.head(head)), promise: promise)
        case .head, .body:
            context.write(data, promise: promise)
        case .end:
            context.write(data, promise: promise)
            _ = unanswered.popFirst()
            if closesAfterAnswer {
                closesAfterAnswer = false
                context.flush()
                context.close(promise: nil)
            } else if continueOwed, unanswered.count == 1 {
                continueOwed = false
                sendContinue(context: context)
            }
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        guard let parserError = error as? HTTPParserError, unanswered.isEmpty else { return context.fireErrorCaught(error) }
        let (status, message) = parserError == .headerOverflow
            ? (HTTPResponseStatus.requestHeaderFieldsTooLarge, "the request's head is too large")
            : (.badRequest, "malformed HTTP request")
        let body = ByteBuffer(string: #"{"error":"\#(message)"}"#)
        var headers = HTTPHeaders.securityHeaders
        headers.add(contentsOf: [("Content-Type", "application/json"), ("Content-Length", String(body.readableBytes)), ("Connection", "close")])
        context.write(wrapOutboundOut(.head(HTTPResponseHead(version: .http1_1, status: status, headers: headers))), promise: nil)
        context.write(wrapOutboundOut(.body(.byteBuffer(body))), promise: nil)
        context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
        context.close(promise: nil)
    }

    private func sendContinue(context: ChannelHandlerContext) {
        context.writeAndFlush(wrapOutboundOut(.head(HTTPResponseHead(version: .http1_1, status: .continue))), promise: nil)
    }
}
