import Metrics
import PullSketchCore
import PullSketchRedis

/// The flusher's swift-metrics figures; the process chooses the backend (Prometheus in the node),
/// a test may pass its own factory.
struct FlusherMetrics {
    private let merges: Counter
    private let duplicateParts: Counter
    private let failures: Counter
    private let retries: Counter
    private let droppedWindows: Counter
    private let droppedPulls: Counter
    private let resentParts: Counter
    private let resentPulls: Counter
    private let unprotectedParts: Counter
    private let entries: Counter
    private let cells: Counter
    private let unnamedPulls: Counter
    private let bytes: Counter
    private let duration: Timer
    /// Seconds since the node last had nothing undelivered: 0 after a merge and while there is
    /// nothing to merge, growing while merges fail — from the start if none succeeded yet.
    private let sinceSuccess: Gauge
    private let lastSuccess = LastSuccess()

    init(factory: any MetricsFactory = MetricsSystem.factory) {
        func counter(_ name: String) -> Counter { Counter(label: "pullsketch_flusher_\(name)", factory: factory) }
        merges = counter("merges_total")
        duplicateParts = counter("duplicate_parts_total")
        failures = counter("failures_total")
        retries = counter("retries_total")
        droppedWindows = counter("windows_dropped_total")
        droppedPulls = counter("pulls_dropped_total")
        resentParts = counter("parts_resent_total")
        resentPulls = counter("pulls_resent_total")
        unprotectedParts = counter("parts_unprotected_total")
        entries = counter("hot_entries_total")
        cells = counter("sketch_cells_total")
        unnamedPulls = counter("pulls_unnamed_total")
        bytes = counter("payload_bytes_total")
        duration = Timer(label: "pullsketch_flusher_merge_duration", factory: factory)
        sinceSuccess = Gauge(label: "pullsketch_flusher_seconds_since_last_merge", factory: factory)
    }

    func recordMerge(_ window: Window, outcomes: [Int: MergeOutcome], duration elapsed: Duration) {
        merges.increment()
        duplicateParts.increment(by: outcomes.values.filter { $0 == .alreadyApplied }.count)
        entries.increment(by: window.hotEntries.count)
        cells.increment(by: window.shards.reduce(0) { $0 + $1.sketchCells.count })
        unnamedPulls.increment(by: Int(clamping: window.unnamedPulls))
        bytes.increment(by: window.approximatePayloadBytes)
        duration.recordNanoseconds(elapsed.components.seconds * 1_000_000_000 + elapsed.components.attoseconds / 1_000_000_000)
        recordUpToDate()
    }

    /// Nothing is left to deliver: merged, or nothing to merge.
    func recordUpToDate() {
        lastSuccess.instant = .now
        sinceSuccess.record(0)
    }

    func recordFailure() { failures.increment() }

    /// A kept part sent again because its shard lost it.
    func recordResent(_ part: ShardWindow) {
        resentParts.increment()
        resentPulls.increment(by: Int(clamping: part.pulls))
    }

    /// Merged parts forgotten before PostgreSQL held them: lost if Redis then goes back further.
    func recordUnprotected(_ parts: Int) {
        if parts > 0 { unprotectedParts.increment(by: parts) }
    }
    func recordRetry() { retries.increment() }

    func recordDrop(_ window: Window) {
        droppedWindows.increment()
        droppedPulls.increment(by: Int(clamping: window.pulls))
    }

    /// Updates the age of the last time nothing was undelivered; called at every attempt.
    func recordAge() {
        let age = ContinuousClock.now - lastSuccess.instant
        sinceSuccess.record(Double(age.components.seconds) + Double(age.components.attoseconds) / 1e18)
    }
}

/// When nothing was last undelivered, the start until then; only touched on the flusher's queue.
private final class LastSuccess: @unchecked Sendable {
    var instant = ContinuousClock.now
}
