import NIOCore
import NIOEmbedded
import NIOHTTP1
@testable import PullSketchNode
import Testing

/// When the node ends a connection (`ConnectionLifetime`), on NIO's embedded channel, whose event
/// loop's clock moves only when told: the live node's idle and shutdown behaviour over sockets is
/// in `HardeningTests`, `EventLoopIngestionTests` and `NodeShutdownTests`.
@Suite struct ConnectionLifetimeTests {
    static let idleTimeout = TimeAmount.seconds(10)

    func connection() throws -> EmbeddedChannel {
        let channel = EmbeddedChannel()
        try channel.pipeline.syncOperations.addHandler(ConnectionLifetime(idleTimeout: Self.idleTimeout))
        try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 1)).wait()
        return channel
    }

    func request(_ channel: EmbeddedChannel, ending: Bool = true) throws {
        try channel.writeInbound(HTTPServerRequestPart.head(HTTPRequestHead(version: .http1_1, method: .POST, uri: "/notifications")))
        if ending { try channel.writeInbound(HTTPServerRequestPart.end(nil)) }
    }

    func answer(_ channel: EmbeddedChannel) throws {
        try channel.writeOutbound(HTTPServerResponsePart.head(HTTPResponseHead(version: .http1_1, status: .ok)))
        try channel.writeOutbound(HTTPServerResponsePart.end(nil))
    }

    @Test func aShutdownClosesAConnectionOnceItOwesNoAnswer() throws {
        let idle = try connection()
        idle.pipeline.fireUserInboundEventTriggered(ChannelShouldQuiesceEvent())
        #expect(!idle.isActive, "nothing owed: closed at once")

        let busy = try connection()
        try request(busy)
        try request(busy)
        busy.pipeline.fireUserInboundEventTriggered(ChannelShouldQuiesceEvent())
        try answer(busy)
        #expect(busy.isActive, "one answer still owed")
        try answer(busy)
        #expect(!busy.isActive, "closed with its last answer")
    }

    @Test func aConnectionIsClosedOnceNothingHappenedOnItForTheIdleTimeout() throws {
        let channel = try connection()
        let loop = try #require(channel.eventLoop as? EmbeddedEventLoop)
        loop.advanceTime(by: .seconds(9))
        try request(channel, ending: false)
        loop.advanceTime(by: .seconds(9))
        #expect(channel.isActive, "a part arrived 9 s ago")
        try channel.writeInbound(HTTPServerRequestPart.end(nil))
        loop.advanceTime(by: .seconds(60))
        #expect(channel.isActive, "an answer is owed")
        try answer(channel)
        loop.advanceTime(by: .seconds(9))
        #expect(channel.isActive, "answered 9 s ago")
        loop.advanceTime(by: .seconds(2))
        #expect(!channel.isActive, "idle for 11 s")
    }

    @Test func aHeadThatNeverEndsDoesNotHoldTheConnection() throws {
        let channel = try connection()
        let loop = try #require(channel.eventLoop as? EmbeddedEventLoop)
        try request(channel, ending: false)
        loop.advanceTime(by: .seconds(11))
        #expect(!channel.isActive, "a body that stopped coming is idle too")
    }
}
