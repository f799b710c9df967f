public import Foundation
public import Testing

/// The threads every suite's tests run on, instead of Swift's cooperative pool.
///
/// The cooperative pool has one thread per core: two here. A synchronous test or a CPU-bound
/// replay holds one of them until it ends, and while two such tests ran nothing else in the
/// process moved — not another test's polling, not the node's background tasks — so under the
/// whole suite waits stalled for minutes. `shared` never lets a job wait for a busy thread: when
/// every thread is busy it starts another, and the kernel shares the cores among the tests, which
/// slow down rather than stop. The few suites that keep cores busy for a minute run on `cpuBound`,
/// one job at a time, so they never take the cores from the servers other tests wait for.
public final class TestThreads: TaskExecutor, @unchecked Sendable {
    public static let shared = TestThreads(limit: .max)
    public static let cpuBound = TestThreads(limit: 1)

    private static let marker = "pullsketch.test-thread"
    private let limit: Int
    private let condition = NSCondition()
    /// Guarded by `condition`.
    private var jobs: [UnownedJob] = []
    private var threads = 0
    private var idleThreads = 0

    private init(limit: Int) {
        self.limit = limit
    }

    /// Whether the calling code runs on one of these threads.
    public static var isCurrent: Bool { Thread.current.threadDictionary[marker] != nil }

    public func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        condition.lock()
        jobs.append(job)
        let startThread = jobs.count > idleThreads && threads < limit
        if startThread {
            threads += 1
        } else {
            condition.signal()
        }
        condition.unlock()
        if startThread {
            let thread = Thread { [self] in work() }
            thread.stackSize = 1 << 22
            thread.start()
        }
    }

    private func work() {
        Thread.current.threadDictionary[Self.marker] = true
        condition.lock()
        while true {
            idleThreads += 1
            while jobs.isEmpty { condition.wait() }
            idleThreads -= 1
            let job = jobs.removeFirst()
            condition.unlock()
            job.runSynchronously(on: asUnownedTaskExecutor())
            condition.lock()
        }
    }
}

/// Runs a suite's tests, and the tasks they start in groups, on `TestThreads`.
public struct TestThreadsTrait: SuiteTrait, TestScoping {
    let threads: TestThreads
    public var isRecursive: Bool { false }

    public func provideScope(for test: Test, testCase: Test.Case?, performing function: @Sendable () async throws -> Void) async throws {
        try await withTaskExecutorPreference(threads) {
            await Task.yield()  // the preference applies from the next suspension: move now, before the next trait starts a server
            try await function()
        }
    }
}

extension Trait where Self == TestThreadsTrait {
    /// The suite's tests run on threads of their own, never waiting for a busy one.
    public static var testThreads: Self { TestThreadsTrait(threads: .shared) }

    /// The suite's tests keep cores busy for long: they run one job at a time, beside the others.
    public static var cpuBoundTestThreads: Self { TestThreadsTrait(threads: .cpuBound) }
}
