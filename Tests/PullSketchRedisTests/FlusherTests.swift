import Logging
import MetricsTestKit
import PullSketchCore
import PullSketchFlusher
import PullSketchRedis
import PullSketchTestSupport
import ServiceLifecycle
import Testing

/// The flusher against a real redis-server: lost replies, Redis down, Redis killed, shutdown.
@Suite struct FlusherTests {
    let repository = try! RepositoryName("team/app")

    func tracker() -> PullTracker {
        PullTracker(configuration: TrackerConfiguration(isEnabled: true, hotCapacity: 4_096, sketch: SketchParameters(width: 4_096, depth: 4)))
    }

    func flusher(_ tracker: PullTracker, port: Int, interval: Duration = .milliseconds(50), ledgerMemory: Duration = .seconds(86_400)) -> Flusher {
        let configuration = FlusherConfiguration(
            mergeInterval: interval,
            initialBackoff: .milliseconds(10),
            maximumBackoff: .milliseconds(200),
            shutdownGracePeriod: .seconds(5),
            ledgerMemory: ledgerMemory
        )
        return Flusher(tracker: tracker, redis: RedisEndpoint(port: port, timeout: 1), configuration: configuration)
    }

    /// A round of pulls over 200 tags, each round at later times.
    func events(round: Int, count: Int = 1_000) -> [PullEvent] {
        var generator = SeededGenerator(seed: UInt64(round))
        return (0..<count).map { index in
            let number = Int.random(in: 0..<200, using: &generator)
            let hex = String(number, radix: 16)
            return PullEvent(
                repository: repository,
                reference: .tag(try! TagName("v\(number)")),
                method: Bool.random(using: &generator) ? .get : .head,
                servedDigest: try! Digest("sha256:" + String(repeating: "0", count: 64 - hex.count) + hex),
                time: Timestamp(millisecondsSinceEpoch: Int64(round * 100_000 + index))
            )
        }
    }

    func pulls(_ events: [PullEvent]) -> UInt64 {
        totals(of: events).values.reduce(0) { $0 + $1.pulls }
    }

    func sealedTotals(port: Int, shards: Int = 4) throws -> [String: KeyTotals] {
        let store = BatchStore(connection: try RedisConnection(RedisEndpoint(port: port)), shardCount: shards)
        return totals(try drainSealed(store).flatMap(\.content.hotEntries))
    }

    @Test func aMergeWhoseReplyWasLostIsRetriedAndCountedOnce() async throws {
        let server = try RedisServer()
        let proxy = try ReplyDroppingProxy(upstreamPort: server.port)
        let tracker = tracker()
        let flusher = flusher(tracker, port: proxy.port)
        let pulls = events(round: 1)
        let late = events(round: 2, count: 1)
        for event in pulls { tracker.record(event) }
        proxy.dropNextReply()
        #expect(await flusher.flushOnce() == .failed(retained: true))
        for event in late { tracker.record(event) }  // recorded meanwhile: waits for the retry
        #expect(await flusher.flushOnce() == .merged(pulls: self.pulls(pulls)))
        #expect(await flusher.flushOnce() == .merged(pulls: self.pulls(late)))
        #expect(await flusher.flushOnce() == .nothingToMerge)
        #expect(try sealedTotals(port: server.port) == totals(of: pulls + late))
    }

    @Test func aWindowWhoseOutcomeStaysUnknownForHalfTheLedgerMemoryIsDroppedNotRetried() async throws {
        let server = try RedisServer()
        let proxy = try ReplyDroppingProxy(upstreamPort: server.port)
        let tracker = tracker()
        let flusher = flusher(tracker, port: proxy.port, ledgerMemory: .seconds(2))
        let pulls = events(round: 1)
        for event in pulls { tracker.record(event) }
        proxy.dropNextReply()
        #expect(await flusher.flushOnce() == .failed(retained: true))  // applied, but the reply was lost
        try await Task.sleep(for: .milliseconds(1_100))
        // A retry now could come after the ledger forgot the node: the window is dropped instead.
        #expect(await flusher.flushOnce() == .nothingToMerge)
        // Whatever of the first attempt Redis applied is there once; nothing was sent again.
        let truth = totals(of: pulls)
        for (key, sealed) in try sealedTotals(port: server.port) {
            #expect(sealed.pulls <= truth[key]?.pulls ?? 0, "\(key) counted twice")
        }
    }

