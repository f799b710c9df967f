import PullSketchCore

/// Every key's hash, by shard and repository: what the reconciler enumerates for tail estimates.
struct Catalog {
    /// [shard][repository] → keys as `number << 1 | kind slot`.
    let keysByShard: [[[Int]]]
    /// [kind slot][number] → hash.
    let hashes: [[KeyHash]]

    init(keys: KeySpace, parameters: SketchParameters, shardCount: Int) {
        var byShard = Array(repeating: Array(repeating: [Int](), count: keys.repositoryCount), count: shardCount)
        var hashes: [[KeyHash]] = [[], []]
        for kind in KeyKind.allCases {
            hashes[kind.slot].reserveCapacity(keys.count(kind))
            keys.forEachKey(kind) { number, repository, reference in
                let hash = KeyHash(kind: kind, repository: keys.repositoryName(repository), reference: reference, seed: parameters.seed)
                hashes[kind.slot].append(hash)
                byShard[hash.shard(count: shardCount)][repository].append(number << 1 | kind.slot)
            }
        }
        keysByShard = byShard
        self.hashes = hashes
    }
}

/// The truth: pulls and last pull per key, counted as DESIGN §1 defines a pull (`CountingRule`).
struct KeyTable {
    /// [kind slot][number]
    var pulls: [[UInt64]]
    var last: [[Int64]]

    init(keys: KeySpace) {
        pulls = KeyKind.allCases.map { Array(repeating: 0, count: keys.count($0)) }
        last = KeyKind.allCases.map { Array(repeating: .min, count: keys.count($0)) }
    }

    mutating func add(_ pull: PullEvent, keys: KeySpace) {
        let rule = CountingRule.resolutions
        for update in rule.updates(for: pull) {
            let isFetch = update.counter == .fetch
            guard rule.pullCount(kind: update.kind, fetches: isFetch ? 1 : 0, checks: isFetch ? 0 : 1) > 0 else { continue }
            guard let key = keys.index(update.kind, repository: pull.repository.value, reference: update.reference) else {
                preconditionFailure("a pull of a key outside the run's key space")
            }
            pulls[update.kind.slot][key] += 1
            last[update.kind.slot][key] = max(last[update.kind.slot][key], pull.time.millisecondsSinceEpoch)
        }
    }
}

/// What the reconciler stored per key: count (upper bound), error, last pulled.
struct StoredTable {
    /// [kind slot][number]
    var count: [[UInt64]]
    var error: [[UInt64]]
    var last: [[Int64]]

    init(keys: KeySpace) {
        count = KeyKind.allCases.map { Array(repeating: 0, count: keys.count($0)) }
        error = count
        last = KeyKind.allCases.map { Array(repeating: .min, count: keys.count($0)) }
    }

    /// Applies one sealed batch as `BatchWriter` does; returns the rows it would upsert.
    mutating func apply(_ batch: ShardWindow, parameters: SketchParameters, shardCount: Int, keys: KeySpace, catalog: Catalog) throws -> Int {
        var rows = 0
        for entry in batch.hotEntries {
            guard let key = keys.index(entry.kind, repository: entry.repository.value, reference: entry.reference) else { continue }
            let slot = entry.kind.slot
            count[slot][key] += CountingRule.resolutions.pullCount(kind: entry.kind, fetches: entry.fetches, checks: entry.checks)
            last[slot][key] = max(last[slot][key], entry.lastSeen.millisecondsSinceEpoch)
            rows += 1
        }
        guard let estimator = try TailEstimator(batch, parameters: parameters, shardCount: shardCount) else { return rows }
        let byRepository = catalog.keysByShard[batch.shard]
        let repositories = estimator.repositories.map { $0.compactMap(keys.repositoryIndex) } ?? Array(byRepository.indices)
        for repository in repositories {
            let name = keys.repositoryName(repository)
            for packed in byRepository[repository] {
                let key = packed >> 1, slot = packed & 1
                guard let estimate = estimator.estimate(catalog.hashes[slot][key], repository: name) else { continue }
                count[slot][key] += estimate.pulls
                error[slot][key] += estimator.bound
                last[slot][key] = max(last[slot][key], estimate.lastPulled.millisecondsSinceEpoch)
                rows += 1
            }
        }
        return rows
    }
}
