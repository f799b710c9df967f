import Foundation

/// Runs `body(index)` on `count` new OS threads at once and waits for all of them: real
/// parallelism, unlike tasks on the cooperative pool.
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
