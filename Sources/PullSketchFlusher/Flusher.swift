import Foundation
public import Logging
import PullSketchBlocking
public import PullSketchCore
public import PullSketchRedis
public import ServiceLifecycle

/// Sends the tracker's windows to Redis every merge interval (backing off after failures), through
/// a `WindowMerger`, which says what happens to a failed merge. hiredis blocks, so the flusher is
/// an actor on its own `BlockingExecutor`: every Redis call runs there, never on the cooperative
/// thread pool, and its connection never leaves it.
public actor Flusher: Service {
    public typealias Attempt = WindowMerger.Attempt

    /// New for every process start, so the merge ledger can tell this process's windows apart.
    public nonisolated let nodeID: String
    private let merger: WindowMerger
    private let gracePeriod: Duration
    private nonisolated let executor = BlockingExecutor(label: "pullsketch.flusher")
    public nonisolated var unownedExecutor: UnownedSerialExecutor { executor.asUnownedSerialExecutor() }

    public init(
        tracker: PullTracker,
        redis: RedisEndpoint,
        configuration: FlusherConfiguration = FlusherConfiguration(),
        logger: Logger = Logger(label: "pullsketch.flusher"),
        nodeID: String? = nil
    ) {
        merger = WindowMerger(tracker: tracker, redis: redis, configuration: configuration, logger: logger, nodeID: nodeID)
        self.nodeID = merger.nodeID
        gracePeriod = configuration.shutdownGracePeriod
    }

    /// Merges every interval (backing off after failures) until a graceful shutdown or
    /// cancellation, then makes a last merge: retried for at most the grace period after a
    /// graceful shutdown, tried once after a cancellation.
    public func run() async throws {
        try? await cancelWhenGracefulShutdown { [self] in
            while true {
                try await Task.sleep(for: await delay())
                await flushOnce()
            }
        }
        if Task.isCancelled {
            merger.flushOnce()
        } else {
            _ = merger.flushAtExit(gracePeriod: gracePeriod)
        }
    }

    private func delay() -> Duration {
        merger.nextDelay
    }

    /// One merge attempt (`WindowMerger.flushOnce`).
    @discardableResult
    public func flushOnce() -> Attempt {
        merger.flushOnce()
    }
}
