import NIOCore
import NIOHTTP1
import NIOPosix

/// HTTP/1 on NIO's event loops with nothing above them, as the limit of what this machine can
/// serve: the same answer as `BareWebhookServer` (200 and a summary-sized JSON body to every
/// request, after reading its body), written by a channel handler on the connection's event loop,
/// with no task and no hop to another thread. `BareWebhookServer` is this plus Hummingbird.
/// Usage: EventLoopWebhookServer PORT
@main
struct EventLoopWebhookServer {
    static func main() throws {
        guard CommandLine.arguments.count == 2, let port = Int(CommandLine.arguments[1]) else {
            print("usage: EventLoopWebhookServer PORT")
            return
        }
        let server = try ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .serverChannelOption(.backlog, value: 256)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.configureHTTPServerPipeline()
                    try channel.pipeline.syncOperations.addHandler(SummaryAnswer())
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

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head:
            received = 0
        case .body(let part):
            received += part.readableBytes
        case .end:
            context.write(wrapOutboundOut(.head(Self.head)), promise: nil)
            context.write(wrapOutboundOut(.body(.byteBuffer(Self.body))), promise: nil)
            context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
        }
    }
}
