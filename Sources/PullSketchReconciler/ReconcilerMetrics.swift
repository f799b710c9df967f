import Metrics
import PullSketchCore
import PullSketchStore

/// The reconciler's swift-metrics figures; the process chooses the backend.
struct ReconcilerMetrics {
    private let applied = Counter(label: "pullsketch_reconciler_batches_total", dimensions: [("outcome", "applied")])
    private let skipped = Counter(label: "pullsketch_reconciler_batches_total", dimensions: [("outcome", "already_reconciled")])
    private let hotKeys = Counter(label: "pullsketch_reconciler_hot_keys_total")
    private let tailRepositories = Counter(label: "pullsketch_reconciler_tail_repositories_total")
    private let exactRows = Counter(label: "pullsketch_reconciler_rows_total", dimensions: [("kind", "exact")])
    private let estimatedRows = Counter(label: "pullsketch_reconciler_rows_total", dimensions: [("kind", "estimated")])
    private let unattributedPulls = Counter(label: "pullsketch_reconciler_unattributed_pulls_total")
    private let failures = Counter(label: "pullsketch_reconciler_failures_total")
    private let shardFailures = Counter(label: "pullsketch_reconciler_shard_failures_total")
    private let quarantined = Counter(label: "pullsketch_reconciler_batches_quarantined_total")
    private let rewinds = Counter(label: "pullsketch_reconciler_rewinds_total")
    private let batchDuration = Timer(label: "pullsketch_reconciler_batch_duration")
    private let passDuration = Timer(label: "pullsketch_reconciler_pass_duration")
    private let lag = Gauge(label: "pullsketch_reconciler_lag_seconds")

    func recordBatch(_ batch: SealedBatch, outcome: BatchWriter.Outcome, duration: Duration) {
        hotKeys.increment(by: batch.content.hotEntries.count)
        tailRepositories.increment(by: batch.content.tailRepositories.count)
        switch outcome {
        case .applied(let exact, let estimated):
            applied.increment()
            exactRows.increment(by: exact)
            estimatedRows.increment(by: estimated)
            unattributedPulls.increment(by: Int(clamping: batch.content.unnamedPulls))
        case .alreadyReconciled:
            skipped.increment()
        case .holdsReconciledWindows:
            rewinds.increment()
        }
        batchDuration.recordNanoseconds(duration.nanoseconds)
    }

    func recordPass(duration: Duration) { passDuration.recordNanoseconds(duration.nanoseconds) }
    func recordFailure() { failures.increment() }
    func recordShardFailure() { shardFailures.increment() }
    func recordQuarantine() { quarantined.increment() }

    /// How long the oldest sealed batch has waited (0 when none waits).
    func recordLag(milliseconds: Int64) { lag.record(Double(milliseconds) / 1_000) }
}

extension Duration {
    fileprivate var nanoseconds: Int64 { components.seconds * 1_000_000_000 + components.attoseconds / 1_000_000_000 }
}
