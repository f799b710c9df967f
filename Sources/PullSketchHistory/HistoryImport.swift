import Foundation
public import PullSketchCore
import PullSketchPostgres
public import PullSketchRedis
public import PullSketchStore

/// Imports past pulls through the path live pulls take: each chunk of the source is recorded by a
/// tracker, drained as one window numbered by the chunk (`index + 1`) and merged into Redis as a
/// node named after the source (`import:<identity>`); the running reconciler writes it to
/// PostgreSQL like any window. Counting once follows from the windows' ledgers: a chunk part is
/// sent to a shard only when neither PostgreSQL (`reconciled_windows`) nor the shard's Redis
/// ledger has it, so re-running an import, or resuming one that crashed, sends what is missing and
/// nothing else. The import ends when PostgreSQL holds every part it sent; if Redis lost parts
/// meanwhile (a rewind), it sends them again. Then the span of the pulls it read is recorded as
/// history PullSketch knows (`PullKnowledge`).
///
/// Pulls at or after `cutover` are skipped: live ingestion counts those.
public struct HistoryImport: Sendable {
    public let source: any HistorySource
    public let redis: RedisEndpoint
    public let database: BlockingDatabase
    public let tracker: TrackerConfiguration
    public let cutover: Timestamp
    /// How long to wait for PostgreSQL to hold what was sent before giving up. Default 10 minutes.
    public var settleTimeout: Duration = .seconds(600)

    public init(source: any HistorySource, redis: RedisEndpoint, database: BlockingDatabase, tracker: TrackerConfiguration, cutover: Timestamp) {
        self.source = source
        self.redis = redis
        self.database = database
        var tracker = tracker
        tracker.isEnabled = true
        // Exact: a chunk's keys all fit (a pull touches at most two).
        tracker.hotCapacity = max(tracker.hotCapacity, 2 * source.chunkSize)
        self.tracker = tracker
        self.cutover = cutover
    }

    /// What an import did.
    public struct Progress: Sendable {
        /// Chunks read by this run, and the index of the next chunk.
        public var chunks = 0
        public var nextChunk = 0
        public var positions = 0
        public var pulls = 0
        /// Pulls of chunks PostgreSQL or Redis already had: not sent again.
        public var alreadyImported = 0
        public var afterCutover = 0
        public var ignored = 0
        public var invalid = 0
        /// Where the first `keptInvalidExamples` invalid entries are and what is wrong with each.
        public var invalidExamples: [String] = []
        public static let keptInvalidExamples = 10
        public let started = ContinuousClock.now

        public var rowsPerSecond: Double {
            let elapsed = ContinuousClock.now - started
            let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
            return seconds > 0 ? Double(positions) / seconds : 0
        }

        public var line: String {
            "\(positions) rows, \(pulls) pulls imported, \(alreadyImported) already imported, \(afterCutover) after the cutover, "
                + "\(ignored) ignored, \(invalid) invalid, \(Int(rowsPerSecond)) rows/s"
        }
    }

    public var node: String { PullKnowledge.importNodePrefix + source.identity }

