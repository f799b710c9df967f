/// What only the reconciler needs: where PostgreSQL is and how it paces its passes. Redis, the
/// shard count and the counting rule are the deployment's, shared with the nodes.
public struct ReconcilerConfiguration: Hashable, Sendable {
    /// libpq connection string or `postgresql://` URI of the statistics database.
    public var database: String
    /// Time between two passes. Default 5 s.
    public var interval: Duration
    /// How long a shard's lease lasts unless renewed; renewed before every batch. A reconciler that
    /// dies holds its shards this long. Default 15 s.
    public var leaseDuration: Duration

    public init(database: String = "", interval: Duration = .seconds(5), leaseDuration: Duration = .seconds(15)) {
        self.database = database
        self.interval = interval
        self.leaseDuration = leaseDuration
    }
}
