
/// How the flusher paces its merges; where Redis is belongs to the deployment.
public struct FlusherConfiguration: Hashable, Sendable {
    /// Time between two merges. Default 2 s.
    public var mergeInterval: Duration
    /// Delay before the first retry after a failed merge; doubles per failure. Default 0.1 s.
    public var initialBackoff: Duration
    /// The longest delay between retries. Default 10 s.
    public var maximumBackoff: Duration
    /// How long a graceful shutdown keeps trying its last merge. Default 5 s.
    public var shutdownGracePeriod: Duration
    /// How long the merge ledger remembers a node, by Redis's clock. A window whose merge outcome
    /// stays unknown for half of it is dropped and counted, never sent after the ledger may have
    /// forgotten it. Default one day.
    public var ledgerMemory: Duration
    /// How much of the window parts it merged a node keeps until PostgreSQL holds them (by
    /// `ShardWindow.approximatePayloadBytes`), to send them again if Redis goes back to an older
    /// state; beyond it the oldest are forgotten and counted. Default 64 MiB.
    public var retainedBytes: Int

    public init(
        mergeInterval: Duration = .seconds(2),
        initialBackoff: Duration = .milliseconds(100),
        maximumBackoff: Duration = .seconds(10),
        shutdownGracePeriod: Duration = .seconds(5),
        ledgerMemory: Duration = .seconds(86_400),
        retainedBytes: Int = 64 << 20
    ) {
        self.mergeInterval = mergeInterval
        self.initialBackoff = initialBackoff
        self.maximumBackoff = maximumBackoff
        self.shutdownGracePeriod = shutdownGracePeriod
        self.ledgerMemory = ledgerMemory
        self.retainedBytes = retainedBytes
    }

    /// The wait before the next attempt after `failures` failures in a row (none: the interval).
    func delay(afterFailures failures: Int) -> Duration {
        guard failures > 0 else { return mergeInterval }
        let doubled = initialBackoff * (1 << min(failures - 1, 30))
        return min(doubled, maximumBackoff)
    }
}
