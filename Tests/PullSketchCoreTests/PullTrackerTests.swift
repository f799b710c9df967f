@testable import PullSketchCore
import PullSketchTestSupport
import Foundation
import Synchronization
import Testing

@Suite(.cpuBound) struct PullTrackerTests {
    let repository = Fixtures.repository("team/app")

    func getByTag(_ tag: String, _ digest: Digest, at time: Int64, in repository: RepositoryName? = nil) -> PullEvent {
        PullEvent(
            repository: repository ?? self.repository,
            reference: .tag(Fixtures.tag(tag)),
            method: .get,
            servedDigest: digest,
            time: Fixtures.time(time)
        )
    }

    func headByTag(_ tag: String, at time: Int64, in repository: RepositoryName? = nil) -> PullEvent {
        PullEvent(repository: repository ?? self.repository, reference: .tag(Fixtures.tag(tag)), method: .head, time: Fixtures.time(time))
    }

    @Test func aWorkloadThatFitsTheHotTableIsCountedExactly() {
        let tracker = PullTracker(configuration: Fixtures.enabled())
        var truth = Truth()
        var generator = SeededGenerator(seed: 11)
        for index in 0..<20_000 {
            let tag = "v\(Int.random(in: 0..<300, using: &generator))"
            let event = Bool.random(using: &generator)
                ? getByTag(tag, Fixtures.digest(UInt64(tag.count)), at: Int64(index))
                : headByTag(tag, at: Int64(index))
            tracker.record(event)
            truth.record(event)
        }
        let window = tracker.drain()
        var totals = DrainedTotals(parameters: tracker.configuration.sketch)
        totals.add(window)
        #expect(window.tailMass == 0)
        #expect(window.shards.allSatisfy { $0.sketchCells.isEmpty })
        #expect(totals.exact == truth.counts)
        #expect(window.pulls == truth.pulls)
    }

    @Test func coreWindowsRecordedFromSeveralThreadsAreMergedIntoOneExactWindow() {
        let tracker = PullTracker(configuration: Fixtures.enabled(coreWindows: 2))
        let events = (0..<20_000).map { index in
            let tag = "v\(index * 7_919 % 500)"
            return index % 3 == 0 ? headByTag(tag, at: Int64(index)) : getByTag(tag, Fixtures.digest(UInt64(index % 40)), at: Int64(index))
        }
        // Half into each window, as threads on two CPUs would put them; then all once more from
        // four threads, into the windows of the CPUs the scheduler runs them on.
        for (index, event) in events.enumerated() { tracker.record(event, inCoreWindow: index % 2) }
        DispatchQueue.concurrentPerform(iterations: 4) { thread in
            for event in events[(thread * 5_000)..<((thread + 1) * 5_000)] { tracker.record(event) }
        }
        var truth = Truth()
        for event in events + events { truth.record(event) }
        let window = tracker.drain()
        var totals = DrainedTotals(parameters: tracker.configuration.sketch)
        totals.add(window)
        #expect(window.tailMass == 0)
        #expect(Set(window.hotEntries.map(\.key)).count == window.hotEntries.count, "one entry per key")
        #expect(totals.exact == truth.counts)
        #expect(tracker.memoryFootprint() <= tracker.configuration.windowByteBound)
        #expect(tracker.configuration.windowByteBound == 2 * Fixtures.enabled().windowByteBound)
    }

    @Test func aKeyHotInOneCoreWindowAndInTheTailOfAnotherKeepsItsExactPartAndABoundedRest() throws {
        let tracker = PullTracker(configuration: Fixtures.enabled(hotCapacity: 1, stripes: 1, coreWindows: 2, shards: 1))
        for time in 0..<3 { tracker.record(headByTag("a", at: Int64(time)), inCoreWindow: 0) }
        tracker.record(headByTag("b", at: 10), inCoreWindow: 1)
        for time in 20..<22 { tracker.record(headByTag("a", at: Int64(time)), inCoreWindow: 1) }
        let window = tracker.drain()
        let a = PullKey(repository, .tag(Fixtures.tag("a")))
        let exact = try #require(window.hotEntries.first { $0.key == a })
        #expect(exact.pulls == 3 && exact.lastPulled == Fixtures.time(2))
        #expect(window.hotEntries.contains { $0.key == PullKey(repository, .tag(Fixtures.tag("b"))) })
        #expect(window.tailMass == 2 && window.pulls == 3 + 1 + 2)
        #expect(window.shards[0].tailNames.contains(a))
        #expect(window.summedSketch.estimate(a.hash(seed: window.parameters.seed)) >= 2)
        #expect(window.tailLastPulled == Fixtures.time(21))
    }

