import Foundation
import Logging
import Prometheus
@testable import PullSketchNode
import PullSketchEvents
import PullSketchRedis
import PullSketchTestSupport
import Synchronization
import Testing

@Suite struct EventClaimsTests {
    /// Tasks that keep every thread of the cooperative pool busy until stopped, or for 10 s at most
    /// once they hold one thread per core; made from a thread outside the pool, it returns when they
    /// do. The 10 s count from then, not from the first task's start: the other threads of the pool
    /// may stay busy with other tests for longer than that before they come free.
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
                    // Never held whole in 5 minutes: a pool narrower than the cores; give up.
                    let giveUp = ContinuousClock.now + .seconds(300)
                    if running.add(1, ordering: .relaxed).newValue == threads {
                        deadline.withLock { $0 = .now + .seconds(10) }
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

    /// A request waiting for its claim must not need a free thread of the cooperative pool, which
    /// busy requests may hold: the round trip goes out on the claims' own executor.
    @Test func claimsGoOutWhileTheCooperativePoolIsBusy() async throws {
        let redis = try RedisServer()
        let registry = PrometheusCollectorRegistry()
        let claims = EventClaims(
            redis: RedisEndpoint(port: redis.port, timeout: 60), shardCount: 1, horizon: .seconds(60),
            roundTrips: registry.makeCounter(name: "round_trips"), waitingRequests: registry.makeGauge(name: "waiting"),
            logger: Logger(label: "test")
        )
        // The test waits on a lane of its own, so that it needs no pool thread either.
        let (answer, poolWasHeld) = await withTaskExecutorPreference(CPUBoundLane()) {
            await Task.yield()  // onto the lane
            let busy = BusyPool()  // no Task.sleep from here on: its wake-up goes through the pool
            let answer = await claims.claim([EventFingerprint("first"), EventFingerprint("first")])
            return (answer, busy.stop())
        }
        #expect(poolWasHeld, "the claim was answered only once the cooperative pool was free again")
        #expect(answer == [true, false])
    }
}
