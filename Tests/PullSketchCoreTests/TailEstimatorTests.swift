import PullSketchCore
import Testing

/// What a batch's estimate of one tail key may be capped by: never below the key's true pulls, and
/// its times never earlier than its true ones, whichever windows named the key or kept its
/// repository.
@Suite struct TailEstimatorTests {
    let first = Fixtures.repository("team/first"), second = Fixtures.repository("team/second")

    func pull(_ digest: Digest, in repository: RepositoryName, at time: Int64) -> PullEvent {
        PullEvent(repository: repository, reference: .digest(digest), method: .get, time: Fixtures.time(time))
    }

    func estimate(_ digest: Digest, in repository: RepositoryName, of part: ShardWindow, _ parameters: SketchParameters, isNamed: Bool) throws
        -> TailEstimator.Estimate?
    {
        let estimator = try #require(try TailEstimator(part, parameters: parameters, shardCount: 1))
        let hash = KeyHash(kind: .manifest, repository: repository.value, reference: digest.value, seed: estimator.seed)
        return estimator.estimate(hash, repository: repository.value, isNamed: isNamed)
    }

    /// A repository kept in one window's tail table and lost to an overflow in another's holds only
    /// part of its keys' pulls: its figure cannot cap a key the batch names.
    @Test func aRepositoryLostToAnOverflowInOneWindowCapsNoneOfItsNamedKeys() throws {
        let tracker = PullTracker(configuration: Fixtures.enabled(hotCapacity: 0, stripes: 1, shards: 1, tailRepositoriesPerStripe: 1))
        let key = Fixtures.digest(2)
        tracker.record(pull(key, in: second, at: 1))
        var batch = tracker.drain().shards[0]
        // The table's one place goes to the first repository: the second's next pulls are named, in no figure.
        tracker.record(pull(Fixtures.digest(1), in: first, at: 2))
        for time in 3...7 { tracker.record(pull(key, in: second, at: Int64(time))) }
        try batch.merge(tracker.drain().shards[0], parameters: tracker.configuration.sketch)
        #expect(batch.tailRepositoriesOverflowed && batch.tailNames.contains(PullKey(second, .manifest(key))))

        let estimate = try #require(try estimate(key, in: second, of: batch, tracker.configuration.sketch, isNamed: true))
        #expect(estimate.pulls >= 6, "a count-min estimate never undercounts; capping it at the repository's kept pulls (1) did")
        #expect(estimate.lastPulled.map { $0 >= Fixtures.time(7) } == true, "never earlier than the key's last pull")
        #expect(estimate.lastUsed >= Fixtures.time(7))
    }

    /// A window that could not be delivered goes back into the shard's first stripe, whose tail
    /// table may not hold all the repositories the window's stripes held between them.
    @Test func aRestoredWindowThatOverflowsOneStripesTableKeepsEveryNamedKeysPullsAndTimes() throws {
        let tracker = PullTracker(configuration: Fixtures.enabled(hotCapacity: 0, stripes: 4, shards: 1, tailRepositoriesPerStripe: 2))
        let repositories = (0..<3).map { Fixtures.repository("team/r\($0)") }
        for (index, repository) in repositories.enumerated() {
            for time in 0...index { tracker.record(pull(Fixtures.digest(UInt64(index)), in: repository, at: Int64(10 * index + time))) }
        }
        let undelivered = tracker.drain()
        #expect(!undelivered.tailRepositoriesOverflowed, "the three repositories fit their stripes")
        try tracker.restore(undelivered)
        let part = tracker.drain().shards[0]
        #expect(part.tailRepositoriesOverflowed, "one stripe's table holds two of the three")

        for (index, repository) in repositories.enumerated() {
            let estimate = try #require(try estimate(Fixtures.digest(UInt64(index)), in: repository, of: part, tracker.configuration.sketch, isNamed: true))
            #expect(estimate.pulls >= UInt64(index + 1))
            #expect(estimate.lastUsed >= Fixtures.time(Int64(11 * index)))
        }
    }

