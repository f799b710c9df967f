import Dispatch

/// The one home of blocking calls (hiredis, libpq): a serial executor on its own dispatch queue,
/// whose threads are not Swift's cooperative pool. An actor that owns a blocking client returns
/// one of these as its `unownedExecutor`, so every isolated method — and every blocking call in it
/// — runs there, one at a time, and the compiler checks that the client never leaves the actor:
///
/// ```swift
/// actor Lane {
///     nonisolated let executor = BlockingExecutor(label: "pullsketch.lane")
///     nonisolated var unownedExecutor: UnownedSerialExecutor { executor.asUnownedSerialExecutor() }
/// }
/// ```
///
/// A stalled call (a server that accepts and never answers) stalls only its own actor; the HTTP
/// server and every other actor go on.
public final class BlockingExecutor: SerialExecutor {
    private let queue: DispatchQueue

    public init(label: String) {
        queue = DispatchQueue(label: label)
    }

    public func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        queue.async { job.runSynchronously(on: self.asUnownedSerialExecutor()) }
    }

    public func asUnownedSerialExecutor() -> UnownedSerialExecutor {
        UnownedSerialExecutor(ordinary: self)
    }
}
