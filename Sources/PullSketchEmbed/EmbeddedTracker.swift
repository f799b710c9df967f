import Foundation
import PullSketchConfig
import PullSketchCore
import PullSketchFlusher
import Synchronization

/// The tracker behind one `pullsketch *` handle of the C ABI (`include/pullsketch.h`): `record`
/// writes to the lock-striped tracker on the caller's thread; a thread of the library's own merges
/// into Redis every interval, so no caller ever waits on Redis. That thread is a plain POSIX
/// thread and the merges synchronous (`WindowMerger`), with no dispatch queue or task: a forked
/// child, which has none of its parent's threads, can open a tracker of its own.
final class EmbeddedTracker: @unchecked Sendable {
    let tracker: PullTracker
    /// The fork generation of the process that opened it: a child has a later one.
    let forkGeneration: Int
    /// Used by the merge thread alone, and after it ended by `close`.
    private let merger: WindowMerger
    private let gracePeriod: Duration
    private let stopping = NSCondition()
    /// Set under `stopping`.
    private var stopRequested = false
    private var thread = pthread_t()

    init(_ configuration: PullSketchConfiguration) {
        Fork.watch()
        tracker = PullTracker(configuration: configuration.tracker)
        merger = WindowMerger(tracker: tracker, redis: configuration.redis, configuration: configuration.flusher)
        gracePeriod = configuration.flusher.shutdownGracePeriod
        forkGeneration = Fork.generation
        let context = Unmanaged.passRetained(self).toOpaque()
        pthread_create(&thread, nil, { context in
            let tracker = Unmanaged<EmbeddedTracker>.fromOpaque(context!).takeRetainedValue()
            tracker.mergeUntilStopped()
            return nil
        }, context)
    }

    /// Stops the merge thread, which merges what is left, trying for at most the grace period.
    func close() {
        stopping.lock()
        stopRequested = true
        stopping.signal()
        stopping.unlock()
        pthread_join(thread, nil)
    }

    private func mergeUntilStopped() {
        while !waitForStop(merger.nextDelay) {
            merger.flushOnce()
        }
        _ = merger.flushAtExit(gracePeriod: gracePeriod)
    }

    /// Waits for `duration` or until `close` asks to stop; true when asked.
    private func waitForStop(_ duration: Duration) -> Bool {
        let (seconds, attoseconds) = duration.components
        let deadline = Date(timeIntervalSinceNow: Double(seconds) + Double(attoseconds) / 1e18)
        stopping.lock()
        defer { stopping.unlock() }
        while !stopRequested, stopping.wait(until: deadline) {}
        return stopRequested
    }

    /// The configuration `text` names: the path of a config.yaml, else YAML text; then the
    /// environment over it, as for the `pullsketch` command.
    static func configuration(_ text: String) throws -> PullSketchConfiguration {
        let yaml = FileManager.default.fileExists(atPath: text) ? try String(contentsOfFile: text, encoding: .utf8) : text
        return try PullSketchConfiguration(yaml: yaml).applying(environment: ProcessInfo.processInfo.environment)
    }
}

/// Counts forks: a child process starts with a generation one above its parent's, so a handle can
/// tell it was opened by another process without a system call per record.
enum Fork {
    private static let generations = Atomic<Int>(0)
    private static let watching: Void = {
        pthread_atfork(nil, nil) { Fork.generations.add(1, ordering: .relaxed) }
    }()

    static var generation: Int { generations.load(ordering: .relaxed) }

    /// Registers the child handler, once per process.
    static func watch() { watching }
}
