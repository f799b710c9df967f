import PullSketchCore
import PullSketchPostgres
import PullSketchReconciler
import PullSketchStore
import PullSketchTestSupport
import Testing

/// Tail pulls of keys the catalog has never heard of: a flood of new tags pulled before (or
/// without) their push, as a mirror sync or a burst of CI makes.
@Suite(.postgresServer) struct TailNameTests {
    /// Rounds of a flood into one node, as the issue measured it scaled down: every round pulls
    /// each of `tags` tags once by tag, and their `tags / 8` manifests 8 times each; windows of
    /// `window` pulls are merged as a flusher would, and a reconciler pass follows each round.
    func flood(_ pipeline: Pipeline, tracker: PullTracker, rounds: Int, tags: Int, window: Int) async throws -> UInt64 {
        let reconciler = pipeline.reconciler()
        let node = "flood-node"
        var unnamed: UInt64 = 0
        var time: Int64 = 1_800_000_000_000
        var recorded = 0
        let repositories = try (0..<Pipeline.repositories).map { try RepositoryName("mirror/app\($0)") }
        let tagNames = try (0..<tags).map { try TagName("t\($0)") }
        let digests = (0..<(tags + 7) / 8).map(Pipeline.digest)
        for _ in 0..<rounds {
            for tag in 0..<tags {
                time += 1
                let event = PullEvent(
                    repository: repositories[tag % Pipeline.repositories],
                    reference: .tag(tagNames[tag]),
                    method: .get,
                    servedDigest: digests[tag / 8],
                    time: Timestamp(millisecondsSinceEpoch: time)
                )
                pipeline.record(event, into: tracker)
                recorded += 1
                if recorded % window == 0 {
                    let drained = tracker.drain()
                    unnamed += drained.unnamedPulls
                    try pipeline.store.merge(drained, node: node)
                }
            }
            try await reconciler.reconcileOnce()
        }
        let last = tracker.drain()
        unnamed += last.unnamedPulls
        try pipeline.store.merge(last, node: node)
        try await reconciler.reconcileOnce()
        return unnamed
    }

    func unattributed(_ pipeline: Pipeline) throws -> [String: Int64] {
        let rows = try pipeline.connection.query(
            "SELECT coalesce(r.name, ''), a.pulls FROM unattributed_pulls a LEFT JOIN repositories r ON r.id = a.repository_id"
        ).rows
        return Dictionary(uniqueKeysWithValues: rows.map { ($0[0]!, Int64($0[1]!)!) })
    }

    @Test func everyKeyOfAFloodTheCatalogNeverHeardOfIsCountedAtLeastInFull() async throws {
        let pipeline = try Pipeline(seed: 30)
        let tracker = PullTracker(
            configuration: TrackerConfiguration(isEnabled: true, hotCapacity: 256, shardCount: Pipeline.shardCount)
        )
        let unnamed = try await flood(pipeline, tracker: tracker, rounds: 5, tags: 6_000, window: 2_000)
        #expect(unnamed == 0, "every tail key fit its window's names")
        let stored = try pipeline.rows()
        var short: [String] = []
        for (key, truth) in pipeline.truth {
            guard let row = stored[key], row.count >= truth.count, row.last >= truth.last, row.used >= truth.used else {
                short.append("\(key): \(stored[key].map(\.description) ?? "none") for \(truth)")
                continue
            }
        }
        #expect(short.isEmpty, "\(short.count) keys short, e.g. \(short.prefix(3))")
        #expect(stored.values.filter { $0.error > 0 }.count > pipeline.truth.count / 2, "the flood did not reach the tail")
        #expect(try unattributed(pipeline).isEmpty)
        let catalog = try pipeline.connection.query("SELECT (SELECT count(*) FROM catalog_tags) + (SELECT count(*) FROM catalog_manifests)")
        #expect(catalog.rows == [[String(pipeline.truth.count)]], "every key pulled is in the catalog")
    }

    @Test func pullsOfKeysWhoseNamesDidNotFitAreCountedAsUnattributedPerRepository() async throws {
        let pipeline = try Pipeline(seed: 31)
        let tracker = PullTracker(
            configuration: TrackerConfiguration(isEnabled: true, hotCapacity: 256, shardCount: Pipeline.shardCount, tailNameCapacity: 512)
        )
        let unnamed = try await flood(pipeline, tracker: tracker, rounds: 2, tags: 3_000, window: 1_500)
        #expect(unnamed > 0, "the names overflowed")
        let unattributed = try unattributed(pipeline)
        #expect(UInt64(unattributed.values.reduce(0, +)) == unnamed, "every unnamed pull is unattributed, once")
        // What a key lacks of its truth is within its repository's unattributed figure.
        let stored = try pipeline.rows()
        var shortfall: [String: Int64] = [:]
        for (key, truth) in pipeline.truth {
            let repository = String(key.split(separator: "|")[1])
            shortfall[repository, default: 0] += max(0, truth.count - (stored[key]?.count ?? 0))
        }
        for (repository, missing) in shortfall where missing > 0 {
            #expect(missing <= unattributed[repository] ?? 0, "\(repository) lacks \(missing) pulls, unattributed \(unattributed[repository] ?? 0)")
        }
    }

    /// Keys the catalog lists, pulled with no room for their names: each of the four shards' batches
    /// estimates catalog keys, and the pass reads the catalog once for all of them. Every key gets
    /// at least its pulls, dated no earlier than its last pull and use.
    @Test func catalogKeysPulledUnnamedInEveryShardAreNeverUndercounted() async throws {
        let pipeline = try Pipeline(seed: 32)
        let catalog = Catalog(connection: try pipeline.connection)
        let repositories = (0..<Pipeline.repositories).flatMap { Array(repeating: "team/app\($0)", count: 200) }
        try catalog.register(.tag, repositories: repositories, references: (0..<repositories.count).map { "v\($0 % 200)" })
        try catalog.register(.manifest, repositories: repositories, references: (0..<repositories.count).map { Pipeline.digest($0 % 200).value })
        let tracker = PullTracker(configuration: TrackerConfiguration(
            isEnabled: true, hotCapacity: 0, shardCount: Pipeline.shardCount, tailNameCapacity: 0
        ))
        try pipeline.record(3_000, into: tracker)
        let window = tracker.drain()
        #expect(window.shards.allSatisfy { $0.tailRepositories.contains { $0.unnamedUses > 0 } }, "every shard used keys unnamed")
        try pipeline.store.merge(window, node: "node")
        let pass = try await pipeline.reconciler().reconcileOnce()
        #expect(pass.applied == 4 && pass.sharedCatalogReads == 4, "each shard's batch took the keys of the one read")
        let stored = try pipeline.rows()
        let short = pipeline.truth.filter { key, truth in
            guard let row = stored[key] else { return true }
            return row.count < truth.count || row.last < truth.last || row.used < truth.used
        }
        #expect(short.count == 0, "keys short, e.g. \(short.keys.sorted().prefix(3))")
    }
}
