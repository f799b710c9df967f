/// How the reconciler paces its passes and holds its leases. Redis, PostgreSQL and the shard count
/// are the deployment's, shared with the nodes.
public struct ReconcilerConfiguration: Hashable, Sendable {
    /// How often a pass starts; a pass that outlasts it is followed by the next at once, and a
    /// failed pass by the next one interval later. Default 5 s.
    public var interval: Duration
    /// How long a shard's lease lasts unless renewed; renewed before every batch. A reconciler that
    /// dies holds its shards this long. Default 15 s.
    public var leaseDuration: Duration

    public init(interval: Duration = .seconds(5), leaseDuration: Duration = .seconds(15)) {
        self.interval = interval
        self.leaseDuration = leaseDuration
    }
}
