import Foundation
public import PullSketchCore
public import PullSketchRedis

/// An accuracy run: a workload through N real trackers, their windows merged every merge interval
/// into per-shard live batches, sealed and reconciled every reconcile interval with the
/// reconciler's own estimation (`TailEstimator`) against a catalog that knows every key — then
/// every key compared with the exact truth. In process: the Redis and PostgreSQL steps are kept
/// in memory with the same arithmetic.
public struct AccuracyRun: Sendable {
    public var workload: ReportWorkload
    public var nodes: Int
    public var tracker: TrackerConfiguration
    public var mergeIntervalMilliseconds: Int64
    public var reconcileIntervalMilliseconds: Int64

    public init(
        workload: ReportWorkload, nodes: Int = 4, tracker: TrackerConfiguration = TrackerConfiguration(isEnabled: true),
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
        let catalog = Catalog(workload: workload, parameters: configuration.sketch, shardCount: configuration.shardCount)
        var backend: any Backend = switch target {
        case .inProcess: InMemoryBackend(parameters: configuration.sketch, shardCount: configuration.shardCount, catalog: catalog)
        case .live(let redis, let database): try LiveBackend(redis: redis, database: database, workload: workload, shardCount: configuration.shardCount)
        }
        var truth = KeyTable(count: workload.catalogKeys)
        var peakNodeMemory = 0
        let repositories = (0..<workload.repositories).map { try! RepositoryName(ReportWorkload.repositoryName($0)) }

        func mergeAll() throws {
            for (node, tracker) in trackers.enumerated() {
                let window = tracker.drain()
                peakNodeMemory = max(peakNodeMemory, tracker.memoryFootprint())
                if !window.isEmpty { try backend.merge(window, node: node) }
            }
        }
        var nextMerge = ReportWorkload.start.millisecondsSinceEpoch + mergeIntervalMilliseconds
        var nextReconcile = ReportWorkload.start.millisecondsSinceEpoch + reconcileIntervalMilliseconds
        try workload.forEachPull { index, key, time in
            while time.millisecondsSinceEpoch >= nextMerge {
                try mergeAll()
                nextMerge += mergeIntervalMilliseconds
            }
            while time.millisecondsSinceEpoch >= nextReconcile {
                try backend.reconcile()
                nextReconcile += reconcileIntervalMilliseconds
            }
            trackers[index % nodes].record(PullEvent(
                repository: repositories[workload.repository(of: key)], reference: .tag(try TagName(ReportWorkload.tagName(key))),
                method: .get, servedDigest: try Digest(ReportWorkload.digest(key)), time: time
            ))
            truth.add(key, at: time)
            if (index + 1) % 1_000_000 == 0 { progress(index + 1) }
        }
        try mergeAll()
        try backend.reconcile()
        var traffic = try backend.traffic()
        traffic.peakNodeMemory = peakNodeMemory
        return AccuracyResult(run: self, truth: truth, stored: try backend.stored(keys: workload.catalogKeys), traffic: traffic)
    }
}

/// Where an accuracy run's merges and batches go.
protocol Backend {
    mutating func merge(_ window: Window, node: Int) throws
    /// Seals every shard and reconciles every sealed batch.
    mutating func reconcile() throws
    func stored(keys: Int) throws -> StoredTable
    func traffic() throws -> Traffic
}

/// Live batches and statistics in memory.
struct InMemoryBackend: Backend {
    private var shards: [InMemoryShard]
    private var table: StoredTable
    private var counted = Traffic()
    private let parameters: SketchParameters
    private let catalog: Catalog

    init(parameters: SketchParameters, shardCount: Int, catalog: Catalog) {
        shards = (0..<shardCount).map { InMemoryShard(shard: $0, parameters: parameters) }
        self.parameters = parameters
        self.catalog = catalog
        table = StoredTable(count: catalog.tagHashes.count)
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
            counted.rowsWritten += try table.apply(batch, parameters: parameters, shardCount: shards.count, catalog: catalog)
        }
    }

    func stored(keys: Int) throws -> StoredTable { table }
    func traffic() throws -> Traffic { counted }
}

