import Foundation
public import Hummingbird
import HummingbirdCore
import NIOCore
public import Logging
import Prometheus
public import PullSketchCore
import PullSketchEvents
public import PullSketchRedis
public import PullSketchStore
import ServiceLifecycle

/// The HTTP side of a PullSketch node: receives registry events into its tracker and
/// the catalog, and serves the statistics API, the pruning dry-run, the web UI, `/metrics` and
/// `/healthz`. `pullsketch serve` runs its router with the tracker's flusher.
public struct PullSketchNode: Sendable {
    public let configuration: NodeConfiguration
    let tracker: PullTracker
    let database: BlockingDatabase
    /// Checks Redis and PostgreSQL in the background for `/healthz`, and sets `clock` by Redis's;
    /// run it next to the server.
    public let health: HealthMonitor
    /// The time events are dated and clamped by, and dry runs decide by.
    let clock = NodeClock()

    /// The node's time: its host's clock set by Redis's (`NodeClock`), for every other way pulls
    /// reach this process (Quay's wire).
    public func now() -> Timestamp { clock.now() }
    /// Whether statistics are served at all: the tracker's `FEATURE_IMAGE_PULL_STATS`.
    var statisticsEnabled: Bool { tracker.configuration.isEnabled }
    /// Writes catalog changes from push and delete events; run it next to the HTTP server.
    public let catalogUpdates: CatalogUpdates
    let metrics: NodeMetrics
    let recentIDs: RecentEventIDs
    let redis: RedisEndpoint
    /// Nil when `eventIDHorizon` is zero: each node de-duplicates by its own memory alone.
    let claimCommand: ClaimCommand?
    /// Claims through a thread of their own: a Redis Cluster's, and those of requests the router
    /// answers (`ClaimLanes` sends the rest from the event loops). Nil when `claimCommand` is.
    let eventClaims: EventClaims?
    /// Requests whose claims' answer was lost, asked again (`LostClaims`). Nil when `claimCommand` is.
    let lostClaims: LostClaims?
    let pages: WebPages
    let signIns: SignInLimiter
    let requestsInFlight: RequestsInFlight
    let requestSeries: RequestSeries
    let logger: Logger
    /// The `Server` header of every response.
    static let serverName = "PullSketch"

    public init(
        configuration: NodeConfiguration,
        tracker: PullTracker,
        database: BlockingDatabase,
        redis: RedisEndpoint,
        metrics: NodeMetrics,
        logger: Logger = Logger(label: "pullsketch.node")
    ) {
        self.configuration = configuration
        self.tracker = tracker
        self.database = database
        health = HealthMonitor(redis: redis, database: database, clock: clock, clockOffset: metrics.clockOffset, logger: logger)
        self.metrics = metrics
        self.logger = logger
        catalogUpdates = CatalogUpdates(database: database, metrics: metrics, capacity: configuration.catalogQueueCapacity, logger: logger)
        recentIDs = RecentEventIDs(capacity: configuration.recentEventIDs)
        self.redis = redis
        claimCommand = configuration.eventIDHorizon > .zero
            ? ClaimCommand(shardCount: tracker.configuration.shardCount, horizon: configuration.eventIDHorizon) : nil
        if let claimCommand {
            let lostClaims = LostClaims(redis: redis, command: claimCommand, waitingRequests: metrics.eventClaimsLost, logger: logger)
            self.lostClaims = lostClaims
            eventClaims = EventClaims(
                redis: redis, command: claimCommand, lostClaims: lostClaims, roundTrips: metrics.eventClaimRoundTrips,
                waitingRequests: metrics.eventClaimsWaiting, logger: logger
            )
        } else {
            lostClaims = nil
            eventClaims = nil
        }
        pages = WebPages()
        signIns = SignInLimiter(window: configuration.signInWindow)
        requestsInFlight = RequestsInFlight(limit: configuration.maxConcurrentRequests)
        requestSeries = RequestSeries(factory: PrometheusMetricsFactory(registry: metrics.registry))
        if configuration.readAuth == .none {
            logger.warning("read_auth is none: anyone who reaches this node can read every repository's statistics")
        }
        if configuration.webhookSecret == nil {
            logger.warning("no webhook secret configured: every ingestion request is refused")
        }
    }

