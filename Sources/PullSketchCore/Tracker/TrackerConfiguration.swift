/// How a `PullTracker` counts and how much memory it may use. Memory is fixed by these numbers,
/// whatever the number of distinct keys pulled.
public struct TrackerConfiguration: Hashable, Sendable {
    /// `FEATURE_IMAGE_PULL_STATS`. Default false: when off, `record` returns at once.
    public var isEnabled: Bool
    /// Which requests are pulls of which keys. Default `.resolutions`.
    public var countingRule: CountingRule
    /// Keys counted exactly per window. Default 32,768: a node at 5,000 pulls/s with a 2 s merge
    /// interval touches at most 20,000 keys (a pull by tag touches two), so it never overflows.
    public var hotCapacity: Int
    /// Lock stripes, a multiple of `shardCount`. Default 8. Each stripe owns `hotCapacity /
    /// stripeCount` (rounded up) hot keys and a full sketch, so sketch memory grows with it.
    public var stripeCount: Int
    /// Windows recorded side by side, each with `stripeCount` stripes of its own, merged at drain:
    /// a thread records into the window of the CPU it runs on (CPU number modulo this count), so
    /// threads recording at once on different cores write different memory instead of moving the
    /// same lines between them. Default 1. Memory grows with it, since each window has its full
    /// hot capacity; a key hot in one window and in another's tail is merged as parts from two
    /// nodes are (exact part plus bounded estimate).
    public var coreWindowCount: Int
    /// Redis shards (`{ps:<shard>}`) the key space is split into; every node and the reconciler
    /// must use the same number. Default 4.
    public var shardCount: Int
    /// Repositories with tail pulls each stripe remembers per window. Default 1,024.
    public var tailRepositoriesPerStripe: Int
    /// Names of tail keys sent per window (split over the stripes), so keys the catalog does not
    /// know yet are estimated too; the pulls of a key that does not fit are counted as unnamed.
    /// Default 32,768: with the hot table, a window takes 65,536 distinct keys, three times what a
    /// node at 5,000 pulls/s with a 2 s merge interval touches.
    public var tailNameCapacity: Int
    /// The tail sketch's shape. Default 16,384 × 5 (ε ≈ 1.7·10⁻⁴, δ ≈ 0.7 %).
    public var sketch: SketchParameters

    /// The hot capacities and stripe counts a deployment takes.
    public static let hotCapacities = 0...16_777_216
    public static let stripeCounts = 1...1_024

    public init(
        isEnabled: Bool = false,
        countingRule: CountingRule = .resolutions,
        hotCapacity: Int = 32_768,
        stripeCount: Int = 8,
        coreWindowCount: Int = 1,
        shardCount: Int = 4,
        tailRepositoriesPerStripe: Int = 1_024,
        tailNameCapacity: Int = 32_768,
        sketch: SketchParameters = SketchParameters()
    ) {
        precondition(hotCapacity >= 0 && stripeCount > 0 && coreWindowCount > 0 && tailRepositoriesPerStripe >= 0 && tailNameCapacity >= 0)
        precondition(shardCount > 0 && stripeCount % shardCount == 0, "stripeCount must be a multiple of shardCount")
        self.isEnabled = isEnabled
        self.countingRule = countingRule
        self.hotCapacity = hotCapacity
        self.stripeCount = stripeCount
        self.coreWindowCount = coreWindowCount
        self.shardCount = shardCount
        self.tailRepositoriesPerStripe = tailRepositoriesPerStripe
        self.tailNameCapacity = tailNameCapacity
        self.sketch = sketch
    }

    /// Hot keys per stripe.
    public var hotCapacityPerStripe: Int { (hotCapacity + stripeCount - 1) / stripeCount }

    /// Tail names per stripe.
    public var tailNamesPerStripe: Int { (tailNameCapacity + stripeCount - 1) / stripeCount }

    /// An upper bound on the bytes one window of the tracker (all its core windows) can hold, names
    /// at their maximum length included. The tracker holds one window; a drain briefly holds a second.
    public var windowByteBound: Int {
        let heapString = 32  // a native String's heap header
        let hotKey = RepositoryName.maximumLength + Digest.maximumLength * 2 + 3 * heapString
        let hotSlots = HotTable.slotCount(forCapacity: hotCapacityPerStripe)
        let hotTable = hotSlots * (HotTable.slotByteCount + hotKey)
        let tailRepository = MemoryLayout<TailRepository>.stride + RepositoryName.maximumLength + heapString
        let tailTable = 2 * tailRepositoriesPerStripe * (tailRepository + MemoryLayout<Int>.stride)
        let tailNames = 2 * tailNamesPerStripe * (TailNameTable.entryByteCount + hotKey)
        return coreWindowCount * stripeCount * (hotTable + sketch.byteCount + UsageFilter.byteCount(sketch) + tailTable + tailNames)
    }
}