/// Every key's hash, by shard and repository: what the reconciler enumerates for tail estimates.
struct Catalog {
    /// [shard][repository] → key indices.
    let keysByShard: [[[Int]]]
    let tagHashes: [KeyHash]
    let manifestHashes: [KeyHash]

    init(workload: ReportWorkload, parameters: SketchParameters, shardCount: Int) {
        var byShard = Array(repeating: Array(repeating: [Int](), count: workload.repositories), count: shardCount)
        var tags: [KeyHash] = [], manifests: [KeyHash] = []
        tags.reserveCapacity(workload.catalogKeys)
        manifests.reserveCapacity(workload.catalogKeys)
        for key in 0..<workload.catalogKeys {
            let repository = ReportWorkload.repositoryName(workload.repository(of: key))
            let tag = KeyHash(kind: .tag, repository: repository, reference: ReportWorkload.tagName(key), seed: parameters.seed)
            tags.append(tag)
            manifests.append(KeyHash(kind: .manifest, repository: repository, reference: ReportWorkload.digest(key), seed: parameters.seed))
            // A key's tag and manifest may fall in different shards: list it under both.
            byShard[tag.shard(count: shardCount)][workload.repository(of: key)].append(key)
            let manifestShard = manifests[key].shard(count: shardCount)
            if manifestShard != tag.shard(count: shardCount) { byShard[manifestShard][workload.repository(of: key)].append(key) }
        }
        keysByShard = byShard
        tagHashes = tags
        manifestHashes = manifests
    }
}

/// The truth: pulls and last pull per key (tag and manifest alike: every pull is a GET by tag).
struct KeyTable {
    var pulls: [UInt64]
    var last: [Int64]

    init(count: Int) {
        pulls = Array(repeating: 0, count: count)
        last = Array(repeating: .min, count: count)
    }

    mutating func add(_ key: Int, at time: Timestamp) {
        pulls[key] += 1
        last[key] = max(last[key], time.millisecondsSinceEpoch)
    }
}

/// What the reconciler stored per key and kind: count (upper bound), error, last pulled.
struct StoredTable {
    var count: [[UInt64]]
    var error: [[UInt64]]
    var last: [[Int64]]

    init(count keys: Int) {
        count = Array(repeating: Array(repeating: 0, count: keys), count: 2)
        error = count
        last = Array(repeating: Array(repeating: .min, count: keys), count: 2)
    }

    /// Applies one sealed batch as `BatchWriter` does; returns the rows it would upsert.
    mutating func apply(_ batch: ShardWindow, parameters: SketchParameters, shardCount: Int, catalog: Catalog) throws -> Int {
        var rows = 0
        for entry in batch.hotEntries {
            let kind = entry.kind == .tag ? 0 : 1
            guard let key = entry.kind == .tag ? ReportWorkload.key(ofTag: entry.reference) : ReportWorkload.key(ofDigest: entry.reference) else { continue }
            count[kind][key] += CountingRule.resolutions.pullCount(kind: entry.kind, fetches: entry.fetches, checks: entry.checks)
            last[kind][key] = max(last[kind][key], entry.lastSeen.millisecondsSinceEpoch)
            rows += 1
        }
        guard let estimator = try TailEstimator(batch, parameters: parameters, shardCount: shardCount) else { return rows }
        let byRepository = catalog.keysByShard[batch.shard]
        let repositories = estimator.repositories.map { $0.compactMap { Int($0.dropFirst("report/repo".count)) } } ?? Array(byRepository.indices)
        for repository in repositories where repository < byRepository.count {
            let name = ReportWorkload.repositoryName(repository)
            for key in byRepository[repository] {
                for (kind, hash) in [(0, catalog.tagHashes[key]), (1, catalog.manifestHashes[key])] {
                    guard let estimate = estimator.estimate(hash, repository: name) else { continue }
                    count[kind][key] += estimate.pulls
                    error[kind][key] += estimator.bound
                    last[kind][key] = max(last[kind][key], estimate.lastPulled.millisecondsSinceEpoch)
                    rows += 1
                }
            }
        }
        return rows
    }
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
