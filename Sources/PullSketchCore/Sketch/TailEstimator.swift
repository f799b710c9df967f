/// How a sealed shard batch estimates keys: those it names, and the catalog's keys of the
/// repositories whose tail keys it could not all name (`catalogRepositories`). A key of the batch's
/// shard whose repository had tail keys (every repository when the tail table overflowed) and that
/// the batch names or the usage filter (of the keys used unnamed) may have seen gets
/// - pulls: its sketch estimate, with error ⌈ε·N⌉ when above zero (a zero estimate is exact: a
///   count-min sketch never undercounts), capped by what its repository's figures say it can have
///   at most: a named key, its repository's tail pulls; a key the batch does not name, whose every
///   tail use was unnamed, its repository's unnamed pulls. After a tail table overflow a
///   repository's figure misses the pulls of the windows that had no room for it: a named key is
///   then not capped, and an unnamed one also by the unnamed pulls of the repositories lost;
/// - last pulled: its repository's latest tail pull, when it has pulls;
/// - last used: its repository's latest tail use;
/// after an overflow, the batch's latest tail pull and use. Both times are never earlier than the
/// truth. The reconciler and the accuracy report share it, so they cannot disagree.
public struct TailEstimator: Sendable {
    /// ⌈ε·N⌉ for the batch's tail mass N.
    public let bound: UInt64
    /// The repositories whose catalog keys the batch may have used in the tail without naming them:
    /// those with unnamed tail uses; nil when the tail table overflowed (then: all). A catalog key
    /// of any other repository was either named or not used in the tail.
    public let catalogRepositories: [String]?
    private let overflowed: Bool
    private let sketch: CountMinSketch
    private let usage: UsageFilter
    private let tails: [String: TailRepository]
    private let unnamedPullsOfOverflow: UInt64
    private let fallbackLastPulled: Timestamp
    private let fallbackLastUsed: Timestamp
    private let shard: Int
    private let shardCount: Int

    /// What one batch says of one key.
    public struct Estimate: Hashable, Sendable {
        public var pulls: UInt64
        /// What `pulls` may exceed the truth by.
        public var error: UInt64
        /// Nil when the estimate has no pulls.
        public var lastPulled: Timestamp?
        public var lastUsed: Timestamp
    }

    /// Nil when the batch used no tail key (named none, marked none), so nothing is to be estimated.
    public init?(_ content: ShardWindow, parameters: SketchParameters?, shardCount: Int) throws(SketchError) {
        guard !content.usageBits.isEmpty || !content.tailNames.isEmpty, let parameters else { return nil }
        sketch = try CountMinSketch(parameters: parameters, cells: content.sketchCells)
        usage = try UsageFilter(parameters: parameters, bits: content.usageBits)
        bound = parameters.errorBound(tailMass: content.tailMass)
        tails = Dictionary(content.tailRepositories.map { ($0.repository.value, $0) }) { first, second in
            var merged = first
            merged.absorb(second)
            return merged
        }
        overflowed = content.tailRepositoriesOverflowed
        catalogRepositories = overflowed ? nil : content.tailRepositories.filter { $0.unnamedUses > 0 }.map(\.repository.value)
        unnamedPullsOfOverflow = content.unnamedPullsOfOverflow
        fallbackLastPulled = content.tailLastPulled
        fallbackLastUsed = content.tailLastUsed
        shard = content.shard
        self.shardCount = shardCount
    }

    public var seed: UInt64 { sketch.parameters.seed }

    /// Whether the batch may have used `key` without naming it, from its hash alone: a key of the
    /// batch's shard that the usage filter holds. A reader of the catalog asks this of every key
    /// first and builds names only for the few that pass (`estimate` then decides).
    public func mayHaveUsedUnnamed(_ key: KeyHash) -> Bool {
        key.shard(count: shardCount) == shard && usage.contains(key)
    }

    /// The estimate for one key, or nil when this batch does not say the key was used. `isNamed`:
    /// the batch's `tailNames` hold the key.
    public func estimate(_ key: KeyHash, repository: String, isNamed: Bool) -> Estimate? {
        guard key.shard(count: shardCount) == shard else { return nil }
        let tail = tails[repository]
        guard tail != nil || overflowed, isNamed || usage.contains(key) else { return nil }
        // Without an overflow the repository's figures hold every tail use of its keys; after one
        // they miss the windows that had no room for the repository.
        let most: UInt64, lastPulled: Timestamp, lastUsed: Timestamp
        if let tail, !overflowed {
            most = isNamed ? tail.pulls : tail.unnamedPulls
            (lastPulled, lastUsed) = (tail.lastPulled, tail.lastUsed)
        } else {
            most = isNamed ? .max : (tail?.unnamedPulls ?? 0) &+ unnamedPullsOfOverflow
            (lastPulled, lastUsed) = (fallbackLastPulled, fallbackLastUsed)
        }
        let pulls = min(UInt64(sketch.estimate(key)), most)
        return Estimate(pulls: pulls, error: pulls > 0 ? bound : 0, lastPulled: pulls > 0 ? lastPulled : nil, lastUsed: lastUsed)
    }
}