    @Test(arguments: CountingRule.allCases)
    func recordCountsExactlyWhatTheCountingRuleSays(rule: CountingRule) {
        let tracker = PullTracker(configuration: Fixtures.enabled(rule: rule))
        var truth = Truth()
        var generator = SeededGenerator(seed: 31)
        for index in 0..<4_000 {
            let number = UInt64.random(in: 0..<40, using: &generator)
            let reference: ManifestReference = Bool.random(using: &generator)
                ? .tag(Fixtures.tag("v\(number)"))
                : .digest(Fixtures.digest(number))
            let event = PullEvent(
                repository: repository,
                reference: reference,
                method: Bool.random(using: &generator) ? .get : .head,
                servedDigest: Fixtures.digest(number),
                time: Fixtures.time(Int64(index))
            )
            tracker.record(event)
            truth.record(event, rule: rule)
        }
        var totals = DrainedTotals(parameters: tracker.configuration.sketch)
        totals.add(tracker.drain())
        #expect(totals.exact == truth.counts)
    }

    @Test func aTagKeepsTheDigestOfItsLatestFetchEvenWhenEventsArriveOutOfOrder() {
        let tracker = PullTracker(configuration: Fixtures.enabled())
        tracker.record(getByTag("v1", Fixtures.digest(2), at: 200))
        tracker.record(getByTag("v1", Fixtures.digest(1), at: 100))  // late delivery of an older pull
        tracker.record(headByTag("v1", at: 300))
        let tag = tracker.drain().hotEntries.first { $0.key.kind == .tag }
        #expect(tag?.currentDigest == Fixtures.digest(2))
        #expect(tag?.currentDigestAt == Fixtures.time(200))
        #expect(tag?.lastUsed == Fixtures.time(300) && tag?.lastPulled == Fixtures.time(300))
        #expect(tag?.fetches == 2 && tag?.checks == 1)
    }

    @Test func aTagThatMovesBackKeepsTheDigestItMovedBackTo() {
        let tracker = PullTracker(configuration: Fixtures.enabled())
        for (digest, time) in [(1, 100), (2, 200), (1, 300)] as [(UInt64, Int64)] {
            tracker.record(getByTag("v1", Fixtures.digest(digest), at: time))
        }
        let tag = tracker.drain().hotEntries.first { $0.key.kind == .tag }
        #expect(tag?.currentDigest == Fixtures.digest(1))
        #expect(tag?.currentDigestAt == Fixtures.time(300))
        tracker.record(getByTag("v1", Fixtures.digest(2), at: 400))
        #expect(tracker.drain().hotEntries.first { $0.key.kind == .tag }?.currentDigest == Fixtures.digest(2))
    }

    @Test func withTheFeatureFlagOffNothingIsRecorded() {
        var configuration = Fixtures.enabled()
        configuration.isEnabled = false
        let tracker = PullTracker(configuration: configuration)
        tracker.record(getByTag("v1", Fixtures.digest(1), at: 1))
        #expect(tracker.drain().isEmpty)
    }

