import PullSketchCore

/// Every key's hash, by shard and repository: what the reconciler enumerates for tail estimates.
struct KeyCatalog {
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

/// Per key: pulls, last pulled and last used (ms, `.min` for never); the truth and what was
/// stored share the shape.
struct KeyTimes {
    /// [kind slot][number]
    var lastPulled: [[Int64]]
    var lastUsed: [[Int64]]

    init(keys: KeySpace) {
        lastPulled = KeyKind.allCases.map { Array(repeating: .min, count: keys.count($0)) }
        lastUsed = lastPulled
    }

    mutating func raise(_ slot: Int, _ key: Int, pulled: Timestamp?, used: Timestamp) {
        if let pulled { lastPulled[slot][key] = max(lastPulled[slot][key], pulled.millisecondsSinceEpoch) }
        lastUsed[slot][key] = max(lastUsed[slot][key], used.millisecondsSinceEpoch)
    }
}

/// The truth: pulls, last pull and last use per key, under the run's counting rule.
struct KeyTable {
    /// [kind slot][number]
    var pulls: [[UInt64]]
    var times: KeyTimes

    init(keys: KeySpace) {
        pulls = KeyKind.allCases.map { Array(repeating: 0, count: keys.count($0)) }
        times = KeyTimes(keys: keys)
    }

    mutating func add(_ pull: PullEvent, rule: CountingRule, keys: KeySpace) {
        for touch in rule.touches(for: pull) {
            guard let key = keys.index(touch.key) else {
                preconditionFailure("a pull of a key outside the run's key space")
            }
            pulls[touch.key.kind.slot][key] += touch.effect.pulls
            times.raise(touch.key.kind.slot, key, pulled: touch.effect.pulls > 0 ? pull.time : nil, used: pull.time)
        }
    }
}

/// What the reconciler stored per key: count (upper bound), error, last pulled, last used.
struct StoredTable {
    /// [kind slot][number]
    var count: [[UInt64]]
    var error: [[UInt64]]
    var times: KeyTimes

    init(keys: KeySpace) {
        count = KeyKind.allCases.map { Array(repeating: 0, count: keys.count($0)) }
        error = count
        times = KeyTimes(keys: keys)
    }

    /// Applies one sealed batch as `BatchWriter` does; returns the rows it would upsert.
    mutating func apply(_ batch: ShardWindow, parameters: SketchParameters, shardCount: Int, keys: KeySpace, catalog: KeyCatalog) throws -> Int {
        var rows = 0
        for entry in batch.hotEntries {
            guard let key = keys.index(entry.key) else { continue }
            count[entry.key.kind.slot][key] += entry.pulls
            times.raise(entry.key.kind.slot, key, pulled: entry.pulls > 0 ? entry.lastPulled : nil, used: entry.lastUsed)
            rows += 1
        }
        guard let estimator = try TailEstimator(batch, parameters: parameters, shardCount: shardCount) else { return rows }
        // The keys the batch names, then the catalog's keys of the repositories it could not name
        // every tail key of; each once.
        var estimated = Set<Int>()
        func estimate(slot: Int, key: Int, repository: String, isNamed: Bool) {
            guard estimated.insert(key << 1 | slot).inserted,
                let estimate = estimator.estimate(catalog.hashes[slot][key], repository: repository, isNamed: isNamed)
            else { return }
            count[slot][key] += estimate.pulls
            error[slot][key] += estimate.error
            times.raise(slot, key, pulled: estimate.lastPulled, used: estimate.lastUsed)
            rows += 1
        }
        for name in batch.tailNames {
            guard let key = keys.index(name) else { continue }
            estimate(slot: name.kind.slot, key: key, repository: name.repository.value, isNamed: true)
        }
        let byRepository = catalog.keysByShard[batch.shard]
        let repositories = estimator.catalogRepositories.map { $0.compactMap(keys.repositoryIndex) } ?? Array(byRepository.indices)
        for repository in repositories {
            let name = keys.repositoryName(repository)
            for packed in byRepository[repository] {
                estimate(slot: packed & 1, key: packed >> 1, repository: name, isNamed: false)
            }
        }
        return rows
    }
}
