import Foundation
import Hummingbird
import Logging
import HummingbirdTesting
import Prometheus
import PullSketchCore
import PullSketchNode
import PullSketchPostgres
import PullSketchStore
import PullSketchRedis
import PullSketchTestSupport
import Testing

/// A node on a fresh migrated database of the suite's PostgreSQL, with its own tracker, driven
/// through its server on loopback. Event ids are de-duplicated by the node's memory unless
/// `eventIDHorizon` turns on claims in the Redis at `redisPort`. Patient where production is not,
/// because the whole suite on two cores can keep a server or a test from running for half a
/// minute: reads wait up to 120 s for one of its two connections, Redis may take 30 s to reply
/// (tests of a silent Redis set less), and an idle connection is kept 10 minutes.
struct NodeFixture {
    static let secret = "webhook-secret-0123456789"
    static let teamToken = "reader-team-0123456789"
    let database: String
    let tracker: PullTracker
    let node: PullSketchNode
    let registry = PrometheusCollectorRegistry()

    init(
        readAuth: ReadAuth = .tokens([ReaderToken(token: NodeFixture.teamToken, repositories: ["team/*"])]),
        statisticsEnabled: Bool = true,
        redisPort: Int? = nil,
        redisTimeout: Double = 30,
        maxBodyBytes: Int = 1 << 20,
        eventIDHorizon: Duration = .zero,
        statementTimeout: Duration = .seconds(5),
        maxConcurrentRequests: Int = 256,
        metricsToken: String? = nil,
        forwardedProtoHeader: String? = nil,
        catalogQueueCapacity: Int = 100_000,
        idleTimeout: Duration = .seconds(600),
        signInWindow: Duration = .seconds(60),
        postgres: PostgresServer? = nil
    ) throws {
        database = try (postgres ?? PostgresServer.current!).makeDatabase()
        try Schema.migrate(try PostgresConnection(database))
        tracker = PullTracker(configuration: TrackerConfiguration(isEnabled: statisticsEnabled, stripeCount: 1, shardCount: 1))
        node = PullSketchNode(
            configuration: NodeConfiguration(
                webhookSecret: Self.secret, readAuth: readAuth, maxBodyBytes: maxBodyBytes, eventIDHorizon: eventIDHorizon,
                statementTimeout: statementTimeout, idleTimeout: idleTimeout, maxConcurrentRequests: maxConcurrentRequests,
                metricsToken: metricsToken, catalogQueueCapacity: catalogQueueCapacity, forwardedProtoHeader: forwardedProtoHeader,
                signInWindow: signInWindow
            ),
            tracker: tracker,
            database: try BlockingDatabase(database, connections: 2, statementTimeout: statementTimeout, acquireTimeout: .seconds(120)),
            redis: RedisEndpoint(port: try redisPort ?? freeLoopbackPort(), timeout: redisTimeout),
            metrics: NodeMetrics(registry: registry)
        )
    }

    /// `body` against the node's own server on a free loopback port: ingestion answered on the
    /// event loop, the rest by the router. `.live` sends one request at a time on one connection;
    /// `.ahc()` sends requests made at once on connections of their own.
    func test<Value>(
        _ setup: TestingSetup = .live, logger: Logger = Logger(label: "test"), _ body: @Sendable (any TestClientProtocol) async throws -> Value
    ) async throws -> Value {
        try await node.application(logger: logger).test(setup, body)
    }

    func sql(_ statement: String, _ parameters: [String?] = []) throws -> [[String?]] {
        try PostgresConnection(database).query(statement, parameters).rows
    }

    /// `method path` on a connection of its own that the request closes, with a reader's token
    /// when `authorized`; the answer as sent, within two minutes. For tests whose subject is not
    /// time: the testing clients give up after 15–20 s, which a loaded test machine can take.
    static func ask(_ method: String, _ path: String, port: Int, authorized: Bool = true) async throws -> String {
        let authorization = authorized ? "Authorization: Bearer \(teamToken)\r\n" : ""
        let request = "\(method) \(path) HTTP/1.1\r\nHost: node\r\n\(authorization)Connection: close\r\n\r\n"
        let (reply, closed) = try await onOwnThread { try exchange(port: port, Array(request.utf8), timeout: 120) }
        #expect(closed, "\(method) \(path) was answered within two minutes")
        return String(decoding: reply, as: UTF8.self)
    }
}

extension TestResponse {
    var text: String { String(buffer: body) }

    var integers: [String: Int] { json.compactMapValues { $0 as? Int } }

    var json: [String: Any] {
        (try? JSONSerialization.jsonObject(with: Data(text.utf8))) as? [String: Any] ?? [:]
    }
}

/// `{"events": [...]}` from event objects.
func envelope(_ events: [[String: Any]]) -> ByteBuffer {
    ByteBuffer(bytes: try! JSONSerialization.data(withJSONObject: ["events": events]))
}

/// A distribution event as the registry sends it.
func event(
    id: String, action: String = "pull", repository: String = "team/app", tag: String? = "v1",
    digest: String = "sha256:" + String(repeating: "a", count: 64), method: String = "GET",
    mediaType: String = "application/vnd.oci.image.manifest.v1+json", timestamp: String = "2026-11-22T01:02:03.123456789Z"
) -> [String: Any] {
    var target: [String: Any] = ["mediaType": mediaType, "digest": digest, "repository": repository, "size": 500]
    if let tag { target["tag"] = tag }
    return ["id": id, "timestamp": timestamp, "action": action, "target": target, "request": ["method": method]]
}
