public import Foundation
public import Testing

/// One thread for the suites that keep a core busy for a minute or more, one job at a time.
///
/// Swift's cooperative pool has one thread per core — two here — and on Linux adds none while they
/// compute or block (four tasks blocked in `sleep(3)` finish after six seconds). While two
/// CPU-bound tests held both, nothing else in the test process ran: no other test's polling, no
/// task of a node under test; waits stalled for minutes. On this lane such a test holds one
/// thread of its own, and the suite's other tests keep the cooperative pool, which still lets no
/// more than two of them keep the cores busy at once.
public final class CPUBoundLane: TaskExecutor, @unchecked Sendable {
    public static let shared = CPUBoundLane()

    private static let marker = "pullsketch.cpu-bound-lane"
    private let condition = NSCondition()
    /// Guarded by `condition`.
    private var jobs: [UnownedJob] = []

    /// A lane of its own, for a test whose task must not wait for the cooperative pool.
    public init() {
        let thread = Thread { [self] in work() }
        thread.stackSize = 1 << 22
        thread.start()
    }

    /// Whether the calling code runs on the lane.
    public static var isCurrent: Bool { Thread.current.threadDictionary[marker] != nil }

    public func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        condition.lock()
        jobs.append(job)
        condition.signal()
        condition.unlock()
    }

    private func work() {
        Thread.current.threadDictionary[Self.marker] = true
        while true {
            condition.lock()
            while jobs.isEmpty { condition.wait() }
            let job = jobs.removeFirst()
            condition.unlock()
            job.runSynchronously(on: asUnownedTaskExecutor())
        }
    }
}

/// Runs a suite's tests, and the tasks they start in groups, on the `CPUBoundLane`.
public struct CPUBoundTrait: SuiteTrait, TestScoping {
    public var isRecursive: Bool { false }

    public func provideScope(for test: Test, testCase: Test.Case?, performing function: @Sendable () async throws -> Void) async throws {
        try await withTaskExecutorPreference(CPUBoundLane.shared) {
            await Task.yield()  // the preference applies from the next suspension: move now, before the next trait starts a server
            try await function()
        }
    }
}

extension Trait where Self == CPUBoundTrait {
    /// The suite's tests keep a core busy for long: they run on the `CPUBoundLane`, one job at a
    /// time, and leave the cooperative pool to the other tests.
    public static var cpuBound: Self { CPUBoundTrait() }
}