    @Test func keysBeyondTheHotCapacityGoToTheSketchAndTheTailTable() {
        let tracker = PullTracker(configuration: Fixtures.enabled(hotCapacity: 16, stripes: 2, shards: 2))
        var truth = Truth()
        let other = Fixtures.repository("team/other")
        for index in 0..<200 {
            let event = headByTag("t\(index)", at: Int64(index), in: index % 2 == 0 ? repository : other)
            tracker.record(event)
            truth.record(event)
        }
        let window = tracker.drain()
        #expect(window.hotEntries.count == 16)
        #expect(window.tailMass == 200 - 16)
        #expect(window.pulls == truth.pulls)
        #expect(Set(window.tailRepositoryPulls.keys) == [repository.value, other.value])
        #expect(window.tailRepositoryPulls.values.reduce(0, +) == window.tailMass)
        #expect(window.tailLastPulled <= Fixtures.time(199) && window.tailLastPulled >= Fixtures.time(184))
        let sketch = window.summedSketch
        let hot = Set(window.hotEntries.map(\.key))
        for (key, counts) in truth.counts where !hot.contains(key) {
            let hash = key.hash(seed: window.parameters.seed)
            #expect(UInt64(sketch.estimate(hash)) >= counts.pulls)
        }
    }

    /// Named (room for names) or found through the usage filter (none): either way a tail key used
    /// without a pull gets its last use and no pulls, and a key never used gets nothing.
    @Test(arguments: [32_768, 0])
    func aTailKeyUsedWithoutAPullIsMarkedUsedButAddsNothingToTheSketch(tailNames: Int) throws {
        let tracker = PullTracker(configuration: Fixtures.enabled(hotCapacity: 0, stripes: 1, shards: 1, tailNames: tailNames))
        let polled = Fixtures.digest(1), fetched = Fixtures.digest(2), unused = Fixtures.digest(3)
        for index in 0..<300 {
            tracker.record(PullEvent(repository: repository, reference: .digest(polled), method: .head, time: Fixtures.time(Int64(index))))
        }
        for index in 0..<4 {
            tracker.record(PullEvent(repository: repository, reference: .digest(fetched), method: .get, time: Fixtures.time(Int64(index))))
        }
        let part = tracker.drain().shards[0]
        #expect(part.tailMass == 4, "HEAD by digest is no pull under .resolutions")
        #expect(part.tailNames.count == (tailNames > 0 ? 2 : 0))
        let estimator = try #require(try TailEstimator(part, parameters: tracker.configuration.sketch, shardCount: 1))
        func estimate(_ digest: Digest) throws -> TailEstimator.Estimate? {
            let key = try PullKey(kind: .manifest, repository: repository.value, reference: digest.value)
            return estimator.estimate(key.hash(seed: estimator.seed), repository: repository.value, isNamed: part.tailNames.contains(key))
        }
        let head = try #require(try estimate(polled))
        #expect(head.pulls == 0 && head.error == 0 && head.lastPulled == nil && head.lastUsed == Fixtures.time(299))
        let get = try #require(try estimate(fetched))
        #expect(get.pulls == 4 && get.lastPulled == Fixtures.time(3) && get.lastUsed == Fixtures.time(299))
        #expect(try estimate(unused) == nil, "a key never used is not estimated")
    }

    /// The usage filter is how the reconciler finds catalog keys a window used without naming; the
    /// named keys stay out of it, so however many there are they cannot make it say "maybe" of
    /// keys nobody used (under a flood they filled it and every catalog key was estimated).
    @Test func onlyTailKeysThatWereNotNamedSetUsageBits() throws {
        let sketch = SketchParameters(width: 64, depth: 2)
        let tracker = PullTracker(configuration: Fixtures.enabled(hotCapacity: 0, stripes: 1, shards: 1, tailNames: 1_000, sketch: sketch))
        for index in 0..<1_001 {
            tracker.record(PullEvent(repository: repository, reference: .digest(Fixtures.digest(UInt64(index))), method: .get, time: Fixtures.time(Int64(index))))
        }
        let part = tracker.drain().shards[0]
        #expect(part.tailNames.count == 1_000 && part.tailRepositories.map(\.unnamedPulls) == [1])
        let last = try PullKey(kind: .manifest, repository: repository.value, reference: Fixtures.digest(1_000).value)
        var lastBits: Set<UInt32> = []
        CountMinSketch.forEachIndex(of: last.hash(seed: sketch.seed), sketch) { lastBits.insert(UInt32($0)) }
        #expect(Set(part.usageBits) == lastBits, "the unnamed key's bits alone")
        let estimator = try #require(try TailEstimator(part, parameters: sketch, shardCount: 1))
        let never = (2_000..<3_000).filter { index in
            let key = KeyHash(kind: .manifest, repository: repository.value, reference: Fixtures.digest(UInt64(index)).value, seed: sketch.seed)
            return estimator.estimate(key, repository: repository.value, isNamed: false) != nil
        }
        #expect(never.count < 10, "keys never used are estimated only on the unnamed key's collisions")
        let unnamed = try #require(estimator.estimate(last.hash(seed: sketch.seed), repository: repository.value, isNamed: false))
        #expect(unnamed.pulls == 1 && unnamed.lastUsed == Fixtures.time(1_000))
    }

