import Foundation
import Logging
import NIOCore
import NIOPosix
import Prometheus
@testable import PullSketchNode
import PullSketchEvents
import PullSketchRedis
import PullSketchTestSupport
import Synchronization
import Testing

@Suite struct EventClaimsTests {
    /// Tasks that keep every thread of the cooperative pool busy until stopped, or for a minute at
    /// most (a bound for a loaded machine) once they hold one thread per core; made from a thread
    /// outside the pool, it returns when they do. Only for a process of its own: while it waits for
    /// the last thread, the ones it holds are lost to everything else.
    final class BusyPool: Sendable {
        private let stopped = Atomic<Bool>(false)
        private let expired = Atomic<Bool>(false)
        private let running = Atomic<Int>(0)
        private let deadline = Mutex<ContinuousClock.Instant?>(nil)

        init() {
            let threads = ProcessInfo.processInfo.activeProcessorCount
            // More than the pool has threads: the rest queue up ahead of any later job.
            for _ in 0..<64 {
                Task.detached { [self] in
                    // Never held whole in a minute: a pool narrower than the cores; give up.
                    let giveUp = ContinuousClock.now + .seconds(60)
                    if running.add(1, ordering: .relaxed).newValue == threads {
                        deadline.withLock { $0 = .now + .seconds(60) }
                    }
                    while !stopped.load(ordering: .relaxed) {
                        if ContinuousClock.now >= deadline.withLock({ $0 }) ?? giveUp {
                            expired.store(true, ordering: .relaxed)
                            return
                        }
                    }
                }
            }
            while deadline.withLock({ $0 }) == nil, !expired.load(ordering: .relaxed) {
                usleep(1_000)
            }
        }

        /// Whether the pool was still held: the bound had not run out.
        func stop() -> Bool {
            stopped.store(true, ordering: .relaxed)
            return !expired.load(ordering: .relaxed)
        }
    }

    static func claims(in port: Int, shardCount: Int, horizon: Duration) -> EventClaims {
        let registry = PrometheusCollectorRegistry()
        let endpoint = RedisEndpoint(port: port, timeout: 60), command = ClaimCommand(shardCount: shardCount, horizon: horizon)
        return EventClaims(
            redis: endpoint, command: command, lostClaims: lostClaims(endpoint, command, registry: registry),
            roundTrips: registry.makeCounter(descriptor: MetricNameDescriptor(metricName: "round_trips", unitName: "total", helpText: "")),
            waitingRequests: registry.makeGauge(descriptor: MetricNameDescriptor(metricName: "waiting", unitName: "requests", helpText: "")),
            logger: Logger(label: "test")
        )
    }

