/// How a sealed shard batch estimates keys: those it names, and the catalog's keys of the
/// repositories whose tail keys it could not all name (`catalogRepositories`). A key of the batch's
/// shard whose repository had tail keys (every repository when the tail table overflowed) and that
/// the usage filter may have seen gets
/// - pulls: its sketch estimate, capped by its repository's tail pulls (no key of a repository can
///   have more), with error ⌈ε·N⌉ when above zero (a zero estimate is exact: a count-min sketch
///   never undercounts);
/// - last pulled: its repository's latest tail pull, when it has pulls;
/// - last used: its repository's latest tail use.
/// Both times are never earlier than the truth. The reconciler and the accuracy report share it,
/// so they cannot disagree.
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

    /// Nil when the batch used no tail key, so nothing is to be estimated.
    public init?(_ content: ShardWindow, parameters: SketchParameters?, shardCount: Int) throws(SketchError) {
        guard !content.usageBits.isEmpty, let parameters else { return nil }
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
        fallbackLastPulled = content.tailLastPulled
        fallbackLastUsed = content.tailLastUsed
        shard = content.shard
        self.shardCount = shardCount
    }

    public var seed: UInt64 { sketch.parameters.seed }

    /// The estimate for one catalog key, or nil when this batch does not say the key was used.
    public func estimate(_ key: KeyHash, repository: String) -> Estimate? {
        guard key.shard(count: shardCount) == shard else { return nil }
        let tail = tails[repository]
        guard tail != nil || overflowed, usage.contains(key) else { return nil }
        let pulls = min(UInt64(sketch.estimate(key)), tail?.pulls ?? .max)
        return Estimate(
            pulls: pulls,
            error: pulls > 0 ? bound : 0,
            lastPulled: pulls > 0 ? tail?.lastPulled ?? fallbackLastPulled : nil,
            lastUsed: tail?.lastUsed ?? fallbackLastUsed
        )
    }
}
