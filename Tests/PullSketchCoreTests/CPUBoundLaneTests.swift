import Foundation
import PullSketchTestSupport
import Synchronization
import Testing

/// The lane the CPU-bound suites run on, which the other suites' waits rely on.
@Suite(.cpuBound) struct CPUBoundLaneTests {
    @Test func aCPUBoundSuitesTestsRunOnTheLane() {
        #expect(CPUBoundLane.isCurrent)
    }

    @Test func busyTestsOnTheLaneLeaveTheCooperativePoolFree() async {
        // Two tasks each start a task on the cooperative pool and stay runnable (yielding the core)
        // until it has run: on that pool (two threads here) they would hold both threads to their
        // deadline. The deadline is long because the whole suite can queue the pool's work for a
        // minute; it only ends a failing run.
        final class Flag: Sendable { let raised = Atomic(false) }
        let flag = Flag()
        let sawIt = await withTaskGroup(of: Bool.self) { group in
            for _ in 0..<2 {
                group.addTask {
                    Task.detached { flag.raised.store(true, ordering: .releasing) }
                    let deadline = ContinuousClock.now + .seconds(300)
                    while !flag.raised.load(ordering: .acquiring), ContinuousClock.now < deadline { sched_yield() }
                    return flag.raised.load(ordering: .acquiring)
                }
            }
            return await group.reduce(true) { $0 && $1 }
        }
        #expect(sawIt)
    }

    @Test func theLaneRunsOneJobAtATime() async {
        final class Running: Sendable {
            let now = Atomic(0)
            let most = Atomic(0)
        }
        let running = Running()
        await withTaskGroup(of: Void.self) { group in
            for _ in 0..<4 {
                group.addTask {
                    let now = running.now.add(1, ordering: .relaxed).newValue
                    running.most.max(now, ordering: .relaxed)
                    let end = ContinuousClock.now + .milliseconds(20)
                    while ContinuousClock.now < end {}
                    running.now.subtract(1, ordering: .relaxed)
                }
            }
        }
        #expect(running.most.load(ordering: .relaxed) == 1)
    }
}
