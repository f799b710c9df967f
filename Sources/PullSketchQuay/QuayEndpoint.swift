public import Logging
import NIOCore
import NIOPosix
public import PullSketchCore
public import PullSketchRESP
public import ServiceLifecycle

#if canImport(Glibc)
import Glibc
#endif

/// Where the endpoint listens and what its clients may do.
public struct QuayEndpointConfiguration: Hashable, Sendable {
    public var host: String
    public var port: Int
    public var session: QuaySessionConfiguration
    /// A connection that sends nothing for this long is closed. Default 5 minutes.
    public var idleTimeout: Duration
    public var limits: RESPLimits

    public init(
        host: String = "127.0.0.1",
        port: Int,
        session: QuaySessionConfiguration = QuaySessionConfiguration(),
        idleTimeout: Duration = .seconds(300),
        limits: RESPLimits = RESPLimits()
    ) {
        self.host = host
        self.port = port
        self.session = session
        self.idleTimeout = idleTimeout
        self.limits = limits
    }
}

/// A TCP listener that speaks Redis to Quay's registry processes (`PULL_METRICS_REDIS` pointed at
/// PullSketch): every connection gets a `QuaySession`, and the pulls it reports go to the intake.
/// Malformed protocol gets Redis's error and the connection is closed; nothing a client sends can
/// make a connection hold more than one command's bytes (`RESPLimits`).
public final class QuayEndpoint: Service, Sendable {
    public let configuration: QuayEndpointConfiguration
    private let intake: QuayPullIntake
    private let scripts = ScriptDirectory()
    private let metrics = QuayMetrics()
    /// The time pulls are received at, which their times are clamped to: the node's clock.
    private let now: @Sendable () -> Timestamp
    private let logger: Logger

    public init(configuration: QuayEndpointConfiguration, intake: QuayPullIntake, now: @escaping @Sendable () -> Timestamp = Timestamp.now, logger: Logger) {
        self.configuration = configuration
        self.intake = intake
        self.now = now
        self.logger = logger
    }

    /// Listens until a graceful shutdown, then closes the listeners.
    public func run() async throws {
        let configuration = configuration, intake = intake, scripts = scripts, metrics = metrics, now = now
        let idle = TimeAmount.nanoseconds(configuration.idleTimeout.components.seconds * 1_000_000_000)
        // Every event loop has its own listener on the port (SO_REUSEPORT: the kernel spreads
        // connections over them) and serves the connections it accepts: a connection handed from
        // an accepting loop to another costs a cross-thread wake-up per pull.
        var listeners: [any Channel] = []
        for loop in MultiThreadedEventLoopGroup.singleton.makeIterator() {
            listeners.append(try await ServerBootstrap(group: loop, childGroup: loop)
                .serverChannelOption(ChannelOptions.backlog, value: 1_024)
                .serverChannelOption(ChannelOptions.socketOption(.so_reuseaddr), value: 1)
                .serverChannelOption(ChannelOptions.socketOption(NIOBSDSocket.Option(rawValue: SO_REUSEPORT)), value: 1)
                .childChannelOption(ChannelOptions.socketOption(.tcp_nodelay), value: 1)
                .childChannelInitializer { channel in
                    channel.eventLoop.makeCompletedFuture {
                        try channel.pipeline.syncOperations.addHandler(IdleStateHandler(readTimeout: idle))
                        try channel.pipeline.syncOperations.addHandler(RESPConnectionHandler(
                            session: QuaySession(configuration: configuration.session, scripts: scripts),
                            parser: RESPParser(limits: configuration.limits), intake: intake, metrics: metrics, now: now
                        ))
                    }
                }
                .bind(host: configuration.host, port: configuration.port)
                .get())
        }
        logger.info("Quay pull-metrics endpoint listening", metadata: ["address": "\(configuration.host):\(configuration.port)"])
        try? await gracefulShutdown()
        for listener in listeners { try await listener.close() }
    }
}

/// One client connection: bytes in, commands through the session, replies out; the pulls a read
/// reported go to the intake when the read is complete.
private final class RESPConnectionHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private var session: QuaySession
    private let parser: RESPParser
    private let intake: QuayPullIntake
    private let metrics: QuayMetrics
    private let now: @Sendable () -> Timestamp
    private var input = ByteBuffer()
    private var output: [UInt8] = []
    private var closing = false

    init(session: QuaySession, parser: RESPParser, intake: QuayPullIntake, metrics: QuayMetrics, now: @escaping @Sendable () -> Timestamp) {
        self.session = session
        self.parser = parser
        self.intake = intake
        self.metrics = metrics
        self.now = now
    }

    func channelActive(context: ChannelHandlerContext) {
        metrics.connections.increment()
        context.fireChannelActive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var bytes = unwrapInboundIn(data)
        guard !closing else { return }
        input.writeBuffer(&bytes)
        while !closing {
            let result = input.withUnsafeReadableBytes { parser.parse($0) }
            switch result {
            case .command(let command, let consumed):
                input.moveReaderIndex(forwardBy: consumed)
                let answer = session.handle(command)
                answer.reply.encode(into: &output)
                closing = answer.close
            case .nothing(let consumed):
                input.moveReaderIndex(forwardBy: consumed)
            case .incomplete:
                input.discardReadBytes()
                return
            case .invalid(let message):
                metrics.protocolErrors.increment()
                RESPReply.error("ERR " + message).encode(into: &output)
                closing = true
            }
        }
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        intake.accept(session.takePulls(receivedAt: now()))
        for refusal in session.takeRefusals() { metrics.refused(refusal) }
        if !output.isEmpty {
            context.writeAndFlush(wrapOutboundOut(ByteBuffer(bytes: output)), promise: nil)
            output.removeAll(keepingCapacity: true)
        }
        if closing { context.close(promise: nil) }
        context.fireChannelReadComplete()
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if event is IdleStateHandler.IdleStateEvent {
            context.close(promise: nil)
        } else {
            context.fireUserInboundEventTriggered(event)
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        context.close(promise: nil)
    }
}
