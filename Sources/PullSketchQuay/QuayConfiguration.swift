/// How a node hears Quay and how the reconciler writes back to it (`PULLSKETCH.quay` and the
/// `resp_*` keys; docs/quay.md).
public struct QuayConfiguration: Hashable, Sendable {
    /// Where the Redis-speaking endpoint listens; nil (the default): no endpoint.
    public var endpoint: QuayEndpointConfiguration?
    /// Quay's database, for repository names and the projection; nil: the statistics database
    /// (PullSketch's schema inside Quay's database, the recommended layout).
    public var databaseURL: String?
    /// Whether the reconciler writes Quay's `tagpullstatistics` and `manifestpullstatistics`.
    public var projection = false
    /// How often repository names are re-read from Quay. Default 60 s.
    public var namesRefreshInterval: Duration = .seconds(60)

    public init() {}
}
