import Foundation

/// Runs `body(index)` on `count` new OS threads at once and waits for all of them: real
/// parallelism, unlike tasks on the cooperative pool or the one-job `CPUBoundLane`.
public func runOnThreads(_ count: Int, _ body: @escaping @Sendable (Int) -> Void) {
    let finished = DispatchSemaphore(value: 0)
    for index in 0..<count {
        let thread = Thread {
            body(index)
            finished.signal()
        }
        thread.stackSize = 1 << 22
        thread.start()
    }
    for _ in 0..<count { finished.wait() }
}

/// Runs blocking `body` (a child process, a sleep, a server start) on a new OS thread and awaits
/// it, so a test never holds a thread that other jobs may wait for: the cooperative pool's, or the
/// one-job `CPUBoundLane`'s.
public func onOwnThread<Value: Sendable>(_ body: @escaping @Sendable () throws -> Value) async throws -> Value {
    try await withCheckedThrowingContinuation { continuation in
        let thread = Thread { continuation.resume(with: Result { try body() }) }
        thread.stackSize = 1 << 22
        thread.start()
    }
}