    /// The HTTP server on the configured address: HTTP/1.1, connections closed after
    /// `idleTimeout` in which no part of a request came and no answer was owed (slow or idle
    /// clients are not held; `ConnectionLifetime`), ingestion answered on the event loop
    /// (`EventLoopIngestion`).
    public func application(logger: Logger) -> some ApplicationProtocol {
        let idle = configuration.idleTimeout.components
        let idleTimeout = TimeAmount.nanoseconds(idle.seconds * 1_000_000_000 + idle.attoseconds / 1_000_000_000)
        let claimLanes: ClaimLanes? = if let claimCommand, let lostClaims, redis.clusterNodes.isEmpty {
            ClaimLanes(redis: redis, command: claimCommand, lostClaims: lostClaims, metrics: metrics, logger: logger)
        } else {
            nil
        }
        return Application(
            router: router(),
            server: HTTPServerBuilder { responder in
                IngestingHTTP1Channel(http1: HTTP1Channel(responder: responder), idleTimeout: idleTimeout, node: self, claimLanes: claimLanes)
            },
            configuration: .init(address: .hostname(configuration.host, port: configuration.port), serverName: Self.serverName),
            // Stopped in reverse: the lanes hand their unanswered claims over before the lost ones are waited for.
            services: [lostClaims as (any Service)?, claimLanes].compactMap { $0 },
            logger: logger
        )
    }

    public func router() -> Router<NodeRequestContext> {
        // HEAD answers every GET route as GET would, without the body (health checks use it).
        let router = Router(context: NodeRequestContext.self, options: .autoGenerateHeadEndpoints)
        router.add(middleware: SecurityHeadersMiddleware())
        router.add(middleware: ConcurrencyLimitMiddleware(inFlight: requestsInFlight))
        router.add(middleware: RequestMetricsMiddleware(series: requestSeries))
        router.add(middleware: UnexpectedErrorMiddleware())
        router.add(middleware: DatabaseUnavailableMiddleware())
        router.route(.post, "notifications") { request, _ in await receive(.notifications, request) }
        router.route(.post, "api/v1/pulls") { request, _ in await receive(.pulls, request) }
        router.route(.get, "api/v1/repository/**") { request, context in try await readStatistics(request, context: context) }
        router.route(.get, "/") { request, _ in try await searchPage(request) }
        router.route(.get, "repository/**") { request, context in try await repositoryPage(request, context: context) }
        router.route(.post, "login") { request, context in try await login(request, context: context) }
        router.route(.get, "metrics") { request, _ in prometheusText(request) }
        router.route(.get, "healthz") { _, _ in try healthResponse() }
        return router
    }

    /// `/metrics`, behind `metrics_token` when one is configured.
    private func prometheusText(_ request: Request) -> Response {
        if let token = configuration.metricsToken {
            guard let presented = bearerToken(request.headers), constantTimeEqual(presented, token) else {
                return JSONResponse.error(.unauthorized, "missing or wrong metrics token")
            }
        }
        metrics.trackerMemory.set(Int64(tracker.memoryFootprint()))
        return Response(
            status: .ok,
            headers: [.contentType: "text/plain; version=0.0.4; charset=utf-8"],
            body: .init(byteBuffer: ByteBuffer(bytes: metrics.registry.emitToBuffer()))
        )
    }

    /// 200 when the latest background check found Redis and PostgreSQL answering, else 503 with
    /// which is unavailable; the errors themselves go to the log, not to anonymous callers.
    private func healthResponse() throws -> Response {
        let status = health.status
        let healthy = status.redis && status.postgres
        return try JSONResponse.make(healthy ? .ok : .serviceUnavailable, [
            "status": healthy ? "ok" : "unavailable",
            "redis": status.redis ? "ok" : "unavailable",
            "postgres": status.postgres ? "ok" : "unavailable",
        ])
    }
}

/// JSON bodies and errors. Names, digests and media types are written as they are (`team/app`,
/// not Foundation's default `team\/app`), as registries' own APIs write them.
enum JSONResponse {
    static let encoder: JSONEncoder = {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return encoder
    }()

    static func make(_ status: HTTPResponse.Status, _ value: some Encodable) throws -> Response {
        Response(
            status: status,
            headers: [.contentType: "application/json"],
            body: .init(byteBuffer: ByteBuffer(bytes: try encoder.encode(value)))
        )
    }

    /// `{"error": message}` with `status`.
    static func error(_ status: HTTPResponse.Status, _ message: String) -> Response {
        (try? make(status, ["error": message])) ?? Response(status: status)
    }
}