    @Test func aFullTailRepositoryTableIsFlagged() {
        let tracker = PullTracker(configuration: Fixtures.enabled(hotCapacity: 0, stripes: 1, shards: 1, tailRepositoriesPerStripe: 2))
        for index in 0..<3 {
            tracker.record(headByTag("v1", at: 5, in: Fixtures.repository("team/r\(index)")))
        }
        let window = tracker.drain()
        #expect(window.tailRepositoryPulls.count == 2)
        #expect(window.tailRepositoriesOverflowed)
        #expect(window.tailMass == 3)
        #expect(window.tailLastPulled == Fixtures.time(5))
        #expect(!tracker.drain().tailRepositoriesOverflowed)
    }

    @Test func namesAreListedByRepositoryThenTagsBeforeManifestsThenName() {
        func tag(_ repository: String, _ name: String) -> PullKey { PullKey(Fixtures.repository(repository), .tag(Fixtures.tag(name))) }
        func manifest(_ repository: String, _ number: UInt64) -> PullKey { PullKey(Fixtures.repository(repository), .manifest(Fixtures.digest(number))) }
        let ordered = [
            tag("a/b", "v10"), tag("a/b", "v9"), tag("a/b", "z"), manifest("a/b", 1), manifest("a/b", 2),
            manifest("a/b-c", 1), tag("a/bc", "latest"), manifest("a/bc", 1), tag("b", "a"),
        ]
        #expect(ordered.reversed().sortedByName() == ordered)
        #expect(Set(ordered).sortedByName() == ordered)
    }

    @Test func tailKeysAreNamedWhileTheyFitAndThePullsOfTheRestAreCountedAsUnnamed() throws {
        let tracker = PullTracker(configuration: Fixtures.enabled(hotCapacity: 0, stripes: 2, shards: 1, tailNames: 20))
        let other = Fixtures.repository("team/other")
        var pullsByKey: [PullKey: UInt64] = [:]
        for index in 0..<300 {
            let tag = "t\(index % 60)", repository = index % 3 == 0 ? other : repository
            tracker.record(headByTag(tag, at: Int64(index), in: repository))
            pullsByKey[PullKey(repository, .tag(Fixtures.tag(tag))), default: 0] += 1
        }
        let part = tracker.drain().shards[0]
        #expect(part.tailNames.count == 20, "10 names per stripe")
        #expect(Set(part.tailNames).count == 20 && part.tailNames == part.tailNames.sortedByName())
        let named = Set(part.tailNames)
        var unnamed: [String: UInt64] = [:]
        for (key, pulls) in pullsByKey where !named.contains(key) { unnamed[key.repository.value, default: 0] += pulls }
        #expect(Dictionary(uniqueKeysWithValues: part.tailRepositories.map { ($0.repository.value, $0.unnamedPulls) }) == unnamed)
        #expect(part.unnamedPulls == unnamed.values.reduce(0, +) && part.unnamedPulls > 0)
        #expect(tracker.drain().shards[0].tailNames.isEmpty, "names belong to one window")
    }

    @Test func unnamedPullsOfRepositoriesLostToAnOverflowAreKeptApart() {
        let tracker = PullTracker(configuration: Fixtures.enabled(hotCapacity: 0, stripes: 1, shards: 1, tailRepositoriesPerStripe: 1, tailNames: 1))
        tracker.record(headByTag("a", at: 1, in: Fixtures.repository("team/r0")))
        tracker.record(headByTag("b", at: 2, in: Fixtures.repository("team/r0")))
        tracker.record(headByTag("c", at: 3, in: Fixtures.repository("team/r1")))
        let part = tracker.drain().shards[0]
        #expect(part.tailNames.map(\.name) == ["a"])
        #expect(part.tailRepositories.map(\.unnamedPulls) == [1])
        #expect(part.tailRepositoriesOverflowed && part.unnamedPullsOfOverflow == 1)
    }

