import NIOCore
import NIOHTTP1

/// When the node ends an HTTP/1 connection, for the requests the router answers and those
/// `EventLoopIngestion` answers alike (in place of Hummingbird's connection-state handler, which
/// stands behind the conversion to HTTP types and so would not see the latter):
///
/// - after `idleTimeout` in which no part of a request arrived and no answer was owed: a client
///   that trickles a head in byte by byte sends no part, and is not held;
/// - when the server shuts down: at once when no answer is owed, else once the last owed answer
///   is written.
final class ConnectionLifetime: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias InboundOut = HTTPServerRequestPart
    typealias OutboundIn = HTTPServerResponsePart
    typealias OutboundOut = HTTPServerResponsePart

    private let idleTimeout: TimeAmount
    /// Requests whose head arrived and whose answer has not been written to its end.
    private var owed = 0
    /// Whether a request's head arrived and its end has not.
    private var reading = false
    /// When the last part arrived or the last owed answer was written, by the event loop's clock.
    private var lastActive = NIODeadline.uptimeNanoseconds(0)
    private var idleCheck: Scheduled<Void>?
    private var closesWhenAnswered = false

    init(idleTimeout: TimeAmount) {
        self.idleTimeout = idleTimeout
    }

    func handlerAdded(context: ChannelHandlerContext) {
        if context.channel.isActive { becameActive(context: context) }
    }

    func channelActive(context: ChannelHandlerContext) {
        becameActive(context: context)
        context.fireChannelActive()
    }

    private func becameActive(context: ChannelHandlerContext) {
        lastActive = context.eventLoop.now
        checkIdle(context: context, at: lastActive + idleTimeout)
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        idleCheck?.cancel()
        idleCheck = nil
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        lastActive = context.eventLoop.now
        switch unwrapInboundIn(data) {
        case .head:
            owed += 1
            reading = true
        case .body:
            break
        case .end:
            reading = false
        }
        context.fireChannelRead(data)
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        guard case .end = unwrapOutboundIn(data) else { return context.write(data, promise: promise) }
        owed -= 1
        guard owed == 0 else { return context.write(data, promise: promise) }
        guard !closesWhenAnswered else {
            context.writeAndFlush(data, promise: promise)
            return context.close(promise: nil)
        }
        lastActive = context.eventLoop.now
        context.write(data, promise: promise)
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        guard event is ChannelShouldQuiesceEvent else { return context.fireUserInboundEventTriggered(event) }
        if owed == 0 {
            context.close(promise: nil)
        } else {
            closesWhenAnswered = true
        }
    }

    /// Closes the connection at `deadline` if it has been idle for `idleTimeout` by then, else
    /// looks again when it would have been. While a request read whole waits for its answer, the
    /// connection is not idle.
    private func checkIdle(context: ChannelHandlerContext, at deadline: NIODeadline) {
        guard idleCheck == nil else { return }
        idleCheck = context.eventLoop.assumeIsolated().scheduleTask(deadline: deadline) {
            self.idleCheck = nil
            if !self.reading, self.owed > 0 {
                self.checkIdle(context: context, at: context.eventLoop.now + self.idleTimeout)
            } else if context.eventLoop.now >= self.lastActive + self.idleTimeout {
                context.close(promise: nil)
            } else {
                self.checkIdle(context: context, at: self.lastActive + self.idleTimeout)
            }
        }
    }
}
