import Foundation
public import Logging
import PullSketchBlocking
import PullSketchCore
import PullSketchPostgres
public import PullSketchStore
public import PullSketchRedis
public import ServiceLifecycle
import Synchronization

/// Turns sealed Redis batches into PostgreSQL rows, exactly once. Every pass:
/// 1. for each shard whose lease it holds and that has no sealed batch waiting, seal the live
///    batch, numbered above the highest batch the ledger has;
/// 2. for each such shard, each sealed batch in order: renew the lease, read the batch, write it,
///    its projection if one is configured, and its ledger row in one transaction (`BatchWriter`),
///    then delete it from Redis.
///
/// The ledger, not the lease, is what makes a batch count once: a batch that was committed but not
/// deleted (a crash in between) is found in the ledger and only deleted, and a batch holding a node
/// window PostgreSQL already has (Redis went back to an older state) is not written: the shard is
/// rewound — everything of it PostgreSQL lacks is discarded and the ledger set to what PostgreSQL
/// holds — and the nodes send what they kept since again. The lease keeps two reconcilers from
/// doing the same work; each reconciler announces itself every pass and works at most its share
/// of the shards (shards ÷ reconcilers alive, rounded up), giving the others up.
///
/// A batch that cannot be read, or whose data PostgreSQL refuses, is quarantined: its keys as they
/// were go to `quarantined_batches` in PostgreSQL for an operator, it is deleted from Redis and
/// counted, and the shard goes on.
/// Another failure specific to one shard skips that shard for the pass; losing Redis or PostgreSQL
/// ends the pass, and the next one, one interval later, starts over on fresh connections. While
/// PostgreSQL is down each shard keeps one sealed batch waiting and the live batch goes on taking
/// merges, so Redis holds at most two batches per shard however long the outage; the lag metric
/// shows it.
///
/// hiredis and libpq block, so the reconciler is an actor on its own `BlockingExecutor`: all their
/// calls run there, and its connections never leave it.
public actor Reconciler: Service {
    /// What one pass did.
    public struct Pass: Hashable, Sendable {
        /// Batches written to PostgreSQL by this pass.
        public var applied = 0
        /// Batches the ledger already had (committed by a pass that died before deleting them).
        public var alreadyReconciled = 0
        /// Shards skipped because another reconciler holds their lease.
        public var shardsLeasedElsewhere = 0
        /// Batches set aside because they could not be read or written.
        public var quarantined = 0
        /// Shards rewound because a batch held windows PostgreSQL had already.
        public var rewound = 0
        /// Shards skipped after a failure of their own.
        public var shardsFailed = 0
        /// Batches whose catalog keys came from one read for several shards.
        public var sharedCatalogReads = 0

        public init() {}
    }

    /// Identifies this process in the shard leases: host, process id and a random suffix.
    public nonisolated let owner: String
    private let redis: RedisEndpoint
    private let database: String
    private let shardCount: Int
    private let configuration: ReconcilerConfiguration
    private let makeProjection: (@Sendable () throws -> any StatisticsProjection)?
    private let logger: Logger
    private let metrics = ReconcilerMetrics()
    private nonisolated let executor = BlockingExecutor(label: "pullsketch.reconciler")
    public nonisolated var unownedExecutor: UnownedSerialExecutor { executor.asUnownedSerialExecutor() }
    /// How long ledger rows are kept, and how often old ones are deleted.
    static let ledgerRetentionMilliseconds: Int64 = 30 * 86_400_000
    static let ledgerPruneEveryMilliseconds: Int64 = 3_600_000

    private var store: BatchStore?
    private var writer: BatchWriter?
    /// The highest reconciled batch per shard, as last read from the ledger; kept while PostgreSQL
    /// is unreachable (it only grows), so sealing goes on.
    private var floors: [Int64]?
    private var ledgerPrunedAt: Timestamp?

    public init(
        redis: RedisEndpoint,
        database: String,
        shardCount: Int,
        configuration: ReconcilerConfiguration = ReconcilerConfiguration(),
        projection makeProjection: (@Sendable () throws -> any StatisticsProjection)? = nil,
        logger: Logger = Logger(label: "pullsketch.reconciler")
    ) {
        self.redis = redis
        self.database = database
        self.shardCount = shardCount
        self.configuration = configuration
        self.makeProjection = makeProjection
        self.logger = logger
        owner = "\(ProcessInfo.processInfo.hostName):\(ProcessInfo.processInfo.processIdentifier):\(UUID().uuidString.prefix(8).lowercased())"
    }

    /// Starts a pass every interval until a graceful shutdown or cancellation, then gives its
    /// leases up so another reconciler can take the shards at once. A pass that outlasts the
    /// interval is followed by the next at once: a reconciler that sleeps a whole interval after
    /// every pass gathers a pass's length more pulls into every batch, and a batch's pass grows
    /// with it. A failed pass waits a whole interval before the next.
    public func run() async throws {
        try? await cancelWhenGracefulShutdown { [self] in
            let clock = ContinuousClock()
            while true {
                var next = clock.now + configuration.interval
                do {
                    try await reconcileOnce()
                } catch {
                    logger.error("pass failed; retrying next interval", metadata: ["error": "\(error)", "owner": "\(owner)"])
                    next = clock.now + configuration.interval
                }
                try await Task.sleep(until: next, clock: clock)
            }
        }
        releaseLeases()
    }

    /// One pass over every shard. Throws the first failure; what was committed before it stays.
    @discardableResult
    public func reconcileOnce() async throws -> Pass {
        let stop = StopRequest()
        return try await withTaskCancellationHandler {
            try pass(stop)
        } onCancel: {
            stop.flag.store(true, ordering: .relaxed)
        }
    }

    /// Set when the pass's task is cancelled: the pass ends after the batch it is writing. One per
    /// pass, so a cancelled pass never stops the next one.
    private final class StopRequest: Sendable {
        let flag = Atomic<Bool>(false)
    }

    private func pass(_ stop: StopRequest) throws -> Pass {
        let started = ContinuousClock.now
        defer { metrics.recordPass(duration: ContinuousClock.now - started) }
        do {
            var pass = Pass()
            let store = try connectedStore()
            refreshFloors()
            var leased: [Int] = []
            var waited: Set<Int> = []
            // Each reconciler works at most its share of the shards, starting at its own place
            // among the reconcilers alive, and gives the rest up: several share the shards, and a
            // new one gets some at once.
            let alive = try store.announceReconciler(owner, for: configuration.leaseDuration)
            let share = (shardCount + max(alive.count, 1) - 1) / max(alive.count, 1)
            let start = (alive.firstIndex(of: owner) ?? 0) * share
            for shard in (0..<shardCount).map({ (start + $0) % shardCount }) {
                guard leased.count < share else {
                    try store.releaseLease(shard: shard, owner: owner)
                    pass.shardsLeasedElsewhere += 1
                    continue
                }
                guard try store.lease(shard: shard, owner: owner, duration: configuration.leaseDuration) else {
                    pass.shardsLeasedElsewhere += 1
                    continue
                }
                leased.append(shard)
                // One waiting batch per shard at most: while PostgreSQL is down, pulls accumulate in
                // the live batch (bounded by the keys pulled) instead of in a new batch per pass.
                try onShard(shard, failures: &pass.shardsFailed) {
                    if try !store.sealedBatches(shard: shard).isEmpty {
                        waited.insert(shard)
                    } else if let floors {
                        try store.seal(shard: shard, floor: floors[shard])
                    }
                }
            }
            try recordLag(store, shards: leased)
            // The shards' oldest batches are read first, so that those that estimate catalog keys
            // read the catalog once between them, not once each.
            let oldest = firstBatches(of: leased, store: store)
            let candidates = try catalogCandidates(for: Array(oldest.values))
            for shard in leased {
                var failures = 0
                try onShard(shard, failures: &failures) {
                    try drain(shard: shard, store: store, pass: &pass, stop: stop, oldest: oldest[shard], candidates: candidates[shard])
                    // The waiting batches are written: seal what stayed live meanwhile, in this pass.
                    if waited.contains(shard), !stop.flag.load(ordering: .relaxed), let floors, try store.sealedBatches(shard: shard).isEmpty {
                        try store.seal(shard: shard, floor: floors[shard])
                        try drain(shard: shard, store: store, pass: &pass, stop: stop)
                    }
                }
                pass.shardsFailed += failures
            }
            try pruneLedgerHourly()
            return pass
        } catch {
            metrics.recordFailure()
            if error is PostgresError { writer = nil } else { store = nil }
            throw error
        }
    }

    /// Runs one shard's step; a failure of that shard alone (a server error reply, a refused
    /// statement, a batch layout this process cannot read) is logged and counted and the pass
    /// goes on with the other shards. Losing Redis or PostgreSQL ends the pass.
    private func onShard(_ shard: Int, failures: inout Int, _ body: () throws -> Void) throws {
        do {
            try body()
        } catch let error as RedisError where error.kind == .server || error.kind == .unexpectedReply {
            shardFailed(shard, error, failures: &failures)
        } catch let error as PostgresError where error.kind != .connection {
            shardFailed(shard, error, failures: &failures)
        } catch let error as BatchStoreError {
            shardFailed(shard, error, failures: &failures)
        }
    }

    private func shardFailed(_ shard: Int, _ error: any Error, failures: inout Int) {
        failures += 1
        metrics.recordShardFailure()
        logger.error("shard skipped this pass", metadata: ["shard": "\(shard)", "error": "\(error)", "owner": "\(owner)"])
    }

    /// The oldest sealed batch of each shard. One that cannot be read is left out: `drain` meets
    /// the same error and quarantines the batch or skips the shard.
    private func firstBatches(of shards: [Int], store: BatchStore) -> [Int: SealedBatch] {
        var batches: [Int: SealedBatch] = [:]
        for shard in shards { batches[shard] = (try? store.oldestBatch(shard: shard)) ?? nil }
        return batches
    }

    /// The catalog keys the batches may have used unnamed, read once for all of them; a read that
    /// PostgreSQL refuses leaves each batch to read its own.
    private func catalogCandidates(for batches: [SealedBatch]) throws -> [Int: CatalogCandidates] {
        do {
            return try connectedWriter().catalogCandidates(for: batches)
        } catch let error as PostgresError where error.kind != .connection {
            logger.warning("shared catalog read failed; each batch reads its own", metadata: ["error": "\(error)", "owner": "\(owner)"])
            return [:]
        }
    }

    /// Writes and deletes the shard's sealed batches, oldest first, while the lease holds; `oldest`
    /// is the oldest batch read already, with the catalog keys read for it.
    private func drain(
        shard: Int, store: BatchStore, pass: inout Pass, stop: StopRequest, oldest: SealedBatch? = nil, candidates: CatalogCandidates? = nil
    ) throws {
        for number in try store.sealedBatches(shard: shard) {
            guard !stop.flag.load(ordering: .relaxed) else { return }
            guard try store.lease(shard: shard, owner: owner, duration: configuration.leaseDuration) else {
                logger.warning("lease lost to another reconciler", metadata: ["shard": "\(shard)", "owner": "\(owner)"])
                return
            }
            let batch: SealedBatch
            do {
                guard let read = try oldest.flatMap({ $0.number == number ? $0 : nil }) ?? store.readBatch(shard: shard, number: number) else { continue }
                batch = read
            } catch let error as BatchStoreError where error.kind == .malformed {
                try quarantine(shard: shard, number: number, reason: error.description, store: store, pass: &pass)
                continue
            }
            if batch.content.tailRepositoriesOverflowed {
                logger.warning(
                    "tail repository table overflowed: estimating keys of every catalog repository",
                    metadata: ["shard": "\(shard)", "batch": "\(number)"]
                )
            }
            let started = ContinuousClock.now
            let outcome: BatchWriter.Outcome
            do {
                outcome = try connectedWriter().write(batch, candidates: candidates)
            } catch let error as PostgresError where error.isCausedByData {
                try quarantine(shard: shard, number: number, reason: error.description, store: store, pass: &pass)
                continue
            }
            metrics.recordBatch(batch, outcome: outcome, duration: ContinuousClock.now - started)
            switch outcome {
            case .holdsReconciledWindows:
                try rewind(shard: shard, batch: batch, store: store)
                pass.rewound += 1
                return
            case .applied:
                pass.applied += 1
                if candidates?.batch == number { pass.sharedCatalogReads += 1 }
            case .alreadyReconciled: pass.alreadyReconciled += 1
            }
            try store.deleteBatch(shard: shard, number: number, confirming: batch.windows.mapValues(\.upperBound))
            if let floor = floors?[shard], number > floor { floors?[shard] = number }
        }
    }

    /// Keeps the batch as it is in PostgreSQL, then deletes it from Redis: kept for an operator,
    /// never counted, never silently skipped, and safe from a Redis that goes back.
    private func quarantine(shard: Int, number: Int64, reason: String, store: BatchStore, pass: inout Pass) throws {
        let content = try store.rawBatch(shard: shard, number: number)
        try connectedWriter().recordQuarantine(shard: shard, batch: number, reason: reason, content: content)
        try store.deleteBatch(shard: shard, number: number)
        pass.quarantined += 1
        metrics.recordQuarantine()
        logger.error(
            "batch quarantined: it could not be read or written; its keys are kept in quarantined_batches",
            metadata: ["shard": "\(shard)", "batch": "\(number)", "reason": "\(reason)"]
        )
    }

    /// Discards what the shard holds beyond PostgreSQL and sets its ledger to what PostgreSQL
    /// holds; the nodes send the parts they kept since then again.
    private func rewind(shard: Int, batch: SealedBatch, store: BatchStore) throws {
        let reconciled = try connectedWriter().reconciledWindows(shard: shard)
        try store.rewind(shard: shard, to: reconciled)
        logger.error(
            "redis went back to an older state: the shard is rewound to what PostgreSQL holds and the nodes send their kept parts again",
            metadata: ["shard": "\(shard)", "batch": "\(batch.number)", "nodes": "\(reconciled.count)"]
        )
    }

    /// Reads the ledger's floors; keeps the last known ones when PostgreSQL is unreachable.
    private func refreshFloors() {
        do {
            floors = try connectedWriter().lastReconciledBatches()
        } catch {
            writer = nil
            logger.warning(
                floors == nil ? "postgres unreachable: not sealing until the ledger can be read" : "postgres unreachable: sealing on",
                metadata: ["error": "\(error)"]
            )
        }
    }

    private func pruneLedgerHourly() throws {
        let now = Timestamp.now()
        if let ledgerPrunedAt, now.millisecondsSinceEpoch - ledgerPrunedAt.millisecondsSinceEpoch < Self.ledgerPruneEveryMilliseconds { return }
        let cutoff = Timestamp(millisecondsSinceEpoch: now.millisecondsSinceEpoch - Self.ledgerRetentionMilliseconds)
        let forgotten = try connectedWriter().forgetLedger(reconciledBefore: cutoff)
        ledgerPrunedAt = now
        if forgotten > 0 { logger.info("forgot old ledger rows", metadata: ["rows": "\(forgotten)"]) }
    }

    private func recordLag(_ store: BatchStore, shards: [Int]) throws {
        let now = Timestamp.now()
        var oldest: Timestamp?
        for shard in shards {
            if let sealed = try store.oldestSealTime(shard: shard) { oldest = min(oldest ?? sealed, sealed) }
        }
        metrics.recordLag(milliseconds: oldest.map { now.millisecondsSinceEpoch - $0.millisecondsSinceEpoch } ?? 0)
    }

    private func releaseLeases() {
        guard let store = try? connectedStore() else { return }
        try? store.withdrawReconciler(owner)
        for shard in 0..<shardCount {
            try? store.releaseLease(shard: shard, owner: owner)
        }
    }

    private func connectedStore() throws -> BatchStore {
        if let store { return store }
        let store = BatchStore(connection: try connectRedis(redis), shardCount: shardCount)
        self.store = store
        return store
    }

    private func connectedWriter() throws -> BatchWriter {
        if let writer { return writer }
        let connection = try PostgresConnection(database)
        let writer = BatchWriter(connection: connection, shardCount: shardCount, projection: try makeProjection?())
        self.writer = writer
        return writer
    }
}
