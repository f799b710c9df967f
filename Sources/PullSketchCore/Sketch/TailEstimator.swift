/// How a sealed shard batch estimates the catalog's keys (DESIGN §2.3 step 3, §2.4): a key of the
/// batch's shard whose repository had tail pulls (every repository when the tail table overflowed)
/// gets its sketch estimate, if above zero, as an approximate count with the batch's bound ⌈ε·N⌉,
/// last pulled at its repository's last tail pull — never earlier than the truth. The reconciler
/// and the accuracy report share it, so they cannot disagree.
public struct TailEstimator: Sendable {
    /// ⌈ε·N⌉ for the batch's tail mass N: added to the error of every key estimated.
    public let bound: UInt64
    /// The repositories with tail pulls; nil when the tail table overflowed (then: all).
    public let repositories: [String]?
    private let sketch: CountMinSketch
    private let lastPulled: [String: Timestamp]
    private let fallbackLastPulled: Timestamp
    private let shard: Int
    private let shardCount: Int

    /// Nil when the batch has no tail pulls, so nothing is to be estimated.
    public init?(_ content: ShardWindow, parameters: SketchParameters?, shardCount: Int) throws(SketchError) {
        guard content.tailMass > 0, let parameters else { return nil }
        sketch = try CountMinSketch(parameters: parameters, cells: content.sketchCells)
        bound = parameters.errorBound(tailMass: content.tailMass)
        lastPulled = Dictionary(content.tailRepositories.map { ($0.repository.value, $0.lastPulled) }) { max($0, $1) }
        repositories = content.tailRepositoriesOverflowed ? nil : content.tailRepositories.map(\.repository.value)
        fallbackLastPulled = content.tailLastPulled
        shard = content.shard
        self.shardCount = shardCount
    }

    public var seed: UInt64 { sketch.parameters.seed }

    /// The estimate for one catalog key, or nil when this batch does not estimate it.
    public func estimate(_ key: KeyHash, repository: String) -> (pulls: UInt64, lastPulled: Timestamp)? {
        guard key.shard(count: shardCount) == shard else { return nil }
        let last: Timestamp
        if let known = lastPulled[repository] {
            last = known
        } else {
            guard repositories == nil else { return nil }
            last = fallbackLastPulled
        }
        let pulls = sketch.estimate(key)
        return pulls > 0 ? (UInt64(pulls), last) : nil
    }
}
