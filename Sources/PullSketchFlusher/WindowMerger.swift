import Foundation
public import Logging
public import Metrics
public import PullSketchCore
public import PullSketchRedis

/// Merges the tracker's windows into Redis one attempt at a time, never guessing about a failed
/// merge:
/// - a window that certainly never reached Redis (no connection) goes back into the tracker, and
///   so do the parts Redis refused before writing them (over its memory limit, a read-only
///   replica, loading its data);
/// - a window whose outcome is unknown (the connection broke after sending) is kept and retried as
///   the same window — same node id, same sequence — until Redis says it applied it or already had
///   it; nothing new is drained meanwhile, and the tracker keeps recording within its bound. Once
///   it has been retried for half the ledger's memory it is dropped and counted: a retry after the
///   ledger forgot the node could apply it twice;
/// - a merged window part is kept (`RetainedParts`) until the reconciler confirms PostgreSQL holds
///   it, and sent again when its shard's ledger turns out to be behind what it acknowledged — Redis
///   went back to an older state (a crash under `appendfsync everysec`, a failover to a lagging
///   replica, a restored snapshot) or the reconciler discarded a batch it found already counted.
///
/// Synchronous and single-threaded: `Flusher` drives it from its actor, the embedded library
/// (`PullSketchEmbed`) from a thread of its own.
public final class WindowMerger {
    /// What one attempt did.
    public enum Attempt: Hashable, Sendable {
        case merged(pulls: UInt64)
        case nothingToMerge
        /// Failed; the window, or the parts of it Redis refused, went back into the tracker
        /// (`retained` false), or it is kept for retry.
        case failed(retained: Bool)
    }

    /// New for every process start, so the merge ledger can tell this process's windows apart.
    public let nodeID: String
    private let tracker: PullTracker
    private let redis: RedisEndpoint
    private let configuration: FlusherConfiguration
    private let logger: Logger
    private let metrics: FlusherMetrics

    private var store: BatchStore?
    private var pending: Window?
    /// When the pending window's first attempt failed.
    private var pendingSince: ContinuousClock.Instant?
    private var consecutiveFailures = 0
    private var retained = RetainedParts()

    public init(
        tracker: PullTracker,
        redis: RedisEndpoint,
        configuration: FlusherConfiguration = FlusherConfiguration(),
        logger: Logger = Logger(label: "pullsketch.flusher"),
        nodeID: String? = nil,
        metricsFactory: any MetricsFactory = MetricsSystem.factory
    ) {
        self.tracker = tracker
        self.redis = redis
        self.configuration = configuration
        self.logger = logger
        self.nodeID = nodeID ?? UUID().uuidString.lowercased()
        metrics = FlusherMetrics(factory: metricsFactory)
    }

    /// One merge attempt: the retained window if there is one, else a freshly drained window, after
    /// any parts a shard lost; with nothing new, a check that no shard lost kept parts.
    @discardableResult
    public func flushOnce() -> Attempt {
        if let pending, let pendingSince, ContinuousClock.now - pendingSince > configuration.ledgerMemory / 2 {
            metrics.recordDrop(pending)
            logger.error(
                "window dropped: its merge outcome stayed unknown for half the ledger's memory",
                metadata: ["node": "\(nodeID)", "sequence": "\(pending.sequence)", "pulls": "\(pending.pulls)"]
            )
            self.pending = nil
            self.pendingSince = nil
        }
        metrics.recordUnprotected(
            retained.forget(mergedBefore: ContinuousClock.now - configuration.ledgerMemory / 2) + retained.keep(atMostBytes: configuration.retainedBytes)
        )
        let window = pending ?? tracker.drain()
        guard !window.isEmpty || !retained.isEmpty else {
            metrics.recordUpToDate()
            return .nothingToMerge
        }
        metrics.recordAge()
        let started = ContinuousClock.now
        do {
            let store = try connectedStore()
            let outcomes = try merge(window, store: store)
            pending = nil
            pendingSince = nil
            let refused = window.shards.filter { outcomes[$0.shard] == .refused }
            guard refused.isEmpty else {
                return giveBack(refused, of: window)
            }
            consecutiveFailures = 0
            guard !window.isEmpty else {
                metrics.recordUpToDate()
                return .nothingToMerge
            }
            metrics.recordMerge(window, outcomes: outcomes, duration: ContinuousClock.now - started)
            return .merged(pulls: window.pulls)
        } catch {
            store = nil
            consecutiveFailures += 1
            metrics.recordFailure()
            if let redisError = error as? RedisError, !redisError.wasSent, pending == nil {
                try! tracker.restore(window)  // drained from this tracker: same parameters and shards
                logger.warning("redis unreachable, window kept in the tracker", metadata: ["error": "\(error)"])
                return .failed(retained: false)
            }
            if pending != nil { metrics.recordRetry() } else { pendingSince = started }
            pending = window
            logger.error(
                "merge outcome unknown or refused, retrying the same window",
                metadata: ["error": "\(error)", "node": "\(nodeID)", "sequence": "\(window.sequence)"]
            )
            return .failed(retained: true)
        }
    }

