import NIOCore
import NIOHTTP1
import NIOPosix

/// HTTP/1 on NIO's event loops with nothing above them, as the limit of what this machine can
/// serve: the same answer as `BareWebhookServer` (200 and a summary-sized JSON body to every
/// request, after reading its body), written by a channel handler on the connection's event loop,
/// with no task and no hop to another thread. `BareWebhookServer` is this plus Hummingbird.
/// Given the port of a Redis, each request first claims a new key there (`SET … NX PX`, as a node
/// claims an event id) and is answered when Redis has: the limit with a claim per event.
/// Usage: EventLoopWebhookServer PORT [REDIS_PORT]
@main
struct EventLoopWebhookServer {
    static func main() throws {
        let arguments = CommandLine.arguments
        guard (2...3).contains(arguments.count), let port = Int(arguments[1]) else {
            print("usage: EventLoopWebhookServer PORT [REDIS_PORT]")
            return
        }
        let group = MultiThreadedEventLoopGroup.singleton
        var lanes: [ObjectIdentifier: NIOLoopBound<ClaimLane>] = [:]
        if arguments.count == 3, let redisPort = Int(arguments[2]) {
            for (index, eventLoop) in group.makeIterator().enumerated() {
                let lane = try eventLoop.submit { NIOLoopBound(ClaimLane(index: index), eventLoop: eventLoop) }.wait()
                _ = try ClientBootstrap(group: eventLoop)
                    .channelInitializer { channel in
                        channel.eventLoop.makeCompletedFuture { try channel.pipeline.syncOperations.addHandler(lane.value) }
                    }
                    .connect(host: "127.0.0.1", port: redisPort)
                    .wait()
                lanes[ObjectIdentifier(eventLoop)] = lane
            }
        }
        let server = try ServerBootstrap(group: group)
            .serverChannelOption(.backlog, value: 256)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { [lanes] channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.configureHTTPServerPipeline()
                    try channel.pipeline.syncOperations.addHandler(SummaryAnswer(claims: lanes[ObjectIdentifier(channel.eventLoop)]?.value))
                }
            }
            .bind(host: "127.0.0.1", port: port)
            .wait()
        try server.closeFuture.wait()
    }
}

/// Reads a request to its end, then answers it.
final class SummaryAnswer: ChannelInboundHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    private static let body = ByteBuffer(string: #"{"accepted":1,"duplicates":0,"ignored":0,"dropped":0}"#)
    private static let head = HTTPResponseHead(
        version: .http1_1, status: .ok,
        headers: ["Content-Type": "application/json", "Content-Length": String(body.readableBytes)]
    )
    private var received = 0
    private let claims: ClaimLane?

    init(claims: ClaimLane?) {
        self.claims = claims
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head:
            received = 0
        case .body(let part):
            received += part.readableBytes
        case .end:
            guard let claims else { return answer(context: context) }
            claims.claim { self.answer(context: context) }
        }
    }

    private func answer(context: ChannelHandlerContext) {
        context.write(wrapOutboundOut(.head(Self.head)), promise: nil)
        context.write(wrapOutboundOut(.body(.byteBuffer(Self.body))), promise: nil)
        context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
    }
}

/// An event loop's connection to Redis: a `SET NX` of a new key (as long as an event-id key) per
/// claim, written at once and flushed once per turn of the loop, so that the claims read in one
/// turn share a round trip; each reply (`+OK` or a null) is one line, and answers the oldest claim.
final class ClaimLane: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer

    private let keyPrefix: String
    private var claimed = 0
    private var channel: (any Channel)?
    private var waiting = CircularBuffer<() -> Void>()
    private var flushIsDue = false

    init(index: Int) {
        keyPrefix = "{ps:\(index)}:event:"
    }

    func handlerAdded(context: ChannelHandlerContext) {
        channel = context.channel
    }

    func claim(then answer: @escaping () -> Void) {
        guard let channel else { preconditionFailure("a claim before the connection to Redis") }
        claimed += 1
        let hex = String(claimed, radix: 16)
        let key = keyPrefix + String(repeating: "0", count: 32 - hex.count) + hex  // an event id's 32 hex digits
        channel.write(ByteBuffer(string: "*6\r\n$3\r\nSET\r\n$\(key.utf8.count)\r\n\(key)\r\n$1\r\n1\r\n$2\r\nNX\r\n$2\r\nPX\r\n$5\r\n60000\r\n"), promise: nil)
        waiting.append(answer)
        guard !flushIsDue else { return }
        flushIsDue = true
        channel.eventLoop.assumeIsolated().execute {
            self.flushIsDue = false
            channel.flush()
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        fatalError("Redis closed the connection")
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let replies = unwrapInboundIn(data).readableBytesView.reduce(0) { $1 == UInt8(ascii: "\n") ? $0 + 1 : $0 }
        for _ in 0..<replies { waiting.removeFirst()() }
    }
}
