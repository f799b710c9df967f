import Logging
import PullSketchCore
import PullSketchEvents
import PullSketchStore
public import ServiceLifecycle

/// Writes catalog changes from push and delete events to PostgreSQL in arrival order, off the
/// request path: the registry gets its answer at once, and a database outage delays the catalog
/// instead of blocking the registry's notification queue. Changes wait in a bounded buffer; when
/// it is full the oldest are dropped, counted and logged.
public final class CatalogUpdates: Service, Sendable {
    private let stream: AsyncStream<CatalogChange>
    private let continuation: AsyncStream<CatalogChange>.Continuation
    private let database: BlockingDatabase
    private let metrics: NodeMetrics
    private let logger: Logger

    init(database: BlockingDatabase, metrics: NodeMetrics, capacity: Int = 10_000, logger: Logger) {
        (stream, continuation) = AsyncStream.makeStream(of: CatalogChange.self, bufferingPolicy: .bufferingNewest(capacity))
        self.database = database
        self.metrics = metrics
        self.logger = logger
    }

    func enqueue(_ change: CatalogChange) {
        if case .dropped = continuation.yield(change) {
            metrics.catalogChangesDropped.increment()
            logger.error("catalog buffer full: dropped the oldest change")
        }
    }

    /// Applies changes until shutdown; a failed change is retried (0.1 s doubling to 5 s) so the
    /// order holds.
    public func run() async throws {
        await cancelWhenGracefulShutdown { [self] in
            for await change in stream {
                var delay = Duration.milliseconds(100)
                while !Task.isCancelled {
                    do {
                        try await database.run { connection in try Catalog(connection: connection).apply(change) }
                        metrics.catalogChangesApplied.increment()
                        break
                    } catch {
                        logger.warning("catalog change failed; retrying", metadata: ["error": "\(error)"])
                        try? await Task.sleep(for: delay)
                        delay = min(delay * 2, .seconds(5))
                    }
                }
            }
        }
    }
}

extension Catalog {
    func apply(_ change: CatalogChange) throws {
        switch change {
        case .pushTag(let repository, let tag, let digest, let time): try upsertTag(repository, tag, digest: digest, pushedAt: time)
        case .pushManifest(let repository, let digest, let time): try upsertManifest(repository, digest, pushedAt: time)
        case .deleteTag(let repository, let tag, let time): try deleteTag(repository, tag, at: time)
        case .deleteManifest(let repository, let digest, let time): try deleteManifest(repository, digest, at: time)
        }
    }
}
