/// How the reconciler paces its passes and holds its leases, and how many run in one process.
/// Redis, PostgreSQL and the shard count are the deployment's, shared with the nodes.
public struct ReconcilerConfiguration: Hashable, Sendable {
    /// How often a pass starts; a pass that outlasts it is followed by the next at once, and a
    /// failed pass by the next one interval later. Default 5 s.
    public var interval: Duration
    /// How long a shard's lease lasts unless renewed; renewed before every batch. A reconciler that
    /// dies holds its shards this long. Default 15 s.
    public var leaseDuration: Duration
    /// How many reconcilers `pullsketch reconcile` runs in its process, each with its own
    /// connections and its share of the shards, so that PostgreSQL writes that many batches at
    /// once. Default 1.
    public var workers: Int

    public init(interval: Duration = .seconds(5), leaseDuration: Duration = .seconds(15), workers: Int = 1) {
        self.interval = interval
        self.leaseDuration = leaseDuration
        self.workers = workers
    }
}