    @Test func aWindowThatNeverReachedRedisGoesBackIntoTheTracker() async throws {
        let port = try freeLoopbackPort()
        let tracker = tracker()
        let flusher = flusher(tracker, port: port)
        let first = events(round: 1)
        for event in first { tracker.record(event) }
        #expect(await flusher.flushOnce() == .failed(retained: false))
        let second = events(round: 2)
        for event in second { tracker.record(event) }
        let server = try RedisServer(port: port)
        #expect(await flusher.flushOnce() != .failed(retained: false))
        #expect(await flusher.flushOnce() == .nothingToMerge)
        #expect(try sealedTotals(port: server.port) == totals(of: first + second))
    }

    /// `seconds_since_last_merge` is what an operator alerts on, so an idle node must not look
    /// stuck and a node that never reached Redis must: 0 while there is nothing to merge, growing
    /// from the start while no merge succeeded.
    @Test func theMergesAgeIsZeroWhileIdleAndGrowsFromTheStartWhileMergesFail() async throws {
        let age = "pullsketch_flusher_seconds_since_last_merge"
        let server = try RedisServer()
        let metrics = TestMetrics()
        let tracker = tracker()
        let merger = WindowMerger(tracker: tracker, redis: RedisEndpoint(port: server.port, timeout: 1), metricsFactory: metrics)
        try await Task.sleep(for: .milliseconds(300))
        #expect(merger.flushOnce() == .nothingToMerge)
        #expect(try metrics.expectGauge(age).lastValue == 0, "idle since the start is not stuck")
        let pulls = events(round: 1)
        for event in pulls { tracker.record(event) }
        #expect(merger.flushOnce() == .merged(pulls: self.pulls(pulls)))
        try await Task.sleep(for: .milliseconds(300))
        // Its merged parts are kept until a reconciler confirms them: this attempt checks them.
        #expect(merger.flushOnce() == .nothingToMerge)
        #expect(try metrics.expectGauge(age).lastValue == 0, "idle after a merge is not stuck")

        let unreachable = TestMetrics()
        let stranded = self.tracker()
        let failing = WindowMerger(tracker: stranded, redis: RedisEndpoint(port: try freeLoopbackPort(), timeout: 1), metricsFactory: unreachable)
        for event in events(round: 2) { stranded.record(event) }
        try await Task.sleep(for: .milliseconds(300))
        #expect(failing.flushOnce() == .failed(retained: false))
        #expect(try unreachable.expectGauge(age).lastValue ?? 0 >= 0.3, "counted from the start")
    }

    @Test func redisKilledAndRestartedMidStreamLosesNothingAcknowledged() async throws {
        let server = try RedisServer(appendOnly: true)
        let tracker = tracker()
        let flusher = flusher(tracker, port: server.port)
        var recorded: [PullEvent] = []
        for round in 0..<10 {
            let pulls = events(round: round)
            for event in pulls { tracker.record(event) }
            recorded += pulls
            if round == 4 { server.kill() }
            if round == 7 { try server.start() }
            await flusher.flushOnce()
        }
        var attempts = 0
        while await flusher.flushOnce() != .nothingToMerge, attempts < 50 { attempts += 1 }
        #expect(try sealedTotals(port: server.port) == totals(of: recorded))
    }

    @Test(.timeLimit(.minutes(5)))
    func aCancelledFlusherTriesItsLastMergeOnceAndKeepsTheWindow() async throws {
        let tracker = tracker()
        let configuration = FlusherConfiguration(mergeInterval: .seconds(3_600), shutdownGracePeriod: .seconds(3_600))
        // Port 9 (discard), where nothing listens: a free port found now could be taken by another
        // test's server before the flusher connects.
        let flusher = Flusher(tracker: tracker, redis: RedisEndpoint(port: 9, timeout: 1), configuration: configuration)
        let pulls = events(round: 1)
        for event in pulls { tracker.record(event) }
        let running = Task { try await flusher.run() }
        running.cancel()
        try await running.value
        #expect(tracker.drain().pulls == self.pulls(pulls))
    }

    @Test func aGracefulShutdownMakesALastMerge() async throws {
        let server = try RedisServer()
        let tracker = tracker()
        let flusher = flusher(tracker, port: server.port, interval: .seconds(3_600))
        let group = ServiceGroup(configuration: .init(services: [flusher], logger: Logger(label: "test")))
        let pulls = events(round: 1)
        try await withThrowingTaskGroup(of: Void.self) { tasks in
            tasks.addTask { try await group.run() }
            for event in pulls { tracker.record(event) }
            await group.triggerGracefulShutdown()
            try await tasks.waitForAll()
        }
        #expect(try sealedTotals(port: server.port) == totals(of: pulls))
    }
}
