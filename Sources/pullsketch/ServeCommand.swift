import ArgumentParser
import Hummingbird
import Logging
import Metrics
import Prometheus
import PullSketchCore
import PullSketchFlusher
import PullSketchNode
import PullSketchQuay
import PullSketchStore
import ServiceLifecycle

/// Runs a node: the HTTP server (events in, statistics out), its tracker's flusher, the catalog
/// writer and, when `resp_listen` is set, the endpoint Quay sends its pulls to, in one service
/// group that shuts down gracefully on SIGTERM or SIGINT.
struct ServeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "serve",
        abstract: "Receive registry events, merge them into Redis, and serve the statistics API and web UI."
    )

    @OptionGroup var options: ConfigurationOptions

    func run() async throws {
        let configuration = try options.load()
        guard !configuration.database.isEmpty else {
            throw ValidationError("no database: set PULLSKETCH.database_url or PULLSKETCH_DATABASE_URL")
        }
        let logger = Logger(label: "pullsketch.node")
        try refuseAnUnfitRedis(configuration, logger: logger)
        raiseOpenFileLimit(logger: logger)
        let registry = PrometheusCollectorRegistry()
        MetricsSystem.bootstrap(PrometheusMetricsFactory(registry: registry))
        let tracker = PullTracker(configuration: configuration.tracker)
        let flusher = Flusher(tracker: tracker, redis: configuration.redis, configuration: configuration.flusher)
        let database = try BlockingDatabase(configuration.database, statementTimeout: configuration.node.statementTimeout)
        let node = PullSketchNode(
            configuration: configuration.node,
            tracker: tracker,
            database: database,
            redis: configuration.redis,
            metrics: NodeMetrics(registry: registry),
            logger: logger
        )
        let application = node.application(logger: logger)
        logger.info("serving", metadata: [
            "address": "\(configuration.node.host):\(configuration.node.port)", "statistics": "\(configuration.tracker.isEnabled)",
            "node": "\(flusher.nodeID)",
        ])
        // Stopped in the reverse order: first what takes pulls in (the HTTP server, Quay's wire),
        // then what writes them out, so that the catalog's last changes and the tracker's last
        // merge hold everything the node accepted.
        var services: [any Service] = [flusher, node.catalogUpdates, node.health]
        if var endpoint = configuration.quay.endpoint {
            endpoint.session.maximumDelay = configuration.node.maxEventDelay
            let intake = QuayPullIntake(
                tracker: tracker,
                quay: try configuration.quay.databaseURL.map { try BlockingDatabase($0, connections: 1) } ?? database,
                statistics: database,
                refreshInterval: configuration.quay.namesRefreshInterval,
                logger: logger
            )
            services += [intake, QuayEndpoint(configuration: endpoint, intake: intake, now: { node.now() }, logger: logger)]
        }
        services.append(application)
        let group = ServiceGroup(configuration: .init(services: services, gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
        try await group.run()
    }
}
