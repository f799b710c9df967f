import Foundation
public import PullSketchCore
public import PullSketchRedis

/// An accuracy run: a workload through N real trackers, their windows merged every merge interval
/// into per-shard live batches, sealed and reconciled every reconcile interval with the
/// reconciler's own estimation (`TailEstimator`) against a catalog that knows every key — then
/// every key compared with the exact truth. In process: the Redis and PostgreSQL steps are kept
/// in memory with the same arithmetic.
public struct AccuracyRun: Sendable {
    public var workload: AccuracyWorkload
    public var nodes: Int
    public var tracker: TrackerConfiguration
    public var mergeIntervalMilliseconds: Int64
    public var reconcileIntervalMilliseconds: Int64

    public init(
        workload: AccuracyWorkload, nodes: Int = 4, tracker: TrackerConfiguration = TrackerConfiguration(isEnabled: true),
        mergeIntervalMilliseconds: Int64 = 2_000, reconcileIntervalMilliseconds: Int64 = 5_000
    ) {
        self.workload = workload
        self.nodes = nodes
        self.tracker = tracker
        self.mergeIntervalMilliseconds = mergeIntervalMilliseconds
        self.reconcileIntervalMilliseconds = reconcileIntervalMilliseconds
    }

    /// Where the merges and batches go.
    public enum Target: Sendable {
        /// In memory, with the Redis script's and the reconciler's arithmetic: no servers.
        case inProcess
        /// A real Redis and PostgreSQL, through `BatchStore` and `BatchWriter`. Both must be empty:
        /// the run fills them.
        case live(redis: RedisEndpoint, database: String)
    }

    /// Runs the workload; `progress(pullsDone)` is called every million pulls.
    public func run(on target: Target = .inProcess, progress: (Int) -> Void = { _ in }) throws -> AccuracyResult {
        var configuration = tracker
        configuration.isEnabled = true
        let trackers = (0..<nodes).map { _ in PullTracker(configuration: configuration) }
        let keys = try workload.keySpace()
        let catalog = KeyCatalog(keys: keys, parameters: configuration.sketch, shardCount: configuration.shardCount)
        var backend: any Backend = switch target {
        case .inProcess: InMemoryBackend(parameters: configuration.sketch, shardCount: configuration.shardCount, keys: keys, catalog: catalog)
        case .live(let redis, let database): try LiveBackend(redis: redis, database: database, keys: keys, shardCount: configuration.shardCount)
        }
        var truth = KeyTable(keys: keys)
        var peakNodeMemory = 0
        var pulls = 0

        func mergeAll() throws {
            for (node, tracker) in trackers.enumerated() {
                let window = tracker.drain()
                peakNodeMemory = max(peakNodeMemory, tracker.memoryFootprint())
                if !window.isEmpty { try backend.merge(window, node: node) }
            }
        }
        // Intervals count from the first pull's time.
        var nextMerge = Int64.max, nextReconcile = Int64.max
        try workload.forEachPull { index, pull in
            let time = pull.time.millisecondsSinceEpoch
            if index == 0 {
                nextMerge = time + mergeIntervalMilliseconds
                nextReconcile = time + reconcileIntervalMilliseconds
            }
            while time >= nextMerge {
                try mergeAll()
                nextMerge += mergeIntervalMilliseconds
            }
            while time >= nextReconcile {
                try backend.reconcile()
                nextReconcile += reconcileIntervalMilliseconds
            }
            trackers[index % nodes].record(pull)
            truth.add(pull, rule: configuration.countingRule, keys: keys)
            pulls = index + 1
            if pulls % 1_000_000 == 0 { progress(pulls) }
        }
        guard pulls > 0 else { throw ReportError("\(workload.summary): no pulls to compare") }
        try mergeAll()
        try backend.reconcile()
        var traffic = try backend.traffic()
        traffic.peakNodeMemory = peakNodeMemory
        return AccuracyResult(run: self, pulls: pulls, keys: keys, truth: truth, stored: try backend.stored(), traffic: traffic)
    }
}

/// Where an accuracy run's pulls come from.
public enum AccuracyWorkload: Sendable {
    case synthetic(SyntheticWorkload)
    case replay(ReplayWorkload)

    /// Every key the run can touch: the catalog the reconciler knows.
    func keySpace() throws -> KeySpace {
        switch self {
        case .synthetic(let workload): .synthetic(workload)
        case .replay(let replay): .named(try replay.scan())
        }
    }

    func forEachPull(_ body: (Int, PullEvent) throws -> Void) throws {
        switch self {
        case .synthetic(let workload): try workload.forEachPull(body)
        case .replay(let replay): try replay.forEachPull(body)
        }
    }

    var summary: String {
        switch self {
        case .synthetic(let workload): workload.summary
        case .replay(let replay): "replay of \(replay.path)"
        }
    }
}

/// Where an accuracy run's merges and batches go.
protocol Backend {
    mutating func merge(_ window: Window, node: Int) throws
    /// Seals every shard and reconciles every sealed batch.
    mutating func reconcile() throws
    func stored() throws -> StoredTable
    func traffic() throws -> Traffic
}

/// Live batches and statistics in memory.
struct InMemoryBackend: Backend {
    private var shards: [InMemoryShard]
    private var table: StoredTable
    private var counted = Traffic()
    private let parameters: SketchParameters
    private let keys: KeySpace
    private let catalog: KeyCatalog

    init(parameters: SketchParameters, shardCount: Int, keys: KeySpace, catalog: KeyCatalog) {
        shards = (0..<shardCount).map { InMemoryShard(shard: $0, parameters: parameters) }
        self.parameters = parameters
        self.keys = keys
        self.catalog = catalog
        table = StoredTable(keys: keys)
    }

    mutating func merge(_ window: Window, node: Int) throws {
        counted.mergeCommands += window.shards.filter { !$0.isEmpty }.count
        counted.payloadBytes += window.approximatePayloadBytes
        for part in window.shards where !part.isEmpty { try shards[part.shard].merge(part) }
    }

    mutating func reconcile() throws {
        for shard in shards.indices {
            guard let batch = shards[shard].seal() else { continue }
            counted.batches += 1
            counted.rowsWritten += try table.apply(batch, parameters: parameters, shardCount: shards.count, keys: keys, catalog: catalog)
        }
    }

    func stored() throws -> StoredTable { table }
    func traffic() throws -> Traffic { counted }
}

/// Work the run caused outside the trackers. In process, merge commands and payload bytes are
/// counted per shard part; live, they are Redis's own `INFO stats` counters (every command).
struct Traffic {
    var mergeCommands = 0
    var payloadBytes = 0
    var batches = 0
    var rowsWritten = 0
    var peakNodeMemory = 0
}