    /// Every tail use of a key the batch does not name was unnamed, so its pulls are within its
    /// repository's unnamed pulls, however much a sketch too small for the tail says.
    @Test func aKeyTheBatchDoesNotNameIsCappedByItsRepositorysUnnamedPulls() throws {
        let tiny = SketchParameters(width: 1, depth: 1)
        let tracker = PullTracker(configuration: Fixtures.enabled(hotCapacity: 0, stripes: 1, shards: 1, tailNames: 1, sketch: tiny))
        let named = Fixtures.digest(1), unnamed = Fixtures.digest(2)
        for time in 0..<50 { tracker.record(pull(named, in: first, at: Int64(time))) }
        tracker.record(pull(unnamed, in: first, at: 50))
        let part = tracker.drain().shards[0]
        #expect(part.tailNames == [PullKey(first, .manifest(named))])

        let onlyUnnamed = try #require(try estimate(unnamed, in: first, of: part, tiny, isNamed: false))
        #expect(onlyUnnamed.pulls == 1, "the sketch says 51; the repository's unnamed pulls say at most 1")
        let namedEstimate = try #require(try estimate(named, in: first, of: part, tiny, isNamed: true))
        #expect(namedEstimate.pulls == 51, "a named key is capped by all of its repository's tail pulls")
    }

    /// An unnamed key of a repository lost to an overflow: its pulls are in the batch's unnamed
    /// pulls without a repository.
    @Test func anUnnamedKeyOfARepositoryLostToAnOverflowIsCappedByTheOverflowsUnnamedPulls() throws {
        let tiny = SketchParameters(width: 1, depth: 1)
        let tracker = PullTracker(
            configuration: Fixtures.enabled(hotCapacity: 0, stripes: 1, shards: 1, tailRepositoriesPerStripe: 1, tailNames: 1, sketch: tiny)
        )
        let lost = Fixtures.digest(2)
        for time in 0..<20 { tracker.record(pull(Fixtures.digest(1), in: first, at: Int64(time))) }
        for time in 20..<23 { tracker.record(pull(lost, in: second, at: Int64(time))) }
        let part = tracker.drain().shards[0]
        #expect(part.tailRepositoriesOverflowed && part.unnamedPullsOfOverflow == 3)

        let estimate = try #require(try estimate(lost, in: second, of: part, tiny, isNamed: false))
        #expect(estimate.pulls == 3)
        #expect(estimate.lastPulled == Fixtures.time(22) && estimate.lastUsed == Fixtures.time(22))
    }

    /// The hash-only check a catalog reader runs on every key before it builds names: it passes
    /// every key an unnamed estimate would cover (all the shard's keys used without a name), so
    /// skipping the keys it fails loses none, and never a key of another shard.
    @Test func theHashOnlyCheckPassesEveryKeyAnUnnamedEstimateCovers() throws {
        // A filter small enough to say "maybe" of keys nobody used, another shard's among them.
        let small = SketchParameters(width: 64, depth: 2)
        let tracker = PullTracker(configuration: Fixtures.enabled(hotCapacity: 0, stripes: 4, shards: 4, tailNames: 8, sketch: small))
        let used = (0..<400).map { Fixtures.digest(UInt64($0)) }, unused = (400..<2_000).map { Fixtures.digest(UInt64($0)) }
        for (time, digest) in used.enumerated() { tracker.record(pull(digest, in: first, at: Int64(time))) }
        let parts = tracker.drain().shards
        var unnamedUsed = 0, otherShardsInFilter = 0
        for part in parts {
            let estimator = try #require(try TailEstimator(part, parameters: tracker.configuration.sketch, shardCount: 4))
            let filter = try UsageFilter(parameters: small, bits: part.usageBits)
            for digest in used + unused {
                let key = PullKey(first, .manifest(digest))
                let hash = key.hash(seed: estimator.seed)
                let passes = estimator.mayHaveUsedUnnamed(hash)
                if estimator.estimate(hash, repository: first.value, isNamed: false) != nil { #expect(passes, "\(digest.value)") }
                if hash.shard(count: 4) != part.shard {
                    #expect(!passes, "a key of shard \(hash.shard(count: 4)) in shard \(part.shard)")
                    if filter.contains(hash) { otherShardsInFilter += 1 }
                }
                if used.contains(digest), hash.shard(count: 4) == part.shard, !part.tailNames.contains(key) {
                    #expect(passes, "used unnamed: \(digest.value)")
                    unnamedUsed += 1
                }
            }
        }
        #expect(unnamedUsed > 300, "most of the 400 keys went unnamed (8 names in each of 4 stripes)")
        #expect(otherShardsInFilter > 0, "the filters alone would have let other shards' keys through")
    }
}
