import Logging
import PullSketchCore
import PullSketchEvents
import PullSketchStore
public import ServiceLifecycle
import Synchronization

/// Writes catalog changes from push and delete events to PostgreSQL off the request path, in bulk:
/// every pass takes up to `batchSize` waiting changes and applies them in one transaction
/// (`Catalog.apply`, which orders them by event time, so batching and retries change nothing).
///
/// Nothing accepted is dropped. The queue holds at most `capacity` changes; a request whose
/// catalog changes do not fit is refused before anything of it is applied (`reserve` fails, the
/// node answers 503 and the registry delivers the envelope again). While PostgreSQL is down the
/// queue fills and the node pushes back the same way. At a graceful shutdown what waits is written
/// last; what the queue holds when the process dies is lost, as a node's unmerged window is.
public final class CatalogUpdates: Service, Sendable {
    private struct Queue {
        var changes: [CatalogChange] = []
        /// Places promised to requests that have not enqueued yet.
        var reserved = 0
    }

    private let queue = Mutex(Queue())
    private let doorbell: AsyncStream<Void>
    private let ring: AsyncStream<Void>.Continuation
    private let capacity: Int
    private let batchSize: Int
    private let database: BlockingDatabase
    private let metrics: NodeMetrics
    private let logger: Logger

    init(database: BlockingDatabase, metrics: NodeMetrics, capacity: Int = 100_000, batchSize: Int = 5_000, logger: Logger) {
        (doorbell, ring) = AsyncStream.makeStream(of: Void.self, bufferingPolicy: .bufferingNewest(1))
        self.capacity = capacity
        self.batchSize = batchSize
        self.database = database
        self.metrics = metrics
        self.logger = logger
    }

    /// Promises room for `count` changes; false, promising nothing, when they do not fit.
    func reserve(_ count: Int) -> Bool {
        guard count > 0 else { return true }
        let fits = queue.withLock { queue in
            guard queue.changes.count + queue.reserved + count <= capacity else { return false }
            queue.reserved += count
            return true
        }
        if !fits { metrics.catalogChangesDeferred.increment(by: Int64(count)) }
        return fits
    }

    /// Adds `changes` in the room `reserved` promised (unused room is given back).
    func enqueue(_ changes: [CatalogChange], reserved: Int) {
        let waiting = queue.withLock { queue in
            queue.changes += changes
            queue.reserved -= reserved
            return queue.changes.count
        }
        metrics.catalogQueue.set(Int64(waiting))
        if !changes.isEmpty { ring.yield() }
    }

    /// Applies waiting changes until a graceful shutdown, a batch at a time; a failed batch is
    /// retried (0.1 s doubling to 5 s) and stays in the queue meanwhile. Then applies what still
    /// waits, retrying for at most `shutdownGracePeriod`: the node stops taking requests before
    /// this stops (`pullsketch serve`), so nothing it accepted is left behind.
    public func run() async throws {
        await cancelWhenGracefulShutdown { [self] in
            for await _ in doorbell {
                await applyWaiting(retryingUntil: nil)
            }
        }
        guard !Task.isCancelled else { return }
        await applyWaiting(retryingUntil: .now + Self.shutdownGracePeriod)
        let left = queue.withLock { $0.changes.count }
        if left > 0 {
            logger.error("catalog changes not written before the node stopped", metadata: ["changes": "\(left)"])
        }
    }

    /// How long the last changes are retried for at a graceful shutdown.
    static let shutdownGracePeriod: Duration = .seconds(5)

    /// Applies batches until none waits, the task is cancelled, or a batch fails past `deadline`.
    /// A failed batch is retried half as large, down to one change, and each success doubles the
    /// size back to `batchSize`: a batch too large for the database — one that outlasts the
    /// statement timeout on a busy server — goes in split rather than failing for good while the
    /// queue fills and every envelope with a push or delete is deferred.
    private func applyWaiting(retryingUntil deadline: ContinuousClock.Instant?) async {
        var delay = Duration.milliseconds(100)
        var size = batchSize
        while !Task.isCancelled, let batch = nextBatch(size) {
            do {
                try await database.run { connection in try Catalog(connection: connection).apply(batch.changes) }
                let waiting = queue.withLock { queue in
                    queue.changes.removeFirst(batch.count)
                    return queue.changes.count
                }
                metrics.catalogChangesApplied.increment(by: Int64(batch.count))
                metrics.catalogQueue.set(Int64(waiting))
                delay = .milliseconds(100)
                size = min(batchSize, size * 2)
            } catch {
                logger.warning("catalog changes failed; retrying", metadata: ["changes": "\(batch.count)", "error": "\(error)"])
                if let deadline, ContinuousClock.now + delay > deadline { return }
                try? await Task.sleep(for: delay)
                delay = min(delay * 2, .seconds(5))
                size = max(1, batch.count / 2)
            }
        }
    }

    /// The oldest waiting changes, up to `size`, collapsed into one catalog batch.
    private func nextBatch(_ size: Int) -> (changes: CatalogBatch, count: Int)? {
        let changes = queue.withLock { Array($0.changes.prefix(size)) }
        guard !changes.isEmpty else { return nil }
        var batch = CatalogBatch()
        for change in changes {
            switch change {
            case .pushTag(let repository, let tag, let digest, let time): batch.pushTag(repository, tag, digest: digest, at: time)
            case .pushManifest(let repository, let digest, let time): batch.pushManifest(repository, digest, at: time)
            case .pushIndex(let repository, let tag, let digest, let children, let time):
                if let tag { batch.pushTag(repository, tag, digest: digest, at: time) } else { batch.pushManifest(repository, digest, at: time) }
                batch.link(children.map { IndexLink(repository: repository, index: digest, child: $0, platform: nil) })
            case .deleteTag(let repository, let tag, let time): batch.deleteTag(repository, tag, at: time)
            case .deleteManifest(let repository, let digest, let time): batch.deleteManifest(repository, digest, at: time)
            }
        }
        return (batch, changes.count)
    }
}
