import Metrics
import PullSketchCore
import PullSketchRedis

/// The flusher's swift-metrics figures; the process chooses the backend (Prometheus in the node).
struct FlusherMetrics {
    private let merges = Counter(label: "pullsketch_flusher_merges_total")
    private let duplicateParts = Counter(label: "pullsketch_flusher_duplicate_parts_total")
    private let failures = Counter(label: "pullsketch_flusher_failures_total")
    private let retries = Counter(label: "pullsketch_flusher_retries_total")
    private let droppedWindows = Counter(label: "pullsketch_flusher_windows_dropped_total")
    private let droppedPulls = Counter(label: "pullsketch_flusher_pulls_dropped_total")
    private let resentParts = Counter(label: "pullsketch_flusher_parts_resent_total")
    private let resentPulls = Counter(label: "pullsketch_flusher_pulls_resent_total")
    private let unprotectedParts = Counter(label: "pullsketch_flusher_parts_unprotected_total")
    private let entries = Counter(label: "pullsketch_flusher_hot_entries_total")
    private let cells = Counter(label: "pullsketch_flusher_sketch_cells_total")
    private let unnamedPulls = Counter(label: "pullsketch_flusher_pulls_unnamed_total")
    private let bytes = Counter(label: "pullsketch_flusher_payload_bytes_total")
    private let duration = Timer(label: "pullsketch_flusher_merge_duration")
    private let sinceSuccess = Gauge(label: "pullsketch_flusher_seconds_since_last_merge")
    private let lastSuccess = LastSuccess()

    func recordMerge(_ window: Window, outcomes: [Int: MergeOutcome], duration elapsed: Duration) {
        merges.increment()
        duplicateParts.increment(by: outcomes.values.filter { $0 == .alreadyApplied }.count)
        entries.increment(by: window.hotEntries.count)
        cells.increment(by: window.shards.reduce(0) { $0 + $1.sketchCells.count })
        unnamedPulls.increment(by: Int(clamping: window.unnamedPulls))
        bytes.increment(by: window.approximatePayloadBytes)
        duration.recordNanoseconds(elapsed.components.seconds * 1_000_000_000 + elapsed.components.attoseconds / 1_000_000_000)
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

    /// Updates the age of the last successful merge; called at every attempt.
    func recordAge() {
        guard let instant = lastSuccess.instant else { return }
        let age = ContinuousClock.now - instant
        sinceSuccess.record(Double(age.components.seconds) + Double(age.components.attoseconds) / 1e18)
    }
}

/// The time of the last successful merge; only touched on the flusher's queue.
private final class LastSuccess: @unchecked Sendable {
    var instant: ContinuousClock.Instant?
}
