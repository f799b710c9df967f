import Foundation
public import PullSketchCore

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

    /// Runs the workload; `progress(pullsDone)` is called every million pulls.
    public func run(progress: (Int) -> Void = { _ in }) throws -> AccuracyResult {
        var configuration = tracker
        configuration.isEnabled = true
        let trackers = (0..<nodes).map { _ in PullTracker(configuration: configuration) }
        let parameters = configuration.sketch
        let shardCount = configuration.shardCount
        var shards = (0..<shardCount).map { InMemoryShard(shard: $0, parameters: parameters) }
        let catalog = Catalog(workload: workload, parameters: parameters, shardCount: shardCount)
        var truth = KeyTable(count: workload.catalogKeys)
        var stored = StoredTable(count: workload.catalogKeys)
        var traffic = Traffic()
        let repositories = (0..<workload.repositories).map { try! RepositoryName(ReportWorkload.repositoryName($0)) }

        func mergeAll() throws {
            for tracker in trackers {
                let window = tracker.drain()
                traffic.peakNodeMemory = max(traffic.peakNodeMemory, tracker.memoryFootprint())
                guard !window.isEmpty else { continue }
                traffic.mergeCommands += window.shards.filter { !$0.isEmpty }.count
                traffic.payloadBytes += window.approximatePayloadBytes
                for part in window.shards where !part.isEmpty { try shards[part.shard].merge(part) }
            }
        }
        func reconcileAll() throws {
            for shard in 0..<shardCount {
                guard let batch = shards[shard].seal() else { continue }
                traffic.batches += 1
                traffic.rowsWritten += try stored.apply(batch, parameters: parameters, shardCount: shardCount, catalog: catalog)
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
                try reconcileAll()
                nextReconcile += reconcileIntervalMilliseconds
            }
            let repository = repositories[workload.repository(of: key)]
            trackers[index % nodes].record(PullEvent(
                repository: repository, reference: .tag(try TagName(ReportWorkload.tagName(key))), method: .get,
                servedDigest: try Digest(ReportWorkload.digest(key)), time: time
            ))
            truth.add(key, at: time)
            if (index + 1) % 1_000_000 == 0 { progress(index + 1) }
        }
        try mergeAll()
        try reconcileAll()
        return AccuracyResult(run: self, truth: truth, stored: stored, traffic: traffic)
    }
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

/// Work the run caused outside the trackers.
struct Traffic {
    var mergeCommands = 0
    var payloadBytes = 0
    var batches = 0
    var rowsWritten = 0
    var peakNodeMemory = 0
}