    @Test func aRestoredWindowKeepsItsNamesAndUnnamedPulls() throws {
        let tracker = PullTracker(configuration: Fixtures.enabled(hotCapacity: 4, stripes: 2, shards: 1, tailRepositoriesPerStripe: 1, tailNames: 8))
        for index in 0..<40 {
            tracker.record(headByTag("t\(index % 20)", at: Int64(index), in: Fixtures.repository("team/r\(index % 3)")))
        }
        let undelivered = tracker.drain()
        try tracker.restore(undelivered)
        let again = tracker.drain()
        #expect(Set(again.shards[0].tailNames).isSuperset(of: undelivered.shards[0].tailNames))
        #expect(again.unnamedPulls == undelivered.unnamedPulls)
        #expect(again.pulls == undelivered.pulls)
    }

    @Test func everyKeyIsDrainedInThePartOfItsShard() {
        let tracker = PullTracker(configuration: Fixtures.enabled(hotCapacity: 64, stripes: 8, shards: 4))
        for index in 0..<300 {
            tracker.record(getByTag("v\(index)", Fixtures.digest(UInt64(index)), at: Int64(index)))
        }
        let window = tracker.drain()
        #expect(window.shards.map(\.shard) == [0, 1, 2, 3])
        for part in window.shards {
            #expect(part.tailMass > 0 && !part.hotEntries.isEmpty)
            for entry in part.hotEntries {
                let hash = entry.key.hash(seed: window.parameters.seed)
                #expect(hash.shard(count: 4) == part.shard)
            }
            let sketch = try! CountMinSketch(parameters: window.parameters, cells: part.sketchCells)
            for index in 0..<300 {
                let hash = KeyHash(kind: .tag, repository: repository.value, reference: "v\(index)", seed: window.parameters.seed)
                let isHot = part.hotEntries.contains { $0.key.kind == .tag && $0.key.name == "v\(index)" }
                if hash.shard(count: 4) == part.shard, !isHot {
                    #expect(sketch.estimate(hash) >= 1, "a tail key of shard \(part.shard) is missing from its sketch")
                }
            }
        }
    }

    @Test func drainStartsAnEmptyWindowWithTheNextSequence() {
        let tracker = PullTracker(configuration: Fixtures.enabled())
        tracker.record(headByTag("v1", at: 1))
        let first = tracker.drain()
        let second = tracker.drain()
        #expect(first.pulls == 1)
        #expect(second.isEmpty)
        #expect(second.sequence == first.sequence + 1)
    }

    @Test(arguments: [32_768, 40] as [Int])
    func drainRestoreDrainConservesEveryCount(hotCapacity: Int) throws {
        let tracker = PullTracker(configuration: Fixtures.enabled(hotCapacity: hotCapacity, stripes: 4, shards: 2))
        var truth = Truth()
        var generator = SeededGenerator(seed: 21)
        for index in 0..<5_000 {
            let tag = "v\(Int.random(in: 0..<100, using: &generator))"
            let event = getByTag(tag, Fixtures.digest(UInt64.random(in: 1...3, using: &generator)), at: Int64(index))
            tracker.record(event)
            truth.record(event)
        }
        let undelivered = tracker.drain()
        // Pulls keep arriving while the window waits to be restored.
        for index in 0..<500 {
            let event = headByTag("late\(index % 50)", at: 10_000 + Int64(index))
            tracker.record(event)
            truth.record(event)
        }
        try tracker.restore(undelivered)
        let window = tracker.drain()
        #expect(window.pulls == truth.pulls)
        var totals = DrainedTotals(parameters: window.parameters)
        totals.add(window)
        for (key, counts) in truth.counts {
            let exact = totals.exact[key] ?? Truth.Counts()
            let hash = key.hash(seed: window.parameters.seed)
            let estimate = UInt64(totals.sketch.estimate(hash))
            #expect(exact.fetches + exact.checks <= counts.fetches + counts.checks)
            #expect(exact.fetches + exact.checks + estimate >= counts.fetches + counts.checks)
        }
        if hotCapacity >= 5_000 {
            #expect(totals.exact == truth.counts)
        }
    }