    /// Puts the parts of `window` that Redis refused before writing them (over its memory limit, a
    /// read-only replica) back into the tracker, as if their pulls were recorded now: Redis wrote
    /// nothing of them, so, unlike a window whose outcome is unknown, they can wait there for as
    /// long as Redis refuses and go in with a later window. The window's other parts were merged.
    private func giveBack(_ refused: [ShardWindow], of window: Window) -> Attempt {
        // Drained from this tracker: same parameters and shards.
        try! tracker.restore(Window(sequence: window.sequence, parameters: window.parameters, shards: refused))
        consecutiveFailures += 1
        metrics.recordFailure()
        logger.warning(
            "redis refused window parts before writing them (over its maxmemory, a read-only replica, loading): kept in the tracker",
            metadata: ["node": "\(nodeID)", "shards": "\(refused.map(\.shard))", "pulls": "\(refused.reduce(0) { $0 + $1.pulls })"]
        )
        return .failed(retained: false)
    }

    /// Sends the window's parts, each after the kept parts its shard lost; a shard that rewinds
    /// mid-way gets its lost parts and the rest again, a few rounds at most. A part Redis refuses
    /// is not sent again (its outcome is `.refused`).
    private func merge(_ window: Window, store: BatchStore) throws -> [Int: MergeOutcome] {
        var outcomes: [Int: MergeOutcome] = [:]
        for round in 1...3 {
            let merges = window.shards.flatMap { part in
                retained.merges(shard: part.shard, new: part.isEmpty || outcomes[part.shard] == .refused ? nil : (window.sequence, part))
            }
            let replies = try store.merge(merges, parameters: window.parameters, node: nodeID)
            var rewound = 0
            for (merge, reply) in zip(merges, replies) {
                if !retained.record(reply, for: merge, at: .now) { rewound += 1 }
                if merge.sequence == window.sequence, reply.outcome != .rewound { outcomes[merge.part.shard] = reply.outcome }
                if merge.sequence > 0, merge.sequence < window.sequence, reply.outcome == .applied { metrics.recordResent(merge.part) }
            }
            guard rewound > 0 else { return outcomes }
            logger.warning(
                "a shard's ledger is behind what it acknowledged: sending the parts it lost again",
                metadata: ["node": "\(nodeID)", "round": "\(round)", "rewound parts": "\(rewound)"]
            )
        }
        throw RedisError(.server, "shards kept rewinding while their lost parts were sent again")
    }

    private func connectedStore() throws -> BatchStore {
        if let store { return store }
        let memory = configuration.ledgerMemory.components
        let store = BatchStore(
            connection: try connectRedis(redis),
            shardCount: tracker.configuration.shardCount,
            ledgerMemoryMilliseconds: memory.seconds * 1_000 + memory.attoseconds / 1_000_000_000_000_000
        )
        self.store = store
        return store
    }

    /// How long to wait before the next attempt: the merge interval, longer after failures.
    public var nextDelay: Duration {
        configuration.delay(afterFailures: consecutiveFailures)
    }

    /// Attempts merges until one does not fail, for at most `gracePeriod`: a last merge at exit.
    /// Returns whether everything drained was merged.
    public func flushAtExit(gracePeriod: Duration) -> Bool {
        let deadline = ContinuousClock.now + gracePeriod
        while case .failed = flushOnce() {
            guard ContinuousClock.now < deadline else {
                logger.error("stopped with pulls not merged", metadata: ["node": "\(nodeID)"])
                return false
            }
            sleep(for: min(nextDelay, deadline - ContinuousClock.now))
        }
        return true
    }

    private func sleep(for duration: Duration) {
        let (seconds, attoseconds) = duration.components
        var time = timespec(tv_sec: Int(seconds), tv_nsec: Int(attoseconds / 1_000_000_000))
        nanosleep(&time, nil)
    }
}