    /// A request waiting for its claim must not need a free thread of the cooperative pool, which
    /// busy requests may hold: the round trip goes out on the claims' own executor. The pool is
    /// held in a process of its own, where no other test waits on it or holds a thread of it.
    @Test func claimsGoOutWhileTheCooperativePoolIsBusy() async throws {
        let redis = try RedisServer()
        await #expect(processExitsWith: .success) { [port = redis.port as Int] in
            let claims = Self.claims(in: port, shardCount: 1, horizon: .seconds(60))
            // The test waits on a lane of its own, so that it needs no pool thread either.
            let (answer, poolWasHeld) = await withTaskExecutorPreference(CPUBoundLane()) {
                await Task.yield()  // onto the lane
                let busy = BusyPool()  // no Task.sleep from here on: its wake-up goes through the pool
                let answer = await claims.claim([EventFingerprint("first"), EventFingerprint("first")])
                return (answer, busy.stop())
            }
            #expect(poolWasHeld, "the claim was answered only once the cooperative pool was free again")
            #expect(answer == .answered([.first, .repeated]))
        }
        extendLifetime(redis)
    }

    /// Where claims whose answer was lost go; here only to say whether any wait.
    static func lostClaims(_ endpoint: RedisEndpoint, _ command: ClaimCommand, registry: PrometheusCollectorRegistry) -> LostClaims {
        LostClaims(
            redis: endpoint, command: command,
            waitingRequests: registry.makeGauge(descriptor: MetricNameDescriptor(metricName: "lost", unitName: "requests", helpText: "")),
            logger: Logger(label: "test")
        )
    }

    /// Lanes on the shared event loops, claiming in the Redis at `endpoint`.
    static func lanes(
        _ endpoint: RedisEndpoint, shardCount: Int = 1, horizon: Duration = .seconds(60), registry: PrometheusCollectorRegistry = PrometheusCollectorRegistry()
    ) -> ClaimLanes {
        let command = ClaimCommand(shardCount: shardCount, horizon: horizon)
        return ClaimLanes(
            redis: endpoint, command: command, lostClaims: lostClaims(endpoint, command, registry: registry), metrics: NodeMetrics(registry: registry),
            logger: Logger(label: "test")
        )
    }

    /// `ids` claimed by the lane of `eventLoop`, as a request read there would.
    static func claim(
        _ ids: [EventFingerprint], by lanes: ClaimLanes, on eventLoop: any EventLoop = MultiThreadedEventLoopGroup.singleton.next()
    ) async throws -> ClaimReply {
        let promise = eventLoop.makePromise(of: ClaimReply.self)
        eventLoop.execute {
            guard let lane = lanes.lane(on: eventLoop) else { return promise.succeed(.notSent) }
            lane.claim(ids) { promise.succeed($0) }
        }
        return try await promise.futureResult.get()
    }

    /// Nodes of two versions share their claims while a deployment rolls, so the key never changes:
    /// `{ps:<low mod shards>}:event:` and the fingerprint in 32 lowercase hex digits, `high` first,
    /// expiring after the horizon. The same from the claims' thread and from an event loop's lane.
    @Test(arguments: [false, true]) func aClaimSetsTheKeyEveryVersionOfTheNodeSets(fromTheEventLoop: Bool) async throws {
        let redis = try RedisServer()
        let ids = (0..<200).map { EventFingerprint("event-\($0)") }
        #expect(ids.contains { $0.high >> 60 == 0 } && ids.contains { $0.low >> 60 == 0 }, "no fingerprint to pad")
        let claimed = if fromTheEventLoop {
            try await Self.claim(ids, by: Self.lanes(RedisEndpoint(port: redis.port, timeout: 60), shardCount: 8, horizon: .seconds(86_400)))
        } else {
            await Self.claims(in: redis.port, shardCount: 8, horizon: .seconds(86_400)).claim(ids)
        }
        #expect(claimed == .answered(ids.map { _ in .first }))
        let connection = try RedisConnection(RedisEndpoint(port: redis.port))
        for id in ids {
            let hex = [id.high, id.low].map { String(repeating: "0", count: 16 - String($0, radix: 16).count) + String($0, radix: 16) }.joined()
            let key = "{ps:\(id.low % 8)}:event:\(hex)"
            guard case .integer(let remaining) = try connection.command(["PTTL", key]) else { Issue.record("PTTL of \(key)"); continue }
            // A day, less what a busy machine may take between the claim and this question.
            #expect((86_400_000 - 600_000...86_400_000).contains(remaining), "\(key)")
        }
        #expect(try connection.command(["DBSIZE"]) == .integer(Int64(ids.count)))
    }

    /// A lane answers an id claimed twice in one pipeline first once; when Redis does not answer
    /// within the endpoint's timeout, lost (the node defers the events and asks again); after the
    /// pause that follows a failure it connects again and claims.
    @Test func aLaneThatRedisDoesNotAnswerDefersThenClaimsAgain() async throws {
        let redis = try RedisServer()
        let endpoint = RedisEndpoint(port: redis.port)
        let twice = EventFingerprint("twice")
        #expect(try await Self.claim([twice, twice], by: Self.lanes(RedisEndpoint(port: redis.port, timeout: 60))) == .answered([.first, .repeated]))
        let lanes = Self.lanes(RedisEndpoint(port: redis.port, timeout: 0.5))
        let loop = MultiThreadedEventLoopGroup.singleton.next()  // one lane throughout: a lane pauses alone
        _ = try RedisConnection(endpoint).command(["CLIENT", "PAUSE", "600000", "WRITE"])
        let held = ContinuousClock.now
        #expect(try await Self.claim([EventFingerprint("held")], by: lanes, on: loop).isLost)
        #expect(ContinuousClock.now - held >= .seconds(0.5), "answered once the timeout ran out")
        _ = try RedisConnection(endpoint).command(["CLIENT", "UNPAUSE"])
        // A busy machine may take longer than the short timeout again, and pause the lane again.
        try await waitFor("the lane claims again", within: .seconds(120)) {
            try await Self.claim([EventFingerprint(UUID().uuidString)], by: lanes, on: loop) == .answered([.first])
        }
    }

    /// Redis answering one claim of a pipeline with an error (over its `maxmemory`; here
    /// `ClaimRefusals`) refuses that id alone: the others are claimed, and the next claims go out at
    /// once, with no pause, and claim the refused ids. The same from the claims' thread and from an
    /// event loop's lane.
    @Test(arguments: [false, true]) func aClaimRedisRefusesIsThatIDsAlone(fromTheEventLoop: Bool) async throws {
        let redis = try RedisServer()
        let refusals = ClaimRefusals(redis: try RedisConnection(RedisEndpoint(port: redis.port)))
        let ids = (0..<40).map { EventFingerprint("refusable-\($0)") }
        let allowed = ClaimRefusals.taken(ids)
        // Claims kept a day, and the lane given an hour to answer: a loaded machine can hold this
        // test for minutes between its steps (CI once took 114 s, and claims of 60 s had expired).
        let claims = Self.claims(in: redis.port, shardCount: 1, horizon: .seconds(86_400))
        let lanes = Self.lanes(RedisEndpoint(port: redis.port, timeout: 3_600), horizon: .seconds(86_400))
        let loop = MultiThreadedEventLoopGroup.singleton.next()
        @Sendable func claim(_ ids: [EventFingerprint]) async throws -> ClaimReply {
            fromTheEventLoop ? try await Self.claim(ids, by: lanes, on: loop) : await claims.claim(ids)
        }
        try refusals.start()
        #expect(try await claim(ids) == .answered(allowed.map { $0 ? .first : .refused }))
        try refusals.stop()
        #expect(try await claim(ids) == .answered(allowed.map { $0 ? .repeated : .first }))
    }

    /// Asked again, a claim whose answer was lost is first when its key holds the request's own
    /// token (its first sending took the id) or when asking again takes the id, and repeated when
    /// another delivery's claim holds it. While Redis refuses to claim an id whose key holds
    /// nothing, the request is not answered and claims wait; once Redis takes it, it is.
    @Test func lostClaimsAreAnsweredByWhoseTokenTheirKeysHold() async throws {
        let redis = try RedisServer()
        let endpoint = RedisEndpoint(port: redis.port, timeout: 60)
        let command = ClaimCommand(shardCount: 1, horizon: .seconds(86_400))
        let lostClaims = Self.lostClaims(endpoint, command, registry: PrometheusCollectorRegistry())
        let connection = try RedisConnection(endpoint)
        let refusals = ClaimRefusals(redis: connection)
        let ids = (0..<40).map { EventFingerprint("asked-again-\($0)") }
        let allowed = ClaimRefusals.taken(ids)
        let taken = ids[allowed.firstIndex(of: true)!], free = ids[allowed.lastIndex(of: true)!]
        let refused = ids[allowed.firstIndex(of: false)!], elsewhere = ids[allowed.lastIndex(of: false)!]
        let ours = ClaimToken.next(), another = ClaimToken.next()
        _ = try connection.pipeline([command.arguments(taken, ours), command.arguments(elsewhere, another)])
        try refusals.start()
        let answer = Mutex<[ClaimOutcome]?>(nil)
        lostClaims.askAgain([taken, elsewhere, free, refused], token: ours) { outcomes in answer.withLock { $0 = outcomes } }
        try await Task.sleep(for: LostClaims.retryInterval * 2.5)
        #expect(answer.withLock { $0 } == nil && lostClaims.areWaiting, "the refused id's claim is not known yet")
        try refusals.stop()
        try await waitFor("the request answered") { answer.withLock { $0 } != nil }
        #expect(answer.withLock { $0 } == [.first, .repeated, .first, .first])
        #expect(!lostClaims.areWaiting)
        let held = try connection.pipeline([taken, elsewhere, free, refused].map { command.askAgain($0, ours)[1] })
        #expect(held == [ours, another, ours, ours].map { .bulk($0.bytes) })
    }

    /// A lane's connection authenticates and selects the endpoint's database before it claims; a
    /// wrong password defers the claims (as lost: what Redis did behind a refused `AUTH` is not
    /// read).
    @Test func aLaneAuthenticatesAndSelectsTheDatabase() async throws {
        let redis = try RedisServer(password: "lane-secret")
        let ids = [EventFingerprint("a"), EventFingerprint("b")]
        #expect(try await Self.claim(ids, by: Self.lanes(RedisEndpoint(port: redis.port, password: "lane-secret", database: 3, timeout: 60), horizon: .seconds(86_400))) == .answered([.first, .first]))
        let database3 = try RedisConnection(RedisEndpoint(port: redis.port, password: "lane-secret", database: 3))
        #expect(try database3.command(["DBSIZE"]) == .integer(2))
        let database0 = try RedisConnection(RedisEndpoint(port: redis.port, password: "lane-secret"))
        #expect(try database0.command(["DBSIZE"]) == .integer(0))
        #expect(try await Self.claim(ids, by: Self.lanes(RedisEndpoint(port: redis.port, password: "wrong"))).isLost)
    }

    /// With a Redis 6 ACL user instead of the default one (which is off), a lane's connection and
    /// a plain one authenticate as that user; without the user name they are refused.
    @Test func aLaneAndAConnectionAuthenticateAsAnACLUser() async throws {
        let redis = try RedisServer(options: ["--user", "pullsketch", "on", ">acl-secret", "~*", "&*", "+@all", "--user", "default", "off"])
        let user = RedisEndpoint(port: redis.port, password: "acl-secret", username: "pullsketch", timeout: 60)
        #expect(try await Self.claim([EventFingerprint("a")], by: Self.lanes(user, horizon: .seconds(86_400))) == .answered([.first]))
        #expect(try RedisConnection(user).command(["DBSIZE"]) == .integer(1))
        #expect(throws: RedisError.self) { try RedisConnection(RedisEndpoint(port: redis.port, password: "acl-secret")) }
        #expect(try await Self.claim([EventFingerprint("b")], by: Self.lanes(RedisEndpoint(port: redis.port, password: "acl-secret"))).isLost)
    }

    /// A lane closed while a claim is out (the server stopping) answers that claim once Redis does
    /// (Redis applied it: an answer of not sent would make its redelivery a duplicate) and later
    /// claims not sent at once. The lane's timeout is an hour, so that a loaded machine's pauses
    /// between these steps cannot end the held claim (CI once saw it time out with a one-minute
    /// timeout).
    @Test func aClosedLaneAnswersTheClaimsItSentAndNoMore() async throws {
        let redis = try RedisServer()
        let endpoint = RedisEndpoint(port: redis.port)
        let registry = PrometheusCollectorRegistry()
        let lanes = Self.lanes(RedisEndpoint(port: redis.port, timeout: 3_600), registry: registry)
        let loop = MultiThreadedEventLoopGroup.singleton.next()
        #expect(try await Self.claim([EventFingerprint("connect")], by: lanes, on: loop) == .answered([.first]))
        _ = try RedisConnection(endpoint).command(["CLIENT", "PAUSE", "600000", "WRITE"])
        let held = Task { try await Self.claim([EventFingerprint("held")], by: lanes, on: loop) }
        try await waitFor("the claim is out") {
            String(decoding: registry.emitToBuffer(), as: UTF8.self).contains("pullsketch_event_claim_round_trips_total 2")
        }
        try await loop.submit { lanes.lane(on: loop)?.close() }.get()
        #expect(try await Self.claim([EventFingerprint("late")], by: lanes, on: loop) == .notSent)
        _ = try RedisConnection(endpoint).command(["CLIENT", "UNPAUSE"])
        #expect(try await held.value == .answered([.first]))
    }
}

extension ClaimReply {
    var isLost: Bool {
        if case .lost = self { true } else { false }
    }
}
