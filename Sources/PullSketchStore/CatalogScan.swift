public import PullSketchCore
import PullSketchPostgres

/// The catalog keys a sealed batch may have used in its tail without naming them, read before its
/// transaction in one read with other shards' batches (`BatchWriter.catalogCandidates(for:)`).
public struct CatalogCandidates: Sendable {
    public let shard: Int
    /// The batch they were read for; another batch of the shard reads the catalog itself.
    public let batch: Int64
    var keys: [KeyKind: [(key: CatalogKey, hash: KeyHash)]] = [:]

    var count: Int { keys.values.reduce(0) { $0 + $1.count } }
}

extension BatchWriter {
    /// Catalog keys one read for several batches holds at most: about 40 bytes each, and a name's
    /// length when it is longer than 15 bytes.
    public static let catalogKeysHeldAtMost = 500_000

    /// Reads the catalog once for the batches (one per shard at most) that need it, where each
    /// would read it in its own transaction: every key belongs to one shard, so one read serves
    /// them all. Empty when fewer than two of them read the catalog. A key the catalog gains
    /// before a batch's transaction is missed as it is when it comes a moment after that batch's
    /// own read, except the batch's exact keys, which its write adds. At most `limit` keys are
    /// held: past it, the batch holding the most is left to read its own.
    public func catalogCandidates(for batches: [SealedBatch], holdingAtMost limit: Int = catalogKeysHeldAtMost) throws -> [Int: CatalogCandidates] {
        var estimators: [Int: TailEstimator] = [:], numbers: [Int: Int64] = [:]
        for batch in batches {
            // A batch whose sketch cannot be read fails in its own write, and is quarantined there.
            guard let estimator = try? TailEstimator(batch.content, parameters: batch.parameters, shardCount: shardCount),
                estimator.catalogRepositories?.isEmpty != true
            else { continue }
            estimators[batch.content.shard] = estimator
            numbers[batch.content.shard] = batch.number
        }
        guard estimators.count > 1 else { return [:] }
        var candidates = numbers.reduce(into: [Int: CatalogCandidates]()) { $0[$1.key] = CatalogCandidates(shard: $1.key, batch: $1.value) }
        var held = 0
        try connection.transaction {
            let scan = try CatalogScan(estimators, shardCount: shardCount, connection: connection)
            for kind in KeyKind.allCases {
                try scan.forEachCandidate(kind) { shard, key, hash in
                    guard candidates[shard] != nil else { return }
                    while held >= limit, let largest = candidates.values.max(by: { $0.count < $1.count }) {
                        candidates[largest.shard] = nil
                        held -= largest.count
                        if largest.shard == shard { return }
                    }
                    candidates[shard]?.keys[kind, default: []].append((key, hash))
                    held += 1
                }
            }
        }
        return candidates
    }
}

/// One read of the catalog for the tail estimators of one or more shards' batches: the keys of
/// the repositories each batch used unnamed (every repository after a tail table overflow), each
/// offered to the estimator of its shard.
struct CatalogScan {
    private let connection: PostgresConnection
    private let estimators: [Int: TailEstimator]
    private let shardCount: Int
    private let seeds: [UInt64]
    /// Repository id → its name, the name's hash `n` and the shards whose batches read it.
    private let repositories: [Int64: (name: String, hash: UInt64, shards: Set<Int>)]

    /// Catalog rows fetched, and estimates written (`BatchWriter`), per statement.
    static let keysPerStatement = 50_000

    /// `estimators` by shard of `shardCount`; it reads in the transaction `connection` is in.
    init(_ estimators: [Int: TailEstimator], shardCount: Int, connection: PostgresConnection) throws {
        self.connection = connection
        self.estimators = estimators
        self.shardCount = shardCount
        seeds = Array(Set(estimators.values.map(\.seed)))
        // A repository whose tail keys were all named had no other key used in the tail: reading
        // its catalog keys would only add collisions.
        let readsAll = estimators.filter { $0.value.catalogRepositories == nil }.keys
        var shardsOf: [String: Set<Int>] = [:]
        for (shard, estimator) in estimators {
            for name in estimator.catalogRepositories ?? [] { shardsOf[name, default: []].insert(shard) }
        }
        guard readsAll.isEmpty else {
            let rows = try connection.query("SELECT id, name FROM repositories").namedRows
            repositories = try Self.byID(rows) { shardsOf[$0, default: []].union(readsAll) }
            return
        }
        guard !shardsOf.isEmpty else {
            repositories = [:]
            return
        }
        let rows = try connection.query("SELECT id, name FROM repositories WHERE name = ANY($1::text[])", [PostgresArray.literal(Array(shardsOf.keys))]).namedRows
        repositories = try Self.byID(rows) { shardsOf[$0] ?? [] }
    }

    private static func byID(_ rows: [PostgresRow], shards: (String) -> Set<Int>) throws -> [Int64: (name: String, hash: UInt64, shards: Set<Int>)] {
        try Dictionary(uniqueKeysWithValues: rows.map { row in
            let name: String = try row.decode("name")
            return (try row.decode("id"), (name, KeyHash.nameHash(name), shards(name)))
        })
    }

    /// Calls `found` with the shard, the key and its hash of every live catalog key of `kind` that
    /// the batch of its shard may have used unnamed (`TailEstimator.mayHaveUsedUnnamed`). Read in
    /// binary and hashed in place: a catalog of millions of keys (a flood that ran out of names)
    /// costs a hash per key, and strings only for the few that pass.
    func forEachCandidate(_ kind: KeyKind, _ found: (Int, CatalogKey, KeyHash) throws -> Void) throws {
        guard !repositories.isEmpty else { return }
        let (table, column) = kind == .tag ? ("catalog_tags", "tag") : ("catalog_manifests", "digest")
        try connection.forEachBatch(
            "SELECT repository_id, \(column) AS reference FROM \(table) WHERE deleted_at IS NULL AND repository_id = ANY($1::bigint[])",
            [PostgresArray.literal(Array(repositories.keys))], batchSize: Self.keysPerStatement
        ) { rows in
            let repositoryID = try rows.column("repository_id", .int8), reference = try rows.column("reference", .text)
            for row in 0..<rows.count {
                guard let id = try rows.int64(row, repositoryID), let repository = repositories[id], let name = try rows.utf8(row, reference) else {
                    throw PostgresError(.decoding, "a catalog row of a repository not asked for, or without a name")
                }
                let nameHash = KeyHash.nameHash(utf8: name)
                for seed in seeds {
                    let hash = KeyHash(kind: kind, repositoryHash: repository.hash, referenceHash: nameHash, seed: seed)
                    let shard = hash.shard(count: shardCount)
                    guard repository.shards.contains(shard), let estimator = estimators[shard], estimator.seed == seed,
                        estimator.mayHaveUsedUnnamed(hash)
                    else { continue }
                    try found(shard, CatalogKey(repository: repository.name, name: String(decoding: name, as: UTF8.self)), hash)
                }
            }
        }
    }
}
