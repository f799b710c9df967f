import ArgumentParser
import Logging
import PullSketchQuay
import PullSketchReconciler
import PullSketchStore
import ServiceLifecycle

/// Runs the reconciler's workers until SIGTERM or SIGINT; several processes may run, one worker
/// works a shard at a time.
struct ReconcileCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "reconcile",
        abstract: "Write sealed Redis batches into PostgreSQL, exactly once, every interval."
    )

    @OptionGroup var options: ConfigurationOptions

    @Option(help: "libpq connection string or postgresql:// URI; overrides PULLSKETCH.database_url and $PULLSKETCH_DATABASE_URL.")
    var database: String?

    func run() async throws {
        var configuration = try options.load()
        if let database { configuration.database = database }
        guard !configuration.database.isEmpty else {
            throw ValidationError("no database: pass --database, or set PULLSKETCH.database_url or PULLSKETCH_DATABASE_URL")
        }
        let logger = Logger(label: "pullsketch.reconciler")
        try refuseAnUnfitRedis(configuration, logger: logger)
        try refuseAnOutdatedSchema(configuration.database, logger: logger)
        let quayDatabase = configuration.quay.databaseURL
        let projection: (@Sendable () throws -> any StatisticsProjection)? =
            configuration.quay.projection ? { @Sendable () throws -> any StatisticsProjection in try QuayProjection(quayDatabase: quayDatabase) } : nil
        // Each worker is a reconciler of its own (connections, owner, share of the shards), so
        // PostgreSQL writes as many batches at once as there are workers.
        let reconcilers = (0..<configuration.reconciler.workers).map { _ in
            Reconciler(
                redis: configuration.redis,
                database: configuration.database,
                shardCount: configuration.tracker.shardCount,
                configuration: configuration.reconciler,
                projection: projection,
                logger: logger
            )
        }
        logger.info("reconciling", metadata: [
            "owners": "\(reconcilers.map(\.owner).joined(separator: ","))", "shards": "\(configuration.tracker.shardCount)",
            "quay_projection": "\(configuration.quay.projection)",
        ])
        let group = ServiceGroup(configuration: .init(services: reconcilers, gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
        try await group.run()
    }
}