    @Test func restoringAWindowOfOtherSketchParametersIsRefusedAndChangesNothing() {
        let tracker = PullTracker(configuration: Fixtures.enabled())
        tracker.record(headByTag("v1", at: 1))
        let entry = HotEntry(
            key: PullKey(repository, .tag(Fixtures.tag("v2"))), checks: 5, pulls: 5, lastPulled: Fixtures.time(2), lastUsed: Fixtures.time(2)
        )
        let foreign = Window(
            sequence: 9,
            parameters: SketchParameters(width: 8, depth: 2),
            shards: [ShardWindow(shard: 0, hotEntries: [entry])]
        )
        #expect(throws: SketchError.self) { try tracker.restore(foreign) }
        let cellOutOfRange = Window(
            sequence: 9,
            parameters: tracker.configuration.sketch,
            shards: [ShardWindow(shard: 0, hotEntries: [entry], sketchCells: [SketchCell(index: .max, count: 1)], tailMass: 1)]
        )
        #expect(throws: SketchError.self) { try tracker.restore(cellOutOfRange) }
        let bitOutOfRange = Window(
            sequence: 9,
            parameters: tracker.configuration.sketch,
            shards: [ShardWindow(shard: 0, hotEntries: [entry], usageBits: [.max])]
        )
        #expect(throws: SketchError.self) { try tracker.restore(bitOutOfRange) }
        let shardOutOfRange = Window(
            sequence: 9,
            parameters: tracker.configuration.sketch,
            shards: [ShardWindow(shard: 4, hotEntries: [entry])]
        )
        #expect(throws: SketchError.self) { try tracker.restore(shardOutOfRange) }
        #expect(tracker.drain().pulls == 1)
    }

    @Test(arguments: [32_768, 64] as [Int])
    func concurrentRecordersAndARepeatedDrainAccountForEveryPull(hotCapacity: Int) {
        let recorders = 2
        let eventsPerRecorder = 600_000
        let tracker = PullTracker(configuration: Fixtures.enabled(hotCapacity: hotCapacity))
        let recordersDone = Atomic<Int>(0)
        let drained = Mutex(DrainedTotals(parameters: tracker.configuration.sketch))
        let workloads = (0..<recorders).map { recorder in
            var generator = SeededGenerator(seed: 100 + UInt64(recorder))
            return (0..<eventsPerRecorder).map { index in
                let tag = "v\(Int.random(in: 0..<2_000, using: &generator))"
                return index % 3 == 0
                    ? headByTag(tag, at: Int64(index))
                    : getByTag(tag, Fixtures.digest(UInt64(tag.utf8.count)), at: Int64(index))
            }
        }
        runOnThreads(recorders + 1) { thread in
            if thread < recorders {
                for event in workloads[thread] { tracker.record(event) }
                recordersDone.add(1, ordering: .releasing)
            } else {
                while recordersDone.load(ordering: .acquiring) < recorders {
                    let window = tracker.drain()
                    drained.withLock { $0.add(window) }
                }
                let last = tracker.drain()
                drained.withLock { $0.add(last) }
            }
        }
        var truth = Truth()
        for event in workloads.joined() { truth.record(event) }
        let totals = drained.withLock { $0 }
        #expect(truth.pulls >= 1_000_000)
        #expect(totals.pulls == truth.pulls)
        if hotCapacity >= 4_000 {
            #expect(totals.tailMass == 0)
            #expect(totals.exact == truth.counts)
        } else {
            #expect(totals.tailMass > 0)
            for (key, counts) in truth.counts {
                let exact = totals.exact[key] ?? Truth.Counts()
                let hash = key.hash(seed: totals.sketch.parameters.seed)
                #expect(exact.fetches + exact.checks + UInt64(totals.sketch.estimate(hash)) >= counts.fetches + counts.checks)
            }
        }
    }
}