    public func run(report: @Sendable (Progress) -> Void = { _ in }) async throws -> Progress {
        let store = BatchStore(connection: try connectRedis(redis), shardCount: tracker.shardCount)
        var progress = Progress()
        var done = try await holds(store)
        var sent = [UInt64](repeating: 0, count: tracker.shardCount)
        var index = Int(done.min() ?? 0)
        /// The span of the pulls read before the cutover, reaching the cutover when the source
        /// held later pulls: the history PostgreSQL knows once it holds it.
        var earliest: Timestamp?
        var until: Timestamp?
        while true {
            while let chunk = try await source.chunk(index) {
                let sequence = UInt64(index + 1)
                progress.chunks += 1
                progress.positions += chunk.positions
                progress.ignored += chunk.ignored
                progress.invalid += chunk.invalid
                progress.invalidExamples += chunk.invalidExamples.prefix(Progress.keptInvalidExamples - progress.invalidExamples.count)
                let recorder = PullTracker(configuration: tracker)
                for pull in chunk.pulls {
                    if pull.time >= cutover {
                        progress.afterCutover += 1
                        until = cutover
                    } else {
                        recorder.record(pull)
                        earliest = min(earliest ?? pull.time, pull.time)
                        until = max(until ?? pull.time, pull.time)
                    }
                }
                var window = recorder.drain()
                window.sequence = sequence
                let parts = window.shards.filter { !$0.isEmpty && done[$0.shard] < sequence }
                let skipped = window.shards.filter { !$0.isEmpty && done[$0.shard] >= sequence }
                progress.alreadyImported += Int(skipped.reduce(0) { $0 + $1.pulls })
                let replies = try store.merge(
                    parts.map { PartMerge(sequence: sequence, expected: 0, part: $0) }, parameters: window.parameters, node: node
                )
                for (part, reply) in zip(parts, replies) {
                    switch reply.outcome {
                    case .applied: progress.pulls += Int(part.pulls)
                    case .alreadyApplied: progress.alreadyImported += Int(part.pulls)
                    case .rewound: throw ImportError("shard \(part.shard) answered 'rewound' to a merge expecting nothing")
                    case .refused:
                        throw ImportError("shard \(part.shard): redis refused the merge (over its maxmemory, a read-only replica, loading); import again once it takes writes")
                    }
                    done[part.shard] = sequence
                    sent[part.shard] = sequence
                }
                index += 1
                progress.nextChunk = index
                report(progress)
            }
            // Wait until PostgreSQL holds every part sent; a shard whose Redis went back is sent again.
            guard let restart = try await settle(store, sent: sent) else {
                if let earliest, let until {
                    let node = self.node
                    try await database.run { try PullKnowledge(connection: $0).recordImport(node, earliestPull: earliest, until: until) }
                }
                return progress
            }
            done = try await holds(store)
            index = restart
        }
    }

    /// Per shard, the last chunk that PostgreSQL or the shard's Redis ledger has of this source.
    private func holds(_ store: BatchStore) async throws -> [UInt64] {
        zip(try await reconciled(), try ledgers(store)).map { max($0, $1) }
    }

    /// Per shard, the last chunk PostgreSQL holds of this source (`reconciled_windows`).
    private func reconciled() async throws -> [UInt64] {
        let node = self.node, shards = tracker.shardCount
        return try await database.run { connection in
            let writer = BatchWriter(connection: connection, shardCount: shards)
            return try (0..<shards).map { try writer.reconciledWindows(shard: $0)[node] ?? 0 }
        }
    }

    /// The Redis ledger per shard, asked with an empty part of sequence 0.
    private func ledgers(_ store: BatchStore) throws -> [UInt64] {
        let probes = (0..<tracker.shardCount).map { PartMerge(sequence: 0, expected: 0, part: ShardWindow(shard: $0)) }
        return try store.merge(probes, parameters: tracker.sketch, node: node).map(\.ledger)
    }

    /// Nil once PostgreSQL holds every part sent; the chunk index to send from again when a
    /// shard's Redis lost parts PostgreSQL does not hold.
    private func settle(_ store: BatchStore, sent: [UInt64]) async throws -> Int? {
        let deadline = ContinuousClock.now + settleTimeout
        let shards = tracker.shardCount
        while true {
            let held = try await reconciled()
            if zip(held, sent).allSatisfy({ $0 >= $1 }) { return nil }
            let ledger = try ledgers(store)
            let lost = (0..<shards).filter { ledger[$0] < sent[$0] && held[$0] < sent[$0] }
            if let first = lost.map({ held[$0] }).min() { return Int(first) }
            guard ContinuousClock.now < deadline else {
                throw ImportError("PostgreSQL does not hold the imported chunks after \(settleTimeout): is a reconciler running?")
            }
            try await Task.sleep(for: .milliseconds(500))
        }
    }
}

public struct ImportError: Error, CustomStringConvertible {
    public let description: String

    public init(_ description: String) {
        self.description = description
    }
}
