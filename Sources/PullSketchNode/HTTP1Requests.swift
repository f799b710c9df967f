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
final class HTTP1Requests: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias InboundOut = HTTPServerRequestPart
    typealias OutboundIn = HTTPServerResponsePart
    typealias OutboundOut = HTTPServerResponsePart

    /// Requests read whose answers have not been written to their end.
    private var unanswered = 0
    /// Whether the newest request waits for its `100` until those before it are answered (only
    /// the newest can: a client that waits sends nothing behind its request).
    private var continueOwed = false

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard case .head(var head) = unwrapInboundIn(data) else { return context.fireChannelRead(data) }
        unanswered += 1
        let isHTTP10 = head.version.major == 1 && head.version.minor == 0
        // Most requests have neither field: looked up once each, read only when there.
        let connection = head.headers.contains(name: "connection") ? head.headers[canonicalForm: "connection"].map { $0.lowercased() } : []
        if connection.contains("close") || (isHTTP10 && !connection.contains("keep-alive")) {
            head.headers.replaceOrAdd(name: "connection", value: "close")
        }
        if !isHTTP10, head.headers.contains(name: "expect"), head.headers[canonicalForm: "expect"].contains(where: { $0.lowercased() == "100-continue" }) {
            if unanswered == 1 { sendContinue(context: context) } else { continueOwed = true }
        }
        context.fireChannelRead(wrapInboundOut(.head(head)))
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        context.write(data, promise: promise)
        guard case .end = unwrapOutboundIn(data) else { return }
        unanswered -= 1
        if continueOwed, unanswered == 1 {
            continueOwed = false
            sendContinue(context: context)
        }
    }

    private func sendContinue(context: ChannelHandlerContext) {
        context.writeAndFlush(wrapOutboundOut(.head(HTTPResponseHead(version: .http1_1, status: .continue))), promise: nil)
    }
}
