import PullSketchTestSupport
import Synchronization
import Testing

/// The executor every suite runs on, which the suites' waits rely on.
@Suite(.testThreads) struct TestThreadsTests {
    @Test func aSuitesTestsRunOnTestThreads() {
        #expect(TestThreads.isCurrent)
    }

    @Test func busyTasksNeverKeepAnotherFromStarting() async {
        // Each task keeps its core busy until all of them run: on a pool of one thread per core
        // the later ones would start only when the first gave up.
        let count = 8
        final class Running: Sendable { let count = Atomic(0) }
        let running = Running()
        let allRan = await withTaskGroup(of: Bool.self) { group in
            for _ in 0..<count {
                group.addTask {
                    running.count.add(1, ordering: .relaxed)
                    let deadline = ContinuousClock.now + .seconds(30)
                    while running.count.load(ordering: .relaxed) < count, ContinuousClock.now < deadline {}
                    return running.count.load(ordering: .relaxed) == count
                }
            }
            return await group.reduce(true) { $0 && $1 }
        }
        #expect(allRan)
    }

    @Test func theCPUBoundLaneRunsOneJobAtATime() async {
        final class Running: Sendable {
            let now = Atomic(0)
            let most = Atomic(0)
        }
        let running = Running()
        await withTaskExecutorPreference(TestThreads.cpuBound) {
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
        }
        #expect(running.most.load(ordering: .relaxed) == 1)
    }
}
